//! What the course teaches about keeping images small, checked on a stack of layers:
//!
//! - bytes created in one layer and deleted in a later one ("clean up in the same RUN":
//!   the deletion hides them, the earlier layer still ships them);
//! - package manager caches left in the image (apk, apt, dnf/yum, npm, pip, yarn caches,
//!   by path);
//! - files written again in a later layer (the earlier copy still ships: write once, or
//!   build in another stage);
//! - layers that carry no file content and delete nothing (only directories, links or
//!   attributes: one more layer of lookup depth for union drivers, for nothing).
//!
//! Each finding gives the bytes it concerns as what they really are (a deleted file
//! weighs its size here, unlike in dive's score).

use crate::efficiency::sightings;
use crate::tree::{EntryKind, LayerTree};
use crate::view::View;
use serde::Serialize;
use std::collections::BTreeMap;

/// Package manager caches: the tool, the directory the cache lives in, how to avoid it.
pub const CACHES: &[(&str, &str, &str)] = &[
    ("apk", "/var/cache/apk", "apk add --no-cache"),
    ("apt", "/var/cache/apt", "apt-get clean"),
    ("apt", "/var/lib/apt/lists", "rm -rf /var/lib/apt/lists/*"),
    ("dnf", "/var/cache/dnf", "dnf clean all"),
    ("yum", "/var/cache/yum", "yum clean all"),
    ("npm", "/root/.npm", "npm cache clean --force"),
    ("pip", "/root/.cache/pip", "pip install --no-cache-dir"),
    ("yarn", "/usr/local/share/.cache/yarn", "yarn cache clean"),
    ("yarn", "/root/.cache/yarn", "yarn cache clean"),
];

/// The kind of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// Created in one layer, deleted in a later one.
    DeletedLater,
    /// A package manager cache left in the image.
    PackageCache,
    /// A file written again in a later layer.
    Overwritten,
    /// A layer with no file content.
    MetadataOnly,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What it is.
    pub kind: FindingKind,
    /// The layer where it shows (0 = bottom): the deleting or overwriting layer, the
    /// layer holding the cache, the metadata-only layer.
    pub layer: usize,
    /// The path concerned (the cache directory for a cache).
    pub path: Option<String>,
    /// The layers that hold the bytes concerned.
    pub origin: Vec<usize>,
    /// The bytes concerned.
    pub bytes: u64,
    /// The finding in the course's words.
    pub message: String,
}

fn layers_text(origin: &[usize]) -> String {
    let v: Vec<String> = origin.iter().map(|i| i.to_string()).collect();
    v.join(", ")
}

fn deleted_later(below: &View, layer: &LayerTree, j: usize, out: &mut Vec<Finding>) {
    for (path, kind, _) in sightings(below, layer) {
        if kind != EntryKind::Whiteout {
            continue;
        }
        let mut origin: Vec<usize> = Vec::new();
        let mut bytes = 0;
        for (_, e) in below.subtree(&path).filter(|(_, e)| e.kind.size() > 0) {
            bytes += e.kind.size();
            if !origin.contains(&e.layer) {
                origin.push(e.layer);
            }
        }
        if bytes == 0 {
            continue;
        }
        origin.sort_unstable();
        let message = format!(
            "{path}: created in layer {}, deleted in layer {j}, still shipped: clean up \
             in the same RUN",
            layers_text(&origin)
        );
        out.push(Finding {
            kind: FindingKind::DeletedLater,
            layer: j,
            path: Some(path),
            origin,
            bytes,
            message,
        });
    }
}

fn overwritten(below: &View, layer: &LayerTree, j: usize, out: &mut Vec<Finding>) {
    for (path, kind) in &layer.entries {
        let EntryKind::File(_) = kind else { continue };
        let Some(old) = below.entries.get(path) else {
            continue;
        };
        if old.kind.size() == 0 {
            continue;
        }
        out.push(Finding {
            kind: FindingKind::Overwritten,
            layer: j,
            path: Some(path.clone()),
            origin: vec![old.layer],
            bytes: old.kind.size(),
            message: format!(
                "{path}: written in layer {}, again in layer {j}, both shipped: write it \
                 once (or build it in another stage)",
                old.layer
            ),
        });
    }
}

fn package_caches(view: &View, out: &mut Vec<Finding>) {
    for (tool, dir, avoid) in CACHES {
        let mut by_layer: BTreeMap<usize, u64> = BTreeMap::new();
        for (_, e) in view.subtree(dir).filter(|(_, e)| e.kind.size() > 0) {
            *by_layer.entry(e.layer).or_default() += e.kind.size();
        }
        for (layer, bytes) in by_layer {
            out.push(Finding {
                kind: FindingKind::PackageCache,
                layer,
                path: Some((*dir).to_string()),
                origin: vec![layer],
                bytes,
                message: format!(
                    "{dir}: {tool} cache left behind: remove it in the same RUN ({avoid})"
                ),
            });
        }
    }
}

/// The findings for a stack of layers, bottom first, ordered by layer then kind.
pub fn findings(layers: &[LayerTree]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut view = View::default();
    for (j, layer) in layers.iter().enumerate() {
        deleted_later(&view, layer, j, &mut out);
        overwritten(&view, layer, j, &mut out);
        let deletes = layer
            .entries
            .values()
            .any(|k| matches!(k, EntryKind::Whiteout | EntryKind::OpaqueDir));
        if layer.content_bytes() == 0 && !deletes {
            out.push(Finding {
                kind: FindingKind::MetadataOnly,
                layer: j,
                path: None,
                origin: vec![j],
                bytes: 0,
                message: format!(
                    "no file content ({} entries): one more layer to look through, for \
                     nothing: fold it into a neighbouring step",
                    layer.entries.len()
                ),
            });
        }
        view.apply(layer, j);
    }
    package_caches(&view, &mut out);
    out.sort_by(|a, b| (a.layer, a.kind, &a.path).cmp(&(b.layer, b.kind, &b.path)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use EntryKind::{Dir, File, Whiteout};

    #[test]
    fn the_course_anti_patterns_are_found() {
        let l0 = LayerTree::new()
            .with("/bin", Dir)
            .with("/bin/sh", File(700));
        let l1 = LayerTree::new()
            .with("/tmp", Dir)
            .with("/tmp/src.tar", File(5000))
            .with("/var/cache/apk", Dir)
            .with("/var/cache/apk/APKINDEX.tar.gz", File(1200))
            .with("/etc/app.conf", File(10));
        let l2 = LayerTree::new()
            .with("/tmp/src.tar", Whiteout)
            .with("/etc/app.conf", File(12));
        let l3 = LayerTree::new().with("/srv", Dir);
        let f = findings(&[l0, l1, l2, l3]);
        type Seen<'a> = (FindingKind, usize, Option<&'a str>, Vec<usize>, u64);
        let got: Vec<Seen> = f
            .iter()
            .map(|f| {
                (
                    f.kind,
                    f.layer,
                    f.path.as_deref(),
                    f.origin.clone(),
                    f.bytes,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    FindingKind::PackageCache,
                    1,
                    Some("/var/cache/apk"),
                    vec![1],
                    1200
                ),
                (
                    FindingKind::DeletedLater,
                    2,
                    Some("/tmp/src.tar"),
                    vec![1],
                    5000
                ),
                (
                    FindingKind::Overwritten,
                    2,
                    Some("/etc/app.conf"),
                    vec![1],
                    10
                ),
                (FindingKind::MetadataOnly, 3, None, vec![3], 0),
            ]
        );
        assert!(
            f[1].message.contains("clean up in the same RUN"),
            "{}",
            f[1].message
        );
    }

    #[test]
    fn a_directory_deleted_later_counts_its_files_by_origin() {
        let l0 = LayerTree::new().with("/d", Dir).with("/d/a", File(3));
        let l1 = LayerTree::new().with("/d/b", File(4));
        let l2 = LayerTree::new().with("/d", Whiteout);
        let f = findings(&[l0, l1, l2]);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!((f[0].bytes, f[0].origin.clone()), (7, vec![0, 1]));
    }
}
