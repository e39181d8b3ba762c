//! A subvolume's file tree: a persistent radix tree of reference-counted nodes keyed by
//! inode number (fan-out 64, four levels), whose leaves point to reference-counted inodes.
//! A snapshot copies the root pointer (one `Arc` count). A change copies the path from the
//! root to the inode it touches when a node on it is shared (`Arc::make_mut`), so two
//! snapshots share every node neither has changed.
//!
//! Pool sectors are counted per inode *object* and per *disk extent* (the run of sectors
//! one write allocated): an inode holding any part of a disk extent holds all of its
//! sectors, as a btrfs file extent item pins its whole extent. An extent gains a reference
//! when the inode holding it is copied (a shared inode changed in one snapshot) and loses
//! one when an inode object is dropped for good (`Arc::try_unwrap` succeeds) or stops
//! naming any part of it.

use crate::blockpool::RefTable;
use layerlab_core::FileKind;
use std::collections::BTreeMap;
use std::sync::Arc;

const BITS: u32 = 6;
const FAN: usize = 1 << BITS;
const LEVELS: u32 = 4;
/// Inode numbers below this fit in the tree.
pub const MAX_INO: u64 = 1 << (BITS * LEVELS);
/// The root directory's inode number.
pub const ROOT_INO: u64 = 1;

/// One extent of a file: `units` consecutive copy-on-write units stored in `nsec`
/// consecutive pool sectors from `sector`; `clen` is the compressed length of a single
/// compressed unit (0: stored raw). It is a slice of the *disk extent* `[disk, disk+dlen)`
/// that one write allocated: a partial overwrite or a truncation narrows the slice, never
/// the disk extent, which stays allocated while any slice of it is referenced (btrfs's
/// "bookend" extents). zfs's disk extents are single records, so nothing is pinned there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext {
    /// First pool sector.
    pub sector: u64,
    /// Pool sectors it occupies.
    pub nsec: u64,
    /// File units it covers.
    pub units: u64,
    /// Compressed bytes (0 = raw).
    pub clen: u32,
    /// First sector of the disk extent it is a slice of.
    pub disk: u64,
    /// Sectors of that disk extent.
    pub dlen: u64,
}

impl Ext {
    /// A whole disk extent: `units` units in `nsec` sectors from `sector`.
    pub fn whole(sector: u64, nsec: u64, units: u64, clen: u32) -> Ext {
        Ext {
            sector,
            nsec,
            units,
            clen,
            disk: sector,
            dlen: nsec,
        }
    }

    /// The part of a raw extent covering units `[from, from+n)` of it (the same disk
    /// extent).
    fn slice(&self, from: u64, n: u64) -> Ext {
        let spu = self.nsec / self.units.max(1);
        Ext {
            sector: self.sector + from * spu,
            nsec: n * spu,
            units: n,
            ..*self
        }
    }

    /// The disk extent's sector range.
    pub fn disk_range(&self) -> std::ops::Range<u64> {
        self.disk..self.disk + self.dlen
    }
}

/// Disk extents as sorted, distinct `(first sector, sectors)`.
pub type Held = Vec<(u64, u64)>;

/// The disk extents of `a` that are not in `b` (both sorted and distinct).
pub fn held_minus(a: &Held, b: &Held) -> Held {
    let mut out = Vec::new();
    let mut j = 0;
    for x in a {
        while j < b.len() && b[j] < *x {
            j += 1;
        }
        if b.get(j) != Some(x) {
            out.push(*x);
        }
    }
    out
}

/// A directory entry: inode number and kind.
pub type Dirent = (u64, FileKind);

/// An inode's attributes, as a record's `Attr` op logs them whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// What it is.
    pub kind: FileKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Names of it.
    pub nlink: u32,
    /// Bytes (files, symlinks).
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: u32,
    /// A device node's number (`makedev`), 0 for every other kind.
    pub rdev: u64,
    /// Symlink target.
    pub target: String,
}

impl Attr {
    /// Sets the mtime to now (the content or the entries changed).
    pub fn touch(&mut self) {
        (self.mtime, self.mtime_nsec) = super::engine::timestamp();
    }
}

/// An inode: attributes, and a directory's entries, a symlink's target or a file's extents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    /// Its attributes.
    pub attr: Attr,
    /// Extended attributes by name (btrfs: one `XATTR_ITEM` each, in the subvolume's tree).
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Directory entries by name.
    pub dir: BTreeMap<String, Dirent>,
    /// File extents by first unit.
    pub extents: BTreeMap<u64, Ext>,
    /// A small file's bytes `[0, len)` kept in its metadata instead of an extent (btrfs's
    /// inline extent: the whole file at most `max_inline` bytes); never with `extents`.
    pub inline: Vec<u8>,
}

impl Inode {
    /// An inode with no content.
    pub fn new(kind: FileKind, mode: u32, mtime: i64) -> Self {
        Inode::of(Attr {
            kind,
            mode,
            uid: 0,
            gid: 0,
            nlink: 1,
            size: 0,
            mtime,
            mtime_nsec: 0,
            rdev: 0,
            target: String::new(),
        })
    }

    /// An inode of the attributes `attr`, with no content.
    pub fn of(attr: Attr) -> Self {
        Inode {
            attr,
            xattrs: BTreeMap::new(),
            dir: BTreeMap::new(),
            extents: BTreeMap::new(),
            inline: Vec::new(),
        }
    }

    /// The disk extents the inode holds (any part of), sorted and distinct.
    pub fn held(&self) -> Held {
        let mut v: Held = self.extents.values().map(|e| (e.disk, e.dlen)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every pool sector the inode holds: all sectors of every disk extent it names.
    pub fn held_sectors(&self) -> impl Iterator<Item = u64> {
        self.held().into_iter().flat_map(|(d, n)| d..d + n)
    }

    /// The extent holding unit `u`: `(its first unit, extent)`.
    pub fn extent_at(&self, u: u64) -> Option<(u64, Ext)> {
        let (&s, e) = self.extents.range(..=u).next_back()?;
        (u < s + e.units).then_some((s, *e))
    }

    /// Unmaps units `[a, b)`, splitting extents at the edges (the slices keep their disk
    /// extent); returns the slices removed.
    pub fn unmap(&mut self, a: u64, b: u64) -> Vec<Ext> {
        let mut gone = Vec::new();
        if a >= b {
            return gone;
        }
        if let Some((s, e)) = self.extent_at(a) {
            if s < a {
                // keep the head, cut the rest
                self.extents.insert(s, e.slice(0, a - s));
                let tail = e.slice(a - s, e.units - (a - s));
                self.extents.insert(a, tail);
            }
        }
        if let Some((s, e)) = self.extent_at(b) {
            if s < b {
                self.extents.insert(s, e.slice(0, b - s));
                self.extents.insert(b, e.slice(b - s, e.units - (b - s)));
            }
        }
        let keys: Vec<u64> = self.extents.range(a..b).map(|(k, _)| *k).collect();
        for k in keys {
            if let Some(e) = self.extents.remove(&k) {
                gone.push(e);
            }
        }
        gone
    }

    /// Maps `ext` at unit `at` (the range must be unmapped). Extents of different disk
    /// extents are never merged, even when contiguous on the pool: each is its own
    /// allocation with its own lifetime.
    pub fn map(&mut self, at: u64, ext: Ext) {
        self.extents.insert(at, ext);
    }
}

/// A node of the tree.
#[derive(Debug, Clone)]
pub enum TNode {
    /// Points to inodes.
    Leaf(Vec<Option<Arc<Inode>>>),
    /// Points to nodes one level down.
    Branch(Vec<Option<Arc<TNode>>>),
}

fn slot(ino: u64, level: u32) -> usize {
    ((ino >> (BITS * (LEVELS - 1 - level))) as usize) & (FAN - 1)
}

fn empty(level: u32) -> TNode {
    if level + 1 == LEVELS {
        TNode::Leaf(vec![None; FAN])
    } else {
        TNode::Branch(vec![None; FAN])
    }
}

/// A subvolume: the tree's root, the next free inode number and its id. Cloning it (with
/// a new id) is a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// The root node.
    pub root: Option<Arc<TNode>>,
    /// The next inode number to hand out.
    pub next_ino: u64,
    /// The subvolume's id (btrfs's objectid of its root): one more than the highest id in
    /// use when it was made, the first [`super::roottree::FIRST_SUBVOLUME_ID`].
    pub id: u64,
}

/// What a change did to shared structure (for the Meter).
#[derive(Debug, Default, Clone, Copy)]
pub struct Copied {
    /// Tree nodes and inodes copied because they were shared.
    pub nodes: u64,
}

impl Tree {
    /// The inode `ino`.
    pub fn get(&self, ino: u64) -> Option<&Arc<Inode>> {
        let mut node = self.root.as_ref()?;
        for level in 0..LEVELS {
            match node.as_ref() {
                TNode::Branch(v) => node = v.get(slot(ino, level))?.as_ref()?,
                TNode::Leaf(v) => return v.get(slot(ino, level))?.as_ref(),
            }
        }
        None
    }

    /// True when the inode `ino` (or a node above it) is shared with another tree.
    pub fn is_shared(&self, ino: u64) -> bool {
        let Some(mut node) = self.root.as_ref() else {
            return false;
        };
        for level in 0..LEVELS {
            if Arc::strong_count(node) > 1 {
                return true;
            }
            match node.as_ref() {
                TNode::Branch(v) => match v.get(slot(ino, level)).and_then(|x| x.as_ref()) {
                    Some(n) => node = n,
                    None => return false,
                },
                TNode::Leaf(v) => {
                    return v
                        .get(slot(ino, level))
                        .and_then(|x| x.as_ref())
                        .is_some_and(|i| Arc::strong_count(i) > 1)
                }
            }
        }
        false
    }

    /// The slot of inode `ino`, every node above it made this tree's own (path copying),
    /// missing nodes created.
    fn slot_mut(&mut self, ino: u64, copied: &mut Copied) -> Option<&mut Option<Arc<Inode>>> {
        if ino >= MAX_INO {
            return None;
        }
        let root = self.root.get_or_insert_with(|| Arc::new(empty(0)));
        if Arc::strong_count(root) > 1 {
            copied.nodes += 1;
        }
        let mut node: &mut TNode = Arc::make_mut(root);
        let mut level = 0;
        loop {
            match node {
                TNode::Leaf(v) => return v.get_mut(slot(ino, level)),
                TNode::Branch(v) => {
                    let child = v
                        .get_mut(slot(ino, level))?
                        .get_or_insert_with(|| Arc::new(empty(level + 1)));
                    if Arc::strong_count(child) > 1 {
                        copied.nodes += 1;
                    }
                    node = Arc::make_mut(child);
                    level += 1;
                }
            }
        }
    }

    /// The inode `ino`, made this tree's own: a shared inode is copied, and the sectors of
    /// its extents gain the copy's reference.
    pub fn get_mut(
        &mut self,
        ino: u64,
        refs: &mut RefTable,
        copied: &mut Copied,
    ) -> Option<&mut Inode> {
        self.get(ino)?;
        let slot = self.slot_mut(ino, copied)?;
        let a = slot.as_mut()?;
        if Arc::strong_count(a) > 1 {
            copied.nodes += 1;
            for s in a.held_sectors() {
                refs.inc(s);
            }
        }
        Some(Arc::make_mut(a))
    }

    /// Puts a new inode at `ino` (replacing nothing).
    pub fn insert(&mut self, ino: u64, inode: Inode, copied: &mut Copied) {
        if let Some(slot) = self.slot_mut(ino, copied) {
            *slot = Some(Arc::new(inode));
            if ino >= self.next_ino {
                self.next_ino = ino + 1;
            }
        }
    }

    /// Removes inode `ino`; the sectors of an inode object no other tree holds lose its
    /// reference (those that became free are pushed to `freed`).
    pub fn remove(&mut self, ino: u64, refs: &mut RefTable, freed: &mut Vec<u64>) {
        if self.get(ino).is_none() {
            return;
        }
        let mut copied = Copied::default();
        if let Some(slot) = self.slot_mut(ino, &mut copied) {
            if let Some(a) = slot.take() {
                release_inode(a, refs, freed);
            }
        }
    }

    /// Drops the whole tree (a subvolume deleted).
    pub fn release(self, refs: &mut RefTable, freed: &mut Vec<u64>) {
        if let Some(r) = self.root {
            release_node(r, refs, freed);
        }
    }

    /// Calls `f` on every inode of the tree with its number.
    pub fn for_each(&self, f: &mut impl FnMut(u64, &Arc<Inode>)) {
        fn walk(n: &TNode, prefix: u64, f: &mut impl FnMut(u64, &Arc<Inode>)) {
            match n {
                TNode::Leaf(v) => {
                    for (i, x) in v.iter().enumerate() {
                        if let Some(a) = x {
                            f((prefix << BITS) | i as u64, a);
                        }
                    }
                }
                TNode::Branch(v) => {
                    for (i, x) in v.iter().enumerate() {
                        if let Some(c) = x {
                            walk(c, (prefix << BITS) | i as u64, f);
                        }
                    }
                }
            }
        }
        if let Some(r) = &self.root {
            walk(r, 0, f);
        }
    }
}

/// Drops one reference to an inode object; the last one frees its sectors' references.
pub fn release_inode(a: Arc<Inode>, refs: &mut RefTable, freed: &mut Vec<u64>) {
    if let Ok(i) = Arc::try_unwrap(a) {
        for s in i.held_sectors() {
            if refs.dec(s) {
                freed.push(s);
            }
        }
    }
}

/// Drops one reference to a node; the last one releases its children.
pub fn release_node(n: Arc<TNode>, refs: &mut RefTable, freed: &mut Vec<u64>) {
    if let Ok(node) = Arc::try_unwrap(n) {
        match node {
            TNode::Leaf(v) => {
                for a in v.into_iter().flatten() {
                    release_inode(a, refs, freed);
                }
            }
            TNode::Branch(v) => {
                for c in v.into_iter().flatten() {
                    release_node(c, refs, freed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file_with(sector: u64) -> Inode {
        let mut i = Inode::new(FileKind::File, 0o644, 0);
        i.map(0, Ext::whole(sector, 4, 4, 0));
        i
    }

    #[test]
    fn snapshot_shares_until_changed() {
        let mut refs = RefTable::new(100);
        let mut t = Tree::default();
        let mut c = Copied::default();
        t.insert(5, file_with(10), &mut c);
        for s in 10..14 {
            refs.inc(s);
        }
        let mut snap = t.clone();
        assert!(snap.is_shared(5));
        let i = snap.get_mut(5, &mut refs, &mut c).unwrap();
        assert_eq!(refs.get(10), 2);
        let gone = i.unmap(1, 2);
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].sector, gone[0].nsec, gone[0].disk), (11, 1, 10));
        assert_eq!(i.extents.len(), 2);
        // both slices still name the whole disk extent
        assert_eq!(i.held(), vec![(10, 4)]);
        assert!(!snap.is_shared(5));
        let mut freed = Vec::new();
        snap.release(&mut refs, &mut freed);
        assert!(freed.is_empty());
        assert_eq!(refs.get(11), 1);
        t.release(&mut refs, &mut freed);
        assert_eq!(freed, vec![10, 11, 12, 13]);
    }

    #[test]
    fn separate_allocations_stay_separate_extents() {
        let mut i = Inode::new(FileKind::File, 0o644, 0);
        i.map(0, Ext::whole(100, 2, 2, 0));
        i.map(2, Ext::whole(102, 3, 3, 0));
        assert_eq!(i.extents.len(), 2);
        assert_eq!(i.held(), vec![(100, 2), (102, 3)]);
        i.unmap(1, 3);
        i.map(1, Ext::whole(7, 2, 2, 0));
        assert_eq!(i.extents.len(), 3);
        let (s, e) = i.extent_at(4).unwrap();
        assert_eq!((s, e.sector, e.nsec, e.disk, e.dlen), (3, 103, 2, 102, 3));
        // the first unit of each old allocation is gone, yet both stay held
        assert_eq!(i.held(), vec![(7, 2), (100, 2), (102, 3)]);
        i.unmap(0, 1);
        assert_eq!(i.held(), vec![(7, 2), (102, 3)]);
    }

    #[test]
    fn held_minus_is_a_set_difference() {
        let a = vec![(1, 2), (5, 1), (9, 4)];
        let b = vec![(0, 1), (5, 1), (10, 1)];
        assert_eq!(held_minus(&a, &b), vec![(1, 2), (9, 4)]);
        assert_eq!(held_minus(&b, &a), vec![(0, 1), (10, 1)]);
        assert!(held_minus(&a, &a).is_empty());
    }
}
