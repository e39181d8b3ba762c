//! `kernel-overlay`: the reference for the overlay2 model. Layers are laid out exactly as
//! the overlay2 driver lays them out (the shared [`crate::overlayfs`] code: `<root>/overlay2/<dir>/{diff,
//! work,link,lower}` and `l/SHORT`), and a layer's merged view is a real overlay mount:
//!
//! - an active layer with a parent: `lowerdir=<its chain>,upperdir=<dir>/diff,
//!   workdir=<dir>/work` at `<dir>/merged`, mounted when the layer is first used;
//! - a committed layer with a parent: a read-only mount with `lowerdir=<dir>/diff:<chain>`;
//! - a base layer: its `diff` directory itself, as Docker uses it (overlayfs needs two
//!   lower directories to mount without an upper one);
//!
//! with the options of [`mount::OVERLAY_OPTIONS`] (Docker's `index=off`; `redirect_dir`
//! and `metacopy` off). A chain whose options would outgrow a page is looked up through
//! the `l/SHORT` links, as Docker does ([`mount::OverlaySpec`]). Mounts are unmounted when
//! a layer is committed or removed and when the driver is dropped; mounts a crashed
//! process left are detached when the store is opened for writing.
//!
//! Every file operation goes through the mount with `std::fs`; paths are resolved with an
//! `lstat` per component and files opened with `O_NOFOLLOW`, so a symlink stored in a
//! layer is never followed. Whiteouts, opaque directories and copy-up are the kernel's.
//! What the kernel does not say is read from the layer directories: which layer provides
//! an entry (the topmost `diff` that has it) and a layer's usage (its `diff`, counted as
//! the overlay2 driver counts it). The Meter counts bytes read and written only: probes,
//! copies and fsyncs happen in the kernel, where they cannot be counted.

use super::mount::{self, Mount, OverlaySpec};
use super::ops::HostTree;
use super::tree;
use crate::backend::{Cx, Lifecycle};
use crate::hostfs;
use crate::options::OptionSpec;
use crate::overlayfs::{layout, OverlayFormat};
use crate::store::Store;
use layerlab_core::{
    Error, LayerId, LayerInfo, LayerPath, LayerState, LowerDirRename, Meter, Result, Semantics,
    Usage,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The deepest stack (128 lower directories, as Docker's overlay2).
pub const MAX_DEPTH: usize = crate::overlayfs::MAX_DEPTH;

/// Where a layer's merged view is mounted: `<root>/overlay2/<dir>/merged` (Docker's).
pub fn merged_dir(root: &Path, id: &LayerId) -> PathBuf {
    layout::layer_dir(root, id).join("merged")
}

/// The kernel overlay backend.
#[derive(Debug)]
pub struct KernelOverlay {
    root: PathBuf,
    /// The mounted merged views, by layer (a base layer's view needs none).
    mounts: HashMap<LayerId, Mount>,
    format: OverlayFormat,
}

impl KernelOverlay {
    fn new(store: &Store) -> Self {
        KernelOverlay {
            root: store.root().to_path_buf(),
            mounts: HashMap::new(),
            format: OverlayFormat::new(false, false),
        }
    }

    /// The host directory of a layer's own entries (`<root>/overlay2/<dir>/diff`).
    pub fn diff_dir(&self, id: &LayerId) -> PathBuf {
        layout::diff_dir(&self.root, id)
    }

    /// Mount points currently held by this driver.
    pub fn mounted(&self) -> Vec<PathBuf> {
        self.mounts
            .values()
            .map(|m| m.target().to_path_buf())
            .collect()
    }

    /// The mount a layer's view needs (`None` for a base layer: its diff is its view).
    fn spec(&self, store: &Store, info: &LayerInfo) -> Result<Option<OverlaySpec>> {
        let Some(parent) = &info.parent else {
            return Ok(None);
        };
        let root = &self.root;
        let chain = store.table().chain(parent)?;
        let mut lowers = Vec::with_capacity(chain.len() + 1);
        let rel = |id: &LayerId| format!("{}/diff", layout::dir_name(id));
        let short = |id: &LayerId| -> Result<String> {
            Ok(format!(
                "{}/{}",
                layout::LINK_DIR,
                layout::read_short(root, id)?
            ))
        };
        let upper = match info.state {
            LayerState::Active => Some((
                rel(&info.id),
                format!("{}/work", layout::dir_name(&info.id)),
            )),
            LayerState::Committed => {
                lowers.push((short(&info.id)?, rel(&info.id)));
                None
            }
        };
        for id in &chain {
            lowers.push((short(id)?, rel(id)));
        }
        Ok(Some(OverlaySpec {
            base: layout::base(root),
            lowers,
            upper,
        }))
    }

    /// Unmounts a layer's view if it is mounted.
    fn release(&mut self, meter: &mut Meter, layer: &LayerId) -> Result<()> {
        match self.mounts.remove(layer) {
            Some(m) => {
                meter.step(|| format!("kernel-overlay: unmount {layer}"));
                m.unmount()
            }
            None => Ok(()),
        }
    }
}

impl Lifecycle for KernelOverlay {
    const NAME: &'static str = "kernel-overlay";
    const DESCRIPTION: &'static str =
        "the kernel's overlayfs on overlay2's layout: a real overlay mount per layer in use \
         (reference for the overlay2 model; needs root)";
    const OPTIONS: &'static [OptionSpec] = &[];

    fn availability() -> std::result::Result<(), String> {
        mount::common_availability("overlay")
    }

    fn init(cx: &mut Cx<'_>) -> Result<Self> {
        layout::init_dirs(cx.store.root())?;
        Ok(KernelOverlay::new(cx.store))
    }

    fn open(cx: &mut Cx<'_>) -> Result<Self> {
        let d = KernelOverlay::new(cx.store);
        if cx.store.writable().is_ok() {
            mount::sweep_mounts(&layout::base(&d.root))?;
            let known: Vec<LayerId> = cx.store.table().infos().into_iter().map(|i| i.id).collect();
            layout::sweep(&d.root, &known)?;
        }
        Ok(d)
    }

    /// The same layout as overlay2's, so the same checks.
    fn layer_data(store: &Store) -> Result<Option<crate::fsck::LayerData>> {
        layout::layer_data(store.root(), store.table()).map(Some)
    }

    fn check(cx: &mut Cx<'_>, repair: bool, report: &mut crate::fsck::CheckReport) -> Result<()> {
        layout::check_layout(cx.store.root(), cx.store.table(), false, repair, report)
    }

    fn semantics(&self) -> Semantics {
        crate::union::semantics(MAX_DEPTH, LowerDirRename::CrossDevice)
    }

    fn make_layer(&mut self, _cx: &mut Cx<'_>, new: &LayerInfo) -> Result<()> {
        let (id, parent) = (&new.id, new.parent.as_ref());
        let _ = layout::remove_layer_dirs(&self.root, id);
        let mut scratch = Meter::new();
        if let Err(e) = layout::create_layer_dirs(&self.root, id, parent, &mut scratch) {
            layout::discard_staged(&self.root, id);
            return Err(e);
        }
        Ok(())
    }

    fn drop_layer(&mut self, cx: &mut Cx<'_>, id: &LayerId) -> Result<()> {
        self.release(cx.meter, id)?;
        layout::remove_layer_dirs(&self.root, id)
    }

    /// The read-write mount goes; a read-only one is made when the layer is read.
    fn seal_layer(&mut self, cx: &mut Cx<'_>, id: &LayerId) -> Result<()> {
        self.release(cx.meter, id)
    }

    fn usage(&mut self, _cx: &mut Cx<'_>, layer: &LayerId) -> Result<Usage> {
        let u = layout::diff_usage(&self.diff_dir(layer), &self.format)?;
        let details = BTreeMap::from([
            ("disk_bytes".to_string(), u.disk),
            ("whiteouts".to_string(), u.whiteouts),
            ("opaque_dirs".to_string(), u.opaque_dirs),
        ]);
        Ok(Usage {
            bytes: u.bytes,
            inodes: u.inodes,
            details,
        })
    }

    fn facts(&self, store: &Store) -> Result<(PathBuf, Vec<(String, String)>)> {
        let layers = store.table().infos();
        let base = layout::base(&self.root);
        let deepest = layers.iter().map(|l| l.depth).max().unwrap_or(0);
        let opts: Vec<String> = mount::OVERLAY_OPTIONS
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let facts = vec![
            ("layers".into(), layers.len().to_string()),
            ("deepest stack".into(), deepest.to_string()),
            ("max depth".into(), MAX_DEPTH.to_string()),
            ("backing filesystem".into(), hostfs::fs_type_name(&base)),
            ("mount options".into(), opts.join(",")),
            ("mounted views".into(), self.mounts.len().to_string()),
        ];
        Ok((base, facts))
    }
}

impl HostTree for KernelOverlay {
    /// Data changes are left in the page cache (the kernel writes them back when it likes).
    const SYNC: tree::DataSync = tree::DataSync::Cached;
    /// The host directory of a layer's merged view, mounting it when needed.
    fn view_root(&mut self, cx: &mut Cx<'_>, layer: &LayerId) -> Result<PathBuf> {
        let info = cx.store.info(layer)?;
        if let Some(m) = self.mounts.get(layer) {
            return Ok(m.target().to_path_buf());
        }
        let Some(spec) = self.spec(cx.store, &info)? else {
            return Ok(self.diff_dir(layer));
        };
        let target = merged_dir(&self.root, layer);
        match std::fs::create_dir(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&target, e)),
        }
        cx.meter
            .step(|| format!("kernel-overlay: {layer}: {}", spec.describe()));
        let m = spec.mount(&target)?;
        self.mounts.insert(layer.clone(), m);
        Ok(target)
    }
    /// The topmost `diff` of the layer's chain with an entry there (the kernel does not
    /// tell).
    fn provider(&self, store: &Store, layer: &LayerId, path: &LayerPath) -> Result<LayerId> {
        for id in store.table().chain(layer)? {
            let d = layout::diff_dir(&self.root, &id);
            let p = if path.is_root() {
                d
            } else {
                d.join(path.relative())
            };
            if let Some(md) = hostfs::lstat(&p)? {
                if !hostfs::is_whiteout(&md) {
                    return Ok(id);
                }
            }
        }
        Ok(layer.clone())
    }
}
