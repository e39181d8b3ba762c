//! `layerlab report [--config FILE] [--out DIR] [--quick]`: calibrates this machine (or
//! takes the calibration recorded for it), runs an experiment (the standard one built into
//! the binary when no `--config`) and writes its results and its report.

use super::output;
use crate::harness::config::Experiment;
use crate::harness::shard;
use crate::harness::sweep::Sweep;
use crate::harness::{calibration, report, runner};
use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The size of the bandwidth test file of a calibration made by the report.
const CALIBRATION_FILE: u64 = 64 << 20;

/// Runs the experiment, writes the results (CSV, JSON) and the report beside them, prints
/// where they went.
pub fn report<W: Write>(
    out: &mut W,
    config: Option<&Path>,
    dir: Option<PathBuf>,
    quick: bool,
) -> Result<()> {
    let mut sweep = match config {
        Some(path) => Sweep::load(path)?,
        None => Sweep::expand(Experiment::standard())?,
    };
    let dir = dir.unwrap_or_else(|| runner::default_out(&sweep.exp));
    let mut opts = runner::RunOptions::new(&dir);
    opts.quick = quick;
    std::fs::create_dir_all(&dir)?;
    // The model is held to the kernel with this machine's costs: the calibration recorded
    // for this machine (same fingerprint), else one measured now and recorded. A quick run
    // measures with a small test file and records nothing.
    let recorded = Path::new(calibration::RECORDED);
    opts.calibration = Some(if quick {
        match calibration::recorded(recorded, &dir)? {
            Some(c) => c,
            None => calibration::measure(&dir, 1 << 20)?,
        }
    } else {
        calibration::for_this_machine(recorded, &dir, CALIBRATION_FILE)?
    });
    // the calibrated profile is one more profile of every point: its modelled rows are kept
    if let Some(c) = &opts.calibration {
        sweep.exp.profiles.retain(|p| p.name != c.profile.name);
        sweep.exp.profiles.push(c.profile.clone());
    }
    let results = shard::run_all(&sweep, &opts)?;
    let written = report::write_report(&results, &dir)?;
    writeln!(
        out,
        "report of experiment {}: {}, {} plot files, results beside them in {}",
        results.experiment,
        written.pages(),
        written.plots.len(),
        dir.display()
    )?;
    output::notes(out, &results.notes)?;
    Ok(())
}
