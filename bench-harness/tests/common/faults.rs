//! Syscall-exact fault injection for the crash test (`tests/crash_inject.rs`).
//!
//! A command is run once under `strace -f` to list its mutating system calls (the
//! injection points: every write, fsync, rename, unlink, mkdir, open for writing, ...),
//! then once per point under `strace -e inject=SYSCALL:error=E:when=N` (or
//! `signal=KILL`): the N-th call of that system call fails with `E`, or the process is
//! killed as it makes it. strace counts `when=N` per system call, so a point is a system
//! call's name and its ordinal among that call's invocations.
//!
//! After each run, [`snapshot`] opens the store as the next writer would (which sweeps or
//! undoes what an interrupted command left) and records the layer table, the images and
//! every layer's whole view (kinds, modes, owners, sizes, link counts, symlink targets,
//! device numbers, content, extended attributes; an mtime only when it was set to a fixed
//! time before 2001, as `touch --mtime` does in the cases).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use layerlab_core::{ops, FileKind, LayerDriver, LayerId, LayerState};
use layerlab_drivers::Access;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::{Command, Output};

/// The system calls that change files (the candidates for an injection point), each with
/// whether "no space" is a meaningful failure of it (it may allocate).
const SYSCALLS: &[(&str, bool)] = &[
    ("write", true),
    ("pwrite64", true),
    ("writev", true),
    ("pwritev", true),
    ("pwritev2", true),
    ("fsync", false),
    ("fdatasync", false),
    ("sync_file_range", false),
    ("rename", true),
    ("renameat", true),
    ("renameat2", true),
    ("unlink", false),
    ("unlinkat", false),
    ("mkdir", true),
    ("mkdirat", true),
    ("rmdir", false),
    ("openat", true),
    ("ftruncate", true),
    ("fallocate", true),
    ("copy_file_range", true),
    ("symlinkat", true),
    ("linkat", true),
    ("mknodat", true),
    ("fchmod", false),
    ("fchmodat", false),
    ("fchown", false),
    ("fchownat", false),
    ("utimensat", false),
    ("setxattr", true),
    ("lsetxattr", true),
    ("fsetxattr", true),
    ("removexattr", false),
    ("lremovexattr", false),
    ("fremovexattr", false),
];

/// Whether `name` is one of the system calls that change files.
fn mutating(name: &str) -> bool {
    SYSCALLS.iter().any(|&(s, _)| s == name)
}

/// How a point fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The call returns EIO.
    Eio,
    /// The call returns ENOSPC.
    Enospc,
    /// The process is killed (SIGKILL) as it makes the call.
    Kill,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 3] = [Fault::Eio, Fault::Enospc, Fault::Kill];

    fn inject(self) -> &'static str {
        match self {
            Fault::Eio => "error=EIO",
            Fault::Enospc => "error=ENOSPC",
            Fault::Kill => "signal=KILL",
        }
    }

    /// Whether this fault is tried at a call of `syscall`.
    pub fn applies_to(self, syscall: &str) -> bool {
        self != Fault::Enospc || SYSCALLS.contains(&(syscall, true))
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Eio => "EIO",
            Fault::Enospc => "ENOSPC",
            Fault::Kill => "kill",
        })
    }
}

/// One injection point: the `nth` call (from 1) of `syscall`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// The system call.
    pub syscall: String,
    /// Its ordinal among that call's invocations.
    pub nth: usize,
    /// The traced line, for messages.
    pub line: String,
}

/// True when strace runs here (installed, and ptrace allowed).
pub fn strace_works() -> bool {
    Command::new("strace")
        .args(["-qq", "-e", "trace=none", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `bin args` under strace tracing the mutating calls; returns the command's output
/// and the injection points, in order. Writes to stdout and stderr are not points (they
/// are the command's report, not the store), nor are opens for reading only.
pub fn trace_points(bin: &Path, args: &[String], log: &Path) -> (Output, Vec<Point>) {
    let out = Command::new("strace")
        .arg("-f")
        .arg("-qq")
        .arg("-s0")
        .arg("-o")
        .arg(log)
        .arg("-e")
        .arg(format!(
            "trace={}",
            SYSCALLS
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>()
                .join(",")
        ))
        .arg(bin)
        .args(args)
        .output()
        .expect("strace runs");
    let text = std::fs::read_to_string(log).expect("strace log");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut points = Vec::new();
    for line in text.lines() {
        // "PID  name(args) = ret" or "PID  name(args <unfinished ...>"
        let rest = line
            .trim_start()
            .split_once(char::is_whitespace)
            .map_or(line, |(_, r)| r.trim_start());
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        if name.starts_with('<') || !mutating(name) {
            continue;
        }
        let n = seen.entry(name.to_string()).or_insert(0);
        *n += 1;
        let output = matches!(name, "write" | "writev")
            && (args.starts_with("1,") || args.starts_with("2,"));
        let read_only = name == "openat"
            && !(args.contains("O_WRONLY") || args.contains("O_RDWR") || args.contains("O_CREAT"));
        if !output && !read_only {
            points.push(Point {
                syscall: name.to_string(),
                nth: *n,
                line: rest.chars().take(120).collect(),
            });
        }
    }
    (out, points)
}

/// How a faulted run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Exit status 0.
    Done,
    /// A nonzero exit status, with stderr.
    Failed(i32, String),
    /// Killed by a signal.
    Killed,
}

/// Runs `bin args` with `fault` injected at `point`.
pub fn run_faulted(bin: &Path, args: &[String], point: &Point, fault: Fault) -> Ended {
    let out = Command::new("strace")
        .arg("-f")
        .arg("-qq")
        .arg("-o")
        .arg("/dev/null")
        .arg("-e")
        .arg(format!("trace={}", point.syscall))
        .arg("-e")
        .arg(format!(
            "inject={}:{}:when={}",
            point.syscall,
            fault.inject(),
            point.nth
        ))
        .arg(bin)
        .args(args)
        .output()
        .expect("strace runs");
    ended(&out)
}

/// How a finished process ended.
pub fn ended(out: &Output) -> Ended {
    use std::os::unix::process::ExitStatusExt;
    match out.status.code() {
        Some(0) => Ended::Done,
        Some(c) => Ended::Failed(c, String::from_utf8_lossy(&out.stderr).into_owned()),
        None if out.status.signal().is_some() => Ended::Killed,
        None => Ended::Killed,
    }
}

/// One entry of a view, as the crash test compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    kind: FileKind,
    mode: u32,
    owner: (u32, u32),
    size: u64,
    nlink: u32,
    target: Option<String>,
    rdev: u64,
    /// An mtime before 2001 (set explicitly by a case), else `None`.
    fixed_mtime: Option<(i64, u32)>,
    content: Option<Vec<u8>>,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Everything a user can see in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Layer id -> (parent, committed).
    pub layers: BTreeMap<String, (Option<String>, bool)>,
    /// Layer id -> path -> entry.
    pub views: BTreeMap<String, BTreeMap<String, Entry>>,
    /// Image name -> (top layer, chain ids).
    pub images: BTreeMap<String, (String, Vec<String>)>,
}

impl Snapshot {
    /// The entries of `before` that are in this snapshot neither as they were before nor
    /// as `after` has them: data a fault destroyed (a completed command's effect lost, or
    /// replaced by something no run of the command makes).
    pub fn lost(&self, before: &Snapshot, after: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (id, view) in &before.views {
            let now = self.views.get(id);
            let then = after.views.get(id);
            for (p, e) in view {
                let n = now.and_then(|v| v.get(p));
                let a = then.and_then(|v| v.get(p));
                if n != Some(e) && n != a {
                    out.push(format!("{id}:{p}"));
                }
            }
        }
        out
    }

    /// The differences from `other`, in a few lines.
    pub fn diff(&self, other: &Snapshot) -> String {
        let mut out = Vec::new();
        if self.layers != other.layers {
            out.push(format!("layers {:?} vs {:?}", self.layers, other.layers));
        }
        if self.images != other.images {
            out.push(format!("images {:?} vs {:?}", self.images, other.images));
        }
        for (id, view) in &self.views {
            let Some(o) = other.views.get(id) else {
                continue;
            };
            for (p, e) in view {
                match o.get(p) {
                    None => out.push(format!("{id}:{p} only in the first")),
                    Some(oe) if oe != e => out.push(format!("{id}:{p}: {e:?} vs {oe:?}")),
                    _ => {}
                }
            }
            for p in o.keys().filter(|p| !view.contains_key(*p)) {
                out.push(format!("{id}:{p} only in the second"));
            }
        }
        out.truncate(6);
        out.join("; ")
    }
}

/// Opens the store for writing (as the next command would) and records what it holds.
pub fn snapshot(root: &Path) -> Result<Snapshot, String> {
    let mut d = layerlab_drivers::registry::open(root, Access::Write).map_err(|e| e.to_string())?;
    let mut snap = Snapshot {
        layers: BTreeMap::new(),
        views: BTreeMap::new(),
        images: BTreeMap::new(),
    };
    for info in d.layers().map_err(|e| e.to_string())? {
        snap.layers.insert(
            info.id.to_string(),
            (
                info.parent.as_ref().map(LayerId::to_string),
                info.state == LayerState::Committed,
            ),
        );
        let view = view(&mut d, &info.id).map_err(|e| format!("layer {}: {e}", info.id))?;
        snap.views.insert(info.id.to_string(), view);
    }
    for img in layerlab_oci::load_images(root).map_err(|e| e.to_string())? {
        let chain = img.layers.iter().map(|l| l.chain_id.clone()).collect();
        snap.images.insert(img.name, (img.top_layer, chain));
    }
    Ok(snap)
}

fn view<D: LayerDriver>(
    d: &mut D,
    layer: &LayerId,
) -> layerlab_core::Result<BTreeMap<String, Entry>> {
    layerlab_testkit::view_with(d, layer, |d, path, kind, md| {
        let content = match kind {
            FileKind::File => Some(ops::read_all(d, layer, path)?),
            _ => None,
        };
        let fixed_mtime = (md.mtime < 978_307_200).then_some((md.mtime, md.mtime_nsec));
        Ok(Entry {
            kind,
            mode: md.mode,
            owner: (md.uid, md.gid),
            size: md.size,
            nlink: md.nlink,
            target: md.target,
            rdev: md.rdev,
            fixed_mtime,
            content,
            xattrs: ops::xattrs(d, layer, path)?,
        })
    })
}

/// A copy of the directory tree `from` at `to` (sparse files stay sparse).
pub fn copy_tree(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let st = Command::new("cp")
        .arg("-a")
        .arg("--sparse=always")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}
