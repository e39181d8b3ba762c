//! `layerlab`: the command line of the container storage laboratory (see README.md).

use clap::Parser;
use layerlab::cli::{self, args::Cli, args::Command, fsck_cmd};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Cli::parse();
    // fsck(8)'s exit codes: a check that could not run is an operational error
    let failed = if matches!(args.command, Command::Fsck { .. }) {
        fsck_cmd::OPERATIONAL_ERROR
    } else {
        1
    };
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // stderr may be closed or on a full disk: the exit code still says it failed
            let line = format!("error: {}\n", cli::error_line(&e));
            let _ = std::io::stderr().write_all(line.as_bytes());
            ExitCode::from(failed)
        }
    }
}
