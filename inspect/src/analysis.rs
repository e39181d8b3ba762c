//! `layerlab analyze IMAGE`: per layer what it added, changed and removed; dive's
//! efficiency and wasted bytes ([`crate::efficiency`]); the course's findings
//! ([`crate::findings`]); and dive's CI rules.

use crate::efficiency::{efficiency, sightings, Efficiency};
use crate::error::Result;
use crate::findings::{findings, Finding};
use crate::history::layer_steps;
use crate::tree::{read_layer, EntryKind, LayerTree};
use crate::view::View;
use layerlab_core::{LayerDriver, LayerId};
use layerlab_oci::ImageRecord;
use serde::Serialize;

/// What one layer did to the view below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerReport {
    /// 0 = bottom.
    pub index: usize,
    /// The layer's chain id.
    pub layer: String,
    /// The history step that made it.
    pub created_by: String,
    /// Bytes of files new to the view.
    pub added: u64,
    /// Bytes of files that replace a file of the view.
    pub changed: u64,
    /// Bytes of files its deletions hide.
    pub removed: u64,
    /// Entries of the layer (whiteouts included).
    pub entries: usize,
}

/// The analysis of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// The image name.
    pub image: String,
    /// Its id.
    pub id: String,
    /// Bytes of file content over all layers.
    pub size: u64,
    /// Per layer, bottom first.
    pub layers: Vec<LayerReport>,
    /// dive's figures.
    pub efficiency: Efficiency,
    /// The course's findings.
    pub findings: Vec<Finding>,
}

/// What each layer of a stack added, changed and removed (the chain ids and steps left
/// empty).
pub fn layer_reports(layers: &[LayerTree]) -> Vec<LayerReport> {
    let mut view = View::default();
    let mut out = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let mut r = LayerReport {
            index: i,
            layer: String::new(),
            created_by: String::new(),
            added: 0,
            changed: 0,
            removed: 0,
            entries: layer.entries.len(),
        };
        for (path, kind, _) in sightings(&view, layer) {
            if kind == EntryKind::Whiteout {
                r.removed += view.bytes_under(&path);
            }
        }
        for (path, kind) in &layer.entries {
            if let EntryKind::File(n) = kind {
                if view.entries.contains_key(path) {
                    r.changed += n;
                } else {
                    r.added += n;
                }
            }
        }
        out.push(r);
        view.apply(layer, i);
    }
    out
}

/// The analysis of a stack of layers.
pub fn analyze_trees(image: &str, id: &str, layers: &[LayerTree]) -> Analysis {
    Analysis {
        image: image.to_string(),
        id: id.to_string(),
        size: layers.iter().map(LayerTree::content_bytes).sum(),
        layers: layer_reports(layers),
        efficiency: efficiency(layers),
        findings: findings(layers),
    }
}

/// The layer trees of an image in a store, bottom first.
pub fn image_trees<D: LayerDriver + ?Sized>(
    d: &mut D,
    image: &ImageRecord,
) -> Result<Vec<LayerTree>> {
    image
        .layers
        .iter()
        .map(|l| {
            let id = LayerId::new(&l.chain_id).map_err(|reason| crate::InspectError::Image {
                image: image.name.clone(),
                reason: format!("layer '{}': {reason}", l.chain_id),
            })?;
            read_layer(d, &id)
        })
        .collect()
}

/// Analyzes an image of the store.
pub fn analyze<D: LayerDriver + ?Sized>(d: &mut D, image: &ImageRecord) -> Result<Analysis> {
    let trees = image_trees(d, image)?;
    let mut a = analyze_trees(&image.name, &image.id, &trees);
    for ((r, l), step) in a
        .layers
        .iter_mut()
        .zip(&image.layers)
        .zip(layer_steps(image))
    {
        r.layer.clone_from(&l.chain_id);
        r.created_by = step;
    }
    Ok(a)
}

/// dive's CI rules (`.dive-ci`): an image fails when its efficiency is below the lowest
/// allowed, or its wasted bytes or user wasted percent above the highest allowed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CiRules {
    /// `lowestEfficiency` (dive's default 0.9).
    pub lowest_efficiency: Option<f64>,
    /// `highestWastedBytes` (dive's default: disabled).
    pub highest_wasted_bytes: Option<u64>,
    /// `highestUserWastedPercent`, as a ratio (dive's default 0.1).
    pub highest_user_wasted_percent: Option<f64>,
}

impl Default for CiRules {
    fn default() -> Self {
        CiRules {
            lowest_efficiency: Some(0.9),
            highest_wasted_bytes: None,
            highest_user_wasted_percent: Some(0.1),
        }
    }
}

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CiResult {
    /// The rule, as dive names it.
    pub rule: &'static str,
    /// True when the image passes it.
    pub pass: bool,
    /// The figure against the limit.
    pub detail: String,
}

impl CiRules {
    /// The verdict of every enabled rule.
    pub fn evaluate(&self, e: &Efficiency) -> Vec<CiResult> {
        let mut out = Vec::new();
        if let Some(min) = self.lowest_efficiency {
            out.push(CiResult {
                rule: "lowestEfficiency",
                pass: e.score >= min,
                detail: format!("efficiency {:.4} (lowest allowed {min})", e.score),
            });
        }
        if let Some(max) = self.highest_wasted_bytes {
            out.push(CiResult {
                rule: "highestWastedBytes",
                pass: e.wasted_bytes <= max,
                detail: format!("wasted {} bytes (highest allowed {max})", e.wasted_bytes),
            });
        }
        if let Some(max) = self.highest_user_wasted_percent {
            out.push(CiResult {
                rule: "highestUserWastedPercent",
                pass: e.user_wasted_percent <= max,
                detail: format!(
                    "user wasted {:.4} (highest allowed {max})",
                    e.user_wasted_percent
                ),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EntryKind::{File, Whiteout};

    #[test]
    fn layer_reports_split_added_changed_removed() {
        let l0 = LayerTree::new().with("/a", File(10)).with("/b", File(20));
        let l1 = LayerTree::new()
            .with("/a", File(11))
            .with("/b", Whiteout)
            .with("/c", File(5));
        let r = layer_reports(&[l0, l1]);
        assert_eq!((r[0].added, r[0].changed, r[0].removed), (30, 0, 0));
        assert_eq!((r[1].added, r[1].changed, r[1].removed), (5, 11, 20));
        assert_eq!(r[1].entries, 3);
    }

    #[test]
    fn ci_rules_fail_past_the_thresholds() {
        let e = efficiency(&[
            LayerTree::new().with("/x", File(90)),
            LayerTree::new().with("/x", File(10)),
        ]);
        // /x: 90 + 10, smallest 10: efficiency 0.1, wasted 100, user wasted 100/10
        let verdicts = CiRules::default().evaluate(&e);
        assert!(verdicts.iter().all(|v| !v.pass), "{verdicts:#?}");
        let lenient = CiRules {
            lowest_efficiency: Some(0.1),
            highest_wasted_bytes: Some(100),
            highest_user_wasted_percent: None,
        };
        assert!(lenient.evaluate(&e).iter().all(|v| v.pass));
        let strict = CiRules {
            highest_wasted_bytes: Some(99),
            ..lenient
        };
        assert_eq!(strict.evaluate(&e).iter().filter(|v| !v.pass).count(), 1);
    }
}
