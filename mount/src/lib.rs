//! `layerlab-mount`: any driver's layer served as a live filesystem through FUSE.
//!
//! [`LayerFs`] implements `fuser::Filesystem` over a `LayerDriver`: every request is a
//! call of the driver (through `AnyDriver`, so dispatch is static), so a shell's `echo x >>
//! /etc/motd` is overlay2's copy-up or btrfs's sector write, counted in the driver's Meter.
//! [`serve`] mounts one layer of a store and serves it until it is unmounted; the store is
//! opened per burst of requests ([`conn`]), and a mount record ([`MountRecord`]) makes every
//! other process refuse to change the mounted layer.
//!
//! Between requests the server keeps an exact [`cache`] of the view (attributes, listings
//! of directories made here), right because no other process may change a mounted layer.
//!
//! What the trait cannot say is documented where it matters: inode identity of hard links
//! made before the mount ([`inodes`]), per-file allocation (`st_blocks` is size-based,
//! [`attr::file_attr`]), atomic exchange (`RENAME_EXCHANGE` gives EINVAL). `statfs` is
//! the pool of a pool driver (from its usage), the host filesystem under the store for the
//! file-based drivers, whose files are host files.

pub mod attr;
pub mod cache;
pub mod conn;
pub mod errno;
mod fs;
pub mod inodes;
mod serve;

pub use conn::{Conn, Totals, Tracer};
pub use fs::{Caching, LayerFs};
pub use fuser::Errno;
pub use layerlab_drivers::MountRecord;
pub use serve::{
    fuse_available, preflight, record_at, serve, take_totals, totals_path, unmount, MountRequest,
};

use std::path::PathBuf;

/// What can go wrong mounting or unmounting, with the directory or store it concerns.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The store refused (no such layer, locked, corrupt).
    #[error(transparent)]
    Store(#[from] layerlab_core::Error),
    /// The mount directory is a mount whose server is gone.
    #[error("{dir}: stale mount (its server is gone: transport endpoint is not connected); run `layerlab umount {dir}` to clear it")]
    Stale {
        /// The directory.
        dir: PathBuf,
    },
    /// The layer is served already.
    #[error("layer {layer} is mounted already at {dir} by pid {pid}")]
    AlreadyMounted {
        /// The layer.
        layer: layerlab_core::LayerId,
        /// Where.
        dir: PathBuf,
        /// The server.
        pid: u32,
    },
    /// No mount of this store at the directory.
    #[error("{dir}: no layer of this store is mounted here")]
    NotMounted {
        /// The directory.
        dir: PathBuf,
    },
    /// FUSE or the mount system call failed.
    #[error("{dir}: {what}: {source}")]
    Fuse {
        /// The directory.
        dir: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
