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
    /// Appends an optional string, `None` as the empty string.
    pub fn opt_str(&mut self, s: Option<&str>) {
        self.str(s.unwrap_or(""));
    }
    /// Appends an optional value: a 0 byte for `None`, else a 1 byte and the value as
    /// `put` writes it.
    pub fn opt<T>(&mut self, v: Option<&T>, put: impl FnOnce(&mut Enc, &T)) {
        match v {
            Some(v) => {
                self.u8(1);
                put(self, v);
            }
            None => self.u8(0),
        }
    }
    /// Appends a u32 count, then each item as `put` writes it.
    pub fn list<T>(&mut self, items: &[T], mut put: impl FnMut(&mut Enc, &T)) {
        self.u32(items.len() as u32);
        for x in items {
            put(self, x);
        }
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
    /// An optional string written by [`Enc::opt_str`] (the empty string: `None`).
    pub fn opt_str(&mut self) -> Option<Option<String>> {
        let s = self.str()?;
        Some((!s.is_empty()).then_some(s))
    }
    /// An optional value written by [`Enc::opt`] (`None` when the tag byte is neither 0
    /// nor 1).
    pub fn opt<T>(&mut self, get: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(get(self)?)),
            _ => None,
        }
    }
    /// A list written by [`Enc::list`]: a u32 count, then each item as `get` reads it.
    pub fn list<T>(&mut self, mut get: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = self.u32()?;
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(get(self)?);
        }
        Some(out)
    }
    /// True when everything was read.
    pub fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// One entry of a record's payload (a cow engine op, a thin-pool log op): a payload is a
/// [`Enc::list`] of them, and must be read whole.
pub trait Record: Sized {
    /// Appends the entry.
    fn put(&self, e: &mut Enc);

    /// Reads an entry, `None` when it does not parse.
    fn get(d: &mut Dec<'_>) -> Option<Self>;

    /// The payload of a record of `records`.
    fn encode_all(records: &[Self]) -> Vec<u8> {
        let mut e = Enc::default();
        e.list(records, |e, r| r.put(e));
        e.0
    }

    /// Parses a record's payload (`None` unless all of it parses).
    fn decode_all(b: &[u8]) -> Option<Vec<Self>> {
        decode_whole(b, |d| d.list(Self::get))
    }
}

/// What `get` reads from `buf`, `None` unless it reads all of it.
pub fn decode_whole<T>(buf: &[u8], get: impl FnOnce(&mut Dec<'_>) -> Option<T>) -> Option<T> {
    let mut d = Dec::new(buf);
    let v = get(&mut d)?;
    d.done().then_some(v)
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
