//! The changeset of a layer against its parent, defined once for every driver.
//!
//! The changeset is a pure function of two views, the layer's and its parent's:
//! - `Added`: in the layer's view, not in the parent's (every entry of an added directory
//!   is listed too);
//! - `Modified`: in both, with a different kind, mode, owner, symlink target, device
//!   number, extended attributes or file content (timestamps and link counts are not
//!   compared, so a write of identical bytes is no change);
//! - `Deleted`: in the parent's view, not in the layer's; only the topmost such path is
//!   listed (the entries of a deleted directory are implied, as one OCI whiteout implies
//!   them).
//!
//! Sorted by path. Every driver's `changes` returns exactly this; the walk here is the
//! shared implementation.

use crate::{
    Change, ChangeKind, DirEntry, FileKind, LayerDriver, LayerId, LayerPath, Metadata, Result,
};
use std::collections::BTreeMap;

const CHUNK: u64 = 1 << 20;

/// The changeset of `layer` against its parent, by walking both merged views.
pub fn diff_views<D: LayerDriver + ?Sized>(d: &mut D, layer: &LayerId) -> Result<Vec<Change>> {
    let parent = d.layer(layer)?.parent;
    let mut out = Vec::new();
    let root = LayerPath::root();
    let mine = d.stat(layer, &root)?;
    let theirs = match &parent {
        Some(p) => d.stat(p, &root)?,
        None => empty_root(layer),
    };
    if !same_attrs(&mine, &theirs) {
        out.push(Change {
            path: root.clone(),
            kind: ChangeKind::Modified,
        });
    }
    walk(d, layer, parent.as_ref(), &root, &mut out)?;
    out.sort();
    Ok(out)
}

fn empty_root(layer: &LayerId) -> Metadata {
    Metadata {
        kind: FileKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 0,
        nlink: 1,
        target: None,
        rdev: 0,
        mtime: 0,
        mtime_nsec: 0,
        layer: layer.clone(),
    }
}

fn listing<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    dir: &LayerPath,
) -> Result<BTreeMap<String, FileKind>> {
    Ok(d.readdir(layer, dir)?
        .into_iter()
        .map(|DirEntry { name, kind }| (name, kind))
        .collect())
}

/// Walks `dir`, present as a directory in the layer; `parent` is `Some` only when the parent
/// view has a directory at `dir` too.
fn walk<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    parent: Option<&LayerId>,
    dir: &LayerPath,
    out: &mut Vec<Change>,
) -> Result<()> {
    let mine = listing(d, layer, dir)?;
    let theirs = match parent {
        Some(p) => listing(d, p, dir)?,
        None => BTreeMap::new(),
    };
    for name in theirs.keys() {
        if !mine.contains_key(name) {
            out.push(Change {
                path: join(dir, name)?,
                kind: ChangeKind::Deleted,
            });
        }
    }
    for (name, kind) in &mine {
        let path = join(dir, name)?;
        match (parent, theirs.get(name)) {
            (Some(p), Some(_)) => {
                let a = d.stat(layer, &path)?;
                let b = d.stat(p, &path)?;
                let differs = !same_attrs(&a, &b)
                    || (a.kind == FileKind::File && !same_content(d, layer, p, &path, a.size)?)
                    || !same_xattrs(d, layer, p, &path)?;
                if differs {
                    out.push(Change {
                        path: path.clone(),
                        kind: ChangeKind::Modified,
                    });
                }
                if *kind == FileKind::Dir {
                    let lower = (b.kind == FileKind::Dir).then_some(p);
                    walk(d, layer, lower, &path, out)?;
                }
            }
            _ => {
                out.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Added,
                });
                if *kind == FileKind::Dir {
                    walk(d, layer, None, &path, out)?;
                }
            }
        }
    }
    Ok(())
}

fn join(dir: &LayerPath, name: &str) -> Result<LayerPath> {
    dir.join(name).map_err(|e| crate::Error::InvalidPath {
        path: format!("{dir}/{name}"),
        reason: e.to_string(),
    })
}

/// Kind, mode, owner, size, target and device number: everything in [`Metadata`] but
/// timestamps, link counts, provider.
pub fn same_attrs(a: &Metadata, b: &Metadata) -> bool {
    a.kind == b.kind
        && a.mode == b.mode
        && a.uid == b.uid
        && a.gid == b.gid
        && a.target == b.target
        && a.rdev == b.rdev
        && (a.kind == FileKind::Dir || a.size == b.size)
}

/// The same extended attributes, names and values, in both views.
fn same_xattrs<D: LayerDriver + ?Sized>(
    d: &mut D,
    a: &LayerId,
    b: &LayerId,
    path: &LayerPath,
) -> Result<bool> {
    Ok(crate::ops::xattrs(d, a, path)? == crate::ops::xattrs(d, b, path)?)
}

fn same_content<D: LayerDriver + ?Sized>(
    d: &mut D,
    a: &LayerId,
    b: &LayerId,
    path: &LayerPath,
    size: u64,
) -> Result<bool> {
    let mut off = 0;
    while off < size {
        let x = d.read(a, path, off, CHUNK)?;
        let y = d.read(b, path, off, CHUNK)?;
        if x != y {
            return Ok(false);
        }
        if x.is_empty() {
            break;
        }
        off += x.len() as u64;
    }
    Ok(true)
}
