//! The layer table: which layers exist, their parents and states. Persisted as
//! `<root>/layers.json`, replaced atomically.

use super::write_atomic;
use layerlab_core::{Error, LayerId, LayerInfo, LayerState, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerEntry {
    /// The parent, if any.
    pub parent: Option<LayerId>,
    /// Active or committed.
    pub state: LayerState,
    /// 1 for a base layer.
    pub depth: usize,
}

/// All layers of a store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerTable {
    format: u32,
    layers: BTreeMap<LayerId, LayerEntry>,
}

impl LayerTable {
    /// Reads `<root>/layers.json`.
    pub fn load(root: &Path) -> Result<LayerTable> {
        let path = root.join("layers.json");
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let t: LayerTable = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        for (id, e) in &t.layers {
            if let Some(p) = &e.parent {
                if !t.layers.contains_key(p) {
                    return Err(Error::Corrupt {
                        path,
                        detail: format!("layer {id} names missing parent {p}"),
                    });
                }
            }
        }
        Ok(t)
    }

    /// Writes `<root>/layers.json` atomically.
    pub fn save(&self, root: &Path) -> Result<()> {
        let path = root.join("layers.json");
        let mut t = self.clone();
        t.format = super::FORMAT;
        let json = serde_json::to_vec_pretty(&t).map_err(|e| Error::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_atomic(&path, &json)
    }

    /// One layer's row.
    pub fn get(&self, id: &LayerId) -> Result<&LayerEntry> {
        self.layers
            .get(id)
            .ok_or_else(|| Error::NoSuchLayer { layer: id.clone() })
    }

    /// One layer's facts.
    pub fn info(&self, id: &LayerId) -> Result<LayerInfo> {
        let e = self.get(id)?;
        Ok(LayerInfo {
            id: id.clone(),
            parent: e.parent.clone(),
            state: e.state,
            depth: e.depth,
        })
    }

    /// Every layer, sorted by id.
    pub fn infos(&self) -> Vec<LayerInfo> {
        self.layers
            .iter()
            .map(|(id, e)| LayerInfo {
                id: id.clone(),
                parent: e.parent.clone(),
                state: e.state,
                depth: e.depth,
            })
            .collect()
    }

    /// True when the layer exists.
    pub fn contains(&self, id: &LayerId) -> bool {
        self.layers.contains_key(id)
    }

    /// The layers whose parent is `id`.
    pub fn children(&self, id: &LayerId) -> Vec<LayerId> {
        self.layers
            .iter()
            .filter(|(_, e)| e.parent.as_ref() == Some(id))
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// The stack of a layer: itself first, then its parent, down to the base.
    pub fn chain(&self, id: &LayerId) -> Result<Vec<LayerId>> {
        let mut out = vec![id.clone()];
        let mut cur = self.get(id)?.parent.clone();
        while let Some(p) = cur {
            cur = self.get(&p)?.parent.clone();
            out.push(p);
        }
        Ok(out)
    }

    /// Checks that `id` may be created on `parent` and returns its depth: `LayerExists`,
    /// `NoSuchLayer`, `ParentNotCommitted`, `TooManyLayers` (with `max_depth`).
    pub fn check_create(
        &self,
        id: &LayerId,
        parent: Option<&LayerId>,
        max_depth: Option<usize>,
        driver: &str,
    ) -> Result<usize> {
        if self.contains(id) {
            return Err(Error::LayerExists { layer: id.clone() });
        }
        let depth = match parent {
            None => 1,
            Some(p) => {
                let pe = self.get(p)?;
                if pe.state != LayerState::Committed {
                    return Err(Error::ParentNotCommitted {
                        layer: id.clone(),
                        parent: p.clone(),
                    });
                }
                pe.depth + 1
            }
        };
        if let Some(max) = max_depth {
            if depth > max {
                return Err(Error::TooManyLayers {
                    layer: id.clone(),
                    depth,
                    max,
                    driver: driver.to_string(),
                });
            }
        }
        Ok(depth)
    }

    /// Checks that `id` may be removed: it exists and has no children.
    pub fn check_remove(&self, id: &LayerId) -> Result<()> {
        self.get(id)?;
        let children = self.children(id);
        if !children.is_empty() {
            let names: Vec<String> = children.iter().map(|c| c.to_string()).collect();
            return Err(Error::HasChildren {
                layer: id.clone(),
                children: names.join(", "),
            });
        }
        Ok(())
    }

    /// Adds a row (after `check_create`).
    pub fn insert(&mut self, id: LayerId, parent: Option<LayerId>, depth: usize) {
        self.layers.insert(
            id,
            LayerEntry {
                parent,
                state: LayerState::Active,
                depth,
            },
        );
    }

    /// Marks a layer committed.
    pub fn commit(&mut self, id: &LayerId) -> Result<()> {
        let e = self
            .layers
            .get_mut(id)
            .ok_or_else(|| Error::NoSuchLayer { layer: id.clone() })?;
        e.state = LayerState::Committed;
        Ok(())
    }

    /// Drops a row (after `check_remove`).
    pub fn remove(&mut self, id: &LayerId) {
        self.layers.remove(id);
    }
}
