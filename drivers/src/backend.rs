//! `Lifecycle` and `Backend`: the narrow set of primitives a storage driver implements
//! (`Lifecycle`: the driver and its layers as wholes; `Backend`: the view, each primitive on
//! one place, [`At`], [`Rename`]). The front
//! ([`crate::front::Layers`]) owns the store, the Meter and the layer table, and checks every
//! precondition of [`layerlab_core::LayerDriver`] once, before it calls a primitive; so a
//! primitive may assume what its contract says was checked, and a driver is only what is
//! really its own: where its bytes live and what each change costs.
//!
//! What the front has checked before each call (and a backend must not check again):
//! - the layer exists; for a change, the store is open for writing and the layer is active;
//! - the rule of [`layerlab_core::rules`] for the operation: the entry's kind (a file for
//!   `read`/`write`/`truncate`, absent for `create`/`mkdir`/`symlink`/`mknod`, ...), the
//!   symlink target, the rename plan (POSIX replacement rules, `noop` renames never reach
//!   the backend), the xattr name;
//! - for `make_layer`: the id is free, the parent exists and is committed, the depth is within
//!   [`Semantics::max_depth`]; for `drop_layer` (removal): the layer has no children and the
//!   layer table no longer names it.
//!
//! What a backend must still do itself: fail with nothing changed (a primitive that fails
//! part way undoes its own steps), count its work in [`Cx::meter`], and check what only it
//! can know (`CrossDevice` where [`Semantics::lower_dir_rename`] says so, no space left).

use crate::options::OptionSpec;
use crate::store::{Options, Store};
use layerlab_core::rules::RenamePlan;
use layerlab_core::{
    DirEntry, FileKind, LayerId, LayerInfo, LayerPath, Metadata, Meter, Result, Semantics, Usage,
};
use std::path::PathBuf;

/// The device node or fifo `mknod` makes, as `LayerDriver::mknod` takes it too.
pub use layerlab_core::Node;

/// What the front hands a primitive: the store (layer table, options, root) and the Meter.
#[derive(Debug)]
pub struct Cx<'a> {
    /// The open store.
    pub store: &'a Store,
    /// The Meter every primitive counts into.
    pub meter: &'a mut Meter,
}

/// Where a primitive works: a layer (checked to exist) and a path of its view. `Copy`, so
/// a primitive hands it on to its helpers whole.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// The layer whose view is read or changed.
    pub layer: &'a LayerId,
    /// The path in that view.
    pub path: &'a LayerPath,
}

impl<'a> At<'a> {
    /// `path` of `layer`'s view.
    pub fn new(layer: &'a LayerId, path: &'a LayerPath) -> Self {
        At { layer, path }
    }

    /// Another path of the same layer's view.
    pub fn to(self, path: &'a LayerPath) -> Self {
        At { path, ..self }
    }
}

/// A rename, as the front planned it: `from` to `to` of one layer's view.
#[derive(Debug, Clone, Copy)]
pub struct Rename<'a> {
    /// The layer.
    pub layer: &'a LayerId,
    /// The entry moved (checked to exist, not `/`).
    pub from: &'a LayerPath,
    /// Its new name.
    pub to: &'a LayerPath,
    /// The kinds involved, as the POSIX rules checked them (never a no-op).
    pub plan: RenamePlan,
}

impl<'a> Rename<'a> {
    /// The source, as a primitive's place.
    pub fn source(&self) -> At<'a> {
        At::new(self.layer, self.from)
    }

    /// The destination, as a primitive's place.
    pub fn dest(&self) -> At<'a> {
        At::new(self.layer, self.to)
    }
}

/// A storage driver's own part, first half: what it is (name, options, semantics), its
/// files (made, opened, checked), and its layers as wholes (made, sealed, freed, measured).
/// The kernel drivers share the other half ([`Backend`]) and say only this one of their own.
pub trait Lifecycle: Sized + std::fmt::Debug {
    /// The registry name.
    const NAME: &'static str;
    /// One line saying what it models.
    const DESCRIPTION: &'static str;
    /// The options `init` accepts.
    const OPTIONS: &'static [OptionSpec];

    /// Whether this machine can run the driver (`Err` says why not: a kernel driver needs
    /// root, the filesystem, its tools). Drivers on plain files are always available.
    fn availability() -> std::result::Result<(), String> {
        Ok(())
    }

    /// Checks the options (known keys, defaults filled in) before a store is made with
    /// them, and settles them as the store keeps them (an `auto` decided, a flag spelled
    /// one way).
    fn settle_options(options: Options) -> Result<Options> {
        Ok(options)
    }

    /// Makes the driver's files in a new, empty store.
    fn init(cx: &mut Cx<'_>) -> Result<Self>;

    /// Opens the driver's files; with the store open for writing, sweeps what a crash left
    /// that the layer table does not name.
    fn open(cx: &mut Cx<'_>) -> Result<Self>;

    /// Where this driver's semantics differ from the others'.
    fn semantics(&self) -> Semantics;

    // ----- layer lifecycle (the front commits the layer table) ---------------------------

    /// Makes the data of the new layer `new` (active; its row as the layer table will hold
    /// it: a copy, a snapshot or an empty branch of `new.parent`) and makes it durable; the
    /// front then names it in the layer table, or calls `drop_layer` if that fails.
    /// Anything of this id left by a crash must be replaced.
    fn make_layer(&mut self, cx: &mut Cx<'_>, new: &LayerInfo) -> Result<()>;

    /// Frees a layer's data: after the layer table dropped it, or to undo `make_layer`.
    fn drop_layer(&mut self, cx: &mut Cx<'_>, id: &LayerId) -> Result<()>;

    /// Makes an active layer read-only before the front commits it in the table (zfs takes
    /// its `@commit` snapshot); by default nothing.
    fn seal_layer(&mut self, _cx: &mut Cx<'_>, _id: &LayerId) -> Result<()> {
        Ok(())
    }

    /// Undoes `seal_layer` when the table could not be committed.
    fn unseal_layer(&mut self, _cx: &mut Cx<'_>, _id: &LayerId) -> Result<()> {
        Ok(())
    }

    /// `fsck`: checks the driver's own structures (the front has checked the layer table),
    /// recording each finding in `report`; with `repair`, fixes what it can without losing
    /// committed data and records what it dropped. Works on a store `open` would refuse.
    /// By default there is nothing of the driver's own beyond what the front checks.
    fn check(
        _cx: &mut Cx<'_>,
        _repair: bool,
        _report: &mut crate::fsck::CheckReport,
    ) -> Result<()> {
        Ok(())
    }

    /// `fsck`: which layers of the table have data, and the data no layer of the table
    /// names (orphans), for drivers that keep each layer under host names of their own (the
    /// front reports ghosts and orphans from it, and removes orphans on `--repair`). `None`
    /// where the driver's own [`Lifecycle::check`] accounts for its layers (the pools).
    /// Works on a store `open` would refuse.
    fn layer_data(_store: &Store) -> Result<Option<crate::fsck::LayerData>> {
        Ok(None)
    }

    // ----- whole-layer questions -----------------------------------------------------------

    /// Bytes and inodes the layer (checked to exist) holds exclusively.
    fn usage(&mut self, cx: &mut Cx<'_>, layer: &LayerId) -> Result<Usage>;

    /// Starts a batch ([`layerlab_core::LayerDriver::begin_batch`]): fsyncs may be deferred
    /// to [`Backend::end_batch`]. Default: none are.
    fn begin_batch(&mut self) {}

    /// Ends a batch: makes every change since [`Backend::begin_batch`] durable.
    fn end_batch(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        let _ = cx;
        Ok(())
    }

    /// Where the driver's files are, and facts like `docker info` prints.
    fn facts(&self, store: &Store) -> Result<(PathBuf, Vec<(String, String)>)>;
}

/// A storage driver's own part, second half: the primitives of the merged view, each on
/// a place the front has checked, and what they cost.
pub trait Backend: Lifecycle {
    /// False for the kernel reference drivers: the kernel does their work, so their Meter
    /// counts only bytes moved, and an experiment reports only their measured times.
    const METERED: bool = true;

    // ----- the merged view ---------------------------------------------------------------

    /// The kind of the entry at `at.path`, or `None` when it is absent from an existing
    /// parent directory: `NotFound` when an ancestor is missing, `NotADirectory` when an
    /// ancestor is not a directory (as [`layerlab_core::rules::Resolve::resolve`]).
    fn resolve(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Option<FileKind>>;

    /// True when the directory at `at.path` (checked to be one) has no visible entries.
    fn is_empty_dir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<bool>;

    /// The attributes of the entry at `at.path` (checked to exist).
    fn stat(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Metadata>;

    /// Up to `len` bytes of the file at `at.path` (checked to be a file) from `offset`.
    fn read(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, len: u64) -> Result<Vec<u8>>;

    /// The entries of the directory at `at.path` (checked to be one), sorted by name.
    fn readdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<DirEntry>>;

    // ----- changes (the layer is active; the rule is checked) ----------------------------
    // The front has checked the kind of the entry each change needs (a file, not a
    // symlink, ...): a primitive that must tell kinds apart looks itself.

    /// Creates an empty file at `at.path` (checked absent, parent a directory).
    fn create(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()>;

    /// Writes `data` at `offset` into the file at `at.path` (checked to be a file).
    fn write(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, data: &[u8]) -> Result<()>;

    /// Replaces the whole content of the file at `at.path` (checked to be a file) with
    /// `data`, all or nothing (see `LayerDriver::replace`). The default is for drivers
    /// whose every `write` and `truncate` is whole under a crash: `data` is written at 0
    /// (whole), then a shorter content cuts the file, and a failed cut writes the old bytes
    /// back. A crash between the two leaves the new bytes over the old tail, which the
    /// journal's [`Intent::Cut`](crate::journal::Intent::Cut) completes on the next open
    /// (the CLI's `write` runs a shorter replace under it); drivers that can stage a file
    /// override this.
    fn replace(&mut self, cx: &mut Cx<'_>, at: At<'_>, data: &[u8]) -> Result<()> {
        let old = self.stat(cx, at)?.size;
        let len = data.len() as u64;
        if len >= old {
            return self.write(cx, at, 0, data);
        }
        let covered = self.read(cx, at, 0, len)?;
        self.write(cx, at, 0, data)?;
        if let Err(e) = self.truncate(cx, at, len) {
            // undo: the old bytes back under the old tail
            let _ = self.write(cx, at, 0, &covered);
            return Err(e);
        }
        Ok(())
    }

    /// Appends `data` to the file at `at.path` (checked to be a file).
    fn append(&mut self, cx: &mut Cx<'_>, at: At<'_>, data: &[u8]) -> Result<()>;

    /// Sets the length of the file at `at.path` (checked to be a file).
    fn truncate(&mut self, cx: &mut Cx<'_>, at: At<'_>, size: u64) -> Result<()>;

    /// Creates a directory at `at.path` (checked absent, parent a directory).
    fn mkdir(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()>;

    /// Creates a symlink at `at.path` (checked absent) pointing at `target` (checked
    /// non-empty, NUL-free).
    fn symlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, target: &str) -> Result<()>;

    /// Makes `at.path` (checked absent) a second name of the file `existing` of the same
    /// layer (checked a file).
    fn hardlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, existing: &LayerPath) -> Result<()>;

    /// Removes the file or symlink at `at.path` (checked: not a directory) from the view.
    fn unlink(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()>;

    /// Removes the empty directory at `at.path` (checked: a directory, empty, not `/`).
    fn rmdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()>;

    /// What only the driver can refuse of a rename (EXDEV where
    /// [`Semantics::lower_dir_rename`] says so), before the front checks that a directory
    /// it replaces is empty (overlayfs refuses with EXDEV first). By default nothing.
    fn check_rename(&mut self, _cx: &mut Cx<'_>, _mv: Rename<'_>) -> Result<()> {
        Ok(())
    }

    /// Moves `mv.from` to `mv.to` as `mv.plan` says (checked by the POSIX rules and
    /// [`Backend::check_rename`]; a directory replaced is empty; never a no-op).
    fn rename(&mut self, cx: &mut Cx<'_>, mv: Rename<'_>) -> Result<()>;

    /// Sets the permission bits of the entry at `at.path` (checked: not a symlink).
    fn chmod(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()>;

    /// Sets the owner and group of the entry at `at.path` (checked to exist), keeping its
    /// mode.
    fn chown(&mut self, cx: &mut Cx<'_>, at: At<'_>, uid: u32, gid: u32) -> Result<()>;

    /// Sets the mtime of the entry at `at.path` (checked to exist; `nsec` checked below
    /// one second).
    fn set_mtime(&mut self, cx: &mut Cx<'_>, at: At<'_>, secs: i64, nsec: u32) -> Result<()>;

    /// Creates a device node or fifo at `at.path` (checked absent; its kind and device
    /// number checked).
    fn mknod(&mut self, cx: &mut Cx<'_>, at: At<'_>, node: Node) -> Result<()>;

    /// The value of the extended attribute `name` (checked) of the entry at `at.path`,
    /// `None` when it is not set.
    fn get_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<Option<Vec<u8>>>;

    /// The names of the extended attributes of the entry at `at.path` (checked to exist),
    /// sorted, the driver's own markers left out.
    fn list_xattrs(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<String>>;

    /// Sets the extended attribute `name` (checked, as the value) of the entry at
    /// `at.path` (of a kind checked to take it).
    fn set_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str, value: &[u8]) -> Result<()>;

    /// Removes the extended attribute `name` (checked) of the entry at `at.path`; `false`,
    /// having changed nothing, when it was not set.
    fn remove_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<bool>;
}
