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
pub mod png_text;
pub mod rank;
pub mod scorecard;
pub mod sections;
pub mod tables;
pub mod text;

use super::results::{Results, Source, Summary};
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
    /// Every repetition of its measured points, `(x, value)` (drawn as dots beside the
    /// medians); empty for exact values.
    pub runs: Vec<(f64, f64)>,
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
    /// Small multiples: one panel per (title, drivers), on the same axes; empty for one
    /// panel of every line.
    pub panels: Vec<(String, Vec<String>)>,
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

/// One part of the report: a figure (if there is data for it), its sentences, and tables
/// that belong to it (the scorecard, the fidelity table).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The heading.
    pub heading: String,
    /// The figure, if there is anything to draw.
    pub figure: Option<Figure>,
    /// Sentences computed from the data.
    pub sentences: Vec<String>,
    /// Tables shown in the section, after the sentences.
    pub tables: Vec<Table>,
}

/// A table: header and rows of text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// The caption.
    pub title: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Cells.
    pub rows: Vec<Vec<String>>,
    /// Each cell's tier (0 = best), for colour; empty when the table ranks nothing, else the
    /// shape of `rows`.
    pub tiers: Vec<Vec<Option<usize>>>,
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

impl Written {
    /// The two pages as the commands name them: `DIR/report.md and DIR/report.html`.
    pub fn pages(&self) -> String {
        format!("{} and {}", self.markdown.display(), self.html.display())
    }
}

/// Width and height of every plot, in pixels.
pub const PLOT_SIZE: (u32, u32) = (960, 720);

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

/// The panels of the small multiples: one per driver family (in order of first appearance),
/// when the results have two families or more.
pub fn panels(results: &Results, order: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for d in order {
        let Some((_, fam)) = results.families.iter().find(|(l, _)| l == d) else {
            continue;
        };
        match out.iter_mut().find(|(f, _)| f == fam) {
            Some((_, ds)) => ds.push(d.clone()),
            None => out.push((fam.clone(), vec![d.clone()])),
        }
    }
    if out.len() < 2 {
        out.clear();
    }
    out
}

/// A summary as a point: its median and interval.
pub fn to_point(s: &Summary) -> Point {
    Point {
        x: s.x,
        y: s.median,
        low: s.ci_low,
        high: s.ci_high,
        n: s.n,
    }
}

/// The values of every repetition of the measured point `s`, from the rows.
fn runs_of(results: &Results, s: &Summary) -> Vec<(f64, f64)> {
    if s.source != Source::Measured {
        return Vec::new();
    }
    results
        .rows
        .iter()
        .filter(|r| r.point() == s.point())
        .map(|r| (r.x, r.value))
        .filter(|(_, v)| v.is_finite())
        .collect()
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
        .summaries_of(workload, metric)
        .filter(|s| {
            s.source == source
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
            let runs = picked
                .iter()
                .filter(|s| &s.driver == driver && s.variant == *variant)
                .flat_map(|s| runs_of(results, s))
                .collect();
            out.push(Line {
                runs,
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

/// Builds the report (figures, sentences, tables) from the results: the scorecard and
/// its verdict first, then one section per question, the fidelity section, and the data
/// tables.
pub fn build(results: &Results) -> Report {
    let order = drivers(results);
    let profile = primary_profile(results);
    let ctx = sections::Ctx {
        results,
        order: &order,
        profile: profile.as_deref(),
    };
    let mut sections = Vec::new();
    if let Some((table, verdict)) = scorecard::build(results, &order) {
        sections.push(Section {
            heading: "Scorecard and verdict".into(),
            figure: None,
            sentences: verdict,
            tables: vec![table],
        });
    }
    sections.extend(sections::all(&ctx));
    sections.extend(fidelity::build(results, &order).sections);
    if !results.machines.is_empty() {
        let names: Vec<String> = results
            .machines
            .iter()
            .map(|m| format!("`{}`", m.machine))
            .collect();
        sections.push(Section {
            heading: "Measured results by machine".into(),
            figure: None,
            sentences: vec![format!(
                "The shards ran on {} machines ({}). Counted and modelled values do not \
                 depend on the machine; measured ones do, so each machine's measured values \
                 are given apart here (the machine of every measured row is in \
                 `measured.csv`). Elsewhere in this report measured values pool the \
                 machines' repetitions: read them as a mix, not as one machine.",
                names.len(),
                names.join(", ")
            )],
            tables: tables::by_machine(results, &order),
        });
    }
    Report {
        title: format!("layerlab report: {}", results.experiment),
        intro: intro(results, &order, profile.as_deref()),
        environment: environment(results),
        sections,
        tables: tables::all(results, &order, profile.as_deref()),
    }
}

fn intro(results: &Results, order: &[String], profile: Option<&str>) -> Vec<String> {
    let mut intro = vec![format!(
        "Experiment `{}`, {} drivers: {}.",
        results.experiment,
        order.len(),
        order.join(", ")
    )];
    intro.push(format!(
        "Every value is labelled with its source: counted (Meter counts, deterministic), \
         modelled (counts through a device profile{}; deterministic), measured (wall time or \
         disk space on this machine) or derived (from the store's state). Measured values are \
         medians over repetitions with a distribution-free interval of the median (the \
         order-statistic interval: two measured values, so never below zero); drivers whose \
         intervals overlap are called not distinguishable and share a tier, never ranked.",
        profile
            .map(|p| format!(", `{p}` in the plots"))
            .unwrap_or_default()
    ));
    for note in &results.notes {
        intro.push(format!("Note from the run: {note}"));
    }
    if results.environment.quick {
        intro.push("This run was shrunk with `--quick`: fewer sizes and repetitions.".into());
    }
    intro
}

fn environment(results: &Results) -> Vec<(String, String)> {
    let e = &results.environment;
    let mut v = vec![
        ("experiment", results.experiment.clone()),
        ("CPU", e.cpu.clone()),
        ("kernel", e.kernel.clone()),
        ("memory", e.memory.clone()),
        (
            "load average at the start (1, 5, 15 min)",
            e.load_average.clone(),
        ),
        ("disk", e.disk.clone()),
        ("store filesystem", e.store_filesystem.clone()),
        ("store mount options", e.store_mount_options.clone()),
        (
            "caches dropped before cold reads",
            if e.drop_caches {
                "yes"
            } else {
                "no (not root)"
            }
            .to_string(),
        ),
        ("calibration", e.calibration.clone()),
        ("calibrated profile SHA-256", e.calibration_hash.clone()),
        (
            "wall time per workload (all drivers, set-up included)",
            e.wall_seconds
                .iter()
                .map(|(w, t)| format!("{w} {t:.1} s"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
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
