//! `report.md`: the report as Markdown, plots linked as the SVG files beside it (with the
//! PNG for viewers without SVG).

use super::{Report, Table};
use std::fmt::Write;

fn cell(s: &str) -> String {
    let s = s.replace('|', "\\|").replace(['\n', '\r'], " ");
    if s.is_empty() {
        " ".into()
    } else {
        s
    }
}

/// A Markdown table.
pub fn table(t: &Table) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| {} |",
        t.columns
            .iter()
            .map(|c| cell(c))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(
        s,
        "|{}|",
        t.columns
            .iter()
            .map(|_| "---")
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in &t.rows {
        let _ = writeln!(
            s,
            "| {} |",
            r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    s
}

/// A heading's anchor as GitHub and the HTML page make it: lower case, letters, digits,
/// `-` for spaces, other characters dropped.
pub fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The headings of the report, in order: its sections, the environment, the tables.
pub fn contents(report: &Report) -> Vec<String> {
    let mut v: Vec<String> = report.sections.iter().map(|s| s.heading.clone()).collect();
    v.push(ENVIRONMENT.into());
    v.push(TABLES.into());
    v
}

/// The environment's heading.
pub const ENVIRONMENT: &str = "Environment";
/// The data tables' heading.
pub const TABLES: &str = "Tables";

/// What the data tables say of themselves.
pub const TABLES_NOTE: &str = "Wide tables: drivers as rows, parameters as columns. Measured \
     cells give the median over the repetitions and, in brackets, the order-statistic interval \
     of the median; exact (counted, modelled, derived) cells give the value alone. Modelled \
     cells are for the profile the plots use; every row of every profile (the calibrated one \
     included) is in the CSV and JSON outputs beside this report.";

/// The whole report as Markdown.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", report.title);
    for p in &report.intro {
        let _ = writeln!(s, "{p}\n");
    }
    let _ = writeln!(s, "Contents:\n");
    for h in contents(report) {
        let _ = writeln!(s, "- [{h}](#{})", anchor(&h));
    }
    let _ = writeln!(s);
    for sec in &report.sections {
        let _ = writeln!(s, "## {}\n", sec.heading);
        if let Some(f) = &sec.figure {
            let _ = writeln!(s, "![{}]({}.svg)\n", f.title, f.id);
            let _ = writeln!(
                s,
                "*{}* ([SVG]({id}.svg), [PNG]({id}.png))\n",
                f.title,
                id = f.id
            );
        }
        for t in &sec.tables {
            let _ = writeln!(s, "**{}**\n", t.title);
            let _ = writeln!(s, "{}", table(t));
        }
        for p in &sec.sentences {
            let _ = writeln!(s, "- {p}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## {ENVIRONMENT}\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    for (k, v) in &report.environment {
        let _ = writeln!(s, "| {} | {} |", cell(k), cell(v));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "## {TABLES}\n");
    let _ = writeln!(s, "{TABLES_NOTE}\n");
    for t in &report.tables {
        let _ = writeln!(s, "### {}\n", t.title);
        let _ = writeln!(s, "{}", table(t));
    }
    s
}
