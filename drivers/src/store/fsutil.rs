//! Small file-system helpers with crash-safety guarantees.

use layerlab_core::{Error, IoContext, Result};
use std::io::Write;
use std::path::Path;

/// How an atomic replacement failed: before the rename (nothing changed) or after it (the
/// new content is in place but the directory fsync failed, so its durability is unknown).
#[derive(Debug)]
pub enum Replace {
    /// Nothing changed: the old content is in place.
    NotDone(Error),
    /// The new content is in place, not known to be durable.
    Unsynced(Error),
}

impl From<Replace> for Error {
    fn from(r: Replace) -> Error {
        match r {
            Replace::NotDone(e) | Replace::Unsynced(e) => e,
        }
    }
}

/// Replaces `path` with `bytes` atomically: a reader (or a crash) sees the old content or
/// the new, never a mix. Writes `<path>.tmp`, fsyncs it, renames it over `path`, fsyncs
/// the directory. An error means `path` still holds the old content; the rename is the
/// commit point, so once it succeeded the replacement is reported as done (every later
/// open reads the new content) even if the directory's fsync then fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    match replace_file(path, bytes) {
        Ok(()) | Err(Replace::Unsynced(_)) => Ok(()),
        Err(Replace::NotDone(e)) => Err(e),
    }
}

/// [`write_atomic`], saying whether a failure came before or after the rename.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::result::Result<(), Replace> {
    let tmp = path.with_extension("tmp");
    let staged = (|| {
        let mut f = std::fs::File::create(&tmp).at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        std::fs::rename(&tmp, path).at(path)
    })();
    if let Err(e) = staged {
        let _ = std::fs::remove_file(&tmp);
        return Err(Replace::NotDone(e));
    }
    match path.parent() {
        Some(dir) => fsync_dir(dir).map_err(Replace::Unsynced),
        None => Ok(()),
    }
}

/// fsyncs a directory, making renames and creations in it durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    #[cfg(test)]
    if faults::take_dir_fsync_failure() {
        return Err(Error::io(dir, std::io::Error::from_raw_os_error(5)));
    }
    std::fs::File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

/// Faults the unit tests inject into this module (EIO from a directory fsync).
#[cfg(test)]
pub(crate) mod faults {
    use std::cell::Cell;

    thread_local! {
        static DIR_FSYNC: Cell<Option<u32>> = const { Cell::new(None) };
    }

    /// Makes the directory fsync after `skip` more successful ones fail once (EIO), on
    /// this thread.
    pub(crate) fn fail_dir_fsync_after(skip: u32) {
        DIR_FSYNC.with(|c| c.set(Some(skip)));
    }

    pub(super) fn take_dir_fsync_failure() -> bool {
        DIR_FSYNC.with(|c| match c.get() {
            Some(0) => {
                c.set(None);
                true
            }
            Some(n) => {
                c.set(Some(n - 1));
                false
            }
            None => false,
        })
    }
}
