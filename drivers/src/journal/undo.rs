//! The undo log of a command that changes existing entries (`apply` into an active layer):
//! one [`Undo`] record per change, written before the change is made, and undone newest
//! first, in the process on a failure ([`UndoLog::undo`]) or by the next writer's open
//! after a kill ([`super::recover`], [`Intent::Apply`](super::Intent::Apply)).
//!
//! On disk (a durable log, [`UndoLog::durable`]) the log is the staging directory
//! `<root>/journal.undo/`, made before `journal.json` names it:
//!
//! - `records`: the records, one JSON object a line, appended with one `write` each before
//!   the change it undoes. A last line without its newline (a write cut short) is dropped:
//!   its change was not made.
//! - `saved`: the content of the files a removal deletes, written before the record that
//!   names it (a record holds the `(offset, length)` of each file's bytes here).
//!
//! Neither file is fsynced per record: a killed process's writes are in the page cache,
//! which the next open reads. A host crash (power loss) can lose records whose changes
//! reached the disk (recovery then undoes the records before the first line it cannot
//! read); see [`super`] for what it promises then.
//!
//! Undoing is idempotent and needs nothing but the records: every record tolerates that
//! its entry, or the entry's parent, is gone (a recovery cut short by a crash had undone
//! newer records; an older record puts back what was there), so a crash during recovery
//! is recovered again by the next open. A record is written only where it is needed: once
//! a [`Undo::Remove`] names a path (the command made it where there was nothing), changes
//! at or under it are undone by that removal and log nothing.

use layerlab_core::{
    ops, Error, FileKind, LayerDriver, LayerId, LayerPath, Metadata, Node, Result,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes moved per read or write when saving or restoring file content.
const CHUNK: u64 = 1 << 20;

/// The staging directory of a durable undo log in the store at `root`.
pub fn dir(root: &Path) -> PathBuf {
    root.join("journal.undo")
}

const RECORDS: &str = "records";
const SAVED: &str = "saved";

/// One saved entry of a removed subtree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// Where it was.
    pub path: LayerPath,
    /// Its attributes (kind, mode, owner, device number, symlink target, mtime).
    pub md: Metadata,
    /// A file's content: `(offset, length)` in the log's saved content.
    pub content: (u64, u64),
    /// Its extended attributes.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// How to undo one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    /// The change makes `path` where the view had nothing: remove whatever is there.
    Remove {
        /// The entry made.
        path: LayerPath,
    },
    /// The change removes a subtree (saved first, parents before children): put it back.
    Restore {
        /// The subtree's entries.
        entries: Vec<Saved>,
    },
    /// The change sets an entry's owner or mode: set them back.
    Attrs {
        /// The entry.
        path: LayerPath,
        /// Its mode before.
        mode: u32,
        /// Its owner before.
        uid: u32,
        /// Its group before.
        gid: u32,
    },
    /// The change sets an entry's mtime: set it back.
    Mtime {
        /// The entry.
        path: LayerPath,
        /// Its mtime before, seconds since the epoch.
        secs: i64,
        /// Nanoseconds of it.
        nsec: u32,
    },
    /// The change sets extended attributes: put back exactly these.
    Xattrs {
        /// The entry.
        path: LayerPath,
        /// Its extended attributes before.
        xattrs: Vec<(String, Vec<u8>)>,
    },
}

impl Undo {
    fn path(&self) -> Option<&LayerPath> {
        match self {
            Undo::Remove { path }
            | Undo::Attrs { path, .. }
            | Undo::Mtime { path, .. }
            | Undo::Xattrs { path, .. } => Some(path),
            Undo::Restore { entries } => entries.first().map(|s| &s.path),
        }
    }
}

/// The undo records of one command, in memory and (durable) on disk.
#[derive(Debug)]
pub struct UndoLog {
    /// The staging directory of a durable log.
    dir: Option<PathBuf>,
    /// The durable log's `records`, and its length.
    records: Option<(File, u64)>,
    /// Where saved content goes (a durable log's `saved`, or a scratch file).
    saved: File,
    saved_len: u64,
    list: Vec<Undo>,
    /// Paths a [`Undo::Remove`] names: changes at or under them log nothing.
    made: HashSet<LayerPath>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl UndoLog {
    /// A log kept in memory (saved content in `scratch`, an anonymous file): undone in the
    /// process on a failure; a kill leaves what was done (the caller's undo for that is
    /// another, e.g. removing the new layer).
    pub fn in_memory(scratch: File) -> Self {
        UndoLog {
            dir: None,
            records: None,
            saved: scratch,
            saved_len: 0,
            list: Vec::new(),
            made: HashSet::new(),
        }
    }

    /// A durable log in the store at `root` (its staging directory made empty; the caller
    /// then names it in `journal.json`).
    pub(super) fn durable(root: &Path) -> Result<Self> {
        let dir = dir(root);
        remove_dir(&dir)?;
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        let open = |name: &str| {
            let p = dir.join(name);
            File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&p)
                .map_err(io(&p))
        };
        let records = open(RECORDS)?;
        let saved = open(SAVED)?;
        Ok(UndoLog {
            dir: Some(dir),
            records: Some((records, 0)),
            saved,
            saved_len: 0,
            list: Vec::new(),
            made: HashSet::new(),
        })
    }

    /// Whether a change at `path` is undone by an earlier [`Undo::Remove`] already.
    pub fn covered(&self, path: &LayerPath) -> bool {
        !self.made.is_empty()
            && (self.made.contains(path) || path.ancestors().iter().any(|a| self.made.contains(a)))
    }

    /// Records `u` (on disk first, for a durable log) before its change is made; a record
    /// a [`Undo::Remove`] covers already is left out.
    pub fn push(&mut self, u: Undo) -> Result<()> {
        if u.path().is_some_and(|p| self.covered(p)) {
            return Ok(());
        }
        if let (Some((f, len)), Some(dir)) = (&mut self.records, &self.dir) {
            let mut line = serde_json::to_vec(&u).map_err(|e| Error::Corrupt {
                path: dir.join(RECORDS),
                detail: e.to_string(),
            })?;
            line.push(b'\n');
            let p = dir.join(RECORDS);
            f.write_all_at(&line, *len).map_err(io(&p))?;
            *len += line.len() as u64;
        }
        if let Undo::Remove { path } = &u {
            self.made.insert(path.clone());
        }
        self.list.push(u);
        Ok(())
    }

    /// Saves the subtree at `p` of `layer` and records its restore: called before the
    /// subtree is removed.
    pub fn save_subtree<D: LayerDriver + ?Sized>(
        &mut self,
        d: &mut D,
        layer: &LayerId,
        p: &LayerPath,
    ) -> Result<()> {
        if self.covered(p) {
            return Ok(());
        }
        let mut entries = Vec::new();
        for (path, kind) in ops::walk(d, layer, p)? {
            let md = d.stat(layer, &path)?;
            let content = if kind == FileKind::File {
                self.save_content(d, layer, &path)?
            } else {
                (0, 0)
            };
            let xattrs = ops::xattrs(d, layer, &path)?;
            entries.push(Saved {
                path,
                md,
                content,
                xattrs,
            });
        }
        self.push(Undo::Restore { entries })
    }

    fn saved_path(&self) -> PathBuf {
        match &self.dir {
            Some(d) => d.join(SAVED),
            None => std::env::temp_dir(),
        }
    }

    fn save_content<D: LayerDriver + ?Sized>(
        &mut self,
        d: &mut D,
        layer: &LayerId,
        path: &LayerPath,
    ) -> Result<(u64, u64)> {
        let start = self.saved_len;
        let mut off = 0u64;
        loop {
            let chunk = d.read(layer, path, off, CHUNK)?;
            if chunk.is_empty() {
                break;
            }
            self.saved
                .write_all_at(&chunk, start + off)
                .map_err(io(&self.saved_path()))?;
            off += chunk.len() as u64;
        }
        self.saved_len += off;
        Ok((start, off))
    }

    /// Undoes every record, newest first (the log stays as it is: for a durable log the
    /// caller ends the journal after).
    pub fn undo<D: LayerDriver + ?Sized>(&self, d: &mut D, layer: &LayerId) -> Result<()> {
        let saved = Content {
            file: &self.saved,
            path: self.saved_path(),
        };
        Restore { d, layer, saved }.undo_all(&self.list)
    }

    /// The staging directory of a durable log.
    pub(super) fn staging(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

/// Removes a staging directory and what it holds, if it is there.
pub(super) fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Undoes the durable log in the staging directory `dir` (what a killed command logged).
pub(super) fn undo_from_disk<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    dir: &Path,
) -> Result<()> {
    let p = dir.join(RECORDS);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        // killed before the log was made: nothing was changed
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&p, e)),
    };
    // lines with their newline only: a last line cut short was never acted on. After a
    // host crash the page cache may have reached the disk out of order (a run of zeros
    // where records were): the records before the first unreadable line are undone, the
    // rest were lost with the page cache (the module doc says what that leaves).
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let list: Vec<Undo> = bytes[..whole]
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map_while(|line| serde_json::from_slice(line).ok())
        .collect();
    let saved_path = dir.join(SAVED);
    let file = match File::open(&saved_path) {
        Ok(f) => f,
        Err(e) => return Err(Error::io(&saved_path, e)),
    };
    let saved = Content {
        file: &file,
        path: saved_path,
    };
    Restore { d, layer, saved }.undo_all(&list)
}

/// Saved content and its file's name (for errors).
struct Content<'a> {
    file: &'a File,
    path: PathBuf,
}

/// Puts `layer`'s view of `d` back as undo records say, with the saved content.
struct Restore<'a, D: LayerDriver + ?Sized> {
    d: &'a mut D,
    layer: &'a LayerId,
    saved: Content<'a>,
}

impl<D: LayerDriver + ?Sized> Restore<'_, D> {
    /// Whether `path` is in the view (a missing parent, or a non-directory on the way, is
    /// "not there").
    fn present(&mut self, path: &LayerPath) -> Result<bool> {
        match self.d.stat(self.layer, path) {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. } | Error::NotADirectory { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the parent directory of `path` is in the view.
    fn parent_present(&mut self, path: &LayerPath) -> Result<bool> {
        match path.parent() {
            None => Ok(true),
            Some(parent) => match self.d.stat(self.layer, &parent) {
                Ok(md) => Ok(md.kind == FileKind::Dir),
                Err(Error::NotFound { .. } | Error::NotADirectory { .. }) => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    /// Undoes every record of `list`, newest first.
    fn undo_all(&mut self, list: &[Undo]) -> Result<()> {
        for u in list.iter().rev() {
            match u {
                Undo::Remove { path } => {
                    if self.present(path)? {
                        ops::remove_all(self.d, self.layer, path)?;
                    }
                }
                Undo::Attrs {
                    path,
                    mode,
                    uid,
                    gid,
                } => {
                    if self.present(path)? {
                        self.d.chown(self.layer, path, *uid, *gid)?;
                        self.d.chmod(self.layer, path, *mode)?;
                    }
                }
                Undo::Mtime { path, secs, nsec } => {
                    if self.present(path)? {
                        self.d.set_mtime(self.layer, path, *secs, *nsec)?;
                    }
                }
                Undo::Xattrs { path, xattrs } => {
                    if self.present(path)? {
                        for name in self.d.list_xattrs(self.layer, path)? {
                            self.d.remove_xattr(self.layer, path, &name)?;
                        }
                        for (name, value) in xattrs {
                            self.d.set_xattr(self.layer, path, name, value)?;
                        }
                    }
                }
                Undo::Restore { entries } => self.restore_subtree(entries)?,
            }
        }
        Ok(())
    }

    /// Puts a removed subtree back: whatever is at its place goes first (all of it, or what a
    /// removal cut short left), then every entry with its attributes; directory modes and
    /// mtimes last, deepest first.
    fn restore_subtree(&mut self, entries: &[Saved]) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if !self.parent_present(&first.path)? {
            // an older record puts the parent back, with this subtree as it was then
            return Ok(());
        }
        if self.present(&first.path)? {
            ops::remove_all(self.d, self.layer, &first.path)?;
        }
        let mut dirs = Vec::new();
        for s in entries {
            self.restore_entry(s)?;
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
        Ok(())
    }

    /// Makes one saved entry again, with its content, mode and owner.
    fn restore_entry(&mut self, s: &Saved) -> Result<()> {
        let p = &s.path;
        match s.md.kind {
            FileKind::Dir => self.d.mkdir(self.layer, p, s.md.mode | 0o700)?,
            kind @ (FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo) => {
                let node = Node::new(kind, s.md.mode, s.md.rdev);
                self.d.mknod(self.layer, p, node)?;
            }
            FileKind::Symlink => {
                let target = s.md.target.clone().unwrap_or_default();
                self.d.symlink(self.layer, &target, p)?;
            }
            FileKind::File => {
                self.d.create(self.layer, p, 0o600)?;
                let (start, len) = s.content;
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(CHUNK);
                    let mut buf = vec![0u8; usize::try_from(n).unwrap_or(usize::MAX)];
                    self.saved
                        .file
                        .read_exact_at(&mut buf, start + done)
                        .map_err(io(&self.saved.path))?;
                    self.d.write(self.layer, p, done, &buf)?;
                    done += n;
                }
                self.d.chmod(self.layer, p, s.md.mode)?;
            }
        }
        if (s.md.uid, s.md.gid) != (0, 0) {
            self.d.chown(self.layer, p, s.md.uid, s.md.gid)?;
        }
        Ok(())
    }
}
