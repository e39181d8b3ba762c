//! Writes an experiment's results: `results.csv`/`.json` (every row), `summary.csv`/`.json`
//! (over repetitions), `environment.json`, `notes.txt` (skipped parameters), and
//! `modelled.csv`: only the deterministic rows (Counted, Modelled, Derived), sorted, so that
//! the same config and seed give byte-identical files on any machine.

use super::error::{HarnessError, Result};
use super::results::{Results, Row, Summary};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// A CSV field, quoted when it has a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A number as CSV and JSON write it: Rust's shortest round-trip form (`3`, `0.5`, `1e-7`).
pub fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

const ROW_HEADER: &str =
    "experiment,driver,workload,parameter,x,variant,repetition,metric,profile,source,unit,value";

fn row_line(r: &Row) -> String {
    [
        csv_field(&r.experiment),
        csv_field(&r.driver),
        csv_field(&r.workload),
        csv_field(&r.parameter),
        num(r.x),
        csv_field(&r.variant),
        r.repetition.to_string(),
        csv_field(&r.metric),
        csv_field(&r.profile),
        r.source.as_str().to_string(),
        csv_field(&r.unit),
        num(r.value),
    ]
    .join(",")
}

/// The rows as CSV, header first.
pub fn rows_csv(rows: &[Row]) -> String {
    let mut s = String::with_capacity(rows.len() * 96);
    s.push_str(ROW_HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(&row_line(r));
        s.push('\n');
    }
    s
}

/// The summaries as CSV, header first.
pub fn summary_csv(sums: &[Summary]) -> String {
    let mut s = String::from(
        "experiment,driver,workload,parameter,x,variant,metric,profile,source,unit,n,median,min,max,mean,ci95_low,ci95_high\n",
    );
    for m in sums {
        let _ = writeln!(
            s,
            "{}",
            [
                csv_field(&m.experiment),
                csv_field(&m.driver),
                csv_field(&m.workload),
                csv_field(&m.parameter),
                num(m.x),
                csv_field(&m.variant),
                csv_field(&m.metric),
                csv_field(&m.profile),
                m.source.as_str().to_string(),
                csv_field(&m.unit),
                m.n.to_string(),
                num(m.median),
                num(m.min),
                num(m.max),
                num(m.mean),
                num(m.ci95_low),
                num(m.ci95_high),
            ]
            .join(",")
        );
    }
    s
}

/// The deterministic rows (Counted, Modelled, Derived), sorted by workload, driver, x,
/// parameter, variant, metric, profile, source and repetition, as CSV.
pub fn modelled_csv(rows: &[Row]) -> String {
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
    let mut s = String::with_capacity(det.len() * 96);
    s.push_str(ROW_HEADER);
    s.push('\n');
    for r in det {
        s.push_str(&row_line(r));
        s.push('\n');
    }
    s
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

/// Writes every output file of `results` into `dir` (created if missing).
pub fn write_results(results: &Results, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
    write(dir, "results.csv", &rows_csv(&results.rows))?;
    write(dir, "results.json", &json("results.json", &results.rows)?)?;
    write(dir, "summary.csv", &summary_csv(&results.summaries))?;
    write(
        dir,
        "summary.json",
        &json("summary.json", &results.summaries)?,
    )?;
    write(
        dir,
        "environment.json",
        &json("environment.json", &results.environment)?,
    )?;
    write(dir, "modelled.csv", &modelled_csv(&results.rows))?;
    let mut notes = String::new();
    for n in &results.notes {
        notes.push_str(n);
        notes.push('\n');
    }
    write(dir, "notes.txt", &notes)?;
    Ok(())
}
