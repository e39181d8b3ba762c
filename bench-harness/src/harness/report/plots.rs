//! Drawing a [`Figure`] with plotters, as SVG text or a PNG file. Colour = driver (the
//! same in every figure), line style = variant or source (solid, dashed, dotted, ...).
//! Nothing here panics on odd data: empty lines are skipped, a single point gets a range
//! around it, and values a log axis cannot show are left off (the figure's sentences say so).

use super::png_text::GlyphText;
use super::{font, Chart, Figure, Line, ReportError, Scale, Ticks, PLOT_SIZE};
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Colours by driver index (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The first driver of a label (`overlay2 = aufs` is drawn in overlay2's colour).
fn first_driver(label: &str) -> &str {
    label.split(" = ").next().unwrap_or(label)
}

fn colour(fig: &Figure, driver: &str) -> RGBColor {
    let driver = first_driver(driver);
    let i = fig.drivers.iter().position(|d| d == driver).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// Draws the figure as SVG text.
pub fn render_svg(fig: &Figure) -> Result<String, String> {
    font::ensure_registered().map_err(|e| e.to_string())?;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, PLOT_SIZE).into_drawing_area();
        draw(&root, fig)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// Draws the figure into a PNG file.
pub fn render_png(fig: &Figure, path: &Path) -> Result<(), ReportError> {
    font::ensure_registered()?;
    let err = |message: String| ReportError::Draw {
        path: path.to_path_buf(),
        message,
    };
    let root = GlyphText::new(BitMapBackend::new(path, PLOT_SIZE)).into_drawing_area();
    draw(&root, fig).map_err(err)?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    match &fig.chart {
        Chart::Lines(lines) => draw_lines(root, fig, lines),
        Chart::Bars(_) => draw_bars(root, fig),
    }
}

/// A point as drawn: x, y, CI low, CI high (y units divided), repetitions.
type Shown = (f64, f64, f64, f64, usize);

/// A plotters error as the message the report's errors carry.
fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The figure's x and y divisors, 1 where one is not positive.
fn divisors(fig: &Figure) -> (f64, f64) {
    let positive = |v: f64| if v > 0.0 { v } else { 1.0 };
    (positive(fig.x_divisor), positive(fig.y_divisor))
}

/// The points of a line that the axes can show, with y divided by the figure's divisor.
fn visible(fig: &Figure, line: &Line) -> Vec<Shown> {
    let (dx, d) = divisors(fig);
    line.points
        .iter()
        .filter(|p| p.x.is_finite() && p.y.is_finite())
        .filter(|p| fig.x_scale == Scale::Linear || p.x > 0.0)
        .filter(|p| fig.y_scale == Scale::Linear || p.y > 0.0)
        .map(|p| (p.x / dx, p.y / d, p.low / d, p.high / d, p.n))
        .collect()
}

/// Each repetition of a line's measured points, as drawn (x and y divided), where the
/// axes can show it.
fn run_dots(fig: &Figure, line: &Line) -> Vec<(f64, f64)> {
    let (dx, d) = divisors(fig);
    line.runs
        .iter()
        .filter(|(x, _)| x.is_finite() && (fig.x_scale == Scale::Linear || *x > 0.0))
        .map(|(x, v)| (x / dx, v / d))
        .filter(|(_, y)| y.is_finite() && (fig.y_scale == Scale::Linear || *y > 0.0))
        .collect()
}

/// A range that shows every value, padded; sensible for a single value or none.
fn range(values: &[f64], scale: Scale, from_zero: bool) -> (f64, f64) {
    let vals: Vec<f64> = values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0))
        .collect();
    let lo = vals.iter().copied().reduce(f64::min);
    let hi = vals.iter().copied().reduce(f64::max);
    match (scale, lo, hi) {
        (Scale::Log, Some(lo), Some(hi)) => {
            if hi / lo < 10.0 {
                let mid = (lo * hi).sqrt();
                (mid / 4.0, mid * 4.0)
            } else if from_zero {
                // y: whole decades, so that both ends carry a label.
                let (a, b) = (lo.log10().floor(), hi.log10().ceil());
                (10f64.powf(a), 10f64.powf(b))
            } else {
                (lo / 1.5, hi * 1.5)
            }
        }
        (Scale::Log, _, _) => (1.0, 10.0),
        (Scale::Linear, Some(lo), Some(hi)) => {
            let lo = if from_zero && lo >= 0.0 { 0.0 } else { lo };
            let span = hi - lo;
            if span <= 0.0 && !from_zero && hi > 0.0 {
                // One positive x: centre it on 0 .. 2x, so the ticks are round numbers.
                (0.0, 2.0 * hi)
            } else if span <= 0.0 {
                let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.5 };
                (
                    lo - if from_zero && lo >= 0.0 { 0.0 } else { pad },
                    hi + pad,
                )
            } else if from_zero && lo >= 0.0 {
                (lo, hi + span * 0.08)
            } else {
                (lo - span * 0.04, hi + span * 0.04)
            }
        }
        (Scale::Linear, _, _) => (0.0, 1.0),
    }
}

fn tick(v: f64, ticks: Ticks) -> String {
    match ticks {
        Ticks::Bytes => {
            if v <= 0.0 {
                "0".into()
            } else {
                super::text::bytes(v).replace(" bytes", " B")
            }
        }
        Ticks::Number => super::text::num(v),
    }
}

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    lines: &[Line],
) -> Result<(), String> {
    let pts: Vec<Shown> = lines.iter().flat_map(|l| visible(fig, l)).collect();
    let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let mut ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
    ys.extend(pts.iter().filter(|p| p.4 > 1).flat_map(|p| [p.2, p.3]));
    ys.extend(lines.iter().flat_map(|l| run_dots(fig, l)).map(|p| p.1));
    let x = range(&xs, fig.x_scale, false);
    let y = range(&ys, fig.y_scale, true);
    let body = root
        .margin(10, 0, 0, 6)
        .titled(&fig.title, (font::FAMILY, TITLE_SIZE))
        .map_err(|e| e.to_string())?;
    // Small multiples: one panel per driver family, on the same axes.
    let panels: Vec<(String, Vec<&Line>)> = if fig.panels.is_empty() {
        vec![(String::new(), lines.iter().collect())]
    } else {
        fig.panels
            .iter()
            .map(|(title, drivers)| {
                let of: Vec<&Line> = lines
                    .iter()
                    .filter(|l| {
                        l.driver
                            .split(" = ")
                            .any(|d| drivers.iter().any(|x| x == d))
                    })
                    .collect();
                (title.clone(), of)
            })
            .filter(|(_, of)| !of.is_empty())
            .collect()
    };
    let areas = body.split_evenly((panels.len().max(1), 1));
    for (area, (title, of)) in areas.iter().zip(&panels) {
        let of: Vec<Line> = of.iter().map(|l| (*l).clone()).collect();
        draw_panel(area, fig, title, &of, x, y)?;
    }
    Ok(())
}

/// One panel on the figure's axes (the same ranges in every panel).
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    title: &str,
    lines: &[Line],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<(), String> {
    // Bytes on a log axis read best at powers of 4 (1 KiB, 4 KiB, 16 KiB ...).
    let xbase = if fig.x_ticks == Ticks::Bytes {
        4.0
    } else {
        10.0
    };
    let p = (area, fig, title, lines, (x0, x1));
    match (fig.x_scale, fig.y_scale) {
        (Scale::Linear, Scale::Linear) => lines_on(p, x0..x1, y0..y1),
        (Scale::Log, Scale::Linear) => lines_on(p, (x0..x1).log_scale().base(xbase), y0..y1),
        (Scale::Linear, Scale::Log) => lines_on(p, x0..x1, (y0..y1).log_scale()),
        (Scale::Log, Scale::Log) => {
            lines_on(p, (x0..x1).log_scale().base(xbase), (y0..y1).log_scale())
        }
    }
}

/// Line width and marker radius of a driver: drivers drawn first (earlier in the
/// experiment) are wider, so a line drawn over an identical one leaves a visible edge.
fn halo(fig: &Figure, driver: &str) -> (u32, u32) {
    let driver = first_driver(driver);
    // the kernel drivers are the reference: a heavy line
    if driver.starts_with("kernel-") {
        return (6, 6);
    }
    let n = fig.drivers.len();
    let i = fig.drivers.iter().position(|d| d == driver).unwrap_or(0);
    let extra = (n.saturating_sub(1).saturating_sub(i)).min(2) as u32;
    (2 + extra, 4 + extra)
}

/// Line styles by index: solid, dashed, dotted, long dashes.
fn dashes(i: usize) -> Option<(u32, u32)> {
    match i % 4 {
        0 => None,
        1 => Some((10, 6)),
        2 => Some((2, 5)),
        _ => Some((20, 6)),
    }
}

/// The name of a line style, for the key under a panel's title.
fn dash_name(i: usize) -> &'static str {
    match i % 4 {
        0 => "solid",
        1 => "dashed",
        2 => "dotted",
        _ => "long dashes",
    }
}

/// Pixel y of end labels moved apart so that no two are closer than `gap`, in order.
fn spread(mut ys: Vec<(usize, i32)>, gap: i32) -> Vec<(usize, i32)> {
    ys.sort_by_key(|p| p.1);
    for i in 1..ys.len() {
        if ys[i].1 < ys[i - 1].1 + gap {
            ys[i].1 = ys[i - 1].1 + gap;
        }
    }
    ys
}

/// Font sizes (plotters' units).
const TITLE_SIZE: u32 = 26;
const DESC_SIZE: u32 = 20;
const LABEL_SIZE: u32 = 16;

/// A panel's area, figure, title, lines and x span.
type PanelArgs<'a, DB> = (
    &'a DrawingArea<DB, Shift>,
    &'a Figure,
    &'a str,
    &'a [Line],
    (f64, f64),
);

fn lines_on<DB, XR, YR>(
    (root, fig, title, lines, x_span): PanelArgs<'_, DB>,
    xr: XR,
    yr: YR,
) -> Result<(), String>
where
    DB: DrawingBackend,
    XR: AsRangedCoord<Value = f64>,
    YR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: ValueFormatter<f64>,
    YR::CoordDescType: ValueFormatter<f64>,
{
    // Line style per (variant, source, metric) combination, in order of appearance.
    let mut combos: Vec<(String, super::super::results::Source, String)> = Vec::new();
    for l in lines {
        let k = (l.variant.clone(), l.source, l.metric.clone());
        if !combos.contains(&k) {
            combos.push(k);
        }
    }
    // modelled_us and measured_us are both "time": name metrics only when they differ.
    let with_metric = lines
        .iter()
        .map(|l| super::metric_label(&l.metric))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let drawn: Vec<(&Line, Vec<Shown>, usize)> = lines
        .iter()
        .map(|l| {
            let style_i = combos
                .iter()
                .position(|k| k.0 == l.variant && k.1 == l.source && k.2 == l.metric)
                .unwrap_or(0);
            (l, visible(fig, l), style_i)
        })
        .filter(|(_, pts, _)| !pts.is_empty())
        .collect();
    let key = style_key(&drawn, combos.len(), with_metric);
    // a key too long for one line is left out where the end labels name the sources
    let key = key.join(" · ");
    let heading = match (title.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => title.to_string(),
        (false, false) if title.len() + key.len() > 80 && mixed_sources(fig) => title.to_string(),
        (false, false) => format!("{title} — {key}"),
    };
    let plot_area = root
        .titled(&heading, (font::FAMILY, LABEL_SIZE))
        .map_err(err)?;
    // Labels at the line ends: room on the right for the longest.
    // the same room in every panel, so that their x axes line up
    let all: &[Line] = match &fig.chart {
        Chart::Lines(all) => all,
        Chart::Bars(_) => lines,
    };
    let label_w = all
        .iter()
        .map(|l| end_label(fig, l).chars().count() as u32 * 9 + 16)
        .max()
        .unwrap_or(0)
        .clamp(60, 420);
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(8)
        .margin_right(label_w)
        .x_label_area_size(56)
        .y_label_area_size(96)
        .build_cartesian_2d(xr, yr)
        .map_err(err)?;
    draw_mesh(&mut chart, fig, &drawn, x_span)?;

    for d in &drawn {
        draw_line(&mut chart, fig, d)?;
    }
    if drawn.is_empty() {
        let (pw, ph) = plot_area.dim_in_pixel();
        let font = (font::FAMILY, DESC_SIZE)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        plot_area
            .draw(&Text::new(
                "no data to draw",
                (pw as i32 / 2, ph as i32 / 2),
                font,
            ))
            .map_err(err)?;
    } else {
        draw_end_labels(&chart, &plot_area, fig, &drawn)?;
    }
    Ok(())
}

/// The axes, their labels and the grid of a panel: integer ticks for counts on a linear
/// axis, fewer ticks for byte sizes.
fn draw_mesh<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    fig: &Figure,
    drawn: &[(&Line, Vec<Shown>, usize)],
    x_span: (f64, f64),
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let x_ticks = fig.x_ticks;
    // Counts on a linear axis (containers, layers): integer ticks only.
    let integral = fig.x_scale == Scale::Linear
        && x_ticks == Ticks::Number
        && drawn.iter().flat_map(|d| &d.1).all(|p| p.0.fract() == 0.0);
    let x_labels = if integral {
        let (lo, hi) = x_span;
        ((hi.floor() - lo.ceil()) as usize + 1).clamp(2, 10)
    } else if x_ticks == Ticks::Bytes && fig.x_scale == Scale::Linear {
        // Byte sizes are wide labels: fewer of them, so that they never overlap.
        5
    } else {
        10
    };
    chart
        .configure_mesh()
        .x_desc(fig.x_label.as_str())
        .y_desc(fig.y_label.as_str())
        .axis_desc_style((font::FAMILY, DESC_SIZE))
        .label_style((font::FAMILY, LABEL_SIZE))
        .x_label_formatter(&|v| {
            if integral && v.fract() != 0.0 {
                String::new()
            } else {
                tick(*v, x_ticks)
            }
        })
        .y_label_formatter(&|v| tick(*v, Ticks::Number))
        .x_labels(x_labels)
        .y_labels(10)
        .light_line_style(BLACK.mix(0.04))
        .bold_line_style(BLACK.mix(0.15))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The key under a panel's title: which line style is which variant and source.
fn style_key(
    drawn: &[(&Line, Vec<Shown>, usize)],
    styles: usize,
    with_metric: bool,
) -> Vec<String> {
    let mut key: Vec<String> = Vec::new();
    for i in 0..styles {
        if let Some((l, _, _)) = drawn.iter().find(|d| d.2 == i) {
            let mut what = l.source_label();
            if !l.variant.is_empty() {
                what = format!("{} {what}", l.variant);
            }
            if with_metric {
                what = format!("{what} {}", super::metric_label(&l.metric));
            }
            key.push(format!("{}: {what}", dash_name(i)));
        }
    }
    key
}

/// What a line's end label says: its drivers and variant, and its source where the
/// figure has more than one (`btrfs cold (modelled)`).
fn end_label(fig: &Figure, l: &Line) -> String {
    let mut s = l.driver.clone();
    if !l.variant.is_empty() {
        s.push(' ');
        s.push_str(&l.variant);
    }
    if mixed_sources(fig) {
        s.push_str(&format!(" ({})", l.source.as_str()));
    }
    s
}

/// True when a figure's lines come from more than one source (measured and modelled).
fn mixed_sources(fig: &Figure) -> bool {
    match &fig.chart {
        Chart::Lines(ls) => ls
            .iter()
            .any(|l| ls.first().is_some_and(|f| f.source != l.source)),
        Chart::Bars(_) => false,
    }
}

/// Each line's label at its last point, in its colour, moved apart where labels would
/// collide (instead of a legend).
fn draw_end_labels<DB, X, Y>(
    chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    plot_area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    drawn: &[(&Line, Vec<Shown>, usize)],
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    // each line's label at its last point, moved apart where labels would collide
    let base = plot_area.get_base_pixel();
    let ends: Vec<(usize, i32)> = drawn
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.1.last().map(|p| (i, chart.backend_coord(&(p.0, p.1)).1)))
        .collect();
    for (i, y) in spread(ends, LABEL_SIZE as i32) {
        let (l, pts, _) = &drawn[i];
        let Some(last) = pts.last() else { continue };
        let (px, _) = chart.backend_coord(&(last.0, last.1));
        let font = (font::FAMILY, LABEL_SIZE)
            .into_font()
            .color(&colour(fig, &l.driver))
            .pos(Pos::new(HPos::Left, VPos::Center));
        plot_area
            .draw(&Text::new(
                end_label(fig, l),
                (px - base.0 + 10, y - base.1),
                font,
            ))
            .map_err(err)?;
    }
    Ok(())
}

/// One line of a panel: the line in its driver's colour and its style, markers, and the
/// interval whiskers where there is more than one repetition.
fn draw_line<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    fig: &Figure,
    (l, pts, style_i): &(&Line, Vec<Shown>, usize),
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let c = colour(fig, &l.driver);
    let (width, radius) = halo(fig, &l.driver);
    let stroke = c.stroke_width(width);
    let xy: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
    // every repetition of a measured point as a small pale dot under the line
    chart
        .draw_series(
            run_dots(fig, l)
                .into_iter()
                .map(|xy| Circle::new(xy, 2, c.mix(0.45).filled())),
        )
        .map_err(err)?;
    match dashes(*style_i) {
        None => chart
            .draw_series(LineSeries::new(xy.clone(), stroke))
            .map_err(err)?,
        Some((size, gap)) => chart
            .draw_series(DashedLineSeries::new(xy.clone(), size, gap, stroke))
            .map_err(err)?,
    };
    // Markers, filled for the first style, hollow for the others.
    let filled = *style_i == 0;
    chart
        .draw_series(xy.iter().map(|&(x, y)| {
            let s = if filled {
                c.filled()
            } else {
                c.stroke_width(2)
            };
            Circle::new((x, y), radius, s)
        }))
        .map_err(err)?;
    // CI whiskers where there is more than one repetition and the ends can be drawn.
    let whiskers: Vec<(f64, f64, f64)> = pts
        .iter()
        .filter(|p| p.4 > 1 && p.3 > p.2)
        .filter(|p| fig.y_scale == Scale::Linear || p.2 > 0.0)
        .map(|p| (p.0, p.2, p.3))
        .collect();
    chart
        .draw_series(
            whiskers
                .iter()
                .map(|&(x, lo, hi)| PathElement::new(vec![(x, lo), (x, hi)], c.stroke_width(1))),
        )
        .map_err(err)?;
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
) -> Result<(), String> {
    let Chart::Bars(bars) = &fig.chart else {
        return Ok(());
    };
    let bars: Vec<&super::Bar> = bars.iter().filter(|b| b.value.y.is_finite()).collect();
    let mut ys: Vec<f64> = bars.iter().map(|b| b.value.y).collect();
    ys.extend(bars.iter().filter(|b| b.value.n > 1).map(|b| b.value.high));
    let (y0, y1) = range(&ys, Scale::Linear, true);
    let n = bars.len().max(1) as u32;
    let (last, shift) = if n == 1 { (2, 1) } else { (n - 1, 0) };
    let mut chart = ChartBuilder::on(root)
        .caption(&fig.title, (font::FAMILY, TITLE_SIZE))
        .margin(16)
        .x_label_area_size(64)
        .y_label_area_size(104)
        // 0..n-1 makes n segments; a single bar goes in the middle of three.
        .build_cartesian_2d((0u32..last).into_segmented(), y0..y1 * 1.08)
        .map_err(err)?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(fig.x_label.as_str())
        .y_desc(fig.y_label.as_str())
        .axis_desc_style((font::FAMILY, DESC_SIZE))
        .label_style((font::FAMILY, LABEL_SIZE))
        .light_line_style(BLACK.mix(0.04))
        .bold_line_style(BLACK.mix(0.15))
        .x_labels(last as usize + 1)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => i
                .checked_sub(shift)
                .and_then(|i| labels.get(i as usize).cloned())
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .y_label_formatter(&|v| super::text::num(*v))
        .draw()
        .map_err(err)?;
    for (i, b) in bars.iter().enumerate() {
        let i = i as u32 + shift;
        let c = colour(fig, &b.driver);
        let style = if b.source == super::super::results::Source::Measured {
            c.filled()
        } else {
            c.mix(0.5).filled()
        };
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), b.value.y.max(0.0)),
            ],
            style,
        );
        r.set_margin(0, 0, 18, 18);
        chart.draw_series(std::iter::once(r)).map_err(err)?;
        if b.value.n > 1 && b.value.high > b.value.low {
            let (lo, hi) = (b.value.low, b.value.high);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![
                        (SegmentValue::CenterOf(i), lo),
                        (SegmentValue::CenterOf(i), hi),
                    ],
                    BLACK.stroke_width(2),
                )))
                .map_err(err)?;
        }
        let top = if b.value.n > 1 {
            b.value.y.max(b.value.high)
        } else {
            b.value.y
        };
        chart
            .draw_series(std::iter::once(Text::new(
                super::text::num(b.value.y),
                (SegmentValue::CenterOf(i), top.max(0.0) + (y1 - y0) * 0.01),
                (font::FAMILY, LABEL_SIZE)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )))
            .map_err(err)?;
    }
    if bars.is_empty() {
        let font = (font::FAMILY, DESC_SIZE)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(
            "no data to draw",
            (PLOT_SIZE.0 as i32 / 2, PLOT_SIZE.1 as i32 / 2),
            font,
        ))
        .map_err(err)?;
    }
    Ok(())
}
