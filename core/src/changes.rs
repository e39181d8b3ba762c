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
//!   them);
//! - and, as Docker reports it (moby `pkg/archive` changes; docs/DESIGN.md section 8), a
//!   directory other than `/` in which an entry was directly added or deleted is
//!   `Modified` too, once, even if its own attributes are the same (an added directory is
//!   already listed as `Added`).
//!
//! Sorted by path. Every driver's `changes` returns exactly this; the walk here is the
//! shared implementation.

use crate::{
    Change, ChangeKind, DirEntry, FileKind, LayerDriver, LayerId, LayerPath, Metadata, Result,
};
use std::collections::BTreeMap;

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
    // `/` is never reported for what happened in it, only for its own attributes
    walk(d, layer, parent.as_ref(), &root, &mut out)?;
    out.sort();
    Ok(out)
}

fn empty_root(layer: &LayerId) -> Metadata {
    Metadata::new(FileKind::Dir, 0o755, 0, 0, layer.clone())
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
/// view has a directory at `dir` too. Returns whether an entry directly in `dir` was added
/// or deleted (Docker then reports `dir` itself as modified).
fn walk<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    parent: Option<&LayerId>,
    dir: &LayerPath,
    out: &mut Vec<Change>,
) -> Result<bool> {
    let mut entries_changed = false;
    let mine = listing(d, layer, dir)?;
    let theirs = match parent {
        Some(p) => listing(d, p, dir)?,
        None => BTreeMap::new(),
    };
    for name in theirs.keys() {
        if !mine.contains_key(name) {
            entries_changed = true;
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
                    || (a.kind == FileKind::File
                        && !crate::ops::same_content(d, (layer, &path), (p, &path), a.size)?)
                    || !same_xattrs(d, layer, p, &path)?;
                let inside = if *kind == FileKind::Dir {
                    let lower = (b.kind == FileKind::Dir).then_some(p);
                    walk(d, layer, lower, &path, out)?
                } else {
                    false
                };
                if differs || inside {
                    out.push(Change {
                        path: path.clone(),
                        kind: ChangeKind::Modified,
                    });
                }
            }
            _ => {
                entries_changed = true;
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
    Ok(entries_changed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ReferenceModel;
    use crate::{ops, Semantics};

    fn p(s: &str) -> LayerPath {
        LayerPath::parse(s).unwrap_or_else(|e| unreachable!("{s}: {e}"))
    }

    fn id(s: &str) -> LayerId {
        LayerId::new(s).unwrap_or_else(|e| unreachable!("{s}: {e}"))
    }

    fn listed(m: &mut ReferenceModel, l: &LayerId) -> Vec<String> {
        diff_views(m, l)
            .unwrap_or_else(|e| unreachable!("{e}"))
            .into_iter()
            .map(|c| format!("{:?} {}", c.kind, c.path))
            .collect()
    }

    /// Docker's rule: the directory of an added or deleted entry is modified, once; `/` and
    /// an added directory are not listed for it; a modified entry alone does not list it.
    #[test]
    fn directory_of_an_added_or_deleted_entry_is_modified_once() -> Result<()> {
        let mut m = ReferenceModel::new(Semantics::PLAIN);
        let (b, c) = (id("b"), id("c"));
        m.create_layer(&b, None)?;
        ops::mkdir_p(&mut m, &b, &p("/a/deep"), 0o755)?;
        ops::write_file(&mut m, &b, &p("/a/one"), b"1", 0o644)?;
        ops::write_file(&mut m, &b, &p("/a/two"), b"2", 0o644)?;
        ops::write_file(&mut m, &b, &p("/a/deep/f"), b"f", 0o644)?;
        ops::write_file(&mut m, &b, &p("/top"), b"t", 0o644)?;
        // a base layer: everything added, no directory listed twice
        assert!(listed(&mut m, &b).iter().all(|l| l.starts_with("Added")));
        m.commit(&b)?;
        m.create_layer(&c, Some(&b))?;
        m.unlink(&c, &p("/a/one"))?; // deleted in /a
        ops::write_file(&mut m, &c, &p("/a/three"), b"3", 0o644)?; // added in /a
        ops::write_file(&mut m, &c, &p("/a/deep/f"), b"g", 0o644)?; // modified only
        ops::write_file(&mut m, &c, &p("/new"), b"n", 0o644)?; // added in /
        ops::mkdir_p(&mut m, &c, &p("/fresh/sub"), 0o755)?; // added tree
        assert_eq!(
            listed(&mut m, &c),
            [
                "Modified /a",
                "Modified /a/deep/f",
                "Deleted /a/one",
                "Added /a/three",
                "Added /fresh",
                "Added /fresh/sub",
                "Added /new",
            ]
        );
        Ok(())
    }

    /// A directory whose own attributes changed and that gained an entry is listed once.
    #[test]
    fn a_modified_directory_with_new_entries_is_listed_once() -> Result<()> {
        let mut m = ReferenceModel::new(Semantics::PLAIN);
        let (b, c) = (id("b"), id("c"));
        m.create_layer(&b, None)?;
        m.mkdir(&b, &p("/d"), 0o755)?;
        m.commit(&b)?;
        m.create_layer(&c, Some(&b))?;
        m.chmod(&c, &p("/d"), 0o700)?;
        m.create(&c, &p("/d/x"), 0o644)?;
        assert_eq!(listed(&mut m, &c), ["Modified /d", "Added /d/x"]);
        Ok(())
    }
}
