//! `replay`: an operation trace (JSON lines, see configs/README.md) replayed on every
//! driver. Lines marked `"setup": true` run outside the measured part. A bad line is an
//! error naming the file and line, found when the config is loaded.

use super::{pattern, Header, RunCtx, Sample, Workload};
use crate::harness::error::{HarnessError, Result};
use layerlab_core::{Error, LayerDriver, LayerId, LayerPath};
use layerlab_drivers::AnyDriver;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// `[[workload.replay]]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// The trace file, relative to the config file's directory.
    pub trace: String,
    /// Repetitions, overriding the experiment's.
    #[serde(default)]
    pub repetitions: Option<u32>,
    /// The parsed trace (filled in by the config loader).
    #[serde(skip)]
    pub steps: Arc<Vec<Step>>,
}

/// One line of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based line number in the trace file.
    pub line: usize,
    /// Set-up: run outside the measured part.
    pub setup: bool,
    /// The operation.
    pub op: TraceOp,
}

/// An operation of a trace, with its arguments validated.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum TraceOp {
    CreateLayer {
        layer: LayerId,
        parent: Option<LayerId>,
    },
    Commit {
        layer: LayerId,
    },
    RemoveLayer {
        layer: LayerId,
    },
    Mkdir {
        layer: LayerId,
        path: LayerPath,
        mode: u32,
    },
    Create {
        layer: LayerId,
        path: LayerPath,
        mode: u32,
    },
    Write {
        layer: LayerId,
        path: LayerPath,
        offset: u64,
        data: Vec<u8>,
    },
    Append {
        layer: LayerId,
        path: LayerPath,
        data: Vec<u8>,
    },
    Truncate {
        layer: LayerId,
        path: LayerPath,
        size: u64,
    },
    Read {
        layer: LayerId,
        path: LayerPath,
        offset: u64,
        len: Option<u64>,
    },
    Stat {
        layer: LayerId,
        path: LayerPath,
    },
    Readdir {
        layer: LayerId,
        path: LayerPath,
    },
    Unlink {
        layer: LayerId,
        path: LayerPath,
    },
    Rmdir {
        layer: LayerId,
        path: LayerPath,
    },
    Rename {
        layer: LayerId,
        path: LayerPath,
        to: LayerPath,
    },
    Chmod {
        layer: LayerId,
        path: LayerPath,
        mode: u32,
    },
    Chown {
        layer: LayerId,
        path: LayerPath,
        uid: u32,
        gid: u32,
    },
    Symlink {
        layer: LayerId,
        path: LayerPath,
        target: String,
    },
    Hardlink {
        layer: LayerId,
        path: LayerPath,
        to: LayerPath,
    },
    Changes {
        layer: LayerId,
    },
    Usage {
        layer: LayerId,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Mode {
    Num(u32),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    op: String,
    layer: Option<String>,
    parent: Option<String>,
    path: Option<String>,
    to: Option<String>,
    target: Option<String>,
    offset: Option<u64>,
    len: Option<u64>,
    data: Option<String>,
    size: Option<u64>,
    mode: Option<Mode>,
    uid: Option<u32>,
    gid: Option<u32>,
    #[serde(default)]
    setup: bool,
}

/// The operations of a trace and the fields each takes (besides `op` and `setup`).
pub const OPS: &[(&str, &[&str])] = &[
    ("create_layer", &["layer", "parent"]),
    ("commit", &["layer"]),
    ("remove_layer", &["layer"]),
    ("mkdir", &["layer", "path", "mode"]),
    ("create", &["layer", "path", "mode"]),
    ("write", &["layer", "path", "offset", "data", "size"]),
    ("append", &["layer", "path", "data", "size"]),
    ("truncate", &["layer", "path", "size"]),
    ("read", &["layer", "path", "offset", "len"]),
    ("stat", &["layer", "path"]),
    ("readdir", &["layer", "path"]),
    ("unlink", &["layer", "path"]),
    ("rmdir", &["layer", "path"]),
    ("rename", &["layer", "path", "to"]),
    ("chmod", &["layer", "path", "mode"]),
    ("chown", &["layer", "path", "uid", "gid"]),
    ("symlink", &["layer", "path", "target"]),
    ("hardlink", &["layer", "path", "to"]),
    ("changes", &["layer"]),
    ("usage", &["layer"]),
];

/// The largest `size` of generated data in a trace line.
const MAX_DATA: u64 = 1 << 30;

/// Parses a trace: one JSON object per line; empty lines and lines starting with `#` are
/// skipped. `file` names the trace in errors.
pub fn parse_trace(text: &str, file: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let bad = |message: String| HarnessError::Trace {
            file: file.to_string(),
            line,
            message,
        };
        let l: Line = serde_json::from_str(t).map_err(|e| bad(e.to_string()))?;
        let op = parse_line(&l).map_err(|m| bad(format!("op `{}`: {m}", l.op)))?;
        steps.push(Step {
            line,
            setup: l.setup,
            op,
        });
    }
    if steps.is_empty() {
        return Err(HarnessError::Trace {
            file: file.to_string(),
            line: 1,
            message: "the trace has no operations".into(),
        });
    }
    Ok(steps)
}

/// What a trace line's parsing says is wrong with it.
type LineResult<T> = std::result::Result<T, String>;

fn parse_line(l: &Line) -> LineResult<TraceOp> {
    let takes = fields_of(l)?;
    let layer = id(&need(&l.layer, "layer")?)?;
    if !takes.contains(&"path") {
        return layer_op(l, layer);
    }
    let path = path_of(&l.path, "path")?;
    path_op(l, layer, path)
}

/// The fields the line's operation takes, once the line gives no other.
fn fields_of(l: &Line) -> LineResult<&'static [&'static str]> {
    let Some((_, allowed)) = OPS.iter().find(|(n, _)| *n == l.op) else {
        let names: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
        return Err(format!("unknown operation (known: {})", names.join(", ")));
    };
    let given = [
        ("layer", l.layer.is_some()),
        ("parent", l.parent.is_some()),
        ("path", l.path.is_some()),
        ("to", l.to.is_some()),
        ("target", l.target.is_some()),
        ("offset", l.offset.is_some()),
        ("len", l.len.is_some()),
        ("data", l.data.is_some()),
        ("size", l.size.is_some()),
        ("mode", l.mode.is_some()),
        ("uid", l.uid.is_some()),
        ("gid", l.gid.is_some()),
    ];
    for (k, present) in given {
        if present && !allowed.contains(&k) {
            return Err(format!("field `{k}` is not used by this operation"));
        }
    }
    Ok(*allowed)
}

fn need(v: &Option<String>, k: &str) -> LineResult<String> {
    v.clone().ok_or_else(|| format!("missing field `{k}`"))
}

fn id(text: &str) -> LineResult<LayerId> {
    Error::parse_id(text).map_err(|e| e.to_string())
}

fn path_of(v: &Option<String>, k: &str) -> LineResult<LayerPath> {
    Error::parse_path(&need(v, k)?).map_err(|e| e.to_string())
}

/// The line's `mode`, or `default` without one.
fn mode(l: &Line, default: u32) -> LineResult<u32> {
    match &l.mode {
        None => Ok(default),
        Some(Mode::Num(n)) => Ok(*n & 0o7777),
        Some(Mode::Text(s)) => layerlab_core::mode::parse(s).map_err(|e| e.to_string()),
    }
}

/// The line's `data`, or `size` bytes of the generated pattern.
fn data(l: &Line) -> LineResult<Vec<u8>> {
    match (&l.data, l.size) {
        (Some(d), None) => Ok(d.as_bytes().to_vec()),
        (None, Some(n)) if n <= MAX_DATA => Ok(pattern(n as usize, n)),
        (None, Some(_)) => Err("size is at most 1GiB".into()),
        (Some(_), Some(_)) => Err("give data or size, not both".into()),
        (None, None) => Err("missing field `data` (or `size`)".into()),
    }
}

/// An operation on a whole layer (one of [`OPS`] without a `path`).
fn layer_op(l: &Line, layer: LayerId) -> LineResult<TraceOp> {
    Ok(match l.op.as_str() {
        "create_layer" => TraceOp::CreateLayer {
            layer,
            parent: l.parent.as_deref().map(id).transpose()?,
        },
        "commit" => TraceOp::Commit { layer },
        "remove_layer" => TraceOp::RemoveLayer { layer },
        "changes" => TraceOp::Changes { layer },
        _ => TraceOp::Usage { layer },
    })
}

/// An operation on a path in a layer (one of [`OPS`] with a `path`).
fn path_op(l: &Line, layer: LayerId, path: LayerPath) -> LineResult<TraceOp> {
    Ok(match l.op.as_str() {
        "mkdir" => TraceOp::Mkdir {
            layer,
            path,
            mode: mode(l, 0o755)?,
        },
        "create" => TraceOp::Create {
            layer,
            path,
            mode: mode(l, 0o644)?,
        },
        "write" => TraceOp::Write {
            layer,
            path,
            offset: l.offset.unwrap_or(0),
            data: data(l)?,
        },
        "append" => TraceOp::Append {
            layer,
            path,
            data: data(l)?,
        },
        "truncate" => TraceOp::Truncate {
            layer,
            path,
            size: l.size.ok_or("missing field `size`")?,
        },
        "read" => TraceOp::Read {
            layer,
            path,
            offset: l.offset.unwrap_or(0),
            len: l.len,
        },
        "stat" => TraceOp::Stat { layer, path },
        "readdir" => TraceOp::Readdir { layer, path },
        "unlink" => TraceOp::Unlink { layer, path },
        "rmdir" => TraceOp::Rmdir { layer, path },
        "rename" => TraceOp::Rename {
            layer,
            path,
            to: path_of(&l.to, "to")?,
        },
        "chmod" => TraceOp::Chmod {
            layer,
            path,
            mode: match l.mode {
                None => return Err("missing field `mode`".into()),
                Some(_) => mode(l, 0)?,
            },
        },
        "chown" => TraceOp::Chown {
            layer,
            path,
            uid: l.uid.ok_or("missing field `uid`")?,
            gid: l.gid.ok_or("missing field `gid`")?,
        },
        "symlink" => TraceOp::Symlink {
            layer,
            path,
            target: need(&l.target, "target")?,
        },
        _ => TraceOp::Hardlink {
            layer,
            path,
            to: path_of(&l.to, "to")?,
        },
    })
}

fn apply(d: &mut AnyDriver, op: &TraceOp) -> layerlab_core::Result<()> {
    match op {
        TraceOp::CreateLayer { layer, parent } => d.create_layer(layer, parent.as_ref()),
        TraceOp::Commit { layer } => d.commit(layer),
        TraceOp::RemoveLayer { layer } => d.remove_layer(layer),
        TraceOp::Mkdir { layer, path, mode } => d.mkdir(layer, path, *mode),
        TraceOp::Create { layer, path, mode } => d.create(layer, path, *mode),
        TraceOp::Write {
            layer,
            path,
            offset,
            data,
        } => d.write(layer, path, *offset, data),
        TraceOp::Append { layer, path, data } => d.append(layer, path, data),
        TraceOp::Truncate { layer, path, size } => d.truncate(layer, path, *size),
        TraceOp::Read {
            layer,
            path,
            offset,
            len,
        } => match len {
            Some(n) => d.read(layer, path, *offset, *n).map(|_| ()),
            None => layerlab_core::ops::read_all(d, layer, path).map(|_| ()),
        },
        TraceOp::Stat { layer, path } => d.stat(layer, path).map(|_| ()),
        TraceOp::Readdir { layer, path } => d.readdir(layer, path).map(|_| ()),
        TraceOp::Unlink { layer, path } => d.unlink(layer, path),
        TraceOp::Rmdir { layer, path } => d.rmdir(layer, path),
        TraceOp::Rename { layer, path, to } => d.rename(layer, path, to),
        TraceOp::Chmod { layer, path, mode } => d.chmod(layer, path, *mode),
        TraceOp::Chown {
            layer,
            path,
            uid,
            gid,
        } => d.chown(layer, path, *uid, *gid),
        TraceOp::Symlink {
            layer,
            path,
            target,
        } => d.symlink(layer, target, path),
        TraceOp::Hardlink { layer, path, to } => d.hardlink(layer, path, to),
        TraceOp::Changes { layer } => d.changes(layer).map(|_| ()),
        TraceOp::Usage { layer } => d.usage(layer).map(|_| ()),
    }
}

impl Replay {
    /// The trace's file name, for the `parameter` column.
    pub fn name(&self) -> String {
        std::path::Path::new(&self.trace)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.trace.clone())
    }
}

impl Workload for Replay {
    fn header(&self) -> Header {
        Header::new(super::kind::REPLAY, self.repetitions, None)
    }

    fn check_keys(&self) -> std::result::Result<(), (String, String)> {
        if self.trace.trim().is_empty() {
            return Err(("trace".into(), "name a trace file".into()));
        }
        Ok(())
    }

    fn shrink(&mut self) {
        self.repetitions = Some(1);
    }

    fn run(&self, ctx: &mut RunCtx<'_>) -> Result<Vec<Sample>> {
        let mut d = ctx.init()?;
        let mut total = layerlab_core::Counts::default();
        let mut time = Duration::ZERO;
        let mut n = 0u64;
        for step in self.steps.iter() {
            let fail = |e: Error| HarnessError::Trace {
                file: self.trace.clone(),
                line: step.line,
                message: format!("on {}: {e}", ctx.driver.label),
            };
            if step.setup {
                apply(&mut d, &step.op).map_err(fail)?;
                continue;
            }
            ctx.clock.begin();
            let t = ctx.clock.op(&mut d, |d| apply(d, &step.op));
            ctx.clock.end();
            let t = t.map_err(fail)?;
            total.add(&t.counts);
            time += t.time;
            n += 1;
        }
        let rate = if time.is_zero() {
            0.0
        } else {
            n as f64 / time.as_secs_f64()
        };
        Ok(vec![Sample::new(self.name(), n as f64, "", total, time)
            .measured("ops_per_s", "ops/s", rate)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> LineResult<TraceOp> {
        let l: Line = serde_json::from_str(line).map_err(|e| e.to_string())?;
        parse_line(&l)
    }

    #[test]
    fn lines_parse_to_their_operations_or_name_what_is_wrong() -> LineResult<()> {
        let layer = id("a")?;
        let path = Error::parse_path("/f").map_err(|e| e.to_string())?;
        let cases = [
            (
                r#"{"op":"commit","layer":"a"}"#,
                Ok(TraceOp::Commit {
                    layer: layer.clone(),
                }),
            ),
            (
                r#"{"op":"create_layer","layer":"a","parent":"a"}"#,
                Ok(TraceOp::CreateLayer {
                    layer: layer.clone(),
                    parent: Some(layer.clone()),
                }),
            ),
            (
                r#"{"op":"mkdir","layer":"a","path":"/f"}"#,
                Ok(TraceOp::Mkdir {
                    layer: layer.clone(),
                    path: path.clone(),
                    mode: 0o755,
                }),
            ),
            (
                r#"{"op":"stat","layer":"a","path":"/f"}"#,
                Ok(TraceOp::Stat {
                    layer: layer.clone(),
                    path: path.clone(),
                }),
            ),
            (
                r#"{"op":"stat","layer":"a"}"#,
                Err("missing field `path`".to_string()),
            ),
            (
                r#"{"op":"stat","path":"/f"}"#,
                Err("missing field `layer`".to_string()),
            ),
            (
                r#"{"op":"chmod","layer":"a","path":"/f"}"#,
                Err("missing field `mode`".to_string()),
            ),
            (
                r#"{"op":"commit","layer":"a","path":"/f"}"#,
                Err("field `path` is not used by this operation".to_string()),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parsed(line), want, "{line}");
        }
        Ok(())
    }
}
