//! Pull planning: which layers of an image a pull would fetch, given the images already
//! present, by diff id (the content of a layer, whatever its parents), with the gzip
//! size a registry would send and the uncompressed tar size. The course's "shared base
//! layers shorten downloads", measured.

use crate::error::{InspectError, Result};
use layerlab_oci::ImageRecord;
use serde::Serialize;

/// One layer of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullLayer {
    /// 0 = bottom.
    pub index: usize,
    /// The layer's diff id.
    pub diff_id: String,
    /// Bytes of its gzip blob.
    pub gzip_size: u64,
    /// Bytes of its uncompressed tar.
    pub tar_size: u64,
    /// The first image already present that has the same diff id (the image itself when
    /// a lower layer of it has the same content); `None`: fetched.
    pub present_in: Option<String>,
}

/// The plan for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullPlan {
    /// The image to pull.
    pub image: String,
    /// The images taken as present.
    pub have: Vec<String>,
    /// Every layer, bottom first.
    pub layers: Vec<PullLayer>,
    /// Layers fetched.
    pub fetch_layers: usize,
    /// gzip bytes fetched.
    pub fetch_gzip: u64,
    /// Uncompressed bytes fetched.
    pub fetch_tar: u64,
    /// gzip bytes of the whole image.
    pub total_gzip: u64,
    /// Uncompressed bytes of the whole image.
    pub total_tar: u64,
}

fn sizes(image: &ImageRecord, index: usize) -> Result<(u64, u64)> {
    let l = image.layers.get(index).ok_or_else(|| InspectError::Image {
        image: image.name.clone(),
        reason: format!("no layer {index}"),
    })?;
    match (l.gzip_size, l.tar_size) {
        (Some(g), Some(t)) => Ok((g, t)),
        _ => Err(InspectError::Image {
            image: image.name.clone(),
            reason: format!(
                "layer {index} ({}) has no recorded blob sizes (imported before layerlab \
                 kept them); import the image again",
                l.diff_id
            ),
        }),
    }
}

/// What pulling `image` would fetch when the images `have` are present.
pub fn plan(image: &ImageRecord, have: &[&ImageRecord]) -> Result<PullPlan> {
    let mut layers = Vec::new();
    for (index, l) in image.layers.iter().enumerate() {
        let (gzip_size, tar_size) = sizes(image, index)?;
        let fetched_before = image
            .layers
            .iter()
            .take(index)
            .any(|e| e.diff_id == l.diff_id);
        let present_in = if fetched_before {
            Some(image.name.clone())
        } else {
            have.iter()
                .find(|h| h.layers.iter().any(|hl| hl.diff_id == l.diff_id))
                .map(|h| h.name.clone())
        };
        layers.push(PullLayer {
            index,
            diff_id: l.diff_id.clone(),
            gzip_size,
            tar_size,
            present_in,
        });
    }
    let fetched = || layers.iter().filter(|l| l.present_in.is_none());
    Ok(PullPlan {
        image: image.name.clone(),
        have: have.iter().map(|h| h.name.clone()).collect(),
        fetch_layers: fetched().count(),
        fetch_gzip: fetched().map(|l| l.gzip_size).sum(),
        fetch_tar: fetched().map(|l| l.tar_size).sum(),
        total_gzip: layers.iter().map(|l| l.gzip_size).sum(),
        total_tar: layers.iter().map(|l| l.tar_size).sum(),
        layers,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::history::tests::record;

    #[test]
    fn layers_present_by_diff_id_are_not_fetched() {
        let target = record("app", &["base", "deps", "code", "deps"], Vec::new());
        let have = record("other", &["base", "x"], Vec::new());
        let p = plan(&target, &[&have]).unwrap();
        let present: Vec<Option<&str>> = p.layers.iter().map(|l| l.present_in.as_deref()).collect();
        // the base is present; the second "deps" is fetched once, with the first
        assert_eq!(present, [Some("other"), None, None, Some("app")]);
        assert_eq!(p.fetch_layers, 2);
        assert_eq!((p.fetch_gzip, p.fetch_tar), (200 + 300, 2000 + 3000));
        assert_eq!((p.total_gzip, p.total_tar), (1000, 10000));
        let mut old = target.clone();
        old.layers[1].gzip_size = None;
        let e = plan(&old, &[]).unwrap_err().to_string();
        assert!(
            e.contains("image app") && e.contains("import the image again"),
            "{e}"
        );
    }
}
