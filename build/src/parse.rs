//! Reading a Containerfile (Dockerfile syntax) into stages of instructions, before
//! anything is built: every error names the file, the line and the instruction.
//!
//! - Parser directives (`# escape=` with `\` or `` ` ``, `# syntax=`, `# check=`) are
//!   read only at the very top, before any comment, blank line or instruction; an unknown
//!   directive is a comment.
//! - A line ending in the escape character (trailing blanks allowed) continues on the next;
//!   comment lines and blank lines inside a continued instruction are dropped.
//! - Keywords are case-insensitive. Arguments are kept raw: variables are substituted
//!   when the step runs, against the environment in effect then ([`crate::words`]).
//! - Only `ARG` may come before the first `FROM` (global build arguments, usable in
//!   `FROM` lines).

use crate::error::{BuildError, Result};

/// A command as RUN, CMD and ENTRYPOINT take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Shell form: the text, run with the SHELL in effect.
    Shell(String),
    /// Exec form: a JSON array of strings.
    Exec(Vec<String>),
}

/// What one instruction asks for; arguments raw (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// COPY or ADD.
    Copy {
        /// ADD (local tars extracted).
        add: bool,
        /// `--from=STAGE|IMAGE`.
        from: Option<String>,
        /// `--chown=USER[:GROUP]` (numeric ids).
        chown: Option<String>,
        /// `--chmod=MODE`.
        chmod: Option<String>,
        /// Sources, raw words.
        srcs: Vec<String>,
        /// Destination, raw word.
        dest: String,
    },
    /// RUN.
    Run(Command),
    /// CMD.
    Cmd(Command),
    /// ENTRYPOINT.
    Entrypoint(Command),
    /// WORKDIR, raw.
    Workdir(String),
    /// ENV, raw `(key, value)` words.
    Env(Vec<(String, String)>),
    /// ARG, `(name, raw default)`.
    Arg(Vec<(String, Option<String>)>),
    /// LABEL, raw `(key, value)` words.
    Label(Vec<(String, String)>),
    /// USER, raw.
    User(String),
    /// EXPOSE, raw words.
    Expose(Vec<String>),
    /// VOLUME, raw words.
    Volume(Vec<String>),
    /// STOPSIGNAL, raw.
    StopSignal(String),
    /// SHELL, the exec-form array.
    Shell(Vec<String>),
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instr {
    /// Line where it starts (1-based).
    pub line: usize,
    /// The keyword, upper case.
    pub keyword: String,
    /// The instruction as printed: keyword and arguments, continuations joined.
    pub text: String,
    /// What it asks for.
    pub kind: Kind,
}

/// One `FROM` and the instructions up to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages (0-based): `--from=0` names the first.
    pub index: usize,
    /// `AS name`, lower case.
    pub name: Option<String>,
    /// The base, raw (`scratch`, an image, a stage; global ARGs substituted when built).
    pub base: String,
    /// The FROM line.
    pub line: usize,
    /// The FROM instruction as printed.
    pub text: String,
    /// The instructions after it.
    pub instrs: Vec<Instr>,
}

/// A parsed Containerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerfile {
    /// Its name, for errors.
    pub file: String,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// ARG instructions before the first FROM: `(name, raw default)`.
    pub global_args: Vec<(String, Option<String>)>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

/// A logical line: an instruction with its continuations joined.
struct Logical {
    line: usize,
    text: String,
}

fn err(file: &str, line: usize, instruction: &str, reason: impl Into<String>) -> BuildError {
    BuildError::Parse {
        file: file.to_string(),
        line,
        instruction: instruction.to_string(),
        reason: reason.into(),
    }
}

/// Reads the directives at the top; returns the escape character and the index of the
/// first line after them.
fn directives(file: &str, lines: &[&str]) -> Result<(char, usize)> {
    let mut escape = '\\';
    let mut seen: Vec<String> = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let Some(body) = raw.trim().strip_prefix('#') else {
            return Ok((escape, i));
        };
        let Some((key, value)) = body.split_once('=') else {
            return Ok((escape, i));
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok((escape, i));
        }
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            // an unknown directive is a comment, and ends the directives
            return Ok((escape, i));
        }
        if seen.contains(&key) {
            return Err(err(
                file,
                i + 1,
                "directive",
                format!("'{key}' given twice"),
            ));
        }
        if key == "escape" {
            escape = match value {
                "\\" => '\\',
                "`" => '`',
                v => {
                    return Err(err(
                        file,
                        i + 1,
                        "directive",
                        format!("invalid escape character '{v}': must be \\ or `"),
                    ))
                }
            };
        }
        seen.push(key);
    }
    Ok((escape, lines.len()))
}

fn logical_lines(lines: &[&str], start: usize, escape: char) -> Vec<Logical> {
    let mut out = Vec::new();
    let mut cur: Option<Logical> = None;
    for (i, raw) in lines.iter().enumerate().skip(start) {
        let trimmed = raw.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        if trimmed.trim().is_empty() {
            if cur.is_none() {
                continue;
            }
            continue;
        }
        let body = raw.trim_end();
        let (piece, more) = match body.strip_suffix(escape) {
            Some(p) => (p, true),
            None => (body, false),
        };
        let mut l = cur.take().unwrap_or(Logical {
            line: i + 1,
            text: String::new(),
        });
        l.text.push_str(if l.text.is_empty() {
            piece.trim_start()
        } else {
            piece
        });
        if more {
            cur = Some(l);
        } else {
            out.push(l);
        }
    }
    if let Some(l) = cur {
        out.push(l);
    }
    out
}

/// Parses a Containerfile's text (see the module doc).
pub fn parse(file: &str, text: &str) -> Result<Containerfile> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, start) = directives(file, &lines)?;
    let mut cf = Containerfile {
        file: file.to_string(),
        escape,
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    for l in logical_lines(&lines, start, escape) {
        let (kw, rest) = match l.text.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (l.text.as_str(), ""),
        };
        let keyword = kw.to_ascii_uppercase();
        let text = if rest.is_empty() {
            keyword.clone()
        } else {
            format!("{keyword} {rest}")
        };
        let e = |reason: String| err(file, l.line, &keyword, reason);
        if keyword == "FROM" {
            let stage = from(&cf, l.line, rest, escape, text).map_err(e)?;
            cf.stages.push(stage);
            continue;
        }
        let kind = instruction(&keyword, rest, escape).map_err(e)?;
        match cf.stages.last_mut() {
            Some(s) => s.instrs.push(Instr {
                line: l.line,
                keyword,
                text,
                kind,
            }),
            None => match kind {
                Kind::Arg(args) => cf.global_args.extend(args),
                _ => {
                    return Err(err(
                        file,
                        l.line,
                        &keyword,
                        "only ARG may come before the first FROM",
                    ))
                }
            },
        }
    }
    if cf.stages.is_empty() {
        return Err(err(file, lines.len().max(1), "FROM", "no FROM instruction"));
    }
    Ok(cf)
}

fn from(
    cf: &Containerfile,
    line: usize,
    rest: &str,
    escape: char,
    text: String,
) -> std::result::Result<Stage, String> {
    let words = crate::words::split(rest, escape)?;
    if let Some(flag) = words.iter().find(|w| w.starts_with("--")) {
        return Err(format!("the flag {flag} is not supported"));
    }
    let (base, name) = match words.as_slice() {
        [b] => (b.clone(), None),
        [b, as_, n] if as_.eq_ignore_ascii_case("as") => {
            let n = n.to_ascii_lowercase();
            let ok = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !ok {
                return Err(format!("invalid stage name '{n}'"));
            }
            if cf.stages.iter().any(|s| s.name.as_deref() == Some(&n)) {
                return Err(format!("the stage name '{n}' is used twice"));
            }
            (b.clone(), Some(n))
        }
        _ => return Err("expected FROM IMAGE [AS NAME]".into()),
    };
    Ok(Stage {
        index: cf.stages.len(),
        name,
        base,
        line,
        text,
        instrs: Vec::new(),
    })
}

/// An exec-form JSON array of strings, if the text is one.
fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

fn command(rest: &str) -> std::result::Result<Command, String> {
    if rest.is_empty() {
        return Err("a command is required".into());
    }
    Ok(match json_array(rest) {
        Some(argv) => Command::Exec(argv),
        None => Command::Shell(rest.to_string()),
    })
}

/// Splits `--name=value` flags off the front of the words.
fn flags(
    words: &mut Vec<String>,
    allowed: &[&str],
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    while let Some(w) = words.first() {
        let Some(flag) = w.strip_prefix("--") else {
            break;
        };
        let (name, value) = flag
            .split_once('=')
            .ok_or_else(|| format!("the flag --{flag} needs a value (--{flag}=...)"))?;
        if !allowed.contains(&name) {
            return Err(format!("the flag --{name} is not supported"));
        }
        out.push((name.to_string(), value.to_string()));
        words.remove(0);
    }
    Ok(out)
}

fn pairs(words: &[String], what: &str) -> std::result::Result<Vec<(String, String)>, String> {
    words
        .iter()
        .map(|w| match crate::words::key_value(w) {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("'{w}': {what} expects KEY=VALUE")),
        })
        .collect()
}

fn instruction(keyword: &str, rest: &str, escape: char) -> std::result::Result<Kind, String> {
    let words = || crate::words::split(rest, escape);
    let one = |what: &str| {
        if rest.is_empty() {
            Err(format!("{what} is required"))
        } else {
            Ok(rest.to_string())
        }
    };
    Ok(match keyword {
        "COPY" | "ADD" => {
            let add = keyword == "ADD";
            let mut w = words()?;
            let allowed: &[&str] = if add {
                &["chown", "chmod"]
            } else {
                &["from", "chown", "chmod"]
            };
            let mut from = None;
            let mut chown = None;
            let mut chmod = None;
            for (k, v) in flags(&mut w, allowed)? {
                match k.as_str() {
                    "from" => from = Some(v),
                    "chown" => chown = Some(v),
                    _ => chmod = Some(v),
                }
            }
            let rest_words = w.join(" ");
            let mut all = json_array(&rest_words).unwrap_or(w);
            if all.len() < 2 {
                return Err("expected at least one source and a destination".into());
            }
            let dest = all.pop().unwrap_or_default();
            Kind::Copy {
                add,
                from,
                chown,
                chmod,
                srcs: all,
                dest,
            }
        }
        "RUN" => {
            if rest.starts_with("--") {
                let flag = rest.split_whitespace().next().unwrap_or(rest);
                return Err(format!("the flag {flag} is not supported"));
            }
            Kind::Run(command(rest)?)
        }
        "CMD" => Kind::Cmd(command(rest)?),
        "ENTRYPOINT" => Kind::Entrypoint(command(rest)?),
        "WORKDIR" => Kind::Workdir(one("a directory")?),
        "USER" => Kind::User(one("a user")?),
        "STOPSIGNAL" => Kind::StopSignal(one("a signal")?),
        "ENV" => {
            let w = words()?;
            if w.first().is_some_and(|f| !f.contains('=')) {
                // legacy form: ENV KEY the rest of the line
                let (k, v) = rest
                    .split_once(char::is_whitespace)
                    .ok_or("ENV KEY needs a value")?;
                Kind::Env(vec![(k.to_string(), v.trim().to_string())])
            } else if w.is_empty() {
                return Err("ENV needs KEY=VALUE".into());
            } else {
                Kind::Env(pairs(&w, "ENV")?)
            }
        }
        "LABEL" => {
            let w = words()?;
            if w.is_empty() {
                return Err("LABEL needs KEY=VALUE".into());
            }
            Kind::Label(pairs(&w, "LABEL")?)
        }
        "ARG" => {
            let w = words()?;
            if w.is_empty() {
                return Err("ARG needs a NAME[=DEFAULT]".into());
            }
            Kind::Arg(
                w.iter()
                    .map(|x| match x.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (x.clone(), None),
                    })
                    .collect(),
            )
        }
        "EXPOSE" => {
            let w = words()?;
            if w.is_empty() {
                return Err("EXPOSE needs a port".into());
            }
            Kind::Expose(w)
        }
        "VOLUME" => {
            let w = json_array(rest).map_or_else(words, Ok)?;
            if w.is_empty() {
                return Err("VOLUME needs a path".into());
            }
            Kind::Volume(w)
        }
        "SHELL" => match json_array(rest) {
            Some(a) if !a.is_empty() => Kind::Shell(a),
            _ => {
                return Err("SHELL requires the JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]".into())
            }
        },
        "" => return Err("empty instruction".into()),
        _ => return Err("unknown or unsupported instruction".into()),
    })
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Containerfile {
        match parse("Containerfile", text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match parse("Containerfile", text) {
            Ok(c) => panic!("parsed: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn stages_instructions_and_forms() {
        let cf = parse_ok(
            "ARG BASE=scratch\nfrom $BASE as build\nCOPY --chown=1:2 --chmod=0755 a b* /dst/\n\
             RUN echo hi && \\\n    # a comment inside\n\n    echo there\nRUN [\"/bin/true\", \"x\"]\n\
             FROM build\nCOPY --from=build /dst /out\nENV A=1 B=\"two words\"\nENV LEGACY some value\n\
             CMD [\"sh\"]\nEXPOSE 80/tcp 443\nVOLUME [\"/data\"]\nSHELL [\"/bin/sh\", \"-ec\"]\n",
        );
        assert_eq!(
            cf.global_args,
            vec![("BASE".into(), Some("scratch".into()))]
        );
        assert_eq!(cf.stages.len(), 2);
        let s0 = &cf.stages[0];
        assert_eq!(s0.name.as_deref(), Some("build"));
        assert_eq!(s0.base, "$BASE");
        assert_eq!(s0.instrs.len(), 3);
        assert_eq!(
            s0.instrs[0].kind,
            Kind::Copy {
                add: false,
                from: None,
                chown: Some("1:2".into()),
                chmod: Some("0755".into()),
                srcs: vec!["a".into(), "b*".into()],
                dest: "/dst/".into()
            }
        );
        assert_eq!(s0.instrs[1].line, 4);
        assert_eq!(
            s0.instrs[1].kind,
            Kind::Run(Command::Shell("echo hi &&     echo there".into()))
        );
        assert_eq!(
            s0.instrs[2].kind,
            Kind::Run(Command::Exec(vec!["/bin/true".into(), "x".into()]))
        );
        let s1 = &cf.stages[1];
        assert_eq!(s1.line, 9);
        assert_eq!(
            s1.instrs[1].kind,
            Kind::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into())
            ])
        );
        assert_eq!(
            s1.instrs[2].kind,
            Kind::Env(vec![("LEGACY".into(), "some value".into())])
        );
        assert_eq!(
            s1.instrs[3].kind,
            Kind::Cmd(Command::Exec(vec!["sh".into()]))
        );
    }

    #[test]
    fn escape_directive_changes_continuations() {
        let cf = parse_ok(
            "# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nCOPY a `\n  c:\\dir\\\n",
        );
        assert_eq!(cf.escape, '`');
        assert_eq!(
            cf.stages[0].instrs[0].kind,
            Kind::Copy {
                add: false,
                from: None,
                chown: None,
                chmod: None,
                srcs: vec!["a".into()],
                dest: "c:\\dir\\".into()
            }
        );
        // after a blank line a directive is a comment
        let cf = parse_ok("\n# escape=`\nFROM scratch\nRUN a \\\n b\n");
        assert_eq!(cf.escape, '\\');
        assert_eq!(
            cf.stages[0].instrs[0].kind,
            Kind::Run(Command::Shell("a  b".into()))
        );
    }

    #[test]
    fn errors_name_file_line_and_instruction() {
        assert_eq!(
            parse_err("FROM scratch\n\nHEALTHCHECK CMD true\n"),
            "Containerfile:3: HEALTHCHECK: unknown or unsupported instruction"
        );
        assert_eq!(
            parse_err("COPY a b\nFROM scratch\n"),
            "Containerfile:1: COPY: only ARG may come before the first FROM"
        );
        assert_eq!(
            parse_err("FROM scratch\nRUN \\\n --mount=type=cache,target=/x true\n"),
            "Containerfile:2: RUN: the flag --mount=type=cache,target=/x is not supported"
        );
        assert_eq!(
            parse_err("FROM scratch\nCOPY onlyone\n"),
            "Containerfile:2: COPY: expected at least one source and a destination"
        );
        assert_eq!(
            parse_err("# escape=x\nFROM scratch\n"),
            "Containerfile:1: directive: invalid escape character 'x': must be \\ or `"
        );
        assert_eq!(
            parse_err("FROM a AS x\nFROM b AS X\n"),
            "Containerfile:2: FROM: the stage name 'x' is used twice"
        );
        assert_eq!(
            parse_err("FROM scratch\nLABEL novalue\n"),
            "Containerfile:2: LABEL: 'novalue': LABEL expects KEY=VALUE"
        );
        assert_eq!(
            parse_err("FROM scratch\nSHELL /bin/sh -c\n"),
            "Containerfile:2: SHELL: SHELL requires the JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]"
        );
        assert_eq!(
            parse_err("FROM scratch\nADD --from=x a b\n"),
            "Containerfile:2: ADD: the flag --from is not supported"
        );
        assert_eq!(
            parse_err("# only a comment\n"),
            "Containerfile:1: FROM: no FROM instruction"
        );
        assert_eq!(
            parse_err("FROM scratch\nENV A=\"x\n"),
            "Containerfile:2: ENV: unmatched \" quote"
        );
    }
}
