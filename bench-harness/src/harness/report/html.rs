//! `report.html`: one self-contained page (style inline, plots as inline SVG, nothing
//! fetched from anywhere), readable in a browser.

use super::{markdown, Report, Table};
use std::fmt::Write;

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Escapes text and turns `code` spans into `<code>`.
fn inline(s: &str) -> String {
    let mut o = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(o, "<code>{}</code>", escape(part));
        } else {
            o.push_str(&escape(part));
        }
    }
    o
}

const STYLE: &str = "
body { font-family: 'DejaVu Sans', Verdana, sans-serif; max-width: 1000px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { font-size: 1.35em; margin-top: 2em; border-bottom: 1px solid #eee; }
h3 { font-size: 1.1em; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f4f4f4; padding: 0 .2em; }
details { margin: .5em 0; }
summary { cursor: pointer; font-weight: bold; }
";

/// Cell colours by tier: green for the best, through yellow, to red for the fifth and
/// later (a colour says "tier", never more than the tier number beside it).
const TIER_COLOURS: [&str; 5] = ["#c7e9c0", "#e5f5c0", "#fff3b0", "#fdd9a8", "#f9c0b0"];

fn is_num(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | ' ' | '–' | 'e' | '+'))
}

/// An HTML table.
pub fn table(t: &Table) -> String {
    let mut s = String::from("<table>\n<thead><tr>");
    for c in &t.columns {
        let _ = write!(s, "<th>{}</th>", escape(c));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for (i, r) in t.rows.iter().enumerate() {
        s.push_str("<tr>");
        for (j, c) in r.iter().enumerate() {
            let class = if is_num(c) { " class=\"num\"" } else { "" };
            let tier = t.tiers.get(i).and_then(|row| row.get(j)).copied().flatten();
            let style = tier.map_or_else(String::new, |k| {
                format!(
                    " style=\"background:{}\"",
                    TIER_COLOURS[k.min(TIER_COLOURS.len() - 1)]
                )
            });
            let _ = write!(s, "<td{class}{style}>{}</td>", escape(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// The whole report as one HTML page; `svgs` are the figures' SVG texts by figure id.
pub fn render(report: &Report, svgs: &[(String, String)]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&report.title),
        escape(&report.title)
    );
    for p in &report.intro {
        let _ = writeln!(s, "<p>{}</p>", inline(p));
    }
    s.push_str("<nav><p>Contents:</p>\n<ul>\n");
    for h in markdown::contents(report) {
        let _ = writeln!(
            s,
            "<li><a href=\"#{}\">{}</a></li>",
            markdown::anchor(&h),
            inline(&h)
        );
    }
    s.push_str("</ul></nav>\n");
    for sec in &report.sections {
        let _ = writeln!(
            s,
            "<h2 id=\"{}\">{}</h2>",
            markdown::anchor(&sec.heading),
            inline(&sec.heading)
        );
        if let Some(f) = &sec.figure {
            let svg = svgs
                .iter()
                .find(|(id, _)| id == &f.id)
                .map(|(_, svg)| strip_prolog(svg))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "<figure>\n{svg}\n<figcaption>{} (also {}.svg and {}.png beside this page)\
                 </figcaption>\n</figure>",
                escape(&f.title),
                escape(&f.id),
                escape(&f.id)
            );
        }
        for t in &sec.tables {
            let _ = writeln!(
                s,
                "<p><strong>{}</strong></p>\n{}",
                inline(&t.title),
                table(t)
            );
        }
        if !sec.sentences.is_empty() {
            s.push_str("<ul>\n");
            for p in &sec.sentences {
                let _ = writeln!(s, "<li>{}</li>", inline(p));
            }
            s.push_str("</ul>\n");
        }
    }
    let _ = writeln!(
        s,
        "<h2 id=\"{}\">{}</h2>\n<table>\n<tbody>",
        markdown::anchor(markdown::ENVIRONMENT),
        markdown::ENVIRONMENT
    );
    for (k, v) in &report.environment {
        let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    }
    s.push_str("</tbody>\n</table>\n");
    let _ = writeln!(
        s,
        "<h2 id=\"{}\">{}</h2>\n<p>{}</p>",
        markdown::anchor(markdown::TABLES),
        markdown::TABLES,
        escape(markdown::TABLES_NOTE)
    );
    for (i, t) in report.tables.iter().enumerate() {
        let open = if i + 1 == report.tables.len() {
            " open"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "<details{open}>\n<summary>{} ({} rows)</summary>\n{}</details>",
            inline(&t.title),
            t.rows.len(),
            table(t)
        );
    }
    s.push_str("</body>\n</html>\n");
    s
}

/// An id for a heading: lower-case letters and digits, dashes between words.
/// The SVG element alone, without an XML declaration (not allowed inside HTML).
fn strip_prolog(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}
