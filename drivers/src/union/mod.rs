//! What the union drivers (overlay2, aufs) share, written once: a driver [`Union`] generic
//! over a [`Flavor`], which says only what differs between them.
//!
//! - [`format`](mod@format): the [`BranchFormat`] trait: how a branch stores whiteouts
//!   and opaque directories (overlayfs: character device 0/0 and an xattr; aufs:
//!   `.wh.<name>` and `.wh..wh..opq` files);
//! - [`lookup`]: the stack walk (one probe per branch until found, top down), its cache
//!   (the kernel's dentry cache) and the directory merge (every branch read);
//! - `copyup`: the staged copy-up of a lower entry into the top branch;
//! - `driver`: the `LayerDriver` implementation: the rules, every change, provenance.
//!
//! A [`Flavor`] adds the on-disk [`Layout`]: where a layer's branch is, where its changes
//! are staged, how layers are made, removed and swept; and how a layer's usage is counted.

mod check;
mod copyup;
mod driver;
pub mod format;
pub mod lookup;

#[cfg(test)]
pub(crate) mod testutil;

pub use copyup::{stage_copy, CopyUp};
pub(crate) use driver::semantics;
pub use format::{BranchFormat, Listed, Probe};
pub use lookup::{Cache, Found, Stack, Walk};

use crate::backend::Cx;
use crate::fsck::{CheckReport, LayerData};
use crate::options::OptionSpec;
use crate::store::{LayerTable, Options, Store};
use layerlab_core::{LayerId, Result, Usage};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What one union driver does differently from another: its name and limits, its branch
/// format, and where it keeps layers on the host.
pub trait Flavor: Sized + std::fmt::Debug {
    /// How branches store whiteouts and opaque directories.
    type Format: BranchFormat + Clone + std::fmt::Debug;
    /// Where layers are kept on the host.
    type Layout: Layout;

    /// The registry name.
    const NAME: &'static str;
    /// One line saying what it models.
    const DESCRIPTION: &'static str;
    /// The options `init` accepts.
    const OPTIONS: &'static [OptionSpec];
    /// The deepest stack allowed (the layer itself included).
    const MAX_DEPTH: usize;
    /// How renaming a directory that exists below behaves.
    const LOWER_DIR_RENAME: layerlab_core::LowerDirRename;
    /// Why renaming a directory that exists below is EXDEV, in the driver's terms.
    const NO_DIR_RENAME: &'static str;
    /// What the driver calls a layer's own directory (`diff`, `branch`), for traces.
    const BRANCH: &'static str;
    /// Whether two names of one hard-linked file in a lower branch are one inode of the
    /// union (aufs: its xino maps them to one inode number), so that renaming one onto the
    /// other does nothing; overlayfs with `index=off` (Docker's mount) makes each name an
    /// inode of its own, so the rename copies the source up over the other name.
    const LOWER_HARDLINKS_ONE_INODE: bool;

    /// Checks the options given to `init` and fills in the defaults, as stored. Default:
    /// the declared [`OPTIONS`](Self::OPTIONS) and nothing more.
    fn init_options(given: Options) -> Result<Options> {
        crate::options::resolve(Self::NAME, Self::OPTIONS, given)
    }

    /// The flavor of an open store (from its stored options).
    fn from_options(options: &Options) -> Result<Self>;

    /// The branch format in use.
    fn format(&self) -> &Self::Format;

    /// What a layer's branch holds exclusively.
    fn usage(&self, root: &Path, id: &LayerId) -> Result<Usage>;

    /// Driver-specific facts for `status` (format, options).
    fn facts(&self) -> Vec<(String, String)>;
}

/// Where a union driver keeps its layers on the host: where a layer's branch is, where
/// its changes are staged, how layers are made, removed and swept, and what `fsck` checks.
/// Implemented by a unit struct of each driver's layout module.
pub trait Layout {
    /// Makes the driver's own directories in a new store.
    fn init_dirs(root: &Path) -> Result<()>;

    /// The driver's directory in a store (`<root>/overlay2`, `<root>/aufs`).
    fn base(root: &Path) -> PathBuf;

    /// The host directory of a layer's branch (its own entries, markers included).
    fn branch_dir(root: &Path, id: &LayerId) -> PathBuf;

    /// Where a layer's changes are staged before they are renamed into its branch (on the
    /// same filesystem).
    fn stage_dir(root: &Path, id: &LayerId) -> PathBuf;

    /// Makes a layer's directories and files in the store, complete and durable; the layer
    /// table, written afterwards by the caller, is the commit point.
    fn create_layer_dirs(cx: &mut Cx<'_>, id: &LayerId, parent: Option<&LayerId>) -> Result<()>;

    /// Cleans up after a `create_layer_dirs` that failed (best effort).
    fn discard_layer(root: &Path, id: &LayerId);

    /// Removes a layer's directories and files (after the table dropped it).
    fn remove_layer_dirs(root: &Path, id: &LayerId) -> Result<()>;

    /// Sweeps what a crash can leave: layers the table does not name (`known`), staged
    /// layers, staged entries of the known layers.
    fn sweep(root: &Path, known: &[LayerId]) -> Result<()>;

    /// `fsck`: which layers of `table` have their branch, and what no layer names.
    fn layer_data(root: &Path, table: &LayerTable) -> Result<LayerData>;

    /// `fsck`: the housekeeping of the layout (staging, each layer's work or orphan
    /// directory, chain files) against the store's table; with `repair`, fixes what holds
    /// no committed data.
    fn check_layout(store: &Store, repair: bool, report: &mut CheckReport) -> Result<()>;
}

/// A union driver: a branch directory per layer, a layer's view the merge of its stack of
/// branches, copy-up on the first change of a lower entry.
#[derive(Debug)]
pub struct Union<F: Flavor> {
    /// The store's root directory.
    pub(crate) root: PathBuf,
    pub(crate) flavor: F,
    stacks: HashMap<LayerId, Arc<Stack>>,
    pub(crate) cache: Cache,
    seq: u64,
}

impl<F: Flavor> Union<F> {
    fn new(store: &Store) -> Result<Self> {
        let flavor = F::from_options(store.options())?;
        Ok(Union {
            root: store.root().to_path_buf(),
            flavor,
            stacks: HashMap::new(),
            cache: Cache::default(),
            seq: 0,
        })
    }

    /// The host directory of a layer's branch.
    pub fn branch_dir(&self, id: &LayerId) -> PathBuf {
        F::Layout::branch_dir(&self.root, id)
    }

    /// The on-disk format this store uses.
    pub fn format(&self) -> &F::Format {
        self.flavor.format()
    }

    /// Entries in the lookup cache (all layers).
    pub fn cached_entries(&self) -> usize {
        self.cache.len()
    }

    /// A layer's stack, from the layer table (cached: a layer's chain never changes).
    fn stack(&mut self, cx: &mut Cx<'_>, layer: &LayerId) -> Result<Arc<Stack>> {
        if let Some(s) = self.stacks.get(layer) {
            return Ok(Arc::clone(s));
        }
        let ids = cx.store.table().chain(layer)?;
        let dirs = ids
            .iter()
            .map(|id| F::Layout::branch_dir(&self.root, id))
            .collect();
        let s = Arc::new(Stack { ids, dirs });
        self.stacks.insert(layer.clone(), Arc::clone(&s));
        Ok(s)
    }

    fn walk<'a>(&'a mut self, cx: &'a mut Cx<'_>, stack: &'a Stack) -> Walk<'a, F::Format> {
        Walk {
            format: self.flavor.format(),
            stack,
            cache: &mut self.cache,
            meter: &mut *cx.meter,
        }
    }
}

/// What a layer's branch holds: its own entries only (parents excluded), as a flavor's
/// walk of the branch counts them.
#[derive(Debug, Default, Clone, Copy)]
pub struct BranchUsage {
    /// Bytes of file data (metacopy files hold none) and symlink targets.
    pub bytes: u64,
    /// Entries, whiteouts and opaque markers included (hard links counted once;
    /// housekeeping excluded).
    pub inodes: u64,
    /// Bytes allocated on the host.
    pub disk: u64,
    /// Whiteouts.
    pub whiteouts: u64,
    /// Opaque directories.
    pub opaque_dirs: u64,
    /// Metacopy files (formats that have them).
    pub metacopy_files: u64,
}

impl BranchUsage {
    /// The layer's usage: bytes and inodes, the host's allocation, whiteouts and opaque
    /// directories in the details, and the metacopy files where the format has them
    /// (`metacopy`).
    pub fn usage(&self, metacopy: bool) -> Usage {
        let mut details = BTreeMap::from([
            ("disk_bytes".to_string(), self.disk),
            ("whiteouts".to_string(), self.whiteouts),
            ("opaque_dirs".to_string(), self.opaque_dirs),
        ]);
        if metacopy {
            details.insert("metacopy_files".to_string(), self.metacopy_files);
        }
        Usage {
            bytes: self.bytes,
            inodes: self.inodes,
            details,
        }
    }
}
