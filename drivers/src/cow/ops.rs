//! The changes a log record carries, their encoding, and the checkpoint encoding (every
//! distinct node and inode once, so snapshots stay shared on disk too).

use super::engine::timestamp;
use super::tree::{Attr, Ext, Inode, TNode, Tree};
use crate::codec::{Dec, Enc, Record};
use layerlab_core::FileKind;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One change of the metadata, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A new subvolume: empty with a root directory, or a snapshot of `origin` (its root
    /// pointer copied: O(1), whatever the size of the tree).
    Create {
        /// Name.
        sv: String,
        /// The subvolume snapshotted.
        origin: Option<String>,
        /// The root directory's mtime (new subvolumes).
        mtime: i64,
        /// Its nanoseconds.
        mtime_nsec: u32,
    },
    /// A subvolume dropped.
    Delete {
        /// Name.
        sv: String,
    },
    /// Sets an inode's attributes, creating it if needed.
    Attr {
        /// Subvolume.
        sv: String,
        /// Inode number.
        ino: u64,
        /// The attributes (the inode's entries and extents are kept).
        attr: Attr,
    },
    /// Adds or replaces a directory entry.
    Link {
        /// Subvolume.
        sv: String,
        /// Directory inode.
        dir: u64,
        /// Name.
        name: String,
        /// Target inode and kind.
        ino: u64,
        /// Kind.
        kind: FileKind,
        /// The directory's new mtime.
        mtime: Stamp,
    },
    /// Removes a directory entry.
    Unlink {
        /// Subvolume.
        sv: String,
        /// Directory inode.
        dir: u64,
        /// Name.
        name: String,
        /// The directory's new mtime.
        mtime: Stamp,
    },
    /// Removes an inode.
    Drop {
        /// Subvolume.
        sv: String,
        /// Inode number.
        ino: u64,
    },
    /// Unmaps units `[from, to)` of a file, then maps `exts` (new sectors) into it.
    Map {
        /// Subvolume.
        sv: String,
        /// Inode number.
        ino: u64,
        /// First unit unmapped.
        from: u64,
        /// End of the unmapped units.
        to: u64,
        /// `(unit, extent)` mapped.
        exts: Vec<(u64, Ext)>,
        /// The file's new mtime, when the op writes its content.
        mtime: Option<Stamp>,
    },
    /// Sets a small file's inline bytes (empty: none); only ever for a file with no
    /// extent (a Map that maps extents clears them).
    Inline {
        /// Subvolume.
        sv: String,
        /// Inode number.
        ino: u64,
        /// The file's bytes from offset 0.
        data: Vec<u8>,
    },
    /// Sets (`Some`) or removes (`None`) one extended attribute of an inode.
    Xattr {
        /// Subvolume.
        sv: String,
        /// Inode number.
        ino: u64,
        /// The attribute's name.
        name: String,
        /// Its new value.
        value: Option<Vec<u8>>,
    },
    /// The CRC-32C of each pool sector from `sector` on, as written before the record
    /// (btrfs's csum tree items; zfs keeps them in the block pointers): one per sector of
    /// the fresh runs a write fills. A sector's checksum is forgotten when it is freed.
    Sums {
        /// First sector.
        sector: u64,
        /// One checksum per sector.
        sums: Vec<u32>,
    },
}

/// A modification time: seconds since the epoch, nanoseconds.
pub type Stamp = (i64, u32);

fn put_stamp(e: &mut Enc, (secs, nsec): Stamp) {
    e.u64(secs as u64);
    e.u32(nsec);
}

fn get_stamp(d: &mut Dec<'_>) -> Option<Stamp> {
    Some((d.u64()? as i64, d.u32()?))
}

fn put_ext(e: &mut Enc, x: &Ext) {
    e.u64(x.sector);
    e.u64(x.nsec);
    e.u64(x.units);
    e.u32(x.clen);
    e.u64(x.disk);
    e.u64(x.dlen);
}

/// An extent, or `None` when it does not parse or is not a slice of its disk extent.
fn get_ext(d: &mut Dec<'_>) -> Option<Ext> {
    let x = Ext {
        sector: d.u64()?,
        nsec: d.u64()?,
        units: d.u64()?,
        clen: d.u32()?,
        disk: d.u64()?,
        dlen: d.u64()?,
    };
    let inside = x.disk <= x.sector
        && x.sector.checked_add(x.nsec)? <= x.disk.checked_add(x.dlen)?
        && x.nsec > 0;
    inside.then_some(x)
}

fn put_bytes(e: &mut Enc, b: &[u8]) {
    e.u32(b.len() as u32);
    e.0.extend_from_slice(b);
}

fn get_bytes(d: &mut Dec<'_>) -> Option<Vec<u8>> {
    let n = d.u32()? as usize;
    Some(d.bytes(n)?.to_vec())
}

fn put_attr(e: &mut Enc, a: &Attr) {
    e.u8(crate::codec::kind_code(a.kind));
    e.u32(a.mode);
    e.u32(a.uid);
    e.u32(a.gid);
    e.u32(a.nlink);
    e.u64(a.size);
    e.u64(a.mtime as u64);
    e.u32(a.mtime_nsec);
    e.u64(a.rdev);
    e.str(&a.target);
}

fn get_attr(d: &mut Dec<'_>) -> Option<Attr> {
    Some(Attr {
        kind: crate::codec::kind_of(d.u8()?)?,
        mode: d.u32()?,
        uid: d.u32()?,
        gid: d.u32()?,
        nlink: d.u32()?,
        size: d.u64()?,
        mtime: d.u64()? as i64,
        mtime_nsec: d.u32()?,
        rdev: d.u64()?,
        target: d.str()?,
    })
}

impl Op {
    /// A new subvolume `sv` (a snapshot of `origin`), its root directory's mtime now.
    pub fn create(sv: String, origin: Option<String>) -> Op {
        let (mtime, mtime_nsec) = timestamp();
        Op::Create {
            sv,
            origin,
            mtime,
            mtime_nsec,
        }
    }
}

impl Record for Op {
    fn put(&self, e: &mut Enc) {
        match self {
            Op::Create {
                sv,
                origin,
                mtime,
                mtime_nsec,
            } => {
                e.u8(1);
                e.str(sv);
                e.opt_str(origin.as_deref());
                e.u64(*mtime as u64);
                e.u32(*mtime_nsec);
            }
            Op::Delete { sv } => {
                e.u8(2);
                e.str(sv);
            }
            Op::Attr { sv, ino, attr } => {
                e.u8(3);
                e.str(sv);
                e.u64(*ino);
                put_attr(e, attr);
            }
            Op::Link {
                sv,
                dir,
                name,
                ino,
                kind,
                mtime,
            } => {
                e.u8(4);
                e.str(sv);
                e.u64(*dir);
                e.str(name);
                e.u64(*ino);
                e.u8(crate::codec::kind_code(*kind));
                put_stamp(e, *mtime);
            }
            Op::Unlink {
                sv,
                dir,
                name,
                mtime,
            } => {
                e.u8(5);
                e.str(sv);
                e.u64(*dir);
                e.str(name);
                put_stamp(e, *mtime);
            }
            Op::Drop { sv, ino } => {
                e.u8(6);
                e.str(sv);
                e.u64(*ino);
            }
            Op::Map {
                sv,
                ino,
                from,
                to,
                exts,
                mtime,
            } => {
                e.u8(7);
                e.str(sv);
                e.u64(*ino);
                e.u64(*from);
                e.u64(*to);
                e.list(exts, |e, (u, x)| {
                    e.u64(*u);
                    put_ext(e, x);
                });
                e.opt(mtime.as_ref(), |e, t| put_stamp(e, *t));
            }
            Op::Inline { sv, ino, data } => {
                e.u8(8);
                e.str(sv);
                e.u64(*ino);
                put_bytes(e, data);
            }
            Op::Xattr {
                sv,
                ino,
                name,
                value,
            } => {
                e.u8(9);
                e.str(sv);
                e.u64(*ino);
                e.str(name);
                e.opt(value.as_ref(), |e, v| put_bytes(e, v));
            }
            Op::Sums { sector, sums } => {
                e.u8(10);
                e.u64(*sector);
                e.list(sums, |e, v| e.u32(*v));
            }
        }
    }

    fn get(d: &mut Dec<'_>) -> Option<Op> {
        Some(match d.u8()? {
            1 => Op::Create {
                sv: d.str()?,
                origin: d.opt_str()?,
                mtime: d.u64()? as i64,
                mtime_nsec: d.u32()?,
            },
            2 => Op::Delete { sv: d.str()? },
            3 => Op::Attr {
                sv: d.str()?,
                ino: d.u64()?,
                attr: get_attr(d)?,
            },
            4 => Op::Link {
                sv: d.str()?,
                dir: d.u64()?,
                name: d.str()?,
                ino: d.u64()?,
                kind: crate::codec::kind_of(d.u8()?)?,
                mtime: get_stamp(d)?,
            },
            5 => Op::Unlink {
                sv: d.str()?,
                dir: d.u64()?,
                name: d.str()?,
                mtime: get_stamp(d)?,
            },
            6 => Op::Drop {
                sv: d.str()?,
                ino: d.u64()?,
            },
            7 => Op::Map {
                sv: d.str()?,
                ino: d.u64()?,
                from: d.u64()?,
                to: d.u64()?,
                exts: d.list(|d| Some((d.u64()?, get_ext(d)?)))?,
                mtime: d.opt(get_stamp)?,
            },
            8 => Op::Inline {
                sv: d.str()?,
                ino: d.u64()?,
                data: get_bytes(d)?,
            },
            9 => Op::Xattr {
                sv: d.str()?,
                ino: d.u64()?,
                name: d.str()?,
                value: d.opt(get_bytes)?,
            },
            10 => {
                let sector = d.u64()?;
                let n = d.u32()? as usize;
                // each checksum takes 4 bytes: a count the record cannot hold is refused
                // before anything is allocated
                let raw = d.bytes(n.checked_mul(4)?)?;
                let sums = raw
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Op::Sums { sector, sums }
            }
            _ => return None,
        })
    }
}

// ----- checkpoints -----------------------------------------------------------------------

fn put_inode(e: &mut Enc, i: &Inode) {
    put_attr(e, &i.attr);
    e.u32(i.dir.len() as u32);
    for (name, (ino, kind)) in &i.dir {
        e.str(name);
        e.u64(*ino);
        e.u8(crate::codec::kind_code(*kind));
    }
    e.u32(i.extents.len() as u32);
    for (u, x) in &i.extents {
        e.u64(*u);
        put_ext(e, x);
    }
    put_bytes(e, &i.inline);
    e.u32(i.xattrs.len() as u32);
    for (name, value) in &i.xattrs {
        e.str(name);
        put_bytes(e, value);
    }
}

fn get_inode(d: &mut Dec<'_>) -> Option<Inode> {
    let mut i = Inode::of(get_attr(d)?);
    for _ in 0..d.u32()? {
        let name = d.str()?;
        let ino = d.u64()?;
        let kind = crate::codec::kind_of(d.u8()?)?;
        i.dir.insert(name, (ino, kind));
    }
    for _ in 0..d.u32()? {
        let u = d.u64()?;
        i.extents.insert(u, get_ext(d)?);
    }
    i.inline = get_bytes(d)?;
    for _ in 0..d.u32()? {
        let name = d.str()?;
        i.xattrs.insert(name, get_bytes(d)?);
    }
    Some(i)
}

/// Encodes every subvolume, each distinct node and inode once (children before parents),
/// then the non-zero reference counts, then the checksum of every sector in use.
pub fn encode_checkpoint(
    subvols: &BTreeMap<String, Tree>,
    refs: impl Iterator<Item = (u64, u32)>,
    sums: &BTreeMap<u64, u32>,
) -> Vec<u8> {
    let mut inodes = Enc::default();
    let mut nodes = Enc::default();
    let mut ino_ids: HashMap<usize, u32> = HashMap::new();
    let mut node_ids: HashMap<usize, u32> = HashMap::new();
    fn walk(
        n: &Arc<TNode>,
        inodes: &mut Enc,
        nodes: &mut Enc,
        ino_ids: &mut HashMap<usize, u32>,
        node_ids: &mut HashMap<usize, u32>,
    ) -> u32 {
        let key = Arc::as_ptr(n) as usize;
        if let Some(&id) = node_ids.get(&key) {
            return id;
        }
        let mut slots: Vec<(u8, u32)> = Vec::new();
        let leaf = match n.as_ref() {
            TNode::Leaf(v) => {
                for (s, a) in v.iter().enumerate() {
                    if let Some(a) = a {
                        let k = Arc::as_ptr(a) as usize;
                        let next = ino_ids.len() as u32;
                        let id = *ino_ids.entry(k).or_insert_with(|| {
                            put_inode(inodes, a);
                            next
                        });
                        slots.push((s as u8, id));
                    }
                }
                true
            }
            TNode::Branch(v) => {
                for (s, c) in v.iter().enumerate() {
                    if let Some(c) = c {
                        let id = walk(c, inodes, nodes, ino_ids, node_ids);
                        slots.push((s as u8, id));
                    }
                }
                false
            }
        };
        nodes.u8(u8::from(leaf));
        nodes.u32(slots.len() as u32);
        for (s, id) in slots {
            nodes.u8(s);
            nodes.u32(id);
        }
        let id = node_ids.len() as u32;
        node_ids.insert(key, id);
        id
    }
    let mut roots = Vec::new();
    for (name, t) in subvols {
        let root = t
            .root
            .as_ref()
            .map(|r| walk(r, &mut inodes, &mut nodes, &mut ino_ids, &mut node_ids) + 1)
            .unwrap_or(0);
        roots.push((name, root, t.next_ino, t.id));
    }
    let mut e = Enc::default();
    e.u32(ino_ids.len() as u32);
    e.0.extend_from_slice(&inodes.0);
    e.u32(node_ids.len() as u32);
    e.0.extend_from_slice(&nodes.0);
    e.u32(roots.len() as u32);
    for (name, root, next, id) in roots {
        e.str(name);
        e.u32(root);
        e.u64(next);
        e.u64(id);
    }
    let refs: Vec<(u64, u32)> = refs.collect();
    e.u32(refs.len() as u32);
    for (p, r) in refs {
        e.u64(p);
        e.u32(r);
    }
    e.u64(sums.len() as u64);
    for (p, v) in sums {
        e.u64(*p);
        e.u32(*v);
    }
    e.0
}

/// What a checkpoint holds.
#[derive(Debug)]
pub struct Checkpoint {
    /// The subvolumes.
    pub subvols: BTreeMap<String, Tree>,
    /// Every distinct inode object (to recount references).
    pub inodes: Vec<Arc<Inode>>,
    /// The stored reference counts.
    pub refs: Vec<(u64, u32)>,
    /// The checksum of every sector in use.
    pub sums: BTreeMap<u64, u32>,
}

/// Parses a checkpoint body.
pub fn decode_checkpoint(b: &[u8]) -> Option<Checkpoint> {
    let mut d = Dec::new(b);
    let mut inodes = Vec::new();
    for _ in 0..d.u32()? {
        inodes.push(Arc::new(get_inode(&mut d)?));
    }
    let mut nodes: Vec<Arc<TNode>> = Vec::new();
    for _ in 0..d.u32()? {
        let leaf = d.u8()? == 1;
        let n = d.u32()?;
        let node = if leaf {
            let mut v = vec![None; 64];
            for _ in 0..n {
                let s = d.u8()? as usize;
                let id = d.u32()? as usize;
                *v.get_mut(s)? = Some(inodes.get(id)?.clone());
            }
            TNode::Leaf(v)
        } else {
            let mut v = vec![None; 64];
            for _ in 0..n {
                let s = d.u8()? as usize;
                let id = d.u32()? as usize;
                *v.get_mut(s)? = Some(nodes.get(id)?.clone());
            }
            TNode::Branch(v)
        };
        nodes.push(Arc::new(node));
    }
    let mut subvols = BTreeMap::new();
    for _ in 0..d.u32()? {
        let name = d.str()?;
        let root = d.u32()? as usize;
        let next_ino = d.u64()?;
        let id = d.u64()?;
        let root = if root == 0 {
            None
        } else {
            Some(nodes.get(root - 1)?.clone())
        };
        subvols.insert(name, Tree { root, next_ino, id });
    }
    let mut refs = Vec::new();
    for _ in 0..d.u32()? {
        refs.push((d.u64()?, d.u32()?));
    }
    let mut sums = BTreeMap::new();
    for _ in 0..d.u64()? {
        sums.insert(d.u64()?, d.u32()?);
    }
    drop(nodes);
    d.done().then_some(Checkpoint {
        subvols,
        inodes,
        refs,
        sums,
    })
}
