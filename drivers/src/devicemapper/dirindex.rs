//! Directory indexes: a directory's entries by name, each with its byte offset in the
//! directory's content, kept in memory (as the kernel's dentry cache keeps what a
//! directory scan found). A lookup in a directory of n entries is then O(log n) after one
//! scan, and a new entry finds its place in name order without reading the entries before
//! it, so filling a directory is linear in its size rather than quadratic.
//!
//! Not on disk: the llfs directory format is unchanged (sorted entries), and an index is
//! rebuilt by one scan of the directory the first time a process looks into it. It only
//! ever describes the committed content: an operation that changes a directory takes its
//! index out of the pool's [`DirCache`], keeps it current in its own
//! [`super::thin::Txn`], and puts it back only when it commits; an operation that fails
//! leaves the directory unindexed (scanned again next time).

use crate::codec::get_u32;
use layerlab_core::FileKind;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound::{Excluded, Unbounded};
use std::sync::{Mutex, PoisonError};

/// Bytes of an entry's header: inode u32, kind u8, name length u16.
pub const ENTRY_HEAD: usize = 7;

/// One indexed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    ino: u32,
    kind: FileKind,
    /// Where the entry starts in the directory's content.
    off: u64,
}

/// One directory's entries by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirIndex {
    names: BTreeMap<String, Slot>,
    /// Bytes of the directory's content.
    size: u64,
}

impl DirIndex {
    /// The index of a directory whose content is `raw` (entries that do not parse are
    /// skipped, as a listing skips them; of two equal names the first counts).
    pub fn parse(raw: &[u8]) -> DirIndex {
        let mut ix = DirIndex {
            names: BTreeMap::new(),
            size: raw.len() as u64,
        };
        let mut p = 0usize;
        while p + ENTRY_HEAD <= raw.len() {
            let n = u16::from_le_bytes([raw[p + 5], raw[p + 6]]) as usize;
            let name = raw
                .get(p + ENTRY_HEAD..p + ENTRY_HEAD + n)
                .unwrap_or_default();
            if let (Some(kind), Ok(name)) =
                (crate::codec::kind_of(raw[p + 4]), std::str::from_utf8(name))
            {
                ix.names.entry(name.to_string()).or_insert(Slot {
                    ino: get_u32(raw, p),
                    kind,
                    off: p as u64,
                });
            }
            p += ENTRY_HEAD + n;
        }
        ix
    }

    /// Bytes of the directory's content the index describes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The entry `name`: `(inode, kind)`.
    pub fn get(&self, name: &str) -> Option<(u32, FileKind)> {
        self.names.get(name).map(|s| (s.ino, s.kind))
    }

    /// Where an entry `name` goes in name order: the offset of the first entry after it,
    /// or the end of the content.
    pub fn place_of(&self, name: &str) -> u64 {
        self.names
            .range::<str, _>((Excluded(name), Unbounded))
            .next()
            .map_or(self.size, |(_, s)| s.off)
    }

    /// Records an entry of `len` bytes inserted at `off` (the entries after it move).
    pub fn inserted(&mut self, name: &str, ino: u32, kind: FileKind, off: u64, len: u64) {
        for (_, s) in self.names.range_mut::<str, _>((Excluded(name), Unbounded)) {
            s.off += len;
        }
        self.names.insert(name.to_string(), Slot { ino, kind, off });
        self.size += len;
    }
}

/// The indexes of the committed directories this process has looked into, by device
/// name and directory inode. Behind a mutex so that read-only lookups (through a shared
/// reference) can fill it.
#[derive(Debug, Default)]
pub struct DirCache(Mutex<HashMap<String, HashMap<u32, DirIndex>>>);

impl DirCache {
    fn with_map<T>(&self, f: impl FnOnce(&mut HashMap<String, HashMap<u32, DirIndex>>) -> T) -> T {
        // an index is a cache: one left by a panicking holder is as good as any
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut map)
    }

    /// The entry `name` of directory `dir` of device `dev`, if that directory is indexed.
    pub fn get(&self, dev: &str, dir: u32, name: &str) -> Option<Option<(u32, FileKind)>> {
        self.with_map(|m| m.get(dev)?.get(&dir).map(|ix| ix.get(name)))
    }

    /// Keeps the index of a committed directory.
    pub fn put(&self, dev: &str, dir: u32, ix: DirIndex) {
        self.with_map(|m| {
            m.entry(dev.to_string()).or_default().insert(dir, ix);
        });
    }

    /// Takes a directory's index out (it is about to change).
    pub fn take(&self, dev: &str, dir: u32) -> Option<DirIndex> {
        self.with_map(|m| m.get_mut(dev)?.remove(&dir))
    }

    /// Forgets every index of a device (made or deleted).
    pub fn forget_device(&self, dev: &str) {
        self.with_map(|m| m.remove(dev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ino: u32, name: &str) -> Vec<u8> {
        let mut b = ino.to_le_bytes().to_vec();
        b.push(crate::codec::kind_code(FileKind::File));
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        b
    }

    #[test]
    fn places_and_shifts_follow_name_order() {
        let raw = [entry(2, "a"), entry(3, "c")].concat();
        let mut ix = DirIndex::parse(&raw);
        assert_eq!(ix.get("c"), Some((3, FileKind::File)));
        assert_eq!(ix.get("b"), None);
        assert_eq!(ix.place_of("b"), 8);
        assert_eq!(ix.place_of("d"), 16);
        ix.inserted("b", 4, FileKind::File, 8, 8);
        assert_eq!(ix.place_of("bb"), 16);
        assert_eq!(ix.place_of("d"), 24);
        let raw2 = [entry(2, "a"), entry(4, "b"), entry(3, "c")].concat();
        assert_eq!(ix, DirIndex::parse(&raw2));
    }
}
