//! The preconditions of every file operation, written once.
//!
//! Drivers and the reference model call these before they change anything, so that they
//! all refuse the same operations with the same error, in the same order of checks.
//! A driver supplies one primitive, [`Resolve`]: what is at a path of a layer's merged view.

use crate::{Error, FileKind, LayerId, LayerInfo, LayerPath, LayerState, Node, Result};

/// What a rule needs to know about a layer's merged view.
pub trait Resolve {
    /// The kind of the entry at `path`, or `None` when it is absent from an existing parent
    /// directory. Walks from the root: `NotFound` when an ancestor is missing,
    /// `NotADirectory` when an ancestor is not a directory (both naming `path`).
    fn resolve(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Option<FileKind>>;

    /// True when the directory at `path` has no visible entries.
    fn is_empty_dir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<bool>;
}

fn not_found(layer: &LayerId, path: &LayerPath) -> Error {
    Error::NotFound {
        layer: layer.clone(),
        path: path.clone(),
    }
}

fn invalid(layer: &LayerId, path: &LayerPath, reason: &str) -> Error {
    Error::InvalidArgument {
        layer: layer.clone(),
        path: path.clone(),
        reason: reason.to_string(),
    }
}

/// `create_layer` on `parent` (if any: its id, state and depth), once the new layer's id
/// is known to be free: the parent committed, the new layer's depth within `max_depth`
/// (`driver`'s limit). Returns that depth.
pub fn new_layer_depth(
    id: &LayerId,
    parent: Option<(&LayerId, LayerState, usize)>,
    max_depth: Option<usize>,
    driver: &str,
) -> Result<usize> {
    let depth = match parent {
        None => 1,
        Some((p, state, depth)) => {
            if state != LayerState::Committed {
                return Err(Error::ParentNotCommitted {
                    layer: id.clone(),
                    parent: p.clone(),
                });
            }
            depth + 1
        }
    };
    match max_depth {
        Some(max) if depth > max => Err(Error::TooManyLayers {
            layer: id.clone(),
            depth,
            max,
            driver: driver.to_string(),
        }),
        _ => Ok(depth),
    }
}

/// The layer must be active to be changed.
pub fn ensure_active(info: &LayerInfo, path: &LayerPath) -> Result<()> {
    match info.state {
        LayerState::Active => Ok(()),
        LayerState::Committed => Err(Error::ReadOnlyLayer {
            layer: info.id.clone(),
            path: path.clone(),
        }),
    }
}

/// Something must be at `path`; returns its kind.
pub fn need_entry<R: Resolve + ?Sized>(
    r: &mut R,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<FileKind> {
    r.resolve(layer, path)?
        .ok_or_else(|| not_found(layer, path))
}

/// Something other than a `kind` must be at `path`; returns its kind, or `refusal` when it
/// is a `kind`.
fn need_entry_other_than<R: Resolve + ?Sized>(
    r: &mut R,
    layer: &LayerId,
    path: &LayerPath,
    kind: FileKind,
    refusal: impl FnOnce() -> Error,
) -> Result<FileKind> {
    match need_entry(r, layer, path)? {
        found if found == kind => Err(refusal()),
        found => Ok(found),
    }
}

/// A regular file must be at `path` (read, write, append, truncate).
pub fn need_file<R: Resolve + ?Sized>(r: &mut R, layer: &LayerId, path: &LayerPath) -> Result<()> {
    match need_entry(r, layer, path)? {
        FileKind::File => Ok(()),
        FileKind::Dir => Err(Error::IsADirectory {
            layer: layer.clone(),
            path: path.clone(),
        }),
        FileKind::Symlink => Err(invalid(layer, path, "is a symlink (never followed)")),
        other => Err(invalid(
            layer,
            path,
            &format!("is a {}, not a regular file", other.as_str()),
        )),
    }
}

/// A directory must be at `path` (readdir).
pub fn need_dir<R: Resolve + ?Sized>(r: &mut R, layer: &LayerId, path: &LayerPath) -> Result<()> {
    match need_entry(r, layer, path)? {
        FileKind::Dir => Ok(()),
        _ => Err(Error::NotADirectory {
            layer: layer.clone(),
            path: path.clone(),
        }),
    }
}

/// Nothing may be at `path`, and its parent must be a directory (create, mkdir, symlink).
pub fn need_absent<R: Resolve + ?Sized>(
    r: &mut R,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<()> {
    match r.resolve(layer, path)? {
        None => Ok(()),
        Some(_) => Err(Error::AlreadyExists {
            layer: layer.clone(),
            path: path.clone(),
        }),
    }
}

/// A symlink target must be non-empty and free of NUL bytes.
pub fn check_symlink_target(layer: &LayerId, link: &LayerPath, target: &str) -> Result<()> {
    if target.is_empty() {
        return Err(invalid(layer, link, "empty symlink target"));
    }
    if target.contains('\0') {
        return Err(invalid(layer, link, "symlink target contains a NUL byte"));
    }
    if target.len() > crate::path::PATH_MAX {
        return Err(invalid(layer, link, "symlink target too long"));
    }
    Ok(())
}

/// `unlink`: a file or symlink must be at `path`. Returns its kind.
pub fn check_unlink<R: Resolve + ?Sized>(
    r: &mut R,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<FileKind> {
    need_entry_other_than(r, layer, path, FileKind::Dir, || Error::IsADirectory {
        layer: layer.clone(),
        path: path.clone(),
    })
}

/// `rmdir`: an empty directory other than `/` must be at `path`.
pub fn check_rmdir<R: Resolve + ?Sized>(
    r: &mut R,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<()> {
    if path.is_root() {
        return Err(invalid(layer, path, "cannot remove the root directory"));
    }
    need_dir(r, layer, path)?;
    if !r.is_empty_dir(layer, path)? {
        return Err(Error::DirectoryNotEmpty {
            layer: layer.clone(),
            path: path.clone(),
        });
    }
    Ok(())
}

/// `chmod`: anything but a symlink.
pub fn check_chmod<R: Resolve + ?Sized>(
    r: &mut R,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<FileKind> {
    need_entry_other_than(r, layer, path, FileKind::Symlink, || {
        invalid(layer, path, "cannot chmod a symlink")
    })
}

/// `hardlink`: `existing` must be a regular file and `link` must be free.
pub fn check_hardlink<R: Resolve + ?Sized>(
    r: &mut R,
    layer: &LayerId,
    existing: &LayerPath,
    link: &LayerPath,
) -> Result<()> {
    match need_entry(r, layer, existing)? {
        FileKind::File => {}
        FileKind::Dir => {
            return Err(Error::IsADirectory {
                layer: layer.clone(),
                path: existing.clone(),
            })
        }
        FileKind::Symlink => return Err(invalid(layer, existing, "cannot hardlink a symlink")),
        other => {
            return Err(invalid(
                layer,
                existing,
                &format!(
                    "layerlab hard-links regular files only, not a {}",
                    other.as_str()
                ),
            ))
        }
    }
    need_absent(r, layer, link)
}

/// What a valid rename will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenamePlan {
    /// The kind of the source.
    pub source: FileKind,
    /// The kind of the destination it replaces, if any.
    pub replaces: Option<FileKind>,
    /// True when source and destination are the same path (nothing to do).
    pub noop: bool,
}

/// `rename`: the POSIX rules the VFS checks before any filesystem sees the rename (kinds,
/// `/`, a directory into itself). The driver's own refusal (EXDEV) comes next, then
/// [`check_rename_over`]: overlayfs refuses a lower directory with EXDEV before it looks at
/// whether the directory it would replace is empty.
pub fn plan_rename<R: Resolve + ?Sized>(
    r: &mut R,
    layer: &LayerId,
    from: &LayerPath,
    to: &LayerPath,
) -> Result<RenamePlan> {
    if from.is_root() {
        return Err(invalid(layer, from, "cannot rename the root directory"));
    }
    if to.is_root() {
        return Err(invalid(layer, to, "cannot rename over the root directory"));
    }
    let source = need_entry(r, layer, from)?;
    if from == to {
        return Ok(RenamePlan {
            source,
            replaces: Some(source),
            noop: true,
        });
    }
    if source == FileKind::Dir && from.is_ancestor_of(to) {
        return Err(invalid(layer, to, "cannot move a directory into itself"));
    }
    // the VFS refuses a target that is an ancestor of the source before any filesystem
    // sees the rename: it cannot be empty
    if to.is_ancestor_of(from) {
        return Err(Error::DirectoryNotEmpty {
            layer: layer.clone(),
            path: to.clone(),
        });
    }
    let replaces = r.resolve(layer, to)?;
    match (source, replaces) {
        (_, None) | (FileKind::Dir, Some(FileKind::Dir)) => {}
        (FileKind::Dir, Some(_)) => {
            return Err(Error::NotADirectory {
                layer: layer.clone(),
                path: to.clone(),
            })
        }
        (_, Some(FileKind::Dir)) => {
            return Err(Error::IsADirectory {
                layer: layer.clone(),
                path: to.clone(),
            })
        }
        (_, Some(_)) => {}
    }
    Ok(RenamePlan {
        source,
        replaces,
        noop: false,
    })
}

/// `rename` of a directory over a directory: the one replaced must be empty
/// (`DirectoryNotEmpty`), checked after the driver's own refusal.
pub fn check_rename_over<R: Resolve + ?Sized>(
    r: &mut R,
    layer: &LayerId,
    to: &LayerPath,
    plan: &RenamePlan,
) -> Result<()> {
    if plan.source == FileKind::Dir
        && plan.replaces == Some(FileKind::Dir)
        && !r.is_empty_dir(layer, to)?
    {
        return Err(Error::DirectoryNotEmpty {
            layer: layer.clone(),
            path: to.clone(),
        });
    }
    Ok(())
}

/// The longest extended attribute name Linux takes (`XATTR_NAME_MAX`).
pub const XATTR_NAME_MAX: usize = 255;
/// The largest extended attribute value Linux takes (`XATTR_SIZE_MAX`).
pub const XATTR_SIZE_MAX: usize = 65536;
/// The namespaces layerlab keeps (`system.*` holds ACLs, which are not modelled).
pub const XATTR_NAMESPACES: [&str; 3] = ["user.", "trusted.", "security."];
/// Names the drivers keep their own markers under (overlay's whiteouts, opaque directories
/// and metacopy; layerlab's unprivileged owners and attributes): refused to users, never
/// listed.
pub const RESERVED_XATTR_PREFIXES: [&str; 3] =
    ["trusted.overlay.", "user.overlay.", "user.layerlab."];

/// True when `name` is one of the drivers' own markers.
pub fn is_reserved_xattr(name: &str) -> bool {
    RESERVED_XATTR_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Why an extended attribute name is refused, if it is: outside the kept namespaces,
/// empty, too long or with a NUL (`InvalidArgument`), or reserved (`NotPermitted`).
pub fn xattr_name_refusal(name: &str) -> Option<(crate::ErrorKind, String)> {
    use crate::ErrorKind::{InvalidArgument, NotPermitted};
    let ns = XATTR_NAMESPACES.iter().find(|ns| name.starts_with(**ns));
    match ns {
        None => Some((
            InvalidArgument,
            format!("xattr name {name:?} is not in the user, trusted or security namespace"),
        )),
        Some(ns) if name.len() == ns.len() => {
            Some((InvalidArgument, format!("xattr name {name:?} is empty")))
        }
        Some(_) if name.len() > XATTR_NAME_MAX || name.contains('\0') => Some((
            InvalidArgument,
            format!("xattr name longer than {XATTR_NAME_MAX} bytes or with a NUL byte"),
        )),
        Some(_) if is_reserved_xattr(name) => Some((
            NotPermitted,
            format!("xattr {name} is reserved for the driver's own markers"),
        )),
        Some(_) => None,
    }
}

/// An extended attribute name: in a kept namespace, not reserved, at most
/// [`XATTR_NAME_MAX`] bytes, no NUL.
pub fn check_xattr_name(layer: &LayerId, path: &LayerPath, name: &str) -> Result<()> {
    match xattr_name_refusal(name) {
        None => Ok(()),
        Some((crate::ErrorKind::NotPermitted, reason)) => Err(Error::NotPermitted {
            layer: layer.clone(),
            path: path.clone(),
            reason,
        }),
        Some((_, reason)) => Err(invalid(layer, path, &reason)),
    }
}

/// `getxattr`/`setxattr`/`removexattr`: the name, then an entry at `path`; `user.*`
/// attributes only on files and directories (as Linux: EPERM elsewhere). Returns the kind.
pub fn check_xattr<R: Resolve + ?Sized>(
    r: &mut R,
    layer: &LayerId,
    path: &LayerPath,
    name: &str,
) -> Result<FileKind> {
    check_xattr_name(layer, path, name)?;
    let kind = need_entry(r, layer, path)?;
    if name.starts_with("user.") && !matches!(kind, FileKind::File | FileKind::Dir) {
        return Err(Error::NotPermitted {
            layer: layer.clone(),
            path: path.clone(),
            reason: format!(
                "user.* xattrs only on files and directories, not a {}",
                kind.as_str()
            ),
        });
    }
    Ok(kind)
}

/// An extended attribute value: at most [`XATTR_SIZE_MAX`] bytes.
pub fn check_xattr_value(layer: &LayerId, path: &LayerPath, value: &[u8]) -> Result<()> {
    if value.len() > XATTR_SIZE_MAX {
        return Err(invalid(
            layer,
            path,
            &format!(
                "xattr value of {} bytes (at most {XATTR_SIZE_MAX})",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Why `mknod` refuses a kind and device number, if it does: only device nodes and fifos;
/// a character device 0:0 is overlay's whiteout marker on every union driver; a fifo has
/// no device number.
pub fn mknod_refusal(kind: FileKind, rdev: u64) -> Option<String> {
    match kind {
        FileKind::CharDevice if rdev == 0 => {
            Some("character device 0:0 is the overlay whiteout marker".into())
        }
        FileKind::CharDevice | FileKind::BlockDevice => None,
        FileKind::Fifo if rdev == 0 => None,
        FileKind::Fifo => Some("a fifo has no device number".into()),
        other => Some(format!(
            "mknod makes device nodes and fifos, not a {}",
            other.as_str()
        )),
    }
}

/// `mknod`: as [`mknod_refusal`] says.
pub fn check_mknod(layer: &LayerId, path: &LayerPath, node: Node) -> Result<()> {
    match mknod_refusal(node.kind, node.rdev) {
        None => Ok(()),
        Some(reason) => Err(invalid(layer, path, &reason)),
    }
}

/// `set_mtime`: nanoseconds below one second.
pub fn check_mtime(layer: &LayerId, path: &LayerPath, nsec: u32) -> Result<()> {
    if nsec >= 1_000_000_000 {
        return Err(invalid(layer, path, "nanoseconds must be below 1000000000"));
    }
    Ok(())
}

/// The value chown(2) reads as "leave unchanged" (`(uid_t)-1`): never an owner.
pub const NO_OWNER: u32 = u32::MAX;

/// `chown`: an owner or group of 4294967295 is refused (chown(2) takes it as "leave this one
/// unchanged", so no file can be given it).
pub fn check_owner(layer: &LayerId, path: &LayerPath, uid: u32, gid: u32) -> Result<()> {
    for (what, v) in [("uid", uid), ("gid", gid)] {
        if v == NO_OWNER {
            return Err(invalid(
                layer,
                path,
                &format!("{what} {v} is not an owner (chown(2) reads it as \"leave unchanged\")"),
            ));
        }
    }
    Ok(())
}

/// The largest file size and end of a write: `off_t`'s largest value, 2^63-1.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// `truncate`, `write`: a file may not end beyond [`MAX_FILE_SIZE`] ("too large", as
/// EFBIG), whatever the driver.
pub fn check_file_end(layer: &LayerId, path: &LayerPath, offset: u64, len: u64) -> Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= MAX_FILE_SIZE => Ok(()),
        _ => Err(invalid(
            layer,
            path,
            &format!(
                "file size {} too large (the largest is {MAX_FILE_SIZE} bytes)",
                u128::from(offset) + u128::from(len)
            ),
        )),
    }
}
