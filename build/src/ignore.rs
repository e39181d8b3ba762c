//! `.containerignore` / `.dockerignore`, with Docker's pattern rules (moby's
//! `patternmatcher`), and the glob matching COPY sources share.
//!
//! - One pattern a line; lines starting with `#` are comments; blanks are trimmed;
//!   `!` makes an exception; a pattern is cleaned as a path (`./`, `//`, `..` resolved) and
//!   a leading `/` dropped (patterns are relative to the context root).
//! - Glob syntax of Go's `filepath.Match` (`*` and `?` within one path component,
//!   `[a-z]`, `[^a]`, `\` escaping) plus `**`, any number of components (zero included).
//! - A path is excluded when the last pattern matching it, or one of its parent
//!   directories, is not an exception (so excluding a directory excludes what it holds,
//!   and `!dir/keep` brings one file back).
//! - `.containerignore` is read when present, else `.dockerignore` (podman's order).

use crate::error::{BuildError, Result};
use std::path::Path;

/// A cleaned pattern, split in components.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    parts: Vec<String>,
    exception: bool,
}

/// The ignore rules of a context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    patterns: Vec<Pattern>,
    /// The file they came from, if any.
    pub file: Option<String>,
}

/// Cleans a relative path as `filepath.Clean` does, then drops a leading `/`; `None` when
/// it climbs above the root.
pub fn clean(path: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c.to_string()),
        }
    }
    Some(out)
}

impl Ignore {
    /// Reads the context's ignore file (none: nothing is ignored).
    pub fn load(context: &Path) -> Result<Ignore> {
        for name in [".containerignore", ".dockerignore"] {
            let path = context.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let mut ig = Ignore::parse(&text);
                    ig.file = Some(name.to_string());
                    return Ok(ig);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(layerlab_core::Error::io(&path, e).into()),
            }
        }
        Ok(Ignore::default())
    }

    /// Reads the rules from the file's text.
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, body) = match line.strip_prefix('!') {
                Some(b) => (true, b.trim()),
                None => (false, line),
            };
            // a pattern climbing above the root matches what remains (Docker cleans it so)
            let parts = clean(body).unwrap_or_default();
            if parts.is_empty() {
                continue;
            }
            patterns.push(Pattern { parts, exception });
        }
        Ignore {
            patterns,
            file: None,
        }
    }

    /// Whether the context path (relative, `/`-separated) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        let mut out = false;
        for p in &self.patterns {
            let mut hit = glob_parts(&p.parts, &comps);
            if !hit && p.parts.len() < comps.len() && !p.parts.iter().any(|x| x == "**") {
                hit = glob_parts(&p.parts, &comps[..p.parts.len()]);
            }
            if !hit && p.parts.iter().any(|x| x == "**") {
                hit = (1..comps.len()).any(|n| glob_parts(&p.parts, &comps[..n]));
            }
            if hit {
                out = !p.exception;
            }
        }
        out
    }

    /// Whether a rule could bring back something below an excluded directory.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

/// Whether a cleaned glob (components) matches a path (components); `**` matches any
/// number of components.
pub fn glob_parts<S: AsRef<str>>(pat: &[String], path: &[S]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| glob_parts(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, prest)) => component(first, p.as_ref()) && glob_parts(rest, prest),
            None => false,
        },
    }
}

/// Whether a glob pattern has metacharacters.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's `filepath.Match` for one component.
pub fn component(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

fn matches(p: &[char], n: &[char]) -> bool {
    match p.split_first() {
        None => n.is_empty(),
        Some(('*', rest)) => (0..=n.len()).any(|k| matches(rest, &n[k..])),
        Some(('?', rest)) => !n.is_empty() && matches(rest, &n[1..]),
        Some(('[', rest)) => {
            let Some((&c, ntail)) = n.split_first() else {
                return false;
            };
            match class(rest, c) {
                Some((ok, after)) => ok && matches(after, ntail),
                None => false,
            }
        }
        Some(('\\', rest)) if !rest.is_empty() => {
            n.first() == rest.first() && matches(&rest[1..], &n[1..])
        }
        Some((&c, rest)) => n.first() == Some(&c) && matches(rest, &n[1..]),
    }
}

/// A `[...]` class (the `[` read): whether `c` is in it, and the pattern after `]`.
fn class(p: &[char], c: char) -> Option<(bool, &[char])> {
    let (negate, mut i) = match p.first() {
        Some('^') => (true, 1),
        _ => (false, 0),
    };
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((hit != negate, &p[i + 1..]));
        }
        first = false;
        let lo = if lo == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            lo
        };
        i += 1;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|x| *x != ']') {
            i += 1;
            let h = if p.get(i) == Some(&'\\') {
                i += 1;
                *p.get(i)?
            } else {
                *p.get(i)?
            };
            i += 1;
            h
        } else {
            lo
        };
        if lo <= c && c <= hi {
            hit = true;
        }
    }
}

/// A glob source of COPY, cleaned; an error when it leaves the context.
pub fn source_pattern(src: &str, context: &str) -> Result<Vec<String>> {
    clean(src).ok_or_else(|| BuildError::Context {
        context: context.to_string(),
        reason: format!("'{src}' is outside the build context"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_rules() {
        assert!(component("*.txt", "a.txt"));
        assert!(!component("*.txt", "a.txts"));
        assert!(component("a?c", "abc"));
        assert!(component("[a-c]x", "bx"));
        assert!(!component("[^a-c]x", "bx"));
        assert!(component("\\*", "*"));
        assert!(!component("\\*", "a"));
    }

    #[test]
    fn docker_ignore_rules() {
        let ig = Ignore::parse(
            "# comment\n/node_modules\n*.log\n**/*.tmp\n!keep.log\ndocs\n!docs/README.md\n./build/../dist\n",
        );
        assert!(ig.excluded("node_modules"));
        assert!(
            ig.excluded("node_modules/x/y.js"),
            "contents of an excluded dir"
        );
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("sub/a.log"), "* stays within one component");
        assert!(!ig.excluded("keep.log"), "exception after the rule");
        assert!(ig.excluded("x.tmp"), "** matches zero directories");
        assert!(ig.excluded("a/b/c.tmp"));
        assert!(ig.excluded("docs/guide.md"));
        assert!(!ig.excluded("docs/README.md"));
        assert!(ig.excluded("dist/app"), "pattern cleaned");
        assert!(!ig.excluded("src/main.rs"));
        let last_wins = Ignore::parse("!a.txt\n*.txt\n");
        assert!(last_wins.excluded("a.txt"));
        let all_but = Ignore::parse("*\n!src\n");
        assert!(all_but.excluded("Containerfile"));
        assert!(!all_but.excluded("src/lib.rs"));
    }
}
