//! The scorecard: every driver against the questions the report's readers ask, measured on
//! this machine, each cell with its tier (①: not distinguishable from the best; drivers
//! whose intervals overlap share a tier, [`super::rank`]); and the verdict computed from
//! it: which driver when, with the conditions under which each verdict holds.

use super::rank::{self, Tier};
use super::text::{bytes, num};
use super::{Point, Table};
use crate::harness::results::{Results, Source, Summary};
use crate::harness::workloads::kind;

const MIB: f64 = 1024.0 * 1024.0;

/// How a question's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Time,
    Bytes,
    Rate,
}

/// One question: a measured value of one workload at one parameter.
struct Question {
    /// What is asked, for people (the parameter is added from the data).
    what: &'static str,
    /// When the verdict's answer to it matters.
    when: &'static str,
    workload: &'static str,
    metric: &'static str,
    variant: &'static str,
    /// The parameter asked for; the largest one present when the run has not got it (a
    /// quick run), and the column says which.
    x: Option<f64>,
    unit: Unit,
}

impl Question {
    fn higher_is_better(&self) -> bool {
        self.unit == Unit::Rate
    }
}

const QUESTIONS: &[Question] = &[
    Question {
        what: "first write to a lower file",
        when: "containers change small inherited files",
        workload: kind::COPY_UP,
        metric: "measured_us",
        variant: "",
        x: Some(MIB),
        unit: Unit::Time,
    },
    Question {
        what: "first write to a lower file",
        when: "containers write into large inherited files (databases, logs in the image)",
        workload: kind::COPY_UP,
        metric: "measured_us",
        variant: "",
        x: Some(256.0 * MIB),
        unit: Unit::Time,
    },
    Question {
        what: "cold read",
        when: "deep images are read after a start or a cache drop",
        workload: kind::READ_DEPTH,
        metric: "measured_us",
        variant: "cold",
        x: Some(16.0),
        unit: Unit::Time,
    },
    Question {
        what: "warm read",
        when: "hot files of deep images are read again and again",
        workload: kind::READ_DEPTH,
        metric: "measured_us",
        variant: "warm",
        x: Some(16.0),
        unit: Unit::Time,
    },
    Question {
        what: "disk bytes, image and",
        when: "many containers run one image and disk is scarce",
        workload: kind::SHARING,
        metric: "disk_bytes",
        variant: "",
        x: Some(8.0),
        unit: Unit::Bytes,
    },
    Question {
        what: "snapshot of a layer of",
        when: "layers are created often (builds, commits, container starts)",
        workload: kind::SNAPSHOT,
        metric: "measured_us",
        variant: "",
        x: Some(64.0 * MIB),
        unit: Unit::Time,
    },
    Question {
        what: "mixed operations",
        when: "a general mix of reads, writes and metadata operations runs",
        workload: kind::MIXED,
        metric: "ops_per_s",
        variant: "",
        x: None,
        unit: Unit::Rate,
    },
    Question {
        what: "trace replay",
        when: "a web application's recorded operations are replayed",
        workload: kind::REPLAY,
        metric: "measured_us",
        variant: "",
        x: None,
        unit: Unit::Time,
    },
];

/// A time for people: µs below a millisecond, then ms, then s.
pub fn duration(us: f64) -> String {
    if us.abs() >= 1e6 {
        format!("{} s", num(us / 1e6))
    } else if us.abs() >= 1e3 {
        format!("{} ms", num(us / 1e3))
    } else {
        format!("{} µs", num(us))
    }
}

fn fmt(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Time => duration(v),
        Unit::Bytes => bytes(v),
        Unit::Rate => format!("{} ops/s", num(v)),
    }
}

/// Circled tier numbers ① to ⑩, then `(11)`.
fn tier_mark(i: usize) -> String {
    char::from_u32(0x2460 + i as u32)
        .filter(|_| i < 10)
        .map(String::from)
        .unwrap_or_else(|| format!("({})", i + 1))
}

/// One answered question: its column heading and each driver's value in tiers.
struct Answer<'a> {
    q: &'a Question,
    heading: String,
    tiers: Vec<Tier<'a>>,
}

fn answer<'a>(results: &'a Results, order: &'a [String], q: &'a Question) -> Option<Answer<'a>> {
    let picked: Vec<&Summary> = results
        .summaries_of(q.workload, q.metric)
        .filter(|s| s.variant == q.variant && s.source == Source::Measured && s.median.is_finite())
        .collect();
    let x =
        q.x.filter(|x| picked.iter().any(|s| s.x == *x))
            .or_else(|| picked.iter().map(|s| s.x).reduce(f64::max))?;
    let at: Vec<&Summary> = picked.into_iter().filter(|s| s.x == x).collect();
    let items: Vec<(&str, Point)> = order
        .iter()
        .filter_map(|d| at.iter().find(|s| &s.driver == d))
        .map(|s| (s.driver.as_str(), super::to_point(s)))
        .collect();
    let first = at.first()?;
    let heading = if q.x.is_some() {
        format!("{} {}", q.what, first.parameter)
    } else {
        q.what.to_string()
    };
    Some(Answer {
        q,
        heading,
        tiers: rank::tiers(&items, q.higher_is_better()),
    })
}

/// The scorecard table and the verdict sentences; `None` when no question has data.
pub fn build(results: &Results, order: &[String]) -> Option<(Table, Vec<String>)> {
    let answers: Vec<Answer> = QUESTIONS
        .iter()
        .filter_map(|q| answer(results, order, q))
        .collect();
    if answers.is_empty() {
        return None;
    }
    let mut columns = vec!["driver".to_string()];
    columns.extend(answers.iter().map(|a| {
        let better = if a.q.higher_is_better() {
            "higher is better"
        } else {
            "lower is better"
        };
        format!("{} ({better})", a.heading)
    }));
    let mut rows = Vec::new();
    let mut tiers = Vec::new();
    for d in order {
        let mut row = vec![d.clone()];
        let mut shade = vec![None];
        for a in &answers {
            let found = a.tiers.iter().enumerate().find_map(|(i, t)| {
                t.members
                    .iter()
                    .find(|m| m.0 == d)
                    .map(|m| (i, m.1, t.members.len() > 1))
            });
            match found {
                Some((i, p, tie)) => {
                    let eq = if tie { " =" } else { "" };
                    row.push(format!("{} {}{eq}", tier_mark(i), fmt(a.q.unit, p.y)));
                    shade.push(Some(i));
                }
                None => {
                    row.push("–".into());
                    shade.push(None);
                }
            }
        }
        if shade.iter().any(Option::is_some) {
            rows.push(row);
            tiers.push(shade);
        }
    }
    let table = Table {
        title: "Scorecard: every driver against the questions, measured on this machine \
                (medians; ① = best tier; = marks a tie)"
            .into(),
        columns,
        rows,
        tiers,
    };
    Some((table, verdict(&answers)))
}

/// Which driver when: each question's best tier with its condition, the drivers best most
/// often, and drivers that pay elsewhere what they save on a first write.
fn verdict(answers: &[Answer]) -> Vec<String> {
    let mut out = Vec::new();
    let mut wins: Vec<(&str, usize)> = Vec::new();
    for a in answers {
        let Some(best) = a.tiers.first() else {
            continue;
        };
        for m in &best.members {
            match wins.iter_mut().find(|w| w.0 == m.0) {
                Some(w) => w.1 += 1,
                None => wins.push((m.0, 1)),
            }
        }
        let tie = if best.members.len() > 1 {
            " (not distinguishable from each other)"
        } else {
            ""
        };
        let alone = if a.tiers.len() == 1 {
            "; the measurements cannot tell any of the drivers apart here"
        } else {
            ""
        };
        out.push(format!(
            "When {}: {}{tie}, best for {} ({}){alone}.",
            a.q.when,
            best.names(),
            a.heading,
            best.best().map_or_else(String::new, |p| fmt(a.q.unit, p.y)),
        ));
    }
    if let Some(max) = wins.iter().map(|w| w.1).max() {
        let top: Vec<&str> = wins.iter().filter(|w| w.1 == max).map(|w| w.0).collect();
        out.push(format!(
            "Best tier most often: {} ({max} of {} questions).",
            top.join(", "),
            answers.len()
        ));
    }
    // A driver cheapest at the first write but in the last tier of snapshots pays for its
    // writes when the layer is created (vfs copies the whole image then).
    let first_write = answers.iter().find(|a| a.q.workload == kind::COPY_UP);
    let snapshot = answers.iter().find(|a| a.q.workload == kind::SNAPSHOT);
    if let (Some(w), Some(s)) = (first_write, snapshot) {
        if let (Some(wb), Some(sl)) = (w.tiers.first(), s.tiers.last()) {
            for m in &wb.members {
                if s.tiers.len() > 1 && sl.members.iter().any(|x| x.0 == m.0) {
                    out.push(format!(
                        "{} writes cheaply only because it paid when the layer was made: its \
                         snapshot is in the last tier ({}).",
                        m.0, s.heading
                    ));
                }
            }
        }
    }
    out.push(
        "These verdicts hold for this machine's measured times (see the environment); on \
         other devices, the modelled tables per profile say how the costs scale."
            .into(),
    );
    out
}
