//! `layerlab report [--config FILE] [--out DIR] [--quick]`: runs an experiment (the standard
//! one built into the binary when no `--config`) and writes its results and its report.

use crate::harness::config::Experiment;
use crate::harness::shard;
use crate::harness::sweep::Sweep;
use crate::harness::{output, report, runner};
use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs the experiment, writes the results (CSV, JSON) and the report beside them, prints
/// where they went.
pub fn report<W: Write>(
    out: &mut W,
    config: Option<&Path>,
    dir: Option<PathBuf>,
    quick: bool,
) -> Result<()> {
    let sweep = match config {
        Some(path) => Sweep::load(path)?,
        None => Sweep::expand(Experiment::standard())?,
    };
    let dir = dir.unwrap_or_else(|| runner::default_out(&sweep.exp));
    let mut opts = runner::RunOptions::new(&dir);
    opts.quick = quick;
    opts.sweep = Some(shard::selection_all(&sweep, quick));
    let results = runner::run(&sweep.exp, &opts)?;
    output::write_results(&results, &dir)?;
    let written = report::write_report(&results, &dir)?;
    writeln!(
        out,
        "report of experiment {}: {} and {}, {} plot files, results beside them in {}",
        results.experiment,
        written.markdown.display(),
        written.html.display(),
        written.plots.len(),
        dir.display()
    )?;
    for n in &results.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}
