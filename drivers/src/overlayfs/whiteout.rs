//! overlay2's [`BranchFormat`]: markers stored as the kernel's overlayfs stores them
//! ([`OverlayFormat`]: a whiteout is a character device 0/0 at the deleted name, an opaque
//! directory carries the xattr `trusted.overlay.opaque=y`, or `user.overlay.opaque=y`
//! under the kernel's `userxattr` convention; a metacopy file `*.overlay.metacopy`).

use crate::hostfs;
use crate::union::format::corrupt;
use crate::union::{BranchFormat, Listed, Probe};
use layerlab_core::{Error, FileKind, Result};
use std::path::{Path, PathBuf};

/// overlayfs's on-disk format.
#[derive(Debug, Clone, Copy)]
pub struct OverlayFormat {
    /// `trusted.overlay.opaque` or `user.overlay.opaque`.
    pub opaque_xattr: &'static str,
    /// `trusted.overlay.metacopy` or `user.overlay.metacopy`.
    pub metacopy_xattr: &'static str,
    /// Whether metacopy files may exist (the `metacopy` option); when off, file probes
    /// skip the xattr read.
    pub metacopy: bool,
}

impl OverlayFormat {
    /// The format in the `trusted.overlay.*` namespace (root), or `user.overlay.*` (the
    /// kernel's `userxattr` mount option, for unprivileged stores).
    pub fn new(userxattr: bool, metacopy: bool) -> Self {
        if userxattr {
            OverlayFormat {
                opaque_xattr: "user.overlay.opaque",
                metacopy_xattr: "user.overlay.metacopy",
                metacopy,
            }
        } else {
            OverlayFormat {
                opaque_xattr: "trusted.overlay.opaque",
                metacopy_xattr: "trusted.overlay.metacopy",
                metacopy,
            }
        }
    }

    /// The xattr namespace in use, `trusted` or `user`.
    pub fn namespace(&self) -> &'static str {
        if self.opaque_xattr.starts_with("user.") {
            "user"
        } else {
            "trusted"
        }
    }

    /// Marks a directory opaque.
    pub fn set_opaque(&self, dir: &Path) -> Result<()> {
        set_xattr_writable(dir, self.opaque_xattr, b"y")
    }

    /// True when a directory is marked opaque.
    pub fn is_opaque(&self, dir: &Path) -> Result<bool> {
        Ok(hostfs::get_xattr(dir, self.opaque_xattr)?.is_some_and(|v| v == b"y"))
    }

    /// Marks a file as a metacopy (its data lives in a lower branch).
    pub fn set_metacopy(&self, file: &Path) -> Result<()> {
        set_xattr_writable(file, self.metacopy_xattr, b"")
    }

    /// True when a file is a metacopy.
    pub fn is_metacopy(&self, file: &Path) -> Result<bool> {
        Ok(self.metacopy && hostfs::get_xattr(file, self.metacopy_xattr)?.is_some())
    }
}

/// Sets an xattr; an unprivileged owner whose entry is not writable (user.* xattrs need
/// write permission) makes it writable for the moment.
fn set_xattr_writable(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    match hostfs::set_xattr(path, name, value) {
        Err(Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied && !hostfs::privileged() =>
        {
            use std::os::unix::fs::PermissionsExt;
            let md = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
            let mode = md.permissions().mode();
            hostfs::set_mode(path, mode | 0o200)?;
            let r = hostfs::set_xattr(path, name, value);
            hostfs::set_mode(path, mode)?;
            r
        }
        other => other,
    }
}

impl BranchFormat for OverlayFormat {
    const WHITEOUT_IN_PLACE: bool = true;
    const OPAQUE_ON_MOVE_INTO_MERGE: bool = true;

    fn whiteout_path(&self, dst: &Path) -> PathBuf {
        dst.to_path_buf()
    }

    fn whiteout_host_name(&self, hidden: &str) -> String {
        hidden.to_string()
    }

    fn make_whiteout(&self, path: &Path) -> Result<()> {
        hostfs::mknod_whiteout(path)
    }

    fn is_whiteout_at(&self, path: &Path) -> Result<bool> {
        Ok(hostfs::lstat(path)?.is_some_and(|md| hostfs::is_whiteout(&md)))
    }

    fn set_opaque(&self, dir: &Path) -> Result<()> {
        OverlayFormat::set_opaque(self, dir)
    }

    fn is_opaque(&self, dir: &Path) -> Result<bool> {
        OverlayFormat::is_opaque(self, dir)
    }

    fn metacopy(&self) -> bool {
        self.metacopy
    }

    fn set_metacopy(&self, file: &Path) -> Result<()> {
        OverlayFormat::set_metacopy(self, file)
    }

    fn probe(&self, parent: &Path, name: &str) -> Result<Probe> {
        let path = parent.join(name);
        let Some(md) = hostfs::lstat(&path)? else {
            return Ok(Probe::Missing);
        };
        if hostfs::is_whiteout(&md) {
            return Ok(Probe::Whiteout);
        }
        let kind = hostfs::kind_of(&md)
            .ok_or_else(|| corrupt(&path, "unexpected file type in a layer's diff"))?;
        Ok(Probe::Entry {
            kind,
            opaque: kind == FileKind::Dir && self.is_opaque(&path)?,
            metacopy: kind == FileKind::File && self.is_metacopy(&path)?,
        })
    }

    fn list(&self, dir: &Path) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let e = e.map_err(|e| Error::io(dir, e))?;
            let name = e
                .file_name()
                .into_string()
                .map_err(|_| corrupt(dir, "file name is not UTF-8"))?;
            let ft = e.file_type().map_err(|err| Error::io(e.path(), err))?;
            let item = match hostfs::kind_of_type(ft) {
                // a character device 0/0 is a whiteout (mknod refuses to make one)
                Some(FileKind::CharDevice) => match hostfs::lstat(&e.path())? {
                    Some(md) if hostfs::is_whiteout(&md) => Listed::Whiteout(name),
                    _ => Listed::Entry(name, FileKind::CharDevice),
                },
                Some(kind) => Listed::Entry(name, kind),
                None => return Err(corrupt(&e.path(), "unexpected file type in a layer's diff")),
            };
            out.push(item);
        }
        Ok(out)
    }
}
