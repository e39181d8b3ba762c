//! The report of an experiment: plots (SVG and PNG), tables, the environment, and for each
//! plot a few sentences computed from the data, written as `report.md` and a self-contained
//! `report.html` (docs/DESIGN.md section 5: counts, modelled time and measured time side by
//! side, each labelled with where it comes from).
//!
//! - [`build`] turns [`Results`] into a [`Report`]: figures (data only), sentences, tables;
//! - [`plots`] draws a figure with plotters (lines on linear or log axes, bars, CI whiskers);
//! - [`text`] computes the sentences (least-squares slopes, cheapest driver and by how much);
//! - [`markdown`] and [`html`] lay the report out;
//! - [`font`] embeds the font the plots use.
//!
//! The report reads the summaries' medians (and their 95% CIs for whiskers where n > 1);
//! rows are never re-summarised here.

pub mod fidelity;
pub mod font;
pub mod html;
pub mod markdown;
pub mod plots;
pub mod text;

use super::results::{Results, Source, Summary};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Why a report could not be written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report directory could not be created.
    #[error("cannot create the report directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A report file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A report file could not be read back (the PNG, to inline it).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// plotters failed to draw a plot.
    #[error("cannot draw the plot {path}: {message}")]
    Draw {
        /// The plot file.
        path: PathBuf,
        /// What plotters said.
        message: String,
    },
    /// The embedded font could not be registered.
    #[error("the embedded plot font (bench-harness/assets/DejaVuSans.ttf) is not a valid font")]
    Font,
}

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Logarithmic (non-positive values are left off, and the figure says so).
    Log,
}

/// How an axis labels its ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticks {
    /// Plain numbers.
    Number,
    /// Byte sizes (`4 KiB`, `1 MiB`).
    Bytes,
}

/// One point of a line: the median and its 95% CI over `n` repetitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The x value.
    pub x: f64,
    /// The median.
    pub y: f64,
    /// Lower end of the 95% CI.
    pub low: f64,
    /// Upper end of the 95% CI.
    pub high: f64,
    /// Repetitions.
    pub n: usize,
}

/// One line of a figure: one driver, one variant, one metric from one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The driver label.
    pub driver: String,
    /// The variant (`cold`, `warm`, ...) or empty.
    pub variant: String,
    /// The metric.
    pub metric: String,
    /// Where the values come from.
    pub source: Source,
    /// The device profile of modelled values, or empty.
    pub profile: String,
    /// Points sorted by x.
    pub points: Vec<Point>,
}

impl Line {
    /// `modelled (nvme)`, `measured`, `derived`, `counted`.
    pub fn source_label(&self) -> String {
        source_label(self.source, &self.profile)
    }

    /// What the legend says: driver, variant, source (and what is measured when a figure
    /// shows several metrics of one source).
    pub fn label(&self, with_metric: bool) -> String {
        let mut s = self.driver.clone();
        if !self.variant.is_empty() {
            s.push(' ');
            s.push_str(&self.variant);
        }
        if with_metric {
            s.push(' ');
            s.push_str(&metric_label(&self.metric));
        }
        s.push_str(", ");
        s.push_str(&self.source_label());
        s
    }
}

/// `modelled (nvme)`, `measured`, ...
pub fn source_label(source: Source, profile: &str) -> String {
    if source == Source::Modelled && !profile.is_empty() {
        format!("modelled ({profile})")
    } else {
        source.as_str().to_string()
    }
}

/// A metric, for people.
pub fn metric_label(metric: &str) -> String {
    match metric {
        "store_bytes" => "store space".into(),
        "page_cache_bytes" => "page cache".into(),
        "modelled_us" | "measured_us" => "time".into(),
        "ops_per_s" => "operations per second".into(),
        other => other.replace('_', " "),
    }
}

/// One bar of a bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The driver label.
    pub driver: String,
    /// The label under the bar.
    pub label: String,
    /// The value (median) and its CI.
    pub value: Point,
    /// Where the value comes from.
    pub source: Source,
}

/// What a figure draws.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// Lines with markers; colour = driver, line style = variant/source.
    Lines(Vec<Line>),
    /// Bars; colour = driver.
    Bars(Vec<Bar>),
}

/// A figure: the data and how to draw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem of the plot files (`copy-up` -> `copy-up.svg`, `copy-up.png`).
    pub id: String,
    /// The title (says modelled or measured).
    pub title: String,
    /// The x axis label, with its unit.
    pub x_label: String,
    /// The y axis label, with its unit.
    pub y_label: String,
    /// The x axis scale.
    pub x_scale: Scale,
    /// The y axis scale.
    pub y_scale: Scale,
    /// How x ticks are written.
    pub x_ticks: Ticks,
    /// Divide x values by this before drawing (bytes shown in MiB on a linear axis, ...).
    pub x_divisor: f64,
    /// Divide y values by this before drawing (bytes shown in MiB, ...).
    pub y_divisor: f64,
    /// The data.
    pub chart: Chart,
    /// Every driver of the experiment, in order: a driver's colour is its index here, so it
    /// keeps its colour across figures.
    pub drivers: Vec<String>,
}

impl Figure {
    /// Points a log axis cannot show (x or y not positive), which the plot leaves off.
    pub fn left_off(&self) -> usize {
        match &self.chart {
            Chart::Lines(lines) => lines
                .iter()
                .flat_map(|l| &l.points)
                .filter(|p| {
                    (self.x_scale == Scale::Log && p.x <= 0.0)
                        || (self.y_scale == Scale::Log && p.y <= 0.0)
                })
                .count(),
            Chart::Bars(_) => 0,
        }
    }
}

/// One part of the report: a figure (if there is data for it) and its sentences.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The heading.
    pub heading: String,
    /// The figure, if there is anything to draw.
    pub figure: Option<Figure>,
    /// Sentences computed from the data.
    pub sentences: Vec<String>,
}

/// A table: header and rows of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The caption.
    pub title: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Cells.
    pub rows: Vec<Vec<String>>,
}

/// Everything the report says, before layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The title.
    pub title: String,
    /// The opening paragraph.
    pub intro: Vec<String>,
    /// The environment as key/value pairs.
    pub environment: Vec<(String, String)>,
    /// The sections, one per plot.
    pub sections: Vec<Section>,
    /// The tables.
    pub tables: Vec<Table>,
}

/// The files a report wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// Every plot, SVG and PNG.
    pub plots: Vec<PathBuf>,
}

/// Width and height of every plot, in pixels.
pub const PLOT_SIZE: (u32, u32) = (960, 600);

/// Builds the report of `results` and writes it into `dir` (created if missing):
/// `report.md`, `report.html`, and `<figure>.svg` and `<figure>.png` for every figure.
pub fn write_report(results: &Results, dir: &Path) -> Result<Written, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let report = build(results);
    let mut written = Written::default();
    let mut svgs = Vec::new();
    for fig in report.sections.iter().filter_map(|s| s.figure.as_ref()) {
        let svg_path = dir.join(format!("{}.svg", fig.id));
        let svg = plots::render_svg(fig).map_err(|message| ReportError::Draw {
            path: svg_path.clone(),
            message,
        })?;
        write_file(&svg_path, svg.as_bytes())?;
        let png_path = dir.join(format!("{}.png", fig.id));
        plots::render_png(fig, &png_path)?;
        written.plots.push(svg_path);
        written.plots.push(png_path);
        svgs.push((fig.id.clone(), svg));
    }
    let md_path = dir.join("report.md");
    write_file(&md_path, markdown::render(&report).as_bytes())?;
    let html_path = dir.join("report.html");
    write_file(&html_path, html::render(&report, &svgs).as_bytes())?;
    written.markdown = md_path;
    written.html = html_path;
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The drivers of the results, in order of first appearance.
pub fn drivers(results: &Results) -> Vec<String> {
    let mut seen = Vec::<String>::new();
    let names = results
        .summaries
        .iter()
        .map(|s| &s.driver)
        .chain(results.rows.iter().map(|r| &r.driver));
    for d in names {
        if !seen.contains(d) {
            seen.push(d.clone());
        }
    }
    seen
}

/// The profile modelled values are shown for: `nvme` if the experiment has it, else the
/// first profile of the experiment.
pub fn primary_profile(results: &Results) -> Option<String> {
    let mut first = None;
    for s in results
        .summaries
        .iter()
        .filter(|s| s.source == Source::Modelled)
    {
        if s.profile == "nvme" {
            return Some(s.profile.clone());
        }
        if first.is_none() && !s.profile.is_empty() {
            first = Some(s.profile.clone());
        }
    }
    first
}

fn to_point(s: &Summary) -> Point {
    Point {
        x: s.x,
        y: s.median,
        low: s.ci95_low,
        high: s.ci95_high,
        n: s.n,
    }
}

/// The lines of one metric of one workload: one per (driver, variant), drivers in `order`,
/// variants in order of first appearance, points sorted by x. `profile` filters modelled
/// values (ignored when `None`).
pub fn lines(
    results: &Results,
    order: &[String],
    workload: &str,
    metric: &str,
    source: Source,
    profile: Option<&str>,
) -> Vec<Line> {
    let picked: Vec<&Summary> = results
        .summaries
        .iter()
        .filter(|s| {
            s.workload == workload
                && s.metric == metric
                && s.source == source
                && profile.is_none_or(|p| s.profile == p)
                && s.median.is_finite()
                && s.x.is_finite()
        })
        .collect();
    let mut variants = Vec::<&str>::new();
    for s in &picked {
        if !variants.contains(&s.variant.as_str()) {
            variants.push(&s.variant);
        }
    }
    let mut out = Vec::new();
    for driver in order {
        for variant in &variants {
            let mut points: Vec<Point> = picked
                .iter()
                .filter(|s| &s.driver == driver && s.variant == *variant)
                .map(|s| to_point(s))
                .collect();
            if points.is_empty() {
                continue;
            }
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            out.push(Line {
                driver: driver.clone(),
                variant: (*variant).to_string(),
                metric: metric.to_string(),
                source,
                profile: profile.unwrap_or("").to_string(),
                points,
            });
        }
    }
    out
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

/// A power of 1024 and its name that shows `max` bytes as a number of at least 1.
pub fn byte_unit(max: f64) -> (f64, &'static str) {
    let units = [
        (1024.0 * 1024.0 * 1024.0, "GiB"),
        (1024.0 * 1024.0, "MiB"),
        (1024.0, "KiB"),
    ];
    units
        .into_iter()
        .find(|(d, _)| max >= *d)
        .unwrap_or((1.0, "bytes"))
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

fn modelled_title(profile: &Option<String>) -> String {
    match profile {
        Some(p) => format!("modelled ({p})"),
        None => "modelled".into(),
    }
}

/// Builds the report (figures, sentences, tables) from the results.
pub fn build(results: &Results) -> Report {
    let order = drivers(results);
    let profile = primary_profile(results);
    let prof = profile.as_deref();
    let mt = modelled_title(&profile);
    let mut sections = Vec::new();

    // Copy-up: log-log, modelled and measured.
    {
        let mut ls = lines(
            results,
            &order,
            "copy-up",
            "modelled_us",
            Source::Modelled,
            prof,
        );
        ls.extend(lines(
            results,
            &order,
            "copy-up",
            "measured_us",
            Source::Measured,
            None,
        ));
        let fig = line_figure(
            "copy-up",
            format!("Copy-up cost against file size, {mt} and measured"),
            ("file size (bytes)", Ticks::Bytes, Scale::Log),
            "time (µs)",
            Scale::Log,
            ls.clone(),
            &order,
        );
        sections.push(section(
            "Copy-up: the first write to a lower file",
            fig,
            text::copy_up(&ls),
        ));
    }

    // Read latency against depth: one figure per source.
    for (source, suffix) in [(Source::Modelled, ""), (Source::Measured, "-measured")] {
        let (metric, p) = if source == Source::Modelled {
            ("modelled_us", prof)
        } else {
            ("measured_us", None)
        };
        let ls = lines(results, &order, "read-depth", metric, source, p);
        let what = if source == Source::Modelled {
            mt.clone()
        } else {
            "measured".into()
        };
        let y_scale = auto_scale(&ls, false);
        let x_scale = auto_scale(&ls, true);
        let fig = line_figure(
            &format!("read-depth{suffix}"),
            format!("Read latency against layer depth, {what}"),
            ("depth (layers)", Ticks::Number, x_scale),
            "time (µs)",
            y_scale,
            ls.clone(),
            &order,
        );
        if fig.is_some() || source == Source::Modelled {
            sections.push(section(
                &format!("Read latency against depth, {what}"),
                fig,
                text::read_depth(&ls),
            ));
        }
    }

    // Store space against containers (derived from the store).
    {
        let mut ls = lines(
            results,
            &order,
            "sharing",
            "store_bytes",
            Source::Derived,
            None,
        );
        ls.extend(lines(
            results,
            &order,
            "sharing",
            "page_cache_bytes",
            Source::Derived,
            None,
        ));
        let max = ls
            .iter()
            .flat_map(|l| &l.points)
            .map(|p| p.y.max(p.high))
            .fold(0.0, f64::max);
        let (div, unit) = byte_unit(max);
        let x_scale = auto_scale(&ls, true);
        let fig = line_figure(
            "sharing",
            "Store space against the number of containers, derived from the store".into(),
            ("containers", Ticks::Number, x_scale),
            &format!("space ({unit})"),
            Scale::Linear,
            ls.clone(),
            &order,
        )
        .map(|mut f| {
            f.y_divisor = div;
            f
        });
        sections.push(section(
            "Space: containers sharing one image",
            fig,
            text::sharing(&ls),
        ));
    }

    // Snapshot cost against image size.
    {
        let mut ls = lines(
            results,
            &order,
            "snapshot",
            "modelled_us",
            Source::Modelled,
            prof,
        );
        ls.extend(lines(
            results,
            &order,
            "snapshot",
            "measured_us",
            Source::Measured,
            None,
        ));
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
            format!("Snapshot cost against image size, {mt} and measured"),
            (&x_label.0, x_label.1, x_scale),
            "time (µs)",
            auto_scale(&ls, false),
            ls.clone(),
            &order,
        )
        .map(|mut f| {
            if x_scale == Scale::Linear {
                f.x_divisor = x_div;
            }
            f
        });
        sections.push(section(
            "Snapshot: a new layer on an image",
            fig,
            text::snapshot(&ls),
        ));
    }

    // Mixed workload: operations per second, bars.
    {
        let bars = mixed_bars(results, &order);
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
            drivers: order.clone(),
        });
        let mut sentences = text::mixed(&bars);
        let ls = lines(
            results,
            &order,
            "mixed",
            "modelled_us",
            Source::Modelled,
            prof,
        );
        sentences.extend(text::per_driver(&ls, "Time of the whole mixed workload"));
        sections.push(section("Mixed workload", fig, sentences));
    }

    // Metadata operations: sentences only (the table has the numbers).
    {
        let ls = lines(
            results,
            &order,
            "metadata",
            "modelled_us",
            Source::Modelled,
            prof,
        );
        let sentences = text::metadata(&ls);
        if !sentences.is_empty() {
            sections.push(section("Metadata operations", None, sentences));
        }
    }

    // Trace replay: sentences only.
    {
        let mut ls = lines(
            results,
            &order,
            "replay",
            "modelled_us",
            Source::Modelled,
            prof,
        );
        ls.extend(lines(
            results,
            &order,
            "replay",
            "measured_us",
            Source::Measured,
            None,
        ));
        let params: BTreeSet<&str> = results
            .summaries
            .iter()
            .filter(|s| s.workload == "replay" && s.metric.ends_with("_us"))
            .map(|s| s.parameter.as_str())
            .collect();
        let what = params.into_iter().collect::<Vec<_>>().join(", ");
        let sentences = text::per_driver(&ls, &format!("Replaying {what}"));
        if !sentences.is_empty() {
            sections.push(section("Trace replay", None, sentences));
        }
    }

    let mut intro = vec![format!(
        "Experiment `{}`, {} drivers: {}.",
        results.experiment,
        order.len(),
        order.join(", ")
    )];
    intro.push(format!(
        "Every value is labelled with its source: counted (Meter counts, deterministic), \
         modelled (counts through a device profile{}; deterministic), measured (wall time on \
         this machine) or derived (from the store's state). Plots show medians over \
         repetitions, with 95% confidence whiskers where there is more than one.",
        profile
            .as_deref()
            .map(|p| format!(", `{p}` in the plots"))
            .unwrap_or_default()
    ));
    for note in &results.notes {
        intro.push(format!("Note from the run: {note}"));
    }
    if results.environment.quick {
        intro.push("This run was shrunk with `--quick`: fewer sizes and repetitions.".into());
    }

    let mut tables = tables(results, &order, prof);
    let fidelity = fidelity::build(results, &order);
    sections.extend(fidelity.sections);
    tables.extend(fidelity.tables);
    Report {
        title: format!("layerlab report: {}", results.experiment),
        intro,
        environment: environment(results),
        sections,
        tables,
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
    }
}

fn mixed_bars(results: &Results, order: &[String]) -> Vec<Bar> {
    let mut bars = Vec::new();
    let picked: Vec<&Summary> = results
        .summaries
        .iter()
        .filter(|s| s.workload == "mixed" && s.metric == "ops_per_s" && s.median.is_finite())
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

fn environment(results: &Results) -> Vec<(String, String)> {
    let e = &results.environment;
    let mut v = vec![
        ("experiment", results.experiment.clone()),
        ("CPU", e.cpu.clone()),
        ("kernel", e.kernel.clone()),
        ("store filesystem", e.store_filesystem.clone()),
        ("layerlab", e.layerlab_version.clone()),
        ("rustc", e.rustc.clone()),
        ("config hash", e.config_hash.clone()),
        ("seed", e.seed.to_string()),
        ("quick", if e.quick { "yes" } else { "no" }.to_string()),
        ("started (UTC)", e.started.clone()),
    ];
    for (_, val) in &mut v {
        if val.is_empty() {
            *val = "unknown".into();
        }
    }
    v.into_iter().map(|(k, val)| (k.to_string(), val)).collect()
}

fn workloads(results: &Results) -> Vec<String> {
    let mut seen = Vec::<String>::new();
    for s in &results.summaries {
        if !seen.contains(&s.workload) {
            seen.push(s.workload.clone());
        }
    }
    seen
}

fn tables(results: &Results, order: &[String], profile: Option<&str>) -> Vec<Table> {
    let columns: Vec<String> = [
        "driver",
        "parameter",
        "variant",
        "source",
        "metric",
        "unit",
        "n",
        "median",
        "95% CI",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let driver_pos = |d: &str| order.iter().position(|o| o == d).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for w in workloads(results) {
        let of: Vec<&Summary> = results
            .summaries
            .iter()
            .filter(|s| s.workload == w)
            .collect();
        // Counted metrics that are zero for every driver say nothing: leave them to the CSV.
        let mut useful = BTreeSet::new();
        for s in &of {
            if s.source != Source::Counted || s.median != 0.0 || s.max != 0.0 {
                useful.insert((s.source, s.metric.clone()));
            }
        }
        let mut picked: Vec<&Summary> = of
            .into_iter()
            .filter(|s| useful.contains(&(s.source, s.metric.clone())))
            .filter(|s| s.source != Source::Modelled || profile.is_none_or(|p| s.profile == p))
            .collect();
        // Time first (modelled, measured), then derived figures, then counts.
        let rank = |s: Source| match s {
            Source::Modelled => 0,
            Source::Measured => 1,
            Source::Derived => 2,
            Source::Counted => 3,
        };
        picked.sort_by(|a, b| {
            rank(a.source)
                .cmp(&rank(b.source))
                .then(a.metric.cmp(&b.metric))
                .then(a.variant.cmp(&b.variant))
                .then(driver_pos(&a.driver).cmp(&driver_pos(&b.driver)))
                .then(a.x.total_cmp(&b.x))
        });
        let rows = picked
            .iter()
            .map(|s| {
                vec![
                    s.driver.clone(),
                    s.parameter.clone(),
                    s.variant.clone(),
                    source_label(s.source, &s.profile),
                    s.metric.clone(),
                    s.unit.clone(),
                    s.n.to_string(),
                    text::num(s.median),
                    if s.n > 1 {
                        format!("{} – {}", text::num(s.ci95_low), text::num(s.ci95_high))
                    } else {
                        "–".into()
                    },
                ]
            })
            .collect();
        out.push(Table {
            title: format!("Workload `{w}`"),
            columns: columns.clone(),
            rows,
        });
    }
    if let Some(t) = profiles_table(results, order) {
        out.push(t);
    }
    out
}

/// Modelled time of each workload's largest parameter on every device profile.
fn profiles_table(results: &Results, order: &[String]) -> Option<Table> {
    let mut profiles = Vec::<String>::new();
    for s in results
        .summaries
        .iter()
        .filter(|s| s.source == Source::Modelled)
    {
        if !profiles.contains(&s.profile) {
            profiles.push(s.profile.clone());
        }
    }
    if profiles.len() < 2 {
        return None;
    }
    let mut rows = Vec::new();
    for w in workloads(results) {
        let of: Vec<&Summary> = results
            .summaries
            .iter()
            .filter(|s| s.workload == w && s.source == Source::Modelled)
            .collect();
        let Some(max_x) = of.iter().map(|s| s.x).reduce(f64::max) else {
            continue;
        };
        let mut variants = Vec::<&str>::new();
        for s in &of {
            if !variants.contains(&s.variant.as_str()) {
                variants.push(&s.variant);
            }
        }
        for variant in variants {
            for d in order {
                let cells: Vec<Option<&&Summary>> = profiles
                    .iter()
                    .map(|p| {
                        of.iter().find(|s| {
                            &s.driver == d
                                && s.variant == variant
                                && &s.profile == p
                                && s.x == max_x
                        })
                    })
                    .collect();
                let Some(first) = cells.iter().flatten().next() else {
                    continue;
                };
                let mut row = vec![
                    w.clone(),
                    first.parameter.clone(),
                    variant.to_string(),
                    d.clone(),
                ];
                row.extend(
                    cells
                        .iter()
                        .map(|c| c.map(|s| text::num(s.median)).unwrap_or_else(|| "–".into())),
                );
                rows.push(row);
            }
        }
    }
    let mut columns: Vec<String> = ["workload", "parameter", "variant", "driver"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    columns.extend(profiles.iter().map(|p| format!("modelled µs ({p})")));
    Some(Table {
        title: "Modelled time on every device profile (largest parameter of each workload)".into(),
        columns,
        rows,
    })
}
