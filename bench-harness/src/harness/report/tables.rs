//! The data tables: wide (drivers as rows, parameters as columns), one per workload and
//! metric the report's readers use; measured cells give the median and its interval, exact
//! (deterministic) cells the value alone. Everything else is in the CSV and JSON beside the
//! report.

use super::{source_label, text, Table};
use crate::harness::results::{Results, Source, Summary};
use crate::harness::window;
use crate::harness::workloads::kind;

/// Which statistic of a summary a table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stat {
    /// The median (p50), with its interval where it is measured.
    Median,
    /// The 99th percentile over the repetitions.
    P99,
}

/// What a wide table shows: a metric of a workload from one source.
struct Spec<'a> {
    workload: &'a str,
    metric: &'a str,
    source: Source,
    stat: Stat,
    /// The unit, in the title.
    unit: &'a str,
}

/// Every table: per workload the metrics people read, then modelled time on every profile.
pub fn all(results: &Results, order: &[String], profile: Option<&str>) -> Vec<Table> {
    let mut out: Vec<Table> = specs()
        .iter()
        .filter_map(|s| wide(results, order, s, profile))
        .collect();
    out.extend(profiles_table(results, order));
    out
}

/// Where merged shards ran on several machines: each machine's measured tables, apart.
pub fn by_machine(results: &Results, order: &[String]) -> Vec<Table> {
    let mut out = Vec::new();
    for m in &results.machines {
        let one = Results {
            summaries: m.summaries.clone(),
            ..Results::default()
        };
        for spec in specs().iter().filter(|s| s.source == Source::Measured) {
            if let Some(mut t) = wide(&one, order, spec, None) {
                t.title = format!("machine `{}`: {}", m.machine, t.title);
                out.push(t);
            }
        }
    }
    out
}

/// The tables people read, per workload: medians, and the 99th percentile of reads.
fn specs() -> Vec<Spec<'static>> {
    use Source::{Counted, Derived, Measured, Modelled};
    let median = |workload, metric, source, unit| Spec {
        workload,
        metric,
        source,
        stat: Stat::Median,
        unit,
    };
    vec![
        median(kind::COPY_UP, "measured_us", Measured, "µs"),
        median(kind::COPY_UP, "modelled_us", Modelled, "µs"),
        median(kind::COPY_UP, "bytes_copied", Counted, "bytes"),
        median(kind::READ_DEPTH, "measured_us", Measured, "µs"),
        Spec {
            stat: Stat::P99,
            ..median(kind::READ_DEPTH, "measured_us", Measured, "µs")
        },
        median(kind::READ_DEPTH, "modelled_us", Modelled, "µs"),
        median(kind::READ_DEPTH, "probes", Counted, "count"),
        median(kind::METADATA, "measured_us", Measured, "µs"),
        median(kind::METADATA, "modelled_us", Modelled, "µs"),
        median(kind::SNAPSHOT, "measured_us", Measured, "µs"),
        median(kind::SNAPSHOT, "modelled_us", Modelled, "µs"),
        median(kind::SNAPSHOT, "store_bytes", Derived, "bytes"),
        median(kind::SHARING, "disk_bytes", Measured, "bytes"),
        median(kind::SHARING, "exclusive_bytes", Derived, "bytes"),
        median(kind::SHARING, "logical_bytes", Derived, "bytes"),
        median(kind::SHARING, "shared_bytes", Measured, "bytes"),
        median(kind::SHARING, "page_cache_bytes", Derived, "bytes"),
        median(kind::MIXED, "ops_per_s", Measured, "ops/s"),
        median(kind::MIXED, "modelled_us", Modelled, "µs"),
        median(kind::REPLAY, "measured_us", Measured, "µs"),
        median(kind::REPLAY, "modelled_us", Modelled, "µs"),
    ]
}

/// A cell: an exact value alone; a measured median with its interval (`12 (10–15)`).
fn cell(s: &Summary, stat: Stat) -> String {
    match stat {
        Stat::P99 => text::num(s.p99),
        Stat::Median if s.ci_low < s.ci_high => format!(
            "{} ({}–{})",
            text::num(s.median),
            text::num(s.ci_low),
            text::num(s.ci_high)
        ),
        Stat::Median => text::num(s.median),
    }
}

/// One wide table: rows = driver (and variant), columns = the parameters by x.
fn wide(
    results: &Results,
    order: &[String],
    spec: &Spec<'_>,
    profile: Option<&str>,
) -> Option<Table> {
    let picked: Vec<&Summary> = results
        .summaries_of(spec.workload, spec.metric)
        .filter(|s| {
            s.source == spec.source
                && (s.source != Source::Modelled || profile.is_none_or(|p| s.profile == p))
        })
        .collect();
    if picked.is_empty() || picked.iter().all(|s| s.median == 0.0 && s.max == 0.0) {
        return None;
    }
    let mut params: Vec<(f64, &str)> = Vec::new();
    let mut variants: Vec<&str> = Vec::new();
    for s in &picked {
        if !params.iter().any(|p| p.1 == s.parameter) {
            params.push((s.x, &s.parameter));
        }
        if !variants.contains(&s.variant.as_str()) {
            variants.push(&s.variant);
        }
    }
    params.sort_by(|a, b| a.0.total_cmp(&b.0));
    let with_variant = variants.iter().any(|v| !v.is_empty());
    let mut columns = vec!["driver".to_string()];
    if with_variant {
        columns.push("variant".into());
    }
    columns.extend(params.iter().map(|p| p.1.to_string()));
    let mut rows = Vec::new();
    for d in order {
        for v in &variants {
            let cells: Vec<Option<&&Summary>> = params
                .iter()
                .map(|p| {
                    picked
                        .iter()
                        .find(|s| &s.driver == d && s.variant == *v && s.parameter == p.1)
                })
                .collect();
            if cells.iter().all(Option::is_none) {
                continue;
            }
            let mut row = vec![d.clone()];
            if with_variant {
                row.push(v.to_string());
            }
            row.extend(
                cells
                    .iter()
                    .map(|c| c.map_or_else(|| "–".into(), |s| cell(s, spec.stat))),
            );
            rows.push(row);
        }
    }
    let first = picked.first()?;
    let stat = match spec.stat {
        Stat::Median if spec.source == Source::Measured => {
            "median (interval of the median)".to_string()
        }
        Stat::Median if first.n > 1 => "the same in every repetition".to_string(),
        Stat::Median => "one repetition".to_string(),
        Stat::P99 => "p99 over the repetitions".to_string(),
    };
    Some(Table {
        title: format!(
            "`{}`: {}, {}, {} ({stat})",
            spec.workload,
            super::metric_label(spec.metric),
            source_label(spec.source, &first.profile),
            spec.unit
        ),
        columns,
        rows,
        tiers: Vec::new(),
    })
}

/// Modelled time of each workload's largest parameter on every device profile (not the
/// cost windows': each prices one workload, in the fidelity section).
fn profiles_table(results: &Results, order: &[String]) -> Option<Table> {
    let mut profiles = Vec::<String>::new();
    for s in results
        .summaries
        .iter()
        .filter(|s| s.source == Source::Modelled && !window::is_window(&s.profile))
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
        tiers: Vec::new(),
    })
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
