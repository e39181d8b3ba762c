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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use layerlab_oci::image::ImageLayer;
    use serde_json::json;

    /// An image record with layers of the given diff ids (tar size 1000 × (i + 1), gzip
    /// size 100 × (i + 1), content 900 × (i + 1)) and history entries.
    pub(crate) fn record(name: &str, diff_ids: &[&str], history: Vec<Value>) -> ImageRecord {
        let layers: Vec<ImageLayer> = diff_ids
            .iter()
            .enumerate()
            .map(|(i, d)| ImageLayer {
                chain_id: format!("chain-{name}-{i}"),
                diff_id: (*d).to_string(),
                size: 900 * (i as u64 + 1),
                shared: false,
                tar_size: Some(1000 * (i as u64 + 1)),
                gzip_size: Some(100 * (i as u64 + 1)),
            })
            .collect();
        ImageRecord {
            name: name.into(),
            id: format!("sha256:{name}"),
            top_layer: layers
                .last()
                .map(|l| l.chain_id.clone())
                .unwrap_or_default(),
            layers,
            format: "docker-save".into(),
            source: "test".into(),
            created: None,
            platform: None,
            history,
            config: None,
        }
    }

    #[test]
    fn metadata_steps_take_no_layer_and_leftover_layers_get_a_step() {
        let img = record(
            "a",
            &["d0", "d1", "d2"],
            vec![
                json!({"created_by": "ADD base", "created": "t0"}),
                json!({"created_by": "ENV X=1", "empty_layer": true}),
                json!({"created_by": "RUN make", "comment": "c"}),
            ],
        );
        let h = history(&img);
        let seen: Vec<(&str, Option<usize>, u64)> = h
            .iter()
            .map(|s| (s.created_by.as_str(), s.layer_index, s.size))
            .collect();
        // newest first; the third layer has no history entry left
        assert_eq!(
            seen,
            [
                ("", Some(2), 3000),
                ("RUN make", Some(1), 2000),
                ("ENV X=1", None, 0),
                ("ADD base", Some(0), 1000),
            ]
        );
        assert!(h[2].empty_layer && h[2].layer.is_none());
        assert_eq!(h[1].comment, "c");
        assert_eq!(layer_steps(&img), ["ADD base", "RUN make", ""]);
    }
}
