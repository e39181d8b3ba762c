//! The store lock: one writer or many readers, refused (after a brief retry) rather than
//! waited for; a writer that is waiting is not starved by a stream of readers.
//!
//! Two flock()ed files:
//! - `<root>/lock`, the lock itself: shared by readers, exclusive for a writer;
//! - `<root>/lock.turnstile`, taken exclusively by a writer *before* it tries `lock`, and
//!   held until it has it; a reader takes it shared only for the instant before it takes
//!   `lock`. So once a writer is waiting, no new reader gets in: the readers inside finish
//!   and the writer takes the lock, however busy the readers are.
//!
//! Who holds a lock is read from the kernel's own list (`/proc/locks`: the pid that took
//! each flock on the file's inode), so `Locked` names the live holders, never the pid of a
//! writer that has exited.

use layerlab_core::{Error, Result};
use rustix::fs::{flock, FlockOperation};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How long a taken lock is retried before `Locked` is reported. A flock belongs to an open
/// file description, which a child forked by another thread of the same process shares
/// until it execs: a lock just released can look held for that instant. The retry covers
/// that window; a lock really held by another process is still refused within this bound.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_millis(500);

/// The writers' turnstile, beside `lock`.
pub const TURNSTILE: &str = "lock.turnstile";

fn take(file: &std::fs::File, op: FlockOperation) -> bool {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        if flock(file, op).is_ok() {
            return true;
        }
        if start.elapsed() >= RETRY_FOR {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

/// How a process uses a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only: shares the store with other readers.
    Read,
    /// Changes: excludes every other process.
    Write,
}

/// A held lock on `<root>/lock`; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct StoreLock {
    _file: std::fs::File,
}

fn open_lock_file(root: &Path, name: &str) -> Result<(std::fs::File, PathBuf)> {
    let path: PathBuf = root.join(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| super::store_file_error(root, &path, e))?;
    Ok((file, path))
}

impl StoreLock {
    /// Takes the lock without waiting (beyond a brief retry); `Error::Locked` names the
    /// live holders if it is taken.
    pub fn acquire(root: &Path, access: Access) -> Result<StoreLock> {
        let (turnstile, _) = open_lock_file(root, TURNSTILE)?;
        let (file, path) = open_lock_file(root, "lock")?;
        let (gate, op) = match access {
            Access::Read => (
                FlockOperation::NonBlockingLockShared,
                FlockOperation::NonBlockingLockShared,
            ),
            Access::Write => (
                FlockOperation::NonBlockingLockExclusive,
                FlockOperation::NonBlockingLockExclusive,
            ),
        };
        if !take(&turnstile, gate) {
            return Err(locked(root, &root.join(TURNSTILE), &path));
        }
        let got = take(&file, op);
        // the turnstile is let go as soon as the lock is decided
        let _ = flock(&turnstile, FlockOperation::Unlock);
        if !got {
            return Err(locked(root, &root.join(TURNSTILE), &path));
        }
        Ok(StoreLock { _file: file })
    }
}

/// `Locked`, naming who holds the lock (and who waits at the turnstile), from the kernel.
fn locked(root: &Path, turnstile: &Path, lock: &Path) -> Error {
    let me = std::process::id();
    let holders = |p: &Path| -> Vec<(u32, bool)> {
        holders_of(p)
            .into_iter()
            .filter(|(pid, _)| *pid != me)
            .collect()
    };
    let in_lock = holders(lock);
    let waiting = holders(turnstile)
        .into_iter()
        .filter(|(_, w)| *w)
        .map(|(p, _)| p)
        .collect::<Vec<_>>();
    let mut parts = Vec::new();
    let writers: Vec<String> = in_lock
        .iter()
        .filter(|(_, w)| *w)
        .map(|(p, _)| p.to_string())
        .collect();
    let readers: Vec<String> = in_lock
        .iter()
        .filter(|(_, w)| !*w)
        .map(|(p, _)| p.to_string())
        .collect();
    if !writers.is_empty() {
        parts.push(format!("written by pid {}", writers.join(", ")));
    }
    if !readers.is_empty() {
        parts.push(format!("read by pid {}", readers.join(", ")));
    }
    if let Some(w) = waiting.first() {
        parts.push(format!("writer pid {w} waiting"));
    }
    Error::Locked {
        store: root.to_path_buf(),
        detail: if parts.is_empty() {
            "held by another process".to_string()
        } else {
            parts.join("; ")
        },
    }
}

/// The pids holding a flock on `path` and whether each is exclusive, from `/proc/locks`
/// (empty when it cannot be read).
fn holders_of(path: &Path) -> Vec<(u32, bool)> {
    let Ok(md) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let dev = md.dev();
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let want = format!("{major:02x}:{minor:02x}:{}", md.ino());
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters have "->" after the id
        if f.len() < 6 || f[1] == "->" || f[1] != "FLOCK" {
            continue;
        }
        if f[5] != want {
            continue;
        }
        if let Ok(pid) = f[4].parse::<u32>() {
            out.push((pid, f[3] == "WRITE"));
        }
    }
    out
}
