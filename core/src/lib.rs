//! layerlab-core: what every storage driver shares.
//!
//! - [`LayerDriver`], the one trait every driver implements, with its contract;
//! - [`LayerPath`] and [`LayerId`], validated once at the boundary;
//! - [`Error`], typed errors mirroring POSIX, each naming the layer and the path;
//! - [`Meter`], the deterministic counts of what each operation did;
//! - [`rules`], the preconditions of every operation, and [`changes`], the changeset
//!   definition, written once and used by every driver;
//! - [`model::ReferenceModel`], the in-memory oracle of the union semantics;
//! - [`ops`], compound operations (`mkdir -p`, `rm -r`, whole-file read and write);
//! - [`links`], hard-link groups of a view inferred from what the trait reports;
//! - [`size`] and [`mode`], the one reading of a size (`10GiB`, `10GB`) and of a numeric
//!   mode (`01705`) for the whole project; [`time`], times as `secs.fraction` and the
//!   clock changes are stamped with.
//!
//! No clap, toml or plotters here: this crate is the contract, not a tool.

pub mod changes;
mod driver;
mod error;
mod id;
pub mod links;
pub mod meter;
pub mod mode;
pub mod model;
pub mod ops;
pub mod path;
pub mod rules;
pub mod size;
pub mod time;
mod types;

pub use driver::LayerDriver;
pub use error::{Error, ErrorKind, IoContext, Result};
pub use id::LayerId;
pub use meter::{Counts, Meter};
pub use path::LayerPath;
pub use types::{dev_parts, makedev};
pub use types::{
    Change, ChangeKind, DirEntry, DriverStatus, FileKind, LayerInfo, LayerState, LowerDirRename,
    Metadata, Node, PageCache, Provenance, Semantics, Usage, MODE_MASK, SYMLINK_MODE,
};
