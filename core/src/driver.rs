//! The `LayerDriver` trait: the one contract every storage driver and the reference model keep.
//!
//! Rules that hold for every method unless it says otherwise:
//! - A layer id that is not in the store gives [`Error::NoSuchLayer`].
//! - Paths are [`LayerPath`]s, already normalized; they are never resolved through symlinks.
//!   Resolution walks from the root: a missing parent gives `NotFound`, a parent that is not
//!   a directory gives `NotADirectory`.
//! - Every method that changes a layer fails with `ReadOnlyLayer` on a committed layer,
//!   before anything else is checked, and changes nothing when it fails.
//! - Every method adds what it did to the driver's [`Meter`]; counts depend only on the
//!   sequence of operations.
//! - A method that fails leaves the store as it was: no half-written layer, no file
//!   written outside the store.

use crate::{
    Change, DirEntry, DriverStatus, LayerId, LayerInfo, LayerPath, Metadata, Meter, Node, Result,
    Semantics, Usage,
};

/// A storage driver: a set of layers, each a parent-linked, copy-on-write view of a tree.
pub trait LayerDriver {
    /// The driver's registry name (`vfs`, `overlay2`, ...).
    fn name(&self) -> &'static str;

    /// Where this driver's semantics differ from the others' (depth limit, directory
    /// renames, provenance). The reference model takes these to predict the driver.
    fn semantics(&self) -> Semantics;

    /// The meter this driver counts into.
    fn meter(&self) -> &Meter;

    /// The meter, to reset it or turn tracing on.
    fn meter_mut(&mut self) -> &mut Meter;

    // ----- layer lifecycle -------------------------------------------------------------

    /// Creates an active layer whose view starts as its parent's view (or empty, with a root
    /// directory `/` of mode 0755 owned by 0:0).
    ///
    /// Contract: `LayerExists` if `id` is taken; `NoSuchLayer` if the parent is missing;
    /// `ParentNotCommitted` unless the parent is committed; `TooManyLayers` if the new
    /// stack would be deeper than `semantics().max_depth`. The layer is durable when this
    /// returns.
    fn create_layer(&mut self, id: &LayerId, parent: Option<&LayerId>) -> Result<()>;

    /// Makes a layer read-only, so that it may have children. Committing a committed layer
    /// is a no-op.
    fn commit(&mut self, id: &LayerId) -> Result<()>;

    /// Removes a layer and frees what it holds exclusively.
    ///
    /// Contract: `HasChildren` while any layer names it as parent; its parents are untouched.
    fn remove_layer(&mut self, id: &LayerId) -> Result<()>;

    /// Every layer, sorted by id.
    fn layers(&self) -> Result<Vec<LayerInfo>>;

    /// One layer's facts; `NoSuchLayer` if missing.
    fn layer(&self, id: &LayerId) -> Result<LayerInfo>;

    /// True when the layer exists.
    fn exists(&self, id: &LayerId) -> bool {
        self.layer(id).is_ok()
    }

    // ----- reads of the merged view ----------------------------------------------------

    /// The attributes of an entry, with the layer that provides it (`Metadata::layer`,
    /// see [`crate::Provenance`]). Symlinks are not followed.
    fn stat(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Metadata>;

    /// Up to `len` bytes of a file from `offset` (fewer at the end, none past it).
    ///
    /// Contract: `IsADirectory` for a directory, `InvalidArgument` for a symlink.
    fn read(&mut self, layer: &LayerId, path: &LayerPath, offset: u64, len: u64)
        -> Result<Vec<u8>>;

    /// The entries of a directory, sorted by name, whiteouts and hidden lower entries
    /// excluded. Contract: `NotADirectory` for anything but a directory.
    fn readdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<DirEntry>>;

    // ----- changes to the view (all refused on a committed layer) -----------------------

    /// Creates an empty regular file with `mode & 0o7777`, owned by 0:0.
    /// Contract: `AlreadyExists` if anything is at `path`; the parent must be a directory.
    fn create(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()>;

    /// Writes `data` at `offset` into an existing file, extending it (with zeros over any
    /// gap) if needed; an empty `data` changes no content, even past the end (as pwrite(2)). A file inherited from a lower layer is copied up first where the
    /// driver copies up. Contract: `NotFound` if missing, `IsADirectory`, `InvalidArgument`
    /// for a symlink.
    fn write(&mut self, layer: &LayerId, path: &LayerPath, offset: u64, data: &[u8]) -> Result<()>;

    /// Replaces the whole content of an existing file with `data`, keeping its attributes
    /// (mode, owner, extended attributes; the mtime becomes now, as for `write`). All or
    /// nothing where the driver can: a failure, or a crash at any point, leaves the old
    /// content or the new, never a mix (drivers on host trees write a staged file and
    /// rename it over; the others write at 0, which a shorter content then cuts, undone
    /// on failure). Same errors as `write`. The default writes at 0, then cuts.
    fn replace(&mut self, layer: &LayerId, path: &LayerPath, data: &[u8]) -> Result<()> {
        self.write(layer, path, 0, data)?;
        self.truncate(layer, path, data.len() as u64)
    }

    /// Appends `data` at the end of an existing file (as `write` at its size).
    fn append(&mut self, layer: &LayerId, path: &LayerPath, data: &[u8]) -> Result<()>;

    /// Sets a file's length, cutting or extending with zeros. Same errors as `write`.
    fn truncate(&mut self, layer: &LayerId, path: &LayerPath, size: u64) -> Result<()>;

    /// Creates a directory with `mode & 0o7777`, owned by 0:0; it hides nothing below.
    /// Contract: `AlreadyExists` if anything is at `path`.
    fn mkdir(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()>;

    /// Creates a symlink at `link` pointing at `target` (stored verbatim, never followed).
    /// Contract: `AlreadyExists` if anything is at `link`; `InvalidArgument` for an empty
    /// target or one with a NUL.
    fn symlink(&mut self, layer: &LayerId, target: &str, link: &LayerPath) -> Result<()>;

    /// Makes `link` a second name of the regular file `existing` within this layer: a write
    /// through one name is seen through the other, and `nlink` counts both. Across layers
    /// a link is as the driver keeps it (overlay's copy-up breaks it, as in the kernel).
    /// Contract: `NotFound`, `IsADirectory` for a directory, `InvalidArgument` for a symlink,
    /// `AlreadyExists` if `link` exists.
    fn hardlink(&mut self, layer: &LayerId, existing: &LayerPath, link: &LayerPath) -> Result<()>;

    /// Removes a file or symlink from the view (a whiteout where a lower layer has it).
    /// Contract: `IsADirectory` for a directory.
    fn unlink(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()>;

    /// Removes an empty directory from the view.
    /// Contract: `NotADirectory`, `DirectoryNotEmpty`, `InvalidArgument` for `/`.
    fn rmdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()>;

    /// Moves an entry, replacing the destination as POSIX rename(2) does: a file over a file
    /// or symlink, a directory over an empty directory. Renaming a path onto itself does
    /// nothing. Contract: `IsADirectory` (file over directory), `NotADirectory` (directory
    /// over non-directory), `DirectoryNotEmpty`, `InvalidArgument` (`/`, or a directory
    /// into itself), `CrossDevice` where `semantics().lower_dir_rename` says so.
    fn rename(&mut self, layer: &LayerId, from: &LayerPath, to: &LayerPath) -> Result<()>;

    /// Sets the permission bits (`mode & 0o7777`: setuid, setgid and sticky included).
    /// Contract: `InvalidArgument` for a symlink (Linux has no lchmod).
    fn chmod(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()>;

    /// Sets owner and group (of the symlink itself for a symlink).
    fn chown(&mut self, layer: &LayerId, path: &LayerPath, uid: u32, gid: u32) -> Result<()>;

    /// Sets the modification time (as `utimensat`, of a symlink itself). A file inherited
    /// from a lower layer is copied up first where the driver copies up (metadata only
    /// where the driver has metacopy). Contract: `InvalidArgument` for `nsec` of a second
    /// or more.
    fn set_mtime(&mut self, layer: &LayerId, path: &LayerPath, secs: i64, nsec: u32) -> Result<()>;

    /// Creates the device node `node` (`CharDevice`, `BlockDevice`, with `rdev` as `makedev`
    /// packs it) or fifo (`rdev` 0), with `mode & 0o7777`, owned by 0:0.
    /// Contract: `AlreadyExists` if anything is at `path`; `InvalidArgument` for another
    /// kind, a fifo with a device number, or the character device 0:0 (overlay's whiteout).
    fn mknod(&mut self, layer: &LayerId, path: &LayerPath, node: Node) -> Result<()>;

    /// The value of an extended attribute. Contract: `NoAttribute` when it is not set;
    /// `InvalidArgument` for a name outside the `user.`, `trusted.` and `security.`
    /// namespaces; `NotPermitted` for the names drivers reserve
    /// ([`crate::rules::RESERVED_XATTR_PREFIXES`]) and for `user.*` on anything but a
    /// file or directory.
    fn get_xattr(&mut self, layer: &LayerId, path: &LayerPath, name: &str) -> Result<Vec<u8>>;

    /// The names of the entry's extended attributes, sorted (reserved names never appear).
    fn list_xattrs(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<String>>;

    /// Sets an extended attribute (copying the entry up where the driver copies up).
    /// Contract: as `get_xattr` for the name; `InvalidArgument` for a value over 64 KiB.
    fn set_xattr(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        name: &str,
        value: &[u8],
    ) -> Result<()>;

    /// Removes an extended attribute. Contract: as `get_xattr`.
    fn remove_xattr(&mut self, layer: &LayerId, path: &LayerPath, name: &str) -> Result<()>;

    // ----- whole-layer questions ------------------------------------------------------

    /// The layer's changeset against its parent's view (OCI rules), sorted by path: see
    /// [`crate::changes::diff_views`] for the exact definition every driver follows.
    fn changes(&mut self, layer: &LayerId) -> Result<Vec<Change>>;

    /// Bytes and inodes the layer holds exclusively; its parents' are excluded.
    fn usage(&mut self, layer: &LayerId) -> Result<Usage>;

    /// Driver facts: name, options, where its files are, counts like `docker info`.
    fn status(&self) -> Result<DriverStatus>;

    // ----- bulk changes ---------------------------------------------------------------

    /// Starts a batch of changes (a bulk command such as `apply`): until
    /// [`LayerDriver::end_batch`] the driver may defer the fsyncs that make each change
    /// durable on its own. Every change still reaches the host files in order, so a killed
    /// process loses nothing it wrote. Default: nothing is deferred.
    fn begin_batch(&mut self) {}

    /// Ends a batch: makes every change since [`LayerDriver::begin_batch`] durable (data
    /// first, then metadata: one fsync per file, not per change). An error means the
    /// changes may not be durable; the caller undoes them and ends the batch again.
    fn end_batch(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Implements [`LayerDriver`] for `$ty`, a type that hands every call to an inner driver
/// (`layerlab-drivers`' `AnyDriver` over its variants, a test wrapper over one store): the
/// trait's methods are written here once, each as a forward through one of three macros of
/// the form `m!(self, d => call)`, which run `call` with `d` the inner driver: `$peek` for
/// the `&self` queries, `$query` for the `&mut self` queries and `$change` for the changes.
/// `meter` and `meter_mut` are the caller's own (the wrapper may keep its own Meter), given
/// in the braces. Static dispatch: the forwards are whatever the three macros expand to.
#[macro_export]
macro_rules! forward_layer_driver {
    ($ty:ty, $peek:ident, $query:ident, $change:ident, { $($own:tt)* }) => {
        impl $crate::LayerDriver for $ty {
            $($own)*

            fn name(&self) -> &'static str { $peek!(self, d => d.name()) }
            fn semantics(&self) -> $crate::Semantics { $peek!(self, d => d.semantics()) }
            fn create_layer(&mut self, id: &$crate::LayerId, parent: Option<&$crate::LayerId>) -> $crate::Result<()> {
                $change!(self, d => d.create_layer(id, parent))
            }
            fn commit(&mut self, id: &$crate::LayerId) -> $crate::Result<()> { $change!(self, d => d.commit(id)) }
            fn remove_layer(&mut self, id: &$crate::LayerId) -> $crate::Result<()> { $change!(self, d => d.remove_layer(id)) }
            fn layers(&self) -> $crate::Result<Vec<$crate::LayerInfo>> { $peek!(self, d => d.layers()) }
            fn layer(&self, id: &$crate::LayerId) -> $crate::Result<$crate::LayerInfo> { $peek!(self, d => d.layer(id)) }
            fn exists(&self, id: &$crate::LayerId) -> bool { $peek!(self, d => d.exists(id)) }
            fn stat(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath) -> $crate::Result<$crate::Metadata> {
                $query!(self, d => d.stat(layer, path))
            }
            fn read(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, offset: u64, len: u64) -> $crate::Result<Vec<u8>> {
                $query!(self, d => d.read(layer, path, offset, len))
            }
            fn readdir(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath) -> $crate::Result<Vec<$crate::DirEntry>> {
                $query!(self, d => d.readdir(layer, path))
            }
            fn create(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, mode: u32) -> $crate::Result<()> {
                $change!(self, d => d.create(layer, path, mode))
            }
            fn write(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, offset: u64, data: &[u8]) -> $crate::Result<()> {
                $change!(self, d => d.write(layer, path, offset, data))
            }
            fn replace(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, data: &[u8]) -> $crate::Result<()> {
                $change!(self, d => d.replace(layer, path, data))
            }
            fn append(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, data: &[u8]) -> $crate::Result<()> {
                $change!(self, d => d.append(layer, path, data))
            }
            fn truncate(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, size: u64) -> $crate::Result<()> {
                $change!(self, d => d.truncate(layer, path, size))
            }
            fn mkdir(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, mode: u32) -> $crate::Result<()> {
                $change!(self, d => d.mkdir(layer, path, mode))
            }
            fn symlink(&mut self, layer: &$crate::LayerId, target: &str, link: &$crate::LayerPath) -> $crate::Result<()> {
                $change!(self, d => d.symlink(layer, target, link))
            }
            fn hardlink(&mut self, layer: &$crate::LayerId, existing: &$crate::LayerPath, link: &$crate::LayerPath) -> $crate::Result<()> {
                $change!(self, d => d.hardlink(layer, existing, link))
            }
            fn unlink(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath) -> $crate::Result<()> {
                $change!(self, d => d.unlink(layer, path))
            }
            fn rmdir(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath) -> $crate::Result<()> {
                $change!(self, d => d.rmdir(layer, path))
            }
            fn rename(&mut self, layer: &$crate::LayerId, from: &$crate::LayerPath, to: &$crate::LayerPath) -> $crate::Result<()> {
                $change!(self, d => d.rename(layer, from, to))
            }
            fn chmod(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, mode: u32) -> $crate::Result<()> {
                $change!(self, d => d.chmod(layer, path, mode))
            }
            fn chown(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, uid: u32, gid: u32) -> $crate::Result<()> {
                $change!(self, d => d.chown(layer, path, uid, gid))
            }
            fn set_mtime(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, secs: i64, nsec: u32) -> $crate::Result<()> {
                $change!(self, d => d.set_mtime(layer, path, secs, nsec))
            }
            fn mknod(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, node: $crate::Node) -> $crate::Result<()> {
                $change!(self, d => d.mknod(layer, path, node))
            }
            fn get_xattr(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, name: &str) -> $crate::Result<Vec<u8>> {
                $query!(self, d => d.get_xattr(layer, path, name))
            }
            fn list_xattrs(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath) -> $crate::Result<Vec<String>> {
                $query!(self, d => d.list_xattrs(layer, path))
            }
            fn set_xattr(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, name: &str, value: &[u8]) -> $crate::Result<()> {
                $change!(self, d => d.set_xattr(layer, path, name, value))
            }
            fn remove_xattr(&mut self, layer: &$crate::LayerId, path: &$crate::LayerPath, name: &str) -> $crate::Result<()> {
                $change!(self, d => d.remove_xattr(layer, path, name))
            }
            fn changes(&mut self, layer: &$crate::LayerId) -> $crate::Result<Vec<$crate::Change>> {
                $query!(self, d => d.changes(layer))
            }
            fn usage(&mut self, layer: &$crate::LayerId) -> $crate::Result<$crate::Usage> {
                $query!(self, d => d.usage(layer))
            }
            fn status(&self) -> $crate::Result<$crate::DriverStatus> { $peek!(self, d => d.status()) }
        }
    };
}
