//! The one mapping from a driver's error to the errno a program sees.

use fuser::Errno;
use layerlab_core::path::PathError;
use layerlab_core::{Error, ErrorKind};

/// The errno for a driver error. `EACCES` never comes from here: permissions are checked by
/// the kernel (`default_permissions`). `ELOOP` neither: the kernel follows symlinks.
pub fn errno(err: &Error) -> Errno {
    match err.kind() {
        ErrorKind::NotFound | ErrorKind::NoSuchLayer => Errno::ENOENT,
        ErrorKind::AlreadyExists => Errno::EEXIST,
        ErrorKind::NotADirectory => Errno::ENOTDIR,
        ErrorKind::IsADirectory => Errno::EISDIR,
        ErrorKind::DirectoryNotEmpty => Errno::ENOTEMPTY,
        ErrorKind::ReadOnlyLayer => Errno::EROFS,
        ErrorKind::CrossDevice => Errno::EXDEV,
        ErrorKind::NoSpace => Errno::ENOSPC,
        ErrorKind::InvalidArgument | ErrorKind::InvalidPath => Errno::EINVAL,
        ErrorKind::NoAttribute => Errno::ENODATA,
        ErrorKind::NotPermitted => Errno::EPERM,
        ErrorKind::Locked => Errno::EAGAIN,
        ErrorKind::Io => match err {
            Error::Io { source, .. } => source
                .raw_os_error()
                .map(Errno::from_i32)
                .unwrap_or(Errno::EIO),
            _ => Errno::EIO,
        },
        ErrorKind::HasChildren
        | ErrorKind::ParentNotCommitted
        | ErrorKind::TooManyLayers
        | ErrorKind::LayerExists
        | ErrorKind::InvalidLayerId
        | ErrorKind::InvalidOption
        | ErrorKind::NotAStore
        | ErrorKind::StoreExists
        | ErrorKind::Corrupt
        | ErrorKind::Checksum => Errno::EIO,
    }
}

/// The errno for a name the kernel handed us that is no layer path: too long, or one the
/// drivers reserve (`.wh.` names) or cannot hold.
pub fn name_errno(err: &PathError) -> Errno {
    match err {
        PathError::TooLong => Errno::ENAMETOOLONG,
        _ => Errno::EINVAL,
    }
}
