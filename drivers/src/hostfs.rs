//! Host file operations shared by the drivers that keep layers as host directory trees
//! (vfs, overlay2, and later aufs): attributes, owners, data copies, tree copies, and the
//! mapping of host errors to layerlab's typed errors.
//!
//! Owners: as root, owners are real (`lchown`). A process that may not chown keeps the
//! owner in the `user.layerlab.owner` xattr (`uid:gid`), as fuse-overlayfs and
//! containers/storage keep theirs in `user.containers.override_stat`; stat reads it back.
//!
//! Extended attributes: a layer's `user.*` attributes are host `user.*` attributes; its
//! `trusted.*` and `security.*` ones are the host's own as root, and are kept under
//! `user.layerlab.x.<name>` by a process that may not set them. Device nodes need root
//! (`mknod(2)` refuses them to others, and layerlab with it, as Docker's archive code skips
//! them in a user namespace); fifos do not.

use layerlab_core::{Error, FileKind, LayerId, LayerPath, Metadata, Meter, Result, MODE_MASK};
use rustix::fs::{AtFlags, Gid, Uid};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The xattr that keeps an owner a non-root process could not set.
pub const OWNER_XATTR: &str = "user.layerlab.owner";

/// True when this process may set any owner (it runs as root).
pub fn privileged() -> bool {
    rustix::process::geteuid().is_root()
}

/// For the drivers that keep device nodes in a filesystem of their own: a device node
/// needs CAP_MKNOD on any filesystem (here: root), else `NotPermitted`, as the kernel
/// answers; a fifo needs nothing.
pub fn may_make_node(kind: FileKind, layer: &LayerId, path: &LayerPath) -> Result<()> {
    if kind.is_node() && kind != FileKind::Fifo && !privileged() {
        return Err(Error::NotPermitted {
            layer: layer.clone(),
            path: path.clone(),
            reason: format!("a {} node needs root (CAP_MKNOD)", kind.as_str()),
        });
    }
    Ok(())
}

/// What a host entry is, if it is one of the kinds layerlab keeps.
pub fn kind_of(md: &fs::Metadata) -> Option<FileKind> {
    kind_of_type(md.file_type())
}

/// What a host file type is, if it is one of the kinds layerlab keeps (a directory
/// listing's type, without an `lstat`).
pub fn kind_of_type(ft: fs::FileType) -> Option<FileKind> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        Some(FileKind::File)
    } else if ft.is_dir() {
        Some(FileKind::Dir)
    } else if ft.is_symlink() {
        Some(FileKind::Symlink)
    } else if ft.is_char_device() {
        Some(FileKind::CharDevice)
    } else if ft.is_block_device() {
        Some(FileKind::BlockDevice)
    } else if ft.is_fifo() {
        Some(FileKind::Fifo)
    } else {
        None
    }
}

/// `lstat`, with `None` for a missing entry.
pub fn lstat(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(md) => Ok(Some(md)),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The owner of a host entry, honouring the owner xattr.
pub fn owner(path: &Path, md: &fs::Metadata) -> (u32, u32) {
    if !md.file_type().is_symlink() {
        let mut buf = [0u8; 32];
        if let Ok(n) = rustix::fs::lgetxattr(path, OWNER_XATTR, &mut buf) {
            if let Some((u, g)) = std::str::from_utf8(&buf[..n])
                .ok()
                .and_then(|s| s.split_once(':'))
            {
                if let (Ok(u), Ok(g)) = (u.parse(), g.parse()) {
                    return (u, g);
                }
            }
        }
    }
    (md.uid(), md.gid())
}

/// A host entry's attributes as layerlab metadata, provided by `layer`.
pub fn metadata(path: &Path, md: &fs::Metadata, layer: &LayerId) -> Result<Metadata> {
    let kind = kind_of(md).ok_or_else(|| Error::Corrupt {
        path: path.to_path_buf(),
        detail: "unexpected file type in a layer".into(),
    })?;
    let (uid, gid) = owner(path, md);
    let target = if kind == FileKind::Symlink {
        Some(read_link(path)?)
    } else {
        None
    };
    Ok(Metadata {
        kind,
        mode: md.mode() & MODE_MASK,
        uid,
        gid,
        size: match kind {
            FileKind::File | FileKind::Symlink => md.size(),
            _ => 0,
        },
        nlink: if kind == FileKind::File {
            u32::try_from(md.nlink()).unwrap_or(u32::MAX)
        } else {
            1
        },
        target,
        rdev: if kind == FileKind::CharDevice || kind == FileKind::BlockDevice {
            md.rdev()
        } else {
            0
        },
        mtime: md.mtime(),
        mtime_nsec: u32::try_from(md.mtime_nsec()).unwrap_or(0),
        layer: layer.clone(),
    })
}

/// A symlink's target as text.
pub fn read_link(path: &Path) -> Result<String> {
    let t = fs::read_link(path).map_err(|e| Error::io(path, e))?;
    t.into_os_string()
        .into_string()
        .map_err(|_| Error::Corrupt {
            path: path.to_path_buf(),
            detail: "symlink target is not UTF-8".into(),
        })
}

/// Sets the owner of an entry (of a symlink itself), falling back to the owner xattr when
/// this process may not chown.
pub fn set_owner(path: &Path, uid: u32, gid: u32) -> Result<()> {
    let r = rustix::fs::chownat(
        rustix::fs::CWD,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    );
    match r {
        Ok(()) => {
            if !privileged() {
                let _ = rustix::fs::lremovexattr(path, OWNER_XATTR);
            }
            Ok(())
        }
        Err(rustix::io::Errno::PERM) => {
            let value = format!("{uid}:{gid}");
            rustix::fs::lsetxattr(
                path,
                OWNER_XATTR,
                value.as_bytes(),
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(|e| Error::io(path, e.into()))
        }
        Err(e) => Err(Error::io(path, e.into())),
    }
}

/// Gives a newly made entry the owner 0:0 that layerlab's semantics promise.
/// Always set, even as root: the host would hand down the group of a setgid directory.
pub fn set_new_owner(path: &Path) -> Result<()> {
    set_owner(path, 0, 0)
}

/// Sets permission bits exactly (no umask), setuid/setgid/sticky included.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & MODE_MASK))
        .map_err(|e| Error::io(path, e))
}

/// Creates an empty file of mode 0600, opened for writing (the owner's alone until its
/// attributes are set). Fails if anything is there.
fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// Creates an empty file with exactly `mode`, owned by 0:0. Fails if anything is there.
pub fn create_file(path: &Path, mode: u32) -> Result<File> {
    let f = create_private(path)?;
    set_new_owner(path)?;
    set_mode(path, mode)?;
    Ok(f)
}

/// Creates a directory with exactly `mode`, owned by 0:0.
pub fn create_dir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir(path).map_err(|e| Error::io(path, e))?;
    set_new_owner(path)?;
    set_mode(path, mode)
}

/// Creates a symlink owned by 0:0.
pub fn create_symlink(target: &str, path: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, path).map_err(|e| Error::io(path, e))?;
    // an unprivileged process can keep no owner on a symlink (Linux allows no user xattrs
    // there), so its links show the real owner
    if privileged() {
        set_owner(path, 0, 0)?;
    }
    Ok(())
}

/// Makes a device node or fifo with mode 0 (the caller sets owner and mode); the host's
/// `EPERM` for a device node made without root becomes `NotPermitted` in the caller.
pub fn make_node(path: &Path, kind: FileKind, rdev: u64) -> Result<()> {
    let (ft, rdev) = match kind {
        FileKind::CharDevice => (rustix::fs::FileType::CharacterDevice, rdev),
        FileKind::BlockDevice => (rustix::fs::FileType::BlockDevice, rdev),
        _ => (rustix::fs::FileType::Fifo, 0),
    };
    rustix::fs::mknodat(rustix::fs::CWD, path, ft, rustix::fs::Mode::empty(), rdev)
        .map_err(|e| Error::io(path, e.into()))
}

/// Creates a device node or fifo with exactly `mode`, owned by 0:0 (an unprivileged
/// process can keep no owner on a fifo: Linux allows no user xattrs there, so it shows
/// the real owner, as a symlink does).
pub fn create_node(path: &Path, kind: FileKind, mode: u32, rdev: u64) -> Result<()> {
    make_node(path, kind, rdev)?;
    if privileged() {
        set_new_owner(path)?;
    }
    set_mode(path, mode)
}

/// Runs `place` (which puts an entry into `dst`'s parent directory) and gives the parent
/// back the mtime it had: a copy-up changes no directory of the view, so overlayfs and aufs
/// restore the parent's times after it.
pub fn keeping_parent_mtime<T>(dst: &Path, place: impl FnOnce() -> Result<T>) -> Result<T> {
    let parent = dst.parent().map(Path::to_path_buf);
    let before = match &parent {
        Some(p) => lstat(p)?.map(|md| (md.mtime(), md.mtime_nsec())),
        None => None,
    };
    let out = place()?;
    if let (Some(p), Some((secs, nsec))) = (parent, before) {
        set_mtime(&p, secs, u32::try_from(nsec).unwrap_or(0))?;
    }
    Ok(out)
}

/// Sets an entry's mtime (of a symlink itself), leaving its atime.
pub fn set_mtime(path: &Path, secs: i64, nsec: u32) -> Result<()> {
    let ts = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: i64::from(nsec),
        },
    };
    rustix::fs::utimensat(rustix::fs::CWD, path, &ts, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::io(path, e.into()))
}

/// Where the host keeps a layer's extended attribute `name`: the same name, or, for a
/// `trusted.*` or `security.*` attribute a process without root may not set,
/// `user.layerlab.x.<name>`.
fn host_xattr_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.starts_with("user.") || privileged() {
        name.into()
    } else {
        format!("{UNPRIVILEGED_XATTR_PREFIX}{name}").into()
    }
}

/// The prefix under which an unprivileged store keeps `trusted.*` and `security.*`.
pub const UNPRIVILEGED_XATTR_PREFIX: &str = "user.layerlab.x.";

/// The names of a host entry's layer-visible extended attributes, sorted: the drivers'
/// markers and namespaces layerlab does not keep left out, unprivileged ones mapped back.
pub fn layer_xattrs(path: &Path) -> Result<Vec<String>> {
    let mut buf = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut buf[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) if buf.len() < 1 << 20 => {
                let n = buf.len() * 4;
                buf.resize(n, 0);
            }
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(path, e.into())),
        }
    };
    let mut names: Vec<String> = buf[..n]
        .split(|b| *b == 0)
        .filter_map(|raw| std::str::from_utf8(raw).ok())
        .filter_map(|name| match name.strip_prefix(UNPRIVILEGED_XATTR_PREFIX) {
            Some(inner) => Some(inner.to_string()),
            None if layerlab_core::rules::is_reserved_xattr(name) => None,
            None => layerlab_core::rules::XATTR_NAMESPACES
                .iter()
                .any(|ns| name.starts_with(ns))
                .then(|| name.to_string()),
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The value of a layer's extended attribute on a host entry, `None` when not set.
pub fn layer_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    get_xattr(path, &host_xattr_name(name))
}

/// Sets a layer's extended attribute on a host entry.
pub fn set_layer_xattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    set_xattr(path, &host_xattr_name(name), value)
}

/// Removes a layer's extended attribute from a host entry; `false` when it was not set.
pub fn remove_layer_xattr(path: &Path, name: &str) -> Result<bool> {
    match rustix::fs::lremovexattr(path, &*host_xattr_name(name)) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::NODATA) => Ok(false),
        Err(e) => Err(Error::io(path, e.into())),
    }
}

/// Maps the host's `EPERM` (a device node without root, an xattr the host refuses) to
/// `NotPermitted` naming the layer and path; other errors pass.
pub fn not_permitted(e: Error, layer: &LayerId, path: &LayerPath) -> Error {
    match &e {
        Error::Io { source, .. }
            if source.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) =>
        {
            Error::NotPermitted {
                layer: layer.clone(),
                path: path.clone(),
                reason: format!("the host refused it ({source})"),
            }
        }
        _ => e,
    }
}

/// Reads up to `len` bytes at `offset`.
pub fn read_at(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    read_open_at(&f, path, offset, len)
}

/// Reads up to `len` bytes at `offset` of `f`, the open file at `path` (fewer at the end,
/// none past it).
pub fn read_open_at(f: &File, path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if offset >= size {
        return Ok(Vec::new());
    }
    let n = usize::try_from(len.min(size - offset)).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; n];
    let mut done = 0;
    while done < n {
        let got = f
            .read_at(&mut buf[done..], offset + done as u64)
            .map_err(|e| Error::io(path, e))?;
        if got == 0 {
            break;
        }
        done += got;
    }
    buf.truncate(done);
    Ok(buf)
}

/// Opens a file for a data change, and gives back a guard that restores setuid/setgid after
/// it: the kernel clears them on a write by a process without CAP_FSETID, but layerlab's
/// modes travel with files whoever runs it.
fn open_for_change(path: &Path, append: bool) -> Result<(File, Option<u32>)> {
    let f = OpenOptions::new()
        .write(!append)
        .append(append)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let keep = if privileged() {
        None
    } else {
        let mode = f.metadata().map_err(|e| Error::io(path, e))?.mode() & MODE_MASK;
        (mode & 0o6000 != 0).then_some(mode)
    };
    Ok((f, keep))
}

fn restore_mode(f: &File, path: &Path, keep: Option<u32>) -> Result<()> {
    match keep {
        Some(mode) => f
            .set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(path, e)),
        None => Ok(()),
    }
}

/// Writes `data` at `offset` into an existing file.
pub fn write_at(path: &Path, offset: u64, data: &[u8]) -> Result<()> {
    let (f, keep) = open_for_change(path, false)?;
    f.write_all_at(data, offset)
        .map_err(|e| Error::io(path, e))?;
    restore_mode(&f, path, keep)
}

/// Appends `data` to an existing file.
pub fn append(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let (mut f, keep) = open_for_change(path, true)?;
    f.write_all(data).map_err(|e| Error::io(path, e))?;
    restore_mode(&f, path, keep)
}

/// Sets a file's length.
pub fn truncate(path: &Path, size: u64) -> Result<()> {
    let (f, keep) = open_for_change(path, false)?;
    f.set_len(size).map_err(|e| Error::io(path, e))?;
    restore_mode(&f, path, keep)
}

/// Replaces the content of the file `dst` with `data` through `stage` (a fresh name on the
/// same filesystem, outside every view): the staged file is written, given the attributes
/// of `attrs_from` (owner, mode, layer xattrs) and the mtime now, fsynced, then renamed
/// over `dst` (the parent's mtime kept, as an in-place write keeps it). Until the rename
/// `dst` is untouched; on failure the staged file is removed.
pub fn replace_staged(attrs_from: &Path, stage: &Path, dst: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let md = fs::symlink_metadata(attrs_from).map_err(|e| Error::io(attrs_from, e))?;
    let mut renamed = false;
    let staged = (|| {
        {
            let mut f = create_private(stage)?;
            f.write_all(data).map_err(|e| Error::io(stage, e))?;
        }
        copy_attrs(attrs_from, &md, stage)?;
        let f = OpenOptions::new()
            .write(true)
            .open(stage)
            .map_err(|e| Error::io(stage, e))?;
        f.set_modified(std::time::SystemTime::now())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(stage, e))?;
        keeping_parent_mtime(dst, || {
            rename(stage, dst)?;
            renamed = true;
            Ok(())
        })
    })();
    match staged {
        // the rename is the commit point: the parent's mtime failing after it is no failure
        Err(_) if renamed => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(stage);
            Err(e)
        }
        Ok(()) => Ok(()),
    }
}

/// Copies a file's bytes into `dst` (created, mode 0600) with copy_file_range where the
/// host has it, a read/write loop where it has not. Returns the bytes copied.
pub fn copy_data(src: &Path, dst: &Path) -> Result<u64> {
    let from = File::open(src).map_err(|e| Error::io(src, e))?;
    let len = from.metadata().map_err(|e| Error::io(src, e))?.len();
    let to = create_private(dst)?;
    let mut copied = 0u64;
    while copied < len {
        let want = usize::try_from(len - copied)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match rustix::fs::copy_file_range(&from, None, &to, None, want) {
            Ok(0) => break,
            Ok(n) => copied += n as u64,
            Err(rustix::io::Errno::XDEV | rustix::io::Errno::NOSYS | rustix::io::Errno::INVAL)
                if copied == 0 =>
            {
                drop(to);
                fs::remove_file(dst).map_err(|e| Error::io(dst, e))?;
                return fs::copy(src, dst).map_err(|e| Error::io(dst, e));
            }
            Err(e) => return Err(Error::io(dst, e.into())),
        }
    }
    Ok(copied)
}

/// fsyncs a file.
pub fn fsync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Copies the attributes of `src` onto `dst`: owner, then mode (chown clears setuid), then
/// the layer's extended attributes (never the drivers' markers), then mtime.
pub fn copy_attrs(src: &Path, src_md: &fs::Metadata, dst: &Path) -> Result<()> {
    let (uid, gid) = owner(src, src_md);
    let is_link = src_md.file_type().is_symlink();
    // an unprivileged process can keep no owner on a symlink (no user xattrs there)
    if !is_link || privileged() {
        set_owner(dst, uid, gid)?;
    }
    if !is_link {
        set_mode(dst, src_md.mode())?;
    }
    for name in layer_xattrs(src)? {
        if let Some(v) = layer_xattr(src, &name)? {
            set_layer_xattr(dst, &name, &v)?;
        }
    }
    let ts = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: src_md.atime(),
            tv_nsec: src_md.atime_nsec(),
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: src_md.mtime(),
            tv_nsec: src_md.mtime_nsec(),
        },
    };
    rustix::fs::utimensat(rustix::fs::CWD, dst, &ts, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::io(dst, e.into()))
}

/// Copies one entry (file, directory without its contents, symlink) with its attributes.
/// Returns the data bytes copied.
pub fn copy_entry(src: &Path, src_md: &fs::Metadata, dst: &Path) -> Result<u64> {
    let bytes = match kind_of(src_md) {
        Some(FileKind::File) => copy_data(src, dst)?,
        Some(FileKind::Dir) => {
            fs::create_dir(dst).map_err(|e| Error::io(dst, e))?;
            0
        }
        Some(FileKind::Symlink) => {
            let t = fs::read_link(src).map_err(|e| Error::io(src, e))?;
            std::os::unix::fs::symlink(t, dst).map_err(|e| Error::io(dst, e))?;
            0
        }
        Some(kind @ (FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo)) => {
            make_node(dst, kind, src_md.rdev())?;
            0
        }
        None => {
            return Err(Error::Corrupt {
                path: src.to_path_buf(),
                detail: "unexpected file type in a layer".into(),
            })
        }
    };
    copy_attrs(src, src_md, dst)?;
    Ok(bytes)
}

/// Copies a whole tree, keeping hard links as links (as Docker's vfs copy does), and
/// counts what it copied. `dst` must not exist.
pub fn copy_tree(src: &Path, dst: &Path, meter: &mut Meter) -> Result<()> {
    let mut links: std::collections::HashMap<(u64, u64), PathBuf> = Default::default();
    let mut dirs: Vec<(PathBuf, PathBuf, fs::Metadata)> = Vec::new();
    copy_tree_into(src, dst, meter, &mut links, &mut dirs)?;
    // directory attributes last: a read-only directory must be filled before its mode is set
    for (s, d, md) in dirs.iter().rev() {
        copy_attrs(s, md, d)?;
    }
    Ok(())
}

fn copy_tree_into(
    src: &Path,
    dst: &Path,
    meter: &mut Meter,
    links: &mut std::collections::HashMap<(u64, u64), PathBuf>,
    dirs: &mut Vec<(PathBuf, PathBuf, fs::Metadata)>,
) -> Result<()> {
    let md = fs::symlink_metadata(src).map_err(|e| Error::io(src, e))?;
    meter.counts.metadata_writes += 1;
    if md.is_dir() {
        fs::create_dir(dst).map_err(|e| Error::io(dst, e))?;
        dirs.push((src.to_path_buf(), dst.to_path_buf(), md));
        let mut names: Vec<_> = fs::read_dir(src)
            .map_err(|e| Error::io(src, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io(src, e))?;
        names.sort();
        meter.counts.entries_scanned += names.len() as u64;
        for n in names {
            copy_tree_into(&src.join(&n), &dst.join(&n), meter, links, dirs)?;
        }
        return Ok(());
    }
    if md.is_file() && md.nlink() > 1 {
        if let Some(first) = links.get(&(md.dev(), md.ino())) {
            fs::hard_link(first, dst).map_err(|e| Error::io(dst, e))?;
            return Ok(());
        }
        links.insert((md.dev(), md.ino()), dst.to_path_buf());
    }
    let bytes = copy_entry(src, &md, dst)?;
    meter.counts.bytes_copied += bytes;
    if bytes > 0 {
        meter.counts.blocks_allocated += bytes.div_ceil(4096);
    }
    Ok(())
}

/// Makes `dir` an empty directory, whatever was there (a store's staging directory on
/// open, where anything left is a crash's).
pub fn reset_dir(dir: &Path) -> Result<()> {
    remove_tree(dir)?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Empties a layer's scratch directory (where its changes are staged) that holds
/// anything or cannot be listed: made again empty, with mode `mode`.
pub fn clear_scratch_dir(dir: &Path, mode: u32) -> Result<()> {
    if list_names(dir).map(|n| !n.is_empty()).unwrap_or(true) {
        remove_tree(dir)?;
        fs::create_dir(dir).map_err(|e| Error::io(dir, e))?;
        set_mode(dir, mode)?;
    }
    Ok(())
}

/// Removes a host tree if it exists.
pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == IoKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Maps a host ENOSPC/EDQUOT to `NoSpace` naming the layer and path; other errors pass.
pub fn no_space(e: Error, layer: &LayerId, path: &LayerPath) -> Error {
    match &e {
        Error::Io { source, .. }
            if source.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error())
                || source.raw_os_error() == Some(rustix::io::Errno::DQUOT.raw_os_error()) =>
        {
            Error::NoSpace {
                layer: layer.clone(),
                path: path.clone(),
                what: "the host filesystem".into(),
            }
        }
        _ => e,
    }
}

/// The names in a host directory, sorted.
pub fn list_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().into_string().map_err(|_| Error::Corrupt {
            path: dir.to_path_buf(),
            detail: "file name is not UTF-8".into(),
        })?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Sums the apparent bytes and counts the entries of a host tree (the root excluded).
pub fn tree_usage(dir: &Path) -> Result<(u64, u64, u64)> {
    let mut bytes = 0;
    let mut inodes = 0;
    let mut disk = 0;
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let e = e.map_err(|e| Error::io(&d, e))?;
            let p = e.path();
            let md = fs::symlink_metadata(&p).map_err(|e| Error::io(&p, e))?;
            if !seen.insert((md.dev(), md.ino())) {
                continue;
            }
            inodes += 1;
            disk += md.blocks() * 512;
            if md.is_dir() {
                stack.push(p);
            } else {
                bytes += md.size();
            }
        }
    }
    Ok((bytes, inodes, disk))
}

// ----- union-filesystem primitives (overlay2, aufs) ---------------------------------------

/// Creates an overlayfs whiteout at `path`: a character device with device number 0/0
/// (allowed to unprivileged processes since Linux 5.8).
pub fn mknod_whiteout(path: &Path) -> Result<()> {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .map_err(|e| Error::io(path, e.into()))
}

/// True when a host entry is an overlayfs whiteout (a character device 0/0).
pub fn is_whiteout(md: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    md.file_type().is_char_device() && md.rdev() == 0
}

/// The value of an extended attribute of an entry (not following a symlink), `None` when
/// it is not set or the filesystem keeps no such attributes.
pub fn get_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => return Ok(None),
            Err(rustix::io::Errno::RANGE) if buf.len() < 1 << 16 => {
                let n = buf.len() * 4;
                buf.resize(n, 0);
            }
            Err(e) => return Err(Error::io(path, e.into())),
        }
    }
}

/// Sets an extended attribute of an entry (not following a symlink).
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .map_err(|e| Error::io(path, e.into()))
}

/// Removes an extended attribute of an entry; a missing attribute is fine.
pub fn remove_xattr(path: &Path, name: &str) -> Result<()> {
    match rustix::fs::lremovexattr(path, name) {
        Ok(()) | Err(rustix::io::Errno::NODATA) => Ok(()),
        Err(e) => Err(Error::io(path, e.into())),
    }
}

/// Atomically swaps two entries (`renameat2(RENAME_EXCHANGE)`).
pub fn rename_exchange(a: &Path, b: &Path) -> Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| Error::io(b, e.into()))
}

/// Renames `from` to `to` and leaves an overlayfs whiteout at `from` in one atomic step
/// (`renameat2(RENAME_WHITEOUT)`). Returns `false`, having done nothing, when the host
/// filesystem or kernel does not offer it.
pub fn rename_whiteout(from: &Path, to: &Path) -> Result<bool> {
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::WHITEOUT,
    ) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::PERM | rustix::io::Errno::NOSYS) => {
            Ok(false)
        }
        Err(e) => Err(Error::io(to, e.into())),
    }
}

/// `rename(2)` with the destination named in the error.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io(to, e))
}

/// The name of the filesystem type holding `path` (`ext4`, `xfs`, `tmpfs`, ...).
pub fn fs_type_name(path: &Path) -> String {
    let Ok(st) = rustix::fs::statfs(path) else {
        return "unknown".into();
    };
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as u64;
    match magic {
        0xef53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x9123_683e => "btrfs".into(),
        0x794c_7630 => "overlay".into(),
        0x2fc1_2fc1 => "zfs".into(),
        0x6573_5546 => "fuse".into(),
        other => format!("unknown (magic {other:#x})"),
    }
}
