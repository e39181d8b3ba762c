//! layerlab-inspect: reading the images of a store, as the course reads them, and past
//! what its tools can say. The central item is [`Analysis`] (`layerlab analyze`).
//!
//! - [`tree`]: one layer's own entries (what its layer tar lists), read from a store;
//! - [`view`]: the merged view of a stack of layers, each entry with its layer;
//! - [`efficiency`]: dive's efficiency score and wasted bytes;
//! - [`findings`]: the course's anti-patterns (cleanup in a later layer, package caches,
//!   files written twice, layers with no content);
//! - [`analysis`]: per-layer added/changed/removed bytes, the figures above together,
//!   dive's CI rules;
//! - [`history`]: `docker history` from the image config's history entries;
//! - [`df`]: `docker system df` for a store;
//! - [`pull`]: which layers a pull would fetch, given the images present;
//! - [`cost`]: what the image costs on each driver, measured in scratch stores;
//! - [`graph`]: the layer tree as text, mermaid or Graphviz, and one image's stack;
//! - [`units`]: sizes and ids as docker shows them.

pub mod analysis;
pub mod cost;
pub mod df;
pub mod efficiency;
mod error;
pub mod findings;
pub mod graph;
pub mod history;
pub mod pull;
pub mod tree;
pub mod units;
pub mod view;

pub use analysis::{analyze, Analysis, CiRules};
pub use error::{InspectError, Result};

use layerlab_oci::ImageRecord;
use std::path::Path;

/// The image called `name` (or whose id, or id prefix of at least 12 hex digits, is
/// `name`) among the store's images.
pub fn find_image(root: &Path, images: &[ImageRecord], name: &str) -> Result<ImageRecord> {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    images
        .iter()
        .find(|i| i.name == name)
        .or_else(|| {
            images.iter().find(|i| {
                hex.len() >= 12
                    && i.id
                        .strip_prefix("sha256:")
                        .is_some_and(|h| h.starts_with(hex))
            })
        })
        .cloned()
        .ok_or_else(|| InspectError::NoImage {
            name: name.to_string(),
            root: root.to_path_buf(),
        })
}
