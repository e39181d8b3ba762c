//! The runner: every workload, on every driver, for every repetition, each in a fresh
//! store; samples turned into rows (Counted, Modelled per profile, Measured, Derived).
//!
//! Order: workload, then repetition, then driver, so that drift of the machine over a run
//! is spread over every driver alike.

use super::calibration::Calibration;
use super::config::Experiment;
use super::cost;
use super::env;
use super::error::{HarnessError, Result};
use super::profile::Profile;
use super::results::{Results, Row, Source};
use super::stats;
use super::sweep::Selection;
use super::window;
use super::workloads::{RunCtx, Sample, Workload};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use layerlab_core::Counts;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to run an experiment.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where results go (`reports/<name>/` by default); stores are made here too unless
    /// `store_dir` says otherwise.
    pub out: PathBuf,
    /// Shrink every workload (`--quick`).
    pub quick: bool,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Where to make the temporary stores (default: `out`).
    pub store_dir: Option<PathBuf>,
    /// A sweep's points (`harness::sweep`): which to run, how to tag their rows; `None`:
    /// every workload, repetition and driver, rows as the workloads give them.
    pub sweep: Option<Arc<Selection>>,
    /// This machine's calibrated profile: modelled rows are given for it too, and the
    /// environment records where it came from and its hash.
    pub calibration: Option<Calibration>,
}

impl RunOptions {
    /// Results into `out`, not quick, progress on.
    pub fn new(out: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            out: out.into(),
            quick: false,
            progress: true,
            store_dir: None,
            sweep: None,
            calibration: None,
        }
    }
}

/// The default output directory of an experiment: `reports/<name>/`.
pub fn default_out(exp: &Experiment) -> PathBuf {
    Path::new("reports").join(&exp.name)
}

/// The metric of the harness's own share of the measured phases, percent of the time of
/// the measured operations.
pub const OVERHEAD_METRIC: &str = "harness_overhead";

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of workload `w`, repetition `rep`: the same for every driver.
pub fn derive_seed(seed: u64, w: usize, rep: u32) -> u64 {
    mix(mix(seed ^ mix(w as u64)) ^ u64::from(rep))
}

fn unit_of(counter: &str) -> &'static str {
    if counter.starts_with("bytes_") {
        "bytes"
    } else {
        "count"
    }
}

/// Runs an experiment and returns its rows, summaries and environment.
pub fn run(exp: &Experiment, opts: &RunOptions) -> Result<Results> {
    let mut exp = if opts.quick && !exp.quick {
        exp.clone().quick()
    } else {
        exp.clone()
    };
    if let Some(c) = &opts.calibration {
        exp.profiles.retain(|p| p.name != c.profile.name);
        exp.profiles.push(c.profile.clone());
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| HarnessError::io(&opts.out, e))?;
    let store_parent = opts.store_dir.clone().unwrap_or_else(|| opts.out.clone());
    std::fs::create_dir_all(&store_parent).map_err(|e| HarnessError::io(&store_parent, e))?;
    let mut environment = env::environment(&exp, &store_parent);
    if let Some(c) = &opts.calibration {
        environment.calibration = c.origin.clone();
        environment.calibration_hash = c.hash();
    }

    let selected = |wi: usize, rep: u32, label: &str| {
        opts.sweep
            .as_ref()
            .is_none_or(|s| s.selects(wi, rep, label))
    };
    let total = exp
        .workloads
        .iter()
        .enumerate()
        .flat_map(|(wi, w)| (0..exp.repetitions_of(w)).map(move |rep| (wi, rep)))
        .flat_map(|(wi, rep)| exp.drivers.iter().map(move |d| (wi, rep, d)))
        .filter(|(wi, rep, d)| selected(*wi, *rep, &d.label))
        .count() as u64;
    let bar = if opts.progress && std::io::stderr().is_terminal() {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise:.dim} [{bar:30}] {pos}/{len} {msg}")
        {
            b.set_style(style.progress_chars("=> "));
        }
        b
    } else {
        ProgressBar::hidden()
    };

    let mut rows = Vec::new();
    let mut window = RunWindow::new(opts, &store_parent);
    let mut notes: Vec<String> = Vec::new();
    let mut families: Vec<(String, String)> = Vec::new();
    for (wi, w) in exp.workloads.iter().enumerate() {
        let started = std::time::Instant::now();
        let reps = exp.repetitions_of(w);
        for rep in 0..reps {
            for driver in &exp.drivers {
                if !selected(wi, rep, &driver.label) {
                    continue;
                }
                bar.set_message(format!(
                    "{} on {} (repetition {}/{reps})",
                    w.kind(),
                    driver.label,
                    rep + 1
                ));
                let point_started = std::time::Instant::now();
                let tmp = tempfile::Builder::new()
                    .prefix(".layerlab-run-")
                    .tempdir_in(&store_parent)
                    .map_err(|e| HarnessError::io(&store_parent, e))?;
                let mut ctx = RunCtx {
                    driver,
                    root: tmp.path().join("store"),
                    seed: derive_seed(exp.seed, wi, rep),
                    clock: Default::default(),
                    notes: Vec::new(),
                    semantics: None,
                };
                // a kernel reference's Meter counts no probes or copies: its counted
                // and modelled rows would be zeros posing as figures, so only its measured
                // times are reported; the cost window is probed beside its phases
                let metered =
                    layerlab_drivers::registry::info(&driver.name).is_none_or(|info| info.metered);
                if !metered {
                    ctx.clock.window = window.enter(w.kind(), &driver.label);
                }
                let samples = w.run(&mut ctx);
                window.leave(ctx.clock.window.take());
                let samples = samples?;
                let base = Row {
                    experiment: exp.name.clone(),
                    driver: driver.label.clone(),
                    workload: w.kind().to_string(),
                    parameter: String::new(),
                    x: 0.0,
                    variant: String::new(),
                    repetition: rep,
                    metric: String::new(),
                    profile: String::new(),
                    source: Source::Counted,
                    unit: String::new(),
                    value: 0.0,
                };
                let mut point = Vec::new();
                for s in &samples {
                    let at = Row {
                        repetition: rep * w.rounds() + s.round,
                        ..base.clone()
                    };
                    sample_rows(&exp, &at, s, metered, &mut point);
                    if let Some(c) = s.counts.as_ref().filter(|_| metered) {
                        let mut at = sample_at(&at, s);
                        if let Some(sel) = &opts.sweep {
                            sel.tag(wi, &mut at);
                        }
                        window.priced_later(w.kind(), at, c);
                    }
                }
                let op = ctx.clock.op_time().as_secs_f64();
                let phase = ctx.clock.phase_time().as_secs_f64();
                if op > 0.0 {
                    point.push(Row {
                        parameter: "all".into(),
                        metric: OVERHEAD_METRIC.into(),
                        source: Source::Measured,
                        unit: "%".into(),
                        value: (phase - op).max(0.0) / op * 100.0,
                        ..base.clone()
                    });
                }
                if let Some(sem) = &ctx.semantics {
                    if !families.iter().any(|(l, _)| l == &driver.label) {
                        families.push((driver.label.clone(), family(sem).to_string()));
                    }
                }
                if let Some(s) = &opts.sweep {
                    s.point_done(wi, rep, &driver.label, &mut point, &ctx.notes);
                }
                rows.append(&mut point);
                for n in ctx.notes {
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                }
                drop(tmp);
                let secs = point_started.elapsed().as_secs_f64();
                let kind = w.kind();
                match environment
                    .driver_seconds
                    .iter_mut()
                    .find(|(k, d, _)| k == kind && *d == driver.label)
                {
                    Some(entry) => entry.2 += secs,
                    None => environment.driver_seconds.push((
                        kind.to_string(),
                        driver.label.clone(),
                        secs,
                    )),
                }
                bar.inc(1);
            }
        }
        environment
            .wall_seconds
            .push((w.kind().to_string(), started.elapsed().as_secs_f64()));
    }
    bar.finish_and_clear();
    for p in window.finish(&mut rows) {
        exp.profiles.push(p);
    }
    let summaries = stats::summarise(&rows);
    Ok(Results {
        experiment: exp.name.clone(),
        rows,
        summaries,
        environment,
        notes,
        profiles: exp.profiles.clone(),
        families,
        machines: Vec::new(),
    })
}

/// A driver's family, as the report groups drivers in small multiples: union drivers
/// (a view made of the stack of layers) and copy and snapshot drivers (a whole tree per
/// layer).
pub fn family(s: &layerlab_core::Semantics) -> &'static str {
    match s.provenance {
        layerlab_core::Provenance::Union => "union drivers",
        layerlab_core::Provenance::Own => "copy and snapshot drivers",
    }
}

/// The row of a sample's point: `base` with the sample's parameter, x and variant.
fn sample_at(base: &Row, s: &Sample) -> Row {
    Row {
        parameter: s.parameter.clone(),
        x: s.x,
        variant: s.variant.clone(),
        ..base.clone()
    }
}

fn sample_rows(exp: &Experiment, base: &Row, s: &Sample, metered: bool, rows: &mut Vec<Row>) {
    let at = sample_at(base, s);
    if let Some(c) = s.counts.as_ref().filter(|_| metered) {
        counted_rows(exp, &at, c, rows);
    }
    if let Some(t) = s.time_us {
        rows.push(Row {
            metric: "measured_us".into(),
            source: Source::Measured,
            unit: "µs".into(),
            value: t,
            ..at.clone()
        });
    }
    for e in &s.extra {
        rows.push(Row {
            metric: e.metric.into(),
            source: e.source,
            unit: e.unit.into(),
            value: e.value,
            ..at.clone()
        });
    }
}

fn counted_rows(exp: &Experiment, at: &Row, c: &Counts, rows: &mut Vec<Row>) {
    for (name, v) in c.fields() {
        rows.push(Row {
            metric: name.into(),
            source: Source::Counted,
            unit: unit_of(name).into(),
            value: v as f64,
            ..at.clone()
        });
    }
    for p in &exp.profiles {
        rows.push(modelled_row(at, c, p));
    }
}

/// The modelled time of the counts `c` on the profile `p`, as a row of the point `at`.
fn modelled_row(at: &Row, c: &Counts, p: &Profile) -> Row {
    Row {
        metric: "modelled_us".into(),
        profile: p.name.clone(),
        source: Source::Modelled,
        unit: "µs".into(),
        value: cost::modelled_us(c, p),
        ..at.clone()
    }
}

/// The cost window of a calibrated run ([`window::Window`]): made when the first kernel
/// reference runs, probed beside its phases; at the end, every metered sample of a
/// workload with probes is priced with that workload's window profile too.
struct RunWindow {
    /// Where to make the window, and the calibration it starts from (`None`: no window).
    make: Option<(PathBuf, Profile)>,
    window: Option<window::Window>,
    /// The metered samples, by workload: their points (tagged) and counts.
    samples: Vec<(&'static str, Row, Counts)>,
}

impl RunWindow {
    fn new(opts: &RunOptions, dir: &Path) -> RunWindow {
        RunWindow {
            make: opts
                .calibration
                .as_ref()
                .map(|c| (dir.to_path_buf(), c.profile.clone())),
            window: None,
            samples: Vec::new(),
        }
    }

    /// The window for a kernel reference's run of `workload`, made on first use (`None`
    /// in a run that is not calibrated, or where it cannot be made).
    fn enter(&mut self, workload: &str, driver: &str) -> Option<window::Window> {
        let (dir, profile) = self.make.as_ref()?;
        if self.window.is_none() {
            self.window = window::Window::new(dir, profile).ok();
        }
        let mut w = self.window.take()?;
        w.at(Some((workload, driver)));
        Some(w)
    }

    /// Takes the window back after the run.
    fn leave(&mut self, w: Option<window::Window>) {
        if let Some(mut w) = w {
            w.at(None);
            self.window = Some(w);
        }
    }

    fn priced_later(&mut self, workload: &'static str, at: Row, c: &Counts) {
        if self.make.is_some() {
            self.samples.push((workload, at, *c));
        }
    }

    /// The window profiles; their modelled rows appended to `rows`.
    fn finish(self, rows: &mut Vec<Row>) -> Vec<Profile> {
        let Some(w) = self.window else {
            return Vec::new();
        };
        let profiles = w.profiles();
        w.close();
        for (workload, at, c) in &self.samples {
            if let Some((_, p)) = profiles.iter().find(|(pw, _)| pw == workload) {
                rows.push(modelled_row(at, c, p));
            }
        }
        profiles.into_iter().map(|(_, p)| p).collect()
    }
}

/// The harness overhead per workload: (workload, mean, max) of the `harness_overhead`
/// rows, percent.
pub fn overhead(results: &Results) -> Vec<(String, f64, f64)> {
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for r in results.rows.iter().filter(|r| r.metric == OVERHEAD_METRIC) {
        match out.iter_mut().find(|(w, _)| *w == r.workload) {
            Some((_, v)) => v.push(r.value),
            None => out.push((r.workload.clone(), vec![r.value])),
        }
    }
    out.into_iter()
        .map(|(w, v)| {
            let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
            let max = v.iter().copied().fold(0.0, f64::max);
            (w, mean, max)
        })
        .collect()
}
