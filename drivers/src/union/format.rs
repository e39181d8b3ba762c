//! How a union driver marks deletions and opaque directories in a branch, behind one small
//! trait ([`BranchFormat`]), so that the stack walk and the directory merge in
//! [`super::lookup`] and the shared driver's changes serve every union driver:
//! overlay2 stores markers as the kernel's overlayfs does (a whiteout is a character device
//! 0/0 at the deleted name, an opaque directory carries an xattr:
//! [`crate::overlay2::OverlayFormat`]); aufs stores a `.wh.<name>` file beside the deleted
//! name and a `.wh..wh..opq` file inside an opaque directory ([`crate::aufs::AufsFormat`]).

use layerlab_core::{Error, FileKind, Result};
use std::path::{Path, PathBuf};

/// What one branch holds at one name: the answer to one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Nothing: look in the next branch down.
    Missing,
    /// A whiteout: the name is deleted here and in every branch below.
    Whiteout,
    /// An entry.
    Entry {
        /// What it is.
        kind: FileKind,
        /// For a directory: it hides the contents of the branches below.
        opaque: bool,
        /// For a file: only its metadata was copied up; the data is in a branch below.
        metacopy: bool,
    },
}

/// One host entry of a branch directory, as a listing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// A marker or housekeeping entry of the format itself (never shown).
    Skip,
    /// A whiteout hiding `name` in the branches below.
    Whiteout(String),
    /// A visible entry.
    Entry(String, FileKind),
}

/// How a union driver keeps whiteouts and opaque directories in a branch directory.
pub trait BranchFormat {
    /// True when a whiteout takes the deleted entry's own name (overlayfs: the character
    /// device replaces the entry); false when it is a separate name beside it (aufs:
    /// `.wh.<name>`), so that an entry and its whiteout can exist side by side.
    const WHITEOUT_IN_PLACE: bool;

    /// True where moving a directory into a merged parent directory marks it opaque, as
    /// overlayfs's `ovl_rename` does (`ovl_set_opaque_xerr` when the new parent is a merge
    /// directory); aufs does not.
    const OPAQUE_ON_MOVE_INTO_MERGE: bool = false;

    /// What the branch directory `parent` (a real directory, already checked) holds at
    /// `name`. One call is one probe.
    fn probe(&self, parent: &Path, name: &str) -> Result<Probe>;

    /// Every host entry of the branch directory `dir`, classified, in any order.
    fn list(&self, dir: &Path) -> Result<Vec<Listed>>;

    /// The host path of the whiteout that deletes the branch entry `dst`: `dst` itself
    /// when [`Self::WHITEOUT_IN_PLACE`], else the name beside it.
    fn whiteout_path(&self, dst: &Path) -> PathBuf;

    /// The host name of the whiteout hiding `hidden` in the same directory (`fsck` names
    /// it): `hidden` itself when [`Self::WHITEOUT_IN_PLACE`], else the name beside it.
    fn whiteout_host_name(&self, hidden: &str) -> String;

    /// Makes a whiteout at `path` (a fresh staging name).
    fn make_whiteout(&self, path: &Path) -> Result<()>;

    /// True when `path` (a [`Self::whiteout_path`]) holds a whiteout.
    fn is_whiteout_at(&self, path: &Path) -> Result<bool>;

    /// Marks a branch directory opaque.
    fn set_opaque(&self, dir: &Path) -> Result<()>;

    /// True when a branch directory is marked opaque.
    fn is_opaque(&self, dir: &Path) -> Result<bool>;

    /// True when metadata-only copy-ups are on (overlayfs `metacopy=on`).
    fn metacopy(&self) -> bool {
        false
    }

    /// Marks a file as a metacopy (its data lives in a lower branch). Only called when
    /// [`Self::metacopy`] is true.
    fn set_metacopy(&self, file: &Path) -> Result<()> {
        Err(Error::Corrupt {
            path: file.to_path_buf(),
            detail: "this branch format keeps no metacopy files".into(),
        })
    }
}

/// The error for a host entry a branch may not hold.
pub fn corrupt(path: &Path, what: &str) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        detail: what.to_string(),
    }
}
