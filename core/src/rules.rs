//! The preconditions of every file operation, written once.
//!
//! Drivers and the reference model call these before they change anything, so that they
//! all refuse the same operations with the same error, in the same order of checks.
//! A driver supplies one primitive, [`Resolve`]: what is at a path of a layer's merged view.

use crate::{Error, FileKind, LayerId, LayerInfo, LayerPath, LayerState, Result};

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

/// A regular file must be at `path` (read, write, append, truncate).
pub fn need_file<R: Resolve + ?Sized>(r: &mut R, layer: &LayerId, path: &LayerPath) -> Result<()> {
    match need_entry(r, layer, path)? {
        FileKind::File => Ok(()),
        FileKind::Dir => Err(Error::IsADirectory {
            layer: layer.clone(),
            path: path.clone(),
        }),
        FileKind::Symlink => Err(invalid(layer, path, "is a symlink (never followed)")),
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
    match need_entry(r, layer, path)? {
        FileKind::Dir => Err(Error::IsADirectory {
            layer: layer.clone(),
            path: path.clone(),
        }),
        kind => Ok(kind),
    }
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
    match need_entry(r, layer, path)? {
        FileKind::Symlink => Err(invalid(layer, path, "cannot chmod a symlink")),
        kind => Ok(kind),
    }
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

/// `rename`: the POSIX rules (driver-specific EXDEV is checked by the driver afterwards).
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
    let replaces = r.resolve(layer, to)?;
    match (source, replaces) {
        (_, None) => {}
        (FileKind::Dir, Some(FileKind::Dir)) => {
            if !r.is_empty_dir(layer, to)? {
                return Err(Error::DirectoryNotEmpty {
                    layer: layer.clone(),
                    path: to.clone(),
                });
            }
        }
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
