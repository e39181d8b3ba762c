//! Small file-system helpers with crash-safety guarantees.

use layerlab_core::{IoContext, Result};
use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes` atomically: a reader (or a crash) sees the old content or
/// the new, never a mix. Writes `<path>.tmp`, fsyncs it, renames it over `path`, fsyncs
/// the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    std::fs::rename(&tmp, path).at(path)?;
    if let Some(dir) = path.parent() {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory, making renames and creations in it durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).at(dir)
}
