//! The `LayerDriver` implementation every union driver shares: the rules first, then each
//! change made in the layer's own branch (copy-up, whiteouts, opaque directories), with the
//! lookup cache kept in step. What differs between drivers comes from the [`Flavor`] (layout)
//! and its [`BranchFormat`] (markers).

use super::copyup::{count_whiteout, CopyUp};
use super::format::BranchFormat;
use super::lookup::{Found, Stack};
use super::{Flavor, Layout, Union};
use crate::backend::{At, Backend, Cx, Lifecycle, Node, Rename};
use crate::hostfs;
use crate::options::OptionSpec;
use crate::store::{Options, Store};
use layerlab_core::rules::RenamePlan;
use layerlab_core::{
    DirEntry, Error, FileKind, IoContext, LayerId, LayerInfo, LayerPath, LowerDirRename, Metadata,
    PageCache, Provenance, Result, Semantics, Usage,
};
use std::path::{Path, PathBuf};

/// A union driver's semantics (the models and the kernel's overlayfs alike): an entry is
/// provided by the layer whose branch holds it, lower files are shared in the page cache;
/// the depth limit and what a lower directory's rename does are the driver's.
pub(crate) fn semantics(max_depth: usize, lower_dir_rename: LowerDirRename) -> Semantics {
    Semantics {
        max_depth: Some(max_depth),
        lower_dir_rename,
        provenance: Provenance::Union,
        page_cache: PageCache::SharedLowerFiles,
    }
}

impl<F: Flavor> Union<F> {
    /// EXDEV for a directory a lower layer has, where the flavor cannot move one (overlay2:
    /// any; aufs: one with entries), as the kernel checks it before anything else.
    fn lower_dir_refusal(&mut self, cx: &mut Cx<'_>, source: At<'_>) -> Result<()> {
        let (layer, from) = (source.layer, source.path);
        let stack = self.stack(cx, layer)?;
        let f = self.walk(cx, &stack).entry(from)?;
        if f.kind != FileKind::Dir || !f.has_lower() {
            return Ok(());
        }
        let refused = match F::LOWER_DIR_RENAME {
            LowerDirRename::Moves => false,
            LowerDirRename::CrossDevice => true,
            LowerDirRename::CrossDeviceUnlessEmpty => {
                let mut w = self.walk(cx, &stack);
                !w.merge_dir(&f, from)?.is_empty()
            }
        };
        if !refused {
            return Ok(());
        }
        let below = f.layers.iter().find(|&&i| i != 0).map_or(f.top, |&i| i);
        Err(Error::CrossDevice {
            layer: layer.clone(),
            path: from.clone(),
            why: format!(
                "directory exists in lower layer {} ({})",
                stack.ids[below],
                F::NO_DIR_RENAME
            ),
        })
    }

    /// The host path of the entry at `path` (which exists) in the branch that provides it.
    fn host_of(&mut self, cx: &mut Cx<'_>, layer: &LayerId, path: &LayerPath) -> Result<PathBuf> {
        let stack = self.stack(cx, layer)?;
        let f = self.walk(cx, &stack).entry(path)?;
        Ok(stack.host(f.top, path))
    }
}

impl<F: Flavor> Union<F> {
    fn parent_of(&mut self, cx: &mut Cx<'_>, stack: &Stack, path: &LayerPath) -> Result<Found> {
        let parent = path.parent().unwrap_or_else(LayerPath::root);
        self.walk(cx, stack).entry(&parent)
    }

    /// True when the lower layers of the parent directory of `path` list it.
    fn lower_lists(&mut self, cx: &mut Cx<'_>, stack: &Stack, path: &LayerPath) -> Result<bool> {
        let parent = self.parent_of(cx, stack, path)?;
        self.walk(cx, stack).lower_has(&parent, path)
    }

    /// Makes a new entry at `path` in the layer's branch: `make` builds it at a staging
    /// name, then it is put in place (over a whiteout if there is one).
    fn add_entry(
        &mut self,
        cx: &mut Cx<'_>,
        layer: &LayerId,
        path: &LayerPath,
        is_dir: bool,
        make: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        self.copy_up_parents(cx, layer, path)?;
        let stack = self.stack(cx, layer)?;
        let dst = stack.host(0, path);
        let stage = self.stage(layer);
        let r = make(&stage).and_then(|()| self.place(cx, &stage, &dst, is_dir));
        if r.is_err() {
            let _ = hostfs::remove_tree(&stage);
            let _ = std::fs::remove_file(&stage);
        }
        r.map_err(|e| hostfs::no_space(e, layer, path))?;
        cx.meter.counts.metadata_writes += 1;
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
    fn unlink_entry(&mut self, cx: &mut Cx<'_>, layer: &LayerId, path: &LayerPath) -> Result<()> {
        let stack = self.stack(cx, layer)?;
        let f = self.walk(cx, &stack).entry(path)?;
        self.copy_up_parents(cx, layer, path)?;
        let dst = stack.host(0, path);
        if f.top != 0 || self.lower_lists(cx, &stack, path)? {
            self.whiteout(cx, At::new(layer, path), &dst)?;
        } else {
            std::fs::remove_file(&dst).at(&dst)?;
            cx.meter.counts.metadata_writes += 1;
        }
        self.cache.invalidate(layer, path);
        Ok(())
    }

    fn rmdir_entry(&mut self, cx: &mut Cx<'_>, layer: &LayerId, path: &LayerPath) -> Result<()> {
        let stack = self.stack(cx, layer)?;
        let f = self.walk(cx, &stack).entry(path)?;
        self.copy_up_parents(cx, layer, path)?;
        let dst = stack.host(0, path);
        if f.top != 0 {
            self.whiteout(cx, At::new(layer, path), &dst)?;
        } else {
            if f.has_lower() || self.lower_lists(cx, &stack, path)? {
                self.whiteout_dir(cx, At::new(layer, path), &dst)?;
            } else {
                let stage = self.stage(layer);
                hostfs::rename(&dst, &stage)?;
                hostfs::remove_tree(&stage)?;
                cx.meter.counts.metadata_writes += 1;
            }
        }
        self.cache.invalidate(layer, path);
        Ok(())
    }

    fn rename_entry(
        &mut self,
        cx: &mut Cx<'_>,
        layer: &LayerId,
        from: &LayerPath,
        to: &LayerPath,
        plan: RenamePlan,
    ) -> Result<()> {
        let stack = self.stack(cx, layer)?;
        let f = self.walk(cx, &stack).entry(from)?;
        // two names of one file: rename(2) does nothing (POSIX), nothing is copied up; but
        // two lower names are two inodes to overlayfs with index=off: it renames
        if plan.replaces == Some(FileKind::File) && plan.source == FileKind::File {
            let t = self.walk(cx, &stack).entry(to)?;
            let one_inode = F::LOWER_HARDLINKS_ONE_INODE || (f.top == 0 && t.top == 0);
            let a = hostfs::lstat(&stack.host(f.top, from))?;
            let b = hostfs::lstat(&stack.host(t.top, to))?;
            if let (Some(a), Some(b)) = (a, b) {
                use std::os::unix::fs::MetadataExt;
                if one_inode && a.dev() == b.dev() && a.ino() == b.ino() {
                    cx.meter
                        .step(|| format!("rename {from} -> {to}: same file, nothing to do"));
                    return Ok(());
                }
            }
        }
        let src = self.copy_up(cx, layer, from, CopyUp::Full)?;
        self.copy_up_parents(cx, layer, to)?;
        let dst = stack.host(0, to);
        let from_parent = self.parent_of(cx, &stack, from)?;
        let lower_from = self.walk(cx, &stack).lower_has(&from_parent, from)?;

        if plan.source == FileKind::Dir {
            let to_parent = self.parent_of(cx, &stack, to)?;
            let into_merge =
                F::Format::OPAQUE_ON_MOVE_INTO_MERGE && to_parent.layers.iter().any(|&i| i != 0);
            if (into_merge || self.walk(cx, &stack).lower_has(&to_parent, to)?)
                && !self.format().is_opaque(&src)?
            {
                self.format().set_opaque(&src)?;
                cx.meter.counts.metadata_writes += 1;
                cx.meter.step(|| {
                    format!("opaque dir {from} (moving to {to}, over or into a lower directory)")
                });
            }
        }
        let over_dir = plan.replaces == Some(FileKind::Dir)
            && hostfs::lstat(&dst)?.is_some_and(|md| md.is_dir());
        let m = Move {
            layer,
            from,
            to,
            source: plan.source,
            over_dir,
            lower_from,
            src: &src,
            dst: &dst,
        };
        if F::Format::WHITEOUT_IN_PLACE {
            self.move_in_place(cx, &m)?;
        } else {
            self.move_beside(cx, &m)?;
        }
        cx.meter.counts.metadata_writes += 1;
        cx.meter.step(|| format!("rename {from} -> {to}"));
        self.cache.invalidate(layer, from);
        self.cache.invalidate(layer, to);
        Ok(())
    }
}

/// The last step of a rename: what it moves, and what the rename found.
struct Move<'a> {
    layer: &'a LayerId,
    from: &'a LayerPath,
    to: &'a LayerPath,
    /// The kind of the entry moved.
    source: FileKind,
    /// Whether it replaces a directory in the layer's branch.
    over_dir: bool,
    /// Whether a lower layer has the old name (it then needs a whiteout).
    lower_from: bool,
    /// The entry in the layer's branch (copied up).
    src: &'a Path,
    /// Where it goes in the layer's branch.
    dst: &'a Path,
}

/// The last step of a rename, per kind of branch format.
impl<F: Flavor> Union<F> {
    /// overlayfs: a directory over a directory holding whiteouts empties it first; a
    /// directory cannot replace a whiteout (it is exchanged with it); the old name gets a
    /// whiteout in the same step where the host offers `RENAME_WHITEOUT`.
    fn move_in_place(&mut self, cx: &mut Cx<'_>, m: &Move<'_>) -> Result<()> {
        let Move {
            layer,
            from,
            to,
            source,
            over_dir,
            lower_from,
            src,
            dst,
        } = *m;
        if source == FileKind::Dir && over_dir {
            self.clear_dir(cx, At::new(layer, to), dst)?;
        }
        let dst_whiteout = hostfs::lstat(dst)?.is_some_and(|md| hostfs::is_whiteout(&md));
        if source == FileKind::Dir && dst_whiteout {
            // a directory cannot replace a whiteout: swap them; the whiteout lands at
            // the old name, where it is kept if something below shows through there
            hostfs::rename_exchange(src, dst)?;
            if !lower_from {
                std::fs::remove_file(src).at(src)?;
            } else {
                count_whiteout(cx, from);
            }
        } else if lower_from {
            if !hostfs::rename_whiteout(src, dst)? {
                let stage = self.stage(layer);
                self.format().make_whiteout(&stage)?;
                hostfs::rename(src, dst)?;
                hostfs::rename(&stage, src)?;
            }
            count_whiteout(cx, from);
        } else {
            hostfs::rename(src, dst)?;
        }
        Ok(())
    }

    /// aufs: the old name's whiteout is made first (the entry still wins over it); a
    /// directory over a directory holding only markers is exchanged with it, and the old
    /// one (now at the old name, hidden by that whiteout or empty) removed; a whiteout of
    /// the new name is removed once the entry is there.
    /// A change of the attributes of the entry at `at`: the entry copied up for a
    /// metadata change ([`CopyUp::Meta`]), `set` done on its upper copy, one metadata write
    /// counted.
    fn set_attr<T>(
        &mut self,
        cx: &mut Cx<'_>,
        at: At<'_>,
        set: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let host = self.copy_up(cx, at.layer, at.path, CopyUp::Meta)?;
        let done = set(&host)?;
        cx.meter.counts.metadata_writes += 1;
        Ok(done)
    }

    fn move_beside(&mut self, cx: &mut Cx<'_>, m: &Move<'_>) -> Result<()> {
        let Move {
            layer,
            from,
            over_dir,
            lower_from,
            src,
            dst,
            ..
        } = *m;
        let wh_to = self.format().whiteout_path(dst);
        let dst_whiteout = self.format().is_whiteout_at(&wh_to)?;
        if lower_from {
            let wh_from = self.format().whiteout_path(src);
            self.put_whiteout(layer, &wh_from)?;
            count_whiteout(cx, from);
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
            cx.meter.counts.metadata_writes += 1;
        }
        Ok(())
    }
}

impl<F: Flavor> Lifecycle for Union<F> {
    const NAME: &'static str = F::NAME;
    const DESCRIPTION: &'static str = F::DESCRIPTION;
    const OPTIONS: &'static [OptionSpec] = F::OPTIONS;

    fn settle_options(options: Options) -> Result<Options> {
        let options = F::init_options(options)?;
        // the flavor checks its options before anything is written
        F::from_options(&options)?;
        Ok(options)
    }

    fn init(cx: &mut Cx<'_>) -> Result<Self> {
        F::Layout::init_dirs(cx.store.root())?;
        Union::new(cx.store)
    }

    fn open(cx: &mut Cx<'_>) -> Result<Self> {
        let d = Union::new(cx.store)?;
        if cx.store.writable().is_ok() {
            let known: Vec<LayerId> = cx.store.table().infos().into_iter().map(|i| i.id).collect();
            F::Layout::sweep(&d.root, &known)?;
        }
        Ok(d)
    }

    fn check(cx: &mut Cx<'_>, repair: bool, report: &mut crate::fsck::CheckReport) -> Result<()> {
        super::check::check::<F>(cx.store, repair, report)
    }

    fn layer_data(store: &Store) -> Result<Option<crate::fsck::LayerData>> {
        F::Layout::layer_data(store.root(), store.table()).map(Some)
    }

    fn semantics(&self) -> Semantics {
        semantics(F::MAX_DEPTH, F::LOWER_DIR_RENAME)
    }

    fn make_layer(&mut self, cx: &mut Cx<'_>, new: &LayerInfo) -> Result<()> {
        let (id, parent) = (&new.id, new.parent.as_ref());
        // anything of this id a crash left behind is replaced
        let _ = F::Layout::remove_layer_dirs(&self.root, id);
        let made = F::Layout::create_layer_dirs(cx, id, parent);
        if let Err(e) = made {
            F::Layout::discard_layer(&self.root, id);
            return Err(e);
        }
        cx.meter.step(|| match parent {
            Some(p) => format!("{}: new layer {id} over {p} (empty {})", F::NAME, F::BRANCH),
            None => format!("{}: new base layer {id}", F::NAME),
        });
        self.stacks.remove(id);
        self.cache.drop_layer(id);
        // its branch was just made: the host has it cached
        self.cache.host_branch(id);
        self.cache.host_dir(id, &LayerPath::root());
        Ok(())
    }

    fn drop_layer(&mut self, _cx: &mut Cx<'_>, id: &LayerId) -> Result<()> {
        self.stacks.remove(id);
        self.cache.drop_layer(id);
        F::Layout::remove_layer_dirs(&self.root, id)
    }

    fn usage(&mut self, _cx: &mut Cx<'_>, layer: &LayerId) -> Result<Usage> {
        self.flavor.usage(&self.root, layer)
    }

    fn facts(&self, store: &Store) -> Result<(PathBuf, Vec<(String, String)>)> {
        let layers = store.table().infos();
        let base = F::Layout::base(&self.root);
        let deepest = layers.iter().map(|l| l.depth).max().unwrap_or(0);
        let mut facts = vec![
            ("layers".into(), layers.len().to_string()),
            ("deepest stack".into(), deepest.to_string()),
            ("max depth".into(), F::MAX_DEPTH.to_string()),
            ("backing filesystem".into(), hostfs::fs_type_name(&base)),
        ];
        facts.extend(self.flavor.facts());
        facts.push(("lookup cache entries".into(), self.cache.len().to_string()));
        Ok((base, facts))
    }
}

impl<F: Flavor> Backend for Union<F> {
    fn resolve(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Option<FileKind>> {
        let stack = self.stack(cx, at.layer)?;
        Ok(self.walk(cx, &stack).lookup(at.path)?.map(|f| f.kind))
    }

    fn is_empty_dir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<bool> {
        let stack = self.stack(cx, at.layer)?;
        let mut w = self.walk(cx, &stack);
        let f = w.entry(at.path)?;
        Ok(w.merge_dir(&f, at.path)?.is_empty())
    }

    fn stat(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Metadata> {
        let stack = self.stack(cx, at.layer)?;
        let f = self.walk(cx, &stack).entry(at.path)?;
        let host = stack.host(f.top, at.path);
        let md = std::fs::symlink_metadata(&host).at(&host)?;
        hostfs::metadata(&host, &md, &stack.ids[f.top])
    }

    fn read(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, len: u64) -> Result<Vec<u8>> {
        let stack = self.stack(cx, at.layer)?;
        let f = self.walk(cx, &stack).entry(at.path)?;
        let data = hostfs::read_at(&stack.host(f.data_branch(), at.path), offset, len)?;
        if !self.cache.host_data(&stack.ids[f.data_branch()], at.path) {
            // a page-cache miss: the file's data comes from the device
            cx.meter.counts.extents_read += 1;
        }
        cx.meter.counts.reads += 1;
        if stack.ids.len() > 1 {
            // a stacked view is an overlay mount: opening its file opens the branch's too
            cx.meter.counts.backing_opens += 1;
        }
        cx.meter.counts.bytes_read += data.len() as u64;
        Ok(data)
    }

    fn readdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<DirEntry>> {
        let stack = self.stack(cx, at.layer)?;
        let mut w = self.walk(cx, &stack);
        let f = w.entry(at.path)?;
        w.merge_dir(&f, at.path)
    }

    fn create(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        self.add_entry(cx, at.layer, at.path, false, |stage| {
            hostfs::create_file(stage, mode).map(drop)
        })
    }

    fn write(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, data: &[u8]) -> Result<()> {
        let host = self.copy_up(cx, at.layer, at.path, CopyUp::Full)?;
        hostfs::write_at(&host, offset, data)
            .map_err(|e| hostfs::no_space(e, at.layer, at.path))?;
        self.cache.host_data(at.layer, at.path);
        cx.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn replace(&mut self, cx: &mut Cx<'_>, at: At<'_>, data: &[u8]) -> Result<()> {
        if self.replace_file(cx, at.layer, at.path, data)? {
            return Ok(());
        }
        self.write(cx, at, 0, data)?;
        self.truncate(cx, at, data.len() as u64)
    }

    fn append(&mut self, cx: &mut Cx<'_>, at: At<'_>, data: &[u8]) -> Result<()> {
        let host = self.copy_up(cx, at.layer, at.path, CopyUp::Full)?;
        hostfs::append(&host, data).map_err(|e| hostfs::no_space(e, at.layer, at.path))?;
        self.cache.host_data(at.layer, at.path);
        cx.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn truncate(&mut self, cx: &mut Cx<'_>, at: At<'_>, size: u64) -> Result<()> {
        let host = self.copy_up(cx, at.layer, at.path, CopyUp::Full)?;
        hostfs::truncate(&host, size).map_err(|e| hostfs::no_space(e, at.layer, at.path))?;
        cx.meter.counts.metadata_writes += 1;
        Ok(())
    }

    fn mkdir(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        let stack = self.stack(cx, at.layer)?;
        // over a whiteout (something below was deleted), the new directory is opaque
        let dst = stack.host(0, at.path);
        let format = self.flavor.format().clone();
        let opaque = format.is_whiteout_at(&format.whiteout_path(&dst))?;
        if opaque {
            cx.meter.counts.metadata_writes += 1;
            cx.meter
                .step(|| format!("opaque dir {} (replaces a whiteout)", at.path));
        }
        self.add_entry(cx, at.layer, at.path, true, |stage| {
            std::fs::create_dir(stage).at(stage)?;
            if opaque {
                format.set_opaque(stage)?;
            }
            hostfs::set_new_owner(stage)?;
            hostfs::set_mode(stage, mode)
        })
    }

    fn symlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, target: &str) -> Result<()> {
        self.add_entry(cx, at.layer, at.path, false, |stage| {
            hostfs::create_symlink(target, stage)
        })
    }

    fn hardlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, existing: &LayerPath) -> Result<()> {
        let src = self.copy_up(cx, at.layer, existing, CopyUp::Full)?;
        self.add_entry(cx, at.layer, at.path, false, |stage| {
            std::fs::hard_link(&src, stage).at(stage)
        })
    }

    fn unlink(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()> {
        let r = self.unlink_entry(cx, at.layer, at.path);
        if r.is_err() {
            self.cache.invalidate(at.layer, at.path);
        }
        r
    }

    fn rmdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()> {
        let r = self.rmdir_entry(cx, at.layer, at.path);
        if r.is_err() {
            self.cache.invalidate(at.layer, at.path);
        }
        r
    }

    fn check_rename(&mut self, cx: &mut Cx<'_>, mv: Rename<'_>) -> Result<()> {
        self.lower_dir_refusal(cx, mv.source())
    }

    fn rename(&mut self, cx: &mut Cx<'_>, mv: Rename<'_>) -> Result<()> {
        let r = self.rename_entry(cx, mv.layer, mv.from, mv.to, mv.plan);
        if r.is_err() {
            // a host failure part way must not leave the cache describing the old state
            self.cache.invalidate(mv.layer, mv.from);
            self.cache.invalidate(mv.layer, mv.to);
        }
        r
    }

    fn chmod(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        self.set_attr(cx, at, |host| hostfs::set_mode(host, mode))
    }

    fn chown(&mut self, cx: &mut Cx<'_>, at: At<'_>, uid: u32, gid: u32) -> Result<()> {
        self.set_attr(cx, at, |host| {
            let md = std::fs::symlink_metadata(host).at(host)?;
            hostfs::set_owner(host, uid, gid)?;
            // chown clears setuid/setgid on Linux; layerlab keeps the mode as it was
            if !md.file_type().is_symlink() {
                hostfs::set_mode(
                    host,
                    std::os::unix::fs::PermissionsExt::mode(&md.permissions()),
                )?;
            }
            Ok(())
        })
    }

    fn set_mtime(&mut self, cx: &mut Cx<'_>, at: At<'_>, secs: i64, nsec: u32) -> Result<()> {
        self.set_attr(cx, at, |host| hostfs::set_mtime(host, secs, nsec))
    }

    fn mknod(&mut self, cx: &mut Cx<'_>, at: At<'_>, node: Node) -> Result<()> {
        self.add_entry(cx, at.layer, at.path, false, |stage| {
            hostfs::create_node(stage, node.kind, node.mode, node.rdev)
        })
        .map_err(|e| hostfs::not_permitted(e, at.layer, at.path))
    }

    fn get_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<Option<Vec<u8>>> {
        let host = self.host_of(cx, at.layer, at.path)?;
        hostfs::layer_xattr(&host, name)
    }

    fn list_xattrs(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<String>> {
        let host = self.host_of(cx, at.layer, at.path)?;
        hostfs::layer_xattrs(&host)
    }

    fn set_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str, value: &[u8]) -> Result<()> {
        self.set_attr(cx, at, |host| {
            hostfs::set_layer_xattr(host, name, value).map_err(|e| {
                hostfs::not_permitted(hostfs::no_space(e, at.layer, at.path), at.layer, at.path)
            })
        })
    }

    fn remove_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<bool> {
        // nothing to remove: no copy-up
        if self.get_xattr(cx, at, name)?.is_none() {
            return Ok(false);
        }
        self.set_attr(cx, at, |host| hostfs::remove_layer_xattr(host, name))
    }
}
