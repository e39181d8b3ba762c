//! cow: the copy-on-write engine btrfs and zfs share, on two plain files under the store.
//!
//! - `pool`: fixed 4 KiB sectors, the data. Sectors are reference counted
//!   ([`crate::blockpool::RefTable`]); a sector whose count drops to zero is free and is
//!   punched out of the file (`fallocate(PUNCH_HOLE)`), so the file's allocated size is the
//!   pool's use.
//! - `metadata`: the shared crash-safe log ([`crate::blockpool::MetaLog`]): checkpoints of
//!   every subvolume's tree, and one record of [`ops::Op`]s per operation.
//!
//! A subvolume is a persistent tree ([`tree`]): a radix tree of `Arc` nodes keyed by inode
//! number whose leaves point to inodes (attributes, directory entries, file extents). A
//! snapshot copies the root pointer: O(1), whatever the number of files, and logs one
//! `Create` op (about 60 bytes with its record header). A change copies the path from the
//! root to the inode it changes where it is shared. A write gives the copy-on-write units it
//! touches (btrfs's 4 KiB sector, zfs's 128 KiB record) new sectors and leaves the old ones
//! to the snapshots that still hold them. See `FORMAT.md` beside this file.
//!
//! [`CowDriver`] is the `LayerDriver` both drivers are; a [`Flavor`] says how layers map
//! to subvolumes (btrfs: a subvolume per layer, a child is a snapshot; zfs: a dataset per
//! layer, a snapshot at commit, a child is a clone) and what `usage` and `status` report.

pub mod engine;
pub mod fs;
pub mod ops;
pub mod tree;

#[cfg(test)]
pub(crate) mod testutil;

use crate::options::OptionSpec;
use crate::registry::StoreDriver;
use crate::store::{Access, Options, Store};
use crate::warm::WarmCache;
use engine::{Engine, Geometry, SECTOR};
use fs::{Fs, Origin, Plan};
use layerlab_core::rules::{self, Resolve};
use layerlab_core::{
    Change, DirEntry, DriverStatus, Error, FileKind, LayerDriver, LayerId, LayerInfo, LayerPath,
    LayerState, Metadata, Meter, Result, Semantics, Usage,
};
use std::collections::{BTreeMap, HashSet};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tree::TNode;

/// What distinguishes btrfs from zfs on the shared engine.
pub trait Flavor: std::fmt::Debug + 'static {
    /// Registry name.
    const NAME: &'static str;
    /// One line for `layerlab drivers`.
    const DESCRIPTION: &'static str;
    /// Options `init` takes.
    const OPTIONS: &'static [OptionSpec];
    /// Superblock magic of the metadata file.
    const MAGIC: &'static [u8; 8];
    /// How the driver names subvolumes in the trace ("subvolume", "dataset").
    const NOUN: &'static str;

    /// The driver's semantics.
    fn semantics() -> Semantics;

    /// The pool geometry the options ask for, checked.
    fn geometry(options: &Options) -> Result<Geometry>;

    /// The subvolume (dataset) holding a layer's tree.
    fn subvol(id: &LayerId) -> String;

    /// The snapshot committing a layer takes, if the driver takes one.
    fn snapshot(id: &LayerId) -> Option<String>;

    /// Usage details from the figures.
    fn usage(f: &Figures, geo: &Geometry) -> Usage;

    /// Driver-specific facts for `status`.
    fn facts(eng: &Engine, layers: &[LayerInfo]) -> Vec<(String, String)>;
}

/// What a layer's subvolumes hold, as `usage` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Pool sectors the layer's trees reference.
    pub referenced_sectors: u64,
    /// Of those, sectors of disk extents no other subvolume holds (any part of): the
    /// slices the layer's files name, as btrfs's FIEMAP-based `filesystem du` counts them.
    pub exclusive_sectors: u64,
    /// Sectors of those exclusive disk extents that no file names any more (a partly
    /// overwritten or truncated extent stays allocated whole: btrfs's bookends). Removing
    /// the layer frees `exclusive + pinned`.
    pub pinned_sectors: u64,
    /// Bytes of file content (units) the layer's trees reference, before compression.
    pub logical_bytes: u64,
    /// Bytes of small files kept inline in the layer's metadata (no data extent; btrfs's
    /// `filesystem du` counts none of them).
    pub inline_bytes: u64,
    /// Inodes of the layer.
    pub inodes: u64,
    /// Inodes no other subvolume holds.
    pub exclusive_inodes: u64,
}

fn node_key<T>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as *const u8 as usize
}

impl Engine {
    /// Referenced and exclusive space of the subvolumes `mine` (a layer and its snapshot).
    pub fn figures(&self, mine: &[String]) -> Figures {
        let mut other_nodes: HashSet<usize> = HashSet::new();
        let mut other_inodes: HashSet<usize> = HashSet::new();
        fn mark(n: &Arc<TNode>, nodes: &mut HashSet<usize>, inodes: &mut HashSet<usize>) {
            if !nodes.insert(node_key(n)) {
                return;
            }
            match n.as_ref() {
                TNode::Leaf(v) => {
                    for a in v.iter().flatten() {
                        inodes.insert(node_key(a));
                    }
                }
                TNode::Branch(v) => {
                    for c in v.iter().flatten() {
                        mark(c, nodes, inodes);
                    }
                }
            }
        }
        for (name, t) in &self.subvols {
            if !mine.contains(name) {
                if let Some(r) = &t.root {
                    mark(r, &mut other_nodes, &mut other_inodes);
                }
            }
        }
        let mut f = Figures::default();
        let mut seen: HashSet<usize> = HashSet::new();
        let unit = self.geo.unit;
        for name in mine {
            let Some(t) = self.subvols.get(name) else {
                continue;
            };
            t.for_each(&mut |_, a| {
                if !seen.insert(node_key(a)) {
                    return;
                }
                f.inodes += 1;
                f.inline_bytes += a.inline.len() as u64;
                let shared_obj = other_inodes.contains(&node_key(a));
                if !shared_obj {
                    f.exclusive_inodes += 1;
                }
                // disk extent -> (its sectors, sectors of it this inode names)
                let mut mine: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
                for e in a.extents.values() {
                    f.referenced_sectors += e.nsec;
                    f.logical_bytes += e.units * unit;
                    // a disk extent is exclusive when this inode object is its only holder
                    if !shared_obj && self.refs.get(e.disk) == 1 {
                        f.exclusive_sectors += e.nsec;
                        mine.entry(e.disk).or_insert((e.dlen, 0)).1 += e.nsec;
                    }
                }
                f.pinned_sectors += mine
                    .values()
                    .map(|(dlen, named)| dlen.saturating_sub(*named))
                    .sum::<u64>();
            });
        }
        f
    }
}

impl Engine {
    /// Sectors of the pool allocated to disk extents but named by no file of any
    /// subvolume: what partly overwritten or truncated extents pin (btrfs's bookends).
    pub fn pinned_sectors(&self) -> u64 {
        let mut seen: HashSet<usize> = HashSet::new();
        // disk extent -> (its sectors, the slices named of it)
        let mut named: BTreeMap<u64, (u64, Vec<(u64, u64)>)> = BTreeMap::new();
        for t in self.subvols.values() {
            t.for_each(&mut |_, a| {
                if !seen.insert(node_key(a)) {
                    return;
                }
                for e in a.extents.values() {
                    named
                        .entry(e.disk)
                        .or_insert((e.dlen, Vec::new()))
                        .1
                        .push((e.sector, e.sector + e.nsec));
                }
            });
        }
        named
            .into_values()
            .map(|(dlen, mut v)| {
                v.sort_unstable();
                let (mut covered, mut upto) = (0, 0);
                for (a, b) in v {
                    let a = a.max(upto);
                    if b > a {
                        covered += b - a;
                        upto = b;
                    }
                }
                dlen.saturating_sub(covered)
            })
            .sum()
    }
}

/// The subvolume a child of `parent` starts from.
fn origin_sv<F: Flavor>(parent: &LayerId) -> String {
    F::snapshot(parent).unwrap_or_else(|| F::subvol(parent))
}

/// One operation's view of a layer's subvolume (the origin named for the trace).
fn fs_of<'a, F: Flavor>(
    store: &Store,
    eng: &'a Engine,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<Fs<'a>> {
    let origin = store.info(layer)?.parent.map(|p| {
        let sv = origin_sv::<F>(&p);
        Origin {
            label: if F::snapshot(&p).is_some() {
                sv.clone()
            } else {
                p.to_string()
            },
            sv,
        }
    });
    Fs::new(eng, &F::subvol(layer), layer, path, origin)
}

/// A copy-on-write driver: the store, the engine, the meter.
#[derive(Debug)]
pub struct CowDriver<F: Flavor> {
    store: Store,
    meter: Meter,
    warm: WarmCache,
    eng: Engine,
    _flavor: PhantomData<F>,
}

impl<F: Flavor> CowDriver<F> {
    fn base(root: &Path) -> PathBuf {
        root.join(F::NAME)
    }

    /// The engine (for inspection and tests).
    pub fn engine(&self) -> &Engine {
        &self.eng
    }

    /// Compacts the metadata log into a checkpoint now (tests, tools).
    pub fn checkpoint_now(&mut self, meter: &mut Meter) -> Result<bool> {
        self.store.writable()?;
        self.eng.checkpoint(meter)
    }

    /// The pool data file.
    pub fn pool_path(&self) -> PathBuf {
        self.eng.data_path()
    }

    fn fs(&self, layer: &LayerId, path: &LayerPath) -> Result<Fs<'_>> {
        fs_of::<F>(&self.store, &self.eng, layer, path)
    }

    /// Commits a plan: data to fresh sectors and fsync, then the record, then apply.
    fn run(&mut self, layer: &LayerId, path: &LayerPath, plan: Plan) -> Result<()> {
        if plan.ops.is_empty() {
            return Ok(());
        }
        let mut written: Vec<u64> = Vec::new();
        if !plan.data.is_empty() {
            let mut r = Ok(());
            for (sector, bytes) in &plan.data {
                let nsec = (bytes.len() as u64).div_ceil(SECTOR);
                written.extend(*sector..*sector + nsec);
                r = self.eng.write_sectors(*sector, bytes);
                if r.is_err() {
                    break;
                }
            }
            if let Err(e) = r.and_then(|()| self.eng.sync_data()) {
                self.eng.punch(&written);
                return Err(e);
            }
            self.meter.counts.fsyncs += 1;
        }
        if let Err(e) = self.eng.commit(&plan.ops, layer, path, &mut self.meter) {
            self.eng.punch(&written);
            return Err(e);
        }
        Ok(())
    }

    fn change(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        f: impl FnOnce(&Fs<'_>, &mut Meter) -> Result<Plan>,
    ) -> Result<()> {
        let plan = {
            let fs = fs_of::<F>(&self.store, &self.eng, layer, path)?;
            f(&fs, &mut self.meter)?
        };
        self.run(layer, path, plan)
    }

    fn meta(&mut self, id: &LayerId, ops: Vec<engine_ops::Op>) -> Result<()> {
        self.eng
            .commit(&ops, id, &LayerPath::root(), &mut self.meter)
            .map(|_| ())
    }

    fn delete_sv(&mut self, id: &LayerId, sv: &str) -> Result<()> {
        let before = self.eng.refs.free();
        self.meta(id, vec![engine_ops::Op::Delete { sv: sv.to_string() }])?;
        let freed = self.eng.refs.free() - before;
        let noun = F::NOUN;
        self.meter.step(|| {
            format!("{noun} {sv} destroyed: {freed} pool sector(s) freed and punched out")
        });
        Ok(())
    }

    /// The subvolumes the layer table accounts for.
    fn expected(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        for i in self.store.table().infos() {
            out.insert(F::subvol(&i.id));
            if i.state == LayerState::Committed {
                if let Some(s) = F::snapshot(&i.id) {
                    out.insert(s);
                }
            }
        }
        out
    }

    fn sweep(&mut self) -> Result<()> {
        let known = self.expected();
        let stale: Vec<String> = self
            .eng
            .subvols
            .keys()
            .filter(|k| !known.contains(*k))
            .cloned()
            .collect();
        // snapshots after the datasets they were cloned from would not matter: every
        // subvolume is independent once made
        for sv in stale {
            let id = LayerId::new("sweep").map_err(|e| Error::Corrupt {
                path: self.eng.meta_path(),
                detail: e,
            })?;
            self.delete_sv(&id, &sv)?;
        }
        Ok(())
    }

    fn layer_svs(&self, id: &LayerId) -> Vec<String> {
        let mut v = vec![F::subvol(id)];
        if let Some(s) = F::snapshot(id) {
            if self.eng.subvols.contains_key(&s) {
                v.push(s);
            }
        }
        v
    }
}

use ops as engine_ops;

impl<F: Flavor> Resolve for CowDriver<F> {
    fn resolve(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Option<FileKind>> {
        self.store.info(layer)?;
        self.warm.lookup(layer, path, &mut self.meter);
        Ok(self.fs(layer, path)?.lookup(path)?.map(|x| x.1))
    }

    fn is_empty_dir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<bool> {
        let list = self.fs(layer, path)?.readdir(path)?;
        self.meter.counts.entries_scanned += list.len().min(1) as u64;
        Ok(list.is_empty())
    }
}

impl<F: Flavor> StoreDriver for CowDriver<F> {
    const NAME: &'static str = F::NAME;
    const DESCRIPTION: &'static str = F::DESCRIPTION;
    const OPTIONS: &'static [OptionSpec] = F::OPTIONS;

    fn init(root: &Path, options: Options) -> Result<Self> {
        let options = crate::options::resolve(F::NAME, F::OPTIONS, options)?;
        let geo = F::geometry(&options)?;
        let store = Store::init(root, F::NAME, options)?;
        let eng = Engine::create(&Self::base(root), geo, F::MAGIC, F::NAME)?;
        Ok(CowDriver {
            store,
            meter: Meter::new(),
            warm: WarmCache::default(),
            eng,
            _flavor: PhantomData,
        })
    }

    fn open(root: &Path, access: Access) -> Result<Self> {
        let store = Store::open(root, F::NAME, access)?;
        let eng = Engine::open(
            &Self::base(root),
            F::MAGIC,
            F::NAME,
            access == Access::Write,
        )?;
        let mut d = CowDriver {
            store,
            meter: Meter::new(),
            warm: WarmCache::default(),
            eng,
            _flavor: PhantomData,
        };
        if access == Access::Write {
            d.sweep()?;
            d.meter = Meter::new();
        }
        Ok(d)
    }
}

impl<F: Flavor> LayerDriver for CowDriver<F> {
    fn name(&self) -> &'static str {
        F::NAME
    }

    fn semantics(&self) -> Semantics {
        F::semantics()
    }

    fn meter(&self) -> &Meter {
        &self.meter
    }

    fn meter_mut(&mut self) -> &mut Meter {
        &mut self.meter
    }

    fn create_layer(&mut self, id: &LayerId, parent: Option<&LayerId>) -> Result<()> {
        let depth = self.store.check_create(id, parent, None, F::NAME)?;
        let sv = F::subvol(id);
        let mut stale = vec![sv.clone()];
        stale.extend(F::snapshot(id));
        for s in stale {
            if self.eng.subvols.contains_key(&s) {
                // left by a crash before the layer table named it
                self.delete_sv(id, &s)?;
            }
        }
        let noun = F::NOUN;
        match parent {
            Some(p) => {
                let origin = origin_sv::<F>(p);
                if !self.eng.subvols.contains_key(&origin) {
                    return Err(Error::Corrupt {
                        path: self.eng.meta_path(),
                        detail: format!("layer {p} has no {noun} {origin}"),
                    });
                }
                let pos = self.eng.log_pos();
                let inodes = self.eng.tree(&origin).map_or(0, |t| t.next_ino - 1);
                self.meta(
                    id,
                    vec![engine_ops::Op::Create {
                        sv: sv.clone(),
                        origin: Some(origin.clone()),
                        mtime: engine::timestamp(),
                    }],
                )?;
                let logged = self.eng.log_pos().saturating_sub(pos);
                let verb = if F::snapshot(p).is_some() {
                    format!("zfs clone {origin} {sv}")
                } else {
                    format!("btrfs subvolume snapshot {origin} {sv}")
                };
                self.meter.step(|| {
                    format!(
                        "{verb}: root pointer copied, one reference added (up to {inodes} inodes \
                         shared), {logged} bytes of metadata logged, no data copied"
                    )
                });
            }
            None => {
                self.meta(
                    id,
                    vec![engine_ops::Op::Create {
                        sv: sv.clone(),
                        origin: None,
                        mtime: engine::timestamp(),
                    }],
                )?;
                self.meter
                    .step(|| format!("{noun} {sv} created (empty, root directory 0755)"));
            }
        }
        let (id2, parent2) = (id.clone(), parent.cloned());
        let r = self.store.update_table(|t| {
            t.insert(id2, parent2, depth);
            Ok(())
        });
        if r.is_err() {
            let _ = self.delete_sv(id, &sv);
        }
        r
    }

    fn commit(&mut self, id: &LayerId) -> Result<()> {
        self.store.writable()?;
        let info = self.store.info(id)?;
        if info.state == LayerState::Committed {
            return Ok(());
        }
        let snap = F::snapshot(id);
        if let Some(s) = &snap {
            if self.eng.subvols.contains_key(s) {
                self.delete_sv(id, s)?;
            }
            self.meta(
                id,
                vec![engine_ops::Op::Create {
                    sv: s.clone(),
                    origin: Some(F::subvol(id)),
                    mtime: engine::timestamp(),
                }],
            )?;
            self.meter
                .step(|| format!("zfs snapshot {s}: root pointer copied, no data copied"));
        }
        let r = self.store.update_table(|t| t.commit(id));
        if r.is_err() {
            if let Some(s) = &snap {
                let _ = self.delete_sv(id, s);
            }
        }
        r
    }

    fn remove_layer(&mut self, id: &LayerId) -> Result<()> {
        self.store.check_remove(id)?;
        self.warm.forget_layer(id);
        self.store.update_table(|t| {
            t.remove(id);
            Ok(())
        })?;
        let mut svs = Vec::new();
        svs.extend(F::snapshot(id));
        svs.push(F::subvol(id));
        for sv in svs {
            if self.eng.subvols.contains_key(&sv) {
                self.delete_sv(id, &sv)?;
            }
        }
        Ok(())
    }

    fn layers(&self) -> Result<Vec<LayerInfo>> {
        Ok(self.store.table().infos())
    }

    fn layer(&self, id: &LayerId) -> Result<LayerInfo> {
        self.store.info(id)
    }

    fn stat(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Metadata> {
        rules::need_entry(self, layer, path)?;
        self.fs(layer, path)?.stat(path)
    }

    fn read(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        rules::need_file(self, layer, path)?;
        let by_block = F::semantics().page_cache == layerlab_core::PageCache::SharedLowerFiles;
        let data = fs_of::<F>(&self.store, &self.eng, layer, path)?.read(
            path,
            offset,
            len,
            &mut self.meter,
            &mut self.warm,
            by_block,
        )?;
        self.meter.counts.bytes_read += data.len() as u64;
        Ok(data)
    }

    fn readdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<DirEntry>> {
        rules::need_dir(self, layer, path)?;
        let list = self.fs(layer, path)?.readdir(path)?;
        self.meter.counts.entries_scanned += list.len() as u64;
        Ok(list)
    }

    fn create(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        self.store.info_for_change(layer, path)?;
        rules::need_absent(self, layer, path)?;
        self.change(layer, path, |fs, _| fs.make(path, FileKind::File, mode, ""))
    }

    fn write(&mut self, layer: &LayerId, path: &LayerPath, offset: u64, data: &[u8]) -> Result<()> {
        self.store.info_for_change(layer, path)?;
        rules::need_file(self, layer, path)?;
        if offset == u64::MAX || offset.checked_add(data.len() as u64).is_none() {
            return Err(Error::InvalidArgument {
                layer: layer.clone(),
                path: path.clone(),
                reason: "offset too large".into(),
            });
        }
        if data.is_empty() {
            // pwrite(2) of nothing changes nothing, even past the end
            return Ok(());
        }
        self.change(layer, path, |fs, m| fs.write(path, offset, data, m))?;
        self.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn append(&mut self, layer: &LayerId, path: &LayerPath, data: &[u8]) -> Result<()> {
        self.store.info_for_change(layer, path)?;
        rules::need_file(self, layer, path)?;
        let size = self.fs(layer, path)?.stat(path)?.size;
        if size.checked_add(data.len() as u64).is_none() {
            return Err(Error::InvalidArgument {
                layer: layer.clone(),
                path: path.clone(),
                reason: "file too large".into(),
            });
        }
        self.change(layer, path, |fs, m| fs.write(path, u64::MAX, data, m))?;
        self.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn truncate(&mut self, layer: &LayerId, path: &LayerPath, size: u64) -> Result<()> {
        self.store.info_for_change(layer, path)?;
        rules::need_file(self, layer, path)?;
        self.change(layer, path, |fs, m| fs.truncate(path, size, m))
    }

    fn mkdir(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        self.store.info_for_change(layer, path)?;
        rules::need_absent(self, layer, path)?;
        self.change(layer, path, |fs, _| fs.make(path, FileKind::Dir, mode, ""))
    }

    fn symlink(&mut self, layer: &LayerId, target: &str, link: &LayerPath) -> Result<()> {
        self.store.info_for_change(layer, link)?;
        rules::check_symlink_target(layer, link, target)?;
        rules::need_absent(self, layer, link)?;
        self.change(layer, link, |fs, _| {
            fs.make(link, FileKind::Symlink, 0, target)
        })
    }

    fn hardlink(&mut self, layer: &LayerId, existing: &LayerPath, link: &LayerPath) -> Result<()> {
        self.store.info_for_change(layer, link)?;
        rules::check_hardlink(self, layer, existing, link)?;
        self.change(layer, link, |fs, _| fs.hardlink(existing, link))
    }

    fn unlink(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        self.store.info_for_change(layer, path)?;
        rules::check_unlink(self, layer, path)?;
        self.warm.forget(layer, path);
        self.change(layer, path, |fs, _| fs.remove(path))
    }

    fn rmdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        self.store.info_for_change(layer, path)?;
        rules::check_rmdir(self, layer, path)?;
        self.warm.forget(layer, path);
        self.change(layer, path, |fs, _| fs.remove(path))
    }

    fn rename(&mut self, layer: &LayerId, from: &LayerPath, to: &LayerPath) -> Result<()> {
        self.store.info_for_change(layer, from)?;
        let plan = rules::plan_rename(self, layer, from, to)?;
        if plan.noop {
            return Ok(());
        }
        self.warm.forget(layer, from);
        self.warm.forget(layer, to);
        self.change(layer, to, |fs, _| fs.rename(from, to))
    }

    fn chmod(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        self.store.info_for_change(layer, path)?;
        rules::check_chmod(self, layer, path)?;
        self.change(layer, path, |fs, _| fs.set_attrs(path, Some(mode), None))
    }

    fn chown(&mut self, layer: &LayerId, path: &LayerPath, uid: u32, gid: u32) -> Result<()> {
        self.store.info_for_change(layer, path)?;
        rules::need_entry(self, layer, path)?;
        self.change(layer, path, |fs, _| {
            fs.set_attrs(path, None, Some((uid, gid)))
        })
    }

    fn changes(&mut self, layer: &LayerId) -> Result<Vec<Change>> {
        layerlab_core::changes::diff_views(self, layer)
    }

    fn usage(&mut self, layer: &LayerId) -> Result<Usage> {
        self.store.info(layer)?;
        let svs = self.layer_svs(layer);
        let f = self.eng.figures(&svs);
        Ok(F::usage(&f, &self.eng.geo))
    }

    fn status(&self) -> Result<DriverStatus> {
        let layers = self.store.table().infos();
        let (gen, seq) = self.eng.generation();
        let used = self.eng.refs.used() * SECTOR;
        let mut facts = vec![
            ("layers".to_string(), layers.len().to_string()),
            (
                "Pool file".into(),
                self.eng.data_path().display().to_string(),
            ),
            (
                "Metadata file".into(),
                self.eng.meta_path().display().to_string(),
            ),
            ("Pool used".into(), layerlab_core::size::human(used)),
            (
                "Pool size".into(),
                layerlab_core::size::human(self.eng.geo.pool_size),
            ),
            (
                "Metadata used".into(),
                layerlab_core::size::human(self.eng.meta_used()),
            ),
            (
                "Metadata generation".into(),
                format!("{gen} (next record {seq})"),
            ),
        ];
        facts.extend(F::facts(&self.eng, &layers));
        Ok(DriverStatus {
            driver: F::NAME.into(),
            root: Self::base(self.store.root()),
            options: self.store.options().clone(),
            facts,
        })
    }
}
