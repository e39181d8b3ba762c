//! Small file-system helpers with crash-safety guarantees.

use layerlab_core::{IoContext, Result};
use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes` atomically: a reader (or a crash) sees the old content or
/// the new, never a mix. Writes `<path>.tmp`, fsyncs it, renames it over `path`, fsyncs
/// the directory. An error means `path` still holds the old content; the rename is the
/// commit point, so once it succeeded the replacement is reported as done (every later
/// open reads the new content) even if the directory's fsync then fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let staged = (|| {
        let mut f = std::fs::File::create(&tmp).at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)
    })();
    if let Err(e) = staged {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err::<(), _>(e).at(path);
    }
    if let Some(dir) = path.parent() {
        // after the commit point: a failed directory fsync cannot undo the rename
        let _ = fsync_dir(dir);
    }
    Ok(())
}

/// fsyncs a directory, making renames and creations in it durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).at(dir)
}
