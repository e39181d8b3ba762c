//! `layerlab fsck [--repair] [--json]`: checks a store (the layer table, each layer's data,
//! the driver's own structures, every byte of every layer) and prints one line per finding
//! and a summary, or one JSON document. The exit code is fsck(8)'s: 0 clean, 1 everything
//! found was repaired, 4 something is left uncorrected (an error of fsck itself: 8).

use super::args::Global;
use super::output;
use anyhow::Result;
use layerlab_drivers::fsck::{CheckReport, Finding, FindingState};
use serde::Serialize;
use std::io::Write;

/// The exit code of `fsck` when it could not run (fsck(8): operational error).
pub const OPERATIONAL_ERROR: u8 = 8;

#[derive(Serialize)]
struct FsckJson<'a> {
    store: String,
    repair: bool,
    exit_code: i32,
    findings: &'a [Finding],
}

/// Runs the check and prints it; returns the exit code.
pub fn fsck<W: Write>(out: &mut W, g: &Global, repair: bool, json: bool) -> Result<u8> {
    let root = g.store_root();
    let report = layerlab_drivers::registry::fsck(&root, repair)?;
    let code = report.exit_code();
    if json {
        output::json(
            out,
            &FsckJson {
                store: root.display().to_string(),
                repair,
                exit_code: code,
                findings: &report.findings,
            },
        )?;
    } else {
        print_human(out, &report)?;
    }
    Ok(u8::try_from(code).unwrap_or(OPERATIONAL_ERROR))
}

fn print_human<W: Write>(out: &mut W, report: &CheckReport) -> Result<()> {
    for f in &report.findings {
        let layer = f
            .layer
            .as_ref()
            .map(|l| format!("layer {l}: "))
            .unwrap_or_default();
        match &f.state {
            FindingState::Uncorrected => {
                writeln!(out, "UNCORRECTED {layer}{}: {}", f.place, f.what)?
            }
            FindingState::Repaired { dropped: None } => {
                writeln!(out, "REPAIRED {layer}{}: {}", f.place, f.what)?
            }
            FindingState::Repaired {
                dropped: Some(d), ..
            } => writeln!(
                out,
                "REPAIRED {layer}{}: {} (dropped: {d})",
                f.place, f.what
            )?,
        }
    }
    let repaired = report
        .findings
        .iter()
        .filter(|f| f.state != FindingState::Uncorrected)
        .count();
    let left = report.findings.len() - repaired;
    if report.is_clean() {
        writeln!(out, "clean: nothing found")?;
    } else {
        writeln!(
            out,
            "{} found: {repaired} repaired, {left} left uncorrected",
            report.findings.len()
        )?;
    }
    Ok(())
}
