//! The comparative experiment harness: experiments read from TOML ([`config`], with
//! [`driver_spec`] and [`toml_errors`]), device profiles ([`profile`], [`calibration`], the
//! costs that drift, measured again beside the kernel runs: [`window`]) and the cost model
//! ([`cost`]), the workloads ([`workloads`]), the runner ([`runner`]),
//! statistics ([`stats`]), the space metric ([`space`]), the output files ([`output`]), the
//! environment ([`env`](mod@env)); the results ([`results`]) and the report drawn from them; sweeps
//! ([`sweep`]: expansion, points, estimate, shards), a shard's run and manifest ([`shard`]),
//! merging shards ([`merge`]), batch scripts for Slurm ([`slurm`]).

pub mod calibration;
pub mod config;
pub mod cost;
pub mod driver_spec;
pub mod env;
pub mod error;
pub mod merge;
pub mod output;
pub mod profile;
pub mod report;
pub mod results;
pub mod runner;
pub mod shard;
pub mod slurm;
pub mod space;
pub mod stats;
pub mod sweep;
pub mod toml_errors;
pub mod window;
pub mod workloads;

pub use error::{HarnessError, Result};

/// The registered drivers a benchmark runs on: every available one, or those named in
/// `LAYERLAB_BENCH_DRIVERS` (comma separated), to keep a long benchmark to the drivers it
/// compares.
pub fn bench_drivers() -> Vec<&'static layerlab_drivers::DriverInfo> {
    let wanted = std::env::var("LAYERLAB_BENCH_DRIVERS").ok();
    layerlab_drivers::DRIVERS
        .iter()
        .filter(|d| d.is_available())
        .filter(|d| {
            wanted
                .as_deref()
                .is_none_or(|w| w.split(',').any(|n| n.trim() == d.name))
        })
        .collect()
}
