//! Thin devices: a map from a device's logical blocks to pool blocks, snapshots that copy
//! the map (never the data), and [`Txn`], one operation's block writes to one device,
//! made durable all at once (or not at all) by [`Txn::commit`].

use super::dirindex::DirIndex;
use super::fs::FreeInodes;
use super::pool::Pool;
use crate::codec::{Dec, Enc, Record};
use layerlab_core::{Error, FileKind, LayerId, LayerPath, Meter, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A thin device: its virtual size and its block map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Logical blocks (dm.basesize / dm.blocksize).
    pub nblocks: u64,
    /// `map[l]` is pool block + 1, or 0 when logical block `l` is unmapped (reads zeros).
    map: Vec<u32>,
    /// The unmapped logical blocks below `map.len()` (past it every block is unmapped),
    /// kept by [`Device::set`]: allocation jumps to the next unmapped block rather than
    /// scanning the mapped ones, so that filling a device is linear, not quadratic.
    holes: BTreeSet<u32>,
}

impl Device {
    /// An empty device of `nblocks` logical blocks.
    pub fn new(nblocks: u64) -> Self {
        Device {
            nblocks,
            map: Vec::new(),
            holes: BTreeSet::new(),
        }
    }

    /// `map[l]` for every logical block `l` up to the last mapped one.
    pub fn map(&self) -> &[u32] {
        &self.map
    }

    /// The first unmapped logical block at or after `l`.
    pub fn next_unmapped(&self, l: u32) -> u32 {
        let end = u32::try_from(self.map.len()).unwrap_or(u32::MAX);
        if l >= end {
            return l;
        }
        self.holes.range(l..).next().copied().unwrap_or(end)
    }

    /// Pool block + 1 behind logical block `l`, or 0.
    pub fn get(&self, l: u32) -> u32 {
        self.map.get(l as usize).copied().unwrap_or(0)
    }

    /// Maps `l` to pool block `p1 - 1` (0: unmaps it).
    pub fn set(&mut self, l: u32, p1: u32) {
        let i = l as usize;
        if i >= self.map.len() {
            if p1 == 0 {
                return;
            }
            let old = u32::try_from(self.map.len()).unwrap_or(u32::MAX);
            self.holes.extend(old..l);
            self.map.resize(i + 1, 0);
        }
        self.map[i] = p1;
        if p1 == 0 {
            self.holes.insert(l);
        } else {
            self.holes.remove(&l);
        }
    }

    /// Logical blocks that are mapped.
    pub fn mapped(&self) -> u64 {
        self.map.iter().filter(|p| **p != 0).count() as u64
    }
}

/// One change of the pool metadata, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaOp {
    /// A new device: empty, or a snapshot of `origin` (its map copied, refcounts bumped).
    Create {
        /// Device name.
        name: String,
        /// Logical blocks.
        nblocks: u64,
        /// The device snapshotted.
        origin: Option<String>,
    },
    /// A device dropped; its blocks lose one reference each.
    Delete {
        /// Device name.
        name: String,
    },
    /// Map entries set: `(logical block, pool block + 1 or 0 to unmap)`.
    Map {
        /// Device name.
        name: String,
        /// The entries.
        entries: Vec<(u32, u32)>,
    },
}

/// Each op is one entry of a log record.
impl Record for MetaOp {
    fn put(&self, e: &mut Enc) {
        match self {
            MetaOp::Create {
                name,
                nblocks,
                origin,
            } => {
                e.u8(1);
                e.str(name);
                e.u64(*nblocks);
                e.opt_str(origin.as_deref());
            }
            MetaOp::Delete { name } => {
                e.u8(2);
                e.str(name);
            }
            MetaOp::Map { name, entries } => {
                e.u8(3);
                e.str(name);
                e.list(entries, |e, &(l, p1)| {
                    e.u32(l);
                    e.u32(p1);
                });
            }
        }
    }

    fn get(d: &mut Dec<'_>) -> Option<MetaOp> {
        Some(match d.u8()? {
            1 => MetaOp::Create {
                name: d.str()?,
                nblocks: d.u64()?,
                origin: d.opt_str()?,
            },
            2 => MetaOp::Delete { name: d.str()? },
            3 => MetaOp::Map {
                name: d.str()?,
                entries: d.list(|d| Some((d.u32()?, d.u32()?)))?,
            },
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct Dirty {
    data: Vec<u8>,
    /// The block's old content was read in to be partly overwritten.
    loaded: bool,
    /// The bytes written, `lo..hi` (what a block rewritten in place writes).
    lo: usize,
    hi: usize,
    label: String,
}

/// One operation on one device: reads see the operation's own writes; nothing reaches a
/// block that the committed metadata points to until [`Txn::commit`].
#[derive(Debug)]
pub struct Txn<'a> {
    pool: &'a mut Pool,
    dev: String,
    layer: LayerId,
    path: LayerPath,
    parent: Option<(LayerId, String)>,
    dirty: BTreeMap<u32, Dirty>,
    discards: BTreeSet<u32>,
    meta_blocks: BTreeSet<u32>,
    cursor: u32,
    /// The indexes of the directories this operation changed, as changed (`None`: changed
    /// unindexed): given to the pool's cache when it commits, dropped if it does not.
    dirs: HashMap<u32, Option<DirIndex>>,
}

impl<'a> Txn<'a> {
    /// Starts an operation on device `dev` (the layer `layer`), changing `path`, whose
    /// parent layer (for the trace) is `parent` with device name.
    pub fn new(
        pool: &'a mut Pool,
        dev: String,
        layer: &LayerId,
        path: &LayerPath,
        parent: Option<(LayerId, String)>,
    ) -> Self {
        Txn {
            pool,
            dev,
            layer: layer.clone(),
            path: path.clone(),
            parent,
            dirty: BTreeMap::new(),
            discards: BTreeSet::new(),
            meta_blocks: BTreeSet::new(),
            cursor: 0,
            dirs: HashMap::new(),
        }
    }

    /// The layer this operation is on.
    pub fn layer(&self) -> &LayerId {
        &self.layer
    }

    /// Bytes per block.
    pub fn block_size(&self) -> usize {
        self.pool.geo.block_size as usize
    }

    /// Logical blocks of the device.
    pub fn nblocks(&self) -> u64 {
        self.pool.devices.get(&self.dev).map_or(0, |d| d.nblocks)
    }

    fn committed(&self, l: u32) -> u32 {
        self.pool.devices.get(&self.dev).map_or(0, |d| d.get(l))
    }

    /// The pool's data file (for errors naming it).
    pub fn data_path(&self) -> std::path::PathBuf {
        self.pool.data_path()
    }

    /// Takes the device's free-inode hint out of the pool (`None`: not built yet in this
    /// process); [`Txn::put_free_inodes`] puts it back.
    pub fn take_free_inodes(&mut self) -> Option<FreeInodes> {
        self.pool.free_inodes.remove(&self.dev)
    }

    /// Keeps the device's free-inode hint for the next operation.
    pub fn put_free_inodes(&mut self, free: FreeInodes) {
        self.pool.free_inodes.insert(self.dev.clone(), free);
    }

    /// The entry `name` of directory `dir` as its index says (`None`: not indexed).
    pub fn cached_entry(&self, dir: u32, name: &str) -> Option<Option<(u32, FileKind)>> {
        match self.dirs.get(&dir) {
            Some(ix) => ix.as_ref().map(|ix| ix.get(name)),
            None => self.pool.dirs.get(&self.dev, dir, name),
        }
    }

    /// Keeps the index of a directory this operation has not changed (so: committed).
    pub fn cache_dir(&self, dir: u32, ix: DirIndex) {
        if !self.dirs.contains_key(&dir) {
            self.pool.dirs.put(&self.dev, dir, ix);
        }
    }

    /// Takes the index of directory `dir` for a change (`None`: not indexed); the pool's
    /// cache no longer has it until [`Txn::changed_dir`] and a commit give it back.
    pub fn changing_dir(&mut self, dir: u32) -> Option<DirIndex> {
        match self.dirs.remove(&dir) {
            Some(ix) => ix,
            None => self.pool.dirs.take(&self.dev, dir),
        }
    }

    /// The index of directory `dir` as this operation left it.
    pub fn changed_dir(&mut self, dir: u32, ix: DirIndex) {
        self.dirs.insert(dir, Some(ix));
    }

    /// Forgets any index of inode `dir` (its content changes unindexed, or it is freed):
    /// until this operation ends, lookups in it scan its bytes, and nothing is cached.
    pub fn forget_dir(&mut self, dir: u32) {
        self.pool.dirs.take(&self.dev, dir);
        self.dirs.insert(dir, None);
    }

    /// True when `l` holds data (mapped and not discarded, or written by this operation).
    pub fn in_use(&self, l: u32) -> bool {
        self.dirty.contains_key(&l) || (!self.discards.contains(&l) && self.committed(l) != 0)
    }

    /// Reads `buf.len()` bytes of logical block `l` from `off`; unmapped blocks read zeros.
    pub fn read(&self, l: u32, off: usize, buf: &mut [u8]) -> Result<()> {
        if off.saturating_add(buf.len()) > self.block_size() {
            return Err(Error::Corrupt {
                path: self.pool.data_path(),
                detail: format!(
                    "layer {}: {}: a read of {} bytes at {off} of device block {l} (blocks \
                     are {} bytes)",
                    self.layer,
                    self.path,
                    buf.len(),
                    self.block_size()
                ),
            });
        }
        if let Some(d) = self.dirty.get(&l) {
            match d.data.get(off..off + buf.len()) {
                Some(src) => buf.copy_from_slice(src),
                None => buf.fill(0),
            }
            return Ok(());
        }
        let p1 = self.committed(l);
        if p1 == 0 || self.discards.contains(&l) {
            buf.fill(0);
            return Ok(());
        }
        self.pool.read_at(p1 - 1, off as u64, buf)
    }

    /// Writes `data` into logical block `l` at `off`. `label` names the block in the trace;
    /// `meta` marks a filesystem metadata block (inode table, directory, block index).
    pub fn write(
        &mut self,
        l: u32,
        off: usize,
        data: &[u8],
        meta: bool,
        label: impl FnOnce() -> String,
    ) -> Result<()> {
        let bs = self.block_size();
        if u64::from(l) >= self.nblocks() || off + data.len() > bs {
            return Err(self.device_full());
        }
        if !self.dirty.contains_key(&l) {
            let whole = off == 0 && data.len() == bs;
            let mapped = self.committed(l) != 0 && !self.discards.contains(&l);
            let mut buf = vec![0u8; bs];
            let loaded = !whole && mapped;
            if loaded {
                self.read(l, 0, &mut buf)?;
            }
            self.discards.remove(&l);
            self.dirty.insert(
                l,
                Dirty {
                    data: buf,
                    loaded,
                    lo: off,
                    hi: off + data.len(),
                    label: label(),
                },
            );
        }
        if meta {
            self.meta_blocks.insert(l);
        }
        if let Some(d) = self.dirty.get_mut(&l) {
            d.data[off..off + data.len()].copy_from_slice(data);
            d.lo = d.lo.min(off);
            d.hi = d.hi.max(off + data.len());
        }
        Ok(())
    }

    /// A free logical block at or after `from` (unmapped, not used by this operation).
    pub fn alloc(&mut self, from: u32) -> Result<u32> {
        let n = self.nblocks();
        // only a block unmapped in the committed state can be free (a discarded one is
        // skipped): jump from hole to hole, past those this operation wrote
        let mut l = self.cursor.max(from);
        while let Some(dev) = self.pool.devices.get(&self.dev) {
            l = dev.next_unmapped(l);
            if u64::from(l) >= n {
                break;
            }
            if !self.in_use(l) && !self.discards.contains(&l) {
                self.cursor = l + 1;
                return Ok(l);
            }
            l += 1;
        }
        Err(self.device_full())
    }

    /// Drops logical block `l` (the filesystem freed it): it is unmapped at commit, as a
    /// discard passed down to the pool.
    pub fn discard(&mut self, l: u32) {
        self.dirty.remove(&l);
        self.meta_blocks.remove(&l);
        if self.committed(l) != 0 {
            self.discards.insert(l);
        }
    }

    /// A `Corrupt` error about this device's content.
    pub fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            path: self.pool.data_path(),
            detail: format!("thin device of layer {}: {detail}", self.layer),
        }
    }

    /// The NoSpace of this device's virtual size.
    pub fn device_full(&self) -> Error {
        Error::NoSpace {
            layer: self.layer.clone(),
            path: self.path.clone(),
            what: format!(
                "thin device of layer {} (dm.basesize {})",
                self.layer,
                layerlab_core::size::human(self.nblocks() * self.pool.geo.block_size)
            ),
        }
    }

    fn pool_full(&self, meta: bool) -> Error {
        Error::NoSpace {
            layer: self.layer.clone(),
            path: self.path.clone(),
            what: if meta {
                self.pool.what_meta()
            } else {
                self.pool.what_data()
            },
        }
    }

    /// Makes the operation durable: checks space first (NoSpace changes nothing), writes
    /// every dirty block to a fresh pool block, fsyncs the data file, then appends one
    /// metadata record (the commit point) and applies it.
    ///
    /// A dirty block that was unmapped is allocated; one shared with another device
    /// (refcount > 1) is copied on write; one the device owns alone is rewritten in place
    /// as far as the model (and the Meter) is concerned, and shadowed to a fresh pool block
    /// on the host so that a crash leaves it as it was.
    pub fn commit(mut self, meter: &mut Meter) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        self.commit_blocks(meter)?;
        for (dir, ix) in dirs {
            if let Some(ix) = ix {
                self.pool.dirs.put(&self.dev, dir, ix);
            }
        }
        Ok(())
    }

    fn commit_blocks(&mut self, meter: &mut Meter) -> Result<()> {
        if self.dirty.is_empty() && self.discards.is_empty() {
            return Ok(());
        }
        let bs = self.pool.geo.block_size;
        #[derive(PartialEq)]
        enum How {
            Alloc,
            Cow(u32),
            Shadow(u32),
        }
        let mut plan = Vec::with_capacity(self.dirty.len());
        // blocks taken in the open batch and mapped once: rewritten in place
        let mut in_place = Vec::new();
        for (&l, d) in &self.dirty {
            let p1 = self.committed(l);
            let how = if p1 == 0 {
                How::Alloc
            } else if self.pool.refs(p1 - 1) > 1 {
                How::Cow(p1 - 1)
            } else if self.pool.in_place(p1 - 1) {
                in_place.push((l, d, p1 - 1));
                continue;
            } else {
                How::Shadow(p1 - 1)
            };
            plan.push((l, d, how));
        }
        let model = plan
            .iter()
            .filter(|x| !matches!(x.2, How::Shadow(_)))
            .count() as u64;
        let total = plan.len() as u64;
        let free = self.pool.free_blocks();
        if total > free || (model > 0 && model + self.pool.reserve() > free) {
            meter.step(|| {
                format!(
                    "thin pool: {model} new block(s) needed, {free} free ({} kept for \
                     shadowing): no space",
                    self.pool.reserve()
                )
            });
            return Err(self.pool_full(false));
        }
        let mut entries: Vec<(u32, u32)> = Vec::with_capacity(plan.len() + self.discards.len());
        let fresh = self.pool.pick_free(plan.len());
        if fresh.len() < plan.len() {
            return Err(self.pool_full(false));
        }
        for ((l, _, _), p) in plan.iter().zip(&fresh) {
            entries.push((*l, p + 1));
        }
        for &l in &self.discards {
            entries.push((l, 0));
        }
        let ops = match entries.is_empty() {
            true => Vec::new(),
            false => vec![MetaOp::Map {
                name: self.dev.clone(),
                entries,
            }],
        };
        if !ops.is_empty() && !self.pool.make_log_room(Pool::record_len(&ops), meter)? {
            return Err(self.pool_full(true));
        }
        // only shadows (no new block): the host reserve may be released for it
        let releasing = model == 0;
        self.pool.taken_in_batch(&fresh);
        let batch = self.pool.in_batch();
        let pool = &*self.pool;
        let mut blocks: Vec<(u32, u64, &[u8])> = plan
            .iter()
            .zip(&fresh)
            .map(
                |((_, d, _), &p)| match batch && !d.loaded && pool.is_hole(p) {
                    // in a batch, a block not read in going to a pool block that is a hole
                    // on the host: only the bytes written (the rest reads zeros already)
                    true => (p, d.lo as u64, &d.data[d.lo..d.hi]),
                    false => (p, 0, d.data.as_slice()),
                },
            )
            .collect();
        blocks.extend(in_place.iter().map(|(_, d, p)| match d.loaded {
            // a block not read in (wholly written, or discarded first) is
            // written whole: no old byte of it stays
            true => (*p, d.lo as u64, &d.data[d.lo..d.hi]),
            false => (*p, 0, d.data.as_slice()),
        }));
        self.pool.write_blocks(&blocks, releasing)?;
        for (l, d, p) in &in_place {
            meter.step(|| {
                format!(
                    "device block {l} ({}) owned alone, its pool block {p} taken in this \
                     batch: rewritten in place",
                    d.label
                )
            });
        }
        for ((l, d, how), &p) in plan.iter().zip(&fresh) {
            match how {
                How::Alloc => {
                    meter.counts.blocks_allocated += 1;
                    meter.step(|| {
                        format!(
                            "device block {l} ({}) unmapped: allocate pool block {p}",
                            d.label
                        )
                    });
                }
                How::Cow(old) => {
                    meter.counts.blocks_allocated += 1;
                    let with = match &self.parent {
                        Some((pid, pdev))
                            if self.pool.devices.get(pdev).map(|x| x.get(*l)) == Some(old + 1) =>
                        {
                            format!("shared with {pid}")
                        }
                        _ => format!("shared (refcount {})", self.pool.refs(*old)),
                    };
                    if d.loaded {
                        meter.counts.bytes_copied += bs;
                        meter.counts.copy_ups += 1;
                        meter.step(|| {
                            format!(
                                "device block {l} ({}) {with}: copy {bs} bytes from pool block {old} \
                                 to pool block {p}",
                                d.label
                            )
                        });
                    } else {
                        meter.step(|| {
                            format!(
                                "device block {l} ({}) {with}, wholly overwritten: new pool block {p}, \
                                 nothing copied",
                                d.label
                            )
                        });
                    }
                }
                How::Shadow(old) => {
                    meter.step(|| {
                        format!(
                            "device block {l} ({}) owned alone: rewritten (shadowed to pool block {p}, \
                             pool block {old} freed at commit)",
                            d.label
                        )
                    });
                }
            }
        }
        if !fresh.is_empty() || !in_place.is_empty() {
            meter.counts.fsyncs += 1;
        }
        meter.counts.metadata_writes += self.meta_blocks.len() as u64;
        for &l in &self.discards {
            meter.step(|| format!("device block {l} freed by the filesystem: discard (unmap)"));
        }
        if !ops.is_empty() {
            self.pool.commit(&ops, releasing, meter)?;
        }
        Ok(())
    }
}
