//! `layerlab merge DIR... --out DIR [--partial]`: checks that shard directories belong to one
//! experiment (same name, config hash, seed, `--quick` and shard count; no shard or point
//! twice; none missing unless partial), puts their rows back in the order one run gives
//! them (point by point), and writes the results and the report as `layerlab report` does.
//! Measured rows also go to `measured.csv` with the machine each ran on.

use super::error::HarnessError;
use super::output::rows_csv;
use super::report::{self, ReportError, Written};
use super::results::{Environment, MachineSummaries, Results, Row, Source};
use super::shard::{Manifest, MANIFEST};
use super::{output, stats};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No shard directory was given.
    #[error("no shard directories given")]
    Empty,
    /// A shard directory has no manifest (not a shard, or it did not finish).
    #[error("{}: no {MANIFEST}: not a shard directory, or its run did not finish", dir.display())]
    NoManifest {
        /// The directory.
        dir: PathBuf,
    },
    /// A file of a shard could not be read or parsed.
    #[error("{}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Two shards of different experiments (or runs).
    #[error("{} and {}: not one experiment: {field} differs ({a} vs {b})", first.display(), other.display())]
    Mismatch {
        /// The first shard's directory.
        first: PathBuf,
        /// The other shard's directory.
        other: PathBuf,
        /// The field that differs.
        field: &'static str,
        /// Its value in the first shard.
        a: String,
        /// Its value in the other.
        b: String,
    },
    /// One shard given twice.
    #[error("shard {shard}/{shards} given twice: {} and {}", a.display(), b.display())]
    DuplicateShard {
        /// The shard.
        shard: usize,
        /// The number of shards.
        shards: usize,
        /// One directory.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
    /// One point in two shards.
    #[error("point {point} is in two shards: {} and {}", a.display(), b.display())]
    DuplicatePoint {
        /// The point's index.
        point: usize,
        /// One directory.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
    /// Shards missing (and not `--partial`).
    #[error("shard{} {} of {shards} missing ({} given); merge them all, or pass --partial", if missing.len() == 1 { "" } else { "s" }, list(missing), given)]
    MissingShards {
        /// The missing shards.
        missing: Vec<usize>,
        /// The number of shards.
        shards: usize,
        /// How many were given.
        given: usize,
    },
    /// Points missing although every shard is there (a shard's manifest is short).
    #[error(
        "points {} of {total} missing although every shard is given",
        list(missing)
    )]
    MissingPoints {
        /// The missing points.
        missing: Vec<usize>,
        /// The number of points.
        total: usize,
    },
    /// Writing the merged results failed.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// Writing the report failed.
    #[error(transparent)]
    Report(#[from] ReportError),
}

fn list(v: &[usize]) -> String {
    let shown: Vec<String> = v.iter().take(20).map(usize::to_string).collect();
    let more = if v.len() > 20 { ", ..." } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// A shard directory, read.
#[derive(Debug, Clone)]
pub struct ShardDir {
    /// Where it is.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its rows, in the manifest's point order.
    pub rows: Vec<Row>,
    /// Its environment.
    pub environment: Environment,
    /// The device profiles its modelled rows used.
    pub profiles: Vec<super::profile::Profile>,
    /// Its drivers' families (the report's panels).
    pub families: Vec<(String, String)>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, MergeError> {
    let text = std::fs::read_to_string(path).map_err(|e| MergeError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| MergeError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Reads a shard directory: its manifest, rows and environment.
pub fn read_shard(dir: &Path) -> Result<ShardDir, MergeError> {
    if !dir.join(MANIFEST).is_file() {
        return Err(MergeError::NoManifest {
            dir: dir.to_path_buf(),
        });
    }
    let manifest: Manifest = read_json(&dir.join(MANIFEST))?;
    let rows: Vec<Row> = read_json(&dir.join("results.json"))?;
    let environment = read_json(&dir.join("environment.json"))?;
    let profiles = read_json(&dir.join("profiles.json"))?;
    let families = read_json(&dir.join("families.json"))?;
    let counted: usize = manifest.points.iter().map(|p| p.rows).sum();
    if counted != rows.len() {
        return Err(MergeError::Read {
            path: dir.join("results.json"),
            message: format!("{} rows, the manifest accounts for {counted}", rows.len()),
        });
    }
    Ok(ShardDir {
        dir: dir.to_path_buf(),
        manifest,
        rows,
        environment,
        profiles,
        families,
    })
}

/// The merged experiment.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The results, rows in the order one run gives them.
    pub results: Results,
    /// The shards merged, by shard index.
    pub shards: Vec<ShardDir>,
    /// Shards missing (only with `partial`).
    pub missing: Vec<usize>,
    /// Points the merged shards ran, and of how many.
    pub points: (usize, usize),
}

fn same(first: &ShardDir, other: &ShardDir) -> Result<(), MergeError> {
    let (a, b) = (&first.manifest, &other.manifest);
    let fields: [(&'static str, String, String); 7] = [
        ("experiment", a.experiment.clone(), b.experiment.clone()),
        ("config hash", a.config_hash.clone(), b.config_hash.clone()),
        ("seed", a.seed.to_string(), b.seed.to_string()),
        ("--quick", a.quick.to_string(), b.quick.to_string()),
        ("shard count", a.shards.to_string(), b.shards.to_string()),
        (
            "point count",
            a.points_total.to_string(),
            b.points_total.to_string(),
        ),
        (
            "points (drivers available differ?)",
            a.plan_hash.clone(),
            b.plan_hash.clone(),
        ),
    ];
    match fields.into_iter().find(|(_, x, y)| x != y) {
        Some((field, a, b)) => Err(MergeError::Mismatch {
            first: first.dir.clone(),
            other: other.dir.clone(),
            field,
            a,
            b,
        }),
        None => Ok(()),
    }
}

/// Checks the shards and merges their rows (nothing is written).
pub fn merge(shards: Vec<ShardDir>, partial: bool) -> Result<Merged, MergeError> {
    let first = shards.first().ok_or(MergeError::Empty)?.clone();
    let n = first.manifest.shards;
    let total = first.manifest.points_total;
    let mut by_index: BTreeMap<usize, ShardDir> = BTreeMap::new();
    for s in shards {
        same(&first, &s)?;
        if let Some(prev) = by_index.get(&s.manifest.shard) {
            return Err(MergeError::DuplicateShard {
                shard: s.manifest.shard,
                shards: n,
                a: prev.dir.clone(),
                b: s.dir.clone(),
            });
        }
        by_index.insert(s.manifest.shard, s);
    }
    let missing: Vec<usize> = (0..n).filter(|k| !by_index.contains_key(k)).collect();
    if !missing.is_empty() && !partial {
        return Err(MergeError::MissingShards {
            missing,
            shards: n,
            given: by_index.len(),
        });
    }
    // point -> (directory, its rows, its notes)
    let mut points: BTreeMap<usize, (&Path, &[Row], &[String])> = BTreeMap::new();
    for s in by_index.values() {
        let mut at = 0;
        for p in &s.manifest.points {
            let rows = s.rows.get(at..at + p.rows).unwrap_or(&[]);
            at += p.rows;
            if let Some((a, _, _)) = points.insert(p.index, (&s.dir, rows, &p.notes)) {
                return Err(MergeError::DuplicatePoint {
                    point: p.index,
                    a: a.to_path_buf(),
                    b: s.dir.clone(),
                });
            }
        }
    }
    let absent: Vec<usize> = (0..total).filter(|i| !points.contains_key(i)).collect();
    if missing.is_empty() && !absent.is_empty() {
        return Err(MergeError::MissingPoints {
            missing: absent,
            total,
        });
    }
    let mut rows = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for (_, r, ns) in points.values() {
        rows.extend_from_slice(r);
        for n in ns.iter() {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
    }
    let done = points.len();
    let shards: Vec<ShardDir> = by_index.into_values().collect();
    let mut environment = shards
        .first()
        .map(|s| s.environment.clone())
        .unwrap_or_default();
    if let Some(earliest) = shards.iter().map(|s| s.manifest.started.clone()).min() {
        environment.started = earliest;
    }
    let summaries = stats::summarise(&rows);
    let profiles = shards
        .first()
        .map(|s| s.profiles.clone())
        .unwrap_or_default();
    let mut families: Vec<(String, String)> = Vec::new();
    for f in shards.iter().flat_map(|s| &s.families) {
        if !families.contains(f) {
            families.push(f.clone());
        }
    }
    let machines = by_machine(&shards);
    Ok(Merged {
        results: Results {
            experiment: first.manifest.experiment.clone(),
            rows,
            summaries,
            environment,
            notes,
            profiles,
            families,
            machines,
        },
        shards,
        missing,
        points: (done, total),
    })
}

/// Each machine's measured rows summarised apart, where the shards ran on more than one
/// machine (machines in the order of their first shard); empty otherwise.
fn by_machine(shards: &[ShardDir]) -> Vec<MachineSummaries> {
    let mut machines: Vec<&str> = Vec::new();
    for s in shards {
        if !machines.contains(&s.manifest.machine.as_str()) {
            machines.push(&s.manifest.machine);
        }
    }
    if machines.len() < 2 {
        return Vec::new();
    }
    machines
        .into_iter()
        .map(|m| {
            let rows: Vec<Row> = shards
                .iter()
                .filter(|s| s.manifest.machine == m)
                .flat_map(|s| s.rows.iter().filter(|r| r.source == Source::Measured))
                .cloned()
                .collect();
            MachineSummaries {
                machine: m.to_string(),
                summaries: stats::summarise(&rows),
            }
        })
        .collect()
}

/// A CSV writer's text, or the error of the file it is for.
fn csv_text(what: &str, w: csv::Writer<Vec<u8>>) -> Result<String, HarnessError> {
    let err = |message: String| HarnessError::Output {
        what: what.to_string(),
        message,
    };
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| err(e.to_string()))
}

/// The measured rows with the machine each ran on, as CSV (`measured.csv`): the columns of
/// `results.csv`, then `machine`.
pub fn measured_csv(merged: &Merged) -> Result<String, HarnessError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = false;
    for s in &merged.shards {
        let measured: Vec<Row> = s
            .rows
            .iter()
            .filter(|r| r.source == Source::Measured)
            .cloned()
            .collect();
        let text = rows_csv(&measured)?;
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let err = |e: csv::Error| HarnessError::Output {
            what: "measured.csv".into(),
            message: e.to_string(),
        };
        if !header && !measured.is_empty() {
            let mut h: Vec<String> = r.headers().map_err(err)?.iter().map(String::from).collect();
            h.push("machine".into());
            w.write_record(&h).map_err(err)?;
            header = true;
        }
        for rec in r.records() {
            let mut rec: Vec<String> = rec.map_err(err)?.iter().map(String::from).collect();
            rec.push(s.manifest.machine.clone());
            w.write_record(&rec).map_err(err)?;
        }
    }
    csv_text("measured.csv", w)
}

/// The shards as `shards.csv` lists them: shard, machine, points, wall time, directory.
pub fn shards_csv(merged: &Merged) -> Result<String, HarnessError> {
    let err = |e: csv::Error| HarnessError::Output {
        what: "shards.csv".into(),
        message: e.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "shard", "shards", "machine", "points", "wall_s", "started", "dir",
    ])
    .map_err(err)?;
    for d in &merged.shards {
        let m = &d.manifest;
        w.write_record([
            m.shard.to_string(),
            m.shards.to_string(),
            m.machine.clone(),
            m.points.len().to_string(),
            format!("{:.3}", m.wall_s),
            m.started.to_string(),
            d.dir.display().to_string(),
        ])
        .map_err(err)?;
    }
    csv_text("shards.csv", w)
}

/// Writes the merged results, `measured.csv`, `shards.csv` and the report into `out`.
pub fn write(merged: &Merged, out: &Path) -> Result<Written, MergeError> {
    output::write_results(&merged.results, out)?;
    for (name, text) in [
        ("measured.csv", measured_csv(merged)?),
        ("shards.csv", shards_csv(merged)?),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| HarnessError::io(&path, e))?;
    }
    Ok(report::write_report(&merged.results, out)?)
}
