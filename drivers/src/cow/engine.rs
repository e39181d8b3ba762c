//! The engine: the pool file of 4 KiB sectors, their reference counts, the metadata log
//! (the shared [`crate::blockpool::MetaLog`]) and the subvolumes, with one commit path for
//! every change: data first, fsync, then the log record (the commit point), then apply.

use super::ops::{decode_checkpoint, encode_checkpoint, Op};
use super::tree::{held_minus, Copied, Inode, Tree, ROOT_INO};
use crate::blockpool::{
    corrupt, create_data, open_checked, open_data, Batch, Examined, MetaFormat, MetaLog, Opened,
    RefTable, META_FILE,
};
use crate::codec::Record;
use layerlab_core::{Error, FileKind, IoContext, LayerId, LayerPath, Meter, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes per pool sector: the allocation unit of the pool.
pub const SECTOR: u64 = 4096;
/// Size of the (sparse) metadata file.
pub const META_SIZE: u64 = 1 << 30;

/// The sizes and settings of a pool (kept in the metadata superblock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// The copy-on-write unit: btrfs's sector, zfs's record.
    pub unit: u64,
    /// Records are LZ4-compressed.
    pub compress: bool,
    /// Bytes of the pool (the data file may grow to this; it is sparse).
    pub pool_size: u64,
    /// The largest disk extent one write allocates, in bytes (a multiple of `unit`):
    /// btrfs's 128 MiB; zfs's record (every record is its own block).
    pub max_extent: u64,
    /// The largest file kept inline in its metadata (btrfs's `max_inline`, 2048 bytes; 0:
    /// never, as zfs).
    pub max_inline: u64,
}

impl Geometry {
    /// Pool sectors per unit.
    pub fn spu(&self) -> u64 {
        self.unit / SECTOR
    }

    /// The second superblock parameter: compression in bit 0, `max_inline` from bit 8
    /// (read back by [`Engine::open`]).
    pub fn flags(&self) -> u64 {
        u64::from(self.compress) | (self.max_inline << 8)
    }

    /// Units per disk extent at most.
    pub fn units_per_extent(&self) -> u64 {
        (self.max_extent / self.unit).max(1)
    }
}

/// The engine of one store.
#[derive(Debug)]
pub struct Engine {
    dir: PathBuf,
    data: File,
    log: MetaLog,
    writable: bool,
    label: &'static str,
    /// Sizes and settings.
    pub geo: Geometry,
    /// Reference counts of pool sectors.
    pub refs: RefTable,
    /// Subvolumes (and snapshots) by name.
    pub subvols: BTreeMap<String, Tree>,
    /// The CRC-32C of every pool sector in use, as written (btrfs's csum tree, zfs's
    /// block-pointer checksums): checked on every read.
    pub sums: BTreeMap<u64, u32>,
    /// The batch ([`Engine::begin_batch`]) whose data and record fsyncs wait for its end.
    batch: Batch,
}

/// The inode `ino` of subvolume `sv`, made the subvolume's own (see [`Tree::get_mut`]);
/// `None` when either is gone.
fn inode_mut<'a>(
    subvols: &'a mut BTreeMap<String, Tree>,
    refs: &mut RefTable,
    sv: &str,
    ino: u64,
    copied: &mut Copied,
) -> Option<&'a mut Inode> {
    subvols.get_mut(sv)?.get_mut(ino, refs, copied)
}

/// The pool file's name in the engine's directory.
const DATA_FILE: &str = "pool";

/// The current time: seconds since the epoch and nanoseconds.
pub use layerlab_core::time::now as timestamp;

/// What makes an operation's record durable on the filesystem modelled, as the Meter counts
/// its fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// An fsync there: a log commit (btrfs's log tree, zfs's ZIL), the data written before
    /// the record part of it (Meter `log_commits`).
    LogCommit,
    /// A transaction commit (a btrfs snapshot, a zfs snapshot or clone: the txg sync it is
    /// made in), which makes the record durable with it (Meter `commits`).
    InTransaction,
}

impl Engine {
    /// The pool data file.
    pub fn data_path(&self) -> PathBuf {
        self.dir.join(DATA_FILE)
    }

    /// The metadata file.
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join(META_FILE)
    }

    /// How a full pool names itself in `Error::NoSpace`.
    pub fn what_data(&self) -> String {
        format!("{} pool {}", self.label, self.data_path().display())
    }

    /// Creates the pool file and the metadata file under `dir`.
    pub fn create(dir: &Path, geo: Geometry, format: MetaFormat) -> Result<Engine> {
        let (data, dp) = create_data(dir, DATA_FILE)?;
        let body = encode_checkpoint(&BTreeMap::new(), std::iter::empty(), &BTreeMap::new());
        let log = MetaLog::create(
            &dir.join(META_FILE),
            META_SIZE,
            format,
            [geo.unit, geo.flags(), geo.pool_size, geo.max_extent],
            &body,
        )?;
        data.sync_all().at(&dp)?;
        crate::store::fsync_dir(dir)?;
        Ok(Engine::empty(dir, data, log, true, format.label, geo))
    }

    /// An engine over the pool file `data` and the metadata `log` in `dir`, holding no
    /// subvolume yet: every sector free, no checksums.
    fn empty(
        dir: &Path,
        data: File,
        log: MetaLog,
        writable: bool,
        label: &'static str,
        geo: Geometry,
    ) -> Engine {
        Engine {
            dir: dir.to_path_buf(),
            data,
            log,
            writable,
            label,
            geo,
            refs: RefTable::new(geo.pool_size / SECTOR),
            subvols: BTreeMap::new(),
            sums: BTreeMap::new(),
            batch: Batch::default(),
        }
    }

    /// Opens the engine: checkpoint, reference counts checked against the trees, then the
    /// log replayed.
    pub fn open(dir: &Path, format: MetaFormat, writable: bool) -> Result<Engine> {
        open_checked(dir, format, writable, "the trees", |opened| {
            Self::load(dir, opened, format.label, writable)
        })
    }

    /// The metadata file as `fsck` reads it (see [`MetaLog::examine`]).
    pub fn examine(dir: &Path, format: MetaFormat, writable: bool) -> Result<Examined> {
        MetaLog::examine(&dir.join(META_FILE), format, writable)
    }

    /// The engine a metadata file holds: the checkpoint, its reference counts recounted
    /// from the trees (false: the stored ones disagree), then the records replayed.
    pub fn load(
        dir: &Path,
        opened: Opened,
        label: &'static str,
        writable: bool,
    ) -> Result<(Engine, bool)> {
        let (data, _) = open_data(dir, DATA_FILE, writable)?;
        let mp = dir.join(META_FILE);
        let [unit, compress, pool_size, max_extent] = opened.log.params();
        // the second parameter: compression in bit 0, max_inline from bit 8
        let geo = Geometry {
            unit,
            compress: compress & 1 != 0,
            pool_size,
            max_extent,
            max_inline: compress >> 8,
        };
        if unit < SECTOR || unit % SECTOR != 0 {
            return Err(corrupt(&mp, "superblock names no valid unit size"));
        }
        if max_extent < unit || max_extent % unit != 0 {
            return Err(corrupt(&mp, "superblock names no valid extent size"));
        }
        if geo.max_inline >= unit {
            return Err(corrupt(
                &mp,
                "superblock names an inline limit of a unit or more",
            ));
        }
        let cp = decode_checkpoint(&opened.checkpoint)
            .ok_or_else(|| corrupt(&mp, "checkpoint does not parse"))?;
        let mut e = Engine::empty(dir, data, opened.log, writable, label, geo);
        for i in &cp.inodes {
            for s in i.held_sectors() {
                e.refs.inc(s);
            }
        }
        let stored: Vec<(u64, u32)> = cp.refs;
        let counted: Vec<(u64, u32)> = e.refs.nonzero().collect();
        let refs_agree = stored == counted;
        e.subvols = cp.subvols;
        e.sums = cp.sums;
        drop(cp.inodes);
        for (k, rec) in opened.records.iter().enumerate() {
            let ops = Op::decode_all(rec).ok_or_else(|| {
                corrupt(
                    &mp,
                    format!("log record {} after the checkpoint does not parse", k + 1),
                )
            })?;
            let mut freed = Vec::new();
            for op in &ops {
                e.apply(op, &mut freed, &mut Copied::default());
            }
            e.forget_sums(&freed);
        }
        Ok((e, refs_agree))
    }

    /// A subvolume's tree.
    pub fn tree(&self, sv: &str) -> Option<&Tree> {
        self.subvols.get(sv)
    }

    /// Makes `ops` durable and applies them: the record is appended and fsynced (the
    /// commit point; data written by the caller before this must already be synced), then
    /// applied in memory; sectors that became free are punched out of the pool file.
    /// `durable` says what the Meter counts for the fsync (in a batch: nothing yet, the
    /// batch's end counts its one log commit). Returns the tree nodes copied because they
    /// were shared.
    pub fn commit(
        &mut self,
        ops: &[Op],
        (layer, path): (&LayerId, &LayerPath),
        durable: Durable,
        meter: &mut Meter,
    ) -> Result<u64> {
        if ops.is_empty() {
            return Ok(0);
        }
        let body = Op::encode_all(ops);
        let len = MetaLog::record_len(body.len());
        if !self.log.fits(len) {
            self.checkpoint(meter)?;
            if !self.log.fits(len) {
                return Err(Error::NoSpace {
                    layer: layer.clone(),
                    path: path.clone(),
                    what: format!("{} metadata {}", self.label, self.meta_path().display()),
                });
            }
        }
        self.log.append(&body, meter)?;
        match durable {
            Durable::InTransaction => meter.counts.commits += 1,
            Durable::LogCommit if !self.batch.active() => meter.counts.log_commits += 1,
            Durable::LogCommit => {}
        }
        let mut freed = Vec::new();
        let mut copied = Copied::default();
        for op in ops {
            self.apply(op, &mut freed, &mut copied);
        }
        self.forget_sums(&freed);
        // data checksums travel with the data they cover: no metadata write of their own
        let counted = ops.iter().filter(|o| !matches!(o, Op::Sums { .. })).count();
        meter.counts.metadata_writes += counted as u64 + copied.nodes;
        self.punch(&freed);
        if self.log.wants_compaction() {
            // the record is committed; a failed compaction leaves the log as it is
            let _ = self.checkpoint(meter);
        }
        Ok(copied.nodes)
    }

    /// Compacts the log into a checkpoint now.
    pub fn checkpoint(&mut self, meter: &mut Meter) -> Result<bool> {
        // the checkpoint names the batch's sectors: they are durable before it is
        self.batch.sync_data(&self.data, &self.data_path())?;
        let body = encode_checkpoint(&self.subvols, self.refs.nonzero(), &self.sums);
        self.log.checkpoint(&body, meter)
    }

    /// Forgets the checksums of sectors that became free.
    fn forget_sums(&mut self, freed: &[u64]) {
        for s in freed {
            if self.refs.get(*s) == 0 {
                self.sums.remove(s);
            }
        }
    }

    /// The op recording the checksum of each sector of `bytes`, to be written at `sector`.
    pub fn sums_op(sector: u64, bytes: &[u8]) -> Op {
        Op::Sums {
            sector,
            sums: bytes
                .chunks(SECTOR as usize)
                .map(crate::codec::checksum)
                .collect(),
        }
    }

    /// Reads `nsec` whole sectors from `sector`, each checked against its checksum: a
    /// mismatch (or a sector in use with no checksum) is [`Error::Checksum`] naming the
    /// layer, the path and the pool offset, and no byte is returned.
    pub fn read_verified(
        &self,
        sector: u64,
        nsec: u64,
        layer: &LayerId,
        path: &LayerPath,
    ) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; (nsec * SECTOR) as usize];
        self.read_bytes(sector * SECTOR, &mut buf)?;
        for (k, chunk) in buf.chunks(SECTOR as usize).enumerate() {
            let s = sector + k as u64;
            if self.sums.get(&s) != Some(&crate::codec::checksum(chunk)) {
                return Err(Error::Checksum {
                    layer: layer.clone(),
                    path: path.clone(),
                    file: self.data_path(),
                    offset: s * SECTOR,
                });
            }
        }
        Ok(buf)
    }

    /// Punches free sectors out of the pool file (so its allocated size is the pool's use).
    pub fn punch(&self, freed: &[u64]) {
        if !self.writable || freed.is_empty() {
            return;
        }
        let mut v = freed.to_vec();
        v.sort_unstable();
        let mut i = 0;
        while i < v.len() {
            let mut j = i + 1;
            while j < v.len() && v[j] == v[j - 1] + 1 {
                j += 1;
            }
            let _ = rustix::fs::fallocate(
                &self.data,
                rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
                v[i] * SECTOR,
                (j - i) as u64 * SECTOR,
            );
            i = j;
        }
    }

    /// The id a new subvolume gets: one more than the highest in use (as btrfs hands out
    /// root objectids), the first 256.
    fn next_subvol_id(&self) -> u64 {
        let highest = self.subvols.values().map(|t| t.id).max().unwrap_or(0);
        (highest + 1).max(super::roottree::FIRST_SUBVOLUME_ID)
    }

    /// Applies one op in memory (never fails: ops are checked when planned).
    fn apply(&mut self, op: &Op, freed: &mut Vec<u64>, copied: &mut Copied) {
        match op {
            Op::Create {
                sv,
                origin,
                mtime,
                mtime_nsec,
            } => {
                let id = self.next_subvol_id();
                let mut tree = match origin {
                    Some(o) => self.subvols.get(o).cloned().unwrap_or_default(),
                    None => {
                        let mut t = Tree {
                            root: None,
                            next_ino: ROOT_INO + 1,
                            id,
                        };
                        let mut root = Inode::new(FileKind::Dir, 0o755, *mtime);
                        root.attr.mtime_nsec = *mtime_nsec;
                        t.insert(ROOT_INO, root, copied);
                        t
                    }
                };
                tree.id = id;
                if let Some(old) = self.subvols.insert(sv.clone(), tree) {
                    old.release(&mut self.refs, freed);
                }
            }
            Op::Delete { sv } => {
                if let Some(t) = self.subvols.remove(sv) {
                    t.release(&mut self.refs, freed);
                }
            }
            Op::Attr { sv, ino, attr } => {
                let Some(t) = self.subvols.get_mut(sv) else {
                    return;
                };
                match t.get_mut(*ino, &mut self.refs, copied) {
                    Some(i) => i.attr.clone_from(attr),
                    None => t.insert(*ino, Inode::of(attr.clone()), copied),
                }
            }
            Op::Link {
                sv,
                dir,
                name,
                ino,
                kind,
                mtime,
            } => {
                if let Some(d) = inode_mut(&mut self.subvols, &mut self.refs, sv, *dir, copied) {
                    d.dir.insert(name.clone(), (*ino, *kind));
                    (d.attr.mtime, d.attr.mtime_nsec) = *mtime;
                }
            }
            Op::Unlink {
                sv,
                dir,
                name,
                mtime,
            } => {
                if let Some(d) = inode_mut(&mut self.subvols, &mut self.refs, sv, *dir, copied) {
                    d.dir.remove(name);
                    (d.attr.mtime, d.attr.mtime_nsec) = *mtime;
                }
            }
            Op::Drop { sv, ino } => {
                if let Some(t) = self.subvols.get_mut(sv) {
                    t.remove(*ino, &mut self.refs, freed);
                }
            }
            Op::Inline { sv, ino, data } => {
                if let Some(i) = inode_mut(&mut self.subvols, &mut self.refs, sv, *ino, copied) {
                    i.inline.clone_from(data);
                }
            }
            Op::Xattr {
                sv,
                ino,
                name,
                value,
            } => {
                if let Some(i) = inode_mut(&mut self.subvols, &mut self.refs, sv, *ino, copied) {
                    match value {
                        Some(v) => i.xattrs.insert(name.clone(), v.clone()),
                        None => i.xattrs.remove(name),
                    };
                }
            }
            Op::Sums { sector, sums } => {
                for (k, v) in sums.iter().enumerate() {
                    self.sums.insert(sector + k as u64, *v);
                }
            }
            Op::Map {
                sv,
                ino,
                from,
                to,
                exts,
                mtime,
            } => {
                let Some(i) = inode_mut(&mut self.subvols, &mut self.refs, sv, *ino, copied) else {
                    return;
                };
                if let Some(m) = mtime {
                    (i.attr.mtime, i.attr.mtime_nsec) = *m;
                }
                // the inode's reference moves with the disk extents it holds any part of
                let before = i.held();
                i.unmap(*from, *to);
                for (u, x) in exts {
                    i.map(*u, *x);
                }
                if !exts.is_empty() {
                    // a file with extents keeps no inline bytes
                    i.inline.clear();
                }
                let after = i.held();
                for (d, n) in held_minus(&after, &before) {
                    for s in d..d + n {
                        self.refs.inc(s);
                    }
                }
                for (d, n) in held_minus(&before, &after) {
                    for s in d..d + n {
                        if self.refs.dec(s) {
                            freed.push(s);
                        }
                    }
                }
            }
        }
    }

    /// Where pieces of `sizes` sectors go, each whole in a free run at or after `from`,
    /// in order and without overlap: all in the lowest run that holds them together
    /// when there is one, else in the free runs from the lowest up (a fragmented
    /// pool; the tail of a run too short for the next piece is skipped). `None` when the
    /// free runs cannot hold them.
    pub fn place_pieces(&self, sizes: &[u64], from: u64) -> Option<Vec<u64>> {
        let total = sizes.iter().sum();
        if let Some(start) = self.refs.find_run(total, from) {
            let mut at = start;
            return Some(
                sizes
                    .iter()
                    .map(|n| {
                        at += n;
                        at - n
                    })
                    .collect(),
            );
        }
        let mut out = Vec::with_capacity(sizes.len());
        let mut runs = self.refs.free_runs(from);
        let (mut at, mut left) = runs.next()?;
        for &n in sizes {
            while left < n {
                (at, left) = runs.next()?;
            }
            out.push(at);
            at += n;
            left -= n;
        }
        Some(out)
    }

    /// Writes bytes at a sector (only ever sectors no committed tree points to). Whole
    /// sectors of zeros at the end (the padding of a small file's record: zfs's 128 KiB
    /// record of a 1 KiB file) are punched out of the pool file rather than written, so a
    /// small file costs the host its bytes, not its record (the pool's accounting is the
    /// same: the sectors are in use and their checksums are those of zeros). Where the
    /// host cannot punch, the zeros are written.
    pub fn write_sectors(&self, sector: u64, bytes: &[u8]) -> Result<()> {
        let sec = SECTOR as usize;
        let whole = bytes.len() / sec * sec;
        const ZERO: [u8; SECTOR as usize] = [0; SECTOR as usize];
        let data_end = bytes[..whole]
            .chunks(sec)
            .rposition(|c| c != ZERO)
            .map_or(0, |k| (k + 1) * sec);
        let tail = (whole - data_end) as u64;
        let punched = tail > 0
            && rustix::fs::fallocate(
                &self.data,
                rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
                sector * SECTOR + data_end as u64,
                tail,
            )
            .is_ok();
        let (head, rest) = bytes.split_at(data_end);
        let head = if punched { head } else { bytes };
        self.data
            .write_all_at(head, sector * SECTOR)
            .at(self.data_path())?;
        if punched && !rest[whole - data_end..].is_empty() {
            // a part sector after the zeros (never made by the engine, which pads)
            self.data
                .write_all_at(&rest[whole - data_end..], sector * SECTOR + whole as u64)
                .at(self.data_path())?;
        }
        Ok(())
    }

    /// Reads bytes at a byte position of the pool file (zeros past its end).
    pub fn read_bytes(&self, pos: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .data
                .read_at(&mut buf[done..], pos + done as u64)
                .at(self.data_path())?;
            if n == 0 {
                buf[done..].fill(0);
                break;
            }
            done += n;
        }
        Ok(())
    }

    /// The regions of the pool file that hold bytes on the host.
    pub fn data_regions(&self) -> Vec<(u64, u64)> {
        let len = self.data.metadata().map(|m| m.len()).unwrap_or(0);
        crate::blockpool::data_regions(&self.data, 0, len)
    }

    /// Makes the pool file's writes durable.
    pub fn sync_data(&self) -> Result<()> {
        self.data.sync_data().at(self.data_path())
    }

    /// Makes the data a record is about to name durable before the record: now, or in a
    /// batch at its end (the batch's records are made durable after its data).
    pub fn sync_data_before_record(&mut self) -> Result<()> {
        if self.batch.active() {
            self.batch.data_written();
            return Ok(());
        }
        self.sync_data()
    }

    /// Starts a batch: data and record fsyncs are deferred to [`Engine::end_batch`].
    pub fn begin_batch(&mut self) {
        self.batch.begin(&mut self.log);
    }

    /// Ends a batch: the pool data fsynced, then the records (the batch's commit point).
    /// After a failure, a second call retries the fsyncs that failed.
    pub fn end_batch(&mut self, meter: &mut Meter) -> Result<()> {
        let path = self.data_path();
        self.batch.end(&mut self.log, &self.data, &path, meter)
    }

    /// Bytes of the metadata file in use.
    pub fn meta_used(&self) -> u64 {
        self.log.used()
    }

    /// Superblock generation and next record number.
    pub fn generation(&self) -> (u64, u64) {
        self.log.generation()
    }

    /// Where the next record goes in the metadata file (tests: bytes a change logged).
    pub fn log_pos(&self) -> u64 {
        self.log.log_pos()
    }
}
