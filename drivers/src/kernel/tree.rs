//! File operations on a directory tree that a kernel filesystem serves (an overlay mount,
//! a btrfs subvolume), shared by the kernel drivers. Paths are resolved with an `lstat` per
//! component and files opened with `O_NOFOLLOW`: a symlink stored in a layer is never
//! followed. The callers check the rules first; these only do the work and map the host's
//! errors to layerlab's.

use crate::hostfs;
use layerlab_core::{DirEntry, Error, FileKind, IoContext, LayerId, LayerPath, Result, MODE_MASK};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A host error as layerlab's, naming the layer and path.
pub fn from_io(layer: &LayerId, path: &LayerPath, host: &Path, e: std::io::Error) -> Error {
    use rustix::io::Errno;
    let (layer, path) = (layer.clone(), path.clone());
    match e.raw_os_error().map(Errno::from_raw_os_error) {
        Some(Errno::NOENT) => Error::NotFound { layer, path },
        Some(Errno::EXIST) => Error::AlreadyExists { layer, path },
        Some(Errno::NOTDIR) => Error::NotADirectory { layer, path },
        Some(Errno::ISDIR) => Error::IsADirectory { layer, path },
        Some(Errno::NOTEMPTY) => Error::DirectoryNotEmpty { layer, path },
        Some(Errno::XDEV) => Error::CrossDevice {
            layer,
            path,
            why: "the kernel refused (EXDEV: a lower directory, no redirect_dir)".into(),
        },
        _ => Error::io(host, e),
    }
}

/// `root` joined with `path` (no resolution: call after a rule checked the path).
pub fn host(root: &Path, path: &LayerPath) -> PathBuf {
    if path.is_root() {
        root.to_path_buf()
    } else {
        root.join(path.relative())
    }
}

/// [`layerlab_core::rules::Resolve::resolve`] on a tree: `lstat` per component.
pub fn resolve(root: &Path, layer: &LayerId, path: &LayerPath) -> Result<Option<FileKind>> {
    if path.is_root() {
        return Ok(Some(FileKind::Dir));
    }
    let mut cur = root.to_path_buf();
    let names: Vec<&str> = path.components().collect();
    for (i, name) in names.iter().enumerate() {
        cur.push(name);
        let md = hostfs::lstat(&cur)?;
        let last = i + 1 == names.len();
        match md {
            None if last => return Ok(None),
            None => {
                return Err(Error::NotFound {
                    layer: layer.clone(),
                    path: path.clone(),
                })
            }
            Some(md) if last => {
                return hostfs::kind_of(&md)
                    .map(Some)
                    .ok_or_else(|| Error::Corrupt {
                        path: cur.clone(),
                        detail: "unexpected file type in a layer's view".into(),
                    })
            }
            Some(md) if !md.is_dir() => {
                return Err(Error::NotADirectory {
                    layer: layer.clone(),
                    path: path.clone(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(Some(FileKind::Dir))
}

/// True when the directory has no entries.
pub fn is_empty_dir(host: &Path) -> Result<bool> {
    let mut it = std::fs::read_dir(host).at(host)?;
    Ok(it.next().is_none())
}

/// Opens a regular file without following a symlink.
pub fn open(
    host: &Path,
    layer: &LayerId,
    path: &LayerPath,
    write: bool,
    append: bool,
) -> Result<File> {
    OpenOptions::new()
        .read(!write)
        .write(write && !append)
        .append(append)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(host)
        .map_err(|e| from_io(layer, path, host, e))
}

/// Up to `len` bytes from `offset`.
pub fn read(
    host: &Path,
    layer: &LayerId,
    path: &LayerPath,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>> {
    let f = open(host, layer, path, false, false)?;
    hostfs::read_open_at(&f, host, offset, len)
}

/// A directory's entries, sorted by name.
pub fn readdir(host: &Path) -> Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(host).at(host)? {
        let e = e.at(host)?;
        let name = e.file_name().into_string().map_err(|_| Error::Corrupt {
            path: e.path(),
            detail: "file name is not UTF-8".into(),
        })?;
        let p = e.path();
        let md = std::fs::symlink_metadata(&p).at(&p)?;
        let kind = hostfs::kind_of(&md).ok_or_else(|| Error::Corrupt {
            path: p.clone(),
            detail: "unexpected file type in a layer's view".into(),
        })?;
        out.push(DirEntry { name, kind });
    }
    out.sort();
    Ok(out)
}

/// Writes `data` at `offset`.
pub fn write(
    host: &Path,
    layer: &LayerId,
    path: &LayerPath,
    offset: u64,
    data: &[u8],
    sync: DataSync,
) -> Result<()> {
    let f = open(host, layer, path, true, false)?;
    f.write_all_at(data, offset)
        .map_err(|e| hostfs::no_space(Error::io(host, e), layer, path))?;
    sync.done(&f, host, layer, path)
}

/// Whether a change to a file's data is made durable before the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSync {
    /// Left in the page cache (the kernel writes it back when it likes).
    Cached,
    /// `fdatasync` before returning, as the model the driver is held against commits every
    /// write (btrfs: the extents then are those of one write each, as the model's are).
    Data,
}

impl DataSync {
    fn done(self, f: &std::fs::File, host: &Path, layer: &LayerId, path: &LayerPath) -> Result<()> {
        match self {
            DataSync::Cached => Ok(()),
            DataSync::Data => f
                .sync_data()
                .map_err(|e| hostfs::no_space(Error::io(host, e), layer, path)),
        }
    }
}

/// Appends `data`.
pub fn append(
    host: &Path,
    layer: &LayerId,
    path: &LayerPath,
    data: &[u8],
    sync: DataSync,
) -> Result<()> {
    use std::io::Write;
    let mut f = open(host, layer, path, true, true)?;
    f.write_all(data)
        .map_err(|e| hostfs::no_space(Error::io(host, e), layer, path))?;
    sync.done(&f, host, layer, path)
}

/// Sets the length.
pub fn truncate(
    host: &Path,
    layer: &LayerId,
    path: &LayerPath,
    size: u64,
    sync: DataSync,
) -> Result<()> {
    let f = open(host, layer, path, true, false)?;
    f.set_len(size)
        .map_err(|e| hostfs::no_space(Error::io(host, e), layer, path))?;
    sync.done(&f, host, layer, path)
}

/// Sets owner and group, keeping the mode (chown clears setuid/setgid on Linux).
pub fn chown(host: &Path, uid: u32, gid: u32) -> Result<()> {
    let md = std::fs::symlink_metadata(host).at(host)?;
    hostfs::set_owner(host, uid, gid)?;
    if !md.file_type().is_symlink() {
        hostfs::set_mode(host, md.permissions().mode() & MODE_MASK)?;
    }
    Ok(())
}
