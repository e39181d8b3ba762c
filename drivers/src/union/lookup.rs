//! The stack walk and its cache, generic over a [`BranchFormat`], shared by every union
//! driver (overlay2, aufs).
//!
//! A path is looked up component by component. For each component the walk probes, top
//! down, only the branches in which the parent is a directory that is still visible (the
//! parent's `layers`); the first branch with an entry decides:
//! - a whiteout: the name is absent;
//! - a file or symlink: that entry, and nothing below is looked at (except, for a metacopy
//!   file, the branch below that holds its data);
//! - a directory: the walk goes on down to collect every branch where the name is a
//!   directory too, stopping at an opaque directory, a whiteout or a non-directory.
//!
//! Only `lstat` is used on every component, so a symlink stored in a branch is never
//! followed by the host. Every probe counts in the Meter; [`Cache`] remembers each
//! resolved component, as the kernel's dentry cache does, so that a warm lookup costs one
//! cache hit and no probe whatever the depth of the stack.

use super::format::{BranchFormat, Listed, Probe};
use layerlab_core::{DirEntry, Error, FileKind, LayerId, LayerPath, Meter, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

/// A layer's stack: the branches of its view, the layer itself first.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The layer of each branch, top first.
    pub ids: Vec<LayerId>,
    /// The host directory of each branch (overlay2: `<dir>/diff`, aufs: `diff/<dir>`),
    /// top first.
    pub dirs: Vec<PathBuf>,
}

impl Stack {
    /// The host path of `path` in branch `i`.
    pub fn host(&self, i: usize, path: &LayerPath) -> PathBuf {
        self.dirs[i].join(path.relative())
    }
}

/// What a lookup found: the branch that provides an entry, and for a directory every
/// branch that is merged into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// What it is.
    pub kind: FileKind,
    /// The stack index of the branch that provides the entry (its attributes).
    pub top: usize,
    /// For a directory: the branches merged into it, top first (`top` first); empty
    /// otherwise.
    pub layers: Vec<usize>,
    /// For a metacopy file: the branch that holds its data.
    pub data: Option<usize>,
}

impl Found {
    /// The root directory: present in every branch, never opaque.
    pub fn root(stack: &Stack) -> Found {
        Found {
            kind: FileKind::Dir,
            top: 0,
            layers: (0..stack.dirs.len()).collect(),
            data: None,
        }
    }

    /// The branch holding a file's data.
    pub fn data_branch(&self) -> usize {
        self.data.unwrap_or(self.top)
    }

    /// True when a branch below the top one contributes to this entry (a merged or
    /// lower-only directory, a metacopy file).
    pub fn has_lower(&self) -> bool {
        self.top != 0 || self.layers.iter().any(|&i| i != 0) || self.data.is_some()
    }
}

/// The most entries the cache keeps before it starts over (deterministically).
pub const CACHE_MAX: usize = 1 << 18;

/// Resolved components per layer: `Some(found)` or `None` (absent from an existing
/// directory). Only active layers ever change, and only their own entries go stale:
/// a driver calls [`Cache::invalidate`] or [`Cache::update`] for what it changes.
///
/// Beside it, the branch directories the host has cached (the kernel's dentry and page
/// caches under the overlay): one this driver created, listed or probed since it was
/// opened. A probe into such a directory is warm (`warm_probes`), the first into any other
/// cold (`probes`); a store opened anew starts cold, as after dropping the caches.
#[derive(Debug, Default)]
pub struct Cache {
    layers: HashMap<LayerId, BTreeMap<String, Option<Found>>>,
    len: usize,
    dirs: HashSet<(LayerId, String)>,
    /// Files of a branch whose data the host has in its page cache (read or written since
    /// open).
    data: HashSet<(LayerId, String)>,
}

impl Cache {
    /// The cached answer for `path` in `layer`.
    pub fn get(&self, layer: &LayerId, path: &LayerPath) -> Option<&Option<Found>> {
        self.layers.get(layer)?.get(path.as_str())
    }

    /// Remembers an answer.
    pub fn insert(&mut self, layer: &LayerId, path: &LayerPath, found: Option<Found>) {
        if self.len >= CACHE_MAX {
            self.layers.clear();
            self.len = 0;
        }
        let map = self.layers.entry(layer.clone()).or_default();
        if map.insert(path.as_str().to_string(), found).is_none() {
            self.len += 1;
        }
    }

    /// Replaces an answer the caller knows (after a copy-up) without a probe.
    pub fn update(&mut self, layer: &LayerId, path: &LayerPath, found: Found) {
        self.insert(layer, path, Some(found));
    }

    /// Forgets `path` and everything under it in `layer`.
    pub fn invalidate(&mut self, layer: &LayerId, path: &LayerPath) {
        let Some(map) = self.layers.get_mut(layer) else {
            return;
        };
        let before = map.len();
        if path.is_root() {
            map.clear();
        } else {
            map.remove(path.as_str());
            let prefix = format!("{}/", path.as_str());
            let doomed: Vec<String> = map
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                map.remove(&k);
            }
        }
        self.len -= before - map.len();
    }

    /// Forgets a whole layer (it was removed or made anew).
    pub fn drop_layer(&mut self, layer: &LayerId) {
        if let Some(map) = self.layers.remove(layer) {
            self.len -= map.len();
        }
        self.dirs.retain(|(l, _)| l != layer);
        self.data.retain(|(l, _)| l != layer);
    }

    /// Notes that the host has `branch`'s own directory inode cached (looked at or made
    /// since open); true when it already had.
    pub fn host_branch(&mut self, branch: &LayerId) -> bool {
        !self.dirs.insert((branch.clone(), String::new()))
    }

    /// Notes that the host has `dir` of `branch`'s directory tree cached (this driver
    /// made or listed it); true when it already had.
    pub fn host_dir(&mut self, branch: &LayerId, dir: &LayerPath) -> bool {
        if self.dirs.len() >= CACHE_MAX {
            self.dirs.clear();
        }
        !self.dirs.insert((branch.clone(), dir.as_str().to_string()))
    }

    /// Notes that the host has the data of `file` in `branch` in its page cache (read or
    /// written since open); true when it already had.
    pub fn host_data(&mut self, branch: &LayerId, file: &LayerPath) -> bool {
        if self.data.len() >= CACHE_MAX {
            self.data.clear();
        }
        !self
            .data
            .insert((branch.clone(), file.as_str().to_string()))
    }

    /// Entries cached, all layers together.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The walk of one layer's stack: a format, the stack, the cache and the meter.
pub struct Walk<'a, F: BranchFormat> {
    /// How markers are stored.
    pub format: &'a F,
    /// The layer's stack.
    pub stack: &'a Stack,
    /// The shared cache.
    pub cache: &'a mut Cache,
    /// Where probes and cache hits are counted.
    pub meter: &'a mut Meter,
}

impl<F: BranchFormat> Walk<'_, F> {
    fn layer(&self) -> &LayerId {
        &self.stack.ids[0]
    }

    /// Counts the look at the view's root (the top branch's directory inode, not its
    /// entries): warm when the host has it cached.
    fn count_root(&mut self) {
        if self.cache.host_branch(&self.stack.ids[0]) {
            self.meter.counts.warm_probes += 1;
        } else {
            self.meter.counts.probes += 1;
        }
    }

    /// Looks `path` up in the layer's merged view: `Ok(None)` when it is absent from an
    /// existing directory; `NotFound` / `NotADirectory` (naming `path`) when an ancestor
    /// is missing or not a directory. Answers from the cache when it can.
    pub fn lookup(&mut self, path: &LayerPath) -> Result<Option<Found>> {
        if let Some(hit) = self.cache.get(self.layer(), path) {
            let hit = hit.clone();
            self.meter.counts.cache_hits += 1;
            self.meter.step(|| format!("lookup {path}: cache hit"));
            return Ok(hit);
        }
        if path.is_root() {
            self.count_root();
            let root = Found::root(self.stack);
            self.cache
                .insert(&self.stack.ids[0], path, Some(root.clone()));
            return Ok(Some(root));
        }
        let ancestors = path.ancestors();
        let mut start = None;
        for (k, a) in ancestors.iter().enumerate().rev() {
            if let Some(v) = self.cache.get(self.layer(), a) {
                start = Some((k, v.clone()));
                break;
            }
        }
        let (mut cur, from) = match start {
            Some((k, v)) => {
                self.meter.counts.cache_hits += 1;
                (self.dir_or_err(v, path)?, k + 1)
            }
            None => {
                self.count_root();
                let root = Found::root(self.stack);
                self.cache
                    .insert(&self.stack.ids[0], &LayerPath::root(), Some(root.clone()));
                (root, 1)
            }
        };
        for a in &ancestors[from..] {
            let f = self.probe_child(&cur, a)?;
            self.cache.insert(&self.stack.ids[0], a, f.clone());
            cur = self.dir_or_err(f, path)?;
        }
        let f = self.probe_child(&cur, path)?;
        self.cache.insert(&self.stack.ids[0], path, f.clone());
        Ok(f)
    }

    /// Looks up a path that must exist (after the rules checked it): no cache hit is
    /// counted, since the rule's own lookup already counted this one.
    pub fn entry(&mut self, path: &LayerPath) -> Result<Found> {
        let f = match self.cache.get(self.layer(), path) {
            Some(v) => v.clone(),
            None => self.lookup(path)?,
        };
        f.ok_or_else(|| Error::NotFound {
            layer: self.layer().clone(),
            path: path.clone(),
        })
    }

    fn dir_or_err(&self, f: Option<Found>, path: &LayerPath) -> Result<Found> {
        match f {
            Some(f) if f.kind == FileKind::Dir => Ok(f),
            Some(_) => Err(Error::NotADirectory {
                layer: self.layer().clone(),
                path: path.clone(),
            }),
            None => Err(Error::NotFound {
                layer: self.layer().clone(),
                path: path.clone(),
            }),
        }
    }

    fn probe(
        &mut self,
        i: usize,
        parent: &LayerPath,
        name: &str,
        path: &LayerPath,
    ) -> Result<Probe> {
        if !self.cache.host_branch(&self.stack.ids[i]) {
            // the first look into this branch since open resolves its directory in the
            // store (the view's root counted the top branch's)
            self.meter.counts.layer_opens += 1;
        }
        if self.cache.host_dir(&self.stack.ids[i], parent) {
            self.meter.counts.warm_probes += 1;
        } else {
            self.meter.counts.probes += 1;
        }
        let p = self.format.probe(&self.stack.host(i, parent), name)?;
        let stack = self.stack;
        self.meter.step(|| {
            let what = match p {
                Probe::Missing => "miss",
                Probe::Whiteout => "whiteout",
                Probe::Entry {
                    kind: FileKind::Dir,
                    opaque: true,
                    ..
                } => "opaque dir",
                Probe::Entry { metacopy: true, .. } => "metacopy file",
                Probe::Entry { kind, .. } => kind.as_str(),
            };
            format!("probe layer {} for {path}: {what}", stack.ids[i])
        });
        Ok(p)
    }

    /// Looks `path` up in its parent directory `parent` (already resolved), probing the
    /// parent's branches top down.
    pub fn probe_child(&mut self, parent: &Found, path: &LayerPath) -> Result<Option<Found>> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(Some(Found::root(self.stack)));
        };
        let mut found: Option<Found> = None;
        for &i in &parent.layers {
            match (self.probe(i, &dir, name, path)?, found.as_mut()) {
                (Probe::Missing, _) => {}
                (Probe::Whiteout, None) => return Ok(None),
                (Probe::Whiteout, Some(_)) => break,
                (
                    Probe::Entry {
                        kind: FileKind::Dir,
                        opaque,
                        ..
                    },
                    None,
                ) => {
                    found = Some(Found {
                        kind: FileKind::Dir,
                        top: i,
                        layers: vec![i],
                        data: None,
                    });
                    if opaque {
                        break;
                    }
                }
                (
                    Probe::Entry {
                        kind: FileKind::Dir,
                        opaque,
                        ..
                    },
                    Some(f),
                ) if f.kind == FileKind::Dir => {
                    f.layers.push(i);
                    if opaque {
                        break;
                    }
                }
                (Probe::Entry { kind, metacopy, .. }, None) => {
                    let f = Found {
                        kind,
                        top: i,
                        layers: Vec::new(),
                        data: None,
                    };
                    if kind == FileKind::File && metacopy {
                        found = Some(f);
                    } else {
                        return Ok(Some(f));
                    }
                }
                (
                    Probe::Entry {
                        kind: FileKind::File,
                        metacopy,
                        ..
                    },
                    Some(f),
                ) if f.kind == FileKind::File => {
                    if !metacopy {
                        f.data = Some(i);
                        break;
                    }
                }
                (Probe::Entry { .. }, Some(_)) => break,
            }
        }
        if let Some(f) = &found {
            if f.kind == FileKind::File && f.data.is_none() {
                return Err(Error::Corrupt {
                    path: self.stack.host(f.top, path),
                    detail: "metacopy file with no lower file holding its data".into(),
                });
            }
        }
        Ok(found)
    }

    /// True when a branch below the top one shows an entry at `path` once the top
    /// branch's own entry is set aside: a deletion there needs a whiteout, a directory
    /// put there must be opaque. `parent` is the resolved parent directory.
    pub fn lower_has(&mut self, parent: &Found, path: &LayerPath) -> Result<bool> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(self.stack.dirs.len() > 1);
        };
        for &i in parent.layers.iter().filter(|&&i| i != 0) {
            match self.probe(i, &dir, name, path)? {
                Probe::Missing => {}
                Probe::Whiteout => return Ok(false),
                Probe::Entry { .. } => return Ok(true),
            }
        }
        Ok(false)
    }

    /// The merged listing of the directory `dir` at `path`: every branch merged into it,
    /// top entries winning, whiteouts applied, markers skipped; sorted by name. Every
    /// host entry read (markers and housekeeping entries included) counts as one entry
    /// scanned. Within one branch an entry wins over a whiteout of the same name (only a
    /// format that keeps whiteouts beside entries can hold both), as in [`Walk::probe_child`].
    pub fn merge_dir(&mut self, dir: &Found, path: &LayerPath) -> Result<Vec<DirEntry>> {
        let mut seen: BTreeMap<String, Option<FileKind>> = BTreeMap::new();
        for &i in &dir.layers {
            let items = self.format.list(&self.stack.host(i, path))?;
            self.cache.host_dir(&self.stack.ids[i], path);
            self.meter.counts.entries_scanned += items.len() as u64;
            let n = items.len();
            let stack = self.stack;
            self.meter
                .step(|| format!("readdir layer {} {path}: {n} entries", stack.ids[i]));
            let mut whiteouts = Vec::new();
            for item in items {
                match item {
                    Listed::Skip => {}
                    Listed::Whiteout(name) => whiteouts.push(name),
                    Listed::Entry(name, kind) => {
                        seen.entry(name).or_insert(Some(kind));
                    }
                }
            }
            for name in whiteouts {
                seen.entry(name).or_insert(None);
            }
        }
        Ok(seen
            .into_iter()
            .filter_map(|(name, kind)| kind.map(|kind| DirEntry { name, kind }))
            .collect())
    }
}
