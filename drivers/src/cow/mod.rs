//! cow: the copy-on-write engine btrfs and zfs share, on two plain files under the store.
//!
//! - `pool`: fixed 4 KiB sectors, the data. Sectors are reference counted
//!   ([`crate::blockpool::RefTable`]); a sector whose count drops to zero is free and is
//!   punched out of the file (`fallocate(PUNCH_HOLE)`), so the file's allocated size is the
//!   pool's use (less the zero sectors a write leaves as holes: a small file's record
//!   padding, [`engine::Engine::write_sectors`]).
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
//! [`CowDriver`] is the [`Backend`] both drivers are (under [`crate::front::Layers`],
//! which checks every precondition); a [`Flavor`] says how layers map
//! to subvolumes (btrfs: a subvolume per layer, a child is a snapshot; zfs: a dataset per
//! layer, a snapshot at commit, a child is a clone) and what `usage` and `status` report.

mod check;
pub mod engine;
pub mod fs;
mod fstree;
pub mod ops;
pub mod roottree;
pub mod tree;

#[cfg(test)]
pub(crate) mod testutil;

use crate::backend::{At, Backend, Cx, Lifecycle, Node, Rename};
use crate::blockpool::MetaFormat;
use crate::options::OptionSpec;
use crate::store::{Options, Store};
use crate::warm::WarmCache;
use engine::{Durable, Engine, Geometry, SECTOR};
use fs::{Fs, Origin, Plan};
use layerlab_core::{
    DirEntry, Error, FileKind, LayerId, LayerInfo, LayerPath, LayerState, LowerDirRename, Metadata,
    Meter, PageCache, Provenance, Result, Semantics, Usage,
};
use roottree::RootCache;
use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// The metadata file's format: [`Flavor::MAGIC`], the pool named [`Flavor::NAME`].
    const FORMAT: MetaFormat = MetaFormat {
        magic: Self::MAGIC,
        label: Self::NAME,
    };
    /// How the driver names subvolumes in the trace ("subvolume", "dataset").
    const NOUN: &'static str;
    /// True when the Meter counts the leaves of btrfs's root tree a cold entry into a
    /// subvolume reads ([`roottree`]).
    const ROOT_TREE: bool;
    /// The most bytes of name and value one extended attribute may take together, where
    /// the filesystem bounds it below the contract's limits (`None`: no such bound).
    const MAX_XATTR: Option<usize>;

    /// How the host's page cache holds a file the layers share unchanged (the rest of
    /// the semantics is every copy-on-write driver's: see [`CowDriver`]'s `semantics`).
    const PAGE_CACHE: PageCache;

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

impl Figures {
    /// A layer's usage: `bytes`, the inodes no other subvolume holds, and the flavor's
    /// `details`.
    pub fn usage(&self, bytes: u64, details: &[(&str, u64)]) -> Usage {
        Usage {
            bytes,
            inodes: self.exclusive_inodes,
            details: details.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
        }
    }
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

/// A copy-on-write driver's semantics (the models and the kernel's btrfs alike): no depth
/// limit (a snapshot of a snapshot is one more subvolume), a directory renames in place,
/// and a layer's subvolume provides its whole view; the page cache is the driver's.
pub(crate) fn semantics(page_cache: PageCache) -> Semantics {
    Semantics {
        max_depth: None,
        lower_dir_rename: LowerDirRename::Moves,
        provenance: Provenance::Own,
        page_cache,
    }
}

/// The subvolume a child of `parent` starts from.
/// The largest file size btrfs and zfs take: Linux's `MAX_LFS_FILESIZE` (2^63 - 1 bytes),
/// the `s_maxbytes` both set, past which writes and truncates fail (EFBIG).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// True when a file end is past [`MAX_FILE_SIZE`] (or overflowed).
fn too_large(end: Option<u64>) -> bool {
    end.is_none_or(|e| e > MAX_FILE_SIZE)
}

/// The refusal of a file size past [`MAX_FILE_SIZE`].
fn file_too_large<F: Flavor>(at: At<'_>) -> Error {
    Error::InvalidArgument {
        layer: at.layer.clone(),
        path: at.path.clone(),
        reason: format!(
            "file too large: {} files end at most at {MAX_FILE_SIZE} bytes (2^63 - 1)",
            F::NAME
        ),
    }
}

fn origin_sv<F: Flavor>(parent: &LayerId) -> String {
    F::snapshot(parent).unwrap_or_else(|| F::subvol(parent))
}

/// One operation's view of a layer's subvolume (the origin named for the trace).
fn fs_of<'a, F: Flavor>(store: &Store, eng: &'a Engine, at: At<'_>) -> Result<Fs<'a>> {
    let origin = store.info(at.layer)?.parent.map(|p| {
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
    Fs::new(eng, &F::subvol(at.layer), at.layer, at.path, origin)
}

/// A copy-on-write backend: the engine and the caches the Meter sees.
#[derive(Debug)]
pub struct CowDriver<F: Flavor> {
    warm: WarmCache,
    /// btrfs's root tree and its cached leaves (`None` for a flavor without one).
    roots: Option<RootCache>,
    eng: Engine,
    _flavor: PhantomData<F>,
}

impl<F: Flavor> CowDriver<F> {
    fn base(root: &Path) -> PathBuf {
        root.join(F::NAME)
    }

    fn with_engine(eng: Engine) -> Self {
        CowDriver {
            warm: WarmCache::default(),
            roots: Self::root_cache(&eng),
            eng,
            _flavor: PhantomData,
        }
    }

    /// The root tree of the engine's subvolumes, as a fresh mount has it cached.
    fn root_cache(eng: &Engine) -> Option<RootCache> {
        F::ROOT_TREE.then(|| RootCache::mounted(eng.subvols.iter().map(|(n, t)| (t.id, n.len()))))
    }

    /// The root-tree leaves a first look into `layer` since open reads, counted.
    fn enter_cold(&mut self, layer: &LayerId, meter: &mut Meter) {
        if let (Some(roots), Some(t)) = (&mut self.roots, self.eng.tree(&F::subvol(layer))) {
            roots.enter(t.id, meter);
        }
    }

    /// The engine (for inspection and tests).
    pub fn engine(&self) -> &Engine {
        &self.eng
    }

    /// Compacts the metadata log into a checkpoint now (tests, tools).
    pub fn checkpoint_now(&mut self, cx: &mut Cx<'_>) -> Result<bool> {
        cx.store.writable()?;
        self.eng.checkpoint(cx.meter)
    }

    /// The pool data file.
    pub fn pool_path(&self) -> PathBuf {
        self.eng.data_path()
    }

    fn fs(&self, store: &Store, at: At<'_>) -> Result<Fs<'_>> {
        fs_of::<F>(store, &self.eng, at)
    }

    /// Commits a plan: data to fresh sectors and fsync, then the record, then apply.
    fn run(
        &mut self,
        meter: &mut Meter,
        layer: &LayerId,
        path: &LayerPath,
        plan: Plan,
    ) -> Result<()> {
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
            // part of the record's log commit, as btrfs writes a file's data before its log
            if let Err(e) = r.and_then(|()| self.eng.sync_data_before_record()) {
                self.eng.punch(&written);
                return Err(e);
            }
        }
        let mut ops = plan.ops;
        for (sector, bytes) in &plan.data {
            ops.push(Engine::sums_op(*sector, bytes));
        }
        // the record is the operation's commit point: on failure its data is punched out
        let committed = self
            .eng
            .commit(&ops, (layer, path), Durable::LogCommit, meter);
        committed
            .map(drop)
            .inspect_err(|_| self.eng.punch(&written))
    }

    /// Plans a change at `at` of the layer's subvolume and commits it (nothing on failure).
    fn change(
        &mut self,
        cx: &mut Cx<'_>,
        at: At<'_>,
        f: impl FnOnce(&Fs<'_>, &mut Meter) -> Result<Plan>,
    ) -> Result<()> {
        let plan = {
            let fs = fs_of::<F>(cx.store, &self.eng, at)?;
            f(&fs, cx.meter)?
        };
        self.run(cx.meter, at.layer, at.path, plan)
    }

    /// Commits a change of the subvolumes themselves (`ops`), made durable by `durable`.
    fn meta(
        &mut self,
        meter: &mut Meter,
        id: &LayerId,
        ops: Vec<engine_ops::Op>,
        durable: Durable,
    ) -> Result<()> {
        self.eng
            .commit(&ops, (id, &LayerPath::root()), durable, meter)
            .map(|_| ())
    }

    fn delete_sv(&mut self, meter: &mut Meter, id: &LayerId, sv: &str) -> Result<()> {
        let before = self.eng.refs.free();
        self.meta(
            meter,
            id,
            vec![engine_ops::Op::Delete { sv: sv.to_string() }],
            Durable::LogCommit,
        )?;
        let freed = self.eng.refs.free() - before;
        let noun = F::NOUN;
        meter.step(|| {
            format!("{noun} {sv} destroyed: {freed} pool sector(s) freed and punched out")
        });
        Ok(())
    }

    /// Destroys the subvolume `sv` if it exists.
    fn delete_if_there(&mut self, meter: &mut Meter, id: &LayerId, sv: &str) -> Result<()> {
        if self.eng.subvols.contains_key(sv) {
            self.delete_sv(meter, id, sv)?;
        }
        Ok(())
    }

    /// The subvolumes the layer table accounts for.
    fn expected(store: &Store) -> HashSet<String> {
        let mut out = HashSet::new();
        for i in store.table().infos() {
            out.insert(F::subvol(&i.id));
            if i.state == LayerState::Committed {
                if let Some(s) = F::snapshot(&i.id) {
                    out.insert(s);
                }
            }
        }
        out
    }

    /// Destroys the subvolumes the layer table does not name (left by a crash).
    fn sweep(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        let known = Self::expected(cx.store);
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
            self.delete_sv(cx.meter, &id, &sv)?;
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

    /// The subvolume of a child of `parent`: a snapshot (btrfs) or clone (zfs) of it.
    fn clone_of(&mut self, meter: &mut Meter, id: &LayerId, parent: &LayerId) -> Result<()> {
        let sv = F::subvol(id);
        let origin = origin_sv::<F>(parent);
        if !self.eng.subvols.contains_key(&origin) {
            let noun = F::NOUN;
            return Err(Error::Corrupt {
                path: self.eng.meta_path(),
                detail: format!("layer {parent} has no {noun} {origin}"),
            });
        }
        let pos = self.eng.log_pos();
        let inodes = self.eng.tree(&origin).map_or(0, |t| t.next_ino - 1);
        self.meta(
            meter,
            id,
            // a snapshot (clone) is made in a transaction commit (txg sync)
            vec![engine_ops::Op::create(sv.clone(), Some(origin.clone()))],
            Durable::InTransaction,
        )?;
        let logged = self.eng.log_pos().saturating_sub(pos);
        let verb = if F::snapshot(parent).is_some() {
            format!("zfs clone {origin} {sv}")
        } else {
            format!("btrfs subvolume snapshot {origin} {sv}")
        };
        meter.step(|| {
            format!(
                "{verb}: root pointer copied, one reference added (up to {inodes} inodes \
                 shared), {logged} bytes of metadata logged, no data copied"
            )
        });
        Ok(())
    }

    /// The subvolume of a base layer: empty, its root directory 0755.
    fn empty_sv(&mut self, meter: &mut Meter, id: &LayerId) -> Result<()> {
        let sv = F::subvol(id);
        self.meta(
            meter,
            id,
            vec![engine_ops::Op::create(sv.clone(), None)],
            Durable::LogCommit,
        )?;
        let noun = F::NOUN;
        meter.step(|| format!("{noun} {sv} created (empty, root directory 0755)"));
        Ok(())
    }
}

use ops as engine_ops;

/// The device reads counted so far: subvolumes entered, root-tree leaves, extents.
fn device_reads(c: &layerlab_core::Counts) -> u64 {
    c.layer_opens + c.tree_leaf_reads + c.extents_read
}

/// Counts the device reads made since `before` as reads of the pool too: a file of the
/// host, reached as the kernel reaches a filesystem on a loop device.
fn pooled(c: &mut layerlab_core::Counts, before: u64) {
    c.pool_reads += device_reads(c).saturating_sub(before);
}

impl<F: Flavor> Lifecycle for CowDriver<F> {
    const NAME: &'static str = F::NAME;
    const DESCRIPTION: &'static str = F::DESCRIPTION;
    const OPTIONS: &'static [OptionSpec] = F::OPTIONS;

    fn settle_options(options: Options) -> Result<Options> {
        F::geometry(&options)?;
        Ok(options)
    }

    fn init(cx: &mut Cx<'_>) -> Result<Self> {
        let geo = F::geometry(cx.store.options())?;
        let eng = Engine::create(&Self::base(cx.store.root()), geo, F::FORMAT)?;
        Ok(Self::with_engine(eng))
    }

    fn open(cx: &mut Cx<'_>) -> Result<Self> {
        let writable = cx.store.writable().is_ok();
        let eng = Engine::open(&Self::base(cx.store.root()), F::FORMAT, writable)?;
        let mut d = Self::with_engine(eng);
        if writable {
            d.sweep(cx)?;
            d.roots = Self::root_cache(&d.eng);
        }
        Ok(d)
    }

    fn check(cx: &mut Cx<'_>, repair: bool, report: &mut crate::fsck::CheckReport) -> Result<()> {
        let mut layers = HashMap::new();
        for info in cx.store.table().infos() {
            layers.insert(F::subvol(&info.id), info.id.clone());
            if let Some(snap) = F::snapshot(&info.id) {
                layers.insert(snap, info.id.clone());
            }
        }
        let repair = repair && cx.store.writable().is_ok();
        check::check(
            &Self::base(cx.store.root()),
            F::FORMAT,
            &layers,
            repair,
            report,
        )
    }

    fn semantics(&self) -> Semantics {
        semantics(F::PAGE_CACHE)
    }

    fn make_layer(&mut self, cx: &mut Cx<'_>, new: &LayerInfo) -> Result<()> {
        let (id, parent) = (&new.id, new.parent.as_ref());
        // left by a crash before the layer table named it
        self.delete_if_there(cx.meter, id, &F::subvol(id))?;
        if let Some(s) = F::snapshot(id) {
            self.delete_if_there(cx.meter, id, &s)?;
        }
        // made here: the host has its root cached
        self.warm.made_layer(id);
        match parent {
            Some(p) => self.clone_of(cx.meter, id, p),
            None => self.empty_sv(cx.meter, id),
        }?;
        let sv = F::subvol(id);
        if let (Some(roots), Some(t)) = (&mut self.roots, self.eng.tree(&sv)) {
            roots.made(t.id, sv.len());
        }
        Ok(())
    }

    fn drop_layer(&mut self, cx: &mut Cx<'_>, id: &LayerId) -> Result<()> {
        self.warm.forget_layer(id);
        if let Some(s) = F::snapshot(id) {
            self.delete_if_there(cx.meter, id, &s)?;
        }
        let sv_id = self.eng.tree(&F::subvol(id)).map(|t| t.id);
        self.delete_if_there(cx.meter, id, &F::subvol(id))?;
        if let (Some(roots), Some(sv_id)) = (&mut self.roots, sv_id) {
            roots.removed(sv_id);
        }
        Ok(())
    }

    fn seal_layer(&mut self, cx: &mut Cx<'_>, id: &LayerId) -> Result<()> {
        let Some(s) = F::snapshot(id) else {
            return Ok(());
        };
        self.delete_if_there(cx.meter, id, &s)?;
        self.meta(
            cx.meter,
            id,
            // `zfs snapshot` waits for the txg sync it is made in
            vec![engine_ops::Op::create(s.clone(), Some(F::subvol(id)))],
            Durable::InTransaction,
        )?;
        cx.meter
            .step(|| format!("zfs snapshot {s}: root pointer copied, no data copied"));
        Ok(())
    }

    fn unseal_layer(&mut self, cx: &mut Cx<'_>, id: &LayerId) -> Result<()> {
        match F::snapshot(id) {
            Some(s) => self.delete_if_there(cx.meter, id, &s),
            None => Ok(()),
        }
    }

    fn usage(&mut self, _cx: &mut Cx<'_>, layer: &LayerId) -> Result<Usage> {
        let svs = self.layer_svs(layer);
        let f = self.eng.figures(&svs);
        let mut usage = F::usage(&f, &self.eng.geo);
        let refs = &self.eng.refs;
        crate::blockpool::pool_details(
            &mut usage.details,
            refs.used() + refs.free(),
            refs.used(),
            SECTOR,
        );
        Ok(usage)
    }

    fn begin_batch(&mut self) {
        self.eng.begin_batch();
    }

    fn end_batch(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        self.eng.end_batch(cx.meter)
    }

    fn facts(&self, store: &Store) -> Result<(PathBuf, Vec<(String, String)>)> {
        let layers = store.table().infos();
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
        Ok((Self::base(store.root()), facts))
    }
}

impl<F: Flavor> Backend for CowDriver<F> {
    fn resolve(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Option<FileKind>> {
        let before = device_reads(&cx.meter.counts);
        if !self.warm.entered(at.layer) {
            self.enter_cold(at.layer, cx.meter);
        }
        // btrfs: a subvolume whose tree is one leaf was read whole on entering it
        let eng = &self.eng;
        self.warm
            .lookup_unless_held(at.layer, at.path, cx.meter, || {
                F::ROOT_TREE
                    && eng
                        .tree(&F::subvol(at.layer))
                        .is_some_and(fstree::fits_one_leaf)
            });
        pooled(&mut cx.meter.counts, before);
        Ok(self.fs(cx.store, at)?.lookup(at.path)?.map(|x| x.1))
    }

    fn is_empty_dir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<bool> {
        let list = self.fs(cx.store, at)?.readdir(at.path)?;
        cx.meter.counts.entries_scanned += list.len().min(1) as u64;
        Ok(list.is_empty())
    }

    fn stat(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Metadata> {
        self.fs(cx.store, at)?.stat(at.path)
    }

    fn read(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, len: u64) -> Result<Vec<u8>> {
        let before = device_reads(&cx.meter.counts);
        let by_block = F::PAGE_CACHE == PageCache::SharedLowerFiles;
        let data = fs_of::<F>(cx.store, &self.eng, at)?.read(
            at.path,
            offset,
            len,
            cx.meter,
            &mut self.warm,
            by_block,
        )?;
        cx.meter.counts.cow_reads += 1;
        cx.meter.counts.bytes_read += data.len() as u64;
        pooled(&mut cx.meter.counts, before);
        Ok(data)
    }

    fn readdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<DirEntry>> {
        let list = self.fs(cx.store, at)?.readdir(at.path)?;
        cx.meter.counts.entries_scanned += list.len() as u64;
        Ok(list)
    }

    fn create(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        self.change(cx, at, |fs, _| fs.make(at.path, FileKind::File, mode, ""))
    }

    fn write(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, data: &[u8]) -> Result<()> {
        if offset == u64::MAX || too_large(offset.checked_add(data.len() as u64)) {
            return Err(file_too_large::<F>(at));
        }
        if data.is_empty() {
            // pwrite(2) of nothing changes nothing, even past the end
            return Ok(());
        }
        self.change(cx, at, |fs, m| fs.write(at.path, offset, data, m))?;
        cx.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn append(&mut self, cx: &mut Cx<'_>, at: At<'_>, data: &[u8]) -> Result<()> {
        let size = self.fs(cx.store, at)?.stat(at.path)?.size;
        if too_large(size.checked_add(data.len() as u64)) {
            return Err(file_too_large::<F>(at));
        }
        self.change(cx, at, |fs, m| fs.write(at.path, u64::MAX, data, m))?;
        cx.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn truncate(&mut self, cx: &mut Cx<'_>, at: At<'_>, size: u64) -> Result<()> {
        if too_large(Some(size)) {
            return Err(file_too_large::<F>(at));
        }
        self.change(cx, at, |fs, m| fs.truncate(at.path, size, m))
    }

    fn mkdir(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        self.change(cx, at, |fs, _| fs.make(at.path, FileKind::Dir, mode, ""))
    }

    fn symlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, target: &str) -> Result<()> {
        self.change(cx, at, |fs, _| {
            fs.make(at.path, FileKind::Symlink, 0, target)
        })
    }

    fn hardlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, existing: &LayerPath) -> Result<()> {
        self.change(cx, at, |fs, _| fs.hardlink(existing, at.path))
    }

    fn unlink(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()> {
        self.warm.forget(at.layer, at.path);
        self.change(cx, at, |fs, _| fs.remove(at.path))
    }

    fn rmdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()> {
        self.warm.forget(at.layer, at.path);
        self.change(cx, at, |fs, _| fs.remove(at.path))
    }

    fn rename(&mut self, cx: &mut Cx<'_>, mv: Rename<'_>) -> Result<()> {
        self.warm.forget(mv.layer, mv.from);
        self.warm.forget(mv.layer, mv.to);
        self.change(cx, mv.dest(), |fs, _| fs.rename(mv.from, mv.to))
    }

    fn chmod(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        self.change(cx, at, |fs, _| fs.set_attrs(at.path, Some(mode), None))
    }

    fn chown(&mut self, cx: &mut Cx<'_>, at: At<'_>, uid: u32, gid: u32) -> Result<()> {
        self.change(cx, at, |fs, _| {
            fs.set_attrs(at.path, None, Some((uid, gid)))
        })
    }

    fn set_mtime(&mut self, cx: &mut Cx<'_>, at: At<'_>, secs: i64, nsec: u32) -> Result<()> {
        self.change(cx, at, |fs, _| fs.set_mtime(at.path, secs, nsec))
    }

    fn mknod(&mut self, cx: &mut Cx<'_>, at: At<'_>, node: Node) -> Result<()> {
        crate::hostfs::may_make_node(node.kind, at.layer, at.path)?;
        self.change(cx, at, |fs, _| {
            fs.mknod(at.path, node.kind, node.mode, node.rdev)
        })
    }

    fn get_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.fs(cx.store, at)?.xattrs(at.path)?.get(name).cloned())
    }

    fn list_xattrs(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<String>> {
        let fs = self.fs(cx.store, at)?;
        Ok(fs.xattrs(at.path)?.keys().cloned().collect())
    }

    fn set_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str, value: &[u8]) -> Result<()> {
        if let Some(max) = F::MAX_XATTR {
            if name.len() + value.len() > max {
                return Err(Error::NoSpace {
                    layer: at.layer.clone(),
                    path: at.path.clone(),
                    what: format!(
                        "{} xattr item: name and value at most {max} bytes together",
                        F::NAME
                    ),
                });
            }
        }
        self.change(cx, at, |fs, _| fs.set_xattr(at.path, name, Some(value)))
    }

    fn remove_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<bool> {
        let fs = self.fs(cx.store, at)?;
        if !fs.xattrs(at.path)?.contains_key(name) {
            return Ok(false);
        }
        self.change(cx, at, |fs, _| fs.set_xattr(at.path, name, None))?;
        Ok(true)
    }
}
