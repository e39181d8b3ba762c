//! `layerlab run CONFIG [--out DIR] [--quick]`: runs an experiment and writes its results.

use super::output;
use crate::harness::runner;
use crate::harness::shard;
use crate::harness::sweep::Sweep;
use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Loads the experiment, runs it, writes the results, prints where they went.
pub fn run<W: Write>(
    out: &mut W,
    config: &Path,
    dir: Option<PathBuf>,
    quick: bool,
    progress: bool,
) -> Result<()> {
    let sweep = Sweep::load(config)?;
    let dir = dir.unwrap_or_else(|| runner::default_out(&sweep.exp));
    let mut opts = runner::RunOptions::new(&dir);
    opts.quick = quick;
    opts.progress = progress;
    let t = Instant::now();
    let results = shard::run_all(&sweep, &opts)?;
    writeln!(
        out,
        "experiment {}: {} rows ({} summaries) in {:.1} s, written to {}",
        results.experiment,
        results.rows.len(),
        results.summaries.len(),
        t.elapsed().as_secs_f64(),
        dir.display()
    )?;
    let overhead = runner::overhead(&results);
    if !overhead.is_empty() {
        let parts: Vec<String> = overhead
            .iter()
            .map(|(w, mean, max)| format!("{w} {mean:.1}% (max {max:.1}%)"))
            .collect();
        writeln!(
            out,
            "harness overhead (mean per workload): {}",
            parts.join(", ")
        )?;
    }
    output::notes(out, &results.notes)?;
    Ok(())
}
