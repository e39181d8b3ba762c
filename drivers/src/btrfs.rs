//! btrfs: a subvolume per base layer, a writable snapshot per child layer, on the shared
//! copy-on-write engine ([`crate::cow`]): files are extents of 4 KiB sectors
//! (`btrfs.sectorsize`) in one pool file, reference counted and shared between snapshots
//! until written. One write allocates extents of up to 128 MiB, and an extent stays
//! allocated whole while any part of it is named (a partly overwritten or truncated
//! extent is a "bookend": its unnamed sectors are pinned, shown as `pinned` in usage).
//! Files of at most `btrfs.max_inline` bytes (2048) live inline in metadata, with no
//! data extent, as btrfs keeps them. A snapshot copies the subvolume's root pointer (O(1)); a write gives the
//! sectors it touches new places in the pool, so a file rewritten at random in a snapshot
//! is fragmented when read back. No page-cache sharing between snapshots.

use crate::cow::engine::{Engine, Geometry};
use crate::cow::{CowDriver, Figures, Flavor};
use crate::options::{check_pow2, pool_size, pool_size_option, OptionSpec};
use crate::store::Options;
use layerlab_core::size::human as format_size;
use layerlab_core::{Error, LayerId, LayerInfo, PageCache, Result, Usage};

/// The largest extent btrfs allocates for uncompressed data (`BTRFS_MAX_EXTENT_SIZE`).
pub const MAX_EXTENT: u64 = 128 << 20;

/// The btrfs flavor of the engine.
#[derive(Debug)]
pub struct BtrfsFlavor;

/// The btrfs backend (the driver is `Layers<Btrfs>`).
pub type Btrfs = CowDriver<BtrfsFlavor>;

impl Flavor for BtrfsFlavor {
    const NAME: &'static str = "btrfs";
    const DESCRIPTION: &'static str =
        "a subvolume per layer, a snapshot per child, refcounted 4 KiB extents in a pool file \
         (Docker's btrfs): O(1) snapshots, sector copy-on-write, flat lookup";
    const OPTIONS: &'static [OptionSpec] = &[
        OptionSpec {
            key: "btrfs.sectorsize",
            default: "4096",
            help: "sector size: the copy-on-write unit (4KiB to 64KiB)",
        },
        OptionSpec {
            key: "btrfs.max_inline",
            default: "2048",
            help: "files of at most this many bytes live in metadata, with no data extent \
                   (0 to 2048; 0: never)",
        },
        pool_size_option("btrfs.poolsize"),
    ];
    const MAGIC: &'static [u8; 8] = b"LLBTRFS5";
    const NOUN: &'static str = "subvolume";
    const ROOT_TREE: bool = true;
    /// `BTRFS_MAX_XATTR_SIZE` with 16 KiB nodes: an `XATTR_ITEM` lives in one leaf.
    const MAX_XATTR: Option<usize> = Some(16228);
    const PAGE_CACHE: PageCache = PageCache::PerLayer;

    fn geometry(options: &Options) -> Result<Geometry> {
        let unit = crate::options::size(Self::NAME, options, "btrfs.sectorsize")?;
        check_pow2(Self::NAME, "btrfs.sectorsize", unit, 4096, 65536)?;
        let pool_size = pool_size(Self::NAME, options, "btrfs.poolsize", unit)?;
        let max_inline = crate::options::size(Self::NAME, options, "btrfs.max_inline")?;
        if max_inline > 2048 {
            return Err(Error::InvalidOption {
                driver: Self::NAME.to_string(),
                key: "btrfs.max_inline".to_string(),
                reason: "must be from 0 to 2048 bytes".to_string(),
            });
        }
        Ok(Geometry {
            unit,
            compress: false,
            pool_size,
            max_extent: MAX_EXTENT,
            max_inline,
        })
    }

    fn subvol(id: &LayerId) -> String {
        id.dir_name()
    }

    fn snapshot(_id: &LayerId) -> Option<String> {
        None
    }

    fn usage(f: &Figures, _geo: &Geometry) -> Usage {
        let referenced = f.referenced_sectors * crate::cow::engine::SECTOR;
        let exclusive = f.exclusive_sectors * crate::cow::engine::SECTOR;
        f.usage(
            exclusive,
            &[
                ("referenced", referenced),
                ("exclusive", exclusive),
                ("shared", referenced - exclusive),
                ("pinned", f.pinned_sectors * crate::cow::engine::SECTOR),
                ("inline", f.inline_bytes),
            ],
        )
    }

    fn facts(eng: &Engine, _layers: &[LayerInfo]) -> Vec<(String, String)> {
        let names: Vec<&str> = eng.subvols.keys().map(String::as_str).collect();
        vec![
            ("Subvolumes".into(), names.len().to_string()),
            ("Subvolume list".into(), names.join(", ")),
            ("Sector size".into(), format_size(eng.geo.unit)),
            ("Largest extent".into(), format_size(eng.geo.max_extent)),
            (
                "max_inline".into(),
                format!(
                    "{} (files this small live in metadata, with no data extent)",
                    format_size(eng.geo.max_inline)
                ),
            ),
            (
                "Pinned by bookend extents".into(),
                format!(
                    "{} (parts of extents no file names, kept while another part is in use)",
                    format_size(eng.pinned_sectors() * crate::cow::engine::SECTOR)
                ),
            ),
            (
                "copy-on-write".into(),
                format!(
                    "{} sectors; a child is a writable snapshot of its parent's subvolume",
                    format_size(eng.geo.unit)
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests;
