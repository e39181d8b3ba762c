//! The merged view of a stack of [`LayerTree`]s, each entry with the layer that put it
//! there: what the layers below a layer hold, for sizing whiteouts and for the findings.

use crate::tree::{under, EntryKind, LayerTree};
use std::collections::BTreeMap;

/// An entry of the view and the layer (0 = bottom) it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// The entry.
    pub kind: EntryKind,
    /// The layer that provides it.
    pub layer: usize,
}

/// The view of a stack of layers: every path with its entry (whiteouts and opaque
/// markers applied).
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The entries, by path; directories are listed when some layer listed them.
    pub entries: BTreeMap<String, Placed>,
}

impl View {
    /// Paths at or under `path`, with their entries.
    pub fn subtree<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (&'a String, &'a Placed)> {
        let prefix = under(path);
        let this = self.entries.get_key_value(path);
        this.into_iter().chain(
            self.entries
                .range(prefix.clone()..)
                .take_while(move |(p, _)| p.starts_with(&prefix)),
        )
    }

    /// Bytes of file content at or under `path`.
    pub fn bytes_under(&self, path: &str) -> u64 {
        self.subtree(path).map(|(_, e)| e.kind.size()).sum()
    }

    /// What a whiteout at `path` weighs, as dive sizes it (see the module doc).
    pub fn whiteout_weight(&self, path: &str) -> u64 {
        match self.entries.get(path) {
            Some(e) if e.kind.is_dir() => self.bytes_under(path),
            _ => 0,
        }
    }

    /// The paths directly or indirectly under `dir` that `layer` has no entry for, topmost
    /// only: what an opaque marker on `dir` deletes.
    pub fn hidden_by_opaque(&self, dir: &str, layer: &LayerTree) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (p, _) in self.subtree(dir).filter(|(p, _)| p.as_str() != dir) {
            if layer.entries.contains_key(p) {
                continue;
            }
            if out.last().is_some_and(|last| p.starts_with(&under(last))) {
                continue;
            }
            out.push(p.clone());
        }
        out
    }

    /// Removes `path` and everything under it.
    fn remove_subtree(&mut self, path: &str) {
        let gone: Vec<String> = self.subtree(path).map(|(p, _)| p.clone()).collect();
        for p in gone {
            self.entries.remove(&p);
        }
    }

    /// Applies layer `index` on top, by the image-spec rules.
    pub fn apply(&mut self, layer: &LayerTree, index: usize) {
        for (p, k) in &layer.entries {
            if *k == EntryKind::OpaqueDir {
                for hidden in self.hidden_by_opaque(p, layer) {
                    self.remove_subtree(&hidden);
                }
            }
        }
        for (p, k) in &layer.entries {
            match k {
                EntryKind::Whiteout => self.remove_subtree(p),
                k if k.is_dir() => {
                    if !self.entries.get(p).is_some_and(|old| old.kind.is_dir()) {
                        self.remove_subtree(p);
                    }
                    let kind = EntryKind::Dir;
                    self.entries
                        .insert(p.clone(), Placed { kind, layer: index });
                }
                k => {
                    self.remove_subtree(p);
                    let kind = *k;
                    self.entries
                        .insert(p.clone(), Placed { kind, layer: index });
                }
            }
        }
    }
}
