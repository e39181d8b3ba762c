//! `LayerFs`: one layer's merged view as a FUSE filesystem, every request a driver call.

use crate::attr::{epoch_parts, file_attr, file_type, kind_of_mode, rdev_from_fuse};
use crate::cache::{Known, Update, ViewCache};
use crate::conn::Conn;
use crate::errno::{errno, name_errno};
use crate::inodes::Inodes;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr,
    Request, TimeOrNow, WriteFlags,
};
use layerlab_core::{FileKind, LayerDriver, LayerId, LayerPath, Metadata, Node};
use layerlab_drivers::blockpool::{POOL_BYTES, POOL_FREE_BYTES};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// The longest name Linux allows in a directory.
const NAME_MAX: usize = 255;
/// The unit of the block counts `statfs` reports.
const STATFS_BLOCK: u64 = 4096;
/// Largest write request asked of the kernel (fewer round trips for big files).
const MAX_WRITE: u32 = 1 << 20;
const XATTR_CREATE: i32 = 1;
const XATTR_REPLACE: i32 = 2;
/// The namespaces the trait keeps; others (`system.posix_acl_*`) are unsupported, as on a
/// filesystem without ACLs.
const XATTR_NAMESPACES: &[&str] = &["user.", "trusted.", "security."];
/// The attribute the kernel reads before every write.
const CAPS: &str = "security.capability";

/// How the kernel may cache what a mount serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caching {
    /// How long attributes and names stay valid in the kernel.
    pub ttl: Duration,
    /// Whether open keeps the file's cached pages.
    pub keep_cache: bool,
}

impl Caching {
    /// A committed (or read-only) layer never changes: pages and attributes stay cached.
    pub const READ_ONLY: Caching = Caching {
        ttl: Duration::from_secs(3600),
        keep_cache: true,
    };
    /// An active layer changes only through this mount (other processes are refused by
    /// its mount record), so the kernel sees every change and cached pages stay right;
    /// attributes are kept briefly because a driver may change what it reports beside the
    /// request (nlink of other names, sizes after copy-up).
    pub const READ_WRITE: Caching = Caching {
        ttl: Duration::from_secs(1),
        keep_cache: true,
    };
}

#[derive(Debug, Default)]
struct State {
    inodes: Inodes,
    /// What is known of the view between requests (exact: see [`crate::cache`]).
    cache: ViewCache,
    dirs: HashMap<u64, Vec<(u64, FileType, OsString)>>,
    next_fh: u64,
}

/// One layer served through FUSE. Every request is one or a few calls of the driver `D`;
/// the driver is opened per burst of requests ([`Conn`]).
#[derive(Debug)]
pub struct LayerFs<D> {
    conn: Arc<Conn<D>>,
    layer: LayerId,
    writable: bool,
    caching: Caching,
    store_root: PathBuf,
    state: Mutex<State>,
}

type Res<T> = Result<T, Errno>;

impl<D: LayerDriver + Send + 'static> LayerFs<D> {
    /// Serves `layer` through `conn`; `writable` false answers every change with EROFS.
    pub fn new(
        conn: Arc<Conn<D>>,
        layer: LayerId,
        writable: bool,
        caching: Caching,
        store_root: PathBuf,
    ) -> Self {
        LayerFs {
            conn,
            layer,
            writable,
            caching,
            store_root,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, ino: INodeNo) -> Res<LayerPath> {
        self.state()
            .inodes
            .path_of(ino.0)
            .cloned()
            .ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Res<LayerPath> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        self.path(parent)?.join(name).map_err(|e| name_errno(&e))
    }

    fn ino(&self, path: &LayerPath) -> u64 {
        self.state().inodes.ino_of(path)
    }

    /// One driver call, its error as an errno.
    fn call<T>(
        &self,
        label: impl FnOnce() -> String,
        f: impl FnOnce(&mut D, &LayerId) -> layerlab_core::Result<T>,
    ) -> Res<T> {
        self.conn
            .op(label, |d| f(d, &self.layer))
            .map_err(|e| errno(&e))
    }

    /// Runs `op`, a change of `path` in place, keeping the cache exact: an outcome known
    /// beforehand ([`ViewCache::in_place`]) is applied to the attributes, anything else is
    /// asked of the driver next time.
    fn in_place(&self, path: &LayerPath, update: Update, op: impl FnOnce() -> Res<()>) -> Res<()> {
        let known = self.state().cache.in_place(path, &self.layer);
        let result = op();
        if known {
            self.state().cache.changed(path, update, result.is_ok());
        }
        result
    }

    fn change(&self) -> Res<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Errno::EROFS)
        }
    }

    /// The attributes of `path`: from the cache when known, else from the driver.
    fn stat(&self, path: &LayerPath) -> Res<Metadata> {
        match self.state().cache.lookup(path) {
            Known::Present(m) => return Ok(m),
            Known::Absent => return Err(Errno::ENOENT),
            Known::Unknown => {}
        }
        let m = self.call(|| format!("stat {path}"), |d, l| d.stat(l, path))?;
        self.state().cache.remember(path, &m);
        Ok(m)
    }

    fn attr(&self, path: &LayerPath) -> Res<FileAttr> {
        let m = self.stat(path)?;
        Ok(file_attr(self.ino(path), &m))
    }

    /// A new entry belongs to the caller (the trait creates it owned by 0:0).
    fn give_to_caller(&self, req: &Request, path: &LayerPath) -> Res<()> {
        let (uid, gid) = (req.uid(), req.gid());
        if uid == 0 && gid == 0 {
            return Ok(());
        }
        self.in_place(path, Update::Owner(uid, gid), || {
            self.call(
                || format!("chown {path} {uid}:{gid}"),
                |d, l| d.chown(l, path, uid, gid),
            )
        })
    }

    /// Creates an entry of `kind` with `make`, gives it to the caller, and answers with its
    /// attributes.
    fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        kind: FileKind,
        make: impl FnOnce(&Self, &LayerPath) -> Res<()>,
    ) -> Res<FileAttr> {
        self.change()?;
        let path = self.child(parent, name)?;
        let made = make(self, &path);
        self.state().cache.made(&path, kind, made.is_ok());
        made?;
        self.give_to_caller(req, &path)?;
        self.attr(&path)
    }

    /// Creates the file, directory, device node or fifo `node` describes (`create`,
    /// `mkdir` or `mknod` on the driver), as the `create`, `mkdir` and `mknod` requests ask.
    fn make_node(&self, req: &Request, parent: INodeNo, name: &OsStr, node: Node) -> Res<FileAttr> {
        let perm = node.mode;
        self.make(req, parent, name, node.kind, |fs, path| match node.kind {
            FileKind::File => fs.call(
                || format!("create {path} {perm:o}"),
                |d, l| d.create(l, path, perm),
            ),
            FileKind::Dir => fs.call(
                || format!("mkdir {path} {perm:o}"),
                |d, l| d.mkdir(l, path, perm),
            ),
            kind => fs.call(
                || format!("mknod {path} {} {perm:o}", kind.as_str()),
                |d, l| d.mknod(l, path, node),
            ),
        })
    }

    /// Removes the entry `name` of `parent` with `remove` (unlink or rmdir, `verb` in the
    /// trace), keeping the cache and the inode table in step.
    fn remove(
        &self,
        parent: INodeNo,
        name: &OsStr,
        verb: &str,
        remove: impl FnOnce(&mut D, &LayerId, &LayerPath) -> layerlab_core::Result<()>,
    ) -> Res<()> {
        self.change()?;
        let path = self.child(parent, name)?;
        self.state().cache.removing(&path);
        self.call(|| format!("{verb} {path}"), |d, l| remove(d, l, &path))?;
        let mut st = self.state();
        st.cache.removed(&path);
        st.inodes.forget_path(&path);
        Ok(())
    }

    fn entry(&self, reply: ReplyEntry, result: Res<FileAttr>) {
        match result {
            Ok(attr) => reply.entry(&self.caching.ttl, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn empty(reply: ReplyEmpty, result: Res<()>) {
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// Applies a `setattr`; returns the entry's metadata when it is known unchanged since
    /// a stat made here (a chown to the owner it has), so no second stat is needed.
    fn set_attrs(&self, path: &LayerPath, a: &SetAttrs) -> Res<Option<Metadata>> {
        if let Some(mode) = a.mode {
            let mode = mode & 0o7777;
            self.in_place(path, Update::Mode(mode), || {
                self.call(
                    || format!("chmod {path} {mode:o}"),
                    |d, l| d.chmod(l, path, mode),
                )
            })?;
        }
        if a.uid.is_some() || a.gid.is_some() {
            let m = self.stat(path)?;
            let (uid, gid) = (a.uid.unwrap_or(m.uid), a.gid.unwrap_or(m.gid));
            if (uid, gid) == (m.uid, m.gid) {
                // `tar x` as root restores the owner every file has already: no change
                if a.size.is_none() && a.mtime.is_none() {
                    return Ok(Some(m));
                }
                return self.set_rest(path, a).map(|()| None);
            }
            self.in_place(path, Update::Owner(uid, gid), || {
                self.call(
                    || format!("chown {path} {uid}:{gid}"),
                    |d, l| d.chown(l, path, uid, gid),
                )
            })?;
        }
        self.set_rest(path, a).map(|()| None)
    }

    /// The size and time changes of a `setattr`.
    fn set_rest(&self, path: &LayerPath, a: &SetAttrs) -> Res<()> {
        if let Some(size) = a.size {
            self.in_place(path, Update::Size(size), || {
                self.call(
                    || format!("truncate {path} {size}"),
                    |d, l| d.truncate(l, path, size),
                )
            })?;
        }
        if let Some(mtime) = a.mtime {
            let (secs, nsec) = epoch_parts(match mtime {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            });
            self.in_place(path, Update::Mtime(secs, nsec), || {
                self.call(
                    || format!("set_mtime {path} {secs}.{nsec:09}"),
                    |d, l| d.set_mtime(l, path, secs, nsec),
                )
            })?;
        }
        Ok(())
    }

    fn do_rename(&self, from: &LayerPath, to: &LayerPath, flags: RenameFlags) -> Res<()> {
        self.change()?;
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            // the trait has no atomic exchange, and whiteouts are the driver's business
            return Err(Errno::EINVAL);
        }
        if flags.contains(RenameFlags::RENAME_NOREPLACE) {
            match self.stat(to) {
                Ok(_) => return Err(Errno::EEXIST),
                Err(e) if e == Errno::ENOENT => {}
                Err(e) => return Err(e),
            }
        }
        self.state().cache.renaming(from, to);
        self.call(
            || format!("rename {from} {to}"),
            |d, l| d.rename(l, from, to),
        )?;
        let mut st = self.state();
        st.cache.renamed(from, to);
        st.inodes.rename(from, to);
        Ok(())
    }

    fn listing(&self, ino: INodeNo) -> Res<Vec<(u64, FileType, OsString)>> {
        let path = self.path(ino)?;
        let entries = self.call(|| format!("readdir {path}"), |d, l| d.readdir(l, &path))?;
        let parent = path.parent().unwrap_or_else(LayerPath::root);
        let mut st = self.state();
        let mut out = vec![
            (ino.0, FileType::Directory, OsString::from(".")),
            (
                st.inodes.ino_of(&parent),
                FileType::Directory,
                OsString::from(".."),
            ),
        ];
        for e in entries {
            let Ok(child) = path.join(&e.name) else {
                continue;
            };
            out.push((
                st.inodes.ino_of(&child),
                file_type(e.kind),
                OsString::from(e.name),
            ));
        }
        Ok(out)
    }

    fn xattr_name<'a>(&self, name: &'a OsStr) -> Res<&'a str> {
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        if XATTR_NAMESPACES.iter().any(|ns| name.starts_with(ns)) {
            Ok(name)
        } else {
            Err(Errno::EOPNOTSUPP)
        }
    }

    fn set_xattr(&self, ino: INodeNo, name: &OsStr, value: &[u8], flags: i32) -> Res<()> {
        self.change()?;
        self.state().cache.changing_xattrs();
        let path = self.path(ino)?;
        let name = self.xattr_name(name)?;
        if flags & (XATTR_CREATE | XATTR_REPLACE) != 0 {
            let exists = match self.call(
                || format!("get_xattr {path} {name}"),
                |d, l| d.get_xattr(l, &path, name),
            ) {
                Ok(_) => true,
                Err(e) if e == Errno::ENODATA => false,
                Err(e) => return Err(e),
            };
            if exists && flags & XATTR_CREATE != 0 {
                return Err(Errno::EEXIST);
            }
            if !exists && flags & XATTR_REPLACE != 0 {
                return Err(Errno::ENODATA);
            }
        }
        self.call(
            || format!("set_xattr {path} {name}"),
            |d, l| d.set_xattr(l, &path, name, value),
        )
    }

    /// The space `statfs` reports. A pool driver (devicemapper, btrfs, zfs) reports its
    /// pool in the layer's usage ([`POOL_BYTES`], [`POOL_FREE_BYTES`]): its size and free
    /// bytes are the mount's. The file-based drivers (vfs, overlay2, aufs) keep a layer's
    /// files as host files, so the host filesystem under the store is their space. Inode
    /// counts are the host's for every driver (the trait reports no inode limit).
    fn space(&self) -> Res<Space> {
        let host = rustix::fs::statvfs(self.store_root.as_path())
            .map_err(|e| Errno::from_i32(e.raw_os_error()))?;
        let in_blocks = |bytes: u64| bytes / STATFS_BLOCK;
        let mut space = Space {
            blocks: in_blocks(host.f_blocks.saturating_mul(host.f_frsize)),
            free: in_blocks(host.f_bavail.saturating_mul(host.f_frsize)),
            files: host.f_files,
            files_free: host.f_ffree,
        };
        let usage = self.call(|| "usage".to_string(), |d, l| d.usage(l))?;
        let pool = usage.details.get(POOL_BYTES);
        if let (Some(total), Some(free)) = (pool, usage.details.get(POOL_FREE_BYTES)) {
            space.blocks = in_blocks(*total);
            space.free = in_blocks(*free);
        }
        Ok(space)
    }
}

/// The permission bits a `mknod`, `mkdir` or `create` request asks for: `mode` less
/// the caller's `umask`.
fn perm(mode: u32, umask: u32) -> u32 {
    mode & !umask & 0o7777
}

/// The attributes sent with a negative entry (only the inode number 0 matters).
fn negative_attr() -> FileAttr {
    let epoch = std::time::UNIX_EPOCH;
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: epoch,
        mtime: epoch,
        ctime: epoch,
        crtime: epoch,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// What `statfs` reports, in [`STATFS_BLOCK`] units and inodes.
struct Space {
    blocks: u64,
    free: u64,
    files: u64,
    files_free: u64,
}

/// The changes of one `setattr`.
struct SetAttrs {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    mtime: Option<TimeOrNow>,
}

/// A reply to a request for the size or the bytes of an xattr value or list.
fn xattr_reply(reply: ReplyXattr, size: u32, data: Res<Vec<u8>>) {
    match data {
        Err(e) => reply.error(e),
        Ok(data) if size == 0 => reply.size(data.len() as u32),
        Ok(data) if data.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(data) => reply.data(&data),
    }
}

impl<D: LayerDriver + Send + 'static> Filesystem for LayerFs<D> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // the kernel may offer less; what it offers is fine
        let _ = config.set_max_write(MAX_WRITE);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.child(parent, name).and_then(|p| self.attr(&p)) {
            // a negative entry (inode 0) lets the kernel remember the absence for the TTL:
            // right, since every change of the layer comes through this mount, and the
            // kernel drops it when an entry of that name is made here
            Err(e) if e == Errno::ENOENT => {
                reply.entry(&self.caching.ttl, &negative_attr(), Generation(0));
            }
            result => self.entry(reply, result),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.path(ino).and_then(|p| self.attr(&p)) {
            Ok(attr) => reply.attr(&self.caching.ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let attrs = SetAttrs {
            mode,
            uid,
            gid,
            size,
            mtime,
        };
        let changes = attrs.mode.is_some()
            || attrs.uid.is_some()
            || attrs.gid.is_some()
            || attrs.size.is_some()
            || attrs.mtime.is_some();
        let result = self.path(ino).and_then(|path| {
            if changes {
                self.change()?;
                if let Some(m) = self.set_attrs(&path, &attrs)? {
                    return Ok(file_attr(self.ino(&path), &m));
                }
            }
            self.attr(&path)
        });
        match result {
            Ok(attr) => reply.attr(&self.caching.ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let result = self.path(ino).and_then(|p| self.stat(&p));
        match result {
            Ok(Metadata {
                kind: FileKind::Symlink,
                target: Some(t),
                ..
            }) => reply.data(t.as_bytes()),
            Ok(_) => reply.error(Errno::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let result = kind_of_mode(mode).and_then(|kind| {
            let dev = if kind == FileKind::Fifo {
                0
            } else {
                rdev_from_fuse(rdev)
            };
            self.make_node(req, parent, name, Node::new(kind, perm(mode, umask), dev))
        });
        self.entry(reply, result);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let node = Node::new(FileKind::Dir, perm(mode, umask), 0);
        let result = self.make_node(req, parent, name, node);
        self.entry(reply, result);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = self.remove(parent, name, "unlink", |d, l, path| d.unlink(l, path));
        Self::empty(reply, result);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = self.remove(parent, name, "rmdir", |d, l, path| d.rmdir(l, path));
        Self::empty(reply, result);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let result = target.to_str().ok_or(Errno::EINVAL).and_then(|target| {
            self.make(req, parent, link_name, FileKind::Symlink, |fs, path| {
                fs.call(
                    || format!("symlink {path} -> {target}"),
                    |d, l| d.symlink(l, target, path),
                )
            })
        });
        self.entry(reply, result);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = self
            .child(parent, name)
            .and_then(|from| Ok((from, self.child(newparent, newname)?)))
            .and_then(|(from, to)| self.do_rename(&from, &to, flags));
        Self::empty(reply, result);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let result = self.change().and_then(|()| {
            let existing = self.path(ino)?;
            let link = self.child(newparent, newname)?;
            self.state().cache.linking();
            self.call(
                || format!("hardlink {existing} {link}"),
                |d, l| d.hardlink(l, &existing, &link),
            )?;
            let mut st = self.state();
            st.cache.linked(&link);
            st.inodes.link(ino.0, &link);
            drop(st);
            self.attr(&link)
        });
        self.entry(reply, result);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let writes = flags.acc_mode() != OpenAccMode::O_RDONLY;
        if writes && !self.writable {
            return reply.error(Errno::EROFS);
        }
        if let Err(e) = self.path(ino) {
            return reply.error(e);
        }
        let keep = if self.caching.keep_cache {
            FopenFlags::FOPEN_KEEP_CACHE
        } else {
            FopenFlags::empty()
        };
        reply.opened(FileHandle(0), keep);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let result = self.path(ino).and_then(|path| {
            self.call(
                || format!("read {path} {offset}+{size}"),
                |d, l| d.read(l, &path, offset, u64::from(size)),
            )
        });
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let result = self.change().and_then(|()| {
            let path = self.path(ino)?;
            // an empty write changes no size
            let end = match data.len() {
                0 => 0,
                n => offset.saturating_add(n as u64),
            };
            self.in_place(&path, Update::Written(end), || {
                self.call(
                    || format!("write {path} {offset}+{}", data.len()),
                    |d, l| d.write(l, &path, offset, data),
                )
            })
        });
        match result {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        // every driver call is complete (and as durable as the driver makes it) on return,
        // and locks are the kernel's: nothing to do on close. ENOSYS tells the kernel so,
        // and it sends no more flushes (one request fewer per close of a file)
        reply.error(Errno::ENOSYS);
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // the listing is taken once per open: offsets index into it, so they stay stable
        // however the directory changes while it is read
        match self.listing(ino) {
            Ok(list) => {
                let mut st = self.state();
                st.next_fh += 1;
                let fh = st.next_fh;
                st.dirs.insert(fh, list);
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let st = self.state();
        let Some(list) = st.dirs.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (i, (ino, kind, name)) in list.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.state().dirs.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.space() {
            Ok(s) => reply.statfs(
                s.blocks,
                s.free,
                s.free,
                s.files,
                s.files_free,
                STATFS_BLOCK as u32,
                NAME_MAX as u32,
                STATFS_BLOCK as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        Self::empty(reply, self.set_xattr(ino, name, value, flags));
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let result = self.path(ino).and_then(|path| {
            let name = self.xattr_name(name)?;
            if name == CAPS && self.state().cache.has_no_caps(&path) {
                return Err(Errno::ENODATA);
            }
            let value = self.call(
                || format!("get_xattr {path} {name}"),
                |d, l| d.get_xattr(l, &path, name),
            );
            if name == CAPS && value.as_ref().is_err_and(|e| *e == Errno::ENODATA) {
                self.state().cache.no_caps(&path);
            }
            value
        });
        xattr_reply(reply, size, result);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let result = self.path(ino).and_then(|path| {
            let names = self.call(
                || format!("list_xattrs {path}"),
                |d, l| d.list_xattrs(l, &path),
            )?;
            Ok(names
                .iter()
                .flat_map(|n| n.as_bytes().iter().copied().chain([0]))
                .collect())
        });
        xattr_reply(reply, size, result);
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = self.change().and_then(|()| {
            self.state().cache.changing_xattrs();
            let path = self.path(ino)?;
            let name = self.xattr_name(name)?;
            self.call(
                || format!("remove_xattr {path} {name}"),
                |d, l| d.remove_xattr(l, &path, name),
            )
        });
        Self::empty(reply, result);
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // permissions are the kernel's (default_permissions); this only says it exists
        Self::empty(reply, self.path(ino).map(|_| ()));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let node = Node::new(FileKind::File, perm(mode, umask), 0);
        let result = self.make_node(req, parent, name, node);
        match result {
            Ok(attr) => {
                let keep = if self.caching.keep_cache {
                    FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                };
                reply.created(&self.caching.ttl, &attr, Generation(0), FileHandle(0), keep)
            }
            Err(e) => reply.error(e),
        }
    }
}
