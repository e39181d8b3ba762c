//! Hard-link groups of a layer's view, as far as the trait can tell them, written once for
//! every writer of a view or a changeset (`diff --tar`, `export`, `export --tar`).
//!
//! [`crate::Metadata`] gives a file's link count (`nlink`) but no inode identity, so names
//! are taken for one inode when they are regular files with `nlink > 1` and the same size,
//! mode, owner, link count, mtime, providing layer and content (compared byte for byte). A
//! group never holds more names than its link count: a further candidate starts a new
//! group. Two unrelated files alike in all of these would be joined; the view's content
//! stays the same, only the link counts would differ.

use crate::{ops, FileKind, LayerDriver, LayerId, LayerPath, Metadata, Result};
use std::collections::BTreeMap;

/// What names of one inode must share.
type Key = (u64, u32, u32, u32, u32, i64, LayerId);

/// The link groups among `files` (paths of `layer`'s view with their metadata): each group
/// has two names or more, in the order of `files`; its first name is the one to write as
/// a file, the others as links to it. Files outside every group are not listed.
pub fn groups<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    files: &[(LayerPath, Metadata)],
) -> Result<Vec<Vec<LayerPath>>> {
    let mut by_key: BTreeMap<Key, Vec<Vec<LayerPath>>> = BTreeMap::new();
    let mut order: Vec<Key> = Vec::new();
    for (path, md) in files {
        if md.kind != FileKind::File || md.nlink < 2 {
            continue;
        }
        let key = (
            md.size,
            md.mode,
            md.uid,
            md.gid,
            md.nlink,
            md.mtime,
            md.layer.clone(),
        );
        let open = by_key.entry(key.clone()).or_default();
        if open.is_empty() {
            order.push(key);
        }
        let mut placed = false;
        for g in open.iter_mut() {
            let room = g.len() < usize::try_from(md.nlink).unwrap_or(usize::MAX);
            if room && ops::same_content(d, (layer, &g[0]), (layer, path), md.size)? {
                g.push(path.clone());
                placed = true;
                break;
            }
        }
        if !placed {
            open.push(vec![path.clone()]);
        }
    }
    let mut out = Vec::new();
    for key in order {
        if let Some(gs) = by_key.remove(&key) {
            out.extend(gs.into_iter().filter(|g| g.len() > 1));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ReferenceModel;
    use crate::Semantics;

    fn p(s: &str) -> LayerPath {
        LayerPath::parse(s).unwrap_or_else(|e| unreachable!("{s}: {e}"))
    }

    #[test]
    fn linked_names_group_and_look_alikes_do_not_overflow_a_group() -> Result<()> {
        let mut m = ReferenceModel::new(Semantics::PLAIN);
        let l = LayerId::new("l").unwrap_or_else(|e| unreachable!("{e}"));
        m.create_layer(&l, None)?;
        ops::write_file(&mut m, &l, &p("/a"), b"same", 0o644)?;
        m.hardlink(&l, &p("/a"), &p("/b"))?;
        ops::write_file(&mut m, &l, &p("/c"), b"same", 0o644)?; // alike, not linked
        ops::write_file(&mut m, &l, &p("/x"), b"other", 0o644)?;
        m.hardlink(&l, &p("/x"), &p("/y"))?;
        let files: Vec<(LayerPath, Metadata)> = ["/a", "/b", "/c", "/x", "/y"]
            .into_iter()
            .map(|s| Ok((p(s), m.stat(&l, &p(s))?)))
            .collect::<Result<_>>()?;
        let got = groups(&mut m, &l, &files)?;
        assert_eq!(got, [vec![p("/a"), p("/b")], vec![p("/x"), p("/y")]]);
        Ok(())
    }
}
