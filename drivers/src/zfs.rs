//! zfs: a dataset per base layer (`layerlab/<id>`); committing a layer takes a snapshot
//! (`layerlab/<id>@commit`); a child layer is a clone of its parent's snapshot, as
//! Docker's zfs driver does. On the shared copy-on-write engine ([`crate::cow`]), the unit
//! is the record (`zfs.recordsize`, 128 KiB): a 1-byte write rewrites its whole record.
//! With `zfs.compression=lz4` every record is LZ4-compressed and stored in as many 4 KiB
//! pool sectors as it needs. Clones share cached blocks in the ARC.

use crate::cow::engine::{Engine, Geometry, SECTOR};
use crate::cow::{CowDriver, Figures, Flavor};
use crate::options::OptionSpec;
use crate::options::{check_pow2, pool_size, pool_size_option};
use crate::store::Options;
use layerlab_core::size::human as format_size;
use layerlab_core::{Error, LayerId, LayerInfo, LayerState, PageCache, Result, Usage};

/// The zfs flavor of the engine.
#[derive(Debug)]
pub struct ZfsFlavor;

/// The zfs backend (the driver is `Layers<Zfs>`).
pub type Zfs = CowDriver<ZfsFlavor>;

/// The pool's name in dataset names.
pub const POOL: &str = "layerlab";

impl Flavor for ZfsFlavor {
    const NAME: &'static str = "zfs";
    const DESCRIPTION: &'static str =
        "a dataset per layer, a snapshot at commit, a clone per child, 128 KiB records in a \
         pool file, optional lz4 compression (Docker's zfs): record copy-on-write, flat lookup";
    const OPTIONS: &'static [OptionSpec] = &[
        OptionSpec {
            key: "zfs.recordsize",
            default: "128KiB",
            help: "record size: the copy-on-write unit (4KiB to 1MiB)",
        },
        OptionSpec {
            key: "zfs.compression",
            default: "off",
            help: "off or lz4: compress every record",
        },
        pool_size_option("zfs.poolsize"),
    ];
    const MAGIC: &'static [u8; 8] = b"LLZFSPL5";
    const NOUN: &'static str = "dataset";
    const ROOT_TREE: bool = false;
    /// A system attribute too big for the dnode spills to a hidden xattr directory.
    const MAX_XATTR: Option<usize> = None;
    const PAGE_CACHE: PageCache = PageCache::SharedLowerFiles;

    fn geometry(options: &Options) -> Result<Geometry> {
        let unit = crate::options::size(Self::NAME, options, "zfs.recordsize")?;
        check_pow2(Self::NAME, "zfs.recordsize", unit, 4096, 1 << 20)?;
        let compress = match options.get("zfs.compression").map(String::as_str) {
            None | Some("off") => false,
            Some("lz4" | "on") => true,
            Some(other) => {
                return Err(Error::InvalidOption {
                    driver: Self::NAME.into(),
                    key: "zfs.compression".into(),
                    reason: format!("'{other}' is not off or lz4"),
                })
            }
        };
        let pool_size = pool_size(Self::NAME, options, "zfs.poolsize", unit)?;
        Ok(Geometry {
            unit,
            compress,
            pool_size,
            // every record is a block of its own, freed on its own
            max_extent: unit,
            // no inline files (zfs's embedded block pointers are not modelled)
            max_inline: 0,
        })
    }

    fn subvol(id: &LayerId) -> String {
        format!("{POOL}/{}", id.dir_name())
    }

    fn snapshot(id: &LayerId) -> Option<String> {
        Some(format!("{POOL}/{}@commit", id.dir_name()))
    }

    fn usage(f: &Figures, geo: &Geometry) -> Usage {
        let referenced = f.referenced_sectors * SECTOR;
        let used = f.exclusive_sectors * SECTOR;
        let ratio_x100 = (f.logical_bytes * 100)
            .checked_div(referenced)
            .unwrap_or(100);
        f.usage(
            used,
            &[
                ("used", used),
                ("referenced", referenced),
                ("logical_referenced", f.logical_bytes),
                ("allocated", referenced),
                ("shared", referenced - used),
                ("compressratio_x100", ratio_x100),
                ("recordsize", geo.unit),
            ],
        )
    }

    fn facts(eng: &Engine, layers: &[LayerInfo]) -> Vec<(String, String)> {
        let mut datasets = Vec::new();
        let mut snapshots = Vec::new();
        let mut clones = Vec::new();
        for l in layers {
            let ds = Self::subvol(&l.id);
            match &l.parent {
                Some(p) => clones.push(format!(
                    "{ds} (origin {})",
                    Self::snapshot(p).unwrap_or_default()
                )),
                None => datasets.push(ds),
            }
            if l.state == LayerState::Committed {
                snapshots.extend(Self::snapshot(&l.id));
            }
        }
        let all: Vec<String> = eng.subvols.keys().cloned().collect();
        let f = eng.figures(&all);
        let ratio = if f.referenced_sectors == 0 {
            1.0
        } else {
            f.logical_bytes as f64 / (f.referenced_sectors * SECTOR) as f64
        };
        vec![
            ("Zpool".into(), POOL.to_string()),
            ("Datasets".into(), datasets.join(", ")),
            ("Clones".into(), clones.join(", ")),
            ("Snapshots".into(), snapshots.join(", ")),
            ("recordsize".into(), format_size(eng.geo.unit)),
            (
                "compression".into(),
                if eng.geo.compress { "lz4" } else { "off" }.to_string(),
            ),
            ("compressratio".into(), format!("{ratio:.2}x")),
            (
                "copy-on-write".into(),
                format!(
                    "{} records; a child is a clone of its parent's @commit snapshot",
                    format_size(eng.geo.unit)
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests;
