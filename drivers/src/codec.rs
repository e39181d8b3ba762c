//! The little-endian byte codecs and the checksum every on-disk format of the block and
//! snapshot drivers shares (pool metadata logs, device maps, in-device filesystems, the cow
//! engine's records).

/// CRC-32C (Castagnoli, the `crc32c` crate: SSE 4.2 or ARMv8 CRC instructions where the
/// machine has them): the checksum of superblocks, checkpoints, log records and the cow
/// engine's data sectors, as btrfs's default `crc32c` and dm-persistent-data's.
pub fn checksum(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// CRC-32C of `a` followed by `b`, without joining them.
pub fn checksum2(a: &[u8], b: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(a), b)
}

/// Little-endian writer.
#[derive(Debug, Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    /// Appends a u8.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// Appends a u32.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a u64.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a length-prefixed string.
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Little-endian reader; every read fails with `None` past the end.
#[derive(Debug)]
pub struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    /// Reads `buf` from the start.
    pub fn new(buf: &'a [u8]) -> Self {
        Dec { buf, pos: 0 }
    }
    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    /// A u8.
    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    /// A u32.
    pub fn u32(&mut self) -> Option<u32> {
        self.bytes(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    /// A u64.
    pub fn u64(&mut self) -> Option<u64> {
        self.bytes(8)?.try_into().ok().map(u64::from_le_bytes)
    }
    /// A length-prefixed string.
    pub fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.bytes(n)?.to_vec()).ok()
    }
    /// True when everything was read.
    pub fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Reads a u32 at `off` of a block (0 when out of range).
pub fn get_u32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

/// Reads a u64 at `off` of a block (0 when out of range).
pub fn get_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// The byte an on-disk format stores a kind as (the in-device filesystems, the cow
/// engine's records): 1 file, 2 directory, 3 symlink, 4 character device, 5 block
/// device, 6 fifo.
pub fn kind_code(k: layerlab_core::FileKind) -> u8 {
    use layerlab_core::FileKind;
    match k {
        FileKind::File => 1,
        FileKind::Dir => 2,
        FileKind::Symlink => 3,
        FileKind::CharDevice => 4,
        FileKind::BlockDevice => 5,
        FileKind::Fifo => 6,
    }
}

/// The kind a stored byte names (see [`kind_code`]), `None` for any other byte.
pub fn kind_of(code: u8) -> Option<layerlab_core::FileKind> {
    use layerlab_core::FileKind;
    match code {
        1 => Some(FileKind::File),
        2 => Some(FileKind::Dir),
        3 => Some(FileKind::Symlink),
        4 => Some(FileKind::CharDevice),
        5 => Some(FileKind::BlockDevice),
        6 => Some(FileKind::Fifo),
        _ => None,
    }
}
