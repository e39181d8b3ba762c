//! The filesystem inside a thin device ("llfs"): a superblock, a fixed inode table and
//! data blocks, all in the device's own logical blocks, so that every change, data or
//! metadata, is a block write that the thin layer may have to copy.
//!
//! Layout in logical blocks of `B` bytes:
//!
//! ```text
//! 0                      superblock (magic, block size, layout), written by mkfs only
//! 1 .. 1+T               inode table: 128-byte inodes, one per 16 KiB of the device
//!                        (mke2fs's default ratio), T blocks; never-written table blocks
//!                        are unmapped (thin) and read as free
//! 1+T ..                 data: file contents, directory contents, block index blocks
//! ```
//!
//! An inode: kind, the inode holding its extended attributes, mode, uid, gid, nlink, mtime
//! (seconds and nanoseconds), size and 22 block pointers: the first content block itself,
//! then 21 index blocks (a device node keeps its number there instead); an index block
//! holds B/4 pointers to data blocks (0 = hole, reads zeros). A directory's content is its sorted entries `(ino u32, kind u8, name len
//! u16, name)`. A symlink's content is its target. Extended attributes are the content of
//! a hidden inode of their own (as ext4's `ea_inode`), named by the inode they belong to.
//! Free data blocks are the unmapped ones: the filesystem discards what it frees, so it
//! needs no block bitmap of its own. Free inodes are found through [`FreeInodes`], kept in
//! memory per device and rebuilt by one pass over the inode table the first time a
//! process allocates in it, so that allocation is O(1) amortised rather than a scan of
//! the table from its start.

use super::dirindex::{DirIndex, ENTRY_HEAD};
use super::thin::Txn;
use crate::codec::{get_u32, get_u64, Dec, Enc};
use layerlab_core::time::now;
use layerlab_core::{
    DirEntry, Error, FileKind, LayerId, LayerPath, Metadata, Result, MODE_MASK, SYMLINK_MODE,
};
use std::collections::{BTreeMap, BTreeSet};

const INODE: usize = 128;
const NIDX: usize = 22;
/// Device bytes per inode when the inode table is sized (mke2fs's default `inode_ratio`).
const BYTES_PER_INODE: u64 = 16 << 10;
/// The root directory's inode.
pub const ROOT: u32 = 1;
/// The format: version 2 adds mtime nanoseconds, device numbers and extended attributes;
/// version 3 sizes the inode table from the device (was 65536 inodes) and names an
/// extended-attribute inode with 4 bytes (was 2).
const MAGIC: &[u8; 8] = b"LLFS0003";
/// The kind code of an inode holding another inode's extended attributes (no name).
const XATTR_KIND: u8 = 7;
/// The most bytes an inode's encoded extended attributes may take (names, values, and 8
/// bytes of lengths each); past it, setting one fails with no space, as ext4's does.
pub const XATTR_SPACE: usize = 256 << 10;

/// Bytes of the superblock: the magic and five u64 fields.
const SUPER_LEN: usize = 8 + 5 * 8;

/// Extended attributes by name.
pub type Xattrs = BTreeMap<String, Vec<u8>>;

/// An inode as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inode {
    /// 0 free, 1 file, 2 directory, 3 symlink, 4 character device, 5 block device, 6
    /// fifo, 7 the extended attributes of another inode.
    pub kind: u8,
    /// The inode holding this one's extended attributes (0: none).
    pub xattr: u32,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Names of the inode.
    pub nlink: u32,
    /// Content bytes.
    pub size: u64,
    /// Modification time (seconds).
    pub mtime: i64,
    /// Its nanoseconds.
    pub mtime_nsec: u32,
    /// A device node's number (`makedev`), stored where a file keeps its index pointers.
    pub rdev: u64,
    /// Index block pointers.
    pub index: [u32; NIDX],
}

/// Device nodes and fifos keep their number where a file keeps its index pointers.
fn holds_rdev(code: u8) -> bool {
    crate::codec::kind_of(code).is_some_and(FileKind::is_node)
}

impl Inode {
    fn decode(b: &[u8]) -> Inode {
        let kind = b.first().copied().unwrap_or(0);
        let mut index = [0u32; NIDX];
        let mut rdev = 0;
        if holds_rdev(kind) {
            rdev = get_u64(b, 40);
        } else {
            for (i, x) in index.iter_mut().enumerate() {
                *x = get_u32(b, 40 + 4 * i);
            }
        }
        Inode {
            kind,
            // bytes 2..4 of the first word
            mode: get_u32(b, 0) >> 16,
            xattr: get_u32(b, 4),
            uid: get_u32(b, 8),
            gid: get_u32(b, 12),
            nlink: get_u32(b, 16),
            mtime_nsec: get_u32(b, 20),
            size: get_u64(b, 24),
            mtime: get_u64(b, 32) as i64,
            rdev,
            index,
        }
    }

    fn encode(&self) -> [u8; INODE] {
        let mut b = [0u8; INODE];
        b[0] = self.kind;
        // permission bits (MODE_MASK, 12 bits) in two bytes, the inode number in four
        b[2..4].copy_from_slice(&((self.mode & MODE_MASK) as u16).to_le_bytes());
        b[4..8].copy_from_slice(&self.xattr.to_le_bytes());
        b[8..12].copy_from_slice(&self.uid.to_le_bytes());
        b[12..16].copy_from_slice(&self.gid.to_le_bytes());
        b[16..20].copy_from_slice(&self.nlink.to_le_bytes());
        b[20..24].copy_from_slice(&self.mtime_nsec.to_le_bytes());
        b[24..32].copy_from_slice(&self.size.to_le_bytes());
        b[32..40].copy_from_slice(&self.mtime.to_le_bytes());
        if holds_rdev(self.kind) {
            b[40..48].copy_from_slice(&self.rdev.to_le_bytes());
        } else {
            for (i, x) in self.index.iter().enumerate() {
                b[40 + 4 * i..44 + 4 * i].copy_from_slice(&x.to_le_bytes());
            }
        }
        b
    }

    /// Sets the mtime to now (the content or the entries changed).
    fn touch(&mut self) {
        (self.mtime, self.mtime_nsec) = now();
    }

    /// The entry's kind.
    pub fn file_kind(&self) -> Option<FileKind> {
        crate::codec::kind_of(self.kind)
    }
}

/// One directory entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Name.
    pub name: String,
    /// Inode.
    pub ino: u32,
    /// Kind.
    pub kind: FileKind,
}

fn encode_xattrs(x: &Xattrs) -> Vec<u8> {
    let mut e = Enc::default();
    for (name, value) in x {
        e.str(name);
        e.u32(value.len() as u32);
        e.0.extend_from_slice(value);
    }
    e.0
}

fn decode_xattrs(b: &[u8]) -> Option<Xattrs> {
    let mut d = Dec::new(b);
    let mut out = Xattrs::new();
    while !d.done() {
        let name = d.str()?;
        let n = d.u32()? as usize;
        out.insert(name, d.bytes(n)?.to_vec());
    }
    Some(out)
}

/// Where the free inodes of one device are, as far as this process knows: every inode
/// at or past `frontier` is free, and below it the free ones are in `below`. A hint, not
/// the truth: an allocation checks the inode it picks (an operation that failed may have
/// freed one without committing), so a stale hint costs a skipped candidate, never a
/// wrong allocation; an inode taken by an operation that failed is offered again only
/// after the next scan (the next process). Built by [`Fs::scan_free_inodes`], one pass over the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeInodes {
    below: BTreeSet<u32>,
    frontier: u32,
}

impl FreeInodes {
    /// A hint that every inode from `frontier` on is free and none below it (tests: an
    /// allocation far into the table without filling it first).
    #[cfg(test)]
    pub fn from(frontier: u32) -> FreeInodes {
        FreeInodes {
            below: BTreeSet::new(),
            frontier,
        }
    }

    /// Inode `num` was freed.
    fn freed(&mut self, num: u32) {
        if num < self.frontier {
            self.below.insert(num);
        }
    }

    /// The next candidate (lowest first), or `None` past `count` inodes.
    fn next(&mut self, count: u64) -> Option<u32> {
        if let Some(n) = self.below.pop_first() {
            return Some(n);
        }
        if u64::from(self.frontier) >= count {
            return None;
        }
        let n = self.frontier;
        self.frontier += 1;
        Some(n)
    }
}

/// The filesystem of one device, over one operation's [`Txn`].
#[derive(Debug)]
pub struct Fs<'a> {
    /// The operation's block view.
    pub tx: Txn<'a>,
    bs: usize,
    ipb: usize,
    itable: usize,
    inodes: u64,
}

/// Inodes of a device of `nblocks` blocks of `block_size`: one per 16 KiB, whole
/// inode-table blocks, at least one block of them, and numbers that fit in 4 bytes.
pub fn inode_count(block_size: u64, nblocks: u64) -> u64 {
    let ipb = (block_size / INODE as u64).max(1);
    let want = nblocks.saturating_mul(block_size) / BYTES_PER_INODE;
    let most = u64::from(u32::MAX) / ipb * ipb;
    (want.div_ceil(ipb) * ipb).clamp(ipb, most)
}

/// Logical blocks the filesystem of a device of `nblocks` needs before its first data
/// block (the superblock and the inode table).
pub fn reserved_blocks(block_size: u64, nblocks: u64) -> u64 {
    let ipb = (block_size / INODE as u64).max(1);
    1 + inode_count(block_size, nblocks) / ipb
}

impl<'a> Fs<'a> {
    /// The filesystem seen through `tx`.
    pub fn new(tx: Txn<'a>) -> Self {
        let bs = tx.block_size();
        let ipb = (bs / INODE).max(1);
        let inodes = inode_count(bs as u64, tx.nblocks());
        Fs {
            tx,
            bs,
            ipb,
            itable: (inodes / ipb as u64) as usize,
            inodes,
        }
    }

    fn data_start(&self) -> u32 {
        1 + self.itable as u32
    }

    fn ppi(&self) -> usize {
        self.bs / 4
    }

    fn layer(&self) -> LayerId {
        self.tx.layer().clone()
    }

    /// Writes the superblock and the root directory (mode 0755, 0:0).
    pub fn mkfs(&mut self) -> Result<()> {
        let mut sb = Vec::with_capacity(SUPER_LEN);
        sb.extend_from_slice(MAGIC);
        for v in self.super_fields() {
            sb.extend_from_slice(&v.to_le_bytes());
        }
        self.tx.write(0, 0, &sb, true, || "superblock".into())?;
        let mut root = Inode {
            kind: 2,
            mode: 0o755,
            nlink: 1,
            ..Inode::default()
        };
        root.touch();
        self.put_inode(ROOT, &root)
    }

    /// The superblock's fields after the magic: block size, blocks, inode-table blocks,
    /// inode size, inodes.
    fn super_fields(&self) -> [u64; 5] {
        [
            self.bs as u64,
            self.tx.nblocks(),
            self.itable as u64,
            INODE as u64,
            self.inodes,
        ]
    }

    /// Inodes in the table.
    pub fn inode_count(&self) -> u64 {
        self.inodes
    }

    fn inode_pos(&self, ino: u32) -> (u32, usize) {
        let ino = ino as usize;
        (1 + (ino / self.ipb) as u32, (ino % self.ipb) * INODE)
    }

    /// Reads an inode.
    pub fn inode(&self, ino: u32) -> Result<Inode> {
        let (l, off) = self.inode_pos(ino);
        let mut b = [0u8; INODE];
        self.tx.read(l, off, &mut b)?;
        Ok(Inode::decode(&b))
    }

    fn put_inode(&mut self, ino: u32, i: &Inode) -> Result<()> {
        let (l, off) = self.inode_pos(ino);
        let k = l - 1;
        self.tx.write(l, off, &i.encode(), true, || {
            format!("inode table block {k}, inode {ino}")
        })
    }

    /// A free inode: the next candidate of the device's [`FreeInodes`] (built by one
    /// scan of the table the first time), checked free.
    fn alloc_inode(&mut self) -> Result<u32> {
        let mut free = match self.tx.take_free_inodes() {
            Some(f) => f,
            None => self.scan_free_inodes()?,
        };
        let got = self.pick_inode(&mut free);
        self.tx.put_free_inodes(free);
        got?.ok_or_else(|| Error::NoSpace {
            layer: self.layer(),
            path: LayerPath::root(),
            what: format!(
                "inode table of thin device of layer {} ({} inodes)",
                self.layer(),
                self.inodes
            ),
        })
    }

    fn pick_inode(&self, free: &mut FreeInodes) -> Result<Option<u32>> {
        while let Some(n) = free.next(self.inodes) {
            // inode 0 means "none" and is never used
            if n != 0 && self.inode(n)?.kind == 0 {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    /// Where the free inodes are: one pass over the inode table's mapped blocks (an
    /// unmapped block's inodes are all free).
    pub fn scan_free_inodes(&self) -> Result<FreeInodes> {
        let mut buf = vec![0u8; self.bs];
        let mut free: Vec<u32> = Vec::new();
        let mut frontier = 0u32;
        for k in 0..self.itable {
            let l = 1 + k as u32;
            let first = (k * self.ipb) as u32;
            if !self.tx.in_use(l) {
                continue;
            }
            self.tx.read(l, 0, &mut buf)?;
            for s in 0..self.ipb {
                if buf[s * INODE] != 0 {
                    // the free inodes since the last used one (unmapped blocks included)
                    free.extend(frontier..first + s as u32);
                    frontier = first + s as u32 + 1;
                }
            }
        }
        Ok(FreeInodes {
            below: free.into_iter().filter(|&n| n != 0).collect(),
            frontier,
        })
    }

    /// Where file block `i` is found: in the inode's direct slot 0 (`(0, None)`), or in
    /// index slot `k` (1..22) at pointer `o` of that index block (`(k, Some(o))`);
    /// `None` past what the inode addresses.
    fn slot_of(&self, i: u64) -> Option<(usize, Option<u64>)> {
        if i == 0 {
            return Some((0, None));
        }
        let ppi = self.ppi() as u64;
        let k = 1 + (i - 1) / ppi;
        (k < NIDX as u64).then_some((k as usize, Some((i - 1) % ppi)))
    }

    /// The first file block index slot `k` (1..22) covers.
    fn first_of_slot(&self, k: usize) -> u64 {
        1 + (k as u64 - 1) * self.ppi() as u64
    }

    /// File blocks an inode addresses: the direct one and 21 index blocks' worth.
    fn max_blocks(&self) -> u64 {
        1 + ((NIDX - 1) * self.ppi()) as u64
    }

    /// The logical block behind file block `i`, or 0 for a hole.
    fn bmap(&self, ino: &Inode, i: u64) -> Result<u32> {
        let Some((k, at)) = self.slot_of(i) else {
            return Ok(0);
        };
        let p = ino.index[k];
        let Some(o) = at else {
            return Ok(p);
        };
        if p == 0 {
            return Ok(0);
        }
        let mut b = [0u8; 4];
        self.tx.read(p, (o * 4) as usize, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// The logical block behind file block `i`, allocated (with its index block) if needed.
    fn bmap_alloc(&mut self, num: u32, ino: &mut Inode, i: u64, what: &str) -> Result<u32> {
        let Some((k, at)) = self.slot_of(i) else {
            return Err(self.tx.device_full());
        };
        let start = self.data_start();
        let Some(o) = at else {
            // the first block: its pointer is in the inode, no index block
            if ino.index[0] == 0 {
                ino.index[0] = self.tx.alloc(start)?;
            }
            return Ok(ino.index[0]);
        };
        if ino.index[k] == 0 {
            let ib = self.tx.alloc(start)?;
            let zeros = vec![0u8; self.bs];
            self.tx.write(ib, 0, &zeros, true, || {
                format!("index block {k} of inode {num}")
            })?;
            ino.index[k] = ib;
        }
        let ib = ino.index[k];
        let cur = self.bmap(ino, i)?;
        if cur != 0 {
            return Ok(cur);
        }
        let l = self.tx.alloc(start)?;
        self.tx
            .write(ib, (o * 4) as usize, &l.to_le_bytes(), true, || {
                format!("index block {k} of {what}")
            })?;
        Ok(l)
    }

    /// Reads content bytes `[off, off+len)` (clamped to the size).
    pub fn read_data(&self, ino: &Inode, off: u64, len: u64) -> Result<Vec<u8>> {
        let end = ino.size.min(off.saturating_add(len));
        if off >= end {
            return Ok(Vec::new());
        }
        let bs = self.bs as u64;
        // a size no index can address is damage: refused before anything is allocated
        let max = self.max_blocks() * bs;
        if ino.size > max {
            return Err(Error::Corrupt {
                path: self.tx.data_path(),
                detail: format!(
                    "layer {}: an inode of size {} (this filesystem addresses at most {max} \
                     bytes per file): run `layerlab fsck`",
                    self.layer(),
                    ino.size
                ),
            });
        }
        let mut out = vec![0u8; (end - off) as usize];
        let mut pos = off;
        while pos < end {
            let i = pos / bs;
            let boff = pos % bs;
            let n = (bs - boff).min(end - pos);
            let l = self.bmap(ino, i)?;
            let dst = &mut out[(pos - off) as usize..(pos - off + n) as usize];
            if l != 0 {
                self.tx.read(l, boff as usize, dst)?;
            }
            pos += n;
        }
        Ok(out)
    }

    /// Writes content at `off`, allocating blocks, growing the size. With `skip_same`,
    /// pieces whose bytes are already there are not written (directory rewrites).
    fn write_data(
        &mut self,
        num: u32,
        ino: &mut Inode,
        off: u64,
        data: &[u8],
        what: &str,
        skip_same: bool,
    ) -> Result<()> {
        let bs = self.bs as u64;
        let meta = ino.kind != 1;
        let before = ino.clone();
        let mut pos = off;
        let end = off + data.len() as u64;
        while pos < end {
            let i = pos / bs;
            let boff = pos % bs;
            let n = (bs - boff).min(end - pos);
            let piece = &data[(pos - off) as usize..(pos - off + n) as usize];
            let mut skip = false;
            if skip_same && pos + n <= ino.size {
                let cur = self.read_data(ino, pos, n)?;
                skip = cur == piece;
            }
            if !skip {
                let l = self.bmap_alloc(num, ino, i, what)?;
                self.tx.write(l, boff as usize, piece, meta, || {
                    format!("block {i} of {what}")
                })?;
            }
            pos += n;
        }
        if end > ino.size {
            ino.size = end;
        }
        if *ino != before {
            ino.touch();
            self.put_inode(num, ino)?;
        }
        Ok(())
    }

    /// Cuts or extends content to `size` (holes read zeros); frees the blocks past it.
    fn truncate_data(&mut self, num: u32, ino: &mut Inode, size: u64, what: &str) -> Result<()> {
        let bs = self.bs as u64;
        if size < ino.size {
            let keep = size.div_ceil(bs);
            let old = ino.size.div_ceil(bs);
            for i in keep..old {
                let l = self.bmap(ino, i)?;
                if l == 0 {
                    continue;
                }
                self.tx.discard(l);
                match self.slot_of(i) {
                    Some((0, None)) => ino.index[0] = 0,
                    // an index block that stays: its pointer cleared
                    Some((k, Some(o))) if self.first_of_slot(k) < keep => {
                        let ib = ino.index[k];
                        self.tx.write(ib, (o * 4) as usize, &[0u8; 4], true, || {
                            format!("index block {k} of {what}")
                        })?;
                    }
                    _ => {}
                }
            }
            for k in 1..NIDX {
                if self.first_of_slot(k) >= keep && ino.index[k] != 0 {
                    self.tx.discard(ino.index[k]);
                    ino.index[k] = 0;
                }
            }
            // zero the tail of the last kept block, so that growing again reads zeros
            let tail = size % bs;
            if tail != 0 {
                let l = self.bmap(ino, size / bs)?;
                if l != 0 {
                    let zeros = vec![0u8; (bs - tail) as usize];
                    let i = size / bs;
                    self.tx.write(l, tail as usize, &zeros, ino.kind != 1, || {
                        format!("block {i} of {what}")
                    })?;
                }
            }
        }
        if size != ino.size {
            ino.size = size;
            ino.touch();
            self.put_inode(num, ino)?;
        }
        Ok(())
    }

    /// The entries of directory `num`, sorted by name.
    pub fn entries(&self, num: u32) -> Result<Vec<Entry>> {
        let ino = self.inode(num)?;
        let raw = self.read_data(&ino, 0, ino.size)?;
        let mut out = Vec::new();
        let mut p = 0usize;
        while p + 7 <= raw.len() {
            let e_ino = get_u32(&raw, p);
            let kind = raw[p + 4];
            let n = u16::from_le_bytes([raw[p + 5], raw[p + 6]]) as usize;
            let name = raw.get(p + 7..p + 7 + n).unwrap_or_default();
            if let (Some(kind), Ok(name)) = (crate::codec::kind_of(kind), std::str::from_utf8(name))
            {
                out.push(Entry {
                    name: name.to_string(),
                    ino: e_ino,
                    kind,
                });
            }
            p += 7 + n;
        }
        Ok(out)
    }

    /// The entry `name` of directory `num` (`(inode, kind)`), through the directory's
    /// index ([`DirIndex`], built by one scan of its content the first time).
    fn find_entry(&self, num: u32, name: &str) -> Result<Option<(u32, FileKind)>> {
        if let Some(hit) = self.tx.cached_entry(num, name) {
            return Ok(hit);
        }
        let ix = self.dir_index(num)?;
        let hit = ix.get(name);
        self.tx.cache_dir(num, ix);
        Ok(hit)
    }

    /// The index of directory `num`, from one scan of its content.
    fn dir_index(&self, num: u32) -> Result<DirIndex> {
        let ino = self.inode(num)?;
        Ok(DirIndex::parse(&self.read_data(&ino, 0, ino.size)?))
    }

    /// Adds one entry to directory `num` in its place in name order, found through the
    /// directory's index: only the bytes from there on are read and rewritten (an entry
    /// that sorts last, as an archive's usually does, writes the directory's last block
    /// and reads nothing before it).
    fn splice_entry(&mut self, num: u32, e: &Entry, what: &str) -> Result<()> {
        let mut ino = self.inode(num)?;
        let mut ix = match self.tx.changing_dir(num) {
            Some(ix) if ix.size() == ino.size => ix,
            _ => self.dir_index(num)?,
        };
        let at = ix.place_of(&e.name).min(ino.size);
        let rest = self.read_data(&ino, at, ino.size - at)?;
        let mut tail = Vec::with_capacity(ENTRY_HEAD + e.name.len() + rest.len());
        tail.extend_from_slice(&e.ino.to_le_bytes());
        tail.push(crate::codec::kind_code(e.kind));
        tail.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        tail.extend_from_slice(e.name.as_bytes());
        let len = tail.len() as u64;
        tail.extend_from_slice(&rest);
        let what = format!("directory {what}");
        self.write_data(num, &mut ino, at, &tail, &what, true)?;
        ix.inserted(&e.name, e.ino, e.kind, at, len);
        self.tx.changed_dir(num, ix);
        // an entry added: the directory's mtime is now
        ino.touch();
        self.put_inode(num, &ino)
    }

    fn put_entries(&mut self, num: u32, entries: &mut [Entry], what: &str) -> Result<()> {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut raw = Vec::new();
        for e in entries.iter() {
            raw.extend_from_slice(&e.ino.to_le_bytes());
            raw.push(crate::codec::kind_code(e.kind));
            raw.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            raw.extend_from_slice(e.name.as_bytes());
        }
        let mut ino = self.inode(num)?;
        let what = format!("directory {what}");
        self.tx.forget_dir(num);
        self.write_data(num, &mut ino, 0, &raw, &what, true)?;
        self.truncate_data(num, &mut ino, raw.len() as u64, &what)?;
        self.tx.changed_dir(num, DirIndex::parse(&raw));
        // an entry added or removed: the directory's mtime is now
        ino.touch();
        self.put_inode(num, &ino)
    }

    /// What is at `path`: `(inode, kind)`, `None` when absent from an existing directory;
    /// `NotFound` / `NotADirectory` for a missing or non-directory ancestor.
    pub fn lookup(&self, path: &LayerPath) -> Result<Option<(u32, FileKind)>> {
        crate::blockpool::lookup_path(self.tx.layer(), path, ROOT, |dir, name| {
            self.find_entry(dir, name)
        })
    }

    fn need(&self, path: &LayerPath) -> Result<(u32, FileKind)> {
        self.lookup(path)?.ok_or_else(|| Error::NotFound {
            layer: self.layer(),
            path: path.clone(),
        })
    }

    fn parent_of(&self, path: &LayerPath) -> Result<(u32, String, String)> {
        let parent = path.parent().unwrap_or_else(LayerPath::root);
        let name = path.file_name().unwrap_or_default().to_string();
        let (ino, _) = self.need(&parent)?;
        Ok((ino, name, parent.as_str().to_string()))
    }

    /// Adds the entry `name` for inode `ino` to the directory a [`Fs::parent_of`] found.
    fn add_entry(
        &mut self,
        (dir, name, dir_path): (u32, String, String),
        ino: u32,
        kind: FileKind,
    ) -> Result<()> {
        self.splice_entry(dir, &Entry { name, ino, kind }, &dir_path)
    }

    /// Attributes of the entry at `path`, provided by `layer`.
    pub fn stat(&self, path: &LayerPath, layer: &LayerId) -> Result<Metadata> {
        let (num, kind) = self.need(path)?;
        let i = self.inode(num)?;
        let target = if kind == FileKind::Symlink {
            let raw = self.read_data(&i, 0, i.size)?;
            Some(String::from_utf8_lossy(&raw).into_owned())
        } else {
            None
        };
        Ok(Metadata {
            kind,
            mode: i.mode,
            uid: i.uid,
            gid: i.gid,
            size: if kind == FileKind::Dir { 0 } else { i.size },
            nlink: if kind == FileKind::File { i.nlink } else { 1 },
            target,
            rdev: i.rdev,
            mtime: i.mtime,
            mtime_nsec: i.mtime_nsec,
            layer: layer.clone(),
        })
    }

    /// The listing of the directory at `path`.
    pub fn readdir(&self, path: &LayerPath) -> Result<Vec<DirEntry>> {
        let (num, _) = self.need(path)?;
        Ok(self
            .entries(num)?
            .into_iter()
            .map(|e| DirEntry {
                name: e.name,
                kind: e.kind,
            })
            .collect())
    }

    /// Reads file content.
    pub fn read(&self, path: &LayerPath, off: u64, len: u64) -> Result<Vec<u8>> {
        let (num, _) = self.need(path)?;
        let i = self.inode(num)?;
        self.read_data(&i, off, len)
    }

    /// Makes a new entry (file, directory or symlink with `target`).
    pub fn make(
        &mut self,
        path: &LayerPath,
        kind: FileKind,
        mode: u32,
        target: &[u8],
    ) -> Result<()> {
        self.make_with(path, kind, mode, target, 0)
    }

    /// Makes a device node or fifo.
    pub fn mknod(&mut self, path: &LayerPath, kind: FileKind, mode: u32, rdev: u64) -> Result<()> {
        self.make_with(path, kind, mode, &[], rdev)
    }

    fn make_with(
        &mut self,
        path: &LayerPath,
        kind: FileKind,
        mode: u32,
        target: &[u8],
        rdev: u64,
    ) -> Result<()> {
        let parent = self.parent_of(path)?;
        let num = self.alloc_inode()?;
        let mut i = Inode {
            kind: crate::codec::kind_code(kind),
            mode: if kind == FileKind::Symlink {
                SYMLINK_MODE
            } else {
                mode & MODE_MASK
            },
            nlink: 1,
            rdev,
            ..Inode::default()
        };
        i.touch();
        self.put_inode(num, &i)?;
        if !target.is_empty() {
            self.write_data(num, &mut i, 0, target, &format!("symlink {path}"), false)?;
        }
        self.add_entry(parent, num, kind)
    }

    /// Writes into the file at `path`; a write of something sets its mtime, which
    /// dirties its inode-table block even when no other field changes.
    pub fn write(&mut self, path: &LayerPath, off: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let (num, _) = self.need(path)?;
        let mut i = self.inode(num)?;
        let off = if off == u64::MAX { i.size } else { off };
        self.write_data(num, &mut i, off, data, path.as_str(), false)?;
        i.touch();
        self.put_inode(num, &i)
    }

    /// Sets the length of the file at `path`.
    pub fn truncate(&mut self, path: &LayerPath, size: u64) -> Result<()> {
        let (num, _) = self.need(path)?;
        let mut i = self.inode(num)?;
        let bs = self.bs as u64;
        if size.div_ceil(bs) > self.max_blocks() {
            return Err(self.tx.device_full());
        }
        self.truncate_data(num, &mut i, size, path.as_str())?;
        // truncate(2) sets the mtime, whatever the size was
        i.touch();
        self.put_inode(num, &i)
    }

    /// Adds `link` as a second name of the file at `existing`.
    pub fn hardlink(&mut self, existing: &LayerPath, link: &LayerPath) -> Result<()> {
        let (num, kind) = self.need(existing)?;
        let mut i = self.inode(num)?;
        i.nlink += 1;
        self.put_inode(num, &i)?;
        let parent = self.parent_of(link)?;
        self.add_entry(parent, num, kind)
    }

    /// Drops one name of inode `num`; frees it (and its blocks, and its extended
    /// attributes) with its last name.
    fn drop_name(&mut self, num: u32, kind: FileKind, what: &str) -> Result<()> {
        let mut i = self.inode(num)?;
        if kind == FileKind::File && i.nlink > 1 {
            i.nlink -= 1;
            return self.put_inode(num, &i);
        }
        if i.xattr != 0 {
            self.free_inode(i.xattr, &format!("extended attributes of {what}"))?;
        }
        self.free_inode(num, what)
    }

    /// Frees inode `num` and its blocks.
    fn free_inode(&mut self, num: u32, what: &str) -> Result<()> {
        let mut i = self.inode(num)?;
        self.tx.forget_dir(num);
        self.truncate_data(num, &mut i, 0, what)?;
        self.put_inode(num, &Inode::default())?;
        if let Some(mut free) = self.tx.take_free_inodes() {
            free.freed(num);
            self.tx.put_free_inodes(free);
        }
        Ok(())
    }

    /// Removes the file, symlink or (empty) directory at `path`.
    pub fn remove(&mut self, path: &LayerPath) -> Result<()> {
        let (num, kind) = self.need(path)?;
        let (dir, name, dir_path) = self.parent_of(path)?;
        let mut es = self.entries(dir)?;
        es.retain(|e| e.name != name);
        self.put_entries(dir, &mut es, &dir_path)?;
        self.drop_name(num, kind, path.as_str())
    }

    /// Moves `from` to `to`, replacing what is there (already checked by the rules).
    pub fn rename(&mut self, from: &LayerPath, to: &LayerPath) -> Result<()> {
        let (num, kind) = self.need(from)?;
        let replaced = self.lookup(to)?;
        if replaced.is_some_and(|(old, _)| old == num) {
            // rename(2): two links to the same file; nothing to do
            return Ok(());
        }
        let (sdir, sname, sdir_path) = self.parent_of(from)?;
        let (ddir, dname, ddir_path) = self.parent_of(to)?;
        let mut es = self.entries(sdir)?;
        es.retain(|e| e.name != sname);
        // within one directory, one write of its entries
        let mut ds = if sdir == ddir {
            es
        } else {
            self.put_entries(sdir, &mut es, &sdir_path)?;
            self.entries(ddir)?
        };
        ds.retain(|e| e.name != dname);
        ds.push(Entry {
            name: dname,
            ino: num,
            kind,
        });
        self.put_entries(ddir, &mut ds, &ddir_path)?;
        if let Some((old, okind)) = replaced {
            self.drop_name(old, okind, to.as_str())?;
        }
        Ok(())
    }

    /// Changes mode and/or owner of the entry at `path`.
    pub fn set_attrs(
        &mut self,
        path: &LayerPath,
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
    ) -> Result<()> {
        let (num, _) = self.need(path)?;
        let mut i = self.inode(num)?;
        if let Some(m) = mode {
            i.mode = m & MODE_MASK;
        }
        if let Some((u, g)) = owner {
            i.uid = u;
            i.gid = g;
        }
        self.put_inode(num, &i)
    }

    /// Sets the mtime of the entry at `path` (`utimensat`): its inode-table block.
    pub fn set_mtime(&mut self, path: &LayerPath, secs: i64, nsec: u32) -> Result<()> {
        let (num, _) = self.need(path)?;
        let mut i = self.inode(num)?;
        i.mtime = secs;
        i.mtime_nsec = nsec;
        self.put_inode(num, &i)
    }

    /// The extended attributes of the entry at `path`.
    pub fn xattrs(&self, path: &LayerPath) -> Result<Xattrs> {
        let (num, _) = self.need(path)?;
        self.xattrs_of(&self.inode(num)?)
    }

    fn xattrs_of(&self, i: &Inode) -> Result<Xattrs> {
        if i.xattr == 0 {
            return Ok(Xattrs::new());
        }
        let x = self.inode(i.xattr)?;
        let raw = self.read_data(&x, 0, x.size)?;
        decode_xattrs(&raw).ok_or_else(|| {
            self.tx.corrupt(format!(
                "extended attributes of inode {} do not parse",
                i.xattr
            ))
        })
    }

    /// Sets (`Some`) or removes (`None`) the extended attribute `name` of the entry at
    /// `path`: the attributes' inode is rewritten (made with the first attribute, freed
    /// with the last), its blocks dirtied as any metadata. False, with nothing changed,
    /// when there was nothing to remove.
    pub fn set_xattr(
        &mut self,
        path: &LayerPath,
        name: &str,
        value: Option<&[u8]>,
    ) -> Result<bool> {
        let (num, _) = self.need(path)?;
        let mut i = self.inode(num)?;
        let mut all = self.xattrs_of(&i)?;
        let changed = match value {
            Some(v) => {
                all.insert(name.to_string(), v.to_vec());
                true
            }
            None => all.remove(name).is_some(),
        };
        if !changed {
            return Ok(false);
        }
        let what = format!("extended attributes of {path}");
        if all.is_empty() {
            self.free_inode(i.xattr, &what)?;
            i.xattr = 0;
            self.put_inode(num, &i)?;
            return Ok(true);
        }
        let raw = encode_xattrs(&all);
        if raw.len() > XATTR_SPACE {
            return Err(Error::NoSpace {
                layer: self.layer(),
                path: path.clone(),
                what: format!(
                    "extended attribute space of the inode ({} KiB of names and values)",
                    XATTR_SPACE >> 10
                ),
            });
        }
        if i.xattr == 0 {
            i.xattr = self.alloc_inode()?;
            let stream = Inode {
                kind: XATTR_KIND,
                nlink: 1,
                ..Inode::default()
            };
            self.put_inode(i.xattr, &stream)?;
            self.put_inode(num, &i)?;
        }
        let mut x = self.inode(i.xattr)?;
        self.write_data(i.xattr, &mut x, 0, &raw, &what, true)?;
        self.truncate_data(i.xattr, &mut x, raw.len() as u64, &what)?;
        Ok(true)
    }

    /// Live inodes whose inode-table block satisfies `owned`.
    pub fn count_inodes(&self, owned: impl Fn(u32) -> bool) -> Result<u64> {
        let mut buf = vec![0u8; self.bs];
        let mut n = 0;
        for k in 0..self.itable {
            let l = 1 + k as u32;
            if !self.tx.in_use(l) || !owned(l) {
                continue;
            }
            self.tx.read(l, 0, &mut buf)?;
            // entries only: an inode of extended attributes is part of another one
            n += (0..self.ipb)
                .filter(|s| crate::codec::kind_of(buf[s * INODE]).is_some())
                .count() as u64;
        }
        Ok(n)
    }
}

impl Fs<'_> {
    /// Walks the whole tree from the root as a filesystem checker does: every directory
    /// parses, every entry names an inode of its kind, every file's size is addressable
    /// and its index pointers lie in the device, every name count matches `nlink`, every
    /// content and extended attribute set reads. Returns `(path, what is wrong)` findings;
    /// the walk goes on past each one.
    pub fn check_tree(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Err(e) = self.check_super() {
            out.push(("/".to_string(), e));
        }
        let mut names: BTreeMap<u32, (u32, String)> = BTreeMap::new();
        let mut todo = vec![(ROOT, String::from("/"))];
        let mut seen_dirs = std::collections::BTreeSet::new();
        while let Some((num, path)) = todo.pop() {
            if !seen_dirs.insert(num) {
                out.push((path, format!("directory inode {num} named twice (a loop)")));
                continue;
            }
            if let Err(e) = self.check_inode(num, 2, &path) {
                out.push((path, e));
                continue;
            }
            let entries = match self.entries_strict(num) {
                Ok(e) => e,
                Err(e) => {
                    out.push((path, e));
                    continue;
                }
            };
            for e in entries {
                let child = if path == "/" {
                    format!("/{}", e.name)
                } else {
                    format!("{path}/{}", e.name)
                };
                let code = crate::codec::kind_code(e.kind);
                if e.kind == FileKind::Dir {
                    todo.push((e.ino, child));
                } else if let Err(err) = self.check_inode(e.ino, code, &child) {
                    out.push((child, err));
                } else {
                    names.entry(e.ino).or_insert((0, child)).0 += 1;
                }
            }
        }
        for (num, (count, path)) in names {
            if let Ok(i) = self.inode(num) {
                if i.nlink != count {
                    out.push((
                        path,
                        format!("inode {num} has nlink {} but {count} name(s)", i.nlink),
                    ));
                }
            }
        }
        out
    }

    /// The superblock: this version's magic and the layout this device implies.
    fn check_super(&self) -> std::result::Result<(), String> {
        let mut sb = [0u8; SUPER_LEN];
        self.tx.read(0, 0, &mut sb).map_err(|e| e.to_string())?;
        if &sb[..8] != MAGIC {
            return Err(format!(
                "superblock magic {:?}, expected {}",
                String::from_utf8_lossy(&sb[..8]),
                String::from_utf8_lossy(MAGIC)
            ));
        }
        let want = self.super_fields();
        let got: Vec<u64> = (0..want.len()).map(|k| get_u64(&sb, 8 + 8 * k)).collect();
        if got != want {
            return Err(format!(
                "superblock layout {got:?} (block size, blocks, inode-table blocks, inode \
                 size, inodes), expected {want:?}"
            ));
        }
        Ok(())
    }

    /// One inode: of `kind`, in range, readable (content and extended attributes).
    fn check_inode(&self, num: u32, kind: u8, path: &str) -> std::result::Result<(), String> {
        if num == 0 || u64::from(num) >= self.inodes {
            return Err(format!(
                "an entry names inode {num}, outside the inode table"
            ));
        }
        let i = self.inode(num).map_err(|e| e.to_string())?;
        if i.kind != kind {
            return Err(format!(
                "inode {num} is of kind {} but its entry says {kind}",
                i.kind
            ));
        }
        let nblocks = self.tx.nblocks();
        if !holds_rdev(i.kind) {
            if let Some(p) = i.index.iter().find(|p| u64::from(**p) >= nblocks) {
                return Err(format!("inode {num} points at block {p}, past the device"));
            }
        }
        if i.kind == 1 || i.kind == 3 {
            self.read_data(&i, 0, i.size).map_err(|e| e.to_string())?;
        }
        self.xattrs_of(&i)
            .map(|_| ())
            .map_err(|e| format!("{path}: {e}"))
    }

    /// A directory's entries, refusing (rather than skipping) what does not parse.
    fn entries_strict(&self, num: u32) -> std::result::Result<Vec<Entry>, String> {
        let ino = self.inode(num).map_err(|e| e.to_string())?;
        let raw = self
            .read_data(&ino, 0, ino.size)
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut p = 0usize;
        while p < raw.len() {
            let Some(head) = raw.get(p..p + 7) else {
                return Err(format!("directory inode {num}: an entry cut at byte {p}"));
            };
            let n = u16::from_le_bytes([head[5], head[6]]) as usize;
            let name = raw.get(p + 7..p + 7 + n);
            let kind = crate::codec::kind_of(head[4]);
            match (kind, name.map(std::str::from_utf8)) {
                (Some(kind), Some(Ok(name))) if !name.is_empty() => out.push(Entry {
                    name: name.to_string(),
                    ino: get_u32(head, 0),
                    kind,
                }),
                _ => {
                    return Err(format!(
                        "directory inode {num}: entry at byte {p} does not parse"
                    ))
                }
            }
            p += 7 + n;
        }
        if out.windows(2).any(|w| w[0].name >= w[1].name) {
            return Err(format!("directory inode {num}: entries out of order"));
        }
        Ok(out)
    }
}
