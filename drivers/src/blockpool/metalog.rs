//! A crash-safe metadata file: two superblock slots, then two areas used in turn. An area
//! holds a checkpoint (the whole state, as the caller encodes it) followed by a log of
//! records (one per committed operation). A record is the commit point of an operation; a
//! checkpoint made current by a superblock with a higher generation is the commit point of a
//! log compaction. The layout is devicemapper's (`devicemapper/FORMAT.md`):
//!
//! ```text
//! 0      4 KiB   superblock slot 0   (slot gen % 2 is written)
//! 4 KiB  4 KiB   superblock slot 1
//! 8 KiB  half    area 0: "CKPT" u32, last record's sequence u64, body; then records
//! ...    half    area 1: the same
//! ```
//!
//! Superblock (76 bytes): magic (8), generation u64, area u32, 0 u32, checkpoint length
//! u64, checkpoint CRC-32C u32, 0 u32, four caller parameters u64, CRC-32C of all that.
//! Record: "LREC" u32, sequence u64, payload length u32, CRC-32C u32 (of the 16 header
//! bytes before it and the payload), payload.
//!
//! Replay stops at the first record whose magic, sequence (the checkpoint's + 1, + 2, ...)
//! or checksum does not match. What lies after it decides: nothing valid (zeros, a torn
//! record, stale records of an older generation, whose sequence numbers are lower) is a
//! torn tail, discarded; a valid record with a sequence number at or past the one expected,
//! anywhere in either area, is committed work that replay cannot reach (a damaged record,
//! or a damaged current superblock that made an older generation win), and the file is
//! refused with [`Error::Corrupt`] pointing at `layerlab fsck`. A compaction punches the
//! rest of the area it writes, so that scan reads little beyond the live log.

use super::files::corrupt;
use crate::codec::{checksum, checksum2, get_u32, get_u64};
use layerlab_core::{IoContext, Meter, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const CKPT_MAGIC: u32 = 0x5450_4b43; // "CKPT"
const REC_MAGIC: u32 = 0x4345_524c; // "LREC"
const SLOT: u64 = 4096;
const SB_LEN: usize = 76;
const AREAS_START: u64 = 2 * SLOT;
const REC_HEADER: u64 = 20;
const CKPT_HEADER: usize = 12;
/// The log is compacted into a checkpoint once it is larger than this and than the last
/// checkpoint.
const LOG_COMPACT: u64 = 1 << 20;
/// Bytes read at a time when the tail of a log is scanned for later records.
const SCAN_CHUNK: u64 = 1 << 20;

/// What a refusal to open says to do.
pub const RUN_FSCK: &str =
    "run `layerlab fsck` to see what is damaged and what a repair would drop";

/// A valid superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Super {
    gen: u64,
    area: u32,
    ckpt_len: u64,
    ckpt_sum: u32,
    params: [u64; 4],
}

fn encode_super(magic: &[u8; 8], s: &Super) -> Vec<u8> {
    let mut sb = Vec::with_capacity(SB_LEN);
    sb.extend_from_slice(magic);
    sb.extend_from_slice(&s.gen.to_le_bytes());
    sb.extend_from_slice(&s.area.to_le_bytes());
    sb.extend_from_slice(&0u32.to_le_bytes());
    sb.extend_from_slice(&s.ckpt_len.to_le_bytes());
    sb.extend_from_slice(&s.ckpt_sum.to_le_bytes());
    sb.extend_from_slice(&0u32.to_le_bytes());
    for v in s.params {
        sb.extend_from_slice(&v.to_le_bytes());
    }
    let sum = checksum(&sb);
    sb.extend_from_slice(&sum.to_le_bytes());
    sb
}

/// A superblock slot as read: `None` when its checksum or fields are not valid.
fn decode_super(b: &[u8]) -> Option<Super> {
    if b.len() < SB_LEN
        || get_u32(b, 72) != checksum(&b[..72])
        || get_u32(b, 20) != 0
        || get_u32(b, 36) != 0
    {
        return None;
    }
    let area = get_u32(b, 16);
    (area <= 1).then(|| Super {
        gen: get_u64(b, 8),
        area,
        ckpt_len: get_u64(b, 24),
        ckpt_sum: get_u32(b, 32),
        params: [
            get_u64(b, 40),
            get_u64(b, 48),
            get_u64(b, 56),
            get_u64(b, 64),
        ],
    })
}

/// What one superblock slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Never written (all zeros).
    Empty,
    /// A valid superblock of this generation.
    Valid(u64),
    /// A valid superblock of another version of the format (its magic).
    OtherVersion(String),
    /// Bytes that are no valid superblock.
    Damaged,
}

/// How the log ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Nothing but zeros after the last valid record.
    Clean,
    /// An incomplete or damaged last record (or stale bytes) from `pos`, nothing valid
    /// after it: discarded.
    Torn {
        /// Where the log ends.
        pos: u64,
    },
    /// A record that does not check, yet valid records follow.
    Damaged(Damage),
}

/// Where a log is damaged before its end: the record expected at `pos` (sequence `seq`)
/// does not check, yet `later` valid records follow, the first at `later_pos` with
/// sequence `later_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Where replay stopped.
    pub pos: u64,
    /// The sequence number it expected there.
    pub seq: u64,
    /// Where the first later valid record is.
    pub later_pos: u64,
    /// Its sequence number.
    pub later_seq: u64,
    /// How many consecutive valid records start there.
    pub later: u64,
}

/// Whose metadata file it is: the superblock magic of the pool's format (and version),
/// and the name the trace gives the pool ("thin pool", "btrfs").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaFormat {
    /// The superblock magic.
    pub magic: &'static [u8; 8],
    /// The pool's name in the trace.
    pub label: &'static str,
}

/// The metadata file, with the position of its log.
#[derive(Debug)]
pub struct MetaLog {
    path: PathBuf,
    file: File,
    size: u64,
    format: MetaFormat,
    sb: Super,
    log_pos: u64,
    next_seq: u64,
    /// In a batch ([`MetaLog::defer_syncs`]): records are written but not fsynced.
    deferred: bool,
    /// Records written since the last fsync.
    unsynced: bool,
}

/// A metadata file as found on open.
#[derive(Debug)]
pub struct Opened {
    /// The log, positioned after its last valid record.
    pub log: MetaLog,
    /// The current checkpoint's body (the caller's bytes).
    pub checkpoint: Vec<u8>,
    /// The payloads of the records after it, in order.
    pub records: Vec<Vec<u8>>,
}

/// A metadata file as `fsck` sees it: what open would read, what both slots hold and how
/// the log ends.
#[derive(Debug)]
pub struct Examined {
    /// The state replay reaches (records up to the first that does not check).
    pub opened: Opened,
    /// Both superblock slots.
    pub slots: [Slot; 2],
    /// How the log ends.
    pub tail: Tail,
    /// Where each record replay read starts.
    pub record_pos: Vec<u64>,
}

impl Examined {
    /// True when the state replay reaches is not the committed one (committed records
    /// follow damage): nothing may be repaired from it, nor space judged free by it.
    pub fn partial(&self) -> bool {
        matches!(self.tail, Tail::Damaged(_))
    }

    /// The live regions of the metadata file as `(first byte, length)`: each superblock
    /// slot that holds one, the current checkpoint, each record replay read.
    pub fn regions(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for (k, slot) in self.slots.iter().enumerate() {
            if *slot != Slot::Empty {
                out.push((k as u64 * SLOT, SB_LEN as u64));
            }
        }
        let (ck, log) = self.opened.log.live_range();
        out.push((ck, log - ck));
        for (k, pos) in self.record_pos.iter().enumerate() {
            let end = self
                .record_pos
                .get(k + 1)
                .copied()
                .unwrap_or(self.opened.log.log_pos());
            out.push((*pos, end - pos));
        }
        out
    }
}

/// One record parsed at a position: its sequence number and payload.
fn read_record(file: &File, path: &Path, pos: u64, end: u64) -> Result<Option<(u64, Vec<u8>)>> {
    if pos + REC_HEADER > end {
        return Ok(None);
    }
    let mut h = [0u8; REC_HEADER as usize];
    file.read_exact_at(&mut h, pos).at(path)?;
    let len = u64::from(get_u32(&h, 12));
    if get_u32(&h, 0) != REC_MAGIC || pos + REC_HEADER + len > end {
        return Ok(None);
    }
    let mut payload = vec![0u8; len as usize];
    file.read_exact_at(&mut payload, pos + REC_HEADER)
        .at(path)?;
    if checksum2(&h[..16], &payload) != get_u32(&h, 16) {
        return Ok(None);
    }
    Ok(Some((get_u64(&h, 4), payload)))
}

/// The data regions of `[from, to)` of a sparse file (the whole range where the
/// filesystem cannot tell holes).
pub fn data_regions(file: &File, from: u64, to: u64) -> Vec<(u64, u64)> {
    use rustix::fs::{seek, SeekFrom};
    let mut out = Vec::new();
    let mut pos = from;
    while pos < to {
        let start = match seek(file, SeekFrom::Data(pos)) {
            Ok(s) => s,
            Err(rustix::io::Errno::NXIO) => break,
            Err(_) => {
                out.push((pos, to));
                break;
            }
        };
        if start >= to {
            break;
        }
        let end = seek(file, SeekFrom::Hole(start)).unwrap_or(to).min(to);
        out.push((start, end));
        pos = end.max(start + 1);
    }
    out
}

/// Scans `[from, to)` for a valid record whose sequence number is at least `min_seq`;
/// also says whether any non-zero byte was seen.
fn scan_later(
    file: &File,
    path: &Path,
    from: u64,
    to: u64,
    min_seq: u64,
) -> Result<(Option<(u64, u64)>, bool)> {
    let magic = REC_MAGIC.to_le_bytes();
    let mut dirty = false;
    for (a, b) in data_regions(file, from, to) {
        let mut pos = a;
        while pos < b {
            let n = SCAN_CHUNK.min(b - pos);
            let mut buf = vec![0u8; n as usize];
            file.read_exact_at(&mut buf, pos).at(path)?;
            dirty |= buf.iter().any(|x| *x != 0);
            for (i, w) in buf.windows(4).enumerate() {
                if w != magic {
                    continue;
                }
                let at = pos + i as u64;
                if let Some((seq, _)) = read_record(file, path, at, to)? {
                    if seq >= min_seq {
                        return Ok((Some((at, seq)), dirty));
                    }
                }
            }
            if pos + n >= b {
                break;
            }
            // a magic cut by the chunk's end is found by the next chunk
            pos += n - 3;
        }
    }
    Ok((None, dirty))
}

impl MetaLog {
    /// The log of `file` (`size` bytes at `path`) with superblock `sb`, before any record is
    /// read or written: its next record numbered `next_seq`, syncs not deferred.
    fn over(
        path: &Path,
        file: File,
        size: u64,
        format: MetaFormat,
        sb: Super,
        next_seq: u64,
    ) -> MetaLog {
        MetaLog {
            path: path.to_path_buf(),
            file,
            size,
            format,
            sb,
            log_pos: 0,
            next_seq,
            deferred: false,
            unsynced: false,
        }
    }

    fn area_size_of(size: u64) -> u64 {
        (size.saturating_sub(AREAS_START) / 2) & !(SLOT - 1)
    }

    fn area_size(&self) -> u64 {
        Self::area_size_of(self.size)
    }

    fn area_start(&self, area: u32) -> u64 {
        AREAS_START + u64::from(area) * self.area_size()
    }

    /// Creates a sparse metadata file of `size` bytes in `format` whose first checkpoint is
    /// `body`.
    pub fn create(
        path: &Path,
        size: u64,
        format: MetaFormat,
        params: [u64; 4],
        body: &[u8],
    ) -> Result<MetaLog> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .at(path)?;
        file.set_len(size).at(path)?;
        let sb = Super {
            gen: 0,
            area: 1,
            ckpt_len: 0,
            ckpt_sum: 0,
            params,
        };
        let mut log = MetaLog::over(path, file, size, format, sb, 1);
        if !log.checkpoint(body, &mut Meter::new())? {
            return Err(corrupt(path, "metadata file too small for a checkpoint"));
        }
        Ok(log)
    }

    /// Opens a metadata file: the newest valid superblock, its checkpoint, and every
    /// complete record after it. A torn tail is discarded (punched out when `writable`);
    /// damage followed by valid records is refused with `Corrupt` naming `layerlab fsck`.
    pub fn open(path: &Path, format: MetaFormat, writable: bool) -> Result<Opened> {
        let ex = Self::examine(path, format, writable)?;
        match ex.tail {
            Tail::Clean => {}
            Tail::Torn { .. } => {
                if writable {
                    ex.opened.log.discard_tail()?;
                }
            }
            Tail::Damaged(d) => {
                return Err(corrupt(
                    path,
                    format!(
                        "metadata log damaged at byte {} (record {} does not check) but {} \
                         valid record(s) follow from byte {} (record {}): {RUN_FSCK}",
                        d.pos, d.seq, d.later, d.later_pos, d.later_seq
                    ),
                ))
            }
        }
        Ok(ex.opened)
    }

    /// Reads a metadata file as far as it can without changing it: both slots, the
    /// newest valid superblock's checkpoint, the records replay reaches, and how the log
    /// ends. Fails only when there is no state to read at all (no valid superblock, a
    /// checkpoint that does not check).
    pub fn examine(path: &Path, format: MetaFormat, writable: bool) -> Result<Examined> {
        let magic = format.magic;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .at(path)?;
        let size = file.metadata().at(path)?.len();
        if size < AREAS_START + 2 * SLOT {
            return Err(corrupt(path, "metadata file too small"));
        }
        let mut slots = [Slot::Empty, Slot::Empty];
        let mut best: Option<Super> = None;
        for (k, slot) in slots.iter_mut().enumerate() {
            let mut b = vec![0u8; SB_LEN];
            file.read_exact_at(&mut b, k as u64 * SLOT).at(path)?;
            if b.iter().all(|x| *x == 0) {
                continue;
            }
            let Some(sb) = decode_super(&b) else {
                *slot = Slot::Damaged;
                continue;
            };
            if b[0..8] != magic[..] {
                *slot = if b[0..7] == magic[..7] {
                    Slot::OtherVersion(String::from_utf8_lossy(&b[0..8]).into_owned())
                } else {
                    Slot::Damaged
                };
                continue;
            }
            *slot = Slot::Valid(sb.gen);
            if best.is_none_or(|x| sb.gen > x.gen) {
                best = Some(sb);
            }
        }
        let Some(sb) = best else {
            if let Some(Slot::OtherVersion(v)) =
                slots.iter().find(|s| matches!(s, Slot::OtherVersion(_)))
            {
                return Err(corrupt(
                    path,
                    format!(
                        "superblock is format {v}, this layerlab reads {}: re-create the store",
                        String::from_utf8_lossy(magic)
                    ),
                ));
            }
            return Err(corrupt(
                path,
                format!("no valid superblock in either slot: {RUN_FSCK}"),
            ));
        };
        let mut log = MetaLog::over(path, file, size, format, sb, 0);
        let start = log.area_start(sb.area);
        if sb.ckpt_len > log.area_size() || sb.ckpt_len < CKPT_HEADER as u64 {
            return Err(corrupt(path, "checkpoint larger than its area"));
        }
        let mut ck = vec![0u8; usize::try_from(sb.ckpt_len).unwrap_or(0)];
        log.file.read_exact_at(&mut ck, start).at(path)?;
        if checksum(&ck) != sb.ckpt_sum || get_u32(&ck, 0) != CKPT_MAGIC {
            return Err(corrupt(
                path,
                format!(
                    "checkpoint of generation {} (byte {start}) fails its checksum: {RUN_FSCK}",
                    sb.gen
                ),
            ));
        }
        log.next_seq = get_u64(&ck, 4) + 1;
        let body = ck.split_off(CKPT_HEADER);
        let mut records = Vec::new();
        let mut record_pos = Vec::new();
        log.log_pos = start + sb.ckpt_len;
        let end = start + log.area_size();
        while let Some((seq, payload)) = read_record(&log.file, path, log.log_pos, end)? {
            if seq != log.next_seq {
                break;
            }
            record_pos.push(log.log_pos);
            log.log_pos += REC_HEADER + payload.len() as u64;
            log.next_seq += 1;
            records.push(payload);
        }
        let tail = log.tail()?;
        Ok(Examined {
            opened: Opened {
                log,
                checkpoint: body,
                records,
            },
            slots,
            tail,
            record_pos,
        })
    }

    /// How the log ends: scans the rest of the current area, then the other area, for a
    /// valid record at or past the next sequence number.
    fn tail(&self) -> Result<Tail> {
        let end = self.area_start(self.sb.area) + self.area_size();
        let (mut found, dirty) =
            scan_later(&self.file, &self.path, self.log_pos, end, self.next_seq)?;
        if found.is_none() {
            let other = self.area_start(1 - self.sb.area);
            found = scan_later(
                &self.file,
                &self.path,
                other,
                other + self.area_size(),
                self.next_seq,
            )?
            .0;
        }
        let Some((later_pos, later_seq)) = found else {
            return Ok(if dirty {
                Tail::Torn { pos: self.log_pos }
            } else {
                Tail::Clean
            });
        };
        // the run of consecutive valid records that starts there
        let area_end = if later_pos >= self.area_start(1) {
            self.area_start(1) + self.area_size()
        } else {
            self.area_start(0) + self.area_size()
        };
        let (mut pos, mut seq, mut later) = (later_pos, later_seq, 0u64);
        while let Some((s, p)) = read_record(&self.file, &self.path, pos, area_end)? {
            if s != seq {
                break;
            }
            pos += REC_HEADER + p.len() as u64;
            seq += 1;
            later += 1;
        }
        Ok(Tail::Damaged(Damage {
            pos: self.log_pos,
            seq: self.next_seq,
            later_pos,
            later_seq,
            later,
        }))
    }

    /// Punches out everything after the log's end in the current area (a torn tail) and
    /// syncs: the next record is written over zeros.
    pub fn discard_tail(&self) -> Result<()> {
        let end = self.area_start(self.sb.area) + self.area_size();
        self.zero_range(self.log_pos, end)?;
        self.file.sync_data().at(&self.path)
    }

    /// Makes `[from, to)` read as zeros: punched where the filesystem can, written
    /// where it cannot.
    fn zero_range(&self, from: u64, to: u64) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        let punched = rustix::fs::fallocate(
            &self.file,
            rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
            from,
            to - from,
        );
        if punched.is_ok() {
            return Ok(());
        }
        for (a, b) in data_regions(&self.file, from, to) {
            let mut pos = a;
            while pos < b {
                let n = SCAN_CHUNK.min(b - pos);
                self.file
                    .write_all_at(&vec![0u8; n as usize], pos)
                    .at(&self.path)?;
                pos += n;
            }
        }
        Ok(())
    }

    /// Writes the current superblock into slot `k` too (a repair of a damaged slot: both
    /// then name the same generation) and syncs.
    pub fn rewrite_slot(&self, k: u64) -> Result<()> {
        let sb = encode_super(self.format.magic, &self.sb);
        self.file.write_all_at(&sb, (k % 2) * SLOT).at(&self.path)?;
        self.file.sync_data().at(&self.path)
    }

    /// The metadata file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The four parameters the superblock carries.
    pub fn params(&self) -> [u64; 4] {
        self.sb.params
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes `body` as a checkpoint into the other area, punches the rest of that area
    /// (stale records of an older generation) and makes it current with a new superblock
    /// generation (two fsyncs). `Ok(false)` when it does not fit.
    pub fn checkpoint(&mut self, body: &[u8], meter: &mut Meter) -> Result<bool> {
        let mut ck = Vec::with_capacity(body.len() + CKPT_HEADER);
        ck.extend_from_slice(&CKPT_MAGIC.to_le_bytes());
        ck.extend_from_slice(&(self.next_seq - 1).to_le_bytes());
        ck.extend_from_slice(body);
        if ck.len() as u64 > self.area_size() {
            return Ok(false);
        }
        let area = 1 - self.sb.area;
        let start = self.area_start(area);
        self.file.write_all_at(&ck, start).at(&self.path)?;
        self.zero_range(start + ck.len() as u64, start + self.area_size())?;
        self.file.sync_data().at(&self.path)?;
        let sb = Super {
            gen: self.sb.gen + 1,
            area,
            ckpt_len: ck.len() as u64,
            ckpt_sum: checksum(&ck),
            params: self.sb.params,
        };
        let gen = sb.gen;
        self.file
            .write_all_at(&encode_super(self.format.magic, &sb), (gen % 2) * SLOT)
            .at(&self.path)?;
        // the superblock is written: the next open reads the new checkpoint, so this
        // process follows it too even if the sync fails (its later records go after it)
        let synced = self.file.sync_data();
        meter.counts.fsyncs += 2;
        meter.counts.metadata_writes += 1;
        let label = self.format.label;
        meter.step(|| {
            format!(
                "{label}: metadata log compacted into checkpoint generation {gen} ({} bytes)",
                ck.len()
            )
        });
        self.sb = sb;
        self.log_pos = start + sb.ckpt_len;
        synced.at(&self.path)?;
        self.unsynced = false;
        Ok(true)
    }

    /// Bytes a record with a payload of `payload_len` bytes takes in the log.
    pub fn record_len(payload_len: usize) -> u64 {
        REC_HEADER + payload_len as u64
    }

    /// True when the log has room for `len` more bytes.
    pub fn fits(&self, len: u64) -> bool {
        self.log_pos + len <= self.area_start(self.sb.area) + self.area_size()
    }

    /// True when a checkpoint of a `len`-byte body fits an area.
    pub fn checkpoint_fits(&self, len: u64) -> bool {
        len + CKPT_HEADER as u64 <= self.area_size()
    }

    /// True when the log has grown past max(1 MiB, the checkpoint): time to compact.
    pub fn wants_compaction(&self) -> bool {
        let log_bytes = self.log_pos - self.area_start(self.sb.area) - self.sb.ckpt_len;
        log_bytes > LOG_COMPACT.max(self.sb.ckpt_len)
    }

    /// Appends one record and fsyncs it: the commit point of an operation. The Meter counts
    /// the record (`metadata_writes`); what its fsync counts as is the owner's to say (the
    /// cow engine: a log commit or a transaction commit).
    pub fn append(&mut self, payload: &[u8], meter: &mut Meter) -> Result<()> {
        let len = u32::try_from(payload.len())
            .map_err(|_| corrupt(&self.path, "a log record of 4 GiB or more"))?;
        let mut rec = Vec::with_capacity(payload.len() + REC_HEADER as usize);
        rec.extend_from_slice(&REC_MAGIC.to_le_bytes());
        rec.extend_from_slice(&self.next_seq.to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        let sum = checksum2(&rec, payload);
        rec.extend_from_slice(&sum.to_le_bytes());
        rec.extend_from_slice(payload);
        if !self.fits(rec.len() as u64) {
            return Err(corrupt(&self.path, "no room in the metadata log"));
        }
        let written = self.file.write_all_at(&rec, self.log_pos).and_then(|()| {
            if self.deferred {
                self.unsynced = true;
                Ok(())
            } else {
                self.file.sync_data()
            }
        });
        if let Err(e) = written {
            // the operation failed, so its record must not count on the next open: a
            // record written before a failed sync would be read back as committed
            let _ = self.file.write_all_at(&vec![0u8; rec.len()], self.log_pos);
            return Err(e).at(&self.path);
        }
        meter.counts.metadata_writes += 1;
        self.log_pos += rec.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    /// Starts (`true`) or ends a batch: in a batch, [`MetaLog::append`] writes its record
    /// without the fsync, and [`MetaLog::sync`] makes the records durable at once, at the
    /// batch's commit point. Records reach the file in order either way, so a killed
    /// process leaves every record it appended; only a host crash can lose the unsynced
    /// tail, which is then a torn tail (discarded on open) or a run of whole records.
    pub fn defer_syncs(&mut self, on: bool) {
        self.deferred = on;
    }

    /// Fsyncs the records a batch appended; `Ok(false)` when there were none (nothing to
    /// do).
    pub fn sync(&mut self) -> Result<bool> {
        if !self.unsynced {
            return Ok(false);
        }
        self.file.sync_data().at(&self.path)?;
        self.unsynced = false;
        Ok(true)
    }

    /// Where the next record goes in the file.
    pub fn log_pos(&self) -> u64 {
        self.log_pos
    }

    /// Where the current checkpoint starts, and where its log starts (after it).
    pub fn live_range(&self) -> (u64, u64) {
        let start = self.area_start(self.sb.area);
        (start, start + self.sb.ckpt_len)
    }

    /// Bytes in use: superblocks, checkpoint and log.
    pub fn used(&self) -> u64 {
        AREAS_START + (self.log_pos - self.area_start(self.sb.area))
    }

    /// The superblock generation and the next record's sequence number.
    pub fn generation(&self) -> (u64, u64) {
        (self.sb.gen, self.next_seq)
    }
}

/// Records in `report` what [`MetaLog::examine`] found in the slots and the tail of a
/// metadata file; with `repair`, rewrites a damaged older slot and discards a torn tail.
/// Damage followed by valid records is left uncorrected: a repair would lose them.
pub fn check_examined(
    ex: &Examined,
    repair: bool,
    report: &mut crate::fsck::CheckReport,
) -> Result<()> {
    let log = &ex.opened.log;
    let file = log.path().display().to_string();
    for (k, slot) in ex.slots.iter().enumerate() {
        let place = format!("{file}: superblock slot {k}");
        match slot {
            Slot::Empty | Slot::Valid(_) => {}
            Slot::OtherVersion(v) => report.uncorrected(
                None,
                place,
                format!("a superblock of format {v}, another version"),
            ),
            Slot::Damaged => {
                if repair && matches!(ex.tail, Tail::Clean | Tail::Torn { .. }) {
                    log.rewrite_slot(k as u64)?;
                    report.repaired(
                        None,
                        place,
                        format!(
                            "damaged superblock (an older generation) rewritten from \
                             generation {}",
                            log.sb.gen
                        ),
                        None,
                    );
                } else {
                    report.uncorrected(None, place, "superblock fails its checksum");
                }
            }
        }
    }
    match ex.tail {
        Tail::Clean => {}
        Tail::Torn { pos } => {
            let place = format!("{file}: byte {pos}");
            let what = "torn tail of the metadata log (an incomplete last record)";
            if repair {
                log.discard_tail()?;
                report.repaired(
                    None,
                    place,
                    what,
                    Some("the incomplete record (never committed)".into()),
                );
            } else {
                report.uncorrected(None, place, what);
            }
        }
        Tail::Damaged(d) => report.uncorrected(
            None,
            format!("{file}: byte {}", d.pos),
            format!(
                "log record {} fails its checksum and {} committed record(s) follow from \
                 byte {} (records {} to {}): not repaired, a repair would lose record {} and \
                 every record after it",
                d.seq,
                d.later,
                d.later_pos,
                d.later_seq,
                d.later_seq + d.later.saturating_sub(1),
                d.seq
            ),
        ),
    }
    Ok(())
}

/// Rewrites the magic of every valid superblock of the metadata file at `path` (checksum
/// renewed): a store as another format version would have written it, for tests.
#[cfg(test)]
pub(crate) fn rewrite_magic(path: &Path, magic: &[u8; 8]) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    for slot in 0..2u64 {
        let mut b = vec![0u8; SB_LEN];
        file.read_exact_at(&mut b, slot * SLOT)?;
        if let Some(sb) = decode_super(&b) {
            file.write_all_at(&encode_super(magic, &sb), slot * SLOT)?;
        }
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::fsck::CheckReport;

    /// The format of the test logs.
    const TEST: MetaFormat = MetaFormat {
        magic: b"LLTEST01",
        label: "test",
    };

    fn open_err(path: &Path, magic: &'static [u8; 8]) -> String {
        match MetaLog::open(path, MetaFormat { magic, ..TEST }, false) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("opened"),
        }
    }

    #[test]
    fn another_format_version_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata");
        let log = MetaLog::create(&path, 1 << 20, TEST, [0; 4], b"x").unwrap();
        drop(log);
        assert!(MetaLog::open(&path, TEST, false).is_ok());
        let err = open_err(&path, b"LLTEST02");
        assert!(
            err.contains("format LLTEST01") && err.contains("reads LLTEST02"),
            "{err}"
        );
        let err = open_err(&path, b"OTHERMAG");
        assert!(err.contains("no valid superblock"), "{err}");
    }

    /// A log of five records; returns the positions where each record starts and the end.
    fn five_records(path: &Path) -> Vec<u64> {
        let mut log = MetaLog::create(path, 1 << 20, TEST, [0; 4], b"x").unwrap();
        let mut at = vec![log.log_pos()];
        for i in 0..5u8 {
            log.append(&[i; 40], &mut Meter::new()).unwrap();
            at.push(log.log_pos());
        }
        at
    }

    fn flip(path: &Path, pos: u64) {
        layerlab_testkit::flip_bits(path, pos, 0x20).unwrap();
    }

    #[test]
    fn a_torn_tail_is_discarded_and_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata");
        let at = five_records(&path);
        // the last record torn: its second half never reached the disk
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0u8; 30], at[5] - 30).unwrap();
        let o = MetaLog::open(&path, TEST, true).unwrap();
        assert_eq!(o.records.len(), 4);
        let mut log = o.log;
        log.append(b"new", &mut Meter::new()).unwrap();
        drop(log);
        let ex = MetaLog::examine(&path, TEST, false).unwrap();
        assert_eq!(ex.tail, Tail::Clean);
        assert_eq!(ex.opened.records.len(), 5);
        assert_eq!(ex.opened.records[4], b"new");
    }

    #[test]
    fn damage_before_valid_records_is_refused_and_fsck_says_what_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata");
        let at = five_records(&path);
        for pos in [at[3], at[3] + 5, at[3] + 13, at[3] + 17, at[3] + 30] {
            flip(&path, pos);
            let err = open_err(&path, TEST.magic);
            assert!(
                err.contains("record 4") && err.contains("layerlab fsck"),
                "{err}"
            );
            let ex = MetaLog::examine(&path, TEST, true).unwrap();
            let mut report = CheckReport::default();
            check_examined(&ex, true, &mut report).unwrap();
            assert_eq!(report.exit_code(), 4, "{report:?}");
            assert!(
                report.findings[0].what.contains("records 5 to 5"),
                "{report:?}"
            );
            flip(&path, pos);
            assert_eq!(MetaLog::open(&path, TEST, false).unwrap().records.len(), 5);
        }
    }

    #[test]
    fn a_damaged_current_superblock_does_not_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata");
        let mut log = MetaLog::create(&path, 1 << 20, TEST, [0; 4], b"x").unwrap();
        log.append(b"one", &mut Meter::new()).unwrap();
        assert!(log.checkpoint(b"y", &mut Meter::new()).unwrap());
        log.append(b"two", &mut Meter::new()).unwrap();
        let (gen, _) = log.generation();
        drop(log);
        // the current slot damaged: the older generation would win and lose "two"
        flip(&path, (gen % 2) * SLOT + 9);
        let err = open_err(&path, TEST.magic);
        assert!(err.contains("layerlab fsck"), "{err}");
        flip(&path, (gen % 2) * SLOT + 9);
        // the older slot damaged: nothing lost, open works, fsck repairs it
        flip(&path, ((gen + 1) % 2) * SLOT + 9);
        assert!(MetaLog::open(&path, TEST, false).is_ok());
        let ex = MetaLog::examine(&path, TEST, true).unwrap();
        let mut report = CheckReport::default();
        check_examined(&ex, true, &mut report).unwrap();
        assert_eq!(report.exit_code(), 1, "{report:?}");
        let ex = MetaLog::examine(&path, TEST, true).unwrap();
        let mut report = CheckReport::default();
        check_examined(&ex, false, &mut report).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }
}
