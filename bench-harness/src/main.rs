//! `layerlab`: the command line of the container storage laboratory (see README.md).

use clap::Parser;
use layerlab::cli::{self, args::Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::error_line(&e));
            ExitCode::from(1)
        }
    }
}
