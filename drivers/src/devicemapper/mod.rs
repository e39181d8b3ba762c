//! devicemapper: Docker's devicemapper driver in `loop-lvm` mode, modelled on two sparse
//! plain files. A thin pool (`<root>/devicemapper/data` and `.../metadata`) is cut into
//! blocks of `dm.blocksize` (64 KiB); every layer is a thin device, a map from its logical
//! blocks to reference-counted pool blocks, holding a filesystem of its own ([`fs`]). A
//! child layer is a snapshot: its parent's map copied, reference counts bumped, no data
//! copied. The copy-on-write unit is the block: the first write into a block a device
//! shares (data or filesystem metadata: a chmod dirties the inode table block) copies that
//! whole block to a fresh pool block. Lookup is flat: one filesystem per device.
//!
//! Modules: [`pool`] (the two files, reference counts, free blocks, crash-safe metadata
//! log), [`thin`] (device maps, snapshots, one operation's block writes), [`fs`] (the
//! in-device filesystem). The on-disk format and the
//! write order are in `FORMAT.md` beside this file.

mod check;
mod dirindex;
pub mod fs;
pub mod pool;
mod reserve;
pub mod thin;

use crate::backend::{At, Backend, Cx, Lifecycle, Node, Rename};
use crate::options::OptionSpec;
use crate::store::{Options, Store};
use crate::warm::WarmCache;
use fs::Fs;
use layerlab_core::size::human as format_size;
use layerlab_core::{
    DirEntry, Error, FileKind, LayerId, LayerInfo, LayerPath, Metadata, Meter, Result, Semantics,
    Usage,
};
use pool::{Geometry, Pool};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thin::{MetaOp, Txn};

/// The devicemapper backend: the pool and the caches the Meter sees.
#[derive(Debug)]
pub struct Devicemapper {
    warm: WarmCache,
    pool: Pool,
}

fn invalid(key: &str, reason: String) -> Error {
    Error::InvalidOption {
        driver: Devicemapper::NAME.to_string(),
        key: key.to_string(),
        reason,
    }
}

fn size_opt(options: &Options, key: &str) -> Result<u64> {
    crate::options::size(Devicemapper::NAME, options, key)
}

/// The pool geometry the options ask for, checked.
fn geometry(options: &Options) -> Result<Geometry> {
    let geo = Geometry {
        block_size: size_opt(options, "dm.blocksize")?,
        data_size: size_opt(options, "dm.loopdatasize")?,
        meta_size: size_opt(options, "dm.loopmetadatasize")?,
        base_size: size_opt(options, "dm.basesize")?,
    };
    let bs = geo.block_size;
    if !bs.is_power_of_two() || !(4096..=(1 << 30)).contains(&bs) {
        return Err(invalid(
            "dm.blocksize",
            "must be a power of two from 4KiB to 1GiB".into(),
        ));
    }
    if geo.data_blocks() < 4 || geo.data_blocks() >= u64::from(u32::MAX) {
        return Err(invalid(
            "dm.loopdatasize",
            format!("must hold 4 to 2^32-1 blocks of {}", format_size(bs)),
        ));
    }
    if geo.meta_size < (64 << 10) {
        return Err(invalid(
            "dm.loopmetadatasize",
            "must be at least 64KiB".into(),
        ));
    }
    let min = fs::reserved_blocks(bs, geo.device_blocks()) + 1;
    if geo.device_blocks() < min || geo.device_blocks() >= u64::from(u32::MAX) {
        return Err(invalid(
            "dm.basesize",
            format!(
                "must hold {min} to 2^32-1 blocks of {} (the filesystem's inode table needs {})",
                format_size(bs),
                format_size((min - 1) * bs)
            ),
        ));
    }
    Ok(geo)
}

/// The filesystem of `at.layer`'s device, for an operation on `at.path`.
fn open_fs<'a>(pool: &'a mut Pool, store: &Store, at: At<'_>) -> Result<Fs<'a>> {
    let (layer, path) = (at.layer, at.path);
    let dev = layer.dir_name();
    if !pool.devices.contains_key(&dev) {
        return Err(Error::Corrupt {
            path: pool.meta_path(),
            detail: format!("layer {layer} has no thin device"),
        });
    }
    // the origin's device, named in the trace of a block copy
    let parent = store.info(layer)?.parent.map(|p| {
        let d = p.dir_name();
        (p, d)
    });
    Ok(Fs::new(Txn::new(pool, dev, layer, path, parent)))
}

impl Devicemapper {
    fn base(root: &Path) -> PathBuf {
        root.join("devicemapper")
    }

    /// The pool (for inspection and tests).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Compacts the pool's metadata log into a checkpoint now (tests, tools); false when
    /// there was nothing to compact.
    pub fn compact(&mut self, cx: &mut Cx<'_>) -> Result<bool> {
        cx.store.writable()?;
        self.pool.compact(cx.meter)
    }

    /// Commits pool metadata ops (no data blocks): NoSpace when the metadata is full.
    fn meta_commit(&mut self, meter: &mut Meter, layer: &LayerId, ops: &[MetaOp]) -> Result<()> {
        if !self.pool.make_log_room(Pool::record_len(ops), meter)? {
            return Err(Error::NoSpace {
                layer: layer.clone(),
                path: LayerPath::root(),
                what: self.pool.what_meta(),
            });
        }
        // deleting a device takes no pool block: it may use the host reserve
        let releasing = ops.iter().all(|op| matches!(op, MetaOp::Delete { .. }));
        self.pool.commit(ops, releasing, meter).map(|_| ())
    }

    fn delete_device(&mut self, meter: &mut Meter, layer: &LayerId, name: &str) -> Result<()> {
        let freed_before = self.pool.free_blocks();
        self.meta_commit(
            meter,
            layer,
            &[MetaOp::Delete {
                name: name.to_string(),
            }],
        )?;
        let freed = self.pool.free_blocks() - freed_before;
        meter.step(|| format!("thin device {name} deleted: {freed} pool block(s) freed"));
        Ok(())
    }

    /// Deletes the thin devices the layer table does not name (left by a crash).
    fn sweep(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        let known: Vec<String> = cx
            .store
            .table()
            .infos()
            .iter()
            .map(|i| i.id.dir_name())
            .collect();
        let stale: Vec<String> = self
            .pool
            .devices
            .keys()
            .filter(|d| !known.contains(d))
            .cloned()
            .collect();
        for name in stale {
            let id = LayerId::new(&name.replace('+', ":")).map_err(|e| Error::Corrupt {
                path: self.pool.meta_path(),
                detail: e,
            })?;
            self.delete_device(cx.meter, &id, &name)?;
        }
        Ok(())
    }

    /// A snapshot of `parent`'s device: its map copied, a reference added to each block.
    fn snapshot(&mut self, meter: &mut Meter, id: &LayerId, parent: &LayerId) -> Result<()> {
        let origin = parent.dir_name();
        let (nblocks, mapped) = self
            .pool
            .devices
            .get(&origin)
            .map(|d| (d.nblocks, d.mapped()))
            .ok_or_else(|| Error::Corrupt {
                path: self.pool.meta_path(),
                detail: format!("layer {parent} has no thin device"),
            })?;
        self.meta_commit(
            meter,
            id,
            &[MetaOp::Create {
                name: id.dir_name(),
                nblocks,
                origin: Some(origin),
            }],
        )?;
        meter.step(|| {
            format!(
                "snapshot of {parent}: copy its block map ({mapped} mapped blocks) and add a \
                 reference to each; no data copied"
            )
        });
        Ok(())
    }

    /// A new, empty thin device with a fresh filesystem.
    fn new_device(&mut self, meter: &mut Meter, id: &LayerId) -> Result<()> {
        let name = id.dir_name();
        let nblocks = self.pool.geo.device_blocks();
        self.meta_commit(
            meter,
            id,
            &[MetaOp::Create {
                name: name.clone(),
                nblocks,
                origin: None,
            }],
        )?;
        let bs = self.pool.geo.block_size;
        meter.step(|| {
            format!(
                "new thin device for {id}: {} virtual, nothing mapped; mkfs",
                format_size(nblocks * bs)
            )
        });
        let root = LayerPath::root();
        let made = {
            let mut fs = Fs::new(Txn::new(&mut self.pool, name.clone(), id, &root, None));
            fs.mkfs().and_then(|()| fs.tx.commit(meter))
        };
        if let Err(e) = made {
            let _ = self.delete_device(meter, id, &name);
            return Err(e);
        }
        Ok(())
    }

    /// Runs a change at `at` on the layer's filesystem and commits it (nothing on failure).
    fn change(
        &mut self,
        cx: &mut Cx<'_>,
        at: At<'_>,
        f: impl FnOnce(&mut Fs<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut fs = open_fs(&mut self.pool, cx.store, at)?;
        f(&mut fs)?;
        fs.tx.commit(cx.meter)
    }

    /// Reads at `at` through the layer's filesystem.
    fn view<T>(
        &mut self,
        store: &Store,
        at: At<'_>,
        f: impl FnOnce(&Fs<'_>) -> Result<T>,
    ) -> Result<T> {
        let fs = open_fs(&mut self.pool, store, at)?;
        f(&fs)
    }

    /// The pool's facts, as `docker info` prints them for devicemapper.
    fn pool_facts(&self, store: &Store) -> Vec<(String, String)> {
        let g = self.pool.geo;
        let used = self.pool.used_blocks() * g.block_size;
        let total = g.data_blocks() * g.block_size;
        let (gen, seq) = self.pool.generation();
        vec![
            ("layers".into(), store.table().infos().len().to_string()),
            ("Thin devices".into(), self.pool.devices.len().to_string()),
            ("Pool Blocksize".into(), format_size(g.block_size)),
            ("Base Device Size".into(), format_size(g.base_size)),
            (
                "Data file".into(),
                self.pool.data_path().display().to_string(),
            ),
            (
                "Metadata file".into(),
                self.pool.meta_path().display().to_string(),
            ),
            ("Data Space Used".into(), format_size(used)),
            ("Data Space Total".into(), format_size(total)),
            ("Data Space Available".into(), format_size(total - used)),
            (
                "Data blocks used".into(),
                self.pool.used_blocks().to_string(),
            ),
            ("Data blocks total".into(), g.data_blocks().to_string()),
            (
                "Metadata Space Used".into(),
                format_size(self.pool.meta_used()),
            ),
            ("Metadata Space Total".into(), format_size(g.meta_size)),
            (
                "Metadata generation".into(),
                format!("{gen} (next record {seq})"),
            ),
            (
                "copy-on-write".into(),
                format!(
                    "{} blocks; a child is a snapshot of its parent's map",
                    format_size(g.block_size)
                ),
            ),
        ]
    }
}

impl Lifecycle for Devicemapper {
    const NAME: &'static str = "devicemapper";
    const DESCRIPTION: &'static str =
        "thin devices in a pool of 64 KiB blocks on two sparse files (Docker's devicemapper, \
         loop-lvm): snapshots share blocks, block copy-on-write, flat lookup";
    const OPTIONS: &'static [OptionSpec] = &[
        OptionSpec {
            key: "dm.loopdatasize",
            default: "8GiB",
            help: "size of the sparse pool data file",
        },
        OptionSpec {
            key: "dm.loopmetadatasize",
            default: "256MiB",
            help: "size of the sparse pool metadata file",
        },
        OptionSpec {
            key: "dm.blocksize",
            default: "64KiB",
            help: "pool block size: the copy-on-write unit",
        },
        OptionSpec {
            key: "dm.basesize",
            default: "10GiB",
            help: "virtual size of every thin device (writes past it fail with no space)",
        },
    ];

    fn settle_options(options: Options) -> Result<Options> {
        geometry(&options)?;
        Ok(options)
    }

    fn init(cx: &mut Cx<'_>) -> Result<Self> {
        let geo = geometry(cx.store.options())?;
        let pool = Pool::create(&Self::base(cx.store.root()), geo)?;
        Ok(Devicemapper {
            warm: WarmCache::default(),
            pool,
        })
    }

    fn open(cx: &mut Cx<'_>) -> Result<Self> {
        let writable = cx.store.writable().is_ok();
        let pool = Pool::open(&Self::base(cx.store.root()), writable)?;
        let mut d = Devicemapper {
            warm: WarmCache::default(),
            pool,
        };
        if writable {
            d.sweep(cx)?;
        }
        Ok(d)
    }

    fn check(cx: &mut Cx<'_>, repair: bool, report: &mut crate::fsck::CheckReport) -> Result<()> {
        check::check(cx, &Self::base(cx.store.root()), repair, report)
    }

    fn semantics(&self) -> Semantics {
        Semantics::PLAIN
    }

    fn make_layer(&mut self, cx: &mut Cx<'_>, new: &LayerInfo) -> Result<()> {
        let (id, parent) = (&new.id, new.parent.as_ref());
        let name = id.dir_name();
        if self.pool.devices.contains_key(&name) {
            // left by a crash before the layer table named it
            self.delete_device(cx.meter, id, &name)?;
        }
        // made here: the host has its root cached
        self.warm.made_layer(id);
        match parent {
            Some(p) => self.snapshot(cx.meter, id, p),
            None => self.new_device(cx.meter, id),
        }
    }

    fn drop_layer(&mut self, cx: &mut Cx<'_>, id: &LayerId) -> Result<()> {
        self.warm.forget_layer(id);
        let name = id.dir_name();
        if self.pool.devices.contains_key(&name) {
            self.delete_device(cx.meter, id, &name)?;
        }
        Ok(())
    }

    fn usage(&mut self, cx: &mut Cx<'_>, layer: &LayerId) -> Result<Usage> {
        let name = layer.dir_name();
        let (mapped, exclusive, owned) = {
            let dev = self.pool.devices.get(&name).ok_or_else(|| Error::Corrupt {
                path: self.pool.meta_path(),
                detail: format!("layer {layer} has no thin device"),
            })?;
            let mut owned = std::collections::BTreeSet::new();
            for (l, &p1) in dev.map().iter().enumerate() {
                if p1 != 0 && self.pool.refs(p1 - 1) == 1 {
                    owned.insert(l as u32);
                }
            }
            (dev.mapped(), owned.len() as u64, owned)
        };
        let root = LayerPath::root();
        let inodes = self.view(cx.store, At::new(layer, &root), |fs| {
            fs.count_inodes(|l| owned.contains(&l))
        })?;
        let bs = self.pool.geo.block_size;
        let mut details = BTreeMap::new();
        details.insert("exclusive_blocks".to_string(), exclusive);
        details.insert("mapped_blocks".to_string(), mapped);
        details.insert("shared_blocks".to_string(), mapped - exclusive);
        details.insert("mapped_bytes".to_string(), mapped * bs);
        details.insert("block_size".to_string(), bs);
        let g = self.pool.geo;
        crate::blockpool::pool_details(&mut details, g.data_blocks(), self.pool.used_blocks(), bs);
        Ok(Usage {
            bytes: exclusive * bs,
            inodes,
            details,
        })
    }

    fn begin_batch(&mut self) {
        self.pool.begin_batch();
    }

    fn end_batch(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        self.pool.end_batch(cx.meter)
    }

    fn facts(&self, store: &Store) -> Result<(PathBuf, Vec<(String, String)>)> {
        Ok((Self::base(store.root()), self.pool_facts(store)))
    }
}

impl Backend for Devicemapper {
    fn resolve(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Option<FileKind>> {
        self.warm.lookup(at.layer, at.path, cx.meter);
        self.view(cx.store, at, |fs| Ok(fs.lookup(at.path)?.map(|x| x.1)))
    }

    fn is_empty_dir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<bool> {
        let list = self.view(cx.store, at, |fs| fs.readdir(at.path))?;
        cx.meter.counts.entries_scanned += list.len().min(1) as u64;
        Ok(list.is_empty())
    }

    fn stat(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Metadata> {
        self.view(cx.store, at, |fs| fs.stat(at.path, at.layer))
    }

    fn read(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, len: u64) -> Result<Vec<u8>> {
        let data = self.view(cx.store, at, |fs| fs.read(at.path, offset, len))?;
        cx.meter.counts.reads += 1;
        cx.meter.counts.bytes_read += data.len() as u64;
        Ok(data)
    }

    fn readdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<DirEntry>> {
        let list = self.view(cx.store, at, |fs| fs.readdir(at.path))?;
        cx.meter.counts.entries_scanned += list.len() as u64;
        Ok(list)
    }

    fn create(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        self.change(cx, at, |fs| fs.make(at.path, FileKind::File, mode, &[]))
    }

    fn write(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, data: &[u8]) -> Result<()> {
        if offset == u64::MAX || offset.checked_add(data.len() as u64).is_none() {
            return Err(Error::InvalidArgument {
                layer: at.layer.clone(),
                path: at.path.clone(),
                reason: "offset too large".into(),
            });
        }
        if data.is_empty() {
            // pwrite(2) of nothing changes nothing, even past the end
            return Ok(());
        }
        self.change(cx, at, |fs| fs.write(at.path, offset, data))?;
        cx.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn append(&mut self, cx: &mut Cx<'_>, at: At<'_>, data: &[u8]) -> Result<()> {
        self.change(cx, at, |fs| fs.write(at.path, u64::MAX, data))?;
        cx.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn truncate(&mut self, cx: &mut Cx<'_>, at: At<'_>, size: u64) -> Result<()> {
        self.change(cx, at, |fs| fs.truncate(at.path, size))
    }

    fn mkdir(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        self.change(cx, at, |fs| fs.make(at.path, FileKind::Dir, mode, &[]))
    }

    fn symlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, target: &str) -> Result<()> {
        self.change(cx, at, |fs| {
            fs.make(at.path, FileKind::Symlink, 0, target.as_bytes())
        })
    }

    fn hardlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, existing: &LayerPath) -> Result<()> {
        self.change(cx, at, |fs| fs.hardlink(existing, at.path))
    }

    fn unlink(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()> {
        self.warm.forget(at.layer, at.path);
        self.change(cx, at, |fs| fs.remove(at.path))
    }

    fn rmdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()> {
        self.warm.forget(at.layer, at.path);
        self.change(cx, at, |fs| fs.remove(at.path))
    }

    fn rename(&mut self, cx: &mut Cx<'_>, mv: Rename<'_>) -> Result<()> {
        self.warm.forget(mv.layer, mv.from);
        self.warm.forget(mv.layer, mv.to);
        self.change(cx, mv.dest(), |fs| fs.rename(mv.from, mv.to))
    }

    fn chmod(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        self.change(cx, at, |fs| fs.set_attrs(at.path, Some(mode), None))
    }

    fn chown(&mut self, cx: &mut Cx<'_>, at: At<'_>, uid: u32, gid: u32) -> Result<()> {
        self.change(cx, at, |fs| fs.set_attrs(at.path, None, Some((uid, gid))))
    }

    fn set_mtime(&mut self, cx: &mut Cx<'_>, at: At<'_>, secs: i64, nsec: u32) -> Result<()> {
        self.change(cx, at, |fs| fs.set_mtime(at.path, secs, nsec))
    }

    fn mknod(&mut self, cx: &mut Cx<'_>, at: At<'_>, node: Node) -> Result<()> {
        crate::hostfs::may_make_node(node.kind, at.layer, at.path)?;
        self.change(cx, at, |fs| {
            fs.mknod(at.path, node.kind, node.mode, node.rdev)
        })
    }

    fn get_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<Option<Vec<u8>>> {
        let mut all = self.view(cx.store, at, |fs| fs.xattrs(at.path))?;
        Ok(all.remove(name))
    }

    fn list_xattrs(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<String>> {
        let all = self.view(cx.store, at, |fs| fs.xattrs(at.path))?;
        Ok(all.into_keys().collect())
    }

    fn set_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str, value: &[u8]) -> Result<()> {
        self.change(cx, at, |fs| {
            fs.set_xattr(at.path, name, Some(value)).map(|_| ())
        })
    }

    fn remove_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<bool> {
        let mut removed = false;
        self.change(cx, at, |fs| {
            removed = fs.set_xattr(at.path, name, None)?;
            Ok(())
        })?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
