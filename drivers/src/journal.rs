//! The intent journal: what makes a compound command (`copy`, `mkdir -p`, `rm -r`, `write`
//! of a new file: many driver calls, each committed on its own) whole or absent under a
//! crash, on every driver, through the driver trait alone.
//!
//! Before its first change the command writes its intent to `<root>/journal.json`
//! (replaced atomically and fsynced); after its last change it removes the file. A writer
//! that opens the store and finds the file finishes the intent before anything else
//! ([`recover`], called by [`crate::Layers::open`]):
//!
//! - [`Intent::Undo`]: the command only adds entries where the view had none; the
//!   topmost of them are listed, and recovery removes whatever of them exists. Removing an
//!   entry the view did not have restores the view exactly (a union driver puts its
//!   whiteout back), so an interrupted command is absent.
//! - [`Intent::Redo`]: the command removes one subtree (`rm -r`); recovery removes what is
//!   left of it, so an interrupted command is whole. The journal entry is the commit point.
//!
//! Recovery is idempotent, and the file is removed only after it: a crash during recovery
//! is recovered by the next open. Readers (`Access::Read`) do not recover; they see the
//! store as the crash left it until the next writer opens it.
//!
//! In the process itself [`run`] gives the same outcome when the command fails: an `Undo`
//! is undone at once (the error then means "nothing happened"); a failed `Redo` removal is
//! completed once more (done), or left to the next writer with the error.

use crate::store::fsutil;
use layerlab_core::{ops, Error, LayerDriver, LayerId, LayerPath, LayerState, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What an unfinished command meant to do, and how to finish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Intent {
    /// An additive command: these entries of `layer` were absent before it (the topmost of
    /// what it adds); recovery removes them.
    Undo {
        /// The layer changed.
        layer: LayerId,
        /// The entries to remove.
        remove: Vec<LayerPath>,
    },
    /// A removal: recovery removes what is left of `remove_all` in `layer`.
    Redo {
        /// The layer changed.
        layer: LayerId,
        /// The subtree to remove.
        remove_all: LayerPath,
    },
}

/// The journal file of the store at `root`.
pub fn file(root: &Path) -> PathBuf {
    root.join("journal.json")
}

fn corrupt(root: &Path, detail: String) -> Error {
    Error::Corrupt {
        path: file(root),
        detail,
    }
}

fn begin(root: &Path, intent: &Intent) -> Result<()> {
    let json = serde_json::to_vec_pretty(intent).map_err(|e| corrupt(root, e.to_string()))?;
    fsutil::write_atomic(&file(root), &json)
}

fn end(root: &Path) -> Result<()> {
    let f = file(root);
    match std::fs::remove_file(&f) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(f, e)),
    }
}

/// Removes `path` from `layer`'s view (and everything under it) if it is there.
fn remove_if_present<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<()> {
    match d.stat(layer, path) {
        Ok(_) => ops::remove_all(d, layer, path),
        Err(Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn finish<D: LayerDriver + ?Sized>(d: &mut D, intent: &Intent) -> Result<()> {
    match intent {
        Intent::Undo { layer, remove } => {
            for p in remove.iter().rev() {
                remove_if_present(d, layer, p)?;
            }
            Ok(())
        }
        Intent::Redo { layer, remove_all } => remove_if_present(d, layer, remove_all),
    }
}

/// Finishes the intent an interrupted command left in the store at `root`, if any, then
/// removes the journal. Called by a writer as it opens the store.
pub fn recover<D: LayerDriver + ?Sized>(d: &mut D, root: &Path) -> Result<()> {
    let f = file(root);
    let bytes = match std::fs::read(&f) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(f, e)),
    };
    let intent: Intent = serde_json::from_slice(&bytes).map_err(|e| {
        corrupt(
            root,
            format!("the journal of an interrupted command cannot be read: {e}"),
        )
    })?;
    let layer = match &intent {
        Intent::Undo { layer, .. } | Intent::Redo { layer, .. } => layer,
    };
    if d.layer(layer).is_ok_and(|i| i.state == LayerState::Active) {
        d.meter_mut()
            .step(|| format!("journal: finishing an interrupted command: {intent:?}"));
        finish(d, &intent)?;
    }
    end(root)
}

/// Runs the compound command `f` under `intent` (see the module doc). The result is the
/// command's: `Ok` only when all of it happened, an error only when none of it did. A
/// command that cannot change the layer (missing, committed) or removes a missing path
/// runs without a journal, so that it fails as it would.
pub fn run<D: LayerDriver + ?Sized, E: From<Error>>(
    d: &mut D,
    root: &Path,
    intent: &Intent,
    f: impl FnOnce(&mut D) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let (layer, missing) = match intent {
        Intent::Undo { layer, .. } => (layer, false),
        Intent::Redo { layer, remove_all } => (layer, d.stat(layer, remove_all).is_err()),
    };
    let active = d.layer(layer).is_ok_and(|i| i.state == LayerState::Active);
    if !active || missing {
        return f(d);
    }
    begin(root, intent)?;
    let result = f(d);
    match intent {
        Intent::Undo { .. } => {
            let failed = match result {
                Ok(()) => match end(root) {
                    Ok(()) => return Ok(()),
                    // the journal stays, and the next writer would undo the command: undo
                    // it now and report the failure
                    Err(e) => E::from(e),
                },
                Err(e) => e,
            };
            finish(d, intent)?;
            end(root)?;
            Err(failed)
        }
        Intent::Redo { .. } => {
            if let Err(e) = result {
                // past the commit point: complete the removal now; if that fails too, the
                // layer refuses changes (no journal is left to wedge the next writer)
                if finish(d, intent).is_err() {
                    let _ = end(root);
                    return Err(e);
                }
            }
            // a journal left behind would only remove what is gone already
            let _ = end(root);
            Ok(())
        }
    }
}
