//! Sweeps: an experiment's `[sweep]` table (lists of values for workload parameters, and
//! `exclude`), expanded into a cartesian product; the points of an experiment (workload,
//! repetition, driver, with the device profiles modelled for it), a cost estimate per point,
//! and deterministic shards balanced by that estimate (configs/README.md, "Sweeps").
//!
//! A point is the unit the runner already works in: one workload on one driver for one
//! repetition, in a fresh store, with the seed `runner::derive_seed(seed, workload,
//! repetition)`. Running any subset of the points gives exactly the rows the whole run gives
//! for them, which is what makes merged shards byte-identical to one run.

use super::config::Experiment;
use super::error::{HarnessError, Result};
use super::results::{Row, Source};
use super::toml_errors::{line_col, toml_error};
use super::workloads::{Workload, WorkloadSpec};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;
use toml::Spanned;

/// An experiment with its sweep expanded: one workload per combination of swept values.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The experiment, its workloads expanded (file order; a swept table's combinations in
    /// the order of its parameters' lists).
    pub exp: Experiment,
    /// Per expanded workload: the swept values it runs with (`write=4KiB zipf=0.5`), or empty.
    pub tags: Vec<String>,
    assignments: Vec<Vec<(String, toml::Value)>>,
    excludes: Vec<Exclude>,
    /// `store_seconds`: the estimated seconds of a fresh store, per driver label.
    store_s: BTreeMap<String, f64>,
}

/// One `exclude` entry: a point (or one of its profiles) matching every key is left out.
#[derive(Debug, Clone, Default)]
struct Exclude {
    driver: Option<String>,
    profile: Option<String>,
    workload: Option<String>,
    params: Vec<(String, toml::Value)>,
}

/// One point of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Its index in the experiment's points (runner order: workload, repetition, driver).
    pub index: usize,
    /// The index of its (expanded) workload.
    pub workload: usize,
    /// The workload kind.
    pub kind: String,
    /// The swept values, or empty.
    pub tag: String,
    /// 0-based repetition.
    pub repetition: u32,
    /// The driver label.
    pub driver: String,
    /// The device profiles its counts are modelled for.
    pub profiles: Vec<String>,
    /// The estimated run time, seconds (see [`estimate_s`]).
    pub estimate_s: f64,
}

impl Point {
    /// A name for people and error messages: `copy-up#0 [write=4KiB] repetition 1 on vfs`.
    pub fn id(&self) -> String {
        let tag = if self.tag.is_empty() {
            String::new()
        } else {
            format!(" [{}]", self.tag)
        };
        format!(
            "{}#{}{tag} repetition {} on {}",
            self.kind, self.workload, self.repetition, self.driver
        )
    }
}

// ----- the table as written -------------------------------------------------------------------

type Values = BTreeMap<String, Spanned<toml::Value>>;
/// Per kind, its swept parameters and their values, in the table's order.
type Lists = BTreeMap<String, Vec<(String, Vec<toml::Value>)>>;

#[derive(Debug, Default)]
struct RawSweep {
    exclude: Vec<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    store_seconds: BTreeMap<String, Spanned<f64>>,
    kinds: Vec<(String, Spanned<Values>)>,
}

impl<'de> Deserialize<'de> for RawSweep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSweep;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of [sweep.KIND] tables and an `exclude` list")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawSweep, A::Error> {
                let mut out = RawSweep::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "exclude" {
                        out.exclude = map.next_value()?;
                    } else if key == "store_seconds" {
                        out.store_seconds = map.next_value()?;
                    } else {
                        out.kinds.push((key, map.next_value()?));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Deserialize)]
struct Doc {
    #[serde(default)]
    sweep: Option<Spanned<RawSweep>>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: &Range<usize>, key: &str, message: impl Into<String>) -> HarnessError {
        let (line, column) = line_col(self.text, span.start);
        HarnessError::Config {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// A swept value as the tag shows it: strings bare, everything else as TOML writes it.
fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ----- loading and expanding ------------------------------------------------------------------

impl Sweep {
    /// Reads an experiment file and expands its sweep (none: the experiment as it is).
    pub fn load(path: impl AsRef<Path>) -> Result<Sweep> {
        let exp = Experiment::load(path)?;
        Sweep::expand(exp)
    }

    /// Expands the `[sweep]` table of a loaded experiment (read from its text).
    pub fn expand(exp: Experiment) -> Result<Sweep> {
        let text = exp.text.clone();
        let file = exp.source.clone();
        let cx = Ctx {
            file: &file,
            text: &text,
        };
        let doc: Doc = toml::from_str(&text).map_err(|e| toml_error(&file, &text, &e))?;
        let Some(raw) = doc.sweep.map(Spanned::into_inner) else {
            let n = exp.workloads.len();
            return Ok(Sweep {
                exp,
                tags: vec![String::new(); n],
                assignments: vec![Vec::new(); n],
                excludes: Vec::new(),
                store_s: BTreeMap::new(),
            });
        };
        let lists = swept_lists(&cx, &exp, &raw)?;
        let mut sweep = expand_workloads(&cx, exp, &raw, &lists)?;
        sweep.excludes = excludes(&cx, &sweep.exp, &raw, &lists)?;
        sweep.store_s = store_seconds(&cx, &sweep.exp, &raw)?;
        Ok(sweep)
    }

    /// The points of the experiment, in runner order, each with its estimate; `quick`: as
    /// `--quick` runs it.
    pub fn points(&self, quick: bool) -> Vec<Point> {
        let exp = if quick && !self.exp.quick {
            self.exp.clone().quick()
        } else {
            self.exp.clone()
        };
        let mut out = Vec::new();
        for (wi, w) in exp.workloads.iter().enumerate() {
            let work = estimate_s(w);
            for rep in 0..exp.repetitions_of(w) {
                for d in &exp.drivers {
                    let store = self.store_s.get(&d.label).copied().unwrap_or(EST_STORE_S);
                    let matches = |x: &&Exclude| self.matches(x, wi, w.kind(), &d.label);
                    if self
                        .excludes
                        .iter()
                        .filter(matches)
                        .any(|x| x.profile.is_none())
                    {
                        continue;
                    }
                    let profiles = exp
                        .profiles
                        .iter()
                        .map(|p| p.name.clone())
                        .filter(|p| {
                            !self
                                .excludes
                                .iter()
                                .filter(matches)
                                .any(|x| x.profile.as_ref() == Some(p))
                        })
                        .collect();
                    out.push(Point {
                        index: out.len(),
                        workload: wi,
                        kind: w.kind().to_string(),
                        tag: self.tags.get(wi).cloned().unwrap_or_default(),
                        repetition: rep,
                        driver: d.label.clone(),
                        profiles,
                        estimate_s: store + work * driver_factor(w.kind(), &d.label),
                    });
                }
            }
        }
        out
    }

    fn matches(&self, x: &Exclude, wi: usize, kind: &str, driver: &str) -> bool {
        let assigned = self.assignments.get(wi).map(Vec::as_slice).unwrap_or(&[]);
        x.driver.as_ref().is_none_or(|d| d == driver)
            && x.workload.as_ref().is_none_or(|k| k == kind)
            && x.params
                .iter()
                .all(|(p, v)| assigned.contains(&(p.clone(), v.clone())))
    }
}

/// The lists of each `[sweep.KIND]` table, checked: a kind the experiment runs, non-empty
/// lists without repeats, no `repetitions`.
fn swept_lists(cx: &Ctx<'_>, exp: &Experiment, raw: &RawSweep) -> Result<Lists> {
    let mut lists: Lists = BTreeMap::new();
    for (kind, table) in &raw.kinds {
        let key = format!("sweep.{kind}");
        if !exp.workloads.iter().any(|w| w.kind() == kind) {
            return Err(cx.err(
                &table.span(),
                &key,
                format!("the experiment has no [[workload.{kind}]] to sweep"),
            ));
        }
        if kind == "replay" {
            return Err(cx.err(&table.span(), &key, "a replay has no parameters to sweep"));
        }
        let mut params = Vec::new();
        for (param, values) in table.get_ref() {
            let key = format!("sweep.{kind}.{param}");
            let list = match values.get_ref() {
                toml::Value::Array(a) if !a.is_empty() => a.clone(),
                _ => {
                    return Err(cx.err(
                        &values.span(),
                        &key,
                        "a non-empty list of the values to sweep",
                    ))
                }
            };
            if param == "repetitions" {
                return Err(cx.err(
                    &values.span(),
                    &key,
                    "repetitions are not swept: set `repetitions`",
                ));
            }
            for (i, v) in list.iter().enumerate() {
                if list[..i].contains(v) {
                    return Err(cx.err(&values.span(), &key, format!("{v} is listed twice")));
                }
            }
            params.push((param.clone(), list));
        }
        lists.insert(kind.clone(), params);
    }
    Ok(lists)
}

/// `store_seconds`: driver labels of the experiment, seconds 0 or more.
fn store_seconds(cx: &Ctx<'_>, exp: &Experiment, raw: &RawSweep) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for (label, secs) in &raw.store_seconds {
        let key = format!("sweep.store_seconds.{label}");
        if !exp.drivers.iter().any(|d| d.label == *label) {
            return Err(cx.err(
                &secs.span(),
                &key,
                format!("no driver labelled '{label}' in the experiment"),
            ));
        }
        if !(secs.get_ref().is_finite() && *secs.get_ref() >= 0.0) {
            return Err(cx.err(&secs.span(), &key, "seconds, 0 or more"));
        }
        out.insert(label.clone(), *secs.get_ref());
    }
    Ok(out)
}

/// Replaces each swept workload by one workload per combination of its kind's lists.
fn expand_workloads(
    cx: &Ctx<'_>,
    mut exp: Experiment,
    raw: &RawSweep,
    lists: &Lists,
) -> Result<Sweep> {
    let mut workloads = Vec::new();
    let mut tags = Vec::new();
    let mut assignments = Vec::new();
    for w in std::mem::take(&mut exp.workloads) {
        let Some(params) = lists.get(w.kind()) else {
            workloads.push(w);
            tags.push(String::new());
            assignments.push(Vec::new());
            continue;
        };
        let span = raw
            .kinds
            .iter()
            .find(|(k, _)| k == w.kind())
            .map(|(_, t)| t.span())
            .unwrap_or(0..0);
        for combo in product(params) {
            let key = format!("sweep.{}", w.kind());
            let spec = with_values(&w, &combo).map_err(|m| cx.err(&span, &key, m))?;
            if let Err((k, m)) = spec.check() {
                return Err(cx.err(&span, &format!("{key}.{k}"), m));
            }
            tags.push(
                combo
                    .iter()
                    .map(|(p, v)| format!("{p}={}", show(v)))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            assignments.push(combo);
            workloads.push(spec);
        }
    }
    exp.workloads = workloads;
    Ok(Sweep {
        exp,
        tags,
        assignments,
        excludes: Vec::new(),
        store_s: BTreeMap::new(),
    })
}

/// Every combination of the lists, the first parameter varying slowest.
fn product(params: &[(String, Vec<toml::Value>)]) -> Vec<Vec<(String, toml::Value)>> {
    let mut out: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for (p, values) in params {
        out = out
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((p.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    out
}

/// The workload with its parameters set to `combo`, through its own TOML form (so every
/// parameter a workload table takes can be swept, and is checked as the table is).
fn with_values(
    w: &WorkloadSpec,
    combo: &[(String, toml::Value)],
) -> std::result::Result<WorkloadSpec, String> {
    fn set<T: Serialize + serde::de::DeserializeOwned>(
        w: &T,
        combo: &[(String, toml::Value)],
    ) -> std::result::Result<T, String> {
        let mut table = toml::Table::try_from(w).map_err(|e| e.to_string())?;
        for (p, v) in combo {
            table.insert(p.clone(), v.clone());
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.message().trim().to_string())
    }
    Ok(match w {
        WorkloadSpec::CopyUp(x) => set(x, combo)?.into(),
        WorkloadSpec::ReadDepth(x) => set(x, combo)?.into(),
        WorkloadSpec::MetadataOps(x) => set(x, combo)?.into(),
        WorkloadSpec::Snapshot(x) => set(x, combo)?.into(),
        WorkloadSpec::Sharing(x) => set(x, combo)?.into(),
        WorkloadSpec::Mixed(x) => set(x, combo)?.into(),
        WorkloadSpec::Replay(_) => return Err("a replay has no parameters to sweep".into()),
    })
}

/// The `exclude` entries, each key checked against the experiment and the sweep.
fn excludes(cx: &Ctx<'_>, exp: &Experiment, raw: &RawSweep, lists: &Lists) -> Result<Vec<Exclude>> {
    raw.exclude
        .iter()
        .map(|entry| exclude(cx, exp, entry, lists))
        .collect()
}

type Entry = Spanned<BTreeMap<String, Spanned<toml::Value>>>;

fn exclude(cx: &Ctx<'_>, exp: &Experiment, entry: &Entry, lists: &Lists) -> Result<Exclude> {
    let map = entry.get_ref();
    if map.is_empty() {
        let msg = "an empty entry excludes everything";
        return Err(cx.err(&entry.span(), "sweep.exclude", msg));
    }
    // a name of the experiment: `known` says whether it is one
    let name = |k: &str, what: &str, known: &dyn Fn(&str) -> bool| -> Result<Option<String>> {
        let Some(v) = map.get(k) else { return Ok(None) };
        let key = format!("sweep.exclude.{k}");
        match v.get_ref() {
            toml::Value::String(s) if known(s) => Ok(Some(s.clone())),
            toml::Value::String(s) => Err(cx.err(
                &v.span(),
                &key,
                format!("no {what} '{s}' in the experiment"),
            )),
            _ => Err(cx.err(&v.span(), &key, "a name, as a string")),
        }
    };
    let mut x = Exclude {
        driver: name("driver", "driver labelled", &|d| {
            exp.drivers.iter().any(|x| x.label == d)
        })?,
        profile: name("profile", "profile", &|p| {
            exp.profiles.iter().any(|x| x.name == p)
        })?,
        workload: name("workload", "workload", &|w| {
            exp.workloads.iter().any(|x| x.kind() == w)
        })?,
        params: Vec::new(),
    };
    for (param, v) in map {
        if ["driver", "profile", "workload"].contains(&param.as_str()) {
            continue;
        }
        let known = lists
            .iter()
            .filter(|(kind, _)| x.workload.as_ref().is_none_or(|w| w == *kind))
            .flat_map(|(_, ps)| ps.iter())
            .any(|(p, values)| p == param && values.contains(v.get_ref()));
        if !known {
            let msg = format!(
                "{} is not a swept value of '{param}' (write it as in its [sweep.KIND] list)",
                v.get_ref()
            );
            return Err(cx.err(&v.span(), &format!("sweep.exclude.{param}"), msg));
        }
        x.params.push((param.clone(), v.get_ref().clone()));
    }
    Ok(x)
}

// ----- cost estimate and shards ---------------------------------------------------------------

/// Bytes per second the estimate assumes for writing and copying files.
const EST_BANDWIDTH: f64 = 200e6;
/// Seconds the estimate assumes per layer created, per file made, per operation.
const EST_LAYER_S: f64 = 0.005;
const EST_FILE_S: f64 = 0.000_2;
const EST_OP_S: f64 = 0.000_05;
/// Seconds of a fresh store (creation and removal) unless `[sweep] store_seconds` says
/// otherwise for a driver.
pub const EST_STORE_S: f64 = 0.05;

/// The estimated seconds of the work of one point of a workload (its fresh store not
/// included) on an average driver: bytes written or copied at `EST_BANDWIDTH`, layers,
/// files and operations at fixed costs; a point multiplies it by its driver's
/// [`driver_factor`]. A pure function of the parameters, so that every shard deals the
/// same points; a guide for balancing shards and for `run --plan`, not a prediction:
/// machines differ.
pub fn estimate_s(w: &WorkloadSpec) -> f64 {
    let bytes = |n: u64| n as f64 / EST_BANDWIDTH;
    let body: f64 = match w {
        WorkloadSpec::CopyUp(c) => c
            .sizes
            .iter()
            .map(|s| bytes(2 * s.0 + c.write.0) + 2.0 * EST_LAYER_S)
            .sum(),
        WorkloadSpec::ReadDepth(r) => r
            .depths
            .iter()
            .map(|&d| {
                f64::from(d) * EST_LAYER_S
                    + bytes(r.file_size.0) * f64::from(r.warm_reads + 2)
                    + f64::from(r.warm_reads) * f64::from(d) * EST_OP_S
            })
            .sum(),
        WorkloadSpec::MetadataOps(m) => m
            .depths
            .iter()
            .map(|&d| f64::from(d) * EST_LAYER_S + 4.0 * (bytes(2 * m.file_size.0) + EST_FILE_S))
            .sum(),
        WorkloadSpec::Snapshot(s) => s
            .sizes
            .iter()
            .map(|b| bytes(b.0) + f64::from(s.files) * EST_FILE_S + 2.0 * EST_LAYER_S)
            .sum(),
        WorkloadSpec::Sharing(s) => {
            let k = s.containers.iter().copied().max().unwrap_or(0);
            bytes(s.bytes.0)
                + f64::from(s.files) * EST_FILE_S
                + f64::from(k) * (EST_LAYER_S + f64::from(s.reads) * EST_OP_S + bytes(s.write.0))
        }
        WorkloadSpec::Mixed(m) => {
            f64::from(m.layers) * EST_LAYER_S
                + f64::from(m.files) * (EST_FILE_S + bytes(m.file_size_median.0))
                + f64::from(m.operations) * EST_OP_S
        }
        WorkloadSpec::Replay(r) => r.steps.len() as f64 * EST_OP_S,
    };
    body
}

/// The environment of the committed standard report: its measured wall time of each
/// (workload, driver) gives the drivers' factors.
const RECORDED_ENVIRONMENT: &str = include_str!("../../../reports/standard/environment.json");

/// How much longer than the average driver `driver` took over the points of workload
/// `kind` in the committed standard report (measured wall time, fresh stores included, on
/// the machine that made it): vfs copies whole layers, the kernel drivers make and mount
/// filesystems. 1 for a workload or driver that report did not run. Only the ratio
/// between drivers is used, so the estimate keeps its unit (seconds from the parameters)
/// while shards balance by what each driver costs.
pub fn driver_factor(kind: &str, driver: &str) -> f64 {
    static FACTORS: std::sync::OnceLock<Vec<(String, String, f64)>> = std::sync::OnceLock::new();
    let factors = FACTORS.get_or_init(|| factors(RECORDED_ENVIRONMENT));
    factors
        .iter()
        .find(|(k, d, _)| k == kind && d == driver)
        .map_or(1.0, |f| f.2)
}

/// Per (workload, driver): its wall seconds over the mean of the workload's drivers, from
/// an environment's JSON text (none when it cannot be read or records no times).
pub fn factors(environment_json: &str) -> Vec<(String, String, f64)> {
    /// The one field of an environment read here.
    #[derive(serde::Deserialize)]
    struct Recorded {
        #[serde(default)]
        driver_seconds: Vec<(String, String, f64)>,
    }
    let Ok(env) = serde_json::from_str::<Recorded>(environment_json) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (kind, _, _) in &env.driver_seconds {
        if out
            .iter()
            .any(|(k, _, _): &(String, String, f64)| k == kind)
        {
            continue;
        }
        let of: Vec<&(String, String, f64)> = env
            .driver_seconds
            .iter()
            .filter(|(k, _, s)| k == kind && *s > 0.0)
            .collect();
        let mean = of.iter().map(|x| x.2).sum::<f64>() / of.len().max(1) as f64;
        if mean > 0.0 {
            out.extend(of.iter().map(|(k, d, s)| (k.clone(), d.clone(), s / mean)));
        }
    }
    out
}

/// Shard `k` (0-based) of `n`: the points' indices, sorted. Points are dealt largest
/// estimate first (ties: lower index first), each to the shard with the least estimated
/// time so far (ties: the lower shard): deterministic, and balanced by the estimate.
pub fn shard(points: &[Point], k: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<&Point> = points.iter().collect();
    order.sort_by(|a, b| {
        b.estimate_s
            .total_cmp(&a.estimate_s)
            .then(a.index.cmp(&b.index))
    });
    let mut load = vec![0.0_f64; n.max(1)];
    let mut mine = Vec::new();
    for p in order {
        let (best, _) = load
            .iter()
            .enumerate()
            .fold(
                (0, f64::INFINITY),
                |(bi, bl), (i, &l)| if l < bl { (i, l) } else { (bi, bl) },
            );
        load[best] += p.estimate_s;
        if best == k {
            mine.push(p.index);
        }
    }
    mine.sort_unstable();
    mine
}

/// `K/N` as `--shard` takes it: 0 <= K < N.
pub fn parse_shard(text: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || {
        format!("--shard '{text}': expected K/N with 0 <= K < N (K counts from 0, as $SLURM_ARRAY_TASK_ID does)")
    };
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let k: usize = k.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

/// The SHA-256 of the points' names and profiles, in order: shards made on machines that
/// see different points (`drivers = "all"` where another driver is available) differ here.
pub fn plan_hash(points: &[Point]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in points {
        h.update(p.id().as_bytes());
        h.update(b"|");
        h.update(p.profiles.join(",").as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

// ----- the runner's view ----------------------------------------------------------------------

/// What a point produced: its index and how many rows (in order) are its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointDone {
    /// The point's index.
    pub index: usize,
    /// Its rows: the next `rows` rows of the run.
    pub rows: usize,
    /// Its notes (parameters a driver could not run).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The runner's hook for a sweep: which points to run, the tag of each workload's rows, the
/// profiles each point is modelled for; records what each point produced.
#[derive(Debug)]
pub struct Selection {
    keys: HashMap<(usize, u32, String), usize>,
    points: Vec<Point>,
    tags: Vec<String>,
    chosen: Option<BTreeSet<usize>>,
    done: Mutex<Vec<PointDone>>,
}

impl Selection {
    /// Every point of the sweep (`chosen = None`) or only those indices.
    pub fn new(sweep: &Sweep, points: Vec<Point>, chosen: Option<BTreeSet<usize>>) -> Selection {
        let keys = points
            .iter()
            .map(|p| ((p.workload, p.repetition, p.driver.clone()), p.index))
            .collect();
        Selection {
            keys,
            points,
            tags: sweep.tags.clone(),
            chosen,
            done: Mutex::new(Vec::new()),
        }
    }

    fn point(&self, wi: usize, rep: u32, driver: &str) -> Option<usize> {
        let i = *self.keys.get(&(wi, rep, driver.to_string()))?;
        self.chosen
            .as_ref()
            .is_none_or(|c| c.contains(&i))
            .then_some(i)
    }

    /// Whether the run includes workload `wi`, repetition `rep` on `driver`.
    pub fn selects(&self, wi: usize, rep: u32, driver: &str) -> bool {
        self.point(wi, rep, driver).is_some()
    }

    /// Called by the runner with a point's rows: tags them with the swept values (in
    /// `variant`), drops modelled rows of excluded profiles, records the point.
    pub fn point_done(
        &self,
        wi: usize,
        rep: u32,
        driver: &str,
        rows: &mut Vec<Row>,
        notes: &[String],
    ) {
        let Some(i) = self.point(wi, rep, driver) else {
            return;
        };
        let profiles = self
            .points
            .get(i)
            .map(|p| p.profiles.as_slice())
            .unwrap_or(&[]);
        rows.retain(|r| r.source != Source::Modelled || profiles.contains(&r.profile));
        for r in rows.iter_mut() {
            self.tag(wi, r);
        }
        if let Ok(mut done) = self.done.lock() {
            done.push(PointDone {
                index: i,
                rows: rows.len(),
                notes: notes.to_vec(),
            });
        }
    }

    /// Tags a row of workload `wi` with its swept values (in its variant).
    pub fn tag(&self, wi: usize, r: &mut Row) {
        if let Some(tag) = self.tags.get(wi).filter(|t| !t.is_empty()) {
            r.variant = if r.variant.is_empty() {
                tag.clone()
            } else {
                format!("{} {tag}", r.variant)
            };
        }
    }

    /// What each point produced, in the order they ran.
    pub fn done(&self) -> Vec<PointDone> {
        self.done.lock().map(|d| d.clone()).unwrap_or_default()
    }
}
