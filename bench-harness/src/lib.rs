//! The layerlab experiment harness: the library behind the comparative experiments
//! (workloads, runner, statistics, reports) and the `layerlab` command-line binary.
//!
//! [`cli`] holds the command line, kept in modules by concept so that the binary
//! (`src/main.rs`) only parses arguments and reports errors.

pub mod cli;
pub mod harness;
