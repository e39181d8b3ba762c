//! Mount records: `<root>/mounts/<layer>.json`, written by a `layerlab mount` server while
//! it serves a layer, so that every other process refuses to change that layer.
//!
//! A record names the mount directory and the server's pid. It counts only while that pid
//! is alive: a server killed with `kill -9` leaves a record that every command ignores (and
//! that `mount`/`umount` report as stale). The server itself (the pid in the record) may
//! change the layer. A pid reused by an unrelated process keeps the layer refused until
//! `layerlab umount DIR` clears the record; that is the known limit of a pid check.

use super::write_atomic;
use layerlab_core::{Error, IoContext, LayerId, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One mounted layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    /// The layer served.
    pub layer: LayerId,
    /// The mount directory (absolute).
    pub dir: PathBuf,
    /// The server's process id.
    pub pid: u32,
}

impl MountRecord {
    /// The directory holding the records of the store at `root`.
    pub fn dir_of(root: &Path) -> PathBuf {
        root.join("mounts")
    }

    /// The record file of `layer`.
    pub fn path_of(root: &Path, layer: &LayerId) -> PathBuf {
        Self::dir_of(root).join(format!("{}.json", layer.dir_name()))
    }

    /// Whether the server that wrote the record is still running. A zombie (killed, not
    /// yet reaped by its parent) is not.
    pub fn alive(&self) -> bool {
        let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) else {
            return false;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // `pid (comm) S ...`: the state follows the last parenthesis
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.trim_start().chars().next());
            return !matches!(state, Some('Z' | 'X'));
        }
        // ESRCH: gone; EPERM would mean alive under another user
        !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        )
    }

    /// Writes the record (atomically).
    pub fn save(&self, root: &Path) -> Result<()> {
        let dir = Self::dir_of(root);
        std::fs::create_dir_all(&dir).at(&dir)?;
        let path = Self::path_of(root, &self.layer);
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_atomic(&path, &json)
    }

    /// Removes the record of `layer` (nothing if there is none).
    pub fn remove(root: &Path, layer: &LayerId) -> Result<()> {
        let path = Self::path_of(root, layer);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        }
    }

    /// The record of `layer`, if there is one.
    pub fn load(root: &Path, layer: &LayerId) -> Result<Option<MountRecord>> {
        Self::read(&Self::path_of(root, layer))
    }

    fn read(path: &Path) -> Result<Option<MountRecord>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })
    }

    /// Every record of the store, live or stale, sorted by layer.
    pub fn all(root: &Path) -> Result<Vec<MountRecord>> {
        let dir = Self::dir_of(root);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.at(&dir)?.path();
            if path.extension().is_some_and(|x| x == "json") {
                out.extend(Self::read(&path)?);
            }
        }
        out.sort_by(|a, b| a.layer.cmp(&b.layer));
        Ok(out)
    }

    /// Refuses a change of `layer` while another live process serves it; `Ok(true)` when
    /// this process serves it.
    pub fn check_unmounted(root: &Path, layer: &LayerId) -> Result<bool> {
        match Self::load(root, layer)? {
            Some(r) if r.pid == std::process::id() => Ok(true),
            Some(r) if r.pid != std::process::id() && r.alive() => Err(Error::Locked {
                store: root.to_path_buf(),
                detail: format!(
                    "layer {} is mounted at {} by pid {}; run `layerlab umount {}` first",
                    r.layer,
                    r.dir.display(),
                    r.pid,
                    r.dir.display()
                ),
            }),
            _ => Ok(false),
        }
    }
}
