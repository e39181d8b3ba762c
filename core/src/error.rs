//! Typed errors that mirror POSIX, each naming the layer and the path it is about.

use crate::{LayerId, LayerPath};
use std::path::PathBuf;

/// The result type of every layerlab library call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a driver. Display gives one line naming the layer and path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ENOENT: the path (or one of its parent directories) does not exist.
    #[error("layer {layer}: {path}: no such file or directory")]
    NotFound {
        /// The layer.
        layer: LayerId,
        /// The path looked up.
        path: LayerPath,
    },
    /// EEXIST.
    #[error("layer {layer}: {path}: already exists")]
    AlreadyExists {
        /// The layer.
        layer: LayerId,
        /// The path.
        path: LayerPath,
    },
    /// ENOTDIR: a directory was expected (the path or one of its parents is not one).
    #[error("layer {layer}: {path}: not a directory")]
    NotADirectory {
        /// The layer.
        layer: LayerId,
        /// The path.
        path: LayerPath,
    },
    /// EISDIR.
    #[error("layer {layer}: {path}: is a directory")]
    IsADirectory {
        /// The layer.
        layer: LayerId,
        /// The path.
        path: LayerPath,
    },
    /// ENOTEMPTY.
    #[error("layer {layer}: {path}: directory not empty")]
    DirectoryNotEmpty {
        /// The layer.
        layer: LayerId,
        /// The path.
        path: LayerPath,
    },
    /// EROFS: the layer is committed.
    #[error("layer {layer}: {path}: layer is committed (read-only)")]
    ReadOnlyLayer {
        /// The layer.
        layer: LayerId,
        /// The path the change was aimed at (`/` for whole-layer changes).
        path: LayerPath,
    },
    /// The layer has children and cannot be removed.
    #[error("layer {layer}: has children ({children}); remove them first")]
    HasChildren {
        /// The layer.
        layer: LayerId,
        /// Its children, comma separated.
        children: String,
    },
    /// Only committed layers may have children.
    #[error("layer {layer}: parent {parent} is not committed")]
    ParentNotCommitted {
        /// The layer being created.
        layer: LayerId,
        /// Its parent.
        parent: LayerId,
    },
    /// EXDEV: the driver cannot do this in place (overlayfs renaming a lower directory).
    #[error("layer {layer}: {path}: cross-device rename ({why})")]
    CrossDevice {
        /// The layer.
        layer: LayerId,
        /// The path.
        path: LayerPath,
        /// Why, in the driver's terms.
        why: String,
    },
    /// ENOSPC.
    #[error("layer {layer}: {path}: no space left on {what}")]
    NoSpace {
        /// The layer.
        layer: LayerId,
        /// The path being written.
        path: LayerPath,
        /// What is full (a pool, a device).
        what: String,
    },
    /// The stack would be deeper than the driver allows.
    #[error("layer {layer}: stack depth {depth} exceeds the {driver} limit of {max} layers")]
    TooManyLayers {
        /// The layer being created.
        layer: LayerId,
        /// Its depth.
        depth: usize,
        /// The limit.
        max: usize,
        /// The driver.
        driver: String,
    },
    /// A path was refused before anything was done.
    #[error("{path:?}: invalid path: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// EINVAL: the operation makes no sense for this path.
    #[error("layer {layer}: {path}: invalid argument: {reason}")]
    InvalidArgument {
        /// The layer.
        layer: LayerId,
        /// The path.
        path: LayerPath,
        /// Why.
        reason: String,
    },
    /// ENODATA: the entry has no extended attribute of that name.
    #[error("layer {layer}: {path}: no extended attribute {name}")]
    NoAttribute {
        /// The layer.
        layer: LayerId,
        /// The path.
        path: LayerPath,
        /// The attribute's name.
        name: String,
    },
    /// EPERM: the operation is not permitted on this entry or name.
    #[error("layer {layer}: {path}: operation not permitted ({reason})")]
    NotPermitted {
        /// The layer.
        layer: LayerId,
        /// The path.
        path: LayerPath,
        /// Why.
        reason: String,
    },
    /// The layer does not exist.
    #[error("layer {layer}: no such layer")]
    NoSuchLayer {
        /// The layer.
        layer: LayerId,
    },
    /// A layer with this id exists already.
    #[error("layer {layer}: already exists")]
    LayerExists {
        /// The layer.
        layer: LayerId,
    },
    /// A layer id was refused.
    #[error("invalid layer id: {0}")]
    InvalidLayerId(String),
    /// A driver option was refused.
    #[error("driver {driver}: option {key}: {reason}")]
    InvalidOption {
        /// The driver.
        driver: String,
        /// The option key.
        key: String,
        /// Why.
        reason: String,
    },
    /// Another process holds the store's lock.
    #[error("{store}: store is locked by another process ({detail})")]
    Locked {
        /// The store root.
        store: PathBuf,
        /// What the lock says.
        detail: String,
    },
    /// The directory holds no layerlab store.
    #[error(
        "{root}: not a layerlab store (no store.json); run `layerlab init --driver NAME` first"
    )]
    NotAStore {
        /// The directory.
        root: PathBuf,
    },
    /// `init` was pointed at a directory that already holds a store or other files.
    #[error("{root}: cannot create a store here: {detail}")]
    StoreExists {
        /// The directory.
        root: PathBuf,
        /// What is there.
        detail: String,
    },
    /// A store file could not be understood.
    #[error("{path}: corrupt store: {detail}")]
    Corrupt {
        /// The host file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// EIO: stored bytes failed their checksum; nothing of them was returned.
    #[error(
        "layer {layer}: {path}: input/output error: checksum mismatch in {file} at byte \
         {offset}; run `layerlab fsck`"
    )]
    Checksum {
        /// The layer read.
        layer: LayerId,
        /// The path read.
        path: LayerPath,
        /// The host file holding the bad bytes (a pool).
        file: PathBuf,
        /// Where in it (a pool offset).
        offset: u64,
    },
    /// An I/O error on a host file.
    #[error("{path}: {source}")]
    Io {
        /// The host path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The kind of an [`Error`], for comparing drivers with the reference model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    NotADirectory,
    IsADirectory,
    DirectoryNotEmpty,
    ReadOnlyLayer,
    HasChildren,
    ParentNotCommitted,
    CrossDevice,
    NoSpace,
    TooManyLayers,
    InvalidPath,
    InvalidArgument,
    NoAttribute,
    NotPermitted,
    NoSuchLayer,
    LayerExists,
    InvalidLayerId,
    InvalidOption,
    Locked,
    NotAStore,
    StoreExists,
    Corrupt,
    Checksum,
    Io,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::NotADirectory { .. } => ErrorKind::NotADirectory,
            Error::IsADirectory { .. } => ErrorKind::IsADirectory,
            Error::DirectoryNotEmpty { .. } => ErrorKind::DirectoryNotEmpty,
            Error::ReadOnlyLayer { .. } => ErrorKind::ReadOnlyLayer,
            Error::HasChildren { .. } => ErrorKind::HasChildren,
            Error::ParentNotCommitted { .. } => ErrorKind::ParentNotCommitted,
            Error::CrossDevice { .. } => ErrorKind::CrossDevice,
            Error::NoSpace { .. } => ErrorKind::NoSpace,
            Error::TooManyLayers { .. } => ErrorKind::TooManyLayers,
            Error::InvalidPath { .. } => ErrorKind::InvalidPath,
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::NoAttribute { .. } => ErrorKind::NoAttribute,
            Error::NotPermitted { .. } => ErrorKind::NotPermitted,
            Error::NoSuchLayer { .. } => ErrorKind::NoSuchLayer,
            Error::LayerExists { .. } => ErrorKind::LayerExists,
            Error::InvalidLayerId(_) => ErrorKind::InvalidLayerId,
            Error::InvalidOption { .. } => ErrorKind::InvalidOption,
            Error::Locked { .. } => ErrorKind::Locked,
            Error::NotAStore { .. } => ErrorKind::NotAStore,
            Error::StoreExists { .. } => ErrorKind::StoreExists,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Checksum { .. } => ErrorKind::Checksum,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// Wraps an I/O error with the host path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Parses a path given by a user, as [`LayerPath::parse`], with a typed error.
    pub fn parse_path(raw: &str) -> Result<LayerPath> {
        LayerPath::parse(raw).map_err(|e| Error::InvalidPath {
            path: raw.to_string(),
            reason: e.to_string(),
        })
    }

    /// Parses a layer id given by a user, with a typed error.
    pub fn parse_id(raw: &str) -> Result<LayerId> {
        LayerId::new(raw).map_err(Error::InvalidLayerId)
    }
}

/// Adds the host path to `std::io::Result`s.
pub trait IoContext<T> {
    /// Maps an I/O error to [`Error::Io`] naming `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
