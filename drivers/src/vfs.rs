//! vfs: every layer is a full directory tree; a new layer is a deep copy of its parent, as
//! Docker's vfs driver does. No copy-on-write at all: the simplest, slowest, most
//! space-hungry driver, and the baseline the others are measured against.
//!
//! Layout: `<root>/vfs/dir/<id>/` holds a layer's whole tree; a copy being made lives in
//! `<root>/vfs/tmp/<id>/` until it is complete and renamed into place, then the layer table
//! names it. Lookup is one probe: one directory tree, no stack.

use crate::backend::{At, Backend, Cx, Lifecycle, Node, Rename};
use crate::hostfs;
use crate::options::OptionSpec;
use crate::store::Store;
use crate::warm::WarmCache;
use layerlab_core::{
    DirEntry, Error, FileKind, LayerId, LayerInfo, LayerPath, Metadata, Result, Semantics, Usage,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The vfs backend.
#[derive(Debug)]
pub struct Vfs {
    warm: WarmCache,
}

impl Vfs {
    fn base(root: &Path) -> PathBuf {
        root.join("vfs")
    }

    /// The host directory holding a layer's tree.
    pub fn layer_dir(store: &Store, id: &LayerId) -> PathBuf {
        Self::base(store.root()).join("dir").join(id.dir_name())
    }

    fn host(store: &Store, at: At<'_>) -> PathBuf {
        Self::layer_dir(store, at.layer).join(at.path.relative())
    }

    /// Removes the entry at `at` with `rm` (`remove_file`, `remove_dir`).
    fn remove(
        &mut self,
        cx: &mut Cx<'_>,
        at: At<'_>,
        rm: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> Result<()> {
        let host = Self::host(cx.store, at);
        self.warm.forget(at.layer, at.path);
        rm(&host).map_err(|e| Error::io(&host, e))?;
        changed(cx);
        Ok(())
    }

    fn sweep(store: &Store) -> Result<()> {
        let base = Self::base(store.root());
        hostfs::remove_tree(&base.join("tmp"))?;
        std::fs::create_dir_all(base.join("tmp")).map_err(|e| Error::io(base.join("tmp"), e))?;
        for name in hostfs::list_names(&base.join("dir"))? {
            let known = store
                .table()
                .infos()
                .iter()
                .any(|i| i.id.dir_name() == name);
            if !known {
                hostfs::remove_tree(&base.join("dir").join(name))?;
            }
        }
        Ok(())
    }
}

/// Makes a new entry whole: `make` creates it (with its owner and mode) at a staging name
/// in `vfs/tmp` (swept on open), then it is renamed to `path`, so a failure or a crash
/// leaves the view without it, never with a half-made entry.
fn add_staged(cx: &mut Cx<'_>, at: At<'_>, make: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let stage = Vfs::base(cx.store.root())
        .join("tmp")
        .join(format!("new.{}", std::process::id()));
    let dst = Vfs::host(cx.store, at);
    let made = make(&stage).and_then(|()| hostfs::rename(&stage, &dst));
    if made.is_err() && std::fs::remove_file(&stage).is_err() {
        let _ = hostfs::remove_tree(&stage);
    }
    made?;
    changed(cx);
    Ok(())
}

fn changed(cx: &mut Cx<'_>) {
    cx.meter.counts.metadata_writes += 1;
}

impl Lifecycle for Vfs {
    const NAME: &'static str = "vfs";
    const DESCRIPTION: &'static str =
        "every layer a full copy of its parent (Docker's vfs): no copy-on-write, one probe";
    const OPTIONS: &'static [OptionSpec] = &[];

    fn init(cx: &mut Cx<'_>) -> Result<Self> {
        let base = Self::base(cx.store.root());
        for d in ["dir", "tmp"] {
            std::fs::create_dir_all(base.join(d)).map_err(|e| Error::io(base.join(d), e))?;
        }
        Ok(Vfs {
            warm: WarmCache::default(),
        })
    }

    fn open(cx: &mut Cx<'_>) -> Result<Self> {
        if cx.store.writable().is_ok() {
            Self::sweep(cx.store)?;
        }
        Ok(Vfs {
            warm: WarmCache::default(),
        })
    }

    fn semantics(&self) -> Semantics {
        Semantics::PLAIN
    }

    fn layer_data(store: &Store) -> Result<Option<crate::fsck::LayerData>> {
        let mut d = crate::fsck::LayerData::default();
        let dir = Self::base(store.root()).join("dir");
        d.scan(&dir, store.table(), LayerId::dir_name, &[], true)?;
        Ok(Some(d))
    }

    /// A copy being made lives in `tmp/` until it is renamed into place: anything there
    /// between commands is the leftover of an interrupted `layer create`.
    fn check(cx: &mut Cx<'_>, repair: bool, report: &mut crate::fsck::CheckReport) -> Result<()> {
        let root = cx.store.root();
        let tmp = Self::base(root).join("tmp");
        crate::fsck::check_scratch_dir(report, root, None, &tmp, 0o755, repair)
    }

    fn make_layer(&mut self, cx: &mut Cx<'_>, new: &LayerInfo) -> Result<()> {
        let (id, parent) = (&new.id, new.parent.as_ref());
        let tmp = Self::base(cx.store.root()).join("tmp").join(id.dir_name());
        hostfs::remove_tree(&tmp)?;
        match parent {
            Some(p) => {
                let src = Self::layer_dir(cx.store, p);
                cx.meter
                    .step(|| format!("vfs: copy the whole tree of {p} into new layer {id}"));
                let before = cx.meter.counts;
                if let Err(e) = hostfs::copy_tree(&src, &tmp, cx.meter) {
                    let _ = hostfs::remove_tree(&tmp);
                    return Err(e);
                }
                let c = cx.meter.counts.since(&before);
                cx.meter.step(|| {
                    format!(
                        "vfs: copied {} entries, {} bytes",
                        c.metadata_writes, c.bytes_copied
                    )
                });
            }
            None => {
                hostfs::create_dir(&tmp, 0o755)?;
                changed(cx);
            }
        }
        let dst = Self::layer_dir(cx.store, id);
        hostfs::remove_tree(&dst)?;
        std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
        crate::store::fsync_dir(&Self::base(cx.store.root()).join("dir"))?;
        cx.meter.counts.entry_fsyncs += 1;
        Ok(())
    }

    fn drop_layer(&mut self, cx: &mut Cx<'_>, id: &LayerId) -> Result<()> {
        self.warm.forget_layer(id);
        hostfs::remove_tree(&Self::layer_dir(cx.store, id))
    }

    fn usage(&mut self, cx: &mut Cx<'_>, layer: &LayerId) -> Result<Usage> {
        let (bytes, inodes, disk) = hostfs::tree_usage(&Self::layer_dir(cx.store, layer))?;
        let mut details = BTreeMap::new();
        details.insert("disk_bytes".to_string(), disk);
        Ok(Usage {
            bytes,
            inodes,
            details,
        })
    }

    fn facts(&self, store: &Store) -> Result<(PathBuf, Vec<(String, String)>)> {
        Ok((
            Self::base(store.root()),
            vec![
                ("layers".into(), store.table().infos().len().to_string()),
                (
                    "copy-on-write".into(),
                    "none: a child is a full copy".into(),
                ),
            ],
        ))
    }
}

impl Backend for Vfs {
    fn resolve(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Option<FileKind>> {
        self.warm.lookup(at.layer, at.path, cx.meter);
        let dir = Self::layer_dir(cx.store, at.layer);
        for a in at.path.ancestors().iter().filter(|a| !a.is_root()) {
            match hostfs::lstat(&dir.join(a.relative()))? {
                None => {
                    return Err(Error::NotFound {
                        layer: at.layer.clone(),
                        path: at.path.clone(),
                    })
                }
                Some(md) if md.is_dir() => {}
                Some(_) => {
                    return Err(Error::NotADirectory {
                        layer: at.layer.clone(),
                        path: at.path.clone(),
                    })
                }
            }
        }
        let host = dir.join(at.path.relative());
        Ok(hostfs::lstat(&host)?.and_then(|md| hostfs::kind_of(&md)))
    }

    fn is_empty_dir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<bool> {
        let host = Self::host(cx.store, at);
        let mut it = std::fs::read_dir(&host).map_err(|e| Error::io(&host, e))?;
        cx.meter.counts.entries_scanned += 1;
        Ok(it.next().is_none())
    }

    fn stat(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Metadata> {
        let host = Self::host(cx.store, at);
        let md = std::fs::symlink_metadata(&host).map_err(|e| Error::io(&host, e))?;
        hostfs::metadata(&host, &md, at.layer)
    }

    fn read(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, len: u64) -> Result<Vec<u8>> {
        let data = hostfs::read_at(&Self::host(cx.store, at), offset, len)?;
        cx.meter.counts.reads += 1;
        cx.meter.counts.bytes_read += data.len() as u64;
        Ok(data)
    }

    fn readdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<DirEntry>> {
        let host = Self::host(cx.store, at);
        let names = hostfs::list_names(&host)?;
        cx.meter.counts.entries_scanned += names.len() as u64;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let p = host.join(&name);
            if let Some(kind) = hostfs::lstat(&p)?.and_then(|md| hostfs::kind_of(&md)) {
                out.push(DirEntry { name, kind });
            }
        }
        Ok(out)
    }

    fn create(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        add_staged(cx, at, |stage| hostfs::create_file(stage, mode).map(drop))
            .map_err(|e| hostfs::no_space(e, at.layer, at.path))
    }

    fn write(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, data: &[u8]) -> Result<()> {
        hostfs::write_at(&Self::host(cx.store, at), offset, data)
            .map_err(|e| hostfs::no_space(e, at.layer, at.path))?;
        cx.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn replace(&mut self, cx: &mut Cx<'_>, at: At<'_>, data: &[u8]) -> Result<()> {
        let host = Self::host(cx.store, at);
        let linked =
            hostfs::lstat(&host)?.is_some_and(|md| std::os::unix::fs::MetadataExt::nlink(&md) > 1);
        if linked {
            // a staged file would leave the other links with the old content
            self.write(cx, at, 0, data)?;
            return self.truncate(cx, at, data.len() as u64);
        }
        let stage = Self::base(cx.store.root())
            .join("tmp")
            .join(format!("replace.{}", std::process::id()));
        hostfs::replace_staged(&host, &stage, &host, data)
            .map_err(|e| hostfs::no_space(e, at.layer, at.path))?;
        cx.meter.counts.bytes_written += data.len() as u64;
        // a new staged file's first fsync
        cx.meter.counts.entry_fsyncs += 1;
        changed(cx);
        Ok(())
    }

    fn append(&mut self, cx: &mut Cx<'_>, at: At<'_>, data: &[u8]) -> Result<()> {
        hostfs::append(&Self::host(cx.store, at), data)
            .map_err(|e| hostfs::no_space(e, at.layer, at.path))?;
        cx.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn truncate(&mut self, cx: &mut Cx<'_>, at: At<'_>, size: u64) -> Result<()> {
        hostfs::truncate(&Self::host(cx.store, at), size)
            .map_err(|e| hostfs::no_space(e, at.layer, at.path))?;
        changed(cx);
        Ok(())
    }

    fn mkdir(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        add_staged(cx, at, |stage| hostfs::create_dir(stage, mode))
            .map_err(|e| hostfs::no_space(e, at.layer, at.path))
    }

    fn symlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, target: &str) -> Result<()> {
        add_staged(cx, at, |stage| hostfs::create_symlink(target, stage))
            .map_err(|e| hostfs::no_space(e, at.layer, at.path))
    }

    fn hardlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, existing: &LayerPath) -> Result<()> {
        let host = Self::host(cx.store, at);
        let src = Self::host(cx.store, at.to(existing));
        std::fs::hard_link(&src, &host).map_err(|e| Error::io(&host, e))?;
        changed(cx);
        Ok(())
    }

    fn unlink(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()> {
        self.remove(cx, at, |host| std::fs::remove_file(host))
    }

    fn rmdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()> {
        self.remove(cx, at, |host| std::fs::remove_dir(host))
    }

    fn rename(&mut self, cx: &mut Cx<'_>, mv: Rename<'_>) -> Result<()> {
        self.warm.forget(mv.layer, mv.from);
        self.warm.forget(mv.layer, mv.to);
        let src = Self::host(cx.store, mv.source());
        let dst = Self::host(cx.store, mv.dest());
        std::fs::rename(&src, &dst).map_err(|e| Error::io(&dst, e))?;
        changed(cx);
        Ok(())
    }

    fn chmod(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        hostfs::set_mode(&Self::host(cx.store, at), mode)?;
        changed(cx);
        Ok(())
    }

    fn chown(&mut self, cx: &mut Cx<'_>, at: At<'_>, uid: u32, gid: u32) -> Result<()> {
        let host = Self::host(cx.store, at);
        let md = std::fs::symlink_metadata(&host).map_err(|e| Error::io(&host, e))?;
        hostfs::set_owner(&host, uid, gid)?;
        // chown clears setuid/setgid on Linux; layerlab keeps the mode as it was
        if !md.file_type().is_symlink() {
            hostfs::set_mode(
                &host,
                std::os::unix::fs::PermissionsExt::mode(&md.permissions()),
            )?;
        }
        changed(cx);
        Ok(())
    }

    fn set_mtime(&mut self, cx: &mut Cx<'_>, at: At<'_>, secs: i64, nsec: u32) -> Result<()> {
        hostfs::set_mtime(&Self::host(cx.store, at), secs, nsec)?;
        changed(cx);
        Ok(())
    }

    fn mknod(&mut self, cx: &mut Cx<'_>, at: At<'_>, node: Node) -> Result<()> {
        add_staged(cx, at, |stage| {
            hostfs::create_node(stage, node.kind, node.mode, node.rdev)
        })
        .map_err(|e| {
            hostfs::not_permitted(hostfs::no_space(e, at.layer, at.path), at.layer, at.path)
        })
    }

    fn get_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<Option<Vec<u8>>> {
        hostfs::layer_xattr(&Self::host(cx.store, at), name)
    }

    fn list_xattrs(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<String>> {
        hostfs::layer_xattrs(&Self::host(cx.store, at))
    }

    fn set_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str, value: &[u8]) -> Result<()> {
        hostfs::set_layer_xattr(&Self::host(cx.store, at), name, value).map_err(|e| {
            hostfs::not_permitted(hostfs::no_space(e, at.layer, at.path), at.layer, at.path)
        })?;
        changed(cx);
        Ok(())
    }

    fn remove_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<bool> {
        let removed = hostfs::remove_layer_xattr(&Self::host(cx.store, at), name)?;
        if removed {
            changed(cx);
        }
        Ok(removed)
    }
}
