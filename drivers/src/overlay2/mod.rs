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
//! Lookup walks the stack ([`crate::union::lookup`]): the layer's `diff/`, then each lower
//! `diff/`, top down, component by component with `lstat` only (a symlink stored in a
//! layer is never followed). Every probe counts; a cache of resolved components answers
//! warm lookups with one cache hit and no probe, as the kernel's dentry cache does.
//!
//! The driver itself is the shared [`Union`] driver (walk, merge, copy-up, every change);
//! this module holds only what is overlay2's own: the layout ([`layout`]), the branch
//! format ([`OverlayFormat`]) and the options ([`OverlayFlavor`]).
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

#[cfg(test)]
mod tests;

pub use crate::overlayfs::layout::{self, short_name};
pub use crate::overlayfs::{OverlayFormat, MAX_DEPTH};
pub use crate::union::{
    stage_copy, BranchFormat, Cache, CopyUp, Found, Listed, Probe, Stack, Walk,
};

use crate::backend::Cx;
use crate::fsck::{CheckReport, LayerData};
use crate::hostfs;
use crate::options::{self, OptionSpec};
use crate::store::Options;
use crate::store::{LayerTable, Store};
use crate::union::{Flavor, Layout, Union};
use layerlab_core::{Error, LayerId, LowerDirRename, Result, Usage};
use std::path::{Path, PathBuf};

/// The overlay2 driver: the shared union driver with overlay2's layout and format.
pub type Overlay2 = Union<OverlayFlavor>;

/// What is overlay2's own: the overlayfs branch format and its options.
#[derive(Debug, Clone)]
pub struct OverlayFlavor {
    format: OverlayFormat,
    metacopy: bool,
}

fn userxattr_of(options: &Options) -> Result<bool> {
    match options.get("userxattr").map(String::as_str) {
        None | Some("auto") => Ok(!hostfs::privileged()),
        Some(_) => options::flag(OverlayFlavor::NAME, options, "userxattr"),
    }
}

impl Overlay2 {
    /// The host directory of a layer (`<root>/overlay2/<dir>`).
    pub fn layer_dir(&self, id: &LayerId) -> PathBuf {
        layout::layer_dir(&self.root, id)
    }

    /// The host directory of a layer's own entries (`<root>/overlay2/<dir>/diff`).
    pub fn diff_dir(&self, id: &LayerId) -> PathBuf {
        layout::diff_dir(&self.root, id)
    }
}

/// overlay2's layout, as the union driver uses it: the one the kernel-overlay driver
/// shares ([`layout`]), with a layer's `diff/` as its branch and `work/` as its staging.
#[derive(Debug)]
pub struct Overlay2Layout;

impl Layout for Overlay2Layout {
    fn init_dirs(root: &Path) -> Result<()> {
        layout::init_dirs(root)
    }

    fn base(root: &Path) -> PathBuf {
        layout::base(root)
    }

    fn branch_dir(root: &Path, id: &LayerId) -> PathBuf {
        layout::diff_dir(root, id)
    }

    fn stage_dir(root: &Path, id: &LayerId) -> PathBuf {
        layout::work_dir(root, id)
    }

    fn create_layer_dirs(cx: &mut Cx<'_>, id: &LayerId, parent: Option<&LayerId>) -> Result<()> {
        layout::create_layer_dirs(cx.store.root(), id, parent, cx.meter).map(drop)
    }

    fn discard_layer(root: &Path, id: &LayerId) {
        layout::discard_staged(root, id);
    }

    fn remove_layer_dirs(root: &Path, id: &LayerId) -> Result<()> {
        layout::remove_layer_dirs(root, id)
    }

    fn sweep(root: &Path, known: &[LayerId]) -> Result<()> {
        layout::sweep(root, known)
    }

    fn layer_data(root: &Path, table: &LayerTable) -> Result<LayerData> {
        layout::layer_data(root, table)
    }

    fn check_layout(store: &Store, repair: bool, report: &mut CheckReport) -> Result<()> {
        layout::check_layout(store.root(), store.table(), true, repair, report)
    }
}

impl Flavor for OverlayFlavor {
    type Format = OverlayFormat;
    type Layout = Overlay2Layout;

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
    const MAX_DEPTH: usize = MAX_DEPTH;
    const LOWER_DIR_RENAME: LowerDirRename = LowerDirRename::CrossDevice;
    const NO_DIR_RENAME: &'static str = "overlay2 has no redirect_dir";
    const LOWER_HARDLINKS_ONE_INODE: bool = false;
    const BRANCH: &'static str = "diff";

    fn init_options(given: Options) -> Result<Options> {
        let mut options = options::resolve(Self::NAME, Self::OPTIONS, given)?;
        let metacopy = options::flag(Self::NAME, &options, "metacopy")?;
        options.insert(
            "metacopy".into(),
            if metacopy { "on" } else { "off" }.into(),
        );
        let userxattr = userxattr_of(&options)?;
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
        Ok(options)
    }

    fn from_options(opts: &Options) -> Result<Self> {
        let metacopy = options::flag(Self::NAME, opts, "metacopy")?;
        let userxattr = userxattr_of(opts)?;
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
        Ok(OverlayFlavor {
            format: OverlayFormat::new(userxattr, metacopy),
            metacopy,
        })
    }

    fn format(&self) -> &OverlayFormat {
        &self.format
    }

    fn usage(&self, root: &Path, id: &LayerId) -> Result<Usage> {
        Ok(layout::diff_usage(&layout::diff_dir(root, id), &self.format)?.usage(true))
    }

    fn facts(&self) -> Vec<(String, String)> {
        vec![
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
        ]
    }
}
