//! The thin pool: two sparse plain files, `data` (the pool blocks) and `metadata` (device
//! maps, reference counts, and through them the free list), with crash-safe commits.
//!
//! See FORMAT.md for the layout. In short: the metadata file holds two superblock slots,
//! then two areas used in turn; an area holds a checkpoint (every device map and every
//! non-zero reference count) followed by a log of records, one per committed operation.
//! A record is the commit point of an operation; a checkpoint made current by a superblock
//! with a higher generation is the commit point of a log compaction.

use super::size::{checksum, get_u32, get_u64, Dec, Enc};
use super::thin::{Device, MetaOp};
use layerlab_core::{Error, IoContext, Meter, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const SB_MAGIC: &[u8; 8] = b"LLTHINP1";
const CKPT_MAGIC: u32 = 0x5450_4b43; // "CKPT"
const REC_MAGIC: u32 = 0x4345_524c; // "LREC"
const SLOT: u64 = 4096;
const AREAS_START: u64 = 2 * SLOT;
const REC_HEADER: u64 = 24;
/// The log is compacted into a checkpoint once it is larger than this and than the last
/// checkpoint.
const LOG_COMPACT: u64 = 1 << 20;

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
    meta: File,
    writable: bool,
    /// The sizes.
    pub geo: Geometry,
    /// Reference count of every pool block (0 = free: the free list).
    refcount: Vec<u32>,
    free: u64,
    hint: u64,
    /// Thin devices by name.
    pub devices: BTreeMap<String, Device>,
    // metadata log state
    gen: u64,
    area: u32,
    ckpt_len: u64,
    log_pos: u64,
    next_seq: u64,
}

fn corrupt(path: &Path, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

impl Pool {
    /// The data file.
    pub fn data_path(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The metadata file.
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    /// How a full pool names itself in `Error::NoSpace`.
    pub fn what_data(&self) -> String {
        format!("thin pool {} (data)", self.data_path().display())
    }

    /// How a full metadata file names itself in `Error::NoSpace`.
    pub fn what_meta(&self) -> String {
        format!("thin pool {} (metadata)", self.meta_path().display())
    }

    fn area_size(&self) -> u64 {
        Self::area_size_of(self.geo.meta_size)
    }

    fn area_size_of(meta_size: u64) -> u64 {
        (meta_size.saturating_sub(AREAS_START) / 2) & !(SLOT - 1)
    }

    fn area_start(&self, area: u32) -> u64 {
        AREAS_START + u64::from(area) * self.area_size()
    }

    /// Creates the two sparse files and an empty pool (checkpoint 1, generation 1).
    pub fn create(dir: &Path, geo: Geometry) -> Result<Pool> {
        std::fs::create_dir_all(dir).at(dir)?;
        let open = |p: PathBuf, len: u64| -> Result<File> {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&p)
                .at(&p)?;
            f.set_len(len).at(&p)?;
            Ok(f)
        };
        let data = open(dir.join("data"), geo.data_size)?;
        let meta = open(dir.join("metadata"), geo.meta_size)?;
        let mut pool = Pool {
            dir: dir.to_path_buf(),
            data,
            meta,
            writable: true,
            geo,
            refcount: vec![0; usize::try_from(geo.data_blocks()).unwrap_or(0)],
            free: geo.data_blocks(),
            hint: 0,
            devices: BTreeMap::new(),
            gen: 0,
            area: 1,
            ckpt_len: 0,
            log_pos: 0,
            next_seq: 1,
        };
        let mut m = Meter::new();
        if !pool.checkpoint(&mut m)? {
            return Err(corrupt(
                &pool.meta_path(),
                "metadata file too small for a checkpoint",
            ));
        }
        pool.data.sync_all().at(pool.data_path())?;
        crate::store::fsync_dir(dir)?;
        Ok(pool)
    }

    /// Opens an existing pool: the newest valid superblock, its checkpoint, then every
    /// complete record of the log after it (a torn last record is ignored).
    pub fn open(dir: &Path, writable: bool) -> Result<Pool> {
        let open = |p: PathBuf| -> Result<File> {
            std::fs::OpenOptions::new()
                .read(true)
                .write(writable)
                .open(&p)
                .at(&p)
        };
        let data = open(dir.join("data"))?;
        let meta = open(dir.join("metadata"))?;
        let meta_path = dir.join("metadata");
        let meta_size = meta.metadata().at(&meta_path)?.len();
        // the newest valid superblock
        let mut best: Option<(u64, u32, u64, u64, Geometry)> = None;
        for slot in 0..2u64 {
            let mut b = vec![0u8; 80];
            meta.read_exact_at(&mut b, slot * SLOT).at(&meta_path)?;
            if &b[0..8] != SB_MAGIC || get_u64(&b, 72) != checksum(&b[..72]) {
                continue;
            }
            let gen = get_u64(&b, 8);
            let geo = Geometry {
                block_size: get_u64(&b, 40),
                data_size: get_u64(&b, 48),
                meta_size: get_u64(&b, 56),
                base_size: get_u64(&b, 64),
            };
            if best.as_ref().is_none_or(|x| gen > x.0) {
                best = Some((gen, get_u32(&b, 16), get_u64(&b, 24), get_u64(&b, 32), geo));
            }
        }
        let Some((gen, area, ckpt_len, ckpt_sum, geo)) = best else {
            return Err(corrupt(&meta_path, "no valid superblock in either slot"));
        };
        let data_size = data.metadata().at(dir.join("data"))?.len();
        if geo.meta_size != meta_size
            || data_size != geo.data_size
            || geo.block_size == 0
            || area > 1
        {
            return Err(corrupt(&meta_path, "superblock does not match the file"));
        }
        let mut pool = Pool {
            dir: dir.to_path_buf(),
            data,
            meta,
            writable,
            geo,
            refcount: vec![0; usize::try_from(geo.data_blocks()).unwrap_or(0)],
            free: 0,
            hint: 0,
            devices: BTreeMap::new(),
            gen,
            area,
            ckpt_len,
            log_pos: 0,
            next_seq: 0,
        };
        let start = pool.area_start(area);
        if ckpt_len > pool.area_size() {
            return Err(corrupt(&meta_path, "checkpoint larger than its area"));
        }
        let mut ck = vec![0u8; usize::try_from(ckpt_len).unwrap_or(0)];
        pool.meta.read_exact_at(&mut ck, start).at(&meta_path)?;
        if checksum(&ck) != ckpt_sum {
            return Err(corrupt(&meta_path, "checkpoint checksum mismatch"));
        }
        let stored_refs = pool
            .load_checkpoint(&ck)
            .ok_or_else(|| corrupt(&meta_path, "checkpoint does not parse"))?;
        // reference counts must be what the maps say
        pool.recount();
        if stored_refs != pool.refcount {
            return Err(corrupt(
                &meta_path,
                "checkpoint reference counts disagree with the maps",
            ));
        }
        // replay the log
        pool.log_pos = start + ckpt_len;
        let end = start + pool.area_size();
        loop {
            if pool.log_pos + REC_HEADER > end {
                break;
            }
            let mut h = vec![0u8; REC_HEADER as usize];
            pool.meta
                .read_exact_at(&mut h, pool.log_pos)
                .at(&meta_path)?;
            let len = u64::from(get_u32(&h, 12));
            if get_u32(&h, 0) != REC_MAGIC
                || get_u64(&h, 4) != pool.next_seq
                || pool.log_pos + REC_HEADER + len > end
            {
                break;
            }
            let mut body = vec![0u8; len as usize];
            pool.meta
                .read_exact_at(&mut body, pool.log_pos + REC_HEADER)
                .at(&meta_path)?;
            let mut summed = h[4..12].to_vec();
            summed.extend_from_slice(&body);
            if checksum(&summed) != get_u64(&h, 16) {
                break;
            }
            let ops = MetaOp::decode_all(&body)
                .ok_or_else(|| corrupt(&meta_path, "log record does not parse"))?;
            for op in &ops {
                pool.apply(op);
            }
            pool.log_pos += REC_HEADER + len;
            pool.next_seq += 1;
        }
        Ok(pool)
    }

    fn recount(&mut self) {
        self.refcount.iter_mut().for_each(|r| *r = 0);
        for d in self.devices.values() {
            for &p1 in &d.map {
                if p1 != 0 {
                    if let Some(r) = self.refcount.get_mut(p1 as usize - 1) {
                        *r += 1;
                    }
                }
            }
        }
        self.free = self.refcount.iter().filter(|r| **r == 0).count() as u64;
        self.hint = 0;
    }

    /// Reads a checkpoint into the devices; returns the stored reference counts.
    fn load_checkpoint(&mut self, ck: &[u8]) -> Option<Vec<u32>> {
        let mut d = Dec::new(ck);
        if d.u32()? != CKPT_MAGIC {
            return None;
        }
        self.next_seq = d.u64()? + 1;
        let ndev = d.u32()?;
        for _ in 0..ndev {
            let name = d.str()?;
            let nblocks = d.u64()?;
            let n = d.u32()?;
            let mut dev = Device::new(nblocks);
            for _ in 0..n {
                let l = d.u32()?;
                let p1 = d.u32()?;
                dev.set(l, p1);
            }
            self.devices.insert(name, dev);
        }
        let nref = d.u32()?;
        let mut refs = vec![0u32; self.refcount.len()];
        for _ in 0..nref {
            let p = d.u32()? as usize;
            let rc = d.u32()?;
            *refs.get_mut(p)? = rc;
        }
        d.done().then_some(refs)
    }

    /// Writes a checkpoint of the committed state into the other area and makes it current
    /// with a new superblock generation (two fsyncs). `Ok(false)` when it does not fit.
    fn checkpoint(&mut self, meter: &mut Meter) -> Result<bool> {
        let mp = self.meta_path();
        let mut e = Enc::default();
        e.u32(CKPT_MAGIC);
        e.u64(self.next_seq - 1);
        e.u32(self.devices.len() as u32);
        for (name, dev) in &self.devices {
            e.str(name);
            e.u64(dev.nblocks);
            let mapped: Vec<(usize, u32)> = dev
                .map
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
        let refs: Vec<(usize, u32)> = self
            .refcount
            .iter()
            .enumerate()
            .filter(|(_, r)| **r != 0)
            .map(|(p, r)| (p, *r))
            .collect();
        e.u32(refs.len() as u32);
        for (p, r) in refs {
            e.u32(p as u32);
            e.u32(r);
        }
        let ck = e.0;
        if ck.len() as u64 > self.area_size() {
            return Ok(false);
        }
        let area = 1 - self.area;
        let start = self.area_start(area);
        self.meta.write_all_at(&ck, start).at(&mp)?;
        self.meta.sync_data().at(&mp)?;
        let gen = self.gen + 1;
        let mut sb = Vec::with_capacity(80);
        sb.extend_from_slice(SB_MAGIC);
        sb.extend_from_slice(&gen.to_le_bytes());
        sb.extend_from_slice(&area.to_le_bytes());
        sb.extend_from_slice(&0u32.to_le_bytes());
        sb.extend_from_slice(&(ck.len() as u64).to_le_bytes());
        sb.extend_from_slice(&checksum(&ck).to_le_bytes());
        for v in [
            self.geo.block_size,
            self.geo.data_size,
            self.geo.meta_size,
            self.geo.base_size,
        ] {
            sb.extend_from_slice(&v.to_le_bytes());
        }
        let sum = checksum(&sb);
        sb.extend_from_slice(&sum.to_le_bytes());
        self.meta.write_all_at(&sb, (gen % 2) * SLOT).at(&mp)?;
        self.meta.sync_data().at(&mp)?;
        meter.counts.fsyncs += 2;
        meter.counts.metadata_writes += 1;
        meter.step(|| {
            format!(
                "thin pool: metadata log compacted into checkpoint generation {gen} ({} bytes)",
                ck.len()
            )
        });
        self.gen = gen;
        self.area = area;
        self.ckpt_len = ck.len() as u64;
        self.log_pos = start + self.ckpt_len;
        Ok(true)
    }

    /// Compacts the log into a checkpoint now (tests, tools).
    pub fn compact(&mut self, meter: &mut Meter) -> Result<bool> {
        self.checkpoint(meter)
    }

    /// Where the next log record goes in the metadata file.
    pub fn log_pos(&self) -> u64 {
        self.log_pos
    }

    /// Bytes a record of `ops` takes in the log.
    pub fn record_len(ops: &[MetaOp]) -> u64 {
        REC_HEADER + MetaOp::encode_all(ops).len() as u64
    }

    /// True when the log has room for a record of `len` bytes, compacting it first if
    /// needed; `Ok(false)` when even a fresh checkpoint leaves no room.
    pub fn make_log_room(&mut self, len: u64, meter: &mut Meter) -> Result<bool> {
        let end = self.area_start(self.area) + self.area_size();
        if self.log_pos + len <= end {
            return Ok(true);
        }
        if !self.checkpoint(meter)? {
            return Ok(false);
        }
        let end = self.area_start(self.area) + self.area_size();
        Ok(self.log_pos + len <= end)
    }

    /// Appends one record and fsyncs it: the commit point of an operation. Then applies
    /// the ops to the in-memory state, punches the blocks that became free, and compacts
    /// the log when it has grown large.
    /// `allocated_last` is the highest fresh pool block the ops map (every free block
    /// below it was taken too).
    pub fn commit(
        &mut self,
        ops: &[MetaOp],
        allocated_last: Option<u32>,
        meter: &mut Meter,
    ) -> Result<Vec<u32>> {
        let mp = self.meta_path();
        let body = MetaOp::encode_all(ops);
        let mut rec = Vec::with_capacity(body.len() + REC_HEADER as usize);
        rec.extend_from_slice(&REC_MAGIC.to_le_bytes());
        rec.extend_from_slice(&self.next_seq.to_le_bytes());
        rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
        let mut summed = self.next_seq.to_le_bytes().to_vec();
        summed.extend_from_slice(&body);
        rec.extend_from_slice(&checksum(&summed).to_le_bytes());
        rec.extend_from_slice(&body);
        if !self.make_log_room(rec.len() as u64, meter)? {
            return Err(corrupt(&mp, "no room in the metadata log"));
        }
        self.meta.write_all_at(&rec, self.log_pos).at(&mp)?;
        self.meta.sync_data().at(&mp)?;
        meter.counts.fsyncs += 1;
        meter.counts.metadata_writes += 1;
        self.log_pos += rec.len() as u64;
        self.next_seq += 1;
        if let Some(last) = allocated_last {
            self.advance_hint(last);
        }
        let mut freed = Vec::new();
        for op in ops {
            freed.extend(self.apply(op));
        }
        for &p in &freed {
            self.discard(p);
        }
        let log_bytes = self.log_pos - self.area_start(self.area) - self.ckpt_len;
        if log_bytes > LOG_COMPACT.max(self.ckpt_len) {
            // the record is committed; a failed compaction leaves the log as it is
            let _ = self.checkpoint(meter);
        }
        Ok(freed)
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
                for &p1 in &dev.map {
                    if p1 != 0 {
                        self.inc(p1 - 1);
                    }
                }
                self.devices.insert(name.clone(), dev);
            }
            MetaOp::Delete { name } => {
                if let Some(dev) = self.devices.remove(name) {
                    for &p1 in &dev.map {
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
        if let Some(r) = self.refcount.get_mut(p as usize) {
            if *r == 0 {
                self.free = self.free.saturating_sub(1);
            }
            *r += 1;
        }
    }

    /// True when the block became free.
    fn dec(&mut self, p: u32) -> bool {
        if let Some(r) = self.refcount.get_mut(p as usize) {
            if *r > 0 {
                *r -= 1;
                if *r == 0 {
                    self.free += 1;
                    self.hint = self.hint.min(u64::from(p));
                    return true;
                }
            }
        }
        false
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
        self.refcount.get(p as usize).copied().unwrap_or(0)
    }

    /// Free pool blocks.
    pub fn free_blocks(&self) -> u64 {
        self.free
    }

    /// The `n` lowest free pool blocks (none of them referenced by the committed state).
    pub fn pick_free(&self, n: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(n);
        let mut p = self.hint as usize;
        while out.len() < n && p < self.refcount.len() {
            if self.refcount[p] == 0 {
                out.push(p as u32);
            }
            p += 1;
        }
        out
    }

    /// Blocks a model allocation must leave free, so that rewriting blocks a device owns
    /// alone (shadowed for crash safety) still works when the pool is otherwise full.
    pub fn reserve(&self) -> u64 {
        (self.geo.data_blocks() / 32).clamp(1, 16)
    }

    /// Notes that the blocks up to `p` are all in use (after an allocation).
    fn advance_hint(&mut self, p: u32) {
        if u64::from(p) >= self.hint {
            self.hint = u64::from(p) + 1;
        }
    }

    /// Reads `buf.len()` bytes of pool block `p` from `off`.
    pub fn read_at(&self, p: u32, off: u64, buf: &mut [u8]) -> Result<()> {
        let pos = u64::from(p) * self.geo.block_size + off;
        self.data.read_exact_at(buf, pos).at(self.data_path())
    }

    /// Writes a whole pool block (only ever a block no committed map points to).
    pub fn write_block(&self, p: u32, block: &[u8]) -> Result<()> {
        let pos = u64::from(p) * self.geo.block_size;
        self.data.write_all_at(block, pos).at(self.data_path())
    }

    /// Makes the data file's writes durable.
    pub fn sync_data(&self) -> Result<()> {
        self.data.sync_data().at(self.data_path())
    }

    /// Bytes of the metadata file in use: superblocks, checkpoint and log.
    pub fn meta_used(&self) -> u64 {
        AREAS_START + (self.log_pos - self.area_start(self.area))
    }

    /// Pool blocks in use.
    pub fn used_blocks(&self) -> u64 {
        self.geo.data_blocks() - self.free
    }

    /// The metadata generation (superblock) and the next record's sequence number.
    pub fn generation(&self) -> (u64, u64) {
        (self.gen, self.next_seq)
    }
}
