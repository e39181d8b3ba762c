//! The layer cache: which earlier step made which layer, kept in the store as
//! `build-cache.json`.
//!
//! **Keys.** A step's key is the sha256 of the previous step's key (the stage's FROM
//! starts the chain: `scratch`, the base image's id and top layer, or the key of the stage
//! it builds on), the instruction with its variables substituted, and its inputs: for
//! COPY and ADD the checksum of the copied entries (names, kinds, modes, owners, contents;
//! no mtimes, [`crate::copy::checksum`]); for RUN the build arguments and the environment
//! in effect, the working directory, user and shell. Metadata-only steps (ENV, LABEL,
//! CMD, ...) have keys too, so a changed ENV changes every later key, but make no layer.
//!
//! **Format.** `{"version": 1, "entries": [{"key", "parent", "layer", "instruction",
//! "created"}], "pending": [{"layer", "pid"}]}`: `parent` is the top layer the step ran on (absent
//! on scratch), `layer` the layer it made (the oci crate's `ImageLayer`: id, diff id,
//! sizes), absent for a metadata-only step. Replaced whole and atomically (temporary file,
//! fsync, rename, fsync of the directory), only while the store's write lock is held, and
//! re-read before each change (a build lets the lock go while a RUN command runs, so
//! another build may have written it meanwhile).
//!
//! **Trust.** An entry is used only when its layer is in the store, committed, on the
//! same parent as the step now; otherwise it is a miss, and entries whose layers (or
//! parents) are gone are dropped the next time the file is written: the cache never
//! points at a removed layer.
//!
//! **Crashes.** Before a step creates its layer, the layer's id and the building process
//! are added to `pending` (written first); the step's entry is added, and the id leaves
//! `pending`, in one write after the layer is committed. A crash in between leaves the id
//! in `pending`: the next build whose builder process is gone removes that layer if it is
//! still there and not committed (committed but not cached, it is kept: an image may name
//! it); a pending layer of a live build is left alone. A failed step removes its layer
//! and its `pending` id itself.

use crate::error::{BuildError, Result};
use layerlab_core::{LayerDriver, LayerId, LayerState};
use layerlab_oci::ImageLayer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The cache file in the store root.
pub const CACHE_FILE: &str = "build-cache.json";

/// One cached step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The step's key.
    pub key: String,
    /// The top layer it ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The layer it made (none for a metadata-only step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<ImageLayer>,
    /// The instruction, for people reading the file.
    pub instruction: String,
    /// When it was made (RFC 3339).
    pub created: String,
}

/// A layer a build is making.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    layer: String,
    /// The building process.
    pid: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    entries: Vec<Entry>,
    #[serde(default)]
    pending: Vec<Pending>,
}

fn alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// The cache of one store.
#[derive(Debug)]
pub struct Cache {
    path: PathBuf,
    file: File,
}

/// A key from its parts, `sha256:...`.
pub fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The key of a metadata-only step: the previous key and the instruction, substituted.
pub fn metadata_key(prev: &str, canonical: &str) -> String {
    key(&[prev, canonical])
}

/// The key of a COPY or ADD: the previous key, the instruction (substituted, destination
/// resolved) and the checksum of the entries it copies ([`crate::copy::checksum`]).
pub fn copy_key(prev: &str, canonical: &str, checksum: &str) -> String {
    key(&[prev, canonical, checksum])
}

/// The key of a RUN: the previous key, the command (exec form, or SHELL and text, not
/// substituted: the shell does that), the build arguments and the environment in effect,
/// the working directory and the user.
pub fn run_key(
    prev: &str,
    argv: &[String],
    args: &[(String, String)],
    env: &[(String, String)],
    workdir: &str,
    user: &str,
) -> String {
    let pairs = |v: &[(String, String)]| {
        v.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let argv = serde_json::to_string(argv).unwrap_or_default();
    key(&[prev, "RUN", &argv, &pairs(args), &pairs(env), workdir, user])
}

impl Cache {
    /// Reads the store's cache (empty when there is none).
    pub fn load(root: &Path) -> Result<Cache> {
        let path = root.join(CACHE_FILE);
        let file = Cache::read(&path)?;
        Ok(Cache { path, file })
    }

    fn read(path: &Path) -> Result<File> {
        let path = path.to_path_buf();
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<File>(&bytes).map_err(|e| BuildError::Cache {
                path: path.clone(),
                reason: format!("corrupt: {e}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File {
                version: 1,
                ..File::default()
            },
            Err(e) => return Err(layerlab_core::Error::io(&path, e).into()),
        };
        if file.version != 1 {
            return Err(BuildError::Cache {
                path,
                reason: format!("version {} is not known (1 is)", file.version),
            });
        }
        Ok(file)
    }

    /// Re-reads the file (another build may have written it while this one ran a
    /// command), applies `f` and writes it.
    fn update(&mut self, f: impl FnOnce(&mut File)) -> Result<()> {
        self.file = Cache::read(&self.path)?;
        f(&mut self.file);
        self.save()
    }

    /// The entry for `key`, if it can be trusted with the top layer `parent` now (see the
    /// module doc).
    pub fn lookup<D: LayerDriver + ?Sized>(
        &self,
        d: &D,
        key: &str,
        parent: Option<&LayerId>,
    ) -> Option<Entry> {
        let e = self.file.entries.iter().find(|e| e.key == key)?;
        if e.parent.as_deref() != parent.map(LayerId::as_str) {
            return None;
        }
        if let Some(l) = &e.layer {
            let id = LayerId::new(&l.chain_id).ok()?;
            let info = d.layer(&id).ok()?;
            if info.state != LayerState::Committed || info.parent.as_ref() != parent {
                return None;
            }
        } else if let Some(p) = parent {
            d.layer(p).ok()?;
        }
        Some(e.clone())
    }

    /// Drops entries whose layers or parents are gone, and removes the layers a crash left
    /// in `pending` (see the module doc); writes the file when it changed.
    pub fn sweep<D: LayerDriver + ?Sized>(&mut self, d: &mut D) -> Result<()> {
        let before = (self.file.entries.len(), self.file.pending.len());
        let mut keep = Vec::new();
        for p in std::mem::take(&mut self.file.pending) {
            if alive(p.pid) {
                keep.push(p);
                continue;
            }
            if let Ok(id) = LayerId::new(&p.layer) {
                if d.layer(&id).is_ok_and(|i| i.state != LayerState::Committed)
                    && d.remove_layer(&id).is_err()
                {
                    keep.push(p);
                }
            }
        }
        self.file.pending = keep;
        let alive = |id: &str| LayerId::new(id).is_ok_and(|id| d.exists(&id));
        self.file.entries.retain(|e| {
            e.parent.as_deref().is_none_or(alive)
                && e.layer.as_ref().is_none_or(|l| alive(&l.chain_id))
        });
        if before != (self.file.entries.len(), self.file.pending.len()) {
            self.save()?;
        }
        Ok(())
    }

    /// Notes a layer about to be made (written before it is created).
    pub fn begin(&mut self, layer: &LayerId) -> Result<()> {
        let p = Pending {
            layer: layer.to_string(),
            pid: std::process::id(),
        };
        self.update(|f| f.pending.push(p))
    }

    /// Forgets a pending layer whose step failed (its layer already removed).
    pub fn abandon(&mut self, layer: &LayerId) -> Result<()> {
        self.update(|f| f.pending.retain(|p| p.layer != layer.as_str()))
    }

    /// Records a finished step (replacing an entry of the same key), and clears its
    /// layer from `pending`, in one write.
    pub fn record(&mut self, entry: Entry) -> Result<()> {
        self.update(|f| {
            if let Some(l) = &entry.layer {
                f.pending.retain(|p| p.layer != l.chain_id);
            }
            f.entries.retain(|e| e.key != entry.key);
            f.entries.push(entry);
        })
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.file.entries
    }

    fn save(&self) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.file).map_err(|e| BuildError::Cache {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        layerlab_drivers::store::write_atomic(&self.path, &json)?;
        Ok(())
    }
}
