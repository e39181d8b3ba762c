//! One layer's own entries, as its layer tar lists them: what dive walks.
//!
//! A [`LayerTree`] holds, per path, a file (with its size), a directory, a symlink, a
//! whiteout (the path is deleted) or an opaque directory (every lower entry of it is
//! deleted). Sizes are what a tar header carries: a file's length, 0 for everything
//! else. [`read_layer`] builds one from a store layer's changeset (added and modified
//! entries with their attributes, deleted paths as whiteouts); tests build them by hand.
//!
//! Read from a store, a layer differs from its original tar in two ways: an entry the
//! tar rewrote identically (same content, mode and owner) is no change, so it is not
//! seen (dive, reading the tar, would count it twice); and every name of a hard-linked
//! file weighs the file's size (a tar gives the second name size 0). An opaque
//! directory shows as the deletions it implies.

use crate::error::Result;
use layerlab_core::{ChangeKind, FileKind, LayerDriver, LayerId};
use serde::Serialize;
use std::collections::BTreeMap;

/// What one entry of a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file of this many bytes.
    File(u64),
    /// A directory.
    Dir,
    /// An opaque directory: every entry the layers below have in it is deleted.
    OpaqueDir,
    /// A symlink.
    Symlink,
    /// A device node or fifo (no data).
    Node,
    /// A deletion of what the layers below have at the path.
    Whiteout,
}

impl EntryKind {
    /// The size a tar header gives the entry: a file's length, else 0.
    pub fn size(self) -> u64 {
        match self {
            EntryKind::File(n) => n,
            _ => 0,
        }
    }

    /// True for directories, opaque or not.
    pub fn is_dir(self) -> bool {
        matches!(self, EntryKind::Dir | EntryKind::OpaqueDir)
    }
}

/// One layer's entries, by absolute path (`/etc/motd`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerTree {
    /// The entries; a path appears once.
    pub entries: BTreeMap<String, EntryKind>,
}

impl LayerTree {
    /// An empty layer.
    pub fn new() -> LayerTree {
        LayerTree::default()
    }

    /// Adds (or replaces) an entry; for tests and hand-made stacks.
    pub fn with(mut self, path: &str, kind: EntryKind) -> LayerTree {
        self.entries.insert(path.to_string(), kind);
        self
    }

    /// Bytes of file content the layer carries.
    pub fn content_bytes(&self) -> u64 {
        self.entries.values().map(|k| k.size()).sum()
    }

    /// True when `path` has another entry of this layer under it (dive visits leaves only).
    pub fn has_children(&self, path: &str) -> bool {
        let prefix = under(path);
        self.entries
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
    }
}

/// The prefix every path below `path` starts with.
pub fn under(path: &str) -> String {
    if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    }
}

/// The entries of a store layer against its parent: added and modified entries with the
/// kind and size they have in the layer, deleted paths as whiteouts.
pub fn read_layer<D: LayerDriver + ?Sized>(d: &mut D, layer: &LayerId) -> Result<LayerTree> {
    let mut tree = LayerTree::new();
    for change in d.changes(layer)? {
        let kind = match change.kind {
            ChangeKind::Deleted => EntryKind::Whiteout,
            ChangeKind::Added | ChangeKind::Modified => {
                let md = d.stat(layer, &change.path)?;
                match md.kind {
                    FileKind::File => EntryKind::File(md.size),
                    FileKind::Dir => EntryKind::Dir,
                    FileKind::Symlink => EntryKind::Symlink,
                    FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo => {
                        EntryKind::Node
                    }
                }
            }
        };
        tree.entries.insert(change.path.to_string(), kind);
    }
    Ok(tree)
}
