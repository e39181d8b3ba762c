//! Errors of a TOML file with positions: `FILE:LINE:COLUMN: key `KEY`: what`, for the
//! experiment files and the device profiles alike.

use super::error::HarnessError;
use std::ops::Range;

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '"'
}

/// The table header (`[[workload.copy-up]]` gives `workload.copy-up`) in force at `pos`.
fn header_at(text: &str, pos: usize) -> Option<String> {
    // Include the line `pos` is on, in case the span starts at a header.
    let pos = pos.min(text.len());
    let end = text[pos..]
        .find('\n')
        .map(|i| pos + i)
        .unwrap_or(text.len());
    text.get(..end)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
}

/// The key a span is about: the key itself when the span starts on it, else the key of
/// the nearest `key =` before it; with its table header as a prefix.
fn key_at(text: &str, span: &Range<usize>) -> String {
    let start = span.start.min(text.len());
    let rest = &text[start..];
    let head: String = rest.chars().take_while(|&c| is_key_char(c)).collect();
    let after = rest[head.len()..].trim_start();
    let key = if !head.is_empty() && after.starts_with('=') {
        Some(head.trim_matches('"').to_string())
    } else if rest.starts_with('[') && span.end > start {
        None
    } else {
        text[..start].rfind('=').and_then(|eq| {
            let k: String = text[..eq]
                .trim_end()
                .chars()
                .rev()
                .take_while(|&c| is_key_char(c))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            (!k.is_empty()).then(|| k.trim_matches('"').to_string())
        })
    };
    qualify(text, start, key)
}

pub(crate) fn qualify(text: &str, pos: usize, key: Option<String>) -> String {
    let header = header_at(text, pos);
    match (header, key) {
        (Some(h), Some(k)) if !k.starts_with(&format!("{h}.")) => format!("{h}.{k}"),
        (_, Some(k)) => k,
        (Some(h), None) => h,
        (None, None) => "(top level)".to_string(),
    }
}

/// The key a serde message names (`unknown field `x``, `missing field `x``).
fn key_in_message(msg: &str) -> Option<String> {
    for phrase in [
        "unknown field `",
        "missing field `",
        "duplicate key `",
        "duplicate field `",
    ] {
        if let Some(i) = msg.find(phrase) {
            let rest = &msg[i + phrase.len()..];
            return rest.find('`').map(|j| rest[..j].to_string());
        }
    }
    None
}

/// A config error from a TOML parse or deserialize error.
pub fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> HarnessError {
    let span = e.span().unwrap_or(0..0);
    let message = e.message().trim().to_string();
    let key = match key_in_message(&message) {
        Some(k) => qualify(text, span.start, Some(k)),
        None => key_at(text, &span),
    };
    spanned_error(file, text, &span, key, message)
}

pub(crate) fn spanned_error(
    file: &str,
    text: &str,
    span: &Range<usize>,
    key: String,
    message: String,
) -> HarnessError {
    let (line, column) = line_col(text, span.start);
    HarnessError::Config {
        file: file.to_string(),
        line,
        column,
        key,
        message,
    }
}

/// A config error at the first `key =` of the file (used for checks after parsing).
pub fn error_at_key(file: &str, text: &str, key: &str, message: &str) -> HarnessError {
    let span = find_key(text, 0..text.len(), key);
    spanned_error(
        file,
        text,
        &span,
        qualify(text, span.start, Some(key.to_string())),
        message.to_string(),
    )
}

/// The end of the table that starts at `start`: the next `[` header line, or the end.
pub(crate) fn table_end(text: &str, start: usize) -> usize {
    let from = text[start.min(text.len())..]
        .find('\n')
        .map(|i| start + i + 1)
        .unwrap_or(text.len());
    let mut pos = from;
    for line in text[from..].split_inclusive('\n') {
        if line.trim_start().starts_with('[') {
            return pos;
        }
        pos += line.len();
    }
    text.len()
}

/// The position of `key =` inside the table whose span is `within` (the span of a table of
/// an array of tables may cover its header only, so the search runs to the next header),
/// or the start of `within`.
pub(crate) fn find_key(text: &str, within: Range<usize>, key: &str) -> Range<usize> {
    let within = within.start..within.end.max(table_end(text, within.start));
    let hay = text.get(within.clone()).unwrap_or("");
    let mut from = 0;
    while let Some(i) = hay[from..].find(key) {
        let at = from + i;
        let before_ok = at == 0
            || hay[..at]
                .chars()
                .next_back()
                .is_some_and(|c| !is_key_char(c) || c == '.');
        let after = hay[at + key.len()..].trim_start();
        if before_ok && after.starts_with('=') {
            return within.start + at..within.start + at + key.len();
        }
        from = at + key.len();
    }
    within.start..within.start
}
