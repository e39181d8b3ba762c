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
//! Superblock (80 bytes): magic (8), generation u64, area u32, 0 u32, checkpoint length
//! u64, checkpoint checksum u64, four caller parameters u64, FNV-1a-64 of all that.
//! Record: "LREC" u32, sequence u64, payload length u32, checksum u64 (of sequence and
//! payload), payload. Replay stops at the first record whose magic, sequence (the
//! checkpoint's + 1, + 2, ...) or checksum does not match.

use crate::codec::{checksum, get_u32, get_u64};
use layerlab_core::{Error, IoContext, Meter, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const CKPT_MAGIC: u32 = 0x5450_4b43; // "CKPT"
const REC_MAGIC: u32 = 0x4345_524c; // "LREC"
const SLOT: u64 = 4096;
const AREAS_START: u64 = 2 * SLOT;
const REC_HEADER: u64 = 24;
const CKPT_HEADER: usize = 12;
/// The log is compacted into a checkpoint once it is larger than this and than the last
/// checkpoint.
const LOG_COMPACT: u64 = 1 << 20;

fn corrupt(path: &Path, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// The metadata file, with the position of its log.
#[derive(Debug)]
pub struct MetaLog {
    path: PathBuf,
    file: File,
    size: u64,
    magic: [u8; 8],
    params: [u64; 4],
    label: &'static str,
    gen: u64,
    area: u32,
    ckpt_len: u64,
    log_pos: u64,
    next_seq: u64,
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

impl MetaLog {
    fn area_size_of(size: u64) -> u64 {
        (size.saturating_sub(AREAS_START) / 2) & !(SLOT - 1)
    }

    fn area_size(&self) -> u64 {
        Self::area_size_of(self.size)
    }

    fn area_start(&self, area: u32) -> u64 {
        AREAS_START + u64::from(area) * self.area_size()
    }

    /// Creates a sparse metadata file of `size` bytes whose first checkpoint is `body`.
    /// `label` names the pool in the trace ("thin pool", "btrfs").
    pub fn create(
        path: &Path,
        size: u64,
        magic: &[u8; 8],
        params: [u64; 4],
        label: &'static str,
        body: &[u8],
    ) -> Result<MetaLog> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .at(path)?;
        file.set_len(size).at(path)?;
        let mut log = MetaLog {
            path: path.to_path_buf(),
            file,
            size,
            magic: *magic,
            params,
            label,
            gen: 0,
            area: 1,
            ckpt_len: 0,
            log_pos: 0,
            next_seq: 1,
        };
        if !log.checkpoint(body, &mut Meter::new())? {
            return Err(corrupt(path, "metadata file too small for a checkpoint"));
        }
        Ok(log)
    }

    /// Opens a metadata file: the newest valid superblock, its checkpoint, and every
    /// complete record after it (a torn last record is ignored).
    pub fn open(
        path: &Path,
        magic: &[u8; 8],
        writable: bool,
        label: &'static str,
    ) -> Result<Opened> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .at(path)?;
        let size = file.metadata().at(path)?.len();
        let mut best: Option<(u64, u32, u64, u64, [u64; 4])> = None;
        let mut other_version: Option<String> = None;
        for slot in 0..2u64 {
            let mut b = vec![0u8; 80];
            if size < AREAS_START {
                break;
            }
            file.read_exact_at(&mut b, slot * SLOT).at(path)?;
            if b[0..7] == magic[..7] && b[7] != magic[7] && get_u64(&b, 72) == checksum(&b[..72]) {
                // the same format's magic with another version digit
                other_version = Some(String::from_utf8_lossy(&b[0..8]).into_owned());
            }
            if &b[0..8] != magic || get_u64(&b, 72) != checksum(&b[..72]) {
                continue;
            }
            let gen = get_u64(&b, 8);
            let params = [
                get_u64(&b, 40),
                get_u64(&b, 48),
                get_u64(&b, 56),
                get_u64(&b, 64),
            ];
            if best.as_ref().is_none_or(|x| gen > x.0) {
                best = Some((
                    gen,
                    get_u32(&b, 16),
                    get_u64(&b, 24),
                    get_u64(&b, 32),
                    params,
                ));
            }
        }
        let Some((gen, area, ckpt_len, ckpt_sum, params)) = best else {
            if let Some(v) = other_version {
                return Err(corrupt(
                    path,
                    format!(
                        "superblock is format {v}, this layerlab reads {}: re-create the store",
                        String::from_utf8_lossy(magic)
                    ),
                ));
            }
            return Err(corrupt(path, "no valid superblock in either slot"));
        };
        if area > 1 {
            return Err(corrupt(path, "superblock names no area"));
        }
        let mut log = MetaLog {
            path: path.to_path_buf(),
            file,
            size,
            magic: *magic,
            params,
            label,
            gen,
            area,
            ckpt_len,
            log_pos: 0,
            next_seq: 0,
        };
        let start = log.area_start(area);
        if ckpt_len > log.area_size() || ckpt_len < CKPT_HEADER as u64 {
            return Err(corrupt(path, "checkpoint larger than its area"));
        }
        let mut ck = vec![0u8; usize::try_from(ckpt_len).unwrap_or(0)];
        log.file.read_exact_at(&mut ck, start).at(path)?;
        if checksum(&ck) != ckpt_sum {
            return Err(corrupt(path, "checkpoint checksum mismatch"));
        }
        if get_u32(&ck, 0) != CKPT_MAGIC {
            return Err(corrupt(path, "checkpoint does not parse"));
        }
        log.next_seq = get_u64(&ck, 4) + 1;
        let body = ck.split_off(CKPT_HEADER);
        let mut records = Vec::new();
        log.log_pos = start + ckpt_len;
        let end = start + log.area_size();
        loop {
            if log.log_pos + REC_HEADER > end {
                break;
            }
            let mut h = vec![0u8; REC_HEADER as usize];
            log.file.read_exact_at(&mut h, log.log_pos).at(path)?;
            let len = u64::from(get_u32(&h, 12));
            if get_u32(&h, 0) != REC_MAGIC
                || get_u64(&h, 4) != log.next_seq
                || log.log_pos + REC_HEADER + len > end
            {
                break;
            }
            let mut payload = vec![0u8; len as usize];
            log.file
                .read_exact_at(&mut payload, log.log_pos + REC_HEADER)
                .at(path)?;
            let mut summed = h[4..12].to_vec();
            summed.extend_from_slice(&payload);
            if checksum(&summed) != get_u64(&h, 16) {
                break;
            }
            records.push(payload);
            log.log_pos += REC_HEADER + len;
            log.next_seq += 1;
        }
        Ok(Opened {
            log,
            checkpoint: body,
            records,
        })
    }

    /// The metadata file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The four parameters the superblock carries.
    pub fn params(&self) -> [u64; 4] {
        self.params
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes `body` as a checkpoint into the other area and makes it current with a new
    /// superblock generation (two fsyncs). `Ok(false)` when it does not fit.
    pub fn checkpoint(&mut self, body: &[u8], meter: &mut Meter) -> Result<bool> {
        let mut ck = Vec::with_capacity(body.len() + CKPT_HEADER);
        ck.extend_from_slice(&CKPT_MAGIC.to_le_bytes());
        ck.extend_from_slice(&(self.next_seq - 1).to_le_bytes());
        ck.extend_from_slice(body);
        if ck.len() as u64 > self.area_size() {
            return Ok(false);
        }
        let area = 1 - self.area;
        let start = self.area_start(area);
        self.file.write_all_at(&ck, start).at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        let gen = self.gen + 1;
        let mut sb = Vec::with_capacity(80);
        sb.extend_from_slice(&self.magic);
        sb.extend_from_slice(&gen.to_le_bytes());
        sb.extend_from_slice(&area.to_le_bytes());
        sb.extend_from_slice(&0u32.to_le_bytes());
        sb.extend_from_slice(&(ck.len() as u64).to_le_bytes());
        sb.extend_from_slice(&checksum(&ck).to_le_bytes());
        for v in self.params {
            sb.extend_from_slice(&v.to_le_bytes());
        }
        let sum = checksum(&sb);
        sb.extend_from_slice(&sum.to_le_bytes());
        self.file
            .write_all_at(&sb, (gen % 2) * SLOT)
            .at(&self.path)?;
        // the superblock is written: the next open reads the new checkpoint, so this
        // process follows it too even if the sync fails (its later records go after it)
        let synced = self.file.sync_data();
        meter.counts.fsyncs += 2;
        meter.counts.metadata_writes += 1;
        let label = self.label;
        meter.step(|| {
            format!(
                "{label}: metadata log compacted into checkpoint generation {gen} ({} bytes)",
                ck.len()
            )
        });
        self.gen = gen;
        self.area = area;
        self.ckpt_len = ck.len() as u64;
        self.log_pos = start + self.ckpt_len;
        synced.at(&self.path)?;
        Ok(true)
    }

    /// Bytes a record with a payload of `payload_len` bytes takes in the log.
    pub fn record_len(payload_len: usize) -> u64 {
        REC_HEADER + payload_len as u64
    }

    /// True when the log has room for `len` more bytes.
    pub fn fits(&self, len: u64) -> bool {
        self.log_pos + len <= self.area_start(self.area) + self.area_size()
    }

    /// True when the log has grown past max(1 MiB, the checkpoint): time to compact.
    pub fn wants_compaction(&self) -> bool {
        let log_bytes = self.log_pos - self.area_start(self.area) - self.ckpt_len;
        log_bytes > LOG_COMPACT.max(self.ckpt_len)
    }

    /// Appends one record and fsyncs it: the commit point of an operation.
    pub fn append(&mut self, payload: &[u8], meter: &mut Meter) -> Result<()> {
        let mut rec = Vec::with_capacity(payload.len() + REC_HEADER as usize);
        rec.extend_from_slice(&REC_MAGIC.to_le_bytes());
        rec.extend_from_slice(&self.next_seq.to_le_bytes());
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut summed = self.next_seq.to_le_bytes().to_vec();
        summed.extend_from_slice(payload);
        rec.extend_from_slice(&checksum(&summed).to_le_bytes());
        rec.extend_from_slice(payload);
        if !self.fits(rec.len() as u64) {
            return Err(corrupt(&self.path, "no room in the metadata log"));
        }
        let written = self
            .file
            .write_all_at(&rec, self.log_pos)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // the operation failed, so its record must not count on the next open: a
            // record written before a failed sync would be read back as committed
            let _ = self.file.write_all_at(&vec![0u8; rec.len()], self.log_pos);
            return Err(e).at(&self.path);
        }
        meter.counts.fsyncs += 1;
        meter.counts.metadata_writes += 1;
        self.log_pos += rec.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    /// Where the next record goes in the file.
    pub fn log_pos(&self) -> u64 {
        self.log_pos
    }

    /// Bytes in use: superblocks, checkpoint and log.
    pub fn used(&self) -> u64 {
        AREAS_START + (self.log_pos - self.area_start(self.area))
    }

    /// The superblock generation and the next record's sequence number.
    pub fn generation(&self) -> (u64, u64) {
        (self.gen, self.next_seq)
    }
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
        let mut b = vec![0u8; 80];
        file.read_exact_at(&mut b, slot * SLOT)?;
        if get_u64(&b, 72) == checksum(&b[..72]) {
            b[0..8].copy_from_slice(magic);
            let sum = checksum(&b[..72]);
            b[72..80].copy_from_slice(&sum.to_le_bytes());
            file.write_all_at(&b, slot * SLOT)?;
        }
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn another_format_version_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata");
        let log = MetaLog::create(&path, 1 << 20, b"LLTEST01", [0; 4], "test", b"x").unwrap();
        drop(log);
        assert!(MetaLog::open(&path, b"LLTEST01", false, "test").is_ok());
        let err = match MetaLog::open(&path, b"LLTEST02", false, "test") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a version-1 superblock opened as version 2"),
        };
        assert!(
            err.contains("format LLTEST01") && err.contains("reads LLTEST02"),
            "{err}"
        );
        let err = match MetaLog::open(&path, b"OTHERMAG", false, "test") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("opened with another magic"),
        };
        assert!(err.contains("no valid superblock"), "{err}");
    }
}
