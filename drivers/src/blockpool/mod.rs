//! What the block-based drivers (devicemapper, and the btrfs/zfs engine in `cow`) share:
//! [`RefTable`], the reference count of every pool block (and through it the free list),
//! and [`MetaLog`], a crash-safe metadata file of two superblock slots and two areas, each
//! area a checkpoint followed by a log of records.
//!
//! [`Batch`] defers the fsyncs of a batch of writes to its end (the cow engine's batches).
//!
//! [`lookup_path`] is the path walk of both in-device filesystems (devicemapper's llfs,
//! the cow engine's trees). [`open_checked`] and [`examine_and_load`] open a pool's two files the one way both
//! drivers open them, for use and for `fsck`.
//!
//! Both were first written for devicemapper (see `devicemapper/FORMAT.md`, whose on-disk
//! layout [`MetaLog`] keeps byte for byte); the payloads of checkpoints and records are the
//! caller's.

mod batch;
mod files;
mod metalog;
mod refs;

pub use batch::Batch;
#[cfg(test)]
pub(crate) use metalog::rewrite_magic;
pub use metalog::{
    check_examined, data_regions, Damage, Examined, MetaFormat, MetaLog, Opened, Slot, Tail,
    RUN_FSCK,
};
pub use refs::RefTable;

pub(crate) use files::corrupt;
pub use files::{create_data, examine_and_load, open_checked, open_data, Checked, META_FILE};

use layerlab_core::{Error, FileKind, LayerId, LayerPath, Result};
use std::collections::BTreeMap;

/// The `Usage::details` key of a pool driver's pool size in bytes (the whole store's pool,
/// the same in every layer's usage; a mount's `statfs` reports it).
pub const POOL_BYTES: &str = "pool_bytes";
/// The `Usage::details` key of the bytes still free in that pool.
pub const POOL_FREE_BYTES: &str = "pool_free_bytes";

/// Adds a pool of `total` blocks of `block` bytes, `used` of them in use, to `details`.
pub fn pool_details(details: &mut BTreeMap<String, u64>, total: u64, used: u64, block: u64) {
    details.insert(POOL_BYTES.to_string(), total * block);
    details.insert(
        POOL_FREE_BYTES.to_string(),
        total.saturating_sub(used) * block,
    );
}

/// Walks `path` of `layer` in an in-device filesystem from its root directory `root`,
/// one name at a time, `child` giving the entry (`(inode, kind)`) a directory holds at a
/// name: what is at `path`, `None` when it is absent from an existing directory;
/// `NotADirectory` when an ancestor is not a directory, `NotFound` when one is missing.
pub fn lookup_path<I: Copy>(
    layer: &LayerId,
    path: &LayerPath,
    root: I,
    mut child: impl FnMut(I, &str) -> Result<Option<(I, FileKind)>>,
) -> Result<Option<(I, FileKind)>> {
    let mut cur = (root, FileKind::Dir);
    let names: Vec<&str> = path.components().collect();
    for (k, name) in names.iter().enumerate() {
        if cur.1 != FileKind::Dir {
            return Err(Error::NotADirectory {
                layer: layer.clone(),
                path: path.clone(),
            });
        }
        match child(cur.0, name)? {
            Some(x) => cur = x,
            None if k + 1 == names.len() => return Ok(None),
            None => {
                return Err(Error::NotFound {
                    layer: layer.clone(),
                    path: path.clone(),
                })
            }
        }
    }
    Ok(Some(cur))
}
