//! The store lock: one writer or many readers, refused (after a brief retry) rather than
//! waited for.

use layerlab_core::{Error, IoContext, Result};
use rustix::fs::{flock, FlockOperation};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// How long a taken lock is retried before `Locked` is reported. A flock belongs to an open
/// file description, which a child forked by another thread of the same process shares
/// until it execs: a lock just released can look held for that instant. The retry covers
/// that window; a lock really held by another process is still refused within this bound.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_millis(500);

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

impl StoreLock {
    /// Takes the lock without waiting; `Error::Locked` names the holder if it is taken.
    pub fn acquire(root: &Path, access: Access) -> Result<StoreLock> {
        let path: PathBuf = root.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::NotAStore {
                        root: root.to_path_buf(),
                    }
                } else {
                    Error::io(&path, e)
                }
            })?;
        let op = match access {
            Access::Read => FlockOperation::NonBlockingLockShared,
            Access::Write => FlockOperation::NonBlockingLockExclusive,
        };
        if !take(&file, op) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::Locked {
                store: root.to_path_buf(),
                detail: if holder.is_empty() {
                    "held by another process".to_string()
                } else {
                    format!("held by {holder}")
                },
            });
        }
        if access == Access::Write {
            file.set_len(0).at(&path)?;
            file.rewind().at(&path)?;
            write!(file, "pid {}", std::process::id()).at(&path)?;
        }
        Ok(StoreLock { _file: file })
    }
}
