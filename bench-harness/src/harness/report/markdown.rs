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

/// The whole report as Markdown.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", report.title);
    for p in &report.intro {
        let _ = writeln!(s, "{p}\n");
    }
    let _ = writeln!(s, "## Environment\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    for (k, v) in &report.environment {
        let _ = writeln!(s, "| {} | {} |", cell(k), cell(v));
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
        for p in &sec.sentences {
            let _ = writeln!(s, "- {p}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Tables\n");
    let _ = writeln!(
        s,
        "Medians over repetitions; the 95% confidence interval of the mean where n > 1. \
         Modelled rows are for the profile the plots use; every row of every profile is in \
         the CSV and JSON outputs beside this report.\n"
    );
    for t in &report.tables {
        let _ = writeln!(s, "### {}\n", t.title);
        let _ = writeln!(s, "{}", table(t));
    }
    s
}
