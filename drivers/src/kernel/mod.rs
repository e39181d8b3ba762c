//! The kernel reference drivers: the same layers as the models, but the real Linux
//! filesystems doing the work, so that the models can be checked against them.
//!
//! - [`kernel_overlay`]: overlay2's layout, every view a real overlay mount;
//! - [`kernel_btrfs`]: a loop-mounted btrfs in a file of the store, a subvolume per base
//!   layer and a snapshot per child;
//! - [`mount`]: the mount helpers, the unmount-on-drop guard, the availability checks;
//! - `ops`: the kernel drivers' `Backend`, written once over `HostTree`
//!   (how a driver finds a layer's view as a host tree, and whether writes are synced);
//! - [`tree`]: the host-tree primitives those operations call.
//!
//! Both need root and the filesystem in the kernel; elsewhere they are registered but
//! unavailable ([`crate::Lifecycle::availability`]).

pub mod kernel_btrfs;
pub mod kernel_overlay;
pub mod mount;
mod ops;
pub mod tree;

pub use kernel_btrfs::KernelBtrfs;
pub use kernel_overlay::KernelOverlay;
