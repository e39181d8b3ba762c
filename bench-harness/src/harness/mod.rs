//! The comparative experiment harness: experiments read from TOML ([`config`]), device
//! profiles ([`profile`]) and the cost model ([`cost`]), the workloads ([`workloads`]), the
//! runner ([`runner`]), statistics ([`stats`]), the output files ([`output`]), the
//! environment ([`env`]); the results ([`results`]) and the report drawn from them.

pub mod config;
pub mod cost;
pub mod env;
pub mod error;
pub mod output;
pub mod profile;
pub mod report;
pub mod results;
pub mod runner;
pub mod size;
pub mod stats;
pub mod workloads;

pub use error::{HarnessError, Result};
