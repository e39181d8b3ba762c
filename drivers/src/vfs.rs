//! vfs: every layer is a full directory tree; a new layer is a deep copy of its parent, as
//! Docker's vfs driver does. No copy-on-write at all: the simplest, slowest, most
//! space-hungry driver, and the baseline the others are measured against.
//!
//! Layout: `<root>/vfs/dir/<id>/` holds a layer's whole tree; a copy being made lives in
//! `<root>/vfs/tmp/<id>/` until it is complete and renamed into place, then the layer table
//! names it. Lookup is one probe: one directory tree, no stack.

use crate::hostfs;
use crate::options::OptionSpec;
use crate::registry::StoreDriver;
use crate::store::{Access, Options, Store};
use crate::warm::WarmCache;
use layerlab_core::rules::{self, Resolve};
use layerlab_core::{
    Change, DirEntry, DriverStatus, Error, FileKind, LayerDriver, LayerId, LayerInfo, LayerPath,
    Metadata, Meter, Result, Semantics, Usage,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The vfs driver.
#[derive(Debug)]
pub struct Vfs {
    store: Store,
    meter: Meter,
    warm: WarmCache,
}

impl Vfs {
    fn base(root: &Path) -> PathBuf {
        root.join("vfs")
    }

    /// The host directory holding a layer's tree.
    pub fn layer_dir(&self, id: &LayerId) -> PathBuf {
        Self::base(self.store.root())
            .join("dir")
            .join(id.dir_name())
    }

    fn host(&self, id: &LayerId, path: &LayerPath) -> PathBuf {
        self.layer_dir(id).join(path.relative())
    }

    fn sweep(&self) -> Result<()> {
        let base = Self::base(self.store.root());
        hostfs::remove_tree(&base.join("tmp"))?;
        std::fs::create_dir_all(base.join("tmp")).map_err(|e| Error::io(base.join("tmp"), e))?;
        for name in hostfs::list_names(&base.join("dir"))? {
            let known = self
                .store
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

    /// Looks up a path for a change: the layer must be active.
    fn for_change(&mut self, layer: &LayerId, path: &LayerPath) -> Result<PathBuf> {
        self.store.info_for_change(layer, path)?;
        Ok(self.host(layer, path))
    }

    fn changed(&mut self) {
        self.meter.counts.metadata_writes += 1;
    }
}

impl Resolve for Vfs {
    fn resolve(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Option<FileKind>> {
        self.store.info(layer)?;
        self.warm.lookup(layer, path, &mut self.meter);
        let dir = self.layer_dir(layer);
        for a in path.ancestors().iter().filter(|a| !a.is_root()) {
            match hostfs::lstat(&dir.join(a.relative()))? {
                None => {
                    return Err(Error::NotFound {
                        layer: layer.clone(),
                        path: path.clone(),
                    })
                }
                Some(md) if md.is_dir() => {}
                Some(_) => {
                    return Err(Error::NotADirectory {
                        layer: layer.clone(),
                        path: path.clone(),
                    })
                }
            }
        }
        let host = dir.join(path.relative());
        Ok(hostfs::lstat(&host)?.and_then(|md| hostfs::kind_of(&md)))
    }

    fn is_empty_dir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<bool> {
        let host = self.host(layer, path);
        let mut it = std::fs::read_dir(&host).map_err(|e| Error::io(&host, e))?;
        self.meter.counts.entries_scanned += 1;
        Ok(it.next().is_none())
    }
}

impl StoreDriver for Vfs {
    const NAME: &'static str = "vfs";
    const DESCRIPTION: &'static str =
        "every layer a full copy of its parent (Docker's vfs): no copy-on-write, one probe";
    const OPTIONS: &'static [OptionSpec] = &[];

    fn init(root: &Path, options: Options) -> Result<Self> {
        let options = crate::options::resolve(Self::NAME, Self::OPTIONS, options)?;
        let store = Store::init(root, Self::NAME, options)?;
        let base = Self::base(root);
        for d in ["dir", "tmp"] {
            std::fs::create_dir_all(base.join(d)).map_err(|e| Error::io(base.join(d), e))?;
        }
        Ok(Vfs {
            store,
            meter: Meter::new(),
            warm: WarmCache::default(),
        })
    }

    fn open(root: &Path, access: Access) -> Result<Self> {
        let store = Store::open(root, Self::NAME, access)?;
        let v = Vfs {
            store,
            meter: Meter::new(),
            warm: WarmCache::default(),
        };
        if access == Access::Write {
            v.sweep()?;
        }
        Ok(v)
    }
}

impl LayerDriver for Vfs {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn semantics(&self) -> Semantics {
        Semantics::PLAIN
    }

    fn meter(&self) -> &Meter {
        &self.meter
    }

    fn meter_mut(&mut self) -> &mut Meter {
        &mut self.meter
    }

    fn create_layer(&mut self, id: &LayerId, parent: Option<&LayerId>) -> Result<()> {
        let depth = self.store.check_create(id, parent, None, Self::NAME)?;
        let tmp = Self::base(self.store.root())
            .join("tmp")
            .join(id.dir_name());
        hostfs::remove_tree(&tmp)?;
        match parent {
            Some(p) => {
                let src = self.layer_dir(p);
                self.meter
                    .step(|| format!("vfs: copy the whole tree of {p} into new layer {id}"));
                let before = self.meter.counts;
                if let Err(e) = hostfs::copy_tree(&src, &tmp, &mut self.meter) {
                    let _ = hostfs::remove_tree(&tmp);
                    return Err(e);
                }
                let c = self.meter.counts.since(&before);
                self.meter.step(|| {
                    format!(
                        "vfs: copied {} entries, {} bytes",
                        c.metadata_writes, c.bytes_copied
                    )
                });
            }
            None => {
                hostfs::create_dir(&tmp, 0o755)?;
                self.changed();
            }
        }
        let dst = self.layer_dir(id);
        std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
        crate::store::fsync_dir(&Self::base(self.store.root()).join("dir"))?;
        self.meter.counts.fsyncs += 1;
        let (id2, parent2) = (id.clone(), parent.cloned());
        let r = self.store.update_table(|t| {
            t.insert(id2, parent2, depth);
            Ok(())
        });
        if r.is_err() {
            let _ = hostfs::remove_tree(&dst);
        }
        r
    }

    fn commit(&mut self, id: &LayerId) -> Result<()> {
        self.store.update_table(|t| t.commit(id))
    }

    fn remove_layer(&mut self, id: &LayerId) -> Result<()> {
        self.store.check_remove(id)?;
        self.warm.forget_layer(id);
        let dir = self.layer_dir(id);
        self.store.update_table(|t| {
            t.remove(id);
            Ok(())
        })?;
        hostfs::remove_tree(&dir)
    }

    fn layers(&self) -> Result<Vec<LayerInfo>> {
        Ok(self.store.table().infos())
    }

    fn layer(&self, id: &LayerId) -> Result<LayerInfo> {
        self.store.info(id)
    }

    fn stat(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Metadata> {
        rules::need_entry(self, layer, path)?;
        let host = self.host(layer, path);
        let md = std::fs::symlink_metadata(&host).map_err(|e| Error::io(&host, e))?;
        hostfs::metadata(&host, &md, layer)
    }

    fn read(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        rules::need_file(self, layer, path)?;
        let data = hostfs::read_at(&self.host(layer, path), offset, len)?;
        self.meter.counts.bytes_read += data.len() as u64;
        Ok(data)
    }

    fn readdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<DirEntry>> {
        rules::need_dir(self, layer, path)?;
        let host = self.host(layer, path);
        let names = hostfs::list_names(&host)?;
        self.meter.counts.entries_scanned += names.len() as u64;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let p = host.join(&name);
            if let Some(kind) = hostfs::lstat(&p)?.and_then(|md| hostfs::kind_of(&md)) {
                out.push(DirEntry { name, kind });
            }
        }
        Ok(out)
    }

    fn create(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        let host = self.for_change(layer, path)?;
        rules::need_absent(self, layer, path)?;
        hostfs::create_file(&host, mode).map_err(|e| hostfs::no_space(e, layer, path))?;
        self.changed();
        Ok(())
    }

    fn write(&mut self, layer: &LayerId, path: &LayerPath, offset: u64, data: &[u8]) -> Result<()> {
        let host = self.for_change(layer, path)?;
        rules::need_file(self, layer, path)?;
        hostfs::write_at(&host, offset, data).map_err(|e| hostfs::no_space(e, layer, path))?;
        self.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn append(&mut self, layer: &LayerId, path: &LayerPath, data: &[u8]) -> Result<()> {
        let host = self.for_change(layer, path)?;
        rules::need_file(self, layer, path)?;
        hostfs::append(&host, data).map_err(|e| hostfs::no_space(e, layer, path))?;
        self.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn truncate(&mut self, layer: &LayerId, path: &LayerPath, size: u64) -> Result<()> {
        let host = self.for_change(layer, path)?;
        rules::need_file(self, layer, path)?;
        hostfs::truncate(&host, size).map_err(|e| hostfs::no_space(e, layer, path))?;
        self.changed();
        Ok(())
    }

    fn mkdir(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        let host = self.for_change(layer, path)?;
        rules::need_absent(self, layer, path)?;
        hostfs::create_dir(&host, mode).map_err(|e| hostfs::no_space(e, layer, path))?;
        self.changed();
        Ok(())
    }

    fn symlink(&mut self, layer: &LayerId, target: &str, link: &LayerPath) -> Result<()> {
        let host = self.for_change(layer, link)?;
        rules::check_symlink_target(layer, link, target)?;
        rules::need_absent(self, layer, link)?;
        hostfs::create_symlink(target, &host).map_err(|e| hostfs::no_space(e, layer, link))?;
        self.changed();
        Ok(())
    }

    fn hardlink(&mut self, layer: &LayerId, existing: &LayerPath, link: &LayerPath) -> Result<()> {
        let host = self.for_change(layer, link)?;
        rules::check_hardlink(self, layer, existing, link)?;
        let src = self.host(layer, existing);
        std::fs::hard_link(&src, &host).map_err(|e| Error::io(&host, e))?;
        self.changed();
        Ok(())
    }

    fn unlink(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        let host = self.for_change(layer, path)?;
        rules::check_unlink(self, layer, path)?;
        self.warm.forget(layer, path);
        std::fs::remove_file(&host).map_err(|e| Error::io(&host, e))?;
        self.changed();
        Ok(())
    }

    fn rmdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        let host = self.for_change(layer, path)?;
        rules::check_rmdir(self, layer, path)?;
        self.warm.forget(layer, path);
        std::fs::remove_dir(&host).map_err(|e| Error::io(&host, e))?;
        self.changed();
        Ok(())
    }

    fn rename(&mut self, layer: &LayerId, from: &LayerPath, to: &LayerPath) -> Result<()> {
        let src = self.for_change(layer, from)?;
        let plan = rules::plan_rename(self, layer, from, to)?;
        if plan.noop {
            return Ok(());
        }
        self.warm.forget(layer, from);
        self.warm.forget(layer, to);
        let dst = self.host(layer, to);
        std::fs::rename(&src, &dst).map_err(|e| Error::io(&dst, e))?;
        self.changed();
        Ok(())
    }

    fn chmod(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        let host = self.for_change(layer, path)?;
        rules::check_chmod(self, layer, path)?;
        hostfs::set_mode(&host, mode)?;
        self.changed();
        Ok(())
    }

    fn chown(&mut self, layer: &LayerId, path: &LayerPath, uid: u32, gid: u32) -> Result<()> {
        let host = self.for_change(layer, path)?;
        rules::need_entry(self, layer, path)?;
        let md = std::fs::symlink_metadata(&host).map_err(|e| Error::io(&host, e))?;
        hostfs::set_owner(&host, uid, gid)?;
        // chown clears setuid/setgid on Linux; layerlab keeps the mode as it was
        if !md.file_type().is_symlink() {
            hostfs::set_mode(
                &host,
                std::os::unix::fs::PermissionsExt::mode(&md.permissions()),
            )?;
        }
        self.changed();
        Ok(())
    }

    fn changes(&mut self, layer: &LayerId) -> Result<Vec<Change>> {
        layerlab_core::changes::diff_views(self, layer)
    }

    fn usage(&mut self, layer: &LayerId) -> Result<Usage> {
        self.store.info(layer)?;
        let (bytes, inodes, disk) = hostfs::tree_usage(&self.layer_dir(layer))?;
        let mut details = BTreeMap::new();
        details.insert("disk_bytes".to_string(), disk);
        Ok(Usage {
            bytes,
            inodes,
            details,
        })
    }

    fn status(&self) -> Result<DriverStatus> {
        let layers = self.store.table().infos();
        Ok(DriverStatus {
            driver: Self::NAME.into(),
            root: Self::base(self.store.root()),
            options: self.store.options().clone(),
            facts: vec![
                ("layers".into(), layers.len().to_string()),
                (
                    "copy-on-write".into(),
                    "none: a child is a full copy".into(),
                ),
            ],
        })
    }
}
