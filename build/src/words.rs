//! Words of an instruction as Docker's shell-word lexer reads them: split on unquoted
//! whitespace, quotes removed, the escape character honoured, and variables substituted
//! (`$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?message}`, `${VAR?message}`).
//!
//! Rules (moby's `shell` package and the Dockerfile reference): inside single quotes
//! nothing is special; inside double quotes the escape character escapes only `"`, `$`
//! and itself, and variables are substituted; outside quotes the escape character makes the
//! next character literal. An unset variable is empty. `:-`/`:+`/`:?` treat an empty
//! value as unset; `-`/`+`/`?` test only whether it is set. A `$` not followed by a name
//! or `{` is literal.

use std::iter::Peekable;
use std::str::Chars;

/// Looks a variable up in the environment in effect.
pub trait Lookup {
    /// The variable's value, `None` when unset.
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Splits `text` on whitespace outside quotes and escapes; the words keep their quotes
/// and escapes (for [`expand`]).
pub fn split(text: &str, escape: char) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unmatched {q} quote"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// One word with its quotes removed and its variables substituted.
pub fn expand(word: &str, env: &dyn Lookup, escape: char) -> Result<String, String> {
    let mut out = String::new();
    let mut it = word.chars().peekable();
    while let Some(c) = it.next() {
        if c == escape {
            if let Some(n) = it.next() {
                out.push(n);
            } else {
                out.push(c);
            }
        } else if c == '\'' {
            loop {
                match it.next() {
                    Some('\'') => break,
                    Some(x) => out.push(x),
                    None => return Err("unmatched ' quote".into()),
                }
            }
        } else if c == '"' {
            loop {
                match it.next() {
                    Some('"') => break,
                    Some(x) if x == escape => match it.peek() {
                        Some(&n) if n == '"' || n == '$' || n == escape => {
                            out.push(n);
                            it.next();
                        }
                        _ => out.push(x),
                    },
                    Some('$') => out.push_str(&variable(&mut it, env, escape)?),
                    Some(x) => out.push(x),
                    None => return Err("unmatched \" quote".into()),
                }
            }
        } else if c == '$' {
            out.push_str(&variable(&mut it, env, escape)?);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Substitutes every variable of `text` and removes quotes, keeping it one string
/// (`WORKDIR`, `USER`, `STOPSIGNAL`: the whole argument).
pub fn expand_all(text: &str, env: &dyn Lookup, escape: char) -> Result<String, String> {
    expand(text, env, escape)
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The variable name at `it` (letters, digits, `_`), possibly empty.
fn name(it: &mut Peekable<Chars<'_>>) -> String {
    let mut name = String::new();
    while let Some(c) = it.next_if(|&c| is_name(c)) {
        name.push(c);
    }
    name
}

/// After a `$`: a name, a `${...}` form, or a literal `$`.
fn variable(
    it: &mut Peekable<Chars<'_>>,
    env: &dyn Lookup,
    escape: char,
) -> Result<String, String> {
    match it.peek() {
        Some('{') => {
            it.next();
            braced(it, env, escape)
        }
        Some(&c) if is_name(c) => Ok(env.get(&name(it)).unwrap_or_default()),
        _ => Ok("$".to_string()),
    }
}

/// `${NAME}`, `${NAME<op>word}`; the `$` and `{` already read.
fn braced(it: &mut Peekable<Chars<'_>>, env: &dyn Lookup, escape: char) -> Result<String, String> {
    let name = name(it);
    if name.is_empty() {
        return Err("bad substitution: a ${...} without a variable name".into());
    }
    let mut op = String::new();
    match it.next() {
        Some('}') => return Ok(env.get(&name).unwrap_or_default()),
        Some(':') => {
            op.push(':');
            match it.next() {
                Some(c @ ('-' | '+' | '?')) => op.push(c),
                _ => return Err(format!("bad substitution in ${{{name}:...}}")),
            }
        }
        Some(c @ ('-' | '+' | '?')) => op.push(c),
        None => return Err(format!("missing '}}' in ${{{name}...")),
        _ => return Err(format!("bad substitution: ${{{name}...}} is not supported")),
    }
    // the word runs to the matching `}` (nested braces counted)
    let mut raw = String::new();
    let mut depth = 0usize;
    loop {
        match it.next() {
            Some('}') if depth == 0 => break,
            Some(c) => {
                if c == '{' {
                    depth += 1;
                } else if c == '}' {
                    depth -= 1;
                } else if c == escape {
                    raw.push(c);
                    if let Some(n) = it.next() {
                        raw.push(n);
                    }
                    continue;
                }
                raw.push(c);
            }
            None => return Err(format!("missing '}}' in ${{{name}{op}...")),
        }
    }
    let value = env.get(&name);
    let set = value.is_some();
    let nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let present = if op.starts_with(':') { nonempty } else { set };
    let word = || expand(&raw, env, escape);
    match op.trim_start_matches(':') {
        "-" => {
            if present {
                Ok(value.unwrap_or_default())
            } else {
                word()
            }
        }
        "+" => {
            if present {
                word()
            } else {
                Ok(String::new())
            }
        }
        _ => {
            if present {
                Ok(value.unwrap_or_default())
            } else {
                let msg = word()?;
                Err(if msg.is_empty() {
                    format!("{name}: variable is not set")
                } else {
                    format!("{name}: {msg}")
                })
            }
        }
    }
}

/// `KEY=VALUE` words (ENV, LABEL, ARG): splits at the first `=` of the raw word; the key
/// is expanded too.
pub fn key_value(word: &str) -> Option<(&str, &str)> {
    word.split_once('=')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("one".into()),
            "E" => Some(String::new()),
            "P" => Some("/usr/bin".into()),
            _ => None,
        }
    }

    fn x(s: &str) -> String {
        expand(s, &env, '\\').unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn substitution_forms_quotes_and_escapes() {
        let cases = [
            // substitution forms
            ("$A", "one"),
            ("${A}x", "onex"),
            ("$Ax", ""),
            ("${U:-def}", "def"),
            ("${E:-def}", "def"),
            ("${E-def}", ""),
            ("${A:-def}", "one"),
            ("${A:+set}", "set"),
            ("${E:+set}", ""),
            ("${E+set}", "set"),
            ("${U:+set}", ""),
            ("${U:-$P/x}", "/usr/bin/x"),
            ("${U:?must be set}", "ERR U: must be set"),
            ("a$", "a$"),
            ("${A", "ERR missing '}' in ${A..."),
            // quotes and escapes
            ("'$A'", "$A"),
            ("\"$A b\"", "one b"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("\"a\\b\"", "a\\b"),
            ("a\\ b", "a b"),
        ];
        for (word, want) in cases {
            assert_eq!(x(word), want, "expanding {word}");
        }
        assert_eq!(expand("`$A", &env, '`').unwrap_or_default(), "$A");
    }

    #[test]
    fn split_keeps_quoted_spaces() {
        let w = split("a=\"x y\" b='c d' e\\ f", '\\').unwrap_or_default();
        assert_eq!(w, vec!["a=\"x y\"", "b='c d'", "e\\ f"]);
        assert!(split("a=\"x", '\\').is_err());
    }
}
