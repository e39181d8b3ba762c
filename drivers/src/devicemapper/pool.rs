//! The thin pool: two sparse plain files, `data` (the pool blocks) and `metadata` (device
//! maps, reference counts, and through them the free list), with crash-safe commits.
//!
//! See FORMAT.md for the layout. In short: the metadata file holds two superblock slots,
//! then two areas used in turn; an area holds a checkpoint (every device map and every
//! non-zero reference count) followed by a log of records, one per committed operation.
//! A record is the commit point of an operation; a checkpoint made current by a superblock
//! with a higher generation is the commit point of a log compaction. The metadata file and
//! the reference counts are the shared [`crate::blockpool`] ones.
//!
//! A batch ([`Pool::begin_batch`] .. [`Pool::end_batch`]) is one transaction, as a dm-thin
//! metadata transaction: blocks taken in the batch are rewritten in place, its ops
//! accumulate in memory and are committed as one record (or one checkpoint) at its end,
//! after the data fsync; a kill before that leaves the pool as before the batch, and a
//! failure inside it aborts it (the state before it back in memory). FORMAT.md, "A batch",
//! gives the rules and why each crash point is safe.

use super::dirindex::DirCache;
use super::fs::FreeInodes;
use super::reserve::HostReserve;
use super::thin::{Device, MetaOp};
use crate::blockpool::{
    corrupt, create_data, open_checked, open_data, Examined, MetaFormat, MetaLog, Opened, RefTable,
    META_FILE,
};
use crate::codec::{Dec, Enc, Record};
use layerlab_core::{Error, IoContext, Meter, Result};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The store's format, named in its superblock: version 4 since the devices hold llfs 3
/// (`fs.rs`: an inode table sized from the device, 4-byte inode numbers everywhere);
/// version 3: superblocks, checkpoints and log records carry CRC-32C checksums; version
/// 2: llfs 2 keeps mtime nanoseconds, device numbers and extended attributes. A store of
/// another version is refused with an error naming both versions. The trace names the
/// pool "thin pool".
pub(super) const FORMAT: MetaFormat = MetaFormat {
    magic: b"LLTHINP4",
    label: "thin pool",
};

/// The sizes a pool is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per pool block (dm.blocksize).
    pub block_size: u64,
    /// Bytes of the data file (dm.loopdatasize).
    pub data_size: u64,
    /// Bytes of the metadata file (dm.loopmetadatasize).
    pub meta_size: u64,
    /// Virtual bytes of a base device (dm.basesize).
    pub base_size: u64,
}

impl Geometry {
    /// Pool blocks in the data file.
    pub fn data_blocks(&self) -> u64 {
        self.data_size / self.block_size
    }
    /// Logical blocks of a base device.
    pub fn device_blocks(&self) -> u64 {
        self.base_size / self.block_size
    }
}

/// The pool: the two files and the committed state, kept in memory.
#[derive(Debug)]
pub struct Pool {
    dir: PathBuf,
    data: File,
    log: MetaLog,
    writable: bool,
    /// The sizes.
    pub geo: Geometry,
    /// Reference count of every pool block (0 = free: the free list).
    refcount: RefTable,
    /// Thin devices by name.
    pub devices: BTreeMap<String, Device>,
    /// Where each device's free inodes are (llfs, [`FreeInodes`]): in memory only, built
    /// on a device's first inode allocation in this process, dropped with the device.
    pub free_inodes: BTreeMap<String, FreeInodes>,
    /// The indexes of committed directories looked into (llfs, [`DirCache`]): in memory
    /// only, dropped with their device.
    pub dirs: DirCache,
    /// Host space held back for removals on a full host.
    pub host_reserve: HostReserve,
    /// The open batch ([`Pool::begin_batch`]): one transaction, committed at its end.
    batch: Option<Box<Pending>>,
    /// The generation a batch's checkpoint is written as, while it is written.
    batch_ckpt_gen: Option<u64>,
}

/// The uncommitted part of a batch: one pool transaction, as a dm-thin metadata
/// transaction (see FORMAT.md, "Batches").
#[derive(Debug)]
struct Pending {
    /// The ops applied in memory since the batch began, in order: the batch's record.
    ops: Vec<MetaOp>,
    /// Bytes of log the batch's record takes, about (an upper bound).
    len: u64,
    /// Bytes a checkpoint of the batch's state takes, about (an upper bound), once asked.
    ck_est: Option<u64>,
    /// The committed state when the batch began (what an abort goes back to).
    saved_devices: BTreeMap<String, Device>,
    saved_refs: RefTable,
    /// Pool blocks allocated in the batch: free in the committed state, so written in
    /// place while the batch's own map is their only reference.
    fresh: HashSet<u32>,
    /// Committed blocks the batch stopped referencing: still referenced by the committed
    /// state, so kept (their count not dropped, never reallocated) until the commit.
    held: Vec<u32>,
    /// Fresh blocks the batch freed again: punched at the end if still free.
    punch: BTreeSet<u32>,
    /// Pool data written and not yet fsynced.
    data_unsynced: bool,
    /// An operation of the batch took a new pool block beyond shadows (else, as for one
    /// such operation, the batch's record may use the host reserve on a full host).
    allocating: bool,
}

impl Pending {
    fn new(devices: &BTreeMap<String, Device>, refs: &RefTable) -> Pending {
        Pending {
            ops: Vec::new(),
            len: MetaLog::record_len(0),
            ck_est: None,
            saved_devices: devices.clone(),
            saved_refs: refs.clone(),
            fresh: HashSet::new(),
            held: Vec::new(),
            punch: BTreeSet::new(),
            data_unsynced: false,
            allocating: false,
        }
    }

    /// Adds `op` to the record, merged into the last op when both map the same device
    /// (replaying the merged entries in order gives the same maps and counts); returns the
    /// bytes the record grows by, about (8 per merged entry, the op's encoding else).
    fn push(&mut self, op: &MetaOp) -> u64 {
        if let (
            Some(MetaOp::Map { name, entries }),
            MetaOp::Map {
                name: n2,
                entries: e2,
            },
        ) = (self.ops.last_mut(), op)
        {
            if name == n2 {
                entries.extend_from_slice(e2);
                return 8 * e2.len() as u64;
            }
        }
        self.ops.push(op.clone());
        MetaOp::encode_all(std::slice::from_ref(op)).len() as u64
    }
}

/// The data file's name in the pool's directory.
const DATA_FILE: &str = "data";

impl Pool {
    /// The data file.
    pub fn data_path(&self) -> PathBuf {
        self.dir.join(DATA_FILE)
    }

    /// The metadata file.
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join(META_FILE)
    }

    /// How a full pool names itself in `Error::NoSpace`.
    pub fn what_data(&self) -> String {
        format!("thin pool {} (data)", self.data_path().display())
    }

    /// How a full metadata file names itself in `Error::NoSpace`.
    pub fn what_meta(&self) -> String {
        format!("thin pool {} (metadata)", self.meta_path().display())
    }

    fn params(geo: &Geometry) -> [u64; 4] {
        [geo.block_size, geo.data_size, geo.meta_size, geo.base_size]
    }

    /// Creates the two sparse files and an empty pool (checkpoint 1, generation 1).
    pub fn create(dir: &Path, geo: Geometry) -> Result<Pool> {
        let (data, dp) = create_data(dir, DATA_FILE)?;
        data.set_len(geo.data_size).at(&dp)?;
        let pool_refs = RefTable::new(geo.data_blocks());
        let body = Self::encode_checkpoint(&BTreeMap::new(), &pool_refs);
        let log = MetaLog::create(
            &dir.join(META_FILE),
            geo.meta_size,
            FORMAT,
            Self::params(&geo),
            &body,
        )?;
        let pool = Pool {
            dir: dir.to_path_buf(),
            data,
            log,
            writable: true,
            geo,
            refcount: pool_refs,
            devices: BTreeMap::new(),
            free_inodes: BTreeMap::new(),
            dirs: DirCache::default(),
            host_reserve: HostReserve::new(dir, Self::host_reserve_bytes(&geo), true),
            batch: None,
            batch_ckpt_gen: None,
        };
        pool.data.sync_all().at(pool.data_path())?;
        crate::store::fsync_dir(dir)?;
        Ok(pool)
    }

    /// Opens an existing pool: the newest valid superblock, its checkpoint, then every
    /// complete record of the log after it (a torn last record is ignored).
    pub fn open(dir: &Path, writable: bool) -> Result<Pool> {
        open_checked(dir, FORMAT, writable, "the maps", |opened| {
            Self::load(dir, opened, writable)
        })
    }

    /// The metadata file as `fsck` reads it (see [`MetaLog::examine`]).
    pub fn examine(dir: &Path, writable: bool) -> Result<Examined> {
        MetaLog::examine(&dir.join(META_FILE), FORMAT, writable)
    }

    /// The pool a metadata file holds: the checkpoint, its reference counts recounted
    /// from the maps (false: the stored ones disagree), then the records replayed.
    pub fn load(dir: &Path, opened: Opened, writable: bool) -> Result<(Pool, bool)> {
        let (data, dp) = open_data(dir, DATA_FILE, writable)?;
        let meta_path = dir.join(META_FILE);
        let [block_size, data_size, meta_size, base_size] = opened.log.params();
        let geo = Geometry {
            block_size,
            data_size,
            meta_size,
            base_size,
        };
        let file_size = data.metadata().at(&dp)?.len();
        if geo.meta_size != opened.log.size() || file_size != geo.data_size || geo.block_size == 0 {
            return Err(corrupt(&meta_path, "superblock does not match the file"));
        }
        let mut pool = Pool {
            dir: dir.to_path_buf(),
            data,
            log: opened.log,
            writable,
            geo,
            refcount: RefTable::new(geo.data_blocks()),
            devices: BTreeMap::new(),
            free_inodes: BTreeMap::new(),
            dirs: DirCache::default(),
            host_reserve: HostReserve::new(dir, Self::host_reserve_bytes(&geo), writable),
            batch: None,
            batch_ckpt_gen: None,
        };
        let stored_refs = pool
            .load_checkpoint(&opened.checkpoint)
            .ok_or_else(|| corrupt(&meta_path, "checkpoint does not parse"))?;
        // reference counts must be what the maps say
        pool.recount();
        let refs_agree = stored_refs == pool.refcount.dense();
        for (k, rec) in opened.records.iter().enumerate() {
            let bad = || {
                corrupt(
                    &meta_path,
                    format!(
                        "log record {} after the checkpoint does not parse: {}",
                        k + 1,
                        crate::blockpool::RUN_FSCK
                    ),
                )
            };
            for op in &MetaOp::decode_all(rec).ok_or_else(bad)? {
                if !pool.valid_op(op) {
                    return Err(bad());
                }
                pool.apply(op);
            }
        }
        Ok((pool, refs_agree))
    }

    /// Pool blocks with no reference that still hold bytes on the host (a crash between
    /// a block's write and its commit, or a punch that never happened): leaked space.
    pub fn leaked_blocks(&self) -> Vec<u64> {
        let bs = self.geo.block_size;
        let mut out = Vec::new();
        for (a, b) in crate::blockpool::data_regions(&self.data, 0, self.geo.data_size) {
            for p in a / bs..b.div_ceil(bs) {
                if self.refcount.get(p) == 0 && out.last() != Some(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Punches pool blocks out of the data file (a repair of leaked blocks) and syncs.
    pub fn punch_blocks(&self, blocks: &[u64]) -> Result<()> {
        for p in blocks {
            rustix::fs::fallocate(
                &self.data,
                rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
                p * self.geo.block_size,
                self.geo.block_size,
            )
            .map_err(|e| Error::io(self.data_path(), e.into()))?;
        }
        self.data.sync_data().at(self.data_path())
    }

    /// A device size the maps can hold (logical blocks are u32) and no larger than the
    /// base size a device is made with.
    fn valid_device_size(&self, nblocks: u64) -> bool {
        nblocks <= self.geo.device_blocks() && nblocks <= u64::from(u32::MAX)
    }

    /// A map entry inside its device and naming a pool block (or none).
    fn valid_entry(&self, dev: &Device, l: u32, p1: u32) -> bool {
        u64::from(l) < dev.nblocks && u64::from(p1) <= self.geo.data_blocks()
    }

    /// An op a replay may apply: sizes and blocks in range (a checksum that matched damage
    /// is not trusted further than this).
    fn valid_op(&self, op: &MetaOp) -> bool {
        match op {
            MetaOp::Create { nblocks, .. } => self.valid_device_size(*nblocks),
            MetaOp::Delete { .. } => true,
            MetaOp::Map { name, entries } => self
                .devices
                .get(name)
                .is_none_or(|d| entries.iter().all(|&(l, p1)| self.valid_entry(d, l, p1))),
        }
    }

    fn recount(&mut self) {
        self.refcount.clear();
        for d in self.devices.values() {
            for &p1 in d.map() {
                if p1 != 0 {
                    self.refcount.inc(u64::from(p1 - 1));
                }
            }
        }
    }

    /// Reads a checkpoint body into the devices; returns the stored reference counts.
    fn load_checkpoint(&mut self, ck: &[u8]) -> Option<Vec<u32>> {
        let mut d = Dec::new(ck);
        let ndev = d.u32()?;
        for _ in 0..ndev {
            let name = d.str()?;
            let nblocks = d.u64()?;
            let n = d.u32()?;
            if !self.valid_device_size(nblocks) {
                return None;
            }
            let mut dev = Device::new(nblocks);
            for _ in 0..n {
                let l = d.u32()?;
                let p1 = d.u32()?;
                if !self.valid_entry(&dev, l, p1) {
                    return None;
                }
                dev.set(l, p1);
            }
            self.devices.insert(name, dev);
        }
        let nref = d.u32()?;
        let mut refs = Vec::new();
        for _ in 0..nref {
            let p = d.u32()? as usize;
            let rc = d.u32()?;
            if p as u64 >= self.refcount.capacity() {
                return None;
            }
            if refs.len() <= p {
                refs.resize(p + 1, 0);
            }
            refs[p] = rc;
        }
        while refs.last() == Some(&0) {
            refs.pop();
        }
        d.done().then_some(refs)
    }

    fn encode_checkpoint(devices: &BTreeMap<String, Device>, refcount: &RefTable) -> Vec<u8> {
        let mut e = Enc::default();
        e.u32(devices.len() as u32);
        for (name, dev) in devices {
            e.str(name);
            e.u64(dev.nblocks);
            let mapped: Vec<(usize, u32)> = dev
                .map()
                .iter()
                .enumerate()
                .filter(|(_, p)| **p != 0)
                .map(|(l, p)| (l, *p))
                .collect();
            e.u32(mapped.len() as u32);
            for (l, p1) in mapped {
                e.u32(l as u32);
                e.u32(p1);
            }
        }
        let refs: Vec<(u64, u32)> = refcount.nonzero().collect();
        e.u32(refs.len() as u32);
        for (p, r) in refs {
            e.u32(p as u32);
            e.u32(r);
        }
        e.0
    }

    /// Writes a checkpoint of the in-memory state into the other area and makes it current
    /// with a new superblock generation (two fsyncs). `Ok(false)` when it does not fit.
    /// Never inside a batch, whose state is not committed ([`Pool::end_batch`] commits it).
    fn checkpoint(&mut self, meter: &mut Meter) -> Result<bool> {
        if self.batch.is_some() {
            return Ok(false);
        }
        let body = Self::encode_checkpoint(&self.devices, &self.refcount);
        self.log.checkpoint(&body, meter)
    }

    /// Starts a batch: until [`Pool::end_batch`], every change is one transaction kept in
    /// memory (see FORMAT.md, "Batches"). A batch already open goes on.
    pub fn begin_batch(&mut self) {
        if self.batch.is_none() && self.writable {
            self.batch = Some(Box::new(Pending::new(&self.devices, &self.refcount)));
        }
    }

    /// True inside a batch.
    pub fn in_batch(&self) -> bool {
        self.batch.is_some()
    }

    /// True when pool block `p` may be rewritten in place: allocated in the open batch
    /// (free in the committed state) and referenced by one map only.
    pub fn in_place(&self, p: u32) -> bool {
        self.batch.as_ref().is_some_and(|b| b.fresh.contains(&p)) && self.refs(p) == 1
    }

    /// Ends a batch: its commit. The pool data written in the batch is fsynced, then the
    /// batch's ops are appended as one log record and fsynced (the commit point). When the
    /// record does not fit the log, the committed state is compacted first; when it does
    /// not fit an empty log either, the batch's whole state is written as a checkpoint,
    /// which its superblock makes current. Any failure aborts the batch: the pool goes
    /// back to the state before it (nothing of it reached the committed metadata), and
    /// the error is returned. Without a batch, nothing to do.
    pub fn end_batch(&mut self, meter: &mut Meter) -> Result<()> {
        let Some(b) = self.batch.take() else {
            return Ok(());
        };
        if b.ops.is_empty() && !b.data_unsynced && b.held.is_empty() {
            return Ok(());
        }
        match self.commit_batch(&b, meter) {
            Ok(()) => {
                self.batch_committed(b, true);
                if self.log.wants_compaction() {
                    // the batch is committed; a failed compaction leaves the log as it is
                    let _ = self.checkpoint(meter);
                }
                self.host_reserve.fill();
                Ok(())
            }
            Err(e) if self.committed_anyway() => {
                // a checkpoint of the batch's state was made current (its superblock
                // written) and only its fsync failed: the next open reads that state, so
                // this process keeps it; the caller undoes the batch as a failure
                self.batch_committed(b, false);
                Err(e)
            }
            Err(e) => {
                self.abort(b);
                Err(e)
            }
        }
    }

    /// True when a failed [`Pool::commit_batch`] made its checkpoint of the batch's state
    /// current all the same (its superblock written, only the fsync after it failed).
    fn committed_anyway(&self) -> bool {
        self.batch_ckpt_gen == Some(self.log.generation().0)
    }

    /// Writes the batch down: data fsync, then its record (or checkpoint) and its fsync.
    fn commit_batch(&mut self, b: &Pending, meter: &mut Meter) -> Result<()> {
        self.batch_ckpt_gen = None;
        if b.data_unsynced {
            self.data.sync_data().at(self.data_path())?;
            meter.counts.fsyncs += 1;
        }
        if b.ops.is_empty() {
            return Ok(());
        }
        let body = MetaOp::encode_all(&b.ops);
        let len = MetaLog::record_len(body.len());
        if !self.log.fits(len) {
            // compacting the committed state changes nothing the next open reads
            let ck = Self::encode_checkpoint(&b.saved_devices, &b.saved_refs);
            self.log.checkpoint(&ck, meter)?;
        }
        if self.log.fits(len) {
            let log = &mut self.log;
            self.host_reserve
                .retry(!b.allocating, || log.append(&body, &mut Meter::new()))?;
            meter.counts.fsyncs += 1;
            meter.counts.metadata_writes += 1;
            return Ok(());
        }
        // larger than an empty log: the batch's state as a checkpoint (the held blocks
        // are free in it)
        for &p in &b.held {
            self.refcount.dec(u64::from(p));
        }
        let ck = Self::encode_checkpoint(&self.devices, &self.refcount);
        self.batch_ckpt_gen = Some(self.log.generation().0 + 1);
        if !self.log.checkpoint(&ck, meter)? {
            return Err(corrupt(
                &self.meta_path(),
                "no room in the metadata log for the batch",
            ));
        }
        Ok(())
    }

    /// The batch is committed: its held blocks are freed (unless the checkpoint path
    /// already did), and they and the fresh blocks it freed again are punched when
    /// `punch` (after a failed fsync they stay, leaked, until fsck).
    fn batch_committed(&mut self, b: Box<Pending>, punch: bool) {
        let held_freed = self.batch_ckpt_gen.take().is_some();
        let mut free = b.punch;
        for &p in &b.held {
            if held_freed || self.refcount.dec(u64::from(p)) {
                free.insert(p);
            }
        }
        if punch {
            for p in free {
                if self.refs(p) == 0 {
                    self.discard(p);
                }
            }
        }
    }

    /// Gives up the open batch: the state before it back in memory, the blocks it wrote
    /// given back to the host (they are free in that state: left there, they would only
    /// be leaked space).
    fn abort(&mut self, b: Box<Pending>) {
        self.batch_ckpt_gen = None;
        self.devices = b.saved_devices;
        self.refcount = b.saved_refs;
        self.free_inodes.clear();
        self.dirs = DirCache::default();
        for &p in b.fresh.iter().chain(&b.punch) {
            if self.refs(p) == 0 {
                self.discard(p);
            }
        }
    }

    /// Gives up the open batch after a failed write in it, and opens a new one on the
    /// state before it: the operations of the batch so far are undone.
    pub(super) fn abort_in_batch(&mut self) {
        if let Some(b) = self.batch.take() {
            self.abort(b);
            self.begin_batch();
        }
    }

    /// Compacts the log into a checkpoint now (tests, tools); in a batch, nothing (the
    /// batch's end commits it).
    pub fn compact(&mut self, meter: &mut Meter) -> Result<bool> {
        self.checkpoint(meter)
    }

    /// Where the next log record goes in the metadata file.
    pub fn log_pos(&self) -> u64 {
        self.log.log_pos()
    }

    /// Bytes a record of `ops` takes in the log.
    pub fn record_len(ops: &[MetaOp]) -> u64 {
        MetaLog::record_len(MetaOp::encode_all(ops).len())
    }

    /// True when the log has room for a record of `len` bytes, compacting it first if
    /// needed; `Ok(false)` when even a fresh checkpoint leaves no room.
    /// In a batch, true when the batch's record with `len` more bytes would fit the log,
    /// or the batch's state a checkpoint (what [`Pool::end_batch`] writes then).
    pub fn make_log_room(&mut self, len: u64, meter: &mut Meter) -> Result<bool> {
        if let Some(b) = &self.batch {
            let total = b.len + len;
            if self.log.fits(total) {
                return Ok(true);
            }
            // a Map entry adds at most 16 bytes to a checkpoint, 8 to a record
            if let Some(est) = b.ck_est {
                if self.log.checkpoint_fits(est + 2 * len) {
                    return Ok(true);
                }
            }
            let ck = Self::encode_checkpoint(&self.devices, &self.refcount).len() as u64;
            if let Some(b) = &mut self.batch {
                b.ck_est = Some(ck);
            }
            return Ok(self.log.checkpoint_fits(ck + 2 * len));
        }
        if self.log.fits(len) {
            return Ok(true);
        }
        if !self.checkpoint(meter)? {
            return Ok(false);
        }
        Ok(self.log.fits(len))
    }

    /// Appends one record and fsyncs it: the commit point of an operation. Then applies
    /// the ops to the in-memory state, punches the blocks that became free, and compacts
    /// the log when it has grown large.
    pub fn commit(
        &mut self,
        ops: &[MetaOp],
        releasing: bool,
        meter: &mut Meter,
    ) -> Result<Vec<u32>> {
        if self.batch.is_some() {
            return Ok(self.commit_in_batch(ops, releasing));
        }
        let body = MetaOp::encode_all(ops);
        if !self.make_log_room(MetaLog::record_len(body.len()), meter)? {
            return Err(corrupt(&self.meta_path(), "no room in the metadata log"));
        }
        let log = &mut self.log;
        self.host_reserve
            .retry(releasing, || log.append(&body, &mut Meter::new()))?;
        meter.counts.fsyncs += 1;
        meter.counts.metadata_writes += 1;
        let mut freed = Vec::new();
        for op in ops {
            freed.extend(self.apply(op));
        }
        for &p in &freed {
            self.discard(p);
        }
        if self.log.wants_compaction() {
            // the record is committed; a failed compaction leaves the log as it is
            let _ = self.checkpoint(meter);
        }
        self.host_reserve.fill();
        Ok(freed)
    }
    /// [`Pool::commit`] in a batch: the ops applied in memory and added to the batch's
    /// record; the fresh blocks they free are free again at once (punched at the end).
    fn commit_in_batch(&mut self, ops: &[MetaOp], releasing: bool) -> Vec<u32> {
        let mut freed = Vec::new();
        for op in ops {
            freed.extend(self.apply(op));
        }
        if let Some(b) = &mut self.batch {
            let len: u64 = ops.iter().map(|op| b.push(op)).sum();
            b.len += len;
            b.ck_est = match ops.iter().any(|op| matches!(op, MetaOp::Create { .. })) {
                // a snapshot copies a map: estimated again when needed
                true => None,
                false => b.ck_est.map(|e| e + 2 * len),
            };
            b.allocating |= !releasing;
            b.punch.extend(freed.iter().copied());
        }
        freed
    }

    /// Applies one op to the in-memory state; returns the pool blocks it freed.
    fn apply(&mut self, op: &MetaOp) -> Vec<u32> {
        let mut freed = Vec::new();
        match op {
            MetaOp::Create {
                name,
                nblocks,
                origin,
            } => {
                let dev = match origin.as_ref().and_then(|o| self.devices.get(o)) {
                    Some(o) => o.clone(),
                    None => Device::new(*nblocks),
                };
                for &p1 in dev.map() {
                    if p1 != 0 {
                        self.inc(p1 - 1);
                    }
                }
                self.devices.insert(name.clone(), dev);
                self.free_inodes.remove(name);
                self.dirs.forget_device(name);
            }
            MetaOp::Delete { name } => {
                self.free_inodes.remove(name);
                self.dirs.forget_device(name);
                if let Some(dev) = self.devices.remove(name) {
                    for &p1 in dev.map() {
                        if p1 != 0 && self.dec(p1 - 1) {
                            freed.push(p1 - 1);
                        }
                    }
                }
            }
            MetaOp::Map { name, entries } => {
                for &(l, p1) in entries {
                    let old = self.devices.get(name).map(|d| d.get(l)).unwrap_or(0);
                    if p1 != 0 {
                        self.inc(p1 - 1);
                    }
                    if let Some(d) = self.devices.get_mut(name) {
                        d.set(l, p1);
                    }
                    if old != 0 && self.dec(old - 1) {
                        freed.push(old - 1);
                    }
                }
            }
        }
        freed
    }

    fn inc(&mut self, p: u32) {
        self.refcount.inc(u64::from(p));
    }

    /// True when the block became free. In a batch, a committed block losing its last
    /// reference is held instead (its count kept): the committed state still maps it, so
    /// it is neither reused nor punched before the batch commits.
    fn dec(&mut self, p: u32) -> bool {
        if let Some(b) = &mut self.batch {
            if self.refcount.get(u64::from(p)) == 1 && !b.fresh.contains(&p) {
                b.held.push(p);
                return false;
            }
        }
        self.refcount.dec(u64::from(p))
    }

    /// Gives a free block back to the host file (a hole), as dm-thin passes discards down.
    fn discard(&self, p: u32) {
        if !self.writable {
            return;
        }
        let bs = self.geo.block_size;
        let _ = rustix::fs::fallocate(
            &self.data,
            rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
            u64::from(p) * bs,
            bs,
        );
    }

    /// The reference count of a pool block.
    pub fn refs(&self, p: u32) -> u32 {
        self.refcount.get(u64::from(p))
    }

    /// Free pool blocks.
    pub fn free_blocks(&self) -> u64 {
        self.refcount.free()
    }

    /// The `n` lowest free pool blocks (none of them referenced by the committed state).
    pub fn pick_free(&self, n: usize) -> Vec<u32> {
        self.refcount
            .pick_free(n)
            .into_iter()
            .map(|p| p as u32)
            .collect()
    }

    /// Notes blocks taken for the open batch (from [`Pool::pick_free`]): fresh, so written
    /// in place from now on while the batch maps them once.
    pub fn taken_in_batch(&mut self, blocks: &[u32]) {
        if let Some(b) = &mut self.batch {
            b.fresh.extend(blocks.iter().copied());
        }
    }

    /// Blocks a model allocation must leave free, so that rewriting blocks a device owns
    /// alone (shadowed for crash safety) still works when the pool is otherwise full.
    pub fn reserve(&self) -> u64 {
        Self::reserve_of(&self.geo)
    }

    fn reserve_of(geo: &Geometry) -> u64 {
        (geo.data_blocks() / 32).clamp(1, 16)
    }

    /// Bytes held back on the host: the shadowing reserve's blocks and 64 KiB of
    /// metadata log.
    fn host_reserve_bytes(geo: &Geometry) -> u64 {
        Self::reserve_of(geo) * geo.block_size + (64 << 10)
    }

    /// Reads `buf.len()` bytes of pool block `p` from `off`.
    pub fn read_at(&self, p: u32, off: u64, buf: &mut [u8]) -> Result<()> {
        let pos = u64::from(p) * self.geo.block_size + off;
        self.data.read_exact_at(buf, pos).at(self.data_path())
    }

    /// Writes pool blocks, each `(block, offset in it, bytes)` (only ever blocks no
    /// committed map points to) and syncs the data file; on a full host, an operation
    /// `releasing` (no new pool block) gives the host reserve back and writes again. In a
    /// batch the fsync waits for its end, and a failure aborts the batch (the blocks
    /// written are its own: none of the committed state changed).
    pub fn write_blocks(&mut self, blocks: &[(u32, u64, &[u8])], releasing: bool) -> Result<()> {
        if blocks.is_empty() {
            return Ok(());
        }
        let (data, path, bs) = (&self.data, self.data_path(), self.geo.block_size);
        let batch = self.batch.is_some();
        let written = self.host_reserve.retry(releasing, || {
            for (p, off, bytes) in blocks {
                data.write_all_at(bytes, u64::from(*p) * bs + off)
                    .at(&path)?;
            }
            if batch {
                return Ok(());
            }
            data.sync_data().at(&path)
        });
        match (&mut self.batch, &written) {
            (Some(b), Ok(())) => b.data_unsynced = true,
            (Some(_), Err(_)) => self.abort_in_batch(),
            (None, Ok(())) => {}
            (None, Err(_)) => {
                // free in the committed state: given back to the host as a discard would
                for (p, _, _) in blocks {
                    self.discard(*p);
                }
            }
        }
        written
    }

    /// True when pool block `p` is a hole in the data file (reads zeros, holds no bytes
    /// on the host); false when it is not or the host cannot tell.
    pub fn is_hole(&self, p: u32) -> bool {
        use rustix::fs::{seek, SeekFrom};
        let bs = self.geo.block_size;
        let start = u64::from(p) * bs;
        match seek(&self.data, SeekFrom::Data(start)) {
            Ok(next) => next >= start + bs,
            Err(e) => e == rustix::io::Errno::NXIO,
        }
    }

    /// Bytes of the metadata file in use: superblocks, checkpoint and log.
    pub fn meta_used(&self) -> u64 {
        self.log.used()
    }

    /// Pool blocks in use.
    pub fn used_blocks(&self) -> u64 {
        self.refcount.used()
    }

    /// The metadata generation (superblock) and the next record's sequence number.
    pub fn generation(&self) -> (u64, u64) {
        self.log.generation()
    }
}
