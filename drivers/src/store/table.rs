//! The layer table: which layers exist, their parents and states. Persisted as
//! `<root>/layers.json`, replaced atomically (see the store's module doc for the format,
//! its checksum and the crash reasoning).
//!
//! Loading refuses a table this layerlab cannot trust: an unknown format version (named), a
//! checksum that does not match (a flipped byte), a parent the table does not name, a
//! parent cycle, a depth that is not its chain's length. Each refusal is
//! `Error::Corrupt` pointing at `layerlab fsck`, which reads the same table leniently
//! ([`LayerTable::read_lenient`], [`LayerTable::problems`]) to report and repair it.

use super::write_atomic;
use crate::codec::checksum;
use layerlab_core::{rules, Error, LayerId, LayerInfo, LayerState, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct LayerTable {
    format: u32,
    layers: BTreeMap<LayerId, LayerEntry>,
    /// The checksum of `layers` (see [`table_checksum`]); absent in tables written before
    /// it existed, which are read as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksum: Option<String>,
}

/// What is wrong with a table that parsed: each a reason `load` refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableProblem {
    /// The stored checksum does not match the rows.
    Checksum {
        /// The checksum stored.
        stored: String,
        /// The checksum of the rows as read.
        computed: String,
    },
    /// A layer names a parent the table does not hold.
    MissingParent {
        /// The layer.
        layer: LayerId,
        /// The parent it names.
        parent: LayerId,
    },
    /// A layer's chain of parents comes back to itself.
    Cycle {
        /// The layers of the cycle, in parent order from the smallest id.
        members: Vec<LayerId>,
    },
    /// A layer's depth is not the length of its chain.
    Depth {
        /// The layer.
        layer: LayerId,
        /// The depth stored.
        stored: usize,
        /// The length of its chain.
        actual: usize,
    },
}

impl std::fmt::Display for TableProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableProblem::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored}, the rows give {computed}): a byte changed"
            ),
            TableProblem::MissingParent { layer, parent } => {
                write!(f, "layer {layer} names missing parent {parent}")
            }
            TableProblem::Cycle { members } => {
                let names: Vec<&str> = members.iter().map(LayerId::as_str).collect();
                write!(f, "parent cycle: {} -> {}", names.join(" -> "), names[0])
            }
            TableProblem::Depth {
                layer,
                stored,
                actual,
            } => write!(
                f,
                "layer {layer} has depth {stored} but a chain of {actual} layers"
            ),
        }
    }
}

/// The checksum of a table's rows: FNV-1a 64 ([`checksum`], the one every store format
/// uses) of their compact JSON (a `BTreeMap`, so the bytes are canonical), in hex.
fn table_checksum(layers: &BTreeMap<LayerId, LayerEntry>) -> Result<String> {
    let bytes = serde_json::to_vec(layers).map_err(|e| Error::Corrupt {
        path: PathBuf::from("layers.json"),
        detail: e.to_string(),
    })?;
    Ok(format!("{:016x}", checksum(&bytes)))
}

/// What a refusal adds to say where to go.
pub(crate) const FSCK_HINT: &str = "; run `layerlab fsck` to see and repair the store";

/// The message of a refused table: what is wrong, and where to go.
fn refuse(path: PathBuf, detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path,
        detail: format!("{detail}{FSCK_HINT}"),
    }
}

impl LayerTable {
    /// Reads `<root>/layers.json` and refuses it when [`LayerTable::problems`] finds
    /// anything.
    pub fn load(root: &Path) -> Result<LayerTable> {
        let t = Self::read_lenient(root)?;
        if let Some(p) = t.problems()?.into_iter().next() {
            return Err(refuse(root.join("layers.json"), p));
        }
        Ok(t)
    }

    /// Reads `<root>/layers.json` as it is: refused only when it cannot be read, parsed, or
    /// has a format version this layerlab does not know (named).
    pub fn read_lenient(root: &Path) -> Result<LayerTable> {
        let path = root.join("layers.json");
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let format = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("format").and_then(serde_json::Value::as_u64));
        if let Some(f) = format.filter(|f| *f != u64::from(super::FORMAT)) {
            return Err(refuse(
                path,
                format_args!(
                    "unknown format version {f} (this layerlab reads version {})",
                    super::FORMAT
                ),
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| refuse(path, e))
    }

    /// Everything that makes the table untrustworthy, in a fixed order: the checksum,
    /// missing parents, cycles, wrong depths. Never loops, whatever the table holds.
    pub fn problems(&self) -> Result<Vec<TableProblem>> {
        let mut out = Vec::new();
        if let Some(stored) = &self.checksum {
            let computed = table_checksum(&self.layers)?;
            if *stored != computed {
                out.push(TableProblem::Checksum {
                    stored: stored.clone(),
                    computed,
                });
            }
        }
        for (id, e) in &self.layers {
            if let Some(p) = e.parent.as_ref().filter(|p| !self.layers.contains_key(*p)) {
                out.push(TableProblem::MissingParent {
                    layer: id.clone(),
                    parent: p.clone(),
                });
            }
        }
        let cycles = self.cycles();
        let in_cycle: BTreeSet<&LayerId> = cycles.iter().flatten().collect();
        out.extend(cycles.iter().map(|members| TableProblem::Cycle {
            members: members.clone(),
        }));
        for (id, e) in &self.layers {
            if in_cycle.contains(id) {
                continue;
            }
            if let Some(actual) = self.chain_len(id) {
                if actual != e.depth {
                    out.push(TableProblem::Depth {
                        layer: id.clone(),
                        stored: e.depth,
                        actual,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The parent cycles of the table, each once, from its smallest id.
    fn cycles(&self) -> Vec<Vec<LayerId>> {
        // colour walk: 0 unseen, 1 on the current path, 2 done
        let mut colour: BTreeMap<&LayerId, u8> = BTreeMap::new();
        let mut out = Vec::new();
        for start in self.layers.keys() {
            let mut path: Vec<&LayerId> = Vec::new();
            let mut cur = Some(start);
            while let Some(id) = cur {
                match colour.get(id).copied().unwrap_or(0) {
                    2 => break,
                    1 => {
                        let from = path.iter().position(|p| *p == id).unwrap_or(0);
                        let mut members: Vec<LayerId> =
                            path[from..].iter().map(|p| (*p).clone()).collect();
                        let min = (0..members.len())
                            .min_by(|a, b| members[*a].cmp(&members[*b]))
                            .unwrap_or(0);
                        members.rotate_left(min);
                        out.push(members);
                        break;
                    }
                    _ => {
                        colour.insert(id, 1);
                        path.push(id);
                        cur = self.layers.get(id).and_then(|e| e.parent.as_ref());
                    }
                }
            }
            for p in path {
                colour.insert(p, 2);
            }
        }
        out
    }

    /// The length of a layer's chain, `None` when it has a missing parent or a cycle.
    fn chain_len(&self, id: &LayerId) -> Option<usize> {
        let mut n = 0;
        let mut cur = Some(id);
        while let Some(c) = cur {
            n += 1;
            if n > self.layers.len() {
                return None;
            }
            cur = self.layers.get(c)?.parent.as_ref();
        }
        Some(n)
    }

    /// The table without the layers whose chain of parents is broken (a cycle, a missing
    /// parent, or stacked on one of those), and the layers left out.
    pub fn with_whole_chains(&self) -> (LayerTable, Vec<LayerId>) {
        let mut out = self.clone();
        let mut dropped = Vec::new();
        for id in self.layers.keys() {
            if self.chain_len(id).is_none() {
                out.layers.remove(id);
                dropped.push(id.clone());
            }
        }
        (out, dropped)
    }

    /// Repairs what can be derived from the rows themselves: wrong depths are recomputed,
    /// and the checksum is rewritten on the next save. Returns what was changed.
    pub fn fix_depths(&mut self) -> Vec<(LayerId, usize, usize)> {
        let mut fixed = Vec::new();
        let ids: Vec<LayerId> = self.layers.keys().cloned().collect();
        for id in ids {
            let Some(actual) = self.chain_len(&id) else {
                continue;
            };
            if let Some(e) = self.layers.get_mut(&id) {
                if e.depth != actual {
                    fixed.push((id, e.depth, actual));
                    e.depth = actual;
                }
            }
        }
        fixed
    }

    /// Writes `<root>/layers.json` atomically, with the format version and the checksum.
    pub fn save(&self, root: &Path) -> Result<()> {
        write_atomic(&root.join("layers.json"), &self.to_bytes(root)?)
    }

    /// [`LayerTable::save`], saying whether a failure came before or after the rename.
    pub fn save_staged(&self, root: &Path) -> std::result::Result<(), super::Replace> {
        let bytes = self.to_bytes(root).map_err(super::Replace::NotDone)?;
        super::replace_file(&root.join("layers.json"), &bytes)
    }

    /// True when both tables hold the same rows.
    pub fn same_rows(&self, other: &LayerTable) -> bool {
        self.layers == other.layers
    }

    /// The bytes `save` writes.
    fn to_bytes(&self, root: &Path) -> Result<Vec<u8>> {
        let mut t = self.clone();
        t.format = super::FORMAT;
        t.checksum = Some(table_checksum(&t.layers)?);
        serde_json::to_vec_pretty(&t).map_err(|e| Error::Corrupt {
            path: root.join("layers.json"),
            detail: e.to_string(),
        })
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
    /// Bounded by the table's size, so a cycle (refused at load, but met by fsck) is an
    /// error, never a loop.
    pub fn chain(&self, id: &LayerId) -> Result<Vec<LayerId>> {
        let mut out = vec![id.clone()];
        let mut cur = self.get(id)?.parent.clone();
        while let Some(p) = cur {
            if out.len() > self.layers.len() {
                return Err(refuse(
                    PathBuf::from("layers.json"),
                    format_args!("layer {id}: its chain of parents is a cycle"),
                ));
            }
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
        let parent = parent
            .map(|p| self.get(p).map(|pe| (p, pe.state, pe.depth)))
            .transpose()?;
        rules::new_layer_depth(id, parent, max_depth, driver)
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

    /// Drops a row (after `check_remove`, or by fsck for a layer whose data is gone).
    pub fn remove(&mut self, id: &LayerId) {
        self.layers.remove(id);
    }

    /// Every layer id, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &LayerId> {
        self.layers.keys()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn id(s: &str) -> LayerId {
        LayerId::new(s).unwrap()
    }

    fn table(rows: &[(&str, Option<&str>, usize)]) -> LayerTable {
        let mut t = LayerTable::default();
        for (i, p, depth) in rows {
            t.layers.insert(
                id(i),
                LayerEntry {
                    parent: p.map(id),
                    state: LayerState::Committed,
                    depth: *depth,
                },
            );
        }
        t
    }

    #[test]
    fn a_cycle_is_found_once_and_chain_never_loops() {
        let t = table(&[
            ("a", Some("c"), 1),
            ("b", Some("a"), 2),
            ("c", Some("b"), 3),
            ("d", Some("a"), 2),
        ]);
        let problems = t.problems().unwrap();
        assert_eq!(
            problems,
            vec![TableProblem::Cycle {
                members: vec![id("a"), id("c"), id("b")]
            }]
        );
        assert!(t.chain(&id("d")).is_err());
        let (whole, broken) = t.with_whole_chains();
        assert_eq!(whole.ids().count(), 0);
        assert_eq!(broken.len(), 4);
    }

    #[test]
    fn a_saved_table_loads_and_a_changed_row_fails_its_checksum() {
        let tmp = tempfile::tempdir().unwrap();
        let t = table(&[("a", None, 1), ("b", Some("a"), 2)]);
        t.save(tmp.path()).unwrap();
        assert!(LayerTable::load(tmp.path()).unwrap().same_rows(&t));
        let p = tmp.path().join("layers.json");
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("\"committed\"", "\"active\"")).unwrap();
        let err = LayerTable::load(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("checksum mismatch") && err.contains("layerlab fsck"),
            "{err}"
        );
    }
}
