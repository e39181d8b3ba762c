//! Applying a checked plan ([`crate::tar_in::plan`]) to a layer through the `LayerDriver`
//! trait, so that every driver stores the result in its native form: removals become
//! character-device whiteouts on overlay2, `.wh.` files on aufs, real deletions on the
//! block and snapshot drivers.
//!
//! Everything the archive could get wrong was refused before the first change (see
//! [`crate::tar_in`]). What remains are failures of the store itself (no space, I/O): for
//! those, every change is journalled before it is made (the subtree a removal deletes is
//! saved first, attributes are remembered) and the journal is undone in reverse, so the
//! layer's view is as it was. (A restored subtree comes back with its content, modes,
//! owners and symlinks; hardlinks inside a restored subtree come back as separate files.)
//!
//! The changes are one batch ([`LayerDriver::begin_batch`]): a driver that makes each
//! change durable on its own (the block drivers' metadata log) fsyncs once, at the end,
//! rather than once per change; a failure of that last fsync is undone as any other.
//!
//! Directory modes are set last, deepest first (as tar does), so that a read-only
//! directory in the archive does not stop its own entries from being written.

use crate::error::{OciError, Result};
use crate::tar_in::{self, Attrs, Limits, Op, Parsed, Step};
use layerlab_core::{ops, Error, FileKind, LayerDriver, LayerId, LayerPath, LayerState, Metadata};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

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
/// archive leaves the layer's view as it was.
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

/// Checks a parsed archive against the layer and applies it.
pub fn apply_parsed<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    parsed: &Parsed,
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
    let mut run = Run {
        d,
        layer,
        parsed,
        journal: Vec::new(),
        saved: None,
        saved_len: 0,
        dir_modes: BTreeMap::new(),
        dir_mtimes: BTreeMap::new(),
        bytes: 0,
        removed: 0,
    };
    // one batch: the driver's fsyncs are made once, at the end (the commit point)
    run.d.begin_batch();
    let result = run.all(&steps).and_then(|()| run.d.end_batch());
    if let Err(e) = result {
        return match run.rollback().and_then(|()| run.d.end_batch()) {
            Ok(()) => Err(driver_err(e)),
            Err(r) => Err(OciError::Malformed {
                archive: parsed.archive.clone(),
                reason: format!(
                    "applying to layer {layer} failed ({e}) and undoing it failed too ({r})"
                ),
            }),
        };
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

/// A saved entry of a removed subtree.
#[derive(Debug)]
struct Saved {
    path: LayerPath,
    md: Metadata,
    content: (u64, u64),
    xattrs: Vec<(String, Vec<u8>)>,
}

#[derive(Debug)]
enum Undo {
    RemoveIfExists(LayerPath),
    Restore(Vec<Saved>),
    Attrs(LayerPath, Metadata),
    Xattrs(LayerPath, Vec<(String, Vec<u8>)>),
}

struct Run<'a, D: ?Sized> {
    d: &'a mut D,
    layer: &'a LayerId,
    parsed: &'a Parsed,
    journal: Vec<Undo>,
    saved: Option<File>,
    saved_len: u64,
    dir_modes: BTreeMap<LayerPath, u32>,
    /// Directory mtimes, set last: making an entry in a directory changes its mtime.
    dir_mtimes: BTreeMap<LayerPath, (i64, u32)>,
    bytes: u64,
    removed: usize,
}

fn tmp_err(e: std::io::Error) -> Error {
    Error::io(std::env::temp_dir(), e)
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
            self.d.set_mtime(self.layer, &p, secs, nsec)?;
        }
        Ok(())
    }

    /// Sets the extended attributes an entry carries (the old ones journalled) and its
    /// mtime (a directory's at the end).
    fn attrs(&mut self, path: &LayerPath, attrs: &Attrs) -> layerlab_core::Result<()> {
        if !attrs.xattrs.is_empty() {
            let old = ops::xattrs(self.d, self.layer, path)?;
            self.journal.push(Undo::Xattrs(path.clone(), old));
            for (name, value) in &attrs.xattrs {
                self.d.set_xattr(self.layer, path, name, value)?;
            }
        }
        if let Some((secs, nsec)) = attrs.mtime {
            if self.d.stat(self.layer, path)?.kind == FileKind::Dir {
                self.dir_mtimes.insert(path.clone(), (secs, nsec));
            } else {
                self.d.set_mtime(self.layer, path, secs, nsec)?;
            }
        }
        Ok(())
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
                d.mkdir(layer, path, mode | 0o700)?;
                self.journal.push(Undo::RemoveIfExists(path.clone()));
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
                self.journal.push(Undo::Attrs(path.clone(), old.clone()));
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
                d.create(layer, path, 0o600)?;
                self.journal.push(Undo::RemoveIfExists(path.clone()));
                let mut done = 0u64;
                while done < *len {
                    let n = (*len - done).min(CHUNK);
                    let buf = self
                        .parsed
                        .content(offset + done, usize::try_from(n).unwrap_or(usize::MAX))
                        .map_err(tmp_err)?;
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
                d.symlink(layer, target, path)?;
                self.journal.push(Undo::RemoveIfExists(path.clone()));
                if (*uid, *gid) != (0, 0) {
                    self.d.chown(layer, path, *uid, *gid)?;
                }
            }
            Step::Create(Op::Hardlink { path, target }) => {
                d.hardlink(layer, target, path)?;
                self.journal.push(Undo::RemoveIfExists(path.clone()));
            }
            Step::Create(Op::Node {
                path,
                kind,
                mode,
                uid,
                gid,
                rdev,
            }) => {
                d.mknod(layer, path, *kind, *mode, *rdev)?;
                self.journal.push(Undo::RemoveIfExists(path.clone()));
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

    /// Saves the subtree at `p`, journals its restore, then removes it.
    fn remove(&mut self, p: &LayerPath) -> layerlab_core::Result<()> {
        let mut saved = Vec::new();
        for (path, kind) in ops::walk(self.d, self.layer, p)? {
            let md = self.d.stat(self.layer, &path)?;
            let content = if kind == FileKind::File {
                self.save_content(&path)?
            } else {
                (0, 0)
            };
            let xattrs = ops::xattrs(self.d, self.layer, &path)?;
            saved.push(Saved {
                path,
                md,
                content,
                xattrs,
            });
        }
        self.journal.push(Undo::Restore(saved));
        ops::remove_all(self.d, self.layer, p)?;
        let prefix = format!("{}/", p.as_str());
        self.dir_modes
            .retain(|k, _| k != p && !k.as_str().starts_with(&prefix));
        self.dir_mtimes
            .retain(|k, _| k != p && !k.as_str().starts_with(&prefix));
        self.removed += 1;
        Ok(())
    }

    fn save_content(&mut self, path: &LayerPath) -> layerlab_core::Result<(u64, u64)> {
        if self.saved.is_none() {
            self.saved = Some(tempfile::tempfile().map_err(tmp_err)?);
        }
        let start = self.saved_len;
        let mut off = 0u64;
        loop {
            let chunk = self.d.read(self.layer, path, off, CHUNK)?;
            if chunk.is_empty() {
                break;
            }
            if let Some(f) = &self.saved {
                f.write_all_at(&chunk, start + off).map_err(tmp_err)?;
            }
            off += chunk.len() as u64;
        }
        self.saved_len += off;
        Ok((start, off))
    }

    /// Undoes the journal, newest first.
    fn rollback(&mut self) -> layerlab_core::Result<()> {
        let journal = std::mem::take(&mut self.journal);
        for u in journal.into_iter().rev() {
            match u {
                Undo::RemoveIfExists(p) => {
                    if self.d.stat(self.layer, &p).is_ok() {
                        ops::remove_all(self.d, self.layer, &p)?;
                    }
                }
                Undo::Attrs(p, md) => {
                    self.d.chown(self.layer, &p, md.uid, md.gid)?;
                    self.d.chmod(self.layer, &p, md.mode)?;
                }
                Undo::Xattrs(p, old) => {
                    if self.d.stat(self.layer, &p).is_ok() {
                        for name in self.d.list_xattrs(self.layer, &p)? {
                            self.d.remove_xattr(self.layer, &p, &name)?;
                        }
                        for (name, value) in &old {
                            self.d.set_xattr(self.layer, &p, name, value)?;
                        }
                    }
                }
                Undo::Restore(saved) => {
                    if let Some(first) = saved.first() {
                        if self.d.stat(self.layer, &first.path).is_ok() {
                            ops::remove_all(self.d, self.layer, &first.path)?;
                        }
                    }
                    let mut dirs = Vec::new();
                    for s in &saved {
                        self.restore(s)?;
                        for (name, value) in &s.xattrs {
                            self.d.set_xattr(self.layer, &s.path, name, value)?;
                        }
                        if s.md.kind == FileKind::Dir {
                            dirs.push(s);
                        } else {
                            self.d
                                .set_mtime(self.layer, &s.path, s.md.mtime, s.md.mtime_nsec)?;
                        }
                    }
                    for s in dirs.into_iter().rev() {
                        self.d.chmod(self.layer, &s.path, s.md.mode)?;
                        self.d
                            .set_mtime(self.layer, &s.path, s.md.mtime, s.md.mtime_nsec)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn restore(&mut self, s: &Saved) -> layerlab_core::Result<()> {
        let (layer, p) = (self.layer, &s.path);
        match s.md.kind {
            FileKind::Dir => self.d.mkdir(layer, p, s.md.mode | 0o700)?,
            kind @ (FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo) => {
                self.d.mknod(layer, p, kind, s.md.mode, s.md.rdev)?
            }
            FileKind::Symlink => {
                let target = s.md.target.clone().unwrap_or_default();
                self.d.symlink(layer, &target, p)?;
            }
            FileKind::File => {
                self.d.create(layer, p, 0o600)?;
                let (start, len) = s.content;
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(CHUNK);
                    let mut buf = vec![0u8; usize::try_from(n).unwrap_or(usize::MAX)];
                    if let Some(f) = &self.saved {
                        f.read_exact_at(&mut buf, start + done).map_err(tmp_err)?;
                    }
                    self.d.write(layer, p, done, &buf)?;
                    done += n;
                }
                self.d.chmod(layer, p, s.md.mode)?;
            }
        }
        if (s.md.uid, s.md.gid) != (0, 0) {
            self.d.chown(layer, p, s.md.uid, s.md.gid)?;
        }
        Ok(())
    }
}
