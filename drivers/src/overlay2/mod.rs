//! overlay2: a `diff/` directory per layer over its lower chain, stored exactly as the
//! kernel's overlay filesystem stores an upper directory, in Docker's overlay2 layout.
//!
//! # On-disk format
//!
//! ```text
//! <root>/overlay2/<dir>/diff/      the layer's own entries (its upper directory)
//! <root>/overlay2/<dir>/link       its short name, e.g. `QZ4N...` (26 base32 characters)
//! <root>/overlay2/<dir>/lower      `l/SHORT:l/SHORT:...`, its lower chain top first
//!                                  (no such file for a base layer)
//! <root>/overlay2/<dir>/work/      overlayfs's workdir; staging for copy-ups, whiteouts
//! <root>/overlay2/l/<SHORT>        symlink -> ../<dir>/diff
//! <root>/overlay2/.staging/<dir>/  a layer under construction
//! ```
//!
//! Inside `diff/`, as overlayfs: a deleted name is a **whiteout**, a character device
//! 0/0; a directory that hides everything below it is **opaque**, with the xattr
//! `trusted.overlay.opaque=y` (root) or `user.overlay.opaque=y` (unprivileged, the kernel's
//! `userxattr` convention; chosen once at `init` and kept as the store option
//! `userxattr`). With `metacopy=on`, a chmod/chown of a lower file copies up a
//! **metacopy** file: same size, sparse, xattr `*.overlay.metacopy`, data still read from
//! the lower file; its first data change copies the data. Owners a non-root process may
//! not set are kept in `user.layerlab.owner` (see [`crate::hostfs`]).
//!
//! Lookup walks the stack ([`lookup`]): the layer's `diff/`, then each lower `diff/`, top
//! down, component by component with `lstat` only (a symlink stored in a layer is never
//! followed). Every probe counts; a cache of resolved components answers warm lookups
//! with one cache hit and no probe.
//!
//! # Crash safety
//!
//! - **Layer creation**: `diff/`, `work/`, `link` and `lower` are made (and fsynced) in
//!   `.staging/<dir>`, renamed to `<dir>`, then the `l/` link is made; the layer table
//!   (`layers.json`, replaced atomically) is the commit point. A crash before it leaves a
//!   directory and link the table does not name: ignored, and swept by the next writer
//!   (`open` with `Access::Write`), with anything left in a `work/`.
//! - **Layer removal**: the table drops the layer first, then its link and directory are
//!   deleted; a crash in between leaves garbage the next writer sweeps.
//! - **Changes in a layer**: every new entry (file, directory, symlink, hard link,
//!   whiteout, copy-up) is completed in the layer's `work/` and renamed into `diff/`, so
//!   it appears whole or not at all. A copied-up file's data is fsynced before its
//!   rename. A copy-up copies parents first, top down: a crash in between leaves extra
//!   merged directories identical to the lower ones (the view is unchanged). Deleting a
//!   directory that a lower layer also has exchanges (`RENAME_EXCHANGE`) a whiteout with
//!   it in one step. A rename that must leave a whiteout uses `RENAME_WHITEOUT` (one
//!   step) where the host offers it; otherwise the whiteout follows the rename, and a
//!   crash in between shows the lower entry again at the old name. Multi-step changes
//!   (rename over a directory holding whiteouts) go through states that are each a valid
//!   view, as the kernel's do.

mod copyup;
mod layout;
mod lookup;
mod whiteout;

#[cfg(test)]
mod tests;

pub use copyup::{stage_copy, CopyUp};
pub use layout::{short_name, DiffUsage};
pub use lookup::{Cache, Found, Stack, Walk};
pub use whiteout::{BranchFormat, Listed, OverlayFormat, Probe};

use crate::hostfs;
use crate::options::{self, OptionSpec};
use crate::registry::StoreDriver;
use crate::store::{Access, Options, Store};
use layerlab_core::rules::{self, Resolve};
use layerlab_core::{
    Change, DirEntry, DriverStatus, Error, FileKind, IoContext, LayerDriver, LayerId, LayerInfo,
    LayerPath, LowerDirRename, Metadata, Meter, PageCache, Provenance, Result, Semantics, Usage,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The deepest stack overlay2 allows (128 lower directories, as Docker's driver).
pub const MAX_DEPTH: usize = 128;

/// The overlay2 driver.
#[derive(Debug)]
pub struct Overlay2 {
    store: Store,
    meter: Meter,
    format: OverlayFormat,
    metacopy: bool,
    stacks: HashMap<LayerId, Arc<Stack>>,
    cache: Cache,
    seq: u64,
}

impl Overlay2 {
    fn new(store: Store) -> Result<Self> {
        let opts = store.options();
        let metacopy = options::flag(Self::NAME, opts, "metacopy")?;
        let userxattr = match opts.get("userxattr").map(String::as_str) {
            None | Some("auto") => !hostfs::privileged(),
            Some(_) => options::flag(Self::NAME, opts, "userxattr")?,
        };
        if !userxattr && !hostfs::privileged() {
            return Err(Error::InvalidOption {
                driver: Self::NAME.into(),
                key: "userxattr".into(),
                reason: "this store keeps its markers in trusted.* xattrs, which only root \
                         can read and write; use it as root, or create a store with \
                         userxattr=on"
                    .into(),
            });
        }
        Ok(Overlay2 {
            store,
            meter: Meter::new(),
            format: OverlayFormat::new(userxattr, metacopy),
            metacopy,
            stacks: HashMap::new(),
            cache: Cache::default(),
            seq: 0,
        })
    }

    /// The host directory of a layer (`<root>/overlay2/<dir>`).
    pub fn layer_dir(&self, id: &LayerId) -> PathBuf {
        layout::layer_dir(self.store.root(), id)
    }

    /// The host directory of a layer's own entries (`<root>/overlay2/<dir>/diff`).
    pub fn diff_dir(&self, id: &LayerId) -> PathBuf {
        layout::diff_dir(self.store.root(), id)
    }

    /// The on-disk format (xattr names) this store uses.
    pub fn format(&self) -> &OverlayFormat {
        &self.format
    }

    /// Entries in the lookup cache (all layers).
    pub fn cached_entries(&self) -> usize {
        self.cache.len()
    }

    /// A layer's stack, from the layer table (cached: a layer's chain never changes).
    fn stack(&mut self, layer: &LayerId) -> Result<Arc<Stack>> {
        if let Some(s) = self.stacks.get(layer) {
            return Ok(Arc::clone(s));
        }
        let ids = self.store.table().chain(layer)?;
        let dirs = ids
            .iter()
            .map(|id| layout::diff_dir(self.store.root(), id))
            .collect();
        let s = Arc::new(Stack { ids, dirs });
        self.stacks.insert(layer.clone(), Arc::clone(&s));
        Ok(s)
    }

    fn walk<'a>(&'a mut self, stack: &'a Stack) -> Walk<'a, OverlayFormat> {
        Walk {
            format: &self.format,
            stack,
            cache: &mut self.cache,
            meter: &mut self.meter,
        }
    }

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
        Ok(())
    }
}

/// The steps of unlink, rmdir and rename; the trait methods wrap them and forget the cached
/// entries of the paths involved when a step fails part way.
impl Overlay2 {
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
                    "directory exists in lower layer {} (overlay2 has no redirect_dir)",
                    stack.ids[below]
                ),
            });
        }
        // two names of one file: rename(2) does nothing (POSIX), nothing is copied up
        if plan.replaces == Some(FileKind::File) && plan.source == FileKind::File {
            let t = self.walk(&stack).entry(to)?;
            let a = hostfs::lstat(&stack.host(f.top, from))?;
            let b = hostfs::lstat(&stack.host(t.top, to))?;
            if let (Some(a), Some(b)) = (a, b) {
                use std::os::unix::fs::MetadataExt;
                if a.dev() == b.dev() && a.ino() == b.ino() {
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
            if self.walk(&stack).lower_has(&to_parent, to)? && !self.format.is_opaque(&src)? {
                self.format.set_opaque(&src)?;
                self.meter.counts.metadata_writes += 1;
                self.meter
                    .step(|| format!("opaque dir {from} (moving over {to}, present below)"));
            }
            if plan.replaces == Some(FileKind::Dir)
                && hostfs::lstat(&dst)?.is_some_and(|md| md.is_dir())
            {
                self.clear_dir(layer, to, &dst)?;
            }
        }
        let dst_whiteout = hostfs::lstat(&dst)?.is_some_and(|md| hostfs::is_whiteout(&md));
        if plan.source == FileKind::Dir && dst_whiteout {
            // a directory cannot replace a whiteout: swap them; the whiteout lands at
            // the old name, where it is kept if something below shows through there
            hostfs::rename_exchange(&src, &dst)?;
            if !lower_from {
                std::fs::remove_file(&src).at(&src)?;
            } else {
                self.meter.counts.metadata_writes += 1;
                self.meter.step(|| format!("whiteout {from}"));
            }
        } else if lower_from {
            if !hostfs::rename_whiteout(&src, &dst)? {
                let stage = self.stage(layer);
                hostfs::mknod_whiteout(&stage)?;
                hostfs::rename(&src, &dst)?;
                hostfs::rename(&stage, &src)?;
            }
            self.meter.counts.metadata_writes += 1;
            self.meter.step(|| format!("whiteout {from}"));
        } else {
            hostfs::rename(&src, &dst)?;
        }
        self.meter.counts.metadata_writes += 1;
        self.meter.step(|| format!("rename {from} -> {to}"));
        self.cache.invalidate(layer, from);
        self.cache.invalidate(layer, to);
        Ok(())
    }
}

impl Resolve for Overlay2 {
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

impl StoreDriver for Overlay2 {
    const NAME: &'static str = "overlay2";
    const DESCRIPTION: &'static str =
        "a diff directory per layer over its lower chain (Docker's overlay2, kernel overlayfs \
         format): copy-up on first write, one probe per layer until cached";
    const OPTIONS: &'static [OptionSpec] = &[
        OptionSpec {
            key: "metacopy",
            default: "off",
            help: "on: chmod/chown of a lower file copies up its metadata only (overlayfs metacopy=on)",
        },
        OptionSpec {
            key: "userxattr",
            default: "auto",
            help: "on: keep opaque/metacopy markers in user.overlay.* (overlayfs userxattr); \
                   auto: on unless running as root",
        },
    ];

    fn init(root: &Path, options: Options) -> Result<Self> {
        let mut options = options::resolve(Self::NAME, Self::OPTIONS, options)?;
        let metacopy = options::flag(Self::NAME, &options, "metacopy")?;
        options.insert(
            "metacopy".into(),
            if metacopy { "on" } else { "off" }.into(),
        );
        let userxattr = match options.get("userxattr").map(String::as_str) {
            None | Some("auto") => !hostfs::privileged(),
            Some(_) => options::flag(Self::NAME, &options, "userxattr")?,
        };
        options.insert(
            "userxattr".into(),
            if userxattr { "on" } else { "off" }.into(),
        );
        if !userxattr && !hostfs::privileged() {
            return Err(Error::InvalidOption {
                driver: Self::NAME.into(),
                key: "userxattr".into(),
                reason: "trusted.* xattrs need root; use userxattr=on (or auto)".into(),
            });
        }
        let store = Store::init(root, Self::NAME, options)?;
        let base = layout::base(root);
        for d in [layout::LINK_DIR, layout::STAGING] {
            std::fs::create_dir_all(base.join(d)).at(base.join(d))?;
        }
        crate::store::fsync_dir(&base)?;
        Overlay2::new(store)
    }

    fn open(root: &Path, access: Access) -> Result<Self> {
        let store = Store::open(root, Self::NAME, access)?;
        let d = Overlay2::new(store)?;
        if access == Access::Write {
            let known: Vec<LayerId> = d.store.table().infos().into_iter().map(|i| i.id).collect();
            layout::sweep(root, &known)?;
        }
        Ok(d)
    }
}

impl LayerDriver for Overlay2 {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn semantics(&self) -> Semantics {
        Semantics {
            max_depth: Some(MAX_DEPTH),
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
        self.store.writable()?;
        let depth = self
            .store
            .table()
            .check_create(id, parent, Some(MAX_DEPTH), Self::NAME)?;
        let root = self.store.root().to_path_buf();
        let made = layout::create_layer_dirs(&root, id, parent, &mut self.meter);
        if let Err(e) = made {
            let _ = hostfs::remove_tree(
                &layout::base(&root)
                    .join(layout::STAGING)
                    .join(layout::dir_name(id)),
            );
            return Err(e);
        }
        self.meter.step(|| match parent {
            Some(p) => format!("overlay2: new layer {id} over {p} (empty diff, depth {depth})"),
            None => format!("overlay2: new base layer {id}"),
        });
        let (id2, parent2) = (id.clone(), parent.cloned());
        let r = self.store.update_table(|t| {
            t.insert(id2, parent2, depth);
            Ok(())
        });
        if r.is_err() {
            let _ = layout::remove_layer_dirs(&root, id);
        }
        self.stacks.remove(id);
        self.cache.drop_layer(id);
        r
    }

    fn commit(&mut self, id: &LayerId) -> Result<()> {
        self.store.update_table(|t| t.commit(id))
    }

    fn remove_layer(&mut self, id: &LayerId) -> Result<()> {
        self.store.writable()?;
        self.store.table().check_remove(id)?;
        self.store.update_table(|t| {
            t.remove(id);
            Ok(())
        })?;
        self.stacks.remove(id);
        self.cache.drop_layer(id);
        layout::remove_layer_dirs(self.store.root(), id)
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
        let opaque = hostfs::lstat(&dst)?.is_some_and(|md| hostfs::is_whiteout(&md));
        let format = self.format;
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
        let u = layout::diff_usage(&self.diff_dir(layer), &self.format)?;
        let details = BTreeMap::from([
            ("disk_bytes".to_string(), u.disk),
            ("whiteouts".to_string(), u.whiteouts),
            ("opaque_dirs".to_string(), u.opaque_dirs),
            ("metacopy_files".to_string(), u.metacopy_files),
        ]);
        Ok(Usage {
            bytes: u.bytes,
            inodes: u.inodes,
            details,
        })
    }

    fn status(&self) -> Result<DriverStatus> {
        let layers = self.store.table().infos();
        let base = layout::base(self.store.root());
        let deepest = layers.iter().map(|l| l.depth).max().unwrap_or(0);
        Ok(DriverStatus {
            driver: Self::NAME.into(),
            root: base.clone(),
            options: self.store.options().clone(),
            facts: vec![
                ("layers".into(), layers.len().to_string()),
                ("deepest stack".into(), deepest.to_string()),
                ("max depth".into(), MAX_DEPTH.to_string()),
                ("backing filesystem".into(), hostfs::fs_type_name(&base)),
                ("whiteout format".into(), "character device 0/0".into()),
                (
                    "opaque xattr".into(),
                    format!(
                        "{}=y ({} namespace)",
                        self.format.opaque_xattr,
                        self.format.namespace()
                    ),
                ),
                (
                    "metacopy".into(),
                    if self.metacopy { "on" } else { "off" }.into(),
                ),
                (
                    "redirect_dir".into(),
                    "off (renaming a lower directory: EXDEV)".into(),
                ),
                ("lookup cache entries".into(), self.cache.len().to_string()),
            ],
        })
    }
}
