//! The `LayerDriver` implementation every union driver shares: the rules first, then each
//! change made in the layer's own branch (copy-up, whiteouts, opaque directories), with the
//! lookup cache kept in step. What differs between drivers comes from the [`Flavor`] (layout)
//! and its [`BranchFormat`] (markers).

use super::copyup::CopyUp;
use super::format::BranchFormat;
use super::lookup::{Found, Stack};
use super::{Flavor, Union};
use crate::hostfs;
use crate::options::OptionSpec;
use crate::registry::StoreDriver;
use crate::store::{Access, Options, Store};
use layerlab_core::rules::{self, Resolve};
use layerlab_core::{
    Change, DirEntry, DriverStatus, Error, FileKind, IoContext, LayerDriver, LayerId, LayerInfo,
    LayerPath, LowerDirRename, Metadata, Meter, PageCache, Provenance, Result, Semantics, Usage,
};
use std::path::Path;
use std::sync::Arc;

impl<F: Flavor> Union<F> {
    /// The checks every change starts with: the store writable, the layer active.
    fn begin(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Arc<Stack>> {
        self.store.info_for_change(layer, path)?;
        self.stack(layer)
    }

    fn parent_of(&mut self, stack: &Stack, path: &LayerPath) -> Result<Found> {
        let parent = path.parent().unwrap_or_else(LayerPath::root);
        self.walk(stack).entry(&parent)
    }

    /// Makes a new entry at `path` in the layer's branch: `make` builds it at a staging
    /// name, then it is put in place (over a whiteout if there is one).
    fn add_entry(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        is_dir: bool,
        make: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        self.copy_up_parents(layer, path)?;
        let stack = self.stack(layer)?;
        let dst = stack.host(0, path);
        let stage = self.stage(layer);
        let r = make(&stage).and_then(|()| self.place(&stage, &dst, is_dir));
        if r.is_err() {
            let _ = hostfs::remove_tree(&stage);
            let _ = std::fs::remove_file(&stage);
        }
        r.map_err(|e| hostfs::no_space(e, layer, path))?;
        self.meter.counts.metadata_writes += 1;
        self.cache.invalidate(layer, path);
        if is_dir {
            // made here: the host has it cached
            self.cache.host_dir(layer, path);
        }
        Ok(())
    }
}

/// The steps of unlink, rmdir and rename; the trait methods wrap them and forget the cached
/// entries of the paths involved when a step fails part way.
impl<F: Flavor> Union<F> {
    fn unlink_entry(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        let stack = self.begin(layer, path)?;
        rules::check_unlink(self, layer, path)?;
        let f = self.walk(&stack).entry(path)?;
        self.copy_up_parents(layer, path)?;
        let dst = stack.host(0, path);
        let lower = if f.top != 0 {
            true
        } else {
            let parent = self.parent_of(&stack, path)?;
            self.walk(&stack).lower_has(&parent, path)?
        };
        if lower {
            self.whiteout(layer, path, &dst)?;
        } else {
            std::fs::remove_file(&dst).at(&dst)?;
            self.meter.counts.metadata_writes += 1;
        }
        self.cache.invalidate(layer, path);
        Ok(())
    }

    fn rmdir_entry(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        let stack = self.begin(layer, path)?;
        rules::check_rmdir(self, layer, path)?;
        let f = self.walk(&stack).entry(path)?;
        self.copy_up_parents(layer, path)?;
        let dst = stack.host(0, path);
        if f.top != 0 {
            self.whiteout(layer, path, &dst)?;
        } else {
            let lower = if f.has_lower() {
                true
            } else {
                let parent = self.parent_of(&stack, path)?;
                self.walk(&stack).lower_has(&parent, path)?
            };
            if lower {
                self.whiteout_dir(layer, path, &dst)?;
            } else {
                let stage = self.stage(layer);
                hostfs::rename(&dst, &stage)?;
                hostfs::remove_tree(&stage)?;
                self.meter.counts.metadata_writes += 1;
            }
        }
        self.cache.invalidate(layer, path);
        Ok(())
    }

    fn rename_entry(&mut self, layer: &LayerId, from: &LayerPath, to: &LayerPath) -> Result<()> {
        let stack = self.begin(layer, from)?;
        let plan = rules::plan_rename(self, layer, from, to)?;
        if plan.noop {
            return Ok(());
        }
        let f = self.walk(&stack).entry(from)?;
        if plan.source == FileKind::Dir && f.has_lower() {
            let below = f.layers.iter().find(|&&i| i != 0).map_or(f.top, |&i| i);
            return Err(Error::CrossDevice {
                layer: layer.clone(),
                path: from.clone(),
                why: format!(
                    "directory exists in lower layer {} ({})",
                    stack.ids[below],
                    F::NO_DIR_RENAME
                ),
            });
        }
        // two names of one file: rename(2) does nothing (POSIX), nothing is copied up; but
        // two lower names are two inodes to overlayfs with index=off: it renames
        if plan.replaces == Some(FileKind::File) && plan.source == FileKind::File {
            let t = self.walk(&stack).entry(to)?;
            let one_inode = F::LOWER_HARDLINKS_ONE_INODE || (f.top == 0 && t.top == 0);
            let a = hostfs::lstat(&stack.host(f.top, from))?;
            let b = hostfs::lstat(&stack.host(t.top, to))?;
            if let (Some(a), Some(b)) = (a, b) {
                use std::os::unix::fs::MetadataExt;
                if one_inode && a.dev() == b.dev() && a.ino() == b.ino() {
                    self.meter
                        .step(|| format!("rename {from} -> {to}: same file, nothing to do"));
                    return Ok(());
                }
            }
        }
        let src = self.copy_up(layer, from, CopyUp::Full)?;
        self.copy_up_parents(layer, to)?;
        let dst = stack.host(0, to);
        let from_parent = self.parent_of(&stack, from)?;
        let lower_from = self.walk(&stack).lower_has(&from_parent, from)?;

        if plan.source == FileKind::Dir {
            let to_parent = self.parent_of(&stack, to)?;
            let into_merge =
                F::Format::OPAQUE_ON_MOVE_INTO_MERGE && to_parent.layers.iter().any(|&i| i != 0);
            if (into_merge || self.walk(&stack).lower_has(&to_parent, to)?)
                && !self.format().is_opaque(&src)?
            {
                self.format().set_opaque(&src)?;
                self.meter.counts.metadata_writes += 1;
                self.meter.step(|| {
                    format!("opaque dir {from} (moving to {to}, over or into a lower directory)")
                });
            }
        }
        let over_dir = plan.replaces == Some(FileKind::Dir)
            && hostfs::lstat(&dst)?.is_some_and(|md| md.is_dir());
        if F::Format::WHITEOUT_IN_PLACE {
            self.move_in_place(
                layer,
                from,
                to,
                plan.source,
                over_dir,
                lower_from,
                &src,
                &dst,
            )?;
        } else {
            self.move_beside(layer, from, over_dir, lower_from, &src, &dst)?;
        }
        self.meter.counts.metadata_writes += 1;
        self.meter.step(|| format!("rename {from} -> {to}"));
        self.cache.invalidate(layer, from);
        self.cache.invalidate(layer, to);
        Ok(())
    }
}

/// The last step of a rename, per kind of branch format.
impl<F: Flavor> Union<F> {
    /// overlayfs: a directory over a directory holding whiteouts empties it first; a
    /// directory cannot replace a whiteout (it is exchanged with it); the old name gets a
    /// whiteout in the same step where the host offers `RENAME_WHITEOUT`.
    #[allow(clippy::too_many_arguments)]
    fn move_in_place(
        &mut self,
        layer: &LayerId,
        from: &LayerPath,
        to: &LayerPath,
        source: FileKind,
        over_dir: bool,
        lower_from: bool,
        src: &Path,
        dst: &Path,
    ) -> Result<()> {
        if source == FileKind::Dir && over_dir {
            self.clear_dir(layer, to, dst)?;
        }
        let dst_whiteout = hostfs::lstat(dst)?.is_some_and(|md| hostfs::is_whiteout(&md));
        if source == FileKind::Dir && dst_whiteout {
            // a directory cannot replace a whiteout: swap them; the whiteout lands at
            // the old name, where it is kept if something below shows through there
            hostfs::rename_exchange(src, dst)?;
            if !lower_from {
                std::fs::remove_file(src).at(src)?;
            } else {
                self.meter.counts.metadata_writes += 1;
                self.meter.step(|| format!("whiteout {from}"));
            }
        } else if lower_from {
            if !hostfs::rename_whiteout(src, dst)? {
                let stage = self.stage(layer);
                self.format().make_whiteout(&stage)?;
                hostfs::rename(src, dst)?;
                hostfs::rename(&stage, src)?;
            }
            self.meter.counts.metadata_writes += 1;
            self.meter.step(|| format!("whiteout {from}"));
        } else {
            hostfs::rename(src, dst)?;
        }
        Ok(())
    }

    /// aufs: the old name's whiteout is made first (the entry still wins over it); a
    /// directory over a directory holding only markers is exchanged with it, and the old
    /// one (now at the old name, hidden by that whiteout or empty) removed; a whiteout of
    /// the new name is removed once the entry is there.
    fn move_beside(
        &mut self,
        layer: &LayerId,
        from: &LayerPath,
        over_dir: bool,
        lower_from: bool,
        src: &Path,
        dst: &Path,
    ) -> Result<()> {
        let wh_to = self.format().whiteout_path(dst);
        let dst_whiteout = self.format().is_whiteout_at(&wh_to)?;
        if lower_from {
            let wh_from = self.format().whiteout_path(src);
            self.put_whiteout(layer, &wh_from)?;
            self.meter.counts.metadata_writes += 1;
            self.meter.step(|| format!("whiteout {from}"));
        }
        if over_dir {
            hostfs::rename_exchange(src, dst)?;
            let stage = self.stage(layer);
            hostfs::rename(src, &stage)?;
            hostfs::remove_tree(&stage)?;
        } else {
            hostfs::rename(src, dst)?;
        }
        if dst_whiteout {
            std::fs::remove_file(&wh_to).at(&wh_to)?;
            self.meter.counts.metadata_writes += 1;
        }
        Ok(())
    }
}

impl<F: Flavor> Resolve for Union<F> {
    fn resolve(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Option<FileKind>> {
        let stack = self.stack(layer)?;
        Ok(self.walk(&stack).lookup(path)?.map(|f| f.kind))
    }

    fn is_empty_dir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<bool> {
        let stack = self.stack(layer)?;
        let mut w = self.walk(&stack);
        let f = w.entry(path)?;
        Ok(w.merge_dir(&f, path)?.is_empty())
    }
}

impl<F: Flavor> StoreDriver for Union<F> {
    const NAME: &'static str = F::NAME;
    const DESCRIPTION: &'static str = F::DESCRIPTION;
    const OPTIONS: &'static [OptionSpec] = F::OPTIONS;

    fn init(root: &Path, options: Options) -> Result<Self> {
        let options = F::init_options(options)?;
        // the flavor checks its options before anything is written
        F::from_options(&options)?;
        let store = Store::init(root, F::NAME, options)?;
        F::init_dirs(root)?;
        Union::new(store)
    }

    fn open(root: &Path, access: Access) -> Result<Self> {
        let store = Store::open(root, F::NAME, access)?;
        let d = Union::new(store)?;
        if access == Access::Write {
            let known: Vec<LayerId> = d.store.table().infos().into_iter().map(|i| i.id).collect();
            F::sweep(root, &known)?;
        }
        Ok(d)
    }
}

impl<F: Flavor> LayerDriver for Union<F> {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn semantics(&self) -> Semantics {
        Semantics {
            max_depth: Some(F::MAX_DEPTH),
            lower_dir_rename: LowerDirRename::CrossDevice,
            provenance: Provenance::Union,
            page_cache: PageCache::SharedLowerFiles,
        }
    }

    fn meter(&self) -> &Meter {
        &self.meter
    }

    fn meter_mut(&mut self) -> &mut Meter {
        &mut self.meter
    }

    fn create_layer(&mut self, id: &LayerId, parent: Option<&LayerId>) -> Result<()> {
        let depth = self
            .store
            .check_create(id, parent, Some(F::MAX_DEPTH), F::NAME)?;
        let root = self.store.root().to_path_buf();
        let made = F::create_layer_dirs(&root, id, parent, &mut self.meter);
        if let Err(e) = made {
            F::discard_layer(&root, id);
            return Err(e);
        }
        self.meter.step(|| match parent {
            Some(p) => format!(
                "{}: new layer {id} over {p} (empty {}, depth {depth})",
                F::NAME,
                F::BRANCH
            ),
            None => format!("{}: new base layer {id}", F::NAME),
        });
        let (id2, parent2) = (id.clone(), parent.cloned());
        let r = self.store.update_table(|t| {
            t.insert(id2, parent2, depth);
            Ok(())
        });
        if r.is_err() {
            let _ = F::remove_layer_dirs(&root, id);
        }
        self.stacks.remove(id);
        self.cache.drop_layer(id);
        if r.is_ok() {
            // its branch was just made: the host has it cached
            self.cache.host_branch(id);
            self.cache.host_dir(id, &LayerPath::root());
        }
        r
    }

    fn commit(&mut self, id: &LayerId) -> Result<()> {
        self.store.update_table(|t| t.commit(id))
    }

    fn remove_layer(&mut self, id: &LayerId) -> Result<()> {
        self.store.check_remove(id)?;
        self.store.update_table(|t| {
            t.remove(id);
            Ok(())
        })?;
        self.stacks.remove(id);
        self.cache.drop_layer(id);
        F::remove_layer_dirs(self.store.root(), id)
    }

    fn layers(&self) -> Result<Vec<LayerInfo>> {
        Ok(self.store.table().infos())
    }

    fn layer(&self, id: &LayerId) -> Result<LayerInfo> {
        self.store.info(id)
    }

    fn stat(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Metadata> {
        rules::need_entry(self, layer, path)?;
        let stack = self.stack(layer)?;
        let f = self.walk(&stack).entry(path)?;
        let host = stack.host(f.top, path);
        let md = std::fs::symlink_metadata(&host).at(&host)?;
        hostfs::metadata(&host, &md, &stack.ids[f.top])
    }

    fn read(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        rules::need_file(self, layer, path)?;
        let stack = self.stack(layer)?;
        let f = self.walk(&stack).entry(path)?;
        let data = hostfs::read_at(&stack.host(f.data_branch(), path), offset, len)?;
        self.meter.counts.bytes_read += data.len() as u64;
        Ok(data)
    }

    fn readdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<DirEntry>> {
        rules::need_dir(self, layer, path)?;
        let stack = self.stack(layer)?;
        let mut w = self.walk(&stack);
        let f = w.entry(path)?;
        w.merge_dir(&f, path)
    }

    fn create(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        self.begin(layer, path)?;
        rules::need_absent(self, layer, path)?;
        self.add_entry(layer, path, false, |stage| {
            hostfs::create_file(stage, mode).map(drop)
        })
    }

    fn write(&mut self, layer: &LayerId, path: &LayerPath, offset: u64, data: &[u8]) -> Result<()> {
        self.begin(layer, path)?;
        rules::need_file(self, layer, path)?;
        let host = self.copy_up(layer, path, CopyUp::Full)?;
        hostfs::write_at(&host, offset, data).map_err(|e| hostfs::no_space(e, layer, path))?;
        self.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn append(&mut self, layer: &LayerId, path: &LayerPath, data: &[u8]) -> Result<()> {
        self.begin(layer, path)?;
        rules::need_file(self, layer, path)?;
        let host = self.copy_up(layer, path, CopyUp::Full)?;
        hostfs::append(&host, data).map_err(|e| hostfs::no_space(e, layer, path))?;
        self.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn truncate(&mut self, layer: &LayerId, path: &LayerPath, size: u64) -> Result<()> {
        self.begin(layer, path)?;
        rules::need_file(self, layer, path)?;
        let host = self.copy_up(layer, path, CopyUp::Full)?;
        hostfs::truncate(&host, size).map_err(|e| hostfs::no_space(e, layer, path))?;
        self.meter.counts.metadata_writes += 1;
        Ok(())
    }

    fn mkdir(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        let stack = self.begin(layer, path)?;
        rules::need_absent(self, layer, path)?;
        // over a whiteout (something below was deleted), the new directory is opaque
        let dst = stack.host(0, path);
        let format = self.flavor.format().clone();
        let opaque = format.is_whiteout_at(&format.whiteout_path(&dst))?;
        if opaque {
            self.meter.counts.metadata_writes += 1;
            self.meter
                .step(|| format!("opaque dir {path} (replaces a whiteout)"));
        }
        self.add_entry(layer, path, true, |stage| {
            std::fs::create_dir(stage).at(stage)?;
            if opaque {
                format.set_opaque(stage)?;
            }
            hostfs::set_new_owner(stage)?;
            hostfs::set_mode(stage, mode)
        })
    }

    fn symlink(&mut self, layer: &LayerId, target: &str, link: &LayerPath) -> Result<()> {
        self.begin(layer, link)?;
        rules::check_symlink_target(layer, link, target)?;
        rules::need_absent(self, layer, link)?;
        self.add_entry(layer, link, false, |stage| {
            hostfs::create_symlink(target, stage)
        })
    }

    fn hardlink(&mut self, layer: &LayerId, existing: &LayerPath, link: &LayerPath) -> Result<()> {
        self.begin(layer, link)?;
        rules::check_hardlink(self, layer, existing, link)?;
        let src = self.copy_up(layer, existing, CopyUp::Full)?;
        self.add_entry(layer, link, false, |stage| {
            std::fs::hard_link(&src, stage).at(stage)
        })
    }

    fn unlink(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        let r = self.unlink_entry(layer, path);
        if r.is_err() {
            self.cache.invalidate(layer, path);
        }
        r
    }

    fn rmdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        let r = self.rmdir_entry(layer, path);
        if r.is_err() {
            self.cache.invalidate(layer, path);
        }
        r
    }

    fn rename(&mut self, layer: &LayerId, from: &LayerPath, to: &LayerPath) -> Result<()> {
        let r = self.rename_entry(layer, from, to);
        if r.is_err() {
            // a host failure part way must not leave the cache describing the old state
            self.cache.invalidate(layer, from);
            self.cache.invalidate(layer, to);
        }
        r
    }

    fn chmod(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        self.begin(layer, path)?;
        rules::check_chmod(self, layer, path)?;
        let host = self.copy_up(layer, path, CopyUp::Meta)?;
        hostfs::set_mode(&host, mode)?;
        self.meter.counts.metadata_writes += 1;
        Ok(())
    }

    fn chown(&mut self, layer: &LayerId, path: &LayerPath, uid: u32, gid: u32) -> Result<()> {
        self.begin(layer, path)?;
        rules::need_entry(self, layer, path)?;
        let host = self.copy_up(layer, path, CopyUp::Meta)?;
        let md = std::fs::symlink_metadata(&host).at(&host)?;
        hostfs::set_owner(&host, uid, gid)?;
        // chown clears setuid/setgid on Linux; layerlab keeps the mode as it was
        if !md.file_type().is_symlink() {
            hostfs::set_mode(
                &host,
                std::os::unix::fs::PermissionsExt::mode(&md.permissions()),
            )?;
        }
        self.meter.counts.metadata_writes += 1;
        Ok(())
    }

    fn changes(&mut self, layer: &LayerId) -> Result<Vec<Change>> {
        layerlab_core::changes::diff_views(self, layer)
    }

    fn usage(&mut self, layer: &LayerId) -> Result<Usage> {
        self.store.info(layer)?;
        self.flavor.usage(self.store.root(), layer)
    }

    fn status(&self) -> Result<DriverStatus> {
        let layers = self.store.table().infos();
        let base = F::base(self.store.root());
        let deepest = layers.iter().map(|l| l.depth).max().unwrap_or(0);
        let mut facts = vec![
            ("layers".into(), layers.len().to_string()),
            ("deepest stack".into(), deepest.to_string()),
            ("max depth".into(), F::MAX_DEPTH.to_string()),
            ("backing filesystem".into(), hostfs::fs_type_name(&base)),
        ];
        facts.extend(self.flavor.facts());
        facts.push(("lookup cache entries".into(), self.cache.len().to_string()));
        Ok(DriverStatus {
            driver: F::NAME.into(),
            root: base,
            options: self.store.options().clone(),
            facts,
        })
    }
}
