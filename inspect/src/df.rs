//! `docker system df` for a store: images, containers and build cache, with shared
//! layers counted once.
//!
//! - A layer's size is the file content it carries itself: the image table's `size` for
//!   image layers, the content of its changeset for other layers (what `docker system
//!   df` counts for a container's writable layer).
//! - Images: TOTAL the images; ACTIVE those with a container (an active layer above
//!   their top layer); SIZE their layers, each counted once; RECLAIMABLE what removing
//!   every image without a container would free (layers no active image uses).
//! - Containers: every active layer (a container's writable layer); all are ACTIVE
//!   (writable), none is RECLAIMABLE without losing what it holds.
//! - Build cache: committed layers no image uses; ACTIVE those under an active layer;
//!   RECLAIMABLE the others.
//!
//! `-v`: per image its shared size (layers another image uses too) and unique size, and
//! per image layer the images that use it.

use crate::error::Result;
use crate::tree::read_layer;
use layerlab_core::{LayerDriver, LayerInfo, LayerState};
use layerlab_oci::ImageRecord;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One line of `df`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Section {
    /// How many.
    pub total: usize,
    /// How many are in use.
    pub active: usize,
    /// Bytes, shared layers counted once.
    pub size: u64,
    /// Bytes that removing the unused ones would free.
    pub reclaimable: u64,
}

/// One image, `-v`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageUse {
    /// The image.
    pub name: String,
    /// Its layers' bytes.
    pub size: u64,
    /// Bytes of layers another image uses too.
    pub shared_size: u64,
    /// Bytes of layers only this image uses.
    pub unique_size: u64,
    /// Active layers above its top layer.
    pub containers: usize,
}

/// One image layer, `-v`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerUse {
    /// The layer (chain id).
    pub layer: String,
    /// Its bytes.
    pub size: u64,
    /// The images that use it.
    pub images: Vec<String>,
}

/// `df`'s figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Df {
    /// Images.
    pub images: Section,
    /// Containers (active layers).
    pub containers: Section,
    /// Committed layers no image uses.
    pub build_cache: Section,
    /// Per image.
    pub image_use: Vec<ImageUse>,
    /// Per image layer.
    pub layer_use: Vec<LayerUse>,
}

/// Every layer of the store with the bytes it carries (see the module doc).
pub fn layer_sizes<D: LayerDriver + ?Sized>(
    d: &mut D,
    images: &[ImageRecord],
) -> Result<BTreeMap<String, (LayerInfo, u64)>> {
    let known: BTreeMap<&str, u64> = images
        .iter()
        .flat_map(|i| i.layers.iter().map(|l| (l.chain_id.as_str(), l.size)))
        .collect();
    let mut out = BTreeMap::new();
    for info in d.layers()? {
        let size = match known.get(info.id.as_str()) {
            Some(s) => *s,
            None => read_layer(d, &info.id)?.content_bytes(),
        };
        out.insert(info.id.to_string(), (info, size));
    }
    Ok(out)
}

/// The layers at and below `id`, as chain ids.
pub fn ancestry(layers: &BTreeMap<String, (LayerInfo, u64)>, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = Some(id.to_string());
    while let Some(c) = cur {
        cur = layers
            .get(&c)
            .and_then(|(i, _)| i.parent.as_ref().map(ToString::to_string));
        out.push(c);
        if out.len() > layers.len() {
            break;
        }
    }
    out
}

/// `df` over a store and its images.
pub fn df<D: LayerDriver + ?Sized>(d: &mut D, images: &[ImageRecord]) -> Result<Df> {
    let layers = layer_sizes(d, images)?;
    let size_of = |id: &str| layers.get(id).map_or(0, |(_, s)| *s);
    let active: Vec<&LayerInfo> = layers
        .values()
        .map(|(i, _)| i)
        .filter(|i| i.state == LayerState::Active)
        .collect();
    // every layer under an active layer, and the number of active layers above each
    let mut under_active: BTreeMap<String, usize> = BTreeMap::new();
    for a in &active {
        for l in ancestry(&layers, a.id.as_str()).into_iter().skip(1) {
            *under_active.entry(l).or_default() += 1;
        }
    }
    let mut users: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for i in images {
        for l in &i.layers {
            users
                .entry(l.chain_id.as_str())
                .or_default()
                .push(i.name.clone());
        }
    }
    let mut image_use = Vec::new();
    let mut in_use: BTreeSet<&str> = BTreeSet::new();
    for i in images {
        let containers = under_active.get(&i.top_layer).copied().unwrap_or(0);
        if containers > 0 {
            in_use.extend(i.layers.iter().map(|l| l.chain_id.as_str()));
        }
        let unique: BTreeSet<&str> = i.layers.iter().map(|l| l.chain_id.as_str()).collect();
        let (mut shared, mut only) = (0, 0);
        for l in &unique {
            if users.get(l).is_some_and(|u| u.len() > 1) {
                shared += size_of(l);
            } else {
                only += size_of(l);
            }
        }
        image_use.push(ImageUse {
            name: i.name.clone(),
            size: shared + only,
            shared_size: shared,
            unique_size: only,
            containers,
        });
    }
    let image_size: u64 = users.keys().map(|l| size_of(l)).sum();
    let used: u64 = in_use.iter().map(|l| size_of(l)).sum();
    let cache: Vec<&LayerInfo> = layers
        .values()
        .map(|(i, _)| i)
        .filter(|i| i.state == LayerState::Committed && !users.contains_key(i.id.as_str()))
        .collect();
    let cache_active: Vec<&&LayerInfo> = cache
        .iter()
        .filter(|i| under_active.contains_key(i.id.as_str()))
        .collect();
    let cache_size: u64 = cache.iter().map(|i| size_of(i.id.as_str())).sum();
    let cache_used: u64 = cache_active.iter().map(|i| size_of(i.id.as_str())).sum();
    let containers_size: u64 = active.iter().map(|i| size_of(i.id.as_str())).sum();
    Ok(Df {
        images: Section {
            total: images.len(),
            active: image_use.iter().filter(|u| u.containers > 0).count(),
            size: image_size,
            reclaimable: image_size.saturating_sub(used),
        },
        containers: Section {
            total: active.len(),
            active: active.len(),
            size: containers_size,
            reclaimable: 0,
        },
        build_cache: Section {
            total: cache.len(),
            active: cache_active.len(),
            size: cache_size,
            reclaimable: cache_size.saturating_sub(cache_used),
        },
        image_use,
        layer_use: users
            .into_iter()
            .map(|(l, images)| LayerUse {
                layer: l.to_string(),
                size: size_of(l),
                images,
            })
            .collect(),
    })
}
