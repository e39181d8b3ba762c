//! dive's efficiency score and wasted bytes (wagoodman/dive, `filetree/efficiency.go`),
//! over a stack of [`LayerTree`]s, bottom layer first.
//!
//! Every leaf of every layer (an entry with no other entry of the same layer under it) is
//! one sighting of its path. A sighting weighs the entry's tar size (a file's length, 0
//! for directories and symlinks); a whiteout weighs what it removes as dive sizes it: the
//! whole subtree when the layers below have a directory there, 0 when they have a file
//! (dive's code sizes directory whiteouts only, so a deleted file's bytes count once,
//! at the layer that added them, and never as a path's smallest size). Per path, the
//! cumulative size is the sum over its sightings and the smallest size the least of
//! them. Then:
//!
//! - efficiency = sum of smallest sizes / sum of cumulative sizes (1.0 when nothing
//!   weighs anything);
//! - wasted bytes = the cumulative size of every path sighted in two layers or more;
//! - user wasted percent = wasted bytes / the content of every layer but the first
//!   (dive's `highestUserWastedPercent`).
//!
//! An opaque directory (`.wh..wh..opq`; dive cannot size one) is taken as a whiteout of
//! each entry the layers below have in it, other than those the layer itself holds.

use crate::tree::{EntryKind, LayerTree};
use crate::view::View;
use serde::Serialize;
use std::collections::BTreeMap;

/// One path's sightings across the layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathSightings {
    /// The path.
    pub path: String,
    /// The layers (0 = bottom) with a leaf at the path, in order.
    pub layers: Vec<usize>,
    /// The sum of its sightings' sizes.
    pub cumulative: u64,
    /// The least of them.
    pub smallest: u64,
}

/// dive's figures for an image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Efficiency {
    /// Sum of smallest sizes over sum of cumulative sizes.
    pub score: f64,
    /// Cumulative size of every path sighted in two layers or more.
    pub wasted_bytes: u64,
    /// Wasted bytes over the content of every layer but the first (0 when there is none).
    pub user_wasted_percent: f64,
    /// Paths sighted in two layers or more, largest cumulative size first (ties by path).
    pub wasted: Vec<PathSightings>,
}

/// A layer's leaves with the weight of each (opaque directories expanded into the
/// whiteouts they imply), given the view of the layers below.
pub fn sightings(below: &View, layer: &LayerTree) -> Vec<(String, EntryKind, u64)> {
    let mut expanded = layer.clone();
    for (p, k) in &layer.entries {
        if *k == EntryKind::OpaqueDir {
            for hidden in below.hidden_by_opaque(p, layer) {
                expanded.entries.insert(hidden, EntryKind::Whiteout);
            }
        }
    }
    expanded
        .entries
        .iter()
        .filter(|(p, _)| !expanded.has_children(p))
        .map(|(p, k)| {
            let weight = match k {
                EntryKind::Whiteout => below.whiteout_weight(p),
                k => k.size(),
            };
            (p.clone(), *k, weight)
        })
        .collect()
}

/// dive's efficiency of a stack of layers, bottom first (see the module doc).
pub fn efficiency(layers: &[LayerTree]) -> Efficiency {
    let mut view = View::default();
    let mut paths: BTreeMap<String, PathSightings> = BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        for (path, _, weight) in sightings(&view, layer) {
            let s = paths.entry(path.clone()).or_insert(PathSightings {
                path,
                layers: Vec::new(),
                cumulative: 0,
                smallest: weight,
            });
            s.layers.push(i);
            s.cumulative += weight;
            s.smallest = s.smallest.min(weight);
        }
        view.apply(layer, i);
    }
    let smallest: u64 = paths.values().map(|s| s.smallest).sum();
    let cumulative: u64 = paths.values().map(|s| s.cumulative).sum();
    let score = if cumulative == 0 {
        1.0
    } else {
        smallest as f64 / cumulative as f64
    };
    let mut wasted: Vec<PathSightings> = paths
        .into_values()
        .filter(|s| s.layers.len() >= 2)
        .collect();
    wasted.sort_by(|a, b| {
        b.cumulative
            .cmp(&a.cumulative)
            .then_with(|| a.path.cmp(&b.path))
    });
    let wasted_bytes = wasted.iter().map(|s| s.cumulative).sum();
    let user: u64 = layers.iter().skip(1).map(LayerTree::content_bytes).sum();
    let user_wasted_percent = if user == 0 {
        0.0
    } else {
        wasted_bytes as f64 / user as f64
    };
    Efficiency {
        score,
        wasted_bytes,
        user_wasted_percent,
        wasted,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::float_cmp)]
    use super::*;
    use EntryKind::{Dir, File, OpaqueDir, Whiteout};

    fn wasted(e: &Efficiency) -> Vec<(&str, u64, Vec<usize>)> {
        e.wasted
            .iter()
            .map(|s| (s.path.as_str(), s.cumulative, s.layers.clone()))
            .collect()
    }

    #[test]
    fn a_file_written_twice() {
        let l0 = LayerTree::new().with("/app", Dir).with("/app/a", File(100));
        let l1 = LayerTree::new().with("/app", Dir).with("/app/a", File(300));
        let e = efficiency(&[l0, l1]);
        // /app has a child in both layers: not a leaf. /app/a: 100 + 300, smallest 100.
        assert_eq!(e.score, 100.0 / 400.0);
        assert_eq!(e.wasted_bytes, 400);
        assert_eq!(wasted(&e), vec![("/app/a", 400, vec![0, 1])]);
        // the layers after the first carry 300 bytes
        assert_eq!(e.user_wasted_percent, 400.0 / 300.0);
    }

    #[test]
    fn a_file_deleted() {
        let l0 = LayerTree::new()
            .with("/big", File(1000))
            .with("/keep", File(500));
        let l1 = LayerTree::new().with("/big", Whiteout);
        let e = efficiency(&[l0, l1]);
        // /big: 1000 then a whiteout of a file, which dive weighs 0: cumulative 1000,
        // smallest 0. /keep: 500 once.
        assert_eq!(e.score, 500.0 / 1500.0);
        assert_eq!(e.wasted_bytes, 1000);
        assert_eq!(wasted(&e), vec![("/big", 1000, vec![0, 1])]);
        assert_eq!(
            e.user_wasted_percent, 0.0,
            "the second layer carries no content"
        );
    }

    #[test]
    fn a_directory_removed_with_its_contents() {
        let l0 = LayerTree::new()
            .with("/d", Dir)
            .with("/d/x", File(200))
            .with("/d/sub", Dir)
            .with("/d/sub/y", File(300))
            .with("/other", File(100));
        let l1 = LayerTree::new().with("/d", Whiteout);
        let e = efficiency(&[l0, l1]);
        // Leaves of layer 0: /d/x 200, /d/sub/y 300, /other 100. Layer 1: the whiteout
        // /d weighs the subtree below it, 500, and /d was no leaf of layer 0: every path
        // is sighted once, so dive sees no waste (the findings do).
        assert_eq!(e.score, 1.0);
        assert_eq!(e.wasted_bytes, 0);
        assert!(e.wasted.is_empty());
        // a second whiteout of the same directory in a third layer weighs nothing more
        // (it is gone), but /d is now sighted twice: 500 + 0
        let l0 = LayerTree::new().with("/d", Dir).with("/d/x", File(200));
        let l1 = LayerTree::new().with("/d", Whiteout);
        let l2 = LayerTree::new().with("/d", Dir);
        let l3 = LayerTree::new().with("/d", Whiteout);
        let e = efficiency(&[l0, l1, l2, l3]);
        // /d/x 200 once; /d: whiteout 200, empty dir leaf 0, whiteout of an empty dir 0
        assert_eq!(wasted(&e), vec![("/d", 200, vec![1, 2, 3])]);
        assert_eq!(e.score, 200.0 / 400.0);
    }

    #[test]
    fn an_opaque_directory() {
        let l0 = LayerTree::new()
            .with("/o", Dir)
            .with("/o/a", File(40))
            .with("/o/b", File(60));
        let l1 = LayerTree::new()
            .with("/o", OpaqueDir)
            .with("/o/a", File(5))
            .with("/o/c", File(10));
        let e = efficiency(&[l0.clone(), l1.clone()]);
        // The opaque marker deletes /o/b (a file: weighs 0); /o/a is written again.
        // /o/a: 40 + 5, smallest 5; /o/b: 60 + 0, smallest 0; /o/c: 10.
        assert_eq!(e.score, 15.0 / 115.0);
        assert_eq!(e.wasted_bytes, 105);
        assert_eq!(
            wasted(&e),
            vec![("/o/b", 60, vec![0, 1]), ("/o/a", 45, vec![0, 1])]
        );
        assert_eq!(e.user_wasted_percent, 105.0 / 15.0);
        let mut v = View::default();
        v.apply(&l0, 0);
        v.apply(&l1, 1);
        let paths: Vec<&str> = v.entries.keys().map(String::as_str).collect();
        assert_eq!(paths, ["/o", "/o/a", "/o/c"]);
    }

    #[test]
    fn an_empty_image_scores_one() {
        let e = efficiency(&[LayerTree::new().with("/nothing", File(0))]);
        assert_eq!(e.score, 1.0);
        assert_eq!(e.wasted_bytes, 0);
    }
}
