//! The report's sections, one per question: each a figure (data only) and sentences
//! computed from it. Identical lines are merged into one labelled `a = b` before anything
//! is drawn or said.

use super::{
    byte_unit, lines, source_label, text, to_point, Bar, Chart, Figure, Line, Scale, Section, Ticks,
};
use crate::harness::results::{Results, Source, Summary};
use crate::harness::workloads::kind;
use std::collections::BTreeSet;

/// What every section builder reads.
pub struct Ctx<'a> {
    /// The results.
    pub results: &'a Results,
    /// The drivers, in order.
    pub order: &'a [String],
    /// The profile modelled values are shown for.
    pub profile: Option<&'a str>,
}

impl Ctx<'_> {
    /// The lines of one metric of one workload, identical ones merged.
    fn lines(&self, workload: &str, metric: &str, source: Source) -> Vec<Line> {
        let profile = (source == Source::Modelled)
            .then_some(self.profile)
            .flatten();
        merge_identical(lines(
            self.results,
            self.order,
            workload,
            metric,
            source,
            profile,
        ))
    }

    /// The modelled (primary profile) and measured time lines of a workload.
    fn times(&self, workload: &str) -> Vec<Line> {
        let mut ls = self.lines(workload, "modelled_us", Source::Modelled);
        ls.extend(self.lines(workload, "measured_us", Source::Measured));
        ls
    }
}

/// True when two lines show the same values (to 1 part in 10⁹) of the same thing.
fn same(a: &Line, b: &Line) -> bool {
    let eq = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(y.abs());
    a.variant == b.variant
        && a.source == b.source
        && a.metric == b.metric
        && a.profile == b.profile
        && a.points.len() == b.points.len()
        && a.points
            .iter()
            .zip(&b.points)
            .all(|(p, q)| p.x == q.x && eq(p.y, q.y) && eq(p.low, q.low) && eq(p.high, q.high))
}

/// Lines that show the same values merged into one, labelled `overlay2 = aufs`: a line
/// drawn over an identical one would hide it, and a tie is not a ranking.
pub fn merge_identical(lines: Vec<Line>) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    for l in lines {
        match out.iter_mut().find(|o| same(o, &l)) {
            Some(o) => {
                o.driver.push_str(" = ");
                o.driver.push_str(&l.driver);
            }
            None => out.push(l),
        }
    }
    out
}

/// A line figure with the results' small-multiple panels.
fn paneled(ctx: &Ctx<'_>, fig: Option<Figure>) -> Option<Figure> {
    fig.map(|mut f| {
        f.panels = super::panels(ctx.results, ctx.order);
        f
    })
}

/// Every section with data (or a statement that there is none).
pub fn all(ctx: &Ctx<'_>) -> Vec<Section> {
    let mut out = vec![copy_up(ctx)];
    out.extend(read_depth(ctx));
    out.push(space(ctx));
    out.push(snapshot(ctx));
    out.push(mixed(ctx));
    out.extend(metadata(ctx));
    out.extend(replay(ctx));
    out
}

/// Copy-up: log-log, modelled and measured.
fn copy_up(ctx: &Ctx<'_>) -> Section {
    let ls = ctx.times(kind::COPY_UP);
    let fig = line_figure(
        "copy-up",
        format!(
            "Copy-up cost against file size, {} and measured",
            modelled_title(ctx.profile)
        ),
        ("file size (bytes)", Ticks::Bytes, Scale::Log),
        "time (µs)",
        Scale::Log,
        ls.clone(),
        ctx.order,
    );
    section(
        "Copy-up: the first write to a lower file",
        paneled(ctx, fig),
        text::copy_up(&ls),
    )
}

/// Read latency against depth: one figure per source.
fn read_depth(ctx: &Ctx<'_>) -> Vec<Section> {
    let mut out = Vec::new();
    for (source, suffix) in [(Source::Modelled, ""), (Source::Measured, "-measured")] {
        let metric = if source == Source::Modelled {
            "modelled_us"
        } else {
            "measured_us"
        };
        let ls = ctx.lines(kind::READ_DEPTH, metric, source);
        let what = if source == Source::Modelled {
            modelled_title(ctx.profile)
        } else {
            "measured".into()
        };
        let fig = line_figure(
            &format!("read-depth{suffix}"),
            format!("Read latency against layer depth, {what}"),
            ("depth (layers)", Ticks::Number, auto_scale(&ls, true)),
            "time (µs)",
            auto_scale(&ls, false),
            ls.clone(),
            ctx.order,
        );
        if fig.is_some() || source == Source::Modelled {
            out.push(section(
                &format!("Read latency against depth, {what}"),
                paneled(ctx, fig),
                text::read_depth(&ls),
            ));
        }
    }
    out
}

/// Space: the store's disk bytes against containers (the metric defined in
/// [`crate::harness::space`]), with exclusive, logical and shared bytes beside it.
fn space(ctx: &Ctx<'_>) -> Section {
    let ls = ctx.lines(kind::SHARING, "disk_bytes", Source::Measured);
    let max = ls
        .iter()
        .flat_map(|l| &l.points)
        .map(|p| p.y.max(p.high))
        .fold(0.0, f64::max);
    let (div, unit) = byte_unit(max);
    let fig = line_figure(
        "sharing",
        "Disk bytes of the store against the number of containers, measured".into(),
        ("containers", Ticks::Number, auto_scale(&ls, true)),
        &format!("disk bytes ({unit})"),
        Scale::Linear,
        ls.clone(),
        ctx.order,
    )
    .map(|mut f| {
        f.y_divisor = div;
        f
    });
    let mut sentences = vec![
        "Disk bytes: what the store holds on the host's disk, the image included: the blocks \
         allocated to every file under the store's directory (hard links once, mounted views \
         not entered, loop-mounted filesystems synced first), minus those of the empty \
         store. The same definition for every driver. Beside it (tables): exclusive bytes \
         (the sum of every layer's `usage()`: what each layer holds alone, as the driver \
         counts it), logical bytes (the file bytes the containers' views show: what full \
         copies would need) and shared bytes (disk bytes no layer holds alone: shared extents \
         or blocks and the driver's metadata)."
            .to_string(),
    ];
    sentences.extend(text::sharing(&ls));
    let cache = ctx.lines(kind::SHARING, "page_cache_bytes", Source::Derived);
    sentences.extend(text::sharing(&cache).into_iter().take(1));
    section(
        "Space: containers sharing one image",
        paneled(ctx, fig),
        sentences,
    )
}

/// Snapshot cost against image size.
fn snapshot(ctx: &Ctx<'_>) -> Section {
    let ls = ctx.times(kind::SNAPSHOT);
    let x_scale = auto_scale(&ls, true);
    // Sizes on a linear axis read best as round numbers of one unit (MiB, ...).
    let max_x = ls
        .iter()
        .flat_map(|l| &l.points)
        .map(|p| p.x)
        .fold(0.0, f64::max);
    let (x_div, x_unit) = byte_unit(max_x);
    let x_label = match x_scale {
        Scale::Log => ("image size (bytes)".to_string(), Ticks::Bytes),
        Scale::Linear => (format!("image size ({x_unit})"), Ticks::Number),
    };
    let fig = line_figure(
        "snapshot",
        format!(
            "Snapshot cost against image size, {} and measured",
            modelled_title(ctx.profile)
        ),
        (&x_label.0, x_label.1, x_scale),
        "time (µs)",
        auto_scale(&ls, false),
        ls.clone(),
        ctx.order,
    )
    .map(|mut f| {
        if x_scale == Scale::Linear {
            f.x_divisor = x_div;
        }
        f
    });
    section(
        "Snapshot: a new layer on an image",
        paneled(ctx, fig),
        text::snapshot(&ls),
    )
}

/// Mixed workload: operations per second, bars.
fn mixed(ctx: &Ctx<'_>) -> Section {
    let bars = mixed_bars(ctx.results, ctx.order);
    let sources: BTreeSet<Source> = bars.iter().map(|b| b.source).collect();
    let what = sources
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    let fig = (!bars.is_empty()).then(|| Figure {
        id: "mixed".into(),
        title: format!("Mixed workload throughput per driver, {what}"),
        x_label: "driver".into(),
        y_label: "operations per second (ops/s)".into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        x_ticks: Ticks::Number,
        x_divisor: 1.0,
        y_divisor: 1.0,
        chart: Chart::Bars(bars.clone()),
        drivers: ctx.order.to_vec(),
        panels: Vec::new(),
    });
    let mut sentences = text::mixed(&bars);
    let ls = ctx.lines(kind::MIXED, "modelled_us", Source::Modelled);
    sentences.extend(text::per_driver(&ls, "Time of the whole mixed workload"));
    section("Mixed workload", fig, sentences)
}

/// Metadata operations: sentences only (the tables have the numbers).
fn metadata(ctx: &Ctx<'_>) -> Option<Section> {
    let ls = ctx.lines(kind::METADATA, "modelled_us", Source::Modelled);
    let sentences = text::metadata(&ls);
    (!sentences.is_empty()).then(|| section("Metadata operations", None, sentences))
}

/// Trace replay: sentences only.
fn replay(ctx: &Ctx<'_>) -> Option<Section> {
    let ls = ctx.times(kind::REPLAY);
    let params: BTreeSet<&str> = ctx
        .results
        .summaries
        .iter()
        .filter(|s| s.workload == kind::REPLAY && s.metric.ends_with("_us"))
        .map(|s| s.parameter.as_str())
        .collect();
    let what = params.into_iter().collect::<Vec<_>>().join(", ");
    let sentences = text::per_driver(&ls, &format!("Replaying {what}"));
    (!sentences.is_empty()).then(|| section("Trace replay", None, sentences))
}

/// True when the positive values span more than a factor `ratio` (a log axis reads better).
fn wide(values: impl Iterator<Item = f64>, ratio: f64) -> bool {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0_f64);
    for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    hi > 0.0 && lo.is_finite() && hi / lo > ratio
}

fn line_figure(
    id: &str,
    title: String,
    x: (&str, Ticks, Scale),
    y_label: &str,
    y_scale: Scale,
    lines: Vec<Line>,
    drivers: &[String],
) -> Option<Figure> {
    if lines.iter().all(|l| l.points.is_empty()) {
        return None;
    }
    Some(Figure {
        id: id.to_string(),
        title,
        x_label: x.0.to_string(),
        y_label: y_label.to_string(),
        x_scale: x.2,
        y_scale,
        x_ticks: x.1,
        x_divisor: 1.0,
        y_divisor: 1.0,
        chart: Chart::Lines(lines),
        drivers: drivers.to_vec(),
        panels: Vec::new(),
    })
}

fn auto_scale(lines: &[Line], on_x: bool) -> Scale {
    let vals = lines
        .iter()
        .flat_map(|l| &l.points)
        .map(|p| if on_x { p.x } else { p.y });
    if wide(vals, 50.0) {
        Scale::Log
    } else {
        Scale::Linear
    }
}

fn modelled_title(profile: Option<&str>) -> String {
    match profile {
        Some(p) => format!("modelled ({p})"),
        None => "modelled".into(),
    }
}

fn section(heading: &str, figure: Option<Figure>, mut sentences: Vec<String>) -> Section {
    if let Some(f) = &figure {
        let n = f.left_off();
        if n > 0 {
            sentences.push(format!(
                "{n} value{} of zero or less cannot be drawn on the log axis and {} left off \
                 the plot (the tables have them).",
                if n == 1 { "" } else { "s" },
                if n == 1 { "is" } else { "are" },
            ));
        }
    }
    if figure.is_none() && sentences.is_empty() {
        sentences.push("The experiment has no data for this plot.".into());
    }
    Section {
        heading: heading.to_string(),
        figure,
        sentences,
        tables: Vec::new(),
    }
}

fn mixed_bars(results: &Results, order: &[String]) -> Vec<Bar> {
    let mut bars = Vec::new();
    let picked: Vec<&Summary> = results
        .summaries
        .iter()
        .filter(|s| s.workload == kind::MIXED && s.metric == "ops_per_s" && s.median.is_finite())
        .collect();
    let sources: BTreeSet<Source> = picked.iter().map(|s| s.source).collect();
    for driver in order {
        for source in &sources {
            let mut of: Vec<&&Summary> = picked
                .iter()
                .filter(|s| &s.driver == driver && s.source == *source)
                .collect();
            // One bar per driver and source: the first variant/profile of it.
            of.sort_by(|a, b| a.variant.cmp(&b.variant).then(a.profile.cmp(&b.profile)));
            if let Some(s) = of.first() {
                let label = if sources.len() > 1 {
                    format!("{driver} ({})", source_label(s.source, &s.profile))
                } else {
                    driver.clone()
                };
                bars.push(Bar {
                    driver: driver.clone(),
                    label,
                    value: to_point(s),
                    source: *source,
                });
            }
        }
    }
    bars
}
