//! Sentences computed from the data: least-squares slopes (cost per MiB, per layer of depth,
//! per container), the cheapest driver at the largest common parameter and by how much.
//! Every number in a sentence is computed here from the summaries' medians.

use super::{Bar, Line, Point};

const MIB: f64 = 1024.0 * 1024.0;

/// A number for people: about three significant digits, no exponent, trailing zeros cut.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    let decimals = if a >= 100.0 {
        0
    } else {
        // 3 significant digits: 12.3, 1.23, 0.123, 0.0123 ...
        let mag = a.log10().floor() as i32;
        (2 - mag).clamp(0, 9) as usize
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A byte count for people: `512 bytes`, `4 KiB`, `1.5 MiB`.
pub fn bytes(v: f64) -> String {
    let (div, unit) = super::byte_unit(v.abs());
    format!("{} {unit}", num(v / div))
}

/// A ratio for people: `2.5 times`.
fn times(r: f64) -> String {
    format!("{} times", num(r))
}

/// Least-squares fit y = a + b x; `None` with fewer than two distinct x.
pub fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

/// Lines grouped by (source, metric, variant, profile), in order of first appearance.
fn groups(lines: &[Line]) -> Vec<Vec<&Line>> {
    let mut out: Vec<Vec<&Line>> = Vec::new();
    for l in lines {
        let key = |o: &Line| {
            o.source == l.source
                && o.metric == l.metric
                && o.variant == l.variant
                && o.profile == l.profile
        };
        match out.iter_mut().find(|g| g.first().is_some_and(|f| key(f))) {
            Some(g) => g.push(l),
            None => out.push(vec![l]),
        }
    }
    out
}

/// How one group is named at the start of a sentence: `Cold reads, modelled (nvme)`.
fn group_name(first: &Line, noun: &str) -> String {
    let mut s = String::new();
    if first.variant.is_empty() {
        s.push_str(noun);
    } else {
        s.push_str(&capitalise(&first.variant));
        s.push(' ');
        s.push_str(&noun.to_lowercase());
    }
    s.push_str(", ");
    s.push_str(&first.source_label());
    s
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// One sentence: each line's least-squares slope, as `fmt(slope) per`.
fn slopes(
    group: &[&Line],
    lead: &str,
    x_div: f64,
    fmt: &dyn Fn(f64) -> String,
    val_fmt: &dyn Fn(f64) -> String,
    x_fmt: &dyn Fn(f64) -> String,
) -> Option<String> {
    let parts: Vec<String> = group
        .iter()
        .map(|l| {
            let pts: Vec<(f64, f64)> = l.points.iter().map(|p| (p.x / x_div, p.y)).collect();
            match least_squares(&pts) {
                Some((_, b)) => format!("{} {}", l.driver, fmt(b)),
                None => match l.points.first() {
                    Some(p) => format!(
                        "{} (one point only: {} at {})",
                        l.driver,
                        val_fmt(p.y),
                        x_fmt(p.x)
                    ),
                    None => format!("{} (no data)", l.driver),
                },
            }
        })
        .collect();
    (!parts.is_empty()).then(|| format!("{lead}: {}.", parts.join(", ")))
}

fn value_at(l: &Line, x: f64) -> Option<Point> {
    l.points.iter().find(|p| p.x == x).copied()
}

/// One sentence: at the largest x every line has, which driver is cheapest (or, with
/// `higher_is_better`, fastest) and by how much.
fn cheapest(
    group: &[&Line],
    what: &str,
    fmt: &dyn Fn(f64) -> String,
    x_fmt: &dyn Fn(f64) -> String,
) -> Option<String> {
    let first = group.first()?;
    if group.len() == 1 {
        return Some(format!(
            "Only {} has {} data here, so there is no comparison.",
            first.driver,
            first.source_label()
        ));
    }
    let x = first
        .points
        .iter()
        .rev()
        .map(|p| p.x)
        .find(|x| group.iter().all(|l| value_at(l, *x).is_some()))?;
    let mut at: Vec<(&str, f64)> = group
        .iter()
        .filter_map(|l| value_at(l, x).map(|p| (l.driver.as_str(), p.y)))
        .collect();
    at.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (best, bv) = *at.first()?;
    let (worst, wv) = *at.last()?;
    let src = first.source_label();
    let head = format!(
        "At {}, {best} is the cheapest {what} ({src}: {})",
        x_fmt(x),
        fmt(bv)
    );
    let others = if at.len() > 2 {
        "; the most expensive is"
    } else {
        ","
    };
    if wv == bv {
        return Some(format!("{head}, the same as {worst}."));
    }
    if bv > 0.0 {
        Some(format!(
            "{head}{others} {worst} at {}, {} as much.",
            fmt(wv),
            times(wv / bv)
        ))
    } else {
        Some(format!("{head}{others} {worst} at {}.", fmt(wv)))
    }
}

fn us(v: f64) -> String {
    format!("{} µs", num(v))
}

fn per(unit: &'static str) -> impl Fn(f64) -> String {
    move |v| format!("{} µs per {unit}", num(v))
}

/// Copy-up: cost per MiB (least-squares slope) of each driver, modelled and measured, and
/// the cheapest at the largest file.
pub fn copy_up(lines: &[Line]) -> Vec<String> {
    let mut out = Vec::new();
    let gs = groups(lines);
    for g in &gs {
        let Some(first) = g.first() else { continue };
        let lead = format!(
            "{}, least-squares slope of time over file size",
            group_name(first, "Copy-up cost")
        );
        out.extend(slopes(g, &lead, MIB, &per("MiB"), &us, &bytes));
    }
    for g in &gs {
        out.extend(cheapest(g, "to copy up", &us, &bytes));
    }
    out
}

/// Read latency: growth per layer of depth, per variant, and the cheapest at the deepest.
pub fn read_depth(lines: &[Line]) -> Vec<String> {
    let mut out = Vec::new();
    let gs = groups(lines);
    for g in &gs {
        let Some(first) = g.first() else { continue };
        let lead = format!(
            "{}, growth per layer of depth (least-squares slope)",
            group_name(first, "Reads")
        );
        out.extend(slopes(g, &lead, 1.0, &per("layer"), &us, &|x| {
            format!("depth {}", num(x))
        }));
    }
    if let Some(g) = gs.first() {
        out.extend(cheapest(g, "to read", &us, &|x| {
            format!("depth {}", num(x))
        }));
    }
    out
}

/// Store space: growth per container, and the smallest store at the most containers.
pub fn sharing(lines: &[Line]) -> Vec<String> {
    let mut out = Vec::new();
    let gs = groups(lines);
    let containers = |x: f64| format!("{} containers", num(x));
    for g in &gs {
        let Some(first) = g.first() else { continue };
        let noun = if first.metric == "page_cache_bytes" {
            "Page cache the reads need"
        } else {
            "Store space"
        };
        let lead = format!(
            "{}, growth per container (least-squares slope)",
            group_name(first, noun)
        );
        out.extend(slopes(g, &lead, 1.0, &bytes, &bytes, &containers));
    }
    if let Some(g) = gs.first() {
        out.extend(cheapest(g, "in space", &bytes, &containers));
    }
    out
}

/// Snapshot: cost per MiB of image, and the cheapest at the largest image.
pub fn snapshot(lines: &[Line]) -> Vec<String> {
    let mut out = Vec::new();
    let gs = groups(lines);
    for g in &gs {
        let Some(first) = g.first() else { continue };
        let lead = format!(
            "{}, least-squares slope over image size",
            group_name(first, "Snapshot cost")
        );
        out.extend(slopes(g, &lead, MIB, &per("MiB"), &us, &bytes));
    }
    if let Some(g) = gs.first() {
        out.extend(cheapest(g, "to snapshot", &us, &bytes));
    }
    out
}

/// Mixed workload: each driver's rate, and the fastest against the slowest.
pub fn mixed(bars: &[Bar]) -> Vec<String> {
    let mut out = Vec::new();
    if bars.is_empty() {
        return out;
    }
    let parts: Vec<String> = bars
        .iter()
        .map(|b| {
            let n = if b.value.n > 1 {
                format!(" (median of {})", b.value.n)
            } else {
                String::new()
            };
            format!("{} {} ops/s{n}", b.label, num(b.value.y))
        })
        .collect();
    out.push(format!("Operations per second: {}.", parts.join(", ")));
    let mut sorted: Vec<&Bar> = bars.iter().collect();
    sorted.sort_by(|a, b| b.value.y.total_cmp(&a.value.y));
    match (sorted.first(), sorted.last()) {
        (Some(f), Some(s)) if sorted.len() > 1 => {
            if s.value.y > 0.0 && f.value.y > s.value.y {
                out.push(format!(
                    "{} is the fastest, {} the rate of {}.",
                    f.label,
                    times(f.value.y / s.value.y),
                    s.label
                ));
            } else if f.value.y == s.value.y {
                out.push(format!("{} and {} run at the same rate.", f.label, s.label));
            } else {
                out.push(format!("{} is the fastest.", f.label));
            }
        }
        (Some(f), _) => out.push(format!(
            "Only {} has data here, so there is no comparison.",
            f.label
        )),
        _ => {}
    }
    out
}

/// Metadata operations: each variant's modelled cost per driver.
pub fn metadata(lines: &[Line]) -> Vec<String> {
    per_driver(lines, "Operation")
}

/// Each group's value per driver at its largest parameter: `noun, source: a 1 µs, b 2 µs.`
/// The noun is followed by the variant (if any) and the source.
pub fn per_driver(lines: &[Line], noun: &str) -> Vec<String> {
    let mut out = Vec::new();
    for g in groups(lines) {
        let Some(first) = g.first() else { continue };
        let parts: Vec<String> = g
            .iter()
            .filter_map(|l| l.points.last().map(|p| format!("{} {}", l.driver, us(p.y))))
            .collect();
        if parts.is_empty() {
            continue;
        }
        out.push(format!(
            "{}: {}.",
            group_name(first, noun),
            parts.join(", ")
        ));
    }
    out
}
