//! The reference model: the union semantics of docs/DESIGN.md section 3, in memory, written
//! for obviousness rather than speed. Every layer keeps its whole view; a child starts as a
//! clone of its parent's. It is the oracle the conformance suite and the property tests
//! compare every driver with, configured with the driver's [`Semantics`].

use crate::rules::{self, Resolve};
use crate::{
    Change, DirEntry, DriverStatus, Error, FileKind, LayerDriver, LayerId, LayerInfo, LayerPath,
    LayerState, LowerDirRename, Metadata, Meter, Provenance, Result, Semantics, Usage, MODE_MASK,
    SYMLINK_MODE,
};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Body {
    Dir,
    File(u64),
    Symlink(String),
    /// A device node or fifo, with its device number.
    Special(FileKind, u64),
}

/// Times and extended attributes: on the inode for a file (hard links share them), on the
/// node for everything else.
#[derive(Debug, Clone, Default)]
struct Attrs {
    /// The mtime last set by `set_mtime`, until something changes it again (a write, an
    /// entry added to or removed from a directory): the model predicts only set times.
    mtime: Option<(i64, u32)>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone)]
struct Node {
    body: Body,
    mode: u32,
    uid: u32,
    gid: u32,
    /// The layer that last changed this entry or anything under it (union provenance).
    provider: LayerId,
    /// The layer where this directory was made (renaming one made below is EXDEV on
    /// overlay-like drivers).
    made_in: LayerId,
    /// Times and xattrs of anything but a file.
    attrs: Attrs,
}

#[derive(Debug, Clone)]
struct Inode {
    data: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    attrs: Attrs,
}

#[derive(Debug, Clone)]
struct ModelLayer {
    parent: Option<LayerId>,
    state: LayerState,
    depth: usize,
    nodes: BTreeMap<LayerPath, Node>,
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
}

/// The in-memory oracle.
#[derive(Debug, Clone)]
pub struct ReferenceModel {
    semantics: Semantics,
    layers: BTreeMap<LayerId, ModelLayer>,
    meter: Meter,
}

impl ReferenceModel {
    /// A model that predicts a driver with these semantics.
    pub fn new(semantics: Semantics) -> Self {
        ReferenceModel {
            semantics,
            layers: BTreeMap::new(),
            meter: Meter::new(),
        }
    }

    fn get(&self, id: &LayerId) -> Result<&ModelLayer> {
        self.layers
            .get(id)
            .ok_or_else(|| Error::NoSuchLayer { layer: id.clone() })
    }

    fn active(&mut self, id: &LayerId, path: &LayerPath) -> Result<()> {
        let l = self.get(id)?;
        rules::ensure_active(&info(id, l), path)
    }

    fn layer_mut(&mut self, id: &LayerId) -> Result<&mut ModelLayer> {
        self.layers
            .get_mut(id)
            .ok_or_else(|| Error::NoSuchLayer { layer: id.clone() })
    }

    /// Marks `path` (if present) and its ancestors as provided by `id`.
    fn touch(&mut self, id: &LayerId, path: &LayerPath) -> Result<()> {
        let l = self.layer_mut(id)?;
        let mut all = path.ancestors();
        all.push(path.clone());
        for p in all {
            if let Some(n) = l.nodes.get_mut(&p) {
                n.provider = id.clone();
            }
        }
        Ok(())
    }

    fn node(&self, id: &LayerId, path: &LayerPath) -> Result<&Node> {
        self.get(id)?
            .nodes
            .get(path)
            .ok_or_else(|| Error::NotFound {
                layer: id.clone(),
                path: path.clone(),
            })
    }

    fn ino(&self, id: &LayerId, path: &LayerPath) -> Result<u64> {
        match self.node(id, path)?.body {
            Body::File(ino) => Ok(ino),
            _ => Err(Error::InvalidArgument {
                layer: id.clone(),
                path: path.clone(),
                reason: "not a regular file".into(),
            }),
        }
    }

    fn insert(&mut self, id: &LayerId, path: &LayerPath, body: Body, mode: u32) -> Result<()> {
        let l = self.layer_mut(id)?;
        let mode = match body {
            Body::Symlink(_) => SYMLINK_MODE,
            _ => mode & MODE_MASK,
        };
        let body = match body {
            Body::File(_) => {
                let ino = l.next_ino;
                l.next_ino += 1;
                l.inodes.insert(
                    ino,
                    Inode {
                        data: Vec::new(),
                        mode,
                        uid: 0,
                        gid: 0,
                        nlink: 1,
                        attrs: Attrs::default(),
                    },
                );
                Body::File(ino)
            }
            other => other,
        };
        l.nodes.insert(
            path.clone(),
            Node {
                body,
                mode,
                uid: 0,
                gid: 0,
                provider: id.clone(),
                made_in: id.clone(),
                attrs: Attrs::default(),
            },
        );
        self.dir_changed(id, path)?;
        self.touch(id, path)
    }

    /// An entry was added to or removed from `path`'s directory: its mtime is now.
    fn dir_changed(&mut self, id: &LayerId, path: &LayerPath) -> Result<()> {
        let parent = path.parent().unwrap_or_else(LayerPath::root);
        if let Some(n) = self.layer_mut(id)?.nodes.get_mut(&parent) {
            n.attrs.mtime = None;
        }
        Ok(())
    }

    /// The attributes of the entry at `path` (the inode's for a file).
    fn attrs_mut(&mut self, id: &LayerId, path: &LayerPath) -> Result<&mut Attrs> {
        let l = self.layer_mut(id)?;
        let n = l.nodes.get_mut(path).ok_or_else(|| Error::NotFound {
            layer: id.clone(),
            path: path.clone(),
        })?;
        match n.body {
            Body::File(ino) => {
                l.inodes
                    .get_mut(&ino)
                    .map(|i| &mut i.attrs)
                    .ok_or_else(|| Error::NotFound {
                        layer: id.clone(),
                        path: path.clone(),
                    })
            }
            _ => Ok(&mut n.attrs),
        }
    }

    fn attrs(&self, id: &LayerId, path: &LayerPath) -> Result<&Attrs> {
        let l = self.get(id)?;
        let n = self.node(id, path)?;
        match n.body {
            Body::File(ino) => {
                l.inodes
                    .get(&ino)
                    .map(|i| &i.attrs)
                    .ok_or_else(|| Error::NotFound {
                        layer: id.clone(),
                        path: path.clone(),
                    })
            }
            _ => Ok(&n.attrs),
        }
    }

    /// The mtime the model predicts for an entry: the one last set with `set_mtime`, unless
    /// something changed the entry (or, for a directory, its entries) since. `None` when
    /// the entry is missing or its mtime is whatever the clock said.
    pub fn known_mtime(&self, id: &LayerId, path: &LayerPath) -> Option<(i64, u32)> {
        self.attrs(id, path).ok().and_then(|a| a.mtime)
    }

    fn drop_node(l: &mut ModelLayer, path: &LayerPath) {
        if let Some(Node {
            body: Body::File(ino),
            ..
        }) = l.nodes.remove(path)
        {
            if let Some(i) = l.inodes.get_mut(&ino) {
                i.nlink -= 1;
                if i.nlink == 0 {
                    l.inodes.remove(&ino);
                }
            }
        }
    }

    fn children<'a>(
        l: &'a ModelLayer,
        dir: &LayerPath,
    ) -> impl Iterator<Item = (&'a LayerPath, &'a Node)> {
        let dir = dir.clone();
        l.nodes
            .iter()
            .filter(move |(p, _)| p.parent().as_ref() == Some(&dir))
    }

    fn file_op(
        &mut self,
        id: &LayerId,
        path: &LayerPath,
        f: impl FnOnce(&mut Vec<u8>) -> bool,
    ) -> Result<()> {
        self.active(id, path)?;
        rules::need_file(self, id, path)?;
        let ino = self.ino(id, path)?;
        let l = self.layer_mut(id)?;
        if let Some(i) = l.inodes.get_mut(&ino) {
            if f(&mut i.data) {
                i.attrs.mtime = None;
            }
        }
        self.touch(id, path)
    }
}

fn info(id: &LayerId, l: &ModelLayer) -> LayerInfo {
    LayerInfo {
        id: id.clone(),
        parent: l.parent.clone(),
        state: l.state,
        depth: l.depth,
    }
}

impl Resolve for ReferenceModel {
    fn resolve(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Option<FileKind>> {
        let l = self.get(layer)?;
        for a in path.ancestors() {
            match l.nodes.get(&a).map(|n| &n.body) {
                None => {
                    return Err(Error::NotFound {
                        layer: layer.clone(),
                        path: path.clone(),
                    })
                }
                Some(Body::Dir) => {}
                Some(_) => {
                    return Err(Error::NotADirectory {
                        layer: layer.clone(),
                        path: path.clone(),
                    })
                }
            }
        }
        Ok(l.nodes.get(path).map(|n| kind_of(&n.body)))
    }

    fn is_empty_dir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<bool> {
        let l = self.get(layer)?;
        Ok(Self::children(l, path).next().is_none())
    }
}

/// A file offset or size `what` as an index of the model's in-memory content
/// (`InvalidArgument` where it does not fit).
fn in_memory(layer: &LayerId, path: &LayerPath, v: u64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::InvalidArgument {
        layer: layer.clone(),
        path: path.clone(),
        reason: format!("{what} too large"),
    })
}

fn kind_of(b: &Body) -> FileKind {
    match b {
        Body::Dir => FileKind::Dir,
        Body::File(_) => FileKind::File,
        Body::Symlink(_) => FileKind::Symlink,
        Body::Special(kind, _) => *kind,
    }
}

impl LayerDriver for ReferenceModel {
    fn name(&self) -> &'static str {
        "model"
    }

    fn semantics(&self) -> Semantics {
        self.semantics
    }

    fn meter(&self) -> &Meter {
        &self.meter
    }

    fn meter_mut(&mut self) -> &mut Meter {
        &mut self.meter
    }

    fn create_layer(&mut self, id: &LayerId, parent: Option<&LayerId>) -> Result<()> {
        if self.layers.contains_key(id) {
            return Err(Error::LayerExists { layer: id.clone() });
        }
        let from = parent.map(|p| self.get(p).map(|pl| (p, pl))).transpose()?;
        let depth = rules::new_layer_depth(
            id,
            from.map(|(p, pl)| (p, pl.state, pl.depth)),
            self.semantics.max_depth,
            "model",
        )?;
        let mut layer = match from {
            Some((p, pl)) => {
                let mut l = pl.clone();
                l.parent = Some(p.clone());
                l.depth = depth;
                l
            }
            None => ModelLayer {
                parent: None,
                state: LayerState::Active,
                depth,
                nodes: BTreeMap::new(),
                inodes: BTreeMap::new(),
                next_ino: 1,
            },
        };
        layer.state = LayerState::Active;
        let root = layer.nodes.entry(LayerPath::root()).or_insert(Node {
            body: Body::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            provider: id.clone(),
            made_in: id.clone(),
            attrs: Attrs::default(),
        });
        root.provider = id.clone();
        self.layers.insert(id.clone(), layer);
        Ok(())
    }

    fn commit(&mut self, id: &LayerId) -> Result<()> {
        self.layer_mut(id)?.state = LayerState::Committed;
        Ok(())
    }

    fn remove_layer(&mut self, id: &LayerId) -> Result<()> {
        self.get(id)?;
        let children: Vec<String> = self
            .layers
            .iter()
            .filter(|(_, l)| l.parent.as_ref() == Some(id))
            .map(|(c, _)| c.to_string())
            .collect();
        if !children.is_empty() {
            return Err(Error::HasChildren {
                layer: id.clone(),
                children: children.join(", "),
            });
        }
        self.layers.remove(id);
        Ok(())
    }

    fn layers(&self) -> Result<Vec<LayerInfo>> {
        Ok(self.layers.iter().map(|(id, l)| info(id, l)).collect())
    }

    fn layer(&self, id: &LayerId) -> Result<LayerInfo> {
        Ok(info(id, self.get(id)?))
    }

    fn stat(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Metadata> {
        rules::need_entry(self, layer, path)?;
        let l = self.get(layer)?;
        let n = self.node(layer, path)?;
        let provider = match self.semantics.provenance {
            Provenance::Union => n.provider.clone(),
            Provenance::Own => layer.clone(),
        };
        let mut md = Metadata::new(kind_of(&n.body), n.mode, n.uid, n.gid, provider);
        if let Some((s, ns)) = self.known_mtime(layer, path) {
            md.mtime = s;
            md.mtime_nsec = ns;
        }
        match &n.body {
            Body::Dir => {}
            Body::Special(_, rdev) => md.rdev = *rdev,
            Body::Symlink(t) => {
                md.size = t.len() as u64;
                md.target = Some(t.clone());
            }
            Body::File(ino) => {
                if let Some(i) = l.inodes.get(ino) {
                    md.size = i.data.len() as u64;
                    md.mode = i.mode;
                    md.uid = i.uid;
                    md.gid = i.gid;
                    md.nlink = i.nlink;
                }
            }
        }
        Ok(md)
    }

    fn read(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        rules::need_file(self, layer, path)?;
        let ino = self.ino(layer, path)?;
        let data = self
            .get(layer)?
            .inodes
            .get(&ino)
            .map(|i| i.data.as_slice())
            .unwrap_or_default();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            .min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn readdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<DirEntry>> {
        rules::need_dir(self, layer, path)?;
        let l = self.get(layer)?;
        Ok(Self::children(l, path)
            .filter_map(|(p, n)| {
                p.file_name().map(|name| DirEntry {
                    name: name.to_string(),
                    kind: kind_of(&n.body),
                })
            })
            .collect())
    }

    fn create(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        self.active(layer, path)?;
        rules::need_absent(self, layer, path)?;
        self.insert(layer, path, Body::File(0), mode)
    }

    fn write(&mut self, layer: &LayerId, path: &LayerPath, offset: u64, data: &[u8]) -> Result<()> {
        let off = in_memory(layer, path, offset, "offset")?;
        self.file_op(layer, path, |d| {
            // pwrite(2) of nothing changes nothing, even past the end, nor the mtime
            if data.is_empty() {
                return false;
            }
            if d.len() < off + data.len() {
                d.resize(off + data.len(), 0);
            }
            d[off..off + data.len()].copy_from_slice(data);
            true
        })
    }

    fn append(&mut self, layer: &LayerId, path: &LayerPath, data: &[u8]) -> Result<()> {
        self.file_op(layer, path, |d| {
            d.extend_from_slice(data);
            !data.is_empty()
        })
    }

    fn truncate(&mut self, layer: &LayerId, path: &LayerPath, size: u64) -> Result<()> {
        let size = in_memory(layer, path, size, "size")?;
        self.file_op(layer, path, |d| {
            d.resize(size, 0);
            true
        })
    }

    fn mkdir(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        self.active(layer, path)?;
        rules::need_absent(self, layer, path)?;
        self.insert(layer, path, Body::Dir, mode)
    }

    fn symlink(&mut self, layer: &LayerId, target: &str, link: &LayerPath) -> Result<()> {
        self.active(layer, link)?;
        rules::check_symlink_target(layer, link, target)?;
        rules::need_absent(self, layer, link)?;
        self.insert(layer, link, Body::Symlink(target.to_string()), SYMLINK_MODE)
    }

    fn hardlink(&mut self, layer: &LayerId, existing: &LayerPath, link: &LayerPath) -> Result<()> {
        self.active(layer, link)?;
        rules::check_hardlink(self, layer, existing, link)?;
        let ino = self.ino(layer, existing)?;
        let l = self.layer_mut(layer)?;
        let mut node = match l.nodes.get(existing) {
            Some(n) => n.clone(),
            None => {
                return Err(Error::NotFound {
                    layer: layer.clone(),
                    path: existing.clone(),
                })
            }
        };
        node.provider = layer.clone();
        l.nodes.insert(link.clone(), node);
        if let Some(i) = l.inodes.get_mut(&ino) {
            i.nlink += 1;
        }
        self.dir_changed(layer, link)?;
        self.touch(layer, existing)?;
        self.touch(layer, link)
    }

    fn unlink(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        self.active(layer, path)?;
        rules::check_unlink(self, layer, path)?;
        self.touch(layer, path)?;
        self.dir_changed(layer, path)?;
        Self::drop_node(self.layer_mut(layer)?, path);
        Ok(())
    }

    fn rmdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        self.active(layer, path)?;
        rules::check_rmdir(self, layer, path)?;
        self.touch(layer, path)?;
        self.dir_changed(layer, path)?;
        self.layer_mut(layer)?.nodes.remove(path);
        Ok(())
    }

    fn rename(&mut self, layer: &LayerId, from: &LayerPath, to: &LayerPath) -> Result<()> {
        self.active(layer, from)?;
        let plan = rules::plan_rename(self, layer, from, to)?;
        if plan.noop {
            return Ok(());
        }
        // POSIX: two names of the same file: rename does nothing
        if let (Ok(a), Ok(b)) = (self.ino(layer, from), self.ino(layer, to)) {
            if a == b {
                return Ok(());
            }
        }
        let refused = match self.semantics.lower_dir_rename {
            LowerDirRename::Moves => false,
            LowerDirRename::CrossDevice => true,
            LowerDirRename::CrossDeviceUnlessEmpty => !self.is_empty_dir(layer, from)?,
        };
        if plan.source == FileKind::Dir && refused && &self.node(layer, from)?.made_in != layer {
            return Err(Error::CrossDevice {
                layer: layer.clone(),
                path: from.clone(),
                why: "directory exists in a lower layer".into(),
            });
        }
        rules::check_rename_over(self, layer, to, &plan)?;
        self.touch(layer, from)?;
        self.dir_changed(layer, from)?;
        self.dir_changed(layer, to)?;
        let l = self.layer_mut(layer)?;
        if plan.replaces.is_some() {
            Self::drop_node(l, to);
        }
        let moved: Vec<LayerPath> = l
            .nodes
            .keys()
            .filter(|p| *p == from || from.is_ancestor_of(p))
            .cloned()
            .collect();
        for old in moved {
            if let (Some(node), Some(new)) = (l.nodes.remove(&old), old.rebase(from, to)) {
                l.nodes.insert(new, node);
            }
        }
        if let Some(n) = l.nodes.get_mut(to) {
            n.made_in = layer.clone();
        }
        self.touch(layer, to)
    }

    fn chmod(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        self.active(layer, path)?;
        rules::check_chmod(self, layer, path)?;
        let l = self.layer_mut(layer)?;
        if let Some(n) = l.nodes.get_mut(path) {
            n.mode = mode & MODE_MASK;
            if let Body::File(ino) = n.body {
                if let Some(i) = l.inodes.get_mut(&ino) {
                    i.mode = mode & MODE_MASK;
                }
            }
        }
        self.touch(layer, path)
    }

    fn chown(&mut self, layer: &LayerId, path: &LayerPath, uid: u32, gid: u32) -> Result<()> {
        self.active(layer, path)?;
        rules::need_entry(self, layer, path)?;
        rules::check_owner(layer, path, uid, gid)?;
        let l = self.layer_mut(layer)?;
        if let Some(n) = l.nodes.get_mut(path) {
            n.uid = uid;
            n.gid = gid;
            if let Body::File(ino) = n.body {
                if let Some(i) = l.inodes.get_mut(&ino) {
                    i.uid = uid;
                    i.gid = gid;
                }
            }
        }
        self.touch(layer, path)
    }

    fn set_mtime(&mut self, layer: &LayerId, path: &LayerPath, secs: i64, nsec: u32) -> Result<()> {
        self.active(layer, path)?;
        rules::need_entry(self, layer, path)?;
        rules::check_mtime(layer, path, nsec)?;
        self.attrs_mut(layer, path)?.mtime = Some((secs, nsec));
        self.touch(layer, path)
    }

    fn mknod(&mut self, layer: &LayerId, path: &LayerPath, node: crate::Node) -> Result<()> {
        self.active(layer, path)?;
        rules::check_mknod(layer, path, node)?;
        rules::need_absent(self, layer, path)?;
        self.insert(layer, path, Body::Special(node.kind, node.rdev), node.mode)
    }

    fn get_xattr(&mut self, layer: &LayerId, path: &LayerPath, name: &str) -> Result<Vec<u8>> {
        self.get(layer)?;
        rules::check_xattr(self, layer, path, name)?;
        self.attrs(layer, path)?
            .xattrs
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NoAttribute {
                layer: layer.clone(),
                path: path.clone(),
                name: name.to_string(),
            })
    }

    fn list_xattrs(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<String>> {
        rules::need_entry(self, layer, path)?;
        Ok(self.attrs(layer, path)?.xattrs.keys().cloned().collect())
    }

    fn set_xattr(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        name: &str,
        value: &[u8],
    ) -> Result<()> {
        self.active(layer, path)?;
        rules::check_xattr(self, layer, path, name)?;
        rules::check_xattr_value(layer, path, value)?;
        self.attrs_mut(layer, path)?
            .xattrs
            .insert(name.to_string(), value.to_vec());
        self.touch(layer, path)
    }

    fn remove_xattr(&mut self, layer: &LayerId, path: &LayerPath, name: &str) -> Result<()> {
        self.active(layer, path)?;
        rules::check_xattr(self, layer, path, name)?;
        if self.attrs_mut(layer, path)?.xattrs.remove(name).is_none() {
            return Err(Error::NoAttribute {
                layer: layer.clone(),
                path: path.clone(),
                name: name.to_string(),
            });
        }
        self.touch(layer, path)
    }

    fn changes(&mut self, layer: &LayerId) -> Result<Vec<Change>> {
        crate::changes::diff_views(self, layer)
    }

    /// The model keeps whole views, so it reports the size of the whole view.
    fn usage(&mut self, layer: &LayerId) -> Result<Usage> {
        let l = self.get(layer)?;
        Ok(Usage {
            bytes: l.inodes.values().map(|i| i.data.len() as u64).sum(),
            inodes: l.nodes.len() as u64,
            details: BTreeMap::new(),
        })
    }

    fn status(&self) -> Result<DriverStatus> {
        Ok(DriverStatus {
            driver: "model".into(),
            root: std::path::PathBuf::new(),
            options: BTreeMap::new(),
            facts: vec![("layers".into(), self.layers.len().to_string())],
        })
    }
}
