//! Sentences computed from the data: least-squares slopes (cost per MiB, per layer of depth,
//! per container), the cheapest driver at the largest common parameter and by how much.
//! Every number in a sentence is computed here from the summaries' medians.

use super::{rank, Bar, Line, Point};

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

/// One sentence: each line's least-squares slope of the medians, as `fmt(slope) per`, with
/// the range the points' intervals allow where they are not exact; a slope whose range
/// holds zero is said to show no growth.
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
        .map(|l| match rank::slope(&l.points, x_div) {
            Some(s) if s.1 == s.2 => format!("{} {}", l.driver, fmt(s.0)),
            Some(s) if rank::flat(s) => format!(
                "{} no growth the repetitions can show ({} to {})",
                l.driver,
                fmt(s.1),
                fmt(s.2)
            ),
            Some(s) => format!("{} {} ({} to {})", l.driver, fmt(s.0), fmt(s.1), fmt(s.2)),
            None => match l.points.first() {
                Some(p) => format!(
                    "{} (one point only: {} at {})",
                    l.driver,
                    val_fmt(p.y),
                    x_fmt(p.x)
                ),
                None => format!("{} (no data)", l.driver),
            },
        })
        .collect();
    (!parts.is_empty()).then(|| format!("{lead}: {}.", parts.join(", ")))
}

fn value_at(l: &Line, x: f64) -> Option<Point> {
    l.points.iter().find(|p| p.x == x).copied()
}

/// One sentence: at the largest x every line has, the drivers in tiers, cheapest (or, with
/// `higher_is_better`, fastest) first; drivers whose intervals overlap share a tier and are
/// called not distinguishable, never ranked.
pub fn ranking(
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
    let at: Vec<(&str, Point)> = group
        .iter()
        .filter_map(|l| value_at(l, x).map(|p| (l.driver.as_str(), p)))
        .collect();
    Some(tier_sentence(
        &format!("At {}, {what} ({})", x_fmt(x), first.source_label()),
        &rank::tiers(&at, false),
        fmt,
    ))
}

/// `lead: a = b (not distinguishable) 3 µs; then c 10 µs, 3.3 times as much.`
pub fn tier_sentence(lead: &str, tiers: &[rank::Tier<'_>], fmt: &dyn Fn(f64) -> String) -> String {
    let Some(best) = tiers.first().and_then(|t| t.best()) else {
        return format!("{lead}: no data.");
    };
    if tiers.len() == 1 {
        return format!(
            "{lead}: {} are not distinguishable (their intervals overlap), {}.",
            tiers[0].names(),
            fmt(best.y)
        );
    }
    let parts: Vec<String> = tiers
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let v = t.best()?;
            let tie = if t.members.len() > 1 {
                " (not distinguishable)"
            } else {
                ""
            };
            let ratio = if i > 0 && best.y > 0.0 {
                format!(", {} the first", times(v.y / best.y))
            } else {
                String::new()
            };
            Some(format!("{}{tie} {}{ratio}", t.names(), fmt(v.y)))
        })
        .collect();
    format!("{lead}, in order: {}.", parts.join("; then "))
}

fn us(v: f64) -> String {
    format!("{} µs", num(v))
}

fn per(unit: &'static str) -> impl Fn(f64) -> String {
    move |v| format!("{} µs per {unit}", num(v))
}

/// How a workload's sentences are made from its lines: per group, one slope sentence led by
/// `{group name}, {over}` (the group named with `noun` of its first line); then the ranking
/// `At {x}, {costs}` of the first group, or of every group with `rank_all`.
struct SlopeText<'a> {
    noun: &'a dyn Fn(&Line) -> &'static str,
    over: &'a str,
    x_div: f64,
    slope: &'a dyn Fn(f64) -> String,
    value: &'a dyn Fn(f64) -> String,
    x: &'a dyn Fn(f64) -> String,
    costs: &'a str,
    rank_all: bool,
}

impl SlopeText<'_> {
    fn sentences(&self, lines: &[Line]) -> Vec<String> {
        let mut out = Vec::new();
        let gs = groups(lines);
        for g in &gs {
            let Some(first) = g.first() else { continue };
            let lead = format!("{}, {}", group_name(first, (self.noun)(first)), self.over);
            out.extend(slopes(g, &lead, self.x_div, self.slope, self.value, self.x));
        }
        let ranked = if self.rank_all { gs.len() } else { 1 };
        for g in gs.iter().take(ranked) {
            out.extend(ranking(g, self.costs, self.value, self.x));
        }
        out
    }
}

/// Copy-up: cost per MiB (least-squares slope) of each driver, modelled and measured, and
/// the cheapest at the largest file.
pub fn copy_up(lines: &[Line]) -> Vec<String> {
    time_per_mib(
        lines,
        "Copy-up cost",
        "least-squares slope of time over file size",
        "the first write costs",
        true,
    )
}

/// Read latency: growth per layer of depth, per variant, and the cheapest at the deepest.
pub fn read_depth(lines: &[Line]) -> Vec<String> {
    SlopeText {
        noun: &|_| "Reads",
        over: "growth per layer of depth (least-squares slope)",
        x_div: 1.0,
        slope: &per("layer"),
        value: &us,
        x: &|x| format!("depth {}", num(x)),
        costs: "a read costs",
        rank_all: false,
    }
    .sentences(lines)
}

/// Store space: growth per container, and the smallest store at the most containers.
pub fn sharing(lines: &[Line]) -> Vec<String> {
    SlopeText {
        noun: &|first| match first.metric.as_str() {
            "page_cache_bytes" => "Page cache the reads need",
            "disk_bytes" => "Disk bytes",
            _ => "Store space",
        },
        over: "increment per container (least-squares slope)",
        x_div: 1.0,
        slope: &bytes,
        value: &bytes,
        x: &|x| format!("{} containers", num(x)),
        costs: "the store holds",
        rank_all: false,
    }
    .sentences(lines)
}

/// Snapshot: cost per MiB of image, and the cheapest at the largest image.
pub fn snapshot(lines: &[Line]) -> Vec<String> {
    time_per_mib(
        lines,
        "Snapshot cost",
        "least-squares slope over image size",
        "a snapshot costs",
        false,
    )
}

/// The sentences of a time over a size in bytes: its slope per MiB (`noun`, `over`) and
/// the cheapest at the largest size (`costs`; every group's with `rank_all`).
fn time_per_mib(
    lines: &[Line],
    noun: &'static str,
    over: &str,
    costs: &str,
    rank_all: bool,
) -> Vec<String> {
    SlopeText {
        noun: &|_| noun,
        over,
        x_div: MIB,
        slope: &per("MiB"),
        value: &us,
        x: &bytes,
        costs,
        rank_all,
    }
    .sentences(lines)
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
    let items: Vec<(&str, Point)> = bars.iter().map(|b| (b.label.as_str(), b.value)).collect();
    if items.len() == 1 {
        out.push(format!(
            "Only {} has data here, so there is no comparison.",
            bars[0].label
        ));
        return out;
    }
    let tiers = rank::tiers(&items, true);
    let rate = |v: f64| format!("{} ops/s", num(v));
    out.push(tier_sentence("Fastest first", &tiers, &rate));
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
