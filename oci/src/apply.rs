//! Applying a checked plan ([`crate::tar_in::plan`]) to a layer through the `LayerDriver`
//! trait, so that every driver stores the result in its native form: removals become
//! character-device whiteouts on overlay2, `.wh.` files on aufs, real deletions on the
//! block and snapshot drivers.
//!
//! Everything the archive could get wrong was refused before the first change (see
//! [`crate::tar_in`]). What remains are failures of the store itself (no space, I/O) and
//! kills: for those, every change is recorded in an undo log
//! ([`layerlab_drivers::journal::UndoLog`]) before it is made (the subtree a removal
//! deletes is saved first, old owners, modes and extended attributes are remembered), and
//! the log is undone newest first, so the layer's view is as it was. (A restored subtree
//! comes back with its content, modes, owners and symlinks; hardlinks inside a restored
//! subtree come back as separate files.)
//!
//! [`apply_archive_in_store`] (the `apply` command) keeps the log on disk, in the store's
//! journal ([`layerlab_drivers::journal::begin_apply`]): a kill part way is undone by the
//! next writer's open exactly as a failure is undone in the process. [`apply_archive`] and
//! [`apply_parsed`] keep it in memory (a scratch file holds saved content): `import` applies
//! to a layer it has just made, and the undo of a killed import is removing that layer
//! (the next import does, [`crate::image::import`]).
//!
//! The changes are one batch ([`LayerDriver::begin_batch`]): a driver that makes each
//! change durable on its own (the block drivers' metadata log) fsyncs once, at the end,
//! rather than once per change; a failure of that last fsync is undone as any other.
//!
//! Directory modes are set last, deepest first (as tar does), so that a read-only
//! directory in the archive does not stop its own entries from being written.

use crate::error::{OciError, Result};
use crate::tar_in::{self, Attrs, Limits, Op, Parsed, Step};
use layerlab_core::{ops, Error, FileKind, LayerDriver, LayerId, LayerPath, LayerState};
use layerlab_drivers::journal::{self, Undo, UndoLog};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

const CHUNK: u64 = 1 << 20;

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplySummary {
    /// Entries in the archive (whiteouts included).
    pub entries: usize,
    /// Trait-level steps made.
    pub steps: usize,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Entries removed from the view (whiteouts, opaque markers, replacements).
    pub removed: usize,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
    /// `plain`, `gzip` or `zstd`.
    pub compression: &'static str,
}

/// Reads, checks and applies an OCI layer tar to an active layer. A refused or failed
/// archive leaves the layer's view as it was (the undo log in memory: see the module doc).
pub fn apply_archive<D: LayerDriver + ?Sized, R: Read>(
    d: &mut D,
    layer: &LayerId,
    archive: &str,
    input: R,
    limits: &Limits,
) -> Result<ApplySummary> {
    let parsed = tar_in::parse(archive, input, limits)?;
    apply_parsed(d, layer, &parsed)
}

/// [`apply_archive`] into the store at `root` (the root of the store `d` is open on, for
/// writing), with the undo log in the store's journal: a kill part way is undone by the
/// next writer's open.
pub fn apply_archive_in_store<D: LayerDriver + ?Sized, R: Read>(
    d: &mut D,
    root: &Path,
    layer: &LayerId,
    archive: &str,
    input: R,
    limits: &Limits,
) -> Result<ApplySummary> {
    let parsed = tar_in::parse(archive, input, limits)?;
    apply_with(d, layer, &parsed, Some(root))
}

/// Checks a parsed archive against the layer and applies it (the undo log in memory).
pub fn apply_parsed<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    parsed: &Parsed,
) -> Result<ApplySummary> {
    apply_with(d, layer, parsed, None)
}

/// Applies `parsed` with the undo log in the journal of the store at `root`, or in memory.
fn apply_with<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    parsed: &Parsed,
    root: Option<&Path>,
) -> Result<ApplySummary> {
    let driver_err = |source: Error| OciError::Driver {
        archive: parsed.archive.clone(),
        layer: layer.to_string(),
        source: Box::new(source),
    };
    let info = d.layer(layer).map_err(driver_err)?;
    if info.state == LayerState::Committed {
        return Err(driver_err(Error::ReadOnlyLayer {
            layer: layer.clone(),
            path: LayerPath::root(),
        }));
    }
    let steps = tar_in::plan(d, layer, parsed)?;
    let log = match root {
        Some(root) => journal::begin_apply(root, layer).map_err(driver_err)?,
        None => UndoLog::in_memory(
            tempfile::tempfile().map_err(|e| driver_err(Error::io(std::env::temp_dir(), e)))?,
        ),
    };
    let mut run = Run {
        d,
        layer,
        parsed,
        log,
        dir_modes: BTreeMap::new(),
        dir_mtimes: BTreeMap::new(),
        bytes: 0,
        removed: 0,
    };
    // one batch: the driver's fsyncs are made once, at the end (the commit point)
    run.d.begin_batch();
    let mut result = run.all(&steps).and_then(|()| run.d.end_batch());
    if let (Ok(()), Some(root)) = (&result, root) {
        // the journal's removal is the commit point: while it stays, the next writer would
        // undo the apply, so a failure to remove it is undone now and reported
        result = journal::end_apply(root, &run.log);
    }
    if let Err(e) = result {
        return Err(match run.undo(root) {
            Ok(()) => driver_err(e),
            Err(r) => OciError::Malformed {
                archive: parsed.archive.clone(),
                reason: format!(
                    "applying to layer {layer} failed ({e}) and undoing it failed too ({r}){}",
                    if root.is_some() {
                        "; the next writer to open the store undoes it"
                    } else {
                        ""
                    }
                ),
            },
        });
    }
    Ok(ApplySummary {
        entries: parsed.entries.len(),
        steps: steps.len(),
        bytes: run.bytes,
        removed: run.removed,
        diff_id: parsed.diff_id.clone(),
        tar_size: parsed.tar_size,
        compression: parsed.compression.as_str(),
    })
}

struct Run<'a, D: ?Sized> {
    d: &'a mut D,
    layer: &'a LayerId,
    parsed: &'a Parsed,
    log: UndoLog,
    dir_modes: BTreeMap<LayerPath, u32>,
    /// Directory mtimes, set last: making an entry in a directory changes its mtime.
    dir_mtimes: BTreeMap<LayerPath, (i64, u32)>,
    bytes: u64,
    removed: usize,
}

impl<D: LayerDriver + ?Sized> Run<'_, D> {
    fn all(&mut self, steps: &[Step]) -> layerlab_core::Result<()> {
        for s in steps {
            self.step(s)?;
        }
        // Directory modes last, deepest first.
        let modes: Vec<(LayerPath, u32)> = self
            .dir_modes
            .iter()
            .rev()
            .map(|(p, m)| (p.clone(), *m))
            .collect();
        for (p, mode) in modes {
            let md = self.d.stat(self.layer, &p)?;
            if md.kind == FileKind::Dir && md.mode != mode {
                self.d.chmod(self.layer, &p, mode)?;
            }
        }
        let times = std::mem::take(&mut self.dir_mtimes);
        for (p, (secs, nsec)) in times {
            self.set_mtime(&p, secs, nsec)?;
        }
        Ok(())
    }

    /// Sets the extended attributes an entry carries (the old ones journalled) and its
    /// mtime (a directory's at the end).
    fn attrs(&mut self, path: &LayerPath, attrs: &Attrs) -> layerlab_core::Result<()> {
        if !attrs.xattrs.is_empty() {
            if !self.log.covered(path) {
                let xattrs = ops::xattrs(self.d, self.layer, path)?;
                self.log.push(Undo::Xattrs {
                    path: path.clone(),
                    xattrs,
                })?;
            }
            for (name, value) in &attrs.xattrs {
                self.d.set_xattr(self.layer, path, name, value)?;
            }
        }
        if let Some((secs, nsec)) = attrs.mtime {
            if self.d.stat(self.layer, path)?.kind == FileKind::Dir {
                self.dir_mtimes.insert(path.clone(), (secs, nsec));
            } else {
                self.set_mtime(path, secs, nsec)?;
            }
        }
        Ok(())
    }

    /// Sets an entry's mtime, the old one recorded.
    fn set_mtime(&mut self, path: &LayerPath, secs: i64, nsec: u32) -> layerlab_core::Result<()> {
        if !self.log.covered(path) {
            let old = self.d.stat(self.layer, path)?;
            self.log.push(Undo::Mtime {
                path: path.clone(),
                secs: old.mtime,
                nsec: old.mtime_nsec,
            })?;
        }
        self.d.set_mtime(self.layer, path, secs, nsec)
    }

    fn step(&mut self, s: &Step) -> layerlab_core::Result<()> {
        let (d, layer) = (&mut *self.d, self.layer);
        match s {
            Step::ClearDir(dir) => {
                for e in d.readdir(layer, dir)? {
                    let child = ops::child(dir, &e.name)?;
                    self.remove(&child)?;
                }
            }
            Step::Remove(p) => self.remove(p)?,
            Step::Create(Op::Dir {
                path,
                mode,
                uid,
                gid,
            }) => {
                self.log.push(Undo::Remove { path: path.clone() })?;
                self.d.mkdir(layer, path, mode | 0o700)?;
                if (*uid, *gid) != (0, 0) {
                    self.d.chown(layer, path, *uid, *gid)?;
                }
                self.dir_modes.insert(path.clone(), *mode);
            }
            Step::SetAttrs {
                path,
                mode,
                uid,
                gid,
            } => {
                let old = d.stat(layer, path)?;
                self.log.push(Undo::Attrs {
                    path: path.clone(),
                    mode: old.mode,
                    uid: old.uid,
                    gid: old.gid,
                })?;
                if (old.uid, old.gid) != (*uid, *gid) {
                    self.d.chown(layer, path, *uid, *gid)?;
                }
                if old.mode & 0o700 != 0o700 {
                    self.d.chmod(layer, path, old.mode | 0o700)?;
                }
                self.dir_modes.insert(path.clone(), *mode);
            }
            Step::Create(Op::File {
                path,
                mode,
                uid,
                gid,
                offset,
                len,
            }) => {
                self.log.push(Undo::Remove { path: path.clone() })?;
                self.d.create(layer, path, 0o600)?;
                let mut done = 0u64;
                while done < *len {
                    let n = (*len - done).min(CHUNK);
                    let buf = self
                        .parsed
                        .content(offset + done, usize::try_from(n).unwrap_or(usize::MAX))
                        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
                    self.d.write(layer, path, done, &buf)?;
                    done += n;
                }
                self.bytes += len;
                if (*uid, *gid) != (0, 0) {
                    self.d.chown(layer, path, *uid, *gid)?;
                }
                if *mode != 0o600 {
                    self.d.chmod(layer, path, *mode)?;
                }
            }
            Step::Create(Op::Symlink {
                path,
                target,
                uid,
                gid,
            }) => {
                self.log.push(Undo::Remove { path: path.clone() })?;
                self.d.symlink(layer, target, path)?;
                if (*uid, *gid) != (0, 0) {
                    self.d.chown(layer, path, *uid, *gid)?;
                }
            }
            Step::Create(Op::Hardlink { path, target }) => {
                self.log.push(Undo::Remove { path: path.clone() })?;
                self.d.hardlink(layer, target, path)?;
            }
            Step::Create(Op::Node {
                path,
                node,
                uid,
                gid,
            }) => {
                self.log.push(Undo::Remove { path: path.clone() })?;
                self.d.mknod(layer, path, *node)?;
                if (*uid, *gid) != (0, 0) {
                    self.d.chown(layer, path, *uid, *gid)?;
                }
            }
            Step::Attrs(path, attrs) => self.attrs(path, attrs)?,
            // never planned: markers become Remove and ClearDir steps
            Step::Create(Op::Opaque(_) | Op::Whiteout(_)) => {}
        }
        Ok(())
    }

    /// Saves the subtree at `p` and records its restore, then removes it.
    fn remove(&mut self, p: &LayerPath) -> layerlab_core::Result<()> {
        self.log.save_subtree(self.d, self.layer, p)?;
        ops::remove_all(self.d, self.layer, p)?;
        let prefix = format!("{}/", p.as_str());
        self.dir_modes
            .retain(|k, _| k != p && !k.as_str().starts_with(&prefix));
        self.dir_mtimes
            .retain(|k, _| k != p && !k.as_str().starts_with(&prefix));
        self.removed += 1;
        Ok(())
    }

    /// Undoes the log, newest first, and ends the batch again (and the journal, for a log
    /// in the store: an error leaves it to the next writer's open).
    fn undo(&mut self, root: Option<&Path>) -> layerlab_core::Result<()> {
        self.log.undo(self.d, self.layer)?;
        self.d.end_batch()?;
        match root {
            Some(root) => journal::end_apply(root, &self.log),
            None => Ok(()),
        }
    }
}
