//! aufs: one branch directory per layer, a layer's view the union of its stack of branches
//! (top first), in Docker's aufs layout, with the markers aufs and the OCI image-spec
//! layer format use.
//!
//! # On-disk format
//!
//! ```text
//! <root>/aufs/diff/<dir>/              the layer's branch: its own entries and markers
//! <root>/aufs/diff/<dir>/.wh..wh.orph/ aufs's orphan directory: staging for changes
//! <root>/aufs/layers/<dir>             the parent chain, one layer id a line, parent
//!                                      first; empty for a base layer (as Docker writes it)
//! <root>/aufs/mnt/<dir>/               the mount point, made and never mounted
//! <root>/aufs/.staging/<dir>/          a layer under construction
//! ```
//!
//! Inside a branch ([`AufsFormat`]): a deleted name `x` is a **whiteout** file `.wh.x`
//! (empty, mode 0444) beside where `x` was; a directory that hides everything below it
//! is **opaque** and holds an empty `.wh..wh..opq`; names starting `.wh..wh.` are aufs's
//! housekeeping (here only `.wh..wh.orph` at a branch root). None of these names ever
//! shows in a listing or a lookup (layerlab paths may not start with `.wh.`). A branch
//! can hold `x` beside `.wh.x` between two steps of a change: the entry wins and hides
//! everything below (see [`format`](mod@format)). Owners a non-root process may not set
//! are kept in `user.layerlab.owner`, as in every file-backed driver (see
//! [`crate::hostfs`]).
//!
//! The branches listed in `layers/<dir>` are the stack; the layer table (`layers.json`)
//! is what the driver reads, and the chain file says the same (Docker reads it to mount).
//!
//! # Cost model: what is cached
//!
//! - **Lookup** probes branch after branch from the top (`lstat` of the name, and of
//!   `.wh.<name>` where it is absent; of `.wh..wh..opq` inside a directory), one probe
//!   counted per branch consulted, until an entry, a whiteout or an opaque directory
//!   decides. aufs dentries live in the kernel's dentry cache like overlayfs's, and with
//!   the default `udba=reval` a cached dentry is revalidated only against the branches it
//!   holds, so a warm lookup is modelled exactly as overlay2's: one cache hit, no probe.
//!   Cold lookups grow with depth on both.
//! - **readdir** merges every branch in which the directory is visible, every time:
//!   every host entry read counts as one entry scanned, whiteouts, opaque markers and
//!   the housekeeping `.wh..wh.orph` of every branch root included. aufs keeps a merged
//!   listing (its `vdir`) only for `rdcache` seconds (10 by default); counts may not
//!   depend on time, so the model takes every listing as one made after `rdcache`
//!   expired: no listing cache (docs/DESIGN.md section 4: "every readdir merges every
//!   branch").
//!   overlay2 does not cache listings either (overlayfs frees its merged-dir cache on the
//!   last close); a listing of a directory present in every branch costs the same number
//!   of entries on both, except that aufs also reads its markers and housekeeping
//!   entries: the root of a stack of `n` branches costs `n` more entries on aufs.
//! - **Copy-up**: the first change of a lower file copies the whole file (and its parent
//!   directories) up into the top branch, fsynced, as aufs's `cpup`; chmod/chown copy the
//!   whole file too (aufs has no metacopy). Renaming a directory present in a lower
//!   branch fails with EXDEV (aufs without `dirren`). More than 127 branches fail with
//!   `TooManyLayers` (aufs's default build limit, `CONFIG_AUFS_BRANCH_MAX_127`).
//!
//! The stack walk, the merge, copy-up and every change are the shared union driver
//! ([`crate::union`]); this module holds only the layout and the format.
//!
//! # Crash safety
//!
//! - **Layer creation**: the branch (with its orphan directory) and the `layers` file are
//!   made and fsynced in `.staging/<dir>`, renamed into `diff/` and `layers/`, then
//!   `mnt/<dir>` is made; the layer table (replaced atomically) is the commit point. A
//!   crash before it leaves entries the table does not name: ignored, and swept by the
//!   next writer (`open` with `Access::Write`), with anything left in an orphan directory.
//! - **Layer removal**: the table drops the layer first, then its mount point, chain file
//!   and branch are deleted; a crash in between leaves garbage the next writer sweeps.
//! - **Changes in a layer**: every new entry (file, directory, symlink, hard link,
//!   whiteout, copy-up) is completed in the branch's `.wh..wh.orph/` (same filesystem)
//!   and renamed into place, so it appears whole or not at all; a copied-up file's data
//!   is fsynced before its rename; parents are copied first, top down (a crash in
//!   between leaves extra merged directories identical to the lower ones). Whiteouts are
//!   separate names, so a change that replaces an entry by its whiteout or a whiteout by
//!   an entry takes two renames/unlinks, ordered so that each intermediate state shows
//!   the old view or the new one: the whiteout is made before the entry is removed (the
//!   entry still wins), a new entry is placed before the whiteout it replaces is
//!   removed (the entry already wins, and a directory there is already opaque). Renaming a
//!   directory over an empty one exchanges them (`RENAME_EXCHANGE`), then removes the old
//!   one from the old name, which already carries its whiteout where one is needed; a
//!   crash in between shows an empty directory at the old name.

pub mod format;
pub mod layout;

#[cfg(test)]
mod tests;

pub use format::{AufsFormat, META_PREFIX, OPAQUE, ORPH, WH_PREFIX};

pub use layout::AufsLayout;

use crate::options::OptionSpec;
use crate::store::Options;
use crate::union::{Flavor, Layout, Union};
use layerlab_core::{LayerId, LowerDirRename, Result, Usage};
use std::path::{Path, PathBuf};

/// The deepest stack aufs allows: 127 branches (aufs's default build limit).
pub const MAX_DEPTH: usize = 127;

/// The aufs driver: the shared union driver with aufs's layout and format.
pub type Aufs = Union<AufsFlavor>;

/// What is aufs's own: its layout and its branch format.
#[derive(Debug, Clone, Copy, Default)]
pub struct AufsFlavor {
    format: AufsFormat,
}

impl Aufs {
    /// The host directory of a layer's branch (`<root>/aufs/diff/<dir>`).
    pub fn diff_dir(&self, id: &LayerId) -> PathBuf {
        AufsLayout::branch_dir(&self.root, id)
    }

    /// A layer's parent chain as its `layers/<dir>` file lists it (parent first).
    pub fn parent_chain(&self, id: &LayerId) -> Result<Vec<String>> {
        layout::read_layers(&self.root, id)
    }
}

impl Flavor for AufsFlavor {
    type Format = AufsFormat;
    type Layout = AufsLayout;

    const NAME: &'static str = "aufs";
    const DESCRIPTION: &'static str =
        "a branch directory per layer, .wh.<name> whiteouts (Docker's aufs): copy-up on \
         first write, one probe per branch until cached, every readdir merges every branch";
    const OPTIONS: &'static [OptionSpec] = &[];
    const MAX_DEPTH: usize = MAX_DEPTH;
    const LOWER_DIR_RENAME: LowerDirRename = LowerDirRename::CrossDeviceUnlessEmpty;
    const NO_DIR_RENAME: &'static str = "aufs has no dirren";
    const LOWER_HARDLINKS_ONE_INODE: bool = true;
    const BRANCH: &'static str = "branch";

    fn from_options(_options: &Options) -> Result<Self> {
        Ok(AufsFlavor::default())
    }

    fn format(&self) -> &AufsFormat {
        &self.format
    }

    fn usage(&self, root: &Path, id: &LayerId) -> Result<Usage> {
        Ok(layout::branch_usage(&AufsLayout::branch_dir(root, id))?.usage(false))
    }

    fn facts(&self) -> Vec<(String, String)> {
        vec![
            ("whiteout format".into(), ".wh.<name> file".into()),
            ("opaque marker".into(), ".wh..wh..opq file".into()),
            (
                "dirren".into(),
                "off (renaming a lower directory: EXDEV)".into(),
            ),
            (
                "readdir".into(),
                "merges every branch on every listing (rdcache expired)".into(),
            ),
        ]
    }
}
