//! Writes an experiment's results: `results.csv`/`.json` (every row), `summary.csv`/`.json`
//! (over repetitions), `environment.json`, `notes.txt` (skipped parameters), and
//! `modelled.csv`: only the deterministic rows (Counted, Modelled, Derived), sorted, so that
//! the same config and seed give byte-identical files on any machine; `profiles.csv`/`.json`:
//! the device profiles the modelled rows use, the calibrated one among them.

use super::error::{HarnessError, Result};
use super::results::{Results, Row, Summary};
use serde::Serialize;
use std::path::Path;

/// Records as CSV (the `csv` crate: header from the field names, quoting where needed).
fn to_csv<'a, T: Serialize + 'a>(
    what: &str,
    records: impl IntoIterator<Item = &'a T>,
) -> Result<String> {
    let err = |message: String| HarnessError::Output {
        what: what.to_string(),
        message,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in records {
        w.serialize(r).map_err(|e| err(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| err(e.to_string()))
}

/// The rows as CSV, header first.
pub fn rows_csv(rows: &[Row]) -> Result<String> {
    to_csv("results.csv", rows)
}

/// The summaries as CSV, header first.
pub fn summary_csv(sums: &[Summary]) -> Result<String> {
    to_csv("summary.csv", sums)
}

/// The deterministic rows (Counted, Modelled, Derived), sorted by workload, driver, x,
/// parameter, variant, metric, profile, source and repetition, as CSV.
pub fn modelled_csv(rows: &[Row]) -> Result<String> {
    let mut det: Vec<&Row> = rows.iter().filter(|r| r.source.deterministic()).collect();
    det.sort_by(|a, b| {
        a.workload
            .cmp(&b.workload)
            .then_with(|| a.driver.cmp(&b.driver))
            .then_with(|| a.x.total_cmp(&b.x))
            .then_with(|| a.parameter.cmp(&b.parameter))
            .then_with(|| a.variant.cmp(&b.variant))
            .then_with(|| a.metric.cmp(&b.metric))
            .then_with(|| a.profile.cmp(&b.profile))
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| a.repetition.cmp(&b.repetition))
    });
    to_csv("modelled.csv", det)
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| HarnessError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| HarnessError::io(&path, e))
}

fn json<T: Serialize + ?Sized>(what: &str, v: &T) -> Result<String> {
    serde_json::to_string_pretty(v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| HarnessError::Output {
            what: what.to_string(),
            message: e.to_string(),
        })
}

/// Writes `v` as pretty JSON to `dir/name`.
fn write_json<T: Serialize + ?Sized>(dir: &Path, name: &str, v: &T) -> Result<()> {
    write(dir, name, &json(name, v)?)
}

/// Writes every output file of `results` into `dir` (created if missing).
pub fn write_results(results: &Results, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
    write(dir, "results.csv", &rows_csv(&results.rows)?)?;
    write_json(dir, "results.json", &results.rows)?;
    write(dir, "summary.csv", &summary_csv(&results.summaries)?)?;
    write_json(dir, "summary.json", &results.summaries)?;
    write_json(dir, "environment.json", &results.environment)?;
    write(dir, "modelled.csv", &modelled_csv(&results.rows)?)?;
    write(
        dir,
        "profiles.csv",
        &to_csv("profiles.csv", &results.profiles)?,
    )?;
    write_json(dir, "profiles.json", &results.profiles)?;
    write_json(dir, "families.json", &results.families)?;
    if !results.machines.is_empty() {
        // shards merged from several machines: each machine's measured summaries
        write_json(dir, "machines.json", &results.machines)?;
    }
    let mut notes = String::new();
    for n in &results.notes {
        notes.push_str(n);
        notes.push('\n');
    }
    write(dir, "notes.txt", &notes)?;
    Ok(())
}
