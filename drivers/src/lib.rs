//! layerlab-drivers: the storage drivers, each keeping its data in plain files under a
//! store directory, and the registry that names them.
//!
//! - [`vfs`]: a new layer is a full copy of its parent (Docker's vfs);
//! - [`overlay2`]: a `diff/` directory per layer over its lower chain, stored exactly as
//!   the kernel's overlay filesystem stores it;
//! - [`overlayfs`]: overlay2's on-disk layout and branch format, shared with the kernel
//!   reference driver;
//! - [`aufs`]: a branch directory per layer, whiteouts as `.wh.<name>` files (Docker's
//!   aufs layout and the aufs/OCI marker format);
//! - [`union`]: the union driver overlay2 and aufs share (stack walk, merge, copy-up);
//! - [`kernel`]: the kernel reference drivers (`kernel-overlay`, `kernel-btrfs`): the same
//!   layers with the real Linux filesystems doing the work;
//! - [`registry`]: every driver by name, and [`AnyDriver`], chosen once at the boundary;
//! - [`store`]: the layer table, the lock and atomic metadata every driver shares;
//! - [`fsck`]: what a check of a store found and repaired;
//! - [`hostfs`]: the host file operations the file-backed drivers share;
//! - [`warm`]: the dentry and page caches of the flat drivers, for the Meter.

pub mod aufs;
pub mod backend;
pub mod blockpool;
pub mod btrfs;
pub mod codec;
pub mod cow;
pub mod devicemapper;
pub mod front;
pub mod fsck;
pub mod hostfs;
pub mod journal;
pub mod kernel;
pub mod options;
pub mod overlay2;
pub mod overlayfs;
pub mod registry;
pub mod store;
#[cfg(test)]
pub(crate) mod testkit;
pub mod union;
pub mod vfs;
pub mod warm;
pub mod zfs;

pub use backend::{At, Backend, Cx, Lifecycle, Node, Rename};
pub use front::Layers;
pub use registry::{AnyDriver, DriverInfo, DRIVERS};
pub use store::{Access, MountRecord, Options};
