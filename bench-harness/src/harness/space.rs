//! The space metric: **disk bytes**, what a store holds on the host's disk.
//!
//! Definition: the bytes the host filesystem has allocated (`st_blocks × 512`) for every
//! file and directory under the store's directory, each inode once (hard links), not
//! descending into other filesystems mounted below it (the kernel drivers' mounted views,
//! whose data is already counted in their backing files or the store's own files), those
//! mounted filesystems synced first (so a loop-mounted filesystem's data has reached its
//! backing file), minus the same figure for the store just after `init` (empty). So it
//! counts the image and every container, with whatever metadata the driver keeps on disk
//! for them, in the same way for every driver.
//!
//! Beside it, from the driver's own accounting: **exclusive bytes** (the sum over layers of
//! `usage()` bytes: what each layer holds alone), **logical bytes** (the file bytes the
//! containers' views show: what full copies would need), and **shared bytes** (disk bytes
//! that are no layer's alone: shared extents or blocks, and the driver's metadata; disk
//! minus exclusive, at least 0).

use super::error::{HarnessError, Result};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes allocated under `root` on its own filesystem. Filesystems mounted below it (a
/// kernel driver's loop-mounted filesystem) are synced first (`sync -f`), so that their data
/// has reached their backing files; the host filesystem counts blocks it has reserved for
/// data not yet written back (delayed allocation) as allocated, so nothing else is synced.
pub fn disk_bytes(root: &Path) -> Result<u64> {
    let (total, mounts) = walk(root)?;
    // an overlay view writes into the store's own files: nothing to sync for it
    let backed: Vec<&PathBuf> = mounts
        .iter()
        .filter(|m| layerlab_drivers::hostfs::fs_type_name(m) != "overlay")
        .collect();
    if backed.is_empty() {
        return Ok(total);
    }
    for m in backed {
        let _ = std::process::Command::new("sync").arg("-f").arg(m).status();
    }
    // the backing files grew by what was synced: count again
    Ok(walk(root)?.0)
}

/// The allocated bytes under `root` on its device, and the directories below it where
/// another filesystem is mounted (not entered).
fn walk(root: &Path) -> Result<(u64, Vec<PathBuf>)> {
    let top = std::fs::symlink_metadata(root).map_err(|e| HarnessError::io(root, e))?;
    let dev = top.dev();
    let mut seen = HashSet::from([top.ino()]);
    let mut total = top.blocks() * 512;
    let mut mounts = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| HarnessError::io(&dir, e))? {
            let path = entry.map_err(|e| HarnessError::io(&dir, e))?.path();
            let md = std::fs::symlink_metadata(&path).map_err(|e| HarnessError::io(&path, e))?;
            if md.dev() != dev {
                // another filesystem mounted here: its data is in a backing file (counted)
                // or in the store's own files (a kernel overlay view)
                mounts.push(path);
                continue;
            }
            if !seen.insert(md.ino()) {
                continue;
            }
            total += md.blocks() * 512;
            if md.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok((total, mounts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_allocated_bytes_and_hard_links_once() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::io(Path::new("tmp"), e))?;
        let empty = disk_bytes(dir.path())?;
        let f = dir.path().join("f");
        std::fs::write(&f, vec![7u8; 1 << 20]).map_err(|e| HarnessError::io(&f, e))?;
        let one = disk_bytes(dir.path())?;
        assert!(one - empty >= 1 << 20, "{empty} -> {one}");
        let link = dir.path().join("link");
        std::fs::hard_link(&f, &link).map_err(|e| HarnessError::io(&link, e))?;
        let linked = disk_bytes(dir.path())?;
        assert!(linked - one < 1 << 20, "a hard link is not a second copy");
        Ok(())
    }
}
