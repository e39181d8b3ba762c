//! What the block-based drivers (devicemapper, and the btrfs/zfs engine in `cow`) share:
//! [`RefTable`], the reference count of every pool block (and through it the free list),
//! and [`MetaLog`], a crash-safe metadata file of two superblock slots and two areas, each
//! area a checkpoint followed by a log of records.
//!
//! Both were first written for devicemapper (see `devicemapper/FORMAT.md`, whose on-disk
//! layout [`MetaLog`] keeps byte for byte); the payloads of checkpoints and records are the
//! caller's.

mod metalog;
mod refs;

#[cfg(test)]
pub(crate) use metalog::rewrite_magic;
pub use metalog::{check_examined, data_regions, Examined, MetaLog, Opened, Slot, Tail, RUN_FSCK};
pub use refs::RefTable;
