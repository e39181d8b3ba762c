//! One shard of an experiment (`layerlab run CONFIG --shard K/N --out DIR`): runs the points
//! [`sweep::shard`] deals to it and writes, beside the usual results, `manifest.json`: which
//! experiment (name, config hash, seed, `--quick`), which shard, which points and how many
//! rows each gave, the machine, and the wall time. The manifest is written last: a shard
//! directory without one is a shard that did not finish.

use super::env;
use super::error::{HarnessError, Result};
use super::output;
use super::results::Results;
use super::runner::{self, RunOptions};
use super::sweep::{self, PointDone, Selection, Sweep};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The manifest's file name in a shard directory.
pub const MANIFEST: &str = "manifest.json";

/// What a shard ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The experiment's name.
    pub experiment: String,
    /// The SHA-256 of the experiment file's text.
    pub config_hash: String,
    /// The experiment's seed.
    pub seed: u64,
    /// Whether the run was shrunk with `--quick`.
    pub quick: bool,
    /// This shard, from 0.
    pub shard: usize,
    /// The number of shards.
    pub shards: usize,
    /// The number of points of the whole experiment.
    pub points_total: usize,
    /// [`sweep::plan_hash`] of the whole experiment's points.
    pub plan_hash: String,
    /// The points this shard ran, in the order of its rows in `results.json`.
    pub points: Vec<PointDone>,
    /// The host name of the machine it ran on.
    pub machine: String,
    /// UTC start time.
    pub started: String,
    /// Wall time of the run, seconds (set-up of every store included).
    pub wall_s: f64,
}

/// This machine's host name (`unknown` where it cannot be read).
pub fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Runs every point of a sweep (its rows tagged with the swept values) into `opts.out`
/// and writes its results there.
pub fn run_all(sweep: &Sweep, opts: &RunOptions) -> Result<Results> {
    let mut opts = opts.clone();
    opts.sweep = Some(Arc::new(Selection::new(
        sweep,
        sweep.points(opts.quick),
        None,
    )));
    let results = runner::run(&sweep.exp, &opts)?;
    output::write_results(&results, &opts.out)?;
    Ok(results)
}

/// Runs shard `k` of `n` into `opts.out` and writes its results and manifest there.
pub fn run_shard(
    sweep: &Sweep,
    k: usize,
    n: usize,
    opts: &RunOptions,
) -> Result<(Results, Manifest)> {
    let points = sweep.points(opts.quick);
    let total = points.len();
    let plan_hash = sweep::plan_hash(&points);
    let mine: BTreeSet<usize> = sweep::shard(&points, k, n).into_iter().collect();
    let selection = Arc::new(Selection::new(sweep, points, Some(mine)));
    let mut opts = opts.clone();
    opts.sweep = Some(selection.clone());
    // a manifest from an earlier run of this directory no longer describes it
    let stale = opts.out.join(MANIFEST);
    match std::fs::remove_file(&stale) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(HarnessError::io(&stale, e))
        }
        _ => {}
    }
    let started = env::utc_now();
    let t = Instant::now();
    let results = runner::run(&sweep.exp, &opts)?;
    output::write_results(&results, &opts.out)?;
    let manifest = Manifest {
        experiment: results.experiment.clone(),
        config_hash: results.environment.config_hash.clone(),
        seed: results.environment.seed,
        quick: results.environment.quick,
        shard: k,
        shards: n,
        points_total: total,
        plan_hash,
        points: selection.done(),
        machine: machine(),
        started,
        wall_s: t.elapsed().as_secs_f64(),
    };
    write_manifest(&opts.out, &manifest)?;
    Ok((results, manifest))
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let mut text = serde_json::to_string_pretty(m).map_err(|e| HarnessError::Output {
        what: MANIFEST.into(),
        message: e.to_string(),
    })?;
    text.push('\n');
    let tmp = dir.join(format!(".{MANIFEST}.tmp"));
    let path = dir.join(MANIFEST);
    std::fs::write(&tmp, text).map_err(|e| HarnessError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| HarnessError::io(&path, e))
}
