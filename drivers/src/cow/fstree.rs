//! Whether a subvolume's own tree (btrfs's fs tree: its inodes, names, extents and
//! xattrs) fits in one 16 KiB leaf, for the Meter: the root node read on entering such a
//! subvolume cold holds every item, so a name looked up in it afterwards costs no device
//! read (a `cache_hits`, not a `probes`).
//!
//! Item sizes are btrfs's on-disk ones, each with its 25-byte item header: an `INODE_ITEM`
//! of 160 bytes per inode; per name, a `DIR_ITEM` and a `DIR_INDEX` of 30 bytes and the name
//! in the directory, and an `INODE_REF` of 10 bytes and the name beside the inode it names
//! (the subvolume's root directory has one for `..`); a `EXTENT_DATA` of 53 bytes per
//! extent, or 21 bytes and the data for an inline file or a symlink's target; an
//! `XATTR_ITEM` of 30 bytes, the name and the value per xattr.

use super::roottree::{ITEM_HEADER, LEAF_DATA};
use super::tree::{Inode, Tree};
use layerlab_core::FileKind;

/// More inodes than this cannot fit one leaf (each takes at least an `INODE_ITEM`, an
/// `INODE_REF` and two directory items): the walk stops there.
const MAX_INODES_IN_A_LEAF: u64 = LEAF_DATA as u64 / (4 * ITEM_HEADER as u64 + 160 + 70);

/// The item bytes of one inode's own items and of the names in it.
fn inode_bytes(n: &Inode) -> u64 {
    let h = u64::from(ITEM_HEADER);
    let mut b = h + 160;
    for name in n.dir.keys() {
        let len = name.len() as u64;
        // DIR_ITEM and DIR_INDEX here, INODE_REF beside the named inode
        b += 2 * (h + 30 + len) + h + 10 + len;
    }
    if !n.inline.is_empty() || n.attr.kind == FileKind::Symlink {
        b += h + 21 + n.inline.len().max(n.attr.target.len()) as u64;
    } else {
        b += n.extents.len() as u64 * (h + 53);
    }
    for (name, value) in &n.xattrs {
        b += h + 30 + (name.len() + value.len()) as u64;
    }
    b
}

/// True when every item of the subvolume's tree fits in one leaf.
pub fn fits_one_leaf(t: &Tree) -> bool {
    if t.next_ino.saturating_sub(1) > MAX_INODES_IN_A_LEAF {
        return false;
    }
    // the root directory's INODE_REF for ".."
    let mut bytes = u64::from(ITEM_HEADER) + 12;
    t.for_each(&mut |_, n| bytes += inode_bytes(n));
    bytes <= u64::from(LEAF_DATA)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_inode_counts_its_items_and_the_names_in_it() {
        let mut dir = Inode::new(FileKind::Dir, 0o755, 0);
        let h = u64::from(ITEM_HEADER);
        assert_eq!(inode_bytes(&dir), h + 160);
        dir.dir.insert("abc".into(), (2, FileKind::File));
        assert_eq!(inode_bytes(&dir), h + 160 + 2 * (h + 33) + h + 13);
        let mut file = Inode::new(FileKind::File, 0o644, 0);
        file.inline = vec![1; 100];
        assert_eq!(inode_bytes(&file), h + 160 + h + 121);
    }
}
