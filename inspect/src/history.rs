//! `docker history`: the image config's history entries, matched to layers as the
//! engines match them (bottom up, an entry with `empty_layer` takes no layer), newest
//! first.
//!
//! A step's size is its layer's uncompressed tar size, as `podman history` reports it
//! (the content bytes for records imported before layerlab kept tar sizes); a
//! metadata-only step (`ENV`, `LABEL`, `CMD`, ...) is 0 B. Layers left over when the
//! history runs out (an archive without history) get a step with no text.

use layerlab_oci::ImageRecord;
use serde::Serialize;
use serde_json::Value;

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The step's layer (its chain id in the store); `None` for a metadata-only step.
    pub layer: Option<String>,
    /// The layer's position, 0 = bottom.
    pub layer_index: Option<usize>,
    /// The config's `created`.
    pub created: Option<String>,
    /// The config's `created_by` (the instruction).
    pub created_by: String,
    /// Bytes the step added: its layer's tar size, 0 without a layer.
    pub size: u64,
    /// The config's `comment`.
    pub comment: String,
    /// True for a step that made no layer.
    pub empty_layer: bool,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The image's history, newest first.
pub fn history(image: &ImageRecord) -> Vec<Step> {
    let mut layers = image.layers.iter().enumerate();
    let mut steps = Vec::new();
    for entry in &image.history {
        let empty = entry
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let layer = if empty { None } else { layers.next() };
        steps.push(Step {
            layer: layer.map(|(_, l)| l.chain_id.clone()),
            layer_index: layer.map(|(i, _)| i),
            created: text(entry, "created"),
            created_by: text(entry, "created_by").unwrap_or_default(),
            size: layer.map_or(0, |(_, l)| l.tar_size.unwrap_or(l.size)),
            comment: text(entry, "comment").unwrap_or_default(),
            empty_layer: layer.is_none(),
        });
    }
    for (i, l) in layers {
        steps.push(Step {
            layer: Some(l.chain_id.clone()),
            layer_index: Some(i),
            created: None,
            created_by: String::new(),
            size: l.tar_size.unwrap_or(l.size),
            comment: String::new(),
            empty_layer: false,
        });
    }
    steps.reverse();
    steps
}

/// The instruction that made each layer, bottom first (empty when the history does not
/// say).
pub fn layer_steps(image: &ImageRecord) -> Vec<String> {
    let mut out = vec![String::new(); image.layers.len()];
    for s in history(image) {
        if let Some(slot) = s.layer_index.and_then(|i| out.get_mut(i)) {
            *slot = s.created_by;
        }
    }
    out
}
