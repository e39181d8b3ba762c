//! The plain data a driver hands back: attributes, listings, layer facts, changes, usage.

use crate::{LayerId, LayerPath};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed by layerlab).
    Symlink,
    /// A character device node (its number in [`Metadata::rdev`]).
    #[serde(rename = "chardev")]
    CharDevice,
    /// A block device node (its number in [`Metadata::rdev`]).
    #[serde(rename = "blockdev")]
    BlockDevice,
    /// A named pipe.
    Fifo,
}

impl FileKind {
    /// `file`, `dir` or `symlink`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::CharDevice => "chardev",
            FileKind::BlockDevice => "blockdev",
            FileKind::Fifo => "fifo",
        }
    }

    /// True for the kinds `mknod` makes: device nodes and fifos.
    pub fn is_node(self) -> bool {
        matches!(
            self,
            FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo
        )
    }
}

/// A device node or fifo to make: its kind (`CharDevice`, `BlockDevice`, `Fifo`), mode bits
/// and device number (as [`makedev`] packs it; 0 for a fifo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// The kind of node.
    pub kind: FileKind,
    /// The permission bits.
    pub mode: u32,
    /// The device number.
    pub rdev: u64,
}

impl Node {
    /// A node of `kind` with `mode` and device number `rdev`.
    pub fn new(kind: FileKind, mode: u32, rdev: u64) -> Node {
        Node { kind, mode, rdev }
    }

    /// A fifo with `mode`.
    pub fn fifo(mode: u32) -> Node {
        Node {
            kind: FileKind::Fifo,
            mode,
            rdev: 0,
        }
    }
}

/// A device number as Linux packs it (`makedev(3)`), from its major and minor.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
}

/// The major and minor of a device number packed as Linux packs it.
pub fn dev_parts(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff);
    (major as u32, minor as u32)
}

/// Permission bits kept by layerlab: rwx for user, group, other, plus setuid, setgid, sticky.
pub const MODE_MASK: u32 = 0o7777;
/// The mode every symlink reports.
pub const SYMLINK_MODE: u32 = 0o777;

/// The attributes of an entry in a layer's merged view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// File, directory or symlink.
    pub kind: FileKind,
    /// Permission bits (`MODE_MASK`), setuid/setgid/sticky included.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Length for files, target length for symlinks, 0 for directories.
    pub size: u64,
    /// Hard links to a file within the layer (1 for directories and symlinks).
    pub nlink: u32,
    /// The target of a symlink.
    pub target: Option<String>,
    /// The device number of a device node (`makedev`), 0 for every other kind.
    pub rdev: u64,
    /// Modification time, seconds since the epoch (kept and settable; not part of a
    /// changeset, see [`crate::changes`]).
    pub mtime: i64,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: u32,
    /// The layer whose storage provides this entry (see `Semantics::provenance`).
    pub layer: LayerId,
}

impl Metadata {
    /// An entry of `kind` with permission bits `mode`, owned by `uid:gid`, provided by
    /// `layer`: one link, and no size, symlink target, device number or time.
    pub fn new(kind: FileKind, mode: u32, uid: u32, gid: u32, layer: LayerId) -> Metadata {
        Metadata {
            kind,
            mode,
            uid,
            gid,
            size: 0,
            nlink: 1,
            target: None,
            rdev: 0,
            mtime: 0,
            mtime_nsec: 0,
            layer,
        }
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DirEntry {
    /// The name within the directory.
    pub name: String,
    /// What it is.
    pub kind: FileKind,
}

/// Whether a layer can still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerState {
    /// Writable; may not have children.
    Active,
    /// Read-only; may have children.
    Committed,
}

impl LayerState {
    /// `active` or `committed`.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerState::Active => "active",
            LayerState::Committed => "committed",
        }
    }
}

/// What a driver knows of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The layer.
    pub id: LayerId,
    /// Its parent, if any.
    pub parent: Option<LayerId>,
    /// Active or committed.
    pub state: LayerState,
    /// 1 for a base layer, parent's depth + 1 otherwise.
    pub depth: usize,
}

/// The kind of one change of a layer against its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Present in the layer, absent from its parent's view.
    Added,
    /// Present in both, with other content, kind, mode, owner or target; or a directory
    /// (not `/`) in which an entry was added or deleted, as Docker reports it.
    Modified,
    /// Present in the parent's view, gone from the layer's (only the topmost deleted path
    /// is listed: the children of a deleted directory are implied).
    Deleted,
}

/// One entry of a changeset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Change {
    /// The path.
    pub path: LayerPath,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// Space a layer holds exclusively (its parents' space excluded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Bytes of data and metadata exclusive to the layer.
    pub bytes: u64,
    /// Inodes (entries) exclusive to the layer.
    pub inodes: u64,
    /// Driver-specific figures (referenced bytes, allocated bytes, blocks, ...).
    pub details: BTreeMap<String, u64>,
}

/// What a driver says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverStatus {
    /// The driver's registry name.
    pub driver: String,
    /// Where its files are.
    pub root: PathBuf,
    /// The options it was created with.
    pub options: BTreeMap<String, String>,
    /// Facts like `docker info` prints (layers, limits, pool usage).
    pub facts: Vec<(String, String)>,
}

/// How a driver's rename of a directory that exists in a lower layer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowerDirRename {
    /// The directory is moved (copy and snapshot drivers).
    Moves,
    /// EXDEV, as overlayfs without `redirect_dir`, for every such directory.
    CrossDevice,
    /// EXDEV unless the directory is empty in the merged view, as aufs without `dirren`
    /// (an empty directory is renamed).
    CrossDeviceUnlessEmpty,
}

/// Which layer `stat` names as the provider of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// The topmost layer of the stack whose storage has the entry (union drivers).
    Union,
    /// Always the layer itself (copy and snapshot drivers keep a whole tree per layer).
    Own,
}

/// Whether containers on one image share the host's cached pages of the image's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCache {
    /// Lower files are the same host files for every container: one cached copy (overlay2,
    /// aufs; zfs clones share cached blocks in the ARC).
    SharedLowerFiles,
    /// Every layer reads its own copy or its own device: one cached copy per container
    /// (vfs copies, devicemapper and btrfs snapshots).
    PerLayer,
}

/// The few places where a driver's semantics legitimately differ from another's. The
/// reference model takes the driver's `Semantics` and predicts exactly what it must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Semantics {
    /// The deepest stack allowed (the layer itself included); `None` for no limit.
    pub max_depth: Option<usize>,
    /// Renaming a directory that exists in a lower layer.
    pub lower_dir_rename: LowerDirRename,
    /// Which layer `stat` names.
    pub provenance: Provenance,
    /// Whether containers share cached pages of the image (a fact of the real driver, used
    /// by the harness's page-cache model; it changes no file semantics).
    pub page_cache: PageCache,
}

impl Semantics {
    /// No limits, directories move, provenance is the layer itself.
    pub const PLAIN: Semantics = Semantics {
        max_depth: None,
        lower_dir_rename: LowerDirRename::Moves,
        provenance: Provenance::Own,
        page_cache: PageCache::PerLayer,
    };
}
