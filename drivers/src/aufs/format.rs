//! aufs's [`BranchFormat`]: the markers as aufs (and the OCI image-spec layer format)
//! stores them, as plain entries of the branch:
//!
//! - a deleted name `x` is a **whiteout**, an empty file `.wh.x` beside where `x` was
//!   (mode 0444, aufs's `WH_MASK`);
//! - an **opaque** directory holds an empty file `.wh..wh..opq`;
//! - names starting `.wh..wh.` are aufs's own housekeeping (`.wh..wh.orph`, `.wh..wh.plnk`,
//!   `.wh..wh.aufs` at a branch root): never shown, never whiteouts.
//!
//! A branch may hold `x` and `.wh.x` together for a moment (a change makes the whiteout
//! before it removes the entry, and places the entry before it removes the whiteout). As
//! in aufs's lookup (the whiteout stops the descent, the entry of the same branch is
//! still found), the entry wins and nothing below shows: a directory with its own
//! whiteout beside it is opaque.

use crate::hostfs;
use crate::union::format::corrupt;
use crate::union::{BranchFormat, Listed, Probe};
use layerlab_core::{Error, FileKind, IoContext, Result};
use std::path::{Path, PathBuf};

/// The prefix of every whiteout (OCI image-spec, aufs `AUFS_WH_PFX`).
pub const WH_PREFIX: &str = ".wh.";
/// The prefix of aufs's own entries (`AUFS_WH_PFX` twice), never shown.
pub const META_PREFIX: &str = ".wh..wh.";
/// The marker of an opaque directory (aufs `AUFS_WH_DIROPQ`, OCI `.wh..wh..opq`).
pub const OPAQUE: &str = ".wh..wh..opq";
/// aufs's orphan directory at a branch root; layerlab stages a layer's changes there.
pub const ORPH: &str = ".wh..wh.orph";
/// The mode of a whiteout and of the opaque marker (aufs `WH_MASK`, `S_IRUGO`).
pub const WH_MODE: u32 = 0o444;

/// aufs's on-disk format.
#[derive(Debug, Clone, Copy, Default)]
pub struct AufsFormat;

/// `.wh.<name>`.
pub fn whiteout_name(name: &str) -> String {
    format!("{WH_PREFIX}{name}")
}

/// Creates an empty marker file with `WH_MODE`; one that is there already is kept.
fn make_marker(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(WH_MODE)
        .open(path)
    {
        Ok(_) => hostfs::set_mode(path, WH_MODE),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Makes the opaque marker file `marker` in `dir` (a read-only directory of an unprivileged
/// owner is made writable a moment).
fn set_marker(dir: &Path, marker: &Path) -> Result<()> {
    match make_marker(marker) {
        // an unprivileged owner of a read-only directory makes it writable a moment
        Err(Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied && !hostfs::privileged() =>
        {
            use std::os::unix::fs::PermissionsExt;
            let md = std::fs::symlink_metadata(dir).at(dir)?;
            let mode = md.permissions().mode();
            hostfs::set_mode(dir, mode | 0o300)?;
            let r = make_marker(marker);
            hostfs::set_mode(dir, mode)?;
            r
        }
        other => other,
    }
}

impl BranchFormat for AufsFormat {
    const WHITEOUT_IN_PLACE: bool = false;

    fn probe(&self, parent: &Path, name: &str) -> Result<Probe> {
        let path = parent.join(name);
        let whiteout =
            || -> Result<bool> { Ok(hostfs::lstat(&parent.join(whiteout_name(name)))?.is_some()) };
        let Some(md) = hostfs::lstat(&path)? else {
            return Ok(if whiteout()? {
                Probe::Whiteout
            } else {
                Probe::Missing
            });
        };
        let kind = hostfs::kind_of(&md)
            .ok_or_else(|| corrupt(&path, "unexpected file type in an aufs branch"))?;
        Ok(Probe::Entry {
            kind,
            opaque: kind == FileKind::Dir && (self.is_opaque(&path)? || whiteout()?),
            metacopy: false,
        })
    }

    fn list(&self, dir: &Path) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).at(dir)? {
            let e = e.at(dir)?;
            let name = e
                .file_name()
                .into_string()
                .map_err(|_| corrupt(dir, "file name is not UTF-8"))?;
            if name.starts_with(META_PREFIX) {
                out.push(Listed::Skip);
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WH_PREFIX) {
                out.push(Listed::Whiteout(hidden.to_string()));
                continue;
            }
            let ft = e.file_type().map_err(|err| Error::io(e.path(), err))?;
            let kind = hostfs::kind_of_type(ft)
                .ok_or_else(|| corrupt(&e.path(), "unexpected file type in an aufs branch"))?;
            out.push(Listed::Entry(name, kind));
        }
        Ok(out)
    }

    fn whiteout_path(&self, dst: &Path) -> PathBuf {
        match (dst.parent(), dst.file_name().and_then(|n| n.to_str())) {
            (Some(parent), Some(name)) => parent.join(whiteout_name(name)),
            _ => dst.to_path_buf(),
        }
    }

    fn whiteout_host_name(&self, hidden: &str) -> String {
        whiteout_name(hidden)
    }

    fn make_whiteout(&self, path: &Path) -> Result<()> {
        make_marker(path)
    }

    fn is_whiteout_at(&self, path: &Path) -> Result<bool> {
        Ok(hostfs::lstat(path)?.is_some())
    }

    /// The marker is a file in the directory; the directory keeps its mtime (the marker is
    /// the driver's bookkeeping, not an entry of the view).
    fn set_opaque(&self, dir: &Path) -> Result<()> {
        let marker = dir.join(OPAQUE);
        hostfs::keeping_parent_mtime(&marker, || set_marker(dir, &marker))
    }

    fn is_opaque(&self, dir: &Path) -> Result<bool> {
        Ok(hostfs::lstat(&dir.join(OPAQUE))?.is_some())
    }
}
