//! The fidelity section: the models against the kernel drivers, where the experiment ran
//! them (`kernel-overlay`, `kernel-btrfs`).
//!
//! The kernel drivers count no probes or copies (the kernel does that work), so their
//! modelled rows are zero or absent: for them only **measured** times are used. Beside each
//! kernel curve the section draws the model's **modelled** curve (its Meter counts through
//! the calibrated device profile, `configs/profiles/calibrated.toml` written by `layerlab
//! calibrate`, or `nvme` when there is none) and the model's **measured** curve, and tables
//! give the error per point. Targets (each stated with its verdict, and by how much it is
//! missed):
//!
//! 1. copy-up of files of 1 MiB and more: the overlay2 model's modelled time within 30% of
//!    kernel-overlay's measured time;
//! 2. shape: copy-up linear in size for overlay (kernel and model), flat for btrfs; cold
//!    lookup linear in depth for overlay, warm lookup flat;
//! 3. the overlay2 driver's measured copy-up no slower than 1.2x the kernel's.

use super::text::{least_squares, num};
use super::{Chart, Figure, Line, Point, Scale, Section, Table, Ticks};
use crate::harness::cost::modelled_us;
use crate::harness::profile::Profile;
use crate::harness::results::{Results, Source, Summary};
use layerlab_core::Counts;
use std::collections::BTreeMap;

/// Where `layerlab calibrate` writes its profile by default.
pub const CALIBRATED: &str = "configs/profiles/calibrated.toml";

/// The model each kernel driver is the reference of.
const PAIRS: &[(&str, &str)] = &[("kernel-overlay", "overlay2"), ("kernel-btrfs", "btrfs")];

/// What the fidelity section adds to a report.
#[derive(Debug, Default)]
pub struct Fidelity {
    /// Its sections (figure and sentences).
    pub sections: Vec<Section>,
    /// Its tables (error per point).
    pub tables: Vec<Table>,
}

/// The calibrated profile if there is one, else nvme; with what the report says of it.
pub fn profile() -> Option<(Profile, String)> {
    if let Ok(text) = std::fs::read_to_string(CALIBRATED) {
        if let Ok(p) = Profile::parse(&text, CALIBRATED) {
            return Some((p, format!("the calibrated profile ({CALIBRATED})")));
        }
    }
    let p = Profile::embedded("nvme")?.ok()?;
    Some((
        p,
        "the nvme profile (no calibrated profile: run `layerlab calibrate`)".into(),
    ))
}

fn point(x: f64, y: f64) -> Point {
    Point {
        x,
        y,
        low: y,
        high: y,
        n: 1,
    }
}

fn by_variant(picked: Vec<&Summary>) -> BTreeMap<String, Vec<&Summary>> {
    let mut out: BTreeMap<String, Vec<&Summary>> = BTreeMap::new();
    for s in picked {
        out.entry(s.variant.clone()).or_default().push(s);
    }
    out
}

/// A driver's modelled lines of a workload, its counts through `p` (one per variant).
fn modelled(results: &Results, driver: &str, workload: &str, p: &Profile) -> Vec<Line> {
    let picked: Vec<&Summary> = results
        .summaries
        .iter()
        .filter(|s| s.driver == driver && s.workload == workload && s.source == Source::Counted)
        .collect();
    by_variant(picked)
        .into_iter()
        .map(|(variant, ss)| {
            let mut counts: BTreeMap<u64, Counts> = BTreeMap::new();
            for s in ss {
                let c = counts.entry(s.x.to_bits()).or_default();
                // metrics that are not counts (times, sizes) set nothing
                c.set(&s.metric, s.median.max(0.0) as u64);
            }
            let mut points: Vec<Point> = counts
                .iter()
                .map(|(x, c)| point(f64::from_bits(*x), modelled_us(c, p)))
                .collect();
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            Line {
                driver: driver.to_string(),
                variant,
                metric: "modelled_us".into(),
                source: Source::Modelled,
                profile: p.name.clone(),
                points,
            }
        })
        .collect()
}

/// A driver's measured lines of a workload (one per variant).
fn measured(results: &Results, driver: &str, workload: &str) -> Vec<Line> {
    let picked: Vec<&Summary> = results
        .summaries
        .iter()
        .filter(|s| {
            s.driver == driver
                && s.workload == workload
                && s.source == Source::Measured
                && s.metric == "measured_us"
        })
        .collect();
    by_variant(picked)
        .into_iter()
        .map(|(variant, ss)| {
            let mut points: Vec<Point> = ss
                .iter()
                .map(|s| Point {
                    x: s.x,
                    y: s.median,
                    low: s.ci95_low,
                    high: s.ci95_high,
                    n: s.n,
                })
                .collect();
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            Line {
                driver: driver.to_string(),
                variant,
                metric: "measured_us".into(),
                source: Source::Measured,
                profile: String::new(),
                points,
            }
        })
        .collect()
}

fn at(line: Option<&Line>, x: f64) -> Option<f64> {
    line?.points.iter().find(|p| p.x == x).map(|p| p.y)
}

fn find<'a>(lines: &'a [Line], variant: &str) -> Option<&'a Line> {
    lines.iter().find(|l| l.variant == variant)
}

/// `flat` when the curve spreads by less than 2x, or its fitted rise over the whole range
/// is below its mean level (small times that do not grow with x); `linear` when a straight
/// line (time = a + b x, b > 0) explains it (R² of at least 0.9 on linear axes); `other`
/// otherwise.
pub fn shape(line: &Line) -> &'static str {
    let pts: Vec<(f64, f64)> = line.points.iter().map(|p| (p.x, p.y)).collect();
    if pts.len() < 2 || pts.iter().any(|p| p.1.is_nan() || p.1 <= 0.0) {
        return "no data";
    }
    let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let Some((intercept, slope)) = least_squares(&pts) else {
        return "other";
    };
    let mean = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64;
    let x_range = pts.iter().map(|p| p.0).fold(0.0, f64::max)
        - pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    // flat: little spread, or the fitted rise over the whole range is below the mean level
    if hi / lo < 2.0 || slope * x_range < mean {
        return "flat";
    }
    let ss_tot: f64 = pts.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let ss_res: f64 = pts
        .iter()
        .map(|p| (p.1 - (intercept + slope * p.0)).powi(2))
        .sum();
    let r2 = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        0.0
    };
    if slope > 0.0 && r2 >= 0.9 {
        "linear"
    } else {
        "other"
    }
}

fn pct(model: f64, kernel: f64) -> f64 {
    if kernel > 0.0 {
        (model - kernel) / kernel * 100.0
    } else {
        f64::NAN
    }
}

fn mib(x: f64) -> String {
    super::text::bytes(x)
}

/// Builds the fidelity section from the results; empty when no kernel driver ran.
pub fn build(results: &Results, order: &[String]) -> Fidelity {
    let mut out = Fidelity::default();
    let present = |d: &str| results.summaries.iter().any(|s| s.driver == d);
    let pairs: Vec<(&str, &str)> = PAIRS.iter().copied().filter(|(k, _)| present(k)).collect();
    if pairs.is_empty() {
        return out;
    }
    let Some((prof, prof_note)) = profile() else {
        return out;
    };
    let mut verdicts = Vec::new();
    let mut copy_lines = Vec::new();
    let mut depth_lines = Vec::new();
    let mut copy_rows = Vec::new();
    let mut depth_rows = Vec::new();
    for (kernel, model) in &pairs {
        // copy-up
        let k = measured(results, kernel, "copy-up");
        let mm = modelled(results, model, "copy-up", &prof);
        let ms = measured(results, model, "copy-up");
        let (kl, mml, msl) = (find(&k, ""), find(&mm, ""), find(&ms, ""));
        if let Some(kl) = kl {
            let mut worst_model: Option<(f64, f64)> = None;
            let mut worst_speed: Option<(f64, f64)> = None;
            for p in &kl.points {
                let m = at(mml, p.x);
                let s = at(msl, p.x);
                let err = m.map(|m| pct(m, p.y));
                let ratio = s.map(|s| s / p.y);
                copy_rows.push(vec![
                    format!("{kernel} / {model}"),
                    mib(p.x),
                    num(p.y),
                    m.map_or("-".into(), num),
                    err.map_or("-".into(), |e| format!("{e:+.0}%")),
                    s.map_or("-".into(), num),
                    ratio.map_or("-".into(), |r| format!("{r:.2}x")),
                ]);
                if p.x >= f64::from(1u32 << 20) {
                    if let Some(e) = err.filter(|e| e.is_finite()) {
                        if worst_model.is_none_or(|(_, w)| e.abs() > w.abs()) {
                            worst_model = Some((p.x, e));
                        }
                    }
                }
                if let Some(r) = ratio.filter(|r| r.is_finite()) {
                    if worst_speed.is_none_or(|(_, w)| r > w) {
                        worst_speed = Some((p.x, r));
                    }
                }
            }
            if *model == "overlay2" {
                verdicts.push(match worst_model {
                    Some((x, e)) if e.abs() <= 30.0 => format!(
                        "Target 1 met: for copy-ups of 1 MiB and more the overlay2 model's \
                         modelled time is within 30% of the kernel's measured time (worst \
                         {e:+.0}% at {}).",
                        mib(x)
                    ),
                    Some((x, e)) => format!(
                        "Target 1 MISSED: the overlay2 model's modelled copy-up time is \
                         {e:+.0}% off the kernel's measured time at {} (target: within 30%, \
                         missed by {:.0} percentage points).",
                        mib(x),
                        e.abs() - 30.0
                    ),
                    None => "Target 1 not checked: no copy-up of 1 MiB or more in this run.".into(),
                });
                verdicts.push(match worst_speed {
                    Some((x, r)) if r <= 1.2 => format!(
                        "Target 3 met: the overlay2 driver's measured copy-up is at most \
                         {r:.2}x the kernel's (worst at {}; target 1.2x).",
                        mib(x)
                    ),
                    Some((x, r)) => format!(
                        "Target 3 MISSED: the overlay2 driver's measured copy-up is {r:.2}x \
                         the kernel's at {} (target: no slower than 1.2x, missed by {:.2}x).",
                        mib(x),
                        r - 1.2
                    ),
                    None => "Target 3 not checked: no measured overlay2 copy-up.".into(),
                });
            }
            let want = if *model == "overlay2" {
                "linear"
            } else {
                "flat"
            };
            let ks = shape(kl);
            let ms_ = mml.map_or("no data", shape);
            verdicts.push(format!(
                "Target 2 ({model} copy-up {want} in size): kernel {kernel} measured is \
                 {ks}, the model's modelled curve is {ms_}: {}.",
                if ks == want && ms_ == want {
                    "met".to_string()
                } else {
                    "MISSED".to_string()
                }
            ));
            copy_lines.extend(k.iter().cloned());
            copy_lines.extend(mm.iter().cloned());
            copy_lines.extend(ms.iter().cloned());
        }
        // read latency against depth
        let k = measured(results, kernel, "read-depth");
        let mm = modelled(results, model, "read-depth", &prof);
        let ms = measured(results, model, "read-depth");
        for variant in ["cold", "warm"] {
            let Some(kl) = find(&k, variant) else {
                continue;
            };
            let (mml, msl) = (find(&mm, variant), find(&ms, variant));
            for p in &kl.points {
                let m = at(mml, p.x);
                let s = at(msl, p.x);
                depth_rows.push(vec![
                    format!("{kernel} / {model}"),
                    variant.to_string(),
                    num(p.x),
                    num(p.y),
                    m.map_or("-".into(), num),
                    m.map_or("-".into(), |m| format!("{:+.0}%", pct(m, p.y))),
                    s.map_or("-".into(), num),
                ]);
            }
            if *model == "overlay2" {
                let want = if variant == "cold" { "linear" } else { "flat" };
                let ms_ = mml.map_or("no data", shape);
                let ks = shape(kl);
                verdicts.push(format!(
                    "Target 2 (overlay {variant} lookup {want} in depth): the model's modelled \
                     curve is {ms_} ({}); the kernel's measured curve is {ks}.",
                    if ms_ == want { "met" } else { "MISSED" }
                ));
            }
        }
        depth_lines.extend(k);
        depth_lines.extend(mm);
        depth_lines.extend(ms);
    }
    let mut drivers = order.to_vec();
    for (k, m) in &pairs {
        for d in [k, m] {
            if !drivers.iter().any(|x| x == d) {
                drivers.push((*d).to_string());
            }
        }
    }
    let cold = if results.environment.drop_caches {
        "cold: a new mount or reopened store, after the page cache, dentries and inodes were \
         dropped (`echo 3 > /proc/sys/vm/drop_caches`)"
    } else {
        "cold: a new mount or reopened store; the page cache could not be dropped on this \
         machine, so it is warm"
    };
    let intro = format!(
        "The kernel drivers count no probes or copies (the kernel does that work), so only \
         their measured times are used. Modelled curves use {prof_note}. Read latencies are \
         the workload's first ({cold}) and warm reads."
    );
    let fig = |id: &str, title: &str, x: &str, ticks: Ticks, lines: Vec<Line>| {
        (!lines.is_empty()).then(|| Figure {
            id: id.into(),
            title: title.into(),
            x_label: x.into(),
            y_label: "time (µs)".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Log,
            x_ticks: ticks,
            x_divisor: 1.0,
            y_divisor: 1.0,
            chart: Chart::Lines(lines),
            drivers: drivers.clone(),
        })
    };
    let mut sentences = vec![intro];
    sentences.extend(verdicts);
    out.sections.push(Section {
        heading: "Fidelity: the models against the kernel, copy-up".into(),
        figure: fig(
            "fidelity-copy-up",
            "Copy-up against file size: kernel measured, model modelled and measured",
            "file size (bytes)",
            Ticks::Bytes,
            copy_lines,
        ),
        sentences,
    });
    out.sections.push(Section {
        heading: "Fidelity: the models against the kernel, read latency against depth".into(),
        figure: fig(
            "fidelity-read-depth",
            "Read latency against depth: kernel measured, model modelled and measured",
            "depth (layers)",
            Ticks::Number,
            depth_lines,
        ),
        sentences: vec![
            "Per-point errors are in the fidelity tables (modelled minus kernel measured, \
             over kernel measured)."
                .into(),
        ],
    });
    out.tables.push(Table {
        title: "Fidelity: copy-up, kernel measured against the model (µs)".into(),
        columns: [
            "kernel / model",
            "size",
            "kernel measured",
            "model modelled",
            "error",
            "model measured",
            "model/kernel measured",
        ]
        .map(String::from)
        .to_vec(),
        rows: copy_rows,
    });
    out.tables.push(Table {
        title: "Fidelity: read latency against depth, kernel measured against the model (µs)"
            .into(),
        columns: [
            "kernel / model",
            "variant",
            "depth",
            "kernel measured",
            "model modelled",
            "error",
            "model measured",
        ]
        .map(String::from)
        .to_vec(),
        rows: depth_rows,
    });
    out
}
