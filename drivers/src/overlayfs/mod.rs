//! The on-disk conventions of the kernel's overlay filesystem as Docker's overlay2 driver
//! lays them out, shared by `overlay2` (the model) and `kernel-overlay` (the reference
//! driver, which mounts the same directories with the real overlayfs):
//!
//! - [`layout`]: a layer's directories (`<dir>/diff`, `work`, `link`, `lower`), the `l/`
//!   short links, staging, the crash sweep, a `diff`'s usage;
//! - [`whiteout`]: the branch format: whiteouts as character devices 0/0, opaque
//!   directories and metacopy files as `trusted.overlay.*` (or `user.overlay.*`) xattrs.

pub mod layout;
pub mod whiteout;

pub use whiteout::OverlayFormat;

/// The deepest stack Docker's overlay2 allows (128 lower directories).
pub const MAX_DEPTH: usize = 128;
