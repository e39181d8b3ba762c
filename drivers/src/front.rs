//! `Layers<B>`: the one checked front every driver shares. It owns the store (lock, layer
//! table), the Meter and the layer lifecycle, and implements [`LayerDriver`] by checking each
//! method's contract once, in one order, before it calls the backend's primitive: so every
//! driver refuses the same operations with the same error, and "a failed operation changes
//! nothing" holds for every precondition by construction.
//!
//! Order of checks for a change: the layer exists (`NoSuchLayer`), the store is open for
//! writing (`Locked`), the layer is active (`ReadOnlyLayer`), then the rule of
//! [`layerlab_core::rules`] for the operation, then the backend.

use crate::backend::{At, Backend, Cx, Node, Rename};
use crate::hostfs;
use crate::store::{Access, Options, Store};
use layerlab_core::rules::{self, Resolve};
use layerlab_core::{
    Change, DirEntry, DriverStatus, Error, FileKind, LayerDriver, LayerId, LayerInfo, LayerPath,
    LayerState, Metadata, Meter, Result, Semantics, Usage,
};
use std::path::Path;

/// A driver: the checked front over backend `B`.
#[derive(Debug)]
pub struct Layers<B: Backend> {
    store: Store,
    meter: Meter,
    backend: B,
}

/// The backend seen through [`Resolve`], for the rules.
struct Checked<'a, B: Backend> {
    backend: &'a mut B,
    cx: Cx<'a>,
}

impl<B: Backend> Resolve for Checked<'_, B> {
    fn resolve(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Option<FileKind>> {
        self.backend.resolve(&mut self.cx, At::new(layer, path))
    }

    fn is_empty_dir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<bool> {
        self.backend
            .is_empty_dir(&mut self.cx, At::new(layer, path))
    }
}

impl<B: Backend> Checked<'_, B> {
    /// Runs the change primitive `op` at `at`; a host that ran out of space there is
    /// `NoSpace` naming `at` ([`hostfs::no_space`]), for every driver alike.
    fn change(
        &mut self,
        at: At<'_>,
        op: impl FnOnce(&mut B, &mut Cx<'_>, At<'_>) -> Result<()>,
    ) -> Result<()> {
        op(self.backend, &mut self.cx, at).map_err(|e| hostfs::no_space(e, at.layer, at.path))
    }
}

fn no_attribute(layer: &LayerId, path: &LayerPath, name: &str) -> Error {
    Error::NoAttribute {
        layer: layer.clone(),
        path: path.clone(),
        name: name.to_string(),
    }
}

impl<B: Backend> Layers<B> {
    /// Creates a new store at `root` (an empty or missing directory) and opens it for writing.
    pub fn init(root: &Path, options: Options) -> Result<Self> {
        let options = B::settle_options(crate::options::resolve(B::NAME, B::OPTIONS, options)?)?;
        Self::with_backend(Store::init(root, B::NAME, options)?, B::init)
    }

    /// Opens an existing store of this driver (a writer sweeps what a crash left, and
    /// finishes the intent an interrupted compound command left in the journal).
    pub fn open(root: &Path, access: Access) -> Result<Self> {
        let mut layers = Self::over(Store::open(root, B::NAME, access)?)?;
        if access == Access::Write {
            crate::journal::recover(&mut layers, root)?;
            layers.meter = Meter::new();
        }
        Ok(layers)
    }

    /// Checks the store at `root` as `layerlab fsck` does, and with `repair` fixes what can
    /// be fixed without losing committed data ([`crate::fsck::check_store`]). Works on a
    /// store [`Layers::open`] refuses (a damaged table, a driver that refuses to open).
    pub fn fsck(root: &Path, repair: bool) -> Result<crate::fsck::CheckReport> {
        crate::fsck::check_store::<B>(root, repair)
    }

    /// Opens the backend over a store already open (fsck, once it has checked the table).
    pub(crate) fn over(store: Store) -> Result<Self> {
        Self::with_backend(store, B::open)
    }

    /// The front over `store`, its backend made or opened by `start` (`B::init`,
    /// `B::open`). What that counts is not kept: making or opening the driver's files is
    /// no operation of the contract, and every front starts with an empty Meter.
    fn with_backend(store: Store, start: fn(&mut Cx<'_>) -> Result<B>) -> Result<Self> {
        let mut meter = Meter::new();
        let backend = start(&mut Cx {
            store: &store,
            meter: &mut meter,
        })?;
        Ok(Layers {
            store,
            meter: Meter::new(),
            backend,
        })
    }

    /// Replaces the layer table in memory only (fsck reads the layers it can).
    pub(crate) fn set_table_in_memory(&mut self, table: crate::store::LayerTable) {
        self.store.set_table_in_memory(table);
    }

    /// The backend (for inspection and tests).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Counts the layer table's replacement ([`Store::update_table`]) that a layer's
    /// creation, commit or removal ends with, as every driver's does: the new
    /// `layers.json` written and fsynced, renamed over the old one, the directory fsynced.
    fn count_table_write(&mut self) {
        self.meter.counts.metadata_writes += 1;
        self.meter.counts.entry_fsyncs += 2;
        self.meter
            .step(|| "layer table replaced (file and directory fsynced)".into());
    }

    /// Ends a layer-table update that follows a backend step: a written table is counted;
    /// a failed one has `undo` take the backend step back (best effort: the table's error
    /// is the one returned).
    fn count_or_undo(
        &mut self,
        written: Result<()>,
        undo: impl FnOnce(&mut B, &mut Cx<'_>) -> Result<()>,
    ) -> Result<()> {
        if written.is_ok() {
            self.count_table_write();
        } else {
            let (backend, mut cx) = self.parts();
            let _ = undo(backend, &mut cx);
        }
        written
    }

    /// The backend and its context, for one primitive.
    fn parts(&mut self) -> (&mut B, Cx<'_>) {
        (
            &mut self.backend,
            Cx {
                store: &self.store,
                meter: &mut self.meter,
            },
        )
    }

    /// The backend behind the rules' [`Resolve`], for reads of an existing layer.
    fn read_view(&mut self, layer: &LayerId) -> Result<Checked<'_, B>> {
        self.store.info(layer)?;
        let (backend, cx) = self.parts();
        Ok(Checked { backend, cx })
    }

    /// The same for a change of `path`: the store writable and the layer active.
    fn change_view(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Checked<'_, B>> {
        self.store.info_for_change(layer, path)?;
        let (backend, cx) = self.parts();
        Ok(Checked { backend, cx })
    }
}

/// What is at a path of a layer's view, for the rules of compound operations.
impl<B: Backend> Resolve for Layers<B> {
    fn resolve(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Option<FileKind>> {
        self.read_view(layer)?.resolve(layer, path)
    }

    fn is_empty_dir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<bool> {
        self.read_view(layer)?.is_empty_dir(layer, path)
    }
}

impl<B: Backend> LayerDriver for Layers<B> {
    fn name(&self) -> &'static str {
        B::NAME
    }

    fn semantics(&self) -> Semantics {
        self.backend.semantics()
    }

    fn meter(&self) -> &Meter {
        &self.meter
    }

    fn meter_mut(&mut self) -> &mut Meter {
        &mut self.meter
    }

    fn create_layer(&mut self, id: &LayerId, parent: Option<&LayerId>) -> Result<()> {
        let max = self.backend.semantics().max_depth;
        self.store.writable()?;
        let new = LayerInfo {
            id: id.clone(),
            parent: parent.cloned(),
            state: LayerState::Active,
            depth: self.store.table().check_create(id, parent, max, B::NAME)?,
        };
        let (backend, mut cx) = self.parts();
        backend
            .make_layer(&mut cx, &new)
            .map_err(|e| hostfs::no_space(e, id, &LayerPath::root()))?;
        let named = self
            .store
            .update_table(|t| {
                t.insert(new.id, new.parent, new.depth);
                Ok(())
            })
            .map_err(|e| hostfs::no_space(e, id, &LayerPath::root()));
        self.count_or_undo(named, |backend, cx| backend.drop_layer(cx, id))
    }

    fn commit(&mut self, id: &LayerId) -> Result<()> {
        if self.store.check_commit(id)?.state == LayerState::Committed {
            return Ok(());
        }
        let (backend, mut cx) = self.parts();
        backend.seal_layer(&mut cx, id)?;
        let committed = self.store.update_table(|t| t.commit(id));
        self.count_or_undo(committed, |backend, cx| backend.unseal_layer(cx, id))
    }

    fn remove_layer(&mut self, id: &LayerId) -> Result<()> {
        self.store.check_remove(id)?;
        // the commit point: from here the layer is gone; what its data held is freed now,
        // or swept by the next writer if freeing fails part way. A failure to free is not
        // the command's failure (the removal happened), so it is a step, not an error.
        self.store.update_table(|t| {
            t.remove(id);
            Ok(())
        })?;
        self.count_table_write();
        let (backend, mut cx) = self.parts();
        if let Err(e) = backend.drop_layer(&mut cx, id) {
            self.meter
                .step(|| format!("layer {id} removed; freeing its data failed ({e}), left for the next writer's sweep"));
        }
        Ok(())
    }

    fn layers(&self) -> Result<Vec<LayerInfo>> {
        Ok(self.store.table().infos())
    }

    fn layer(&self, id: &LayerId) -> Result<LayerInfo> {
        self.store.info(id)
    }

    fn stat(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Metadata> {
        let mut v = self.read_view(layer)?;
        rules::need_entry(&mut v, layer, path)?;
        v.backend.stat(&mut v.cx, At::new(layer, path))
    }

    fn read(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        let mut v = self.read_view(layer)?;
        rules::need_file(&mut v, layer, path)?;
        v.backend.read(&mut v.cx, At::new(layer, path), offset, len)
    }

    fn readdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<DirEntry>> {
        let mut v = self.read_view(layer)?;
        rules::need_dir(&mut v, layer, path)?;
        v.backend.readdir(&mut v.cx, At::new(layer, path))
    }

    fn create(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::need_absent(&mut v, layer, path)?;
        v.change(At::new(layer, path), |b, cx, at| b.create(cx, at, mode))
    }

    fn write(&mut self, layer: &LayerId, path: &LayerPath, offset: u64, data: &[u8]) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::need_file(&mut v, layer, path)?;
        rules::check_file_end(layer, path, offset, data.len() as u64)?;
        v.change(At::new(layer, path), |b, cx, at| {
            b.write(cx, at, offset, data)
        })
    }

    fn replace(&mut self, layer: &LayerId, path: &LayerPath, data: &[u8]) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::need_file(&mut v, layer, path)?;
        v.backend.replace(&mut v.cx, At::new(layer, path), data)
    }

    fn append(&mut self, layer: &LayerId, path: &LayerPath, data: &[u8]) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::need_file(&mut v, layer, path)?;
        v.change(At::new(layer, path), |b, cx, at| b.append(cx, at, data))
    }

    fn truncate(&mut self, layer: &LayerId, path: &LayerPath, size: u64) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::need_file(&mut v, layer, path)?;
        rules::check_file_end(layer, path, size, 0)?;
        v.change(At::new(layer, path), |b, cx, at| b.truncate(cx, at, size))
    }

    fn mkdir(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::need_absent(&mut v, layer, path)?;
        v.change(At::new(layer, path), |b, cx, at| b.mkdir(cx, at, mode))
    }

    fn symlink(&mut self, layer: &LayerId, target: &str, link: &LayerPath) -> Result<()> {
        let mut v = self.change_view(layer, link)?;
        rules::check_symlink_target(layer, link, target)?;
        rules::need_absent(&mut v, layer, link)?;
        v.change(At::new(layer, link), |b, cx, at| b.symlink(cx, at, target))
    }

    fn hardlink(&mut self, layer: &LayerId, existing: &LayerPath, link: &LayerPath) -> Result<()> {
        let mut v = self.change_view(layer, link)?;
        rules::check_hardlink(&mut v, layer, existing, link)?;
        v.change(At::new(layer, link), |b, cx, at| {
            b.hardlink(cx, at, existing)
        })
    }

    fn unlink(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::check_unlink(&mut v, layer, path)?;
        v.change(At::new(layer, path), |b, cx, at| b.unlink(cx, at))
    }

    fn rmdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::check_rmdir(&mut v, layer, path)?;
        v.change(At::new(layer, path), |b, cx, at| b.rmdir(cx, at))
    }

    fn rename(&mut self, layer: &LayerId, from: &LayerPath, to: &LayerPath) -> Result<()> {
        let mut v = self.change_view(layer, from)?;
        let plan = rules::plan_rename(&mut v, layer, from, to)?;
        if plan.noop {
            return Ok(());
        }
        let mv = Rename {
            layer,
            from,
            to,
            plan,
        };
        v.backend.check_rename(&mut v.cx, mv)?;
        rules::check_rename_over(&mut v, layer, to, &plan)?;
        v.change(mv.dest(), |b, cx, _| b.rename(cx, mv))
    }

    fn chmod(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::check_chmod(&mut v, layer, path)?;
        v.change(At::new(layer, path), |b, cx, at| b.chmod(cx, at, mode))
    }

    fn chown(&mut self, layer: &LayerId, path: &LayerPath, uid: u32, gid: u32) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::need_entry(&mut v, layer, path)?;
        rules::check_owner(layer, path, uid, gid)?;
        v.change(At::new(layer, path), |b, cx, at| b.chown(cx, at, uid, gid))
    }

    fn set_mtime(&mut self, layer: &LayerId, path: &LayerPath, secs: i64, nsec: u32) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::need_entry(&mut v, layer, path)?;
        rules::check_mtime(layer, path, nsec)?;
        v.change(At::new(layer, path), |b, cx, at| {
            b.set_mtime(cx, at, secs, nsec)
        })
    }

    fn mknod(&mut self, layer: &LayerId, path: &LayerPath, node: Node) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::check_mknod(layer, path, node)?;
        rules::need_absent(&mut v, layer, path)?;
        v.change(At::new(layer, path), |b, cx, at| b.mknod(cx, at, node))
    }

    fn get_xattr(&mut self, layer: &LayerId, path: &LayerPath, name: &str) -> Result<Vec<u8>> {
        let mut v = self.read_view(layer)?;
        rules::check_xattr(&mut v, layer, path, name)?;
        v.backend
            .get_xattr(&mut v.cx, At::new(layer, path), name)?
            .ok_or_else(|| no_attribute(layer, path, name))
    }

    fn list_xattrs(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<String>> {
        let mut v = self.read_view(layer)?;
        rules::need_entry(&mut v, layer, path)?;
        v.backend.list_xattrs(&mut v.cx, At::new(layer, path))
    }

    fn set_xattr(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        name: &str,
        value: &[u8],
    ) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::check_xattr(&mut v, layer, path, name)?;
        rules::check_xattr_value(layer, path, value)?;
        v.change(At::new(layer, path), |b, cx, at| {
            b.set_xattr(cx, at, name, value)
        })
    }

    fn remove_xattr(&mut self, layer: &LayerId, path: &LayerPath, name: &str) -> Result<()> {
        let mut v = self.change_view(layer, path)?;
        rules::check_xattr(&mut v, layer, path, name)?;
        if v.backend
            .remove_xattr(&mut v.cx, At::new(layer, path), name)?
        {
            Ok(())
        } else {
            Err(no_attribute(layer, path, name))
        }
    }

    fn changes(&mut self, layer: &LayerId) -> Result<Vec<Change>> {
        layerlab_core::changes::diff_views(self, layer)
    }

    fn usage(&mut self, layer: &LayerId) -> Result<Usage> {
        self.store.info(layer)?;
        let (backend, mut cx) = self.parts();
        backend.usage(&mut cx, layer)
    }

    fn begin_batch(&mut self) {
        self.backend.begin_batch();
    }

    fn end_batch(&mut self) -> Result<()> {
        let (backend, mut cx) = self.parts();
        backend.end_batch(&mut cx)
    }

    fn status(&self) -> Result<DriverStatus> {
        let (root, facts) = self.backend.facts(&self.store)?;
        Ok(DriverStatus {
            driver: B::NAME.into(),
            root,
            options: self.store.options().clone(),
            facts,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::faults;
    use crate::vfs::Vfs;

    fn id(s: &str) -> LayerId {
        LayerId::new(s).unwrap()
    }

    /// EIO from the directory fsync after `layers.json` was renamed during `layer create`:
    /// the old table is put back, the error is true (no layer), and no ghost is left.
    #[test]
    fn a_failed_table_fsync_leaves_no_ghost() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("s");
        let mut d = Layers::<Vfs>::init(&root, Options::new()).unwrap();
        // the first directory fsync is make_layer's, the second the table's
        faults::fail_dir_fsync_after(1);
        assert!(d.create_layer(&id("a"), None).is_err());
        assert!(d.layers().unwrap().is_empty());
        drop(d);
        let d = Layers::<Vfs>::open(&root, Access::Read).unwrap();
        assert!(d.layers().unwrap().is_empty());
        drop(d);
        let report = Layers::<Vfs>::fsck(&root, false).unwrap();
        assert!(report.is_clean(), "{report:?}");
        // the next create works and is named
        let mut d = Layers::<Vfs>::open(&root, Access::Write).unwrap();
        d.create_layer(&id("a"), None).unwrap();
        drop(d);
        let d = Layers::<Vfs>::open(&root, Access::Read).unwrap();
        assert_eq!(d.layers().unwrap().len(), 1);
    }

    /// A layer's creation on overlay2 fsyncs seven times (strace: `link` and `lower` made
    /// and fsynced, the staging directory, the layer directory's parent after the rename,
    /// `l/` after the short link, then the table's new file and its directory): all make
    /// new entries durable, none a file's data.
    #[test]
    fn a_layer_creation_counts_its_fsyncs_of_new_entries() {
        use crate::overlay2::Overlay2;
        let tmp = tempfile::tempdir().unwrap();
        let mut d = Layers::<Overlay2>::init(&tmp.path().join("s"), Options::new()).unwrap();
        d.create_layer(&id("a"), None).unwrap();
        d.commit(&id("a")).unwrap();
        let before = d.meter().counts;
        d.create_layer(&id("b"), Some(&id("a"))).unwrap();
        let c = d.meter().counts.since(&before);
        assert_eq!((c.entry_fsyncs, c.fsyncs), (7, 0), "{}", c.summary());
    }
}
