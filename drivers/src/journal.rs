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
//! - [`Intent::Apply`]: the command changes existing entries too (`apply` into an active
//!   layer: removals, replacements, owners, modes, extended attributes), so a list of
//!   paths cannot undo it. Its [`undo::UndoLog`] lives in the staging directory
//!   `<root>/journal.undo/` (made before `journal.json` names it): before each change its
//!   undo record is written there, a removed subtree's content first. Recovery undoes the
//!   records newest first (exactly what the process does on a failure, [`UndoLog::undo`]),
//!   so an interrupted apply is absent; then `journal.json` goes, then the staging
//!   directory. A staging directory with no `journal.json` naming it (a kill before the
//!   intent was written, or after it was removed) holds nothing to undo and is removed.
//! - [`Intent::Cut`]: `write` replaces a file with a shorter content (on the drivers
//!   without a staged replace: the new bytes at 0, then a cut, each whole); the intent
//!   names the new length and the checksum of the new content ([`cut`]). Recovery cuts the
//!   file when its first bytes are the new content and it is still longer, so an
//!   interrupted replace is whole; otherwise the write had not happened and the file is
//!   as it was.
//!
//! The undo records are not fsynced: a kill -9 leaves them in the page cache, where the
//! next open reads them, and an fsync per change would cost an apply of many entries far
//! more than the changes (the driver's own fsyncs are one per batch). `journal.json` itself
//! is fsynced before the first change, and its removal (the commit point of a command that
//! completed) is made durable (the store directory fsynced) before the command reports
//! success. A host crash (power loss) during an apply therefore leaves the journal, and the
//! next open undoes every record that reached the disk; a change whose record was lost
//! with the page cache while the change itself reached the disk stays, so after a host
//! crash an interrupted apply is undone as far as its records survived, not always whole
//! (a completed apply, whose batch the driver fsynced before the journal went, stays).
//!
//! Recovery is idempotent, and the file is removed only after it: a crash during recovery
//! is recovered by the next open. Readers (`Access::Read`) do not recover; they see the
//! store as the crash left it until the next writer opens it.
//!
//! In the process itself [`run`] gives the same outcome when the command fails: an `Undo`
//! is undone at once (the error then means "nothing happened"); a failed `Redo` removal is
//! completed once more (done), or left to the next writer with the error; a failed
//! `Cut` is completed if its new content is in place (done), and otherwise nothing
//! happened.

pub mod cut;
pub mod undo;

use crate::store::fsutil;
use layerlab_core::{ops, Error, LayerDriver, LayerId, LayerPath, LayerState, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
pub use undo::{Undo, UndoLog};

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
    /// A command that changes existing entries of `layer`: recovery undoes the records of
    /// the undo log in the staging directory ([`undo::dir`]).
    Apply {
        /// The layer changed.
        layer: LayerId,
    },
    /// A replace by a shorter content: recovery cuts `path` to `len` if its first `len`
    /// bytes have the CRC-32C `crc` (the new content written, the cut not yet made).
    Cut {
        /// The layer changed.
        layer: LayerId,
        /// The file replaced.
        path: LayerPath,
        /// The new length.
        len: u64,
        /// The CRC-32C of the new content ([`cut::checksum`]).
        crc: u32,
    },
}

impl Intent {
    fn layer(&self) -> &LayerId {
        match self {
            Intent::Undo { layer, .. }
            | Intent::Redo { layer, .. }
            | Intent::Apply { layer }
            | Intent::Cut { layer, .. } => layer,
        }
    }
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

/// Removes the journal: the commit point of a command that completed (or of a recovery).
/// Once the file is gone the command is done; the store directory's fsync that makes the
/// removal durable against a host crash may fail without changing that.
fn end(root: &Path) -> Result<()> {
    let f = file(root);
    match std::fs::remove_file(&f) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(f, e)),
    }
    let _ = fsutil::fsync_dir(root);
    Ok(())
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

fn finish<D: LayerDriver + ?Sized>(d: &mut D, root: &Path, intent: &Intent) -> Result<()> {
    match intent {
        Intent::Undo { layer, remove } => {
            for p in remove.iter().rev() {
                remove_if_present(d, layer, p)?;
            }
            Ok(())
        }
        Intent::Redo { layer, remove_all } => remove_if_present(d, layer, remove_all),
        Intent::Apply { layer } => {
            d.begin_batch();
            let undone = undo::undo_from_disk(d, layer, &undo::dir(root));
            let synced = d.end_batch();
            undone.and(synced)
        }
        Intent::Cut {
            layer,
            path,
            len,
            crc,
        } => cut::complete(d, layer, path, *len, *crc).map(|_| ()),
    }
}

/// Finishes the intent an interrupted command left in the store at `root`, if any, then
/// removes the journal. Called by a writer as it opens the store.
pub fn recover<D: LayerDriver + ?Sized>(d: &mut D, root: &Path) -> Result<()> {
    let f = file(root);
    let bytes = match std::fs::read(&f) {
        Ok(b) => b,
        // a staging directory no intent names holds nothing to undo
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return undo::remove_dir(&undo::dir(root))
        }
        Err(e) => return Err(Error::io(f, e)),
    };
    let intent: Intent = serde_json::from_slice(&bytes).map_err(|e| {
        corrupt(
            root,
            format!("the journal of an interrupted command cannot be read: {e}"),
        )
    })?;
    if d.layer(intent.layer())
        .is_ok_and(|i| i.state == LayerState::Active)
    {
        d.meter_mut()
            .step(|| format!("journal: finishing an interrupted command: {intent:?}"));
        finish(d, root, &intent)?;
    }
    end(root)?;
    undo::remove_dir(&undo::dir(root))
}

/// Starts a command that changes existing entries of `layer` (see [`Intent::Apply`]):
/// makes the staging directory of its undo log, then writes the intent. The caller records
/// every change in the log before making it, then calls [`end_apply`] (done) or
/// [`UndoLog::undo`] and [`end_apply`] (undone). An error means nothing was changed.
pub fn begin_apply(root: &Path, layer: &LayerId) -> Result<UndoLog> {
    let log = UndoLog::durable(root)?;
    if let Err(e) = begin(
        root,
        &Intent::Apply {
            layer: layer.clone(),
        },
    ) {
        let _ = undo::remove_dir(&undo::dir(root));
        return Err(e);
    }
    Ok(log)
}

/// Ends a command started with [`begin_apply`] whose changes are all made and durable
/// (or all undone): removes the journal (the commit point), then the staging directory
/// (one left by a failure here is removed by the next writer's open). An error means the
/// journal is still there: the next writer's open would undo the command.
pub fn end_apply(root: &Path, log: &UndoLog) -> Result<()> {
    end(root)?;
    if let Some(dir) = log.staging() {
        let _ = undo::remove_dir(dir);
    }
    Ok(())
}

/// Runs the compound command `f` under `intent` (see the module doc). The result is the
/// command's: `Ok` only when all of it happened, an error only when none of it did. A
/// command that cannot change the layer (missing, committed) or removes a missing path
/// runs without a journal, so that it fails as it would. An [`Intent::Apply`] needs its
/// undo log, which `f` cannot write: it is begun with [`begin_apply`], and refused here.
pub fn run<D: LayerDriver + ?Sized, E: From<Error>>(
    d: &mut D,
    root: &Path,
    intent: &Intent,
    f: impl FnOnce(&mut D) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let (layer, missing) = match intent {
        Intent::Undo { layer, .. } | Intent::Cut { layer, .. } => (layer, false),
        Intent::Redo { layer, remove_all } => (layer, d.stat(layer, remove_all).is_err()),
        Intent::Apply { layer } => {
            return Err(E::from(Error::InvalidArgument {
                layer: layer.clone(),
                path: LayerPath::root(),
                reason: "an apply is journalled with its undo log (begin_apply)".into(),
            }))
        }
    };
    let active = d.layer(layer).is_ok_and(|i| i.state == LayerState::Active);
    if !active || missing {
        return f(d);
    }
    begin(root, intent)?;
    let result = f(d);
    match intent {
        Intent::Undo { .. } | Intent::Apply { .. } => {
            let failed = match result {
                Ok(()) => match end(root) {
                    Ok(()) => return Ok(()),
                    // the journal stays, and the next writer would undo the command: undo
                    // it now and report the failure
                    Err(e) => E::from(e),
                },
                Err(e) => e,
            };
            finish(d, root, intent)?;
            end(root)?;
            Err(failed)
        }
        Intent::Cut {
            layer,
            path,
            len,
            crc,
        } => {
            if let Err(e) = result {
                // nothing happened, unless the new content is in place uncut: then the
                // cut completes the command (done), and failing that the journal stays
                // for the next writer, with the error
                match cut::complete(d, layer, path, *len, *crc) {
                    Ok(true) => {}
                    Ok(false) => {
                        end(root)?;
                        return Err(e);
                    }
                    Err(_) => return Err(e),
                }
            }
            // a journal left behind finds the file cut already and changes nothing
            let _ = end(root);
            Ok(())
        }
        Intent::Redo { .. } => {
            if let Err(e) = result {
                // past the commit point: complete the removal now; if that fails too, the
                // layer refuses changes (no journal is left to wedge the next writer)
                if finish(d, root, intent).is_err() {
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

#[cfg(test)]
mod tests;
