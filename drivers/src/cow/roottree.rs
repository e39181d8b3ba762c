//! btrfs's root tree at leaf granularity, for the Meter: which 16 KiB leaf holds a
//! subvolume's root item and its root ref, so that a cold entry into a subvolume counts
//! the leaves it must read (`tree_leaf_reads`) and no others.
//!
//! The root tree holds one `ROOT_ITEM` per tree (439 bytes), and for every subvolume a
//! `ROOT_BACKREF` beside its root item (key: the subvolume's id) and a `ROOT_REF` under
//! the id of the tree its directory entry is in (here always the top-level `FS_TREE`, id
//! 5, so every root ref sits before the first subvolume's root item). Each ref is 18 bytes
//! and the subvolume's name. Items are ordered by key (objectid, type, offset) and packed
//! into leaves of 16 KiB less a 101-byte header, each item taking a 25-byte header beside
//! its data. Where the leaf boundaries fall depends on the order the items came in: the
//! balancing below is btrfs's own (`split_leaf`, `push_leaf_right`, `push_leaf_left`,
//! and on deletion the merge of a leaf under a third full into its neighbours), so a
//! store's leaves are laid out as the kernel lays out the same sequence of subvolumes
//! (checked in the tests against `btrfs inspect-internal dump-tree` of a kernel-btrfs
//! store).

use layerlab_core::Meter;
use std::collections::{HashMap, HashSet};

/// A root-tree key: objectid, item type, offset.
type Key = (u64, u8, u64);

/// The bytes of a leaf that items may use: a 16 KiB node less its 101-byte header.
pub(super) const LEAF_DATA: u32 = 16384 - 101;
/// The header each item takes in the leaf beside its data: its key (17 bytes), offset and
/// size (4 bytes each).
pub(super) const ITEM_HEADER: u32 = 25;
/// `struct btrfs_root_item`.
const ROOT_ITEM_SIZE: u32 = 439;
/// `struct btrfs_root_ref` without the name that follows it.
const ROOT_REF_SIZE: u32 = 18;

const INODE_ITEM: u8 = 1;
const INODE_REF: u8 = 12;
const DIR_ITEM: u8 = 84;
const ROOT_ITEM: u8 = 132;
const ROOT_BACKREF: u8 = 144;
const ROOT_REF: u8 = 156;

/// The top-level subvolume: every subvolume's directory entry is in it.
const FS_TREE: u64 = 5;
/// `BTRFS_DATA_RELOC_TREE_OBJECTID` (-9 as an unsigned id: after every subvolume).
const DATA_RELOC_TREE: u64 = u64::MAX - 8;
/// The trees whose root items a mount reads: extent, device, top-level subvolume,
/// checksum, uuid, free space, data relocation.
const MOUNT_ROOTS: [u64; 7] = [2, 4, FS_TREE, 7, 9, 10, DATA_RELOC_TREE];
/// The first id a subvolume is given.
pub const FIRST_SUBVOLUME_ID: u64 = 256;

/// One item: its key and the bytes of its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    key: Key,
    size: u32,
}

/// One leaf: a number that stays with it while it lives (the cache's key), and its items.
#[derive(Debug, Clone)]
struct Leaf {
    no: u64,
    items: Vec<Item>,
}

impl Leaf {
    fn used(&self) -> u32 {
        used(&self.items)
    }

    fn free(&self) -> u32 {
        LEAF_DATA.saturating_sub(self.used())
    }
}

/// The bytes items take in a leaf, headers included.
fn used(items: &[Item]) -> u32 {
    items.iter().map(|i| i.size + ITEM_HEADER).sum()
}

/// Where an insertion goes: a leaf's index and the slot in it.
type Place = (usize, usize);

/// The root tree's leaves, in key order.
#[derive(Debug, Clone)]
pub struct RootTree {
    leaves: Vec<Leaf>,
    next_no: u64,
}

impl Default for RootTree {
    fn default() -> Self {
        Self::new()
    }
}

impl RootTree {
    /// The root tree as `mkfs.btrfs` leaves it: the root items of the extent, device,
    /// top-level, checksum, uuid, free space and data relocation trees, and the root
    /// tree's own directory (its inode, back reference and the `default` entry), in one
    /// leaf.
    pub fn new() -> Self {
        let mut items: Vec<Item> = MOUNT_ROOTS
            .iter()
            .map(|&id| Item {
                key: (id, ROOT_ITEM, 0),
                size: ROOT_ITEM_SIZE,
            })
            .collect();
        let dir = [
            ((FS_TREE, INODE_REF, 6), 17),
            ((6, INODE_ITEM, 0), 160),
            ((6, INODE_REF, 6), 12),
            ((6, DIR_ITEM, 0), 37),
        ];
        items.extend(dir.iter().map(|&(key, size)| Item { key, size }));
        items.sort_by_key(|i| i.key);
        RootTree {
            leaves: vec![Leaf { no: 0, items }],
            next_no: 1,
        }
    }

    /// Adds a subvolume (or snapshot) `id` named by `name_len` bytes in the top-level
    /// directory, as the kernel does: its root item, then its root ref and back ref.
    pub fn add_subvolume(&mut self, id: u64, name_len: usize) {
        let refs = ROOT_REF_SIZE + name_len as u32;
        self.insert((id, ROOT_ITEM, 0), ROOT_ITEM_SIZE);
        self.insert((FS_TREE, ROOT_REF, id), refs);
        self.insert((id, ROOT_BACKREF, FS_TREE), refs);
    }

    /// Removes subvolume `id`: its refs (when its directory entry goes), then its root
    /// item (when the cleaner has dropped its tree).
    pub fn remove_subvolume(&mut self, id: u64) {
        self.delete((FS_TREE, ROOT_REF, id));
        self.delete((id, ROOT_BACKREF, FS_TREE));
        self.delete((id, ROOT_ITEM, 0));
    }

    /// The leaves a cold entry into subvolume `id` reads: the one holding its root ref
    /// (the lookup of its directory entry checks it) and the one holding its root item.
    pub fn entry_leaves(&self, id: u64) -> [u64; 2] {
        [
            self.leaf_no((FS_TREE, ROOT_REF, id)),
            self.leaf_no((id, ROOT_ITEM, 0)),
        ]
    }

    /// The leaves a mount reads: those holding the root items of the trees it loads.
    pub fn mount_leaves(&self) -> Vec<u64> {
        MOUNT_ROOTS
            .iter()
            .map(|&id| self.leaf_no((id, ROOT_ITEM, 0)))
            .collect()
    }

    /// Items and free bytes of every leaf, in key order.
    pub fn shape(&self) -> Vec<(usize, u32)> {
        self.leaves
            .iter()
            .map(|l| (l.items.len(), l.free()))
            .collect()
    }

    /// Every leaf's number and item count.
    fn counts(&self) -> HashMap<u64, usize> {
        self.leaves.iter().map(|l| (l.no, l.items.len())).collect()
    }

    fn leaf_no(&self, key: Key) -> u64 {
        self.leaves[self.find(key).0].no
    }

    /// The leaf a key belongs in (the last whose first key is not above it) and its slot.
    fn find(&self, key: Key) -> Place {
        let li = self
            .leaves
            .iter()
            .rposition(|l| l.items.first().is_some_and(|i| i.key <= key))
            .unwrap_or(0);
        let slot = self.leaves[li].items.partition_point(|i| i.key < key);
        (li, slot)
    }

    fn insert(&mut self, key: Key, size: u32) {
        let (mut li, mut slot) = self.find(key);
        let need = size + ITEM_HEADER;
        if self.leaves[li].free() < need {
            (li, slot) = self.make_room(li, slot, need);
        }
        self.leaves[li].items.insert(slot, Item { key, size });
    }

    fn new_leaf(&mut self, at: usize, items: Vec<Item>) {
        self.leaves.insert(
            at,
            Leaf {
                no: self.next_no,
                items,
            },
        );
        self.next_no += 1;
    }

    /// btrfs's `split_leaf`: push items to the right neighbour, else to the left, and
    /// split the leaf only if neither made room.
    fn make_room(&mut self, li: usize, slot: usize, need: u32) -> Place {
        let n = self.leaves[li].items.len();
        let right = need.saturating_sub(if slot < n { self.leaves[li].free() } else { 0 });
        let mut at = self.push_right(li, slot, right);
        if at.is_none() {
            let free = self.leaves[li].free();
            let left = need.saturating_sub(if slot > 0 { free } else { 0 });
            at = self.push_left(li, slot, left);
        }
        if let Some((l, s)) = at {
            if self.leaves[l].free() >= need {
                return (l, s);
            }
            return self.split(l, s, need);
        }
        self.split(li, slot, need)
    }

    /// The split itself: at the middle, or at the slot, or a new empty leaf for an item
    /// that goes at either end of a full one. (btrfs splits twice when the item fits
    /// beside neither part; root-tree items, at most a root item, are too small for that.)
    fn split(&mut self, li: usize, slot: usize, need: u32) -> Place {
        let items = &self.leaves[li].items;
        let n = items.len();
        let mut mid = n.div_ceil(2);
        let fits = |from: usize, to: usize| used(&items[from..to]) + need <= LEAF_DATA;
        if mid <= slot {
            if n == 1 || !fits(mid, n) {
                if slot >= n {
                    self.new_leaf(li + 1, Vec::new());
                    return (li + 1, 0);
                }
                mid = slot;
            }
        } else if !fits(0, mid) {
            if slot == 0 {
                self.new_leaf(li, Vec::new());
                return (li, 0);
            }
            mid = slot;
        }
        let moved = self.leaves[li].items.split_off(mid);
        self.new_leaf(li + 1, moved);
        if mid <= slot {
            (li + 1, slot - mid)
        } else {
            (li, slot)
        }
    }

    /// btrfs's `push_leaf_right` while inserting: the items from the end of the leaf down
    /// to the slot that fit into the right neighbour move there.
    fn push_right(&mut self, li: usize, slot: usize, need: u32) -> Option<Place> {
        let room = self.leaves.get(li + 1)?.free();
        if room < need {
            return None;
        }
        let items = &self.leaves[li].items;
        let n = items.len();
        if slot == n {
            return Some((li + 1, 0));
        }
        let count = count_right(items, slot, need, room, self.leaves[li].free());
        if count == 0 {
            return None;
        }
        let moved = self.leaves[li].items.split_off(n - count);
        self.leaves[li + 1].items.splice(0..0, moved);
        let left = n - count;
        Some(if slot >= left {
            (li + 1, slot - left)
        } else {
            (li, slot)
        })
    }

    /// btrfs's `push_leaf_left` while inserting: the items from the start of the leaf up
    /// to the slot that fit into the left neighbour move there.
    fn push_left(&mut self, li: usize, slot: usize, need: u32) -> Option<Place> {
        let left = li.checked_sub(1)?;
        let room = self.leaves[left].free();
        if self.leaves[li].items.is_empty() || room < need {
            return None;
        }
        let count = count_left(
            &self.leaves[li].items,
            slot,
            need,
            room,
            self.leaves[li].free(),
        );
        if count == 0 {
            return None;
        }
        let moved: Vec<Item> = self.leaves[li].items.drain(..count).collect();
        let before = self.leaves[left].items.len();
        self.leaves[left].items.extend(moved);
        Some(if slot < count {
            (left, slot + before)
        } else {
            (li, slot - count)
        })
    }

    /// btrfs's `btrfs_del_items` for one item: a leaf left empty goes; one under a third
    /// full gives what fits to its left neighbour, then all of the rest to its right one
    /// if it fits there, and goes if that emptied it.
    fn delete(&mut self, key: Key) {
        let (li, slot) = self.find(key);
        if self.leaves[li].items.get(slot).map(|i| i.key) != Some(key) {
            return;
        }
        self.leaves[li].items.remove(slot);
        if self.leaves.len() > 1 && self.leaves[li].used() < LEAF_DATA / 3 {
            self.merge_left(li);
            self.merge_right(li);
        }
        if self.leaves.len() > 1 && self.leaves[li].items.is_empty() {
            self.leaves.remove(li);
        }
    }

    fn merge_left(&mut self, li: usize) {
        let Some(left) = li.checked_sub(1) else {
            return;
        };
        let mut room = self.leaves[left].free();
        let items = &self.leaves[li].items;
        let count = items
            .iter()
            .take_while(|i| {
                let fits = i.size + ITEM_HEADER <= room;
                room = room.saturating_sub(i.size + ITEM_HEADER);
                fits
            })
            .count();
        let moved: Vec<Item> = self.leaves[li].items.drain(..count).collect();
        self.leaves[left].items.extend(moved);
    }

    fn merge_right(&mut self, li: usize) {
        let Some(right) = self.leaves.get(li + 1) else {
            return;
        };
        if self.leaves[li].items.is_empty() || right.free() < self.leaves[li].used() {
            return;
        }
        let moved = std::mem::take(&mut self.leaves[li].items);
        self.leaves[li + 1].items.splice(0..0, moved);
    }
}

/// The root tree of a mounted store and the leaves of it the host has cached: those the
/// mount read, those changed since (in memory), those read since. Made afresh on every
/// open, as the kernel's caches are empty after a cache drop and a new mount.
#[derive(Debug, Clone, Default)]
pub struct RootCache {
    tree: RootTree,
    cached: HashSet<u64>,
}

impl RootCache {
    /// The root tree of `subvols` (`(id, name length)`), laid out by adding them in the
    /// order of their ids (a store's deletions are not replayed: the leaves are those of
    /// the survivors made in order), and the leaves a mount reads cached.
    pub fn mounted(subvols: impl IntoIterator<Item = (u64, usize)>) -> RootCache {
        let mut subvols: Vec<(u64, usize)> = subvols.into_iter().collect();
        subvols.sort_unstable();
        let mut tree = RootTree::new();
        for (id, name_len) in subvols {
            tree.add_subvolume(id, name_len);
        }
        let cached = tree.mount_leaves().into_iter().collect();
        RootCache { tree, cached }
    }

    /// Subvolume `id` made: the leaves the insertion changed are in memory.
    pub fn made(&mut self, id: u64, name_len: usize) {
        let before = self.tree.counts();
        self.tree.add_subvolume(id, name_len);
        self.cache_changed(&before);
    }

    /// Subvolume `id` removed: the leaves the deletion changed are in memory.
    pub fn removed(&mut self, id: u64) {
        let before = self.tree.counts();
        self.tree.remove_subvolume(id);
        self.cache_changed(&before);
    }

    /// Subvolume `id` entered cold: each of its entry leaves not cached is read (Meter
    /// `tree_leaf_reads`) and cached from now on.
    pub fn enter(&mut self, id: u64, meter: &mut Meter) {
        for leaf in self.tree.entry_leaves(id) {
            if self.cached.insert(leaf) {
                meter.counts.tree_leaf_reads += 1;
                meter.step(|| format!("root-tree leaf {leaf} read (root item or ref of {id})"));
            }
        }
    }

    fn cache_changed(&mut self, before: &HashMap<u64, usize>) {
        for (no, n) in self.tree.counts() {
            if before.get(&no) != Some(&n) {
                self.cached.insert(no);
            }
        }
    }
}

/// How many items from the end of `items` move right (`__push_leaf_right`): they must fit
/// in `room` with the new item's `need` when the slot is among them, and no further than
/// the slot once one has moved, unless this leaf would still be fuller than the other.
fn count_right(items: &[Item], slot: usize, need: u32, room: u32, own_free: u32) -> usize {
    let n = items.len();
    let mut space = if slot >= n { need } else { 0 };
    let mut count = 0;
    for i in (1..n).rev() {
        if count > 0 && (slot > i || (slot == i && own_free + space * 2 > room)) {
            break;
        }
        if slot == i {
            space += need;
        }
        let take = items[i].size + ITEM_HEADER;
        if take + space > room {
            break;
        }
        count += 1;
        space += take;
    }
    count
}

/// How many items from the start of `items` move left (`__push_leaf_left`), by the same
/// rules, never all of them.
fn count_left(items: &[Item], slot: usize, need: u32, room: u32, own_free: u32) -> usize {
    let mut space = 0;
    let mut count = 0;
    for (i, item) in items.iter().enumerate().take(items.len().saturating_sub(1)) {
        if count > 0 && (slot < i || (slot == i && own_free + space * 2 > room)) {
            break;
        }
        if slot == i {
            space += need;
        }
        let take = item.size + ITEM_HEADER;
        if take + space > room {
            break;
        }
        count += 1;
        space += take;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard read-depth stacks (one per depth, layers `d{depth}-l{n}`) and the
    /// warm-up layer made last, ids from 256 in the order made: their ids by name.
    fn standard() -> (RootTree, std::collections::HashMap<String, u64>) {
        let mut t = RootTree::new();
        let mut ids = std::collections::HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for depth in [1, 4, 8, 16, 32, 128] {
            names.extend((1..=depth).map(|n| format!("d{depth}-l{n}")));
        }
        names.push("warmup".into());
        for (k, name) in names.iter().enumerate() {
            let id = FIRST_SUBVOLUME_ID + k as u64;
            t.add_subvolume(id, name.len());
            ids.insert(name.clone(), id);
        }
        (t, ids)
    }

    #[test]
    fn the_standard_stacks_are_laid_out_as_the_kernel_lays_them_out() {
        let (t, _) = standard();
        // items and free bytes per leaf, from `btrfs inspect-internal dump-tree -t root`
        // of a kernel-btrfs store made with the same layers in the same order
        assert_eq!(
            leaves(&t),
            "51/12543 172/1214 63/321 62/345 62/318 62/318 62/311 47/3954"
        );
    }

    #[test]
    fn which_tops_share_a_leaf_with_the_mount_or_the_warm_up() {
        let (t, ids) = standard();
        let mut cached: std::collections::HashSet<u64> = t.mount_leaves().into_iter().collect();
        cached.extend(t.entry_leaves(ids["warmup"]));
        let uncached = |depth: u32| {
            let top = ids[&format!("d{depth}-l{depth}")];
            t.entry_leaves(top)
                .iter()
                .filter(|l| !cached.contains(l))
                .count()
        };
        let got: Vec<usize> = [1, 4, 8, 16, 32, 128].map(uncached).to_vec();
        // the kernel's cold reads: two device reads at depths 1, 4 and 128, three at 8,
        // 16 and 32 (the root-tree leaf with the top's root item)
        assert_eq!(got, vec![0, 0, 1, 1, 1, 0]);
    }

    #[test]
    fn a_cold_entry_reads_the_leaves_not_cached() {
        let (t, ids) = standard();
        let subvols: Vec<(u64, usize)> = ids.iter().map(|(n, &id)| (id, n.len())).collect();
        let mut c = RootCache::mounted(subvols);
        assert_eq!(c.tree.shape(), t.shape(), "rebuilt in id order");
        let mut meter = Meter::new();
        // the mount read the leaves with the csum, uuid and free-space roots (beside the
        // first subvolumes' root items) and the data relocation root (beside the last)
        for name in ["warmup", "d1-l1", "d4-l4", "d128-l128"] {
            c.enter(ids[name], &mut meter);
        }
        assert_eq!(meter.counts.tree_leaf_reads, 0, "cached by the mount");
        c.enter(ids["d8-l8"], &mut meter);
        assert_eq!(meter.counts.tree_leaf_reads, 1, "d8-l8's root item leaf");
        c.enter(ids["d16-l16"], &mut meter);
        assert_eq!(meter.counts.tree_leaf_reads, 1, "read for d8-l8 already");
        c.enter(ids["d32-l32"], &mut meter);
        assert_eq!(meter.counts.tree_leaf_reads, 2, "another leaf");
        c.made(600, 5);
        c.enter(600, &mut meter);
        assert_eq!(meter.counts.tree_leaf_reads, 2, "made since the mount");
    }

    /// Items and free bytes of every leaf, left to right, as `items/free` words: what
    /// `btrfs inspect-internal dump-tree -t root` prints per leaf.
    fn leaves(t: &RootTree) -> String {
        let words: Vec<String> = t.shape().iter().map(|(n, f)| format!("{n}/{f}")).collect();
        words.join(" ")
    }

    /// Removes the standard stack of `depth` layers, top first, as `layer rm` does.
    fn remove_stack(t: &mut RootTree, ids: &HashMap<String, u64>, depth: usize) {
        for n in (1..=depth).rev() {
            t.remove_subvolume(ids[&format!("d{depth}-l{n}")]);
        }
    }

    #[test]
    fn removing_a_stack_leaves_the_leaves_the_kernel_leaves() {
        let (mut t, ids) = standard();
        remove_stack(&mut t, &ids, 32);
        // `dump-tree` of the same kernel-btrfs store after `layerlab layer rm` of the
        // depth-32 stack, top first: emptier leaves, none under a third full with room
        // beside it, so none merged
        assert_eq!(
            leaves(&t),
            "33/13434 158/1914 35/7508 26/9597 62/318 62/318 62/311 47/3954"
        );
        // then the depth-16 stack: the leaf of ids 267 and 268 falls under a third full
        // and moves into its left neighbour
        remove_stack(&mut t, &ids, 16);
        assert_eq!(
            leaves(&t),
            "17/14225 161/1354 26/9597 62/318 62/318 62/311 47/3954"
        );
    }

    #[test]
    fn removing_subvolumes_merges_leaves_back() {
        let (mut t, ids) = standard();
        let before = t.shape().len();
        for id in ids.values() {
            t.remove_subvolume(*id);
        }
        assert!(t.shape().len() < before);
        assert_eq!(t.shape().iter().map(|s| s.0).sum::<usize>(), 11);
        assert_eq!(t.shape().len(), 1, "{:?}", t.shape());
    }
}
