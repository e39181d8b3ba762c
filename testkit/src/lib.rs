//! What the integration tests of several layerlab crates share: the visible SKIP line, the
//! drivers a test runs on, a layer's view through a driver, a walk of a host directory, a tree of host files,
//! a flipped byte in a file, a command's output, a layer tar's entries with their attributes, and the median and
//! range of a benchmark's samples.
//!
//! A dev-dependency only: no library of the workspace depends on it. Tests that share
//! fixtures within one crate keep them in that crate's `tests/common`.

use layerlab_core::{ops, FileKind, LayerDriver, LayerId, LayerPath};
use layerlab_drivers::DRIVERS;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::Metadata;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes `SKIP {what}` to the raw stderr, which libtest does not capture, so that a skipped
/// test shows in `cargo test` output.
pub fn skip(what: &str) {
    let _ = std::io::stderr().write_all(format!("SKIP {what}\n").as_bytes());
}

/// The registered drivers `test` runs on: every one, or those `LAYERLAB_TEST_DRIVERS`
/// names (comma-separated); a SKIP line `{test} on {driver}: {why}` for each one this
/// machine cannot run.
pub fn drivers(test: &str) -> Vec<&'static str> {
    let only = std::env::var("LAYERLAB_TEST_DRIVERS").ok();
    DRIVERS
        .iter()
        .filter(|d| {
            only.as_ref()
                .is_none_or(|o| o.split(',').any(|n| n == d.name))
        })
        .filter(|d| match d.availability() {
            Ok(()) => true,
            Err(why) => {
                skip(&format!("{test} on {}: {why}", d.name));
                false
            }
        })
        .map(|d| d.name)
        .collect()
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The median (the mean of the two middle ones for an even count), minimum and maximum of
/// a benchmark's samples; NaN for none.
pub fn median_min_max(samples: &[f64]) -> (f64, f64, f64) {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let (Some(&min), Some(&max)) = (v.first(), v.last()) else {
        return (f64::NAN, f64::NAN, f64::NAN);
    };
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, min, max)
}

/// One entry of a layer's view as a driver shows it, everything but times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// File, directory, symlink, device or fifo.
    pub kind: FileKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner and group.
    pub owner: (u32, u32),
    /// A symlink's target.
    pub target: Option<String>,
    /// A file's content, as its SHA-256.
    pub content: Option<String>,
}

/// A layer's whole merged view through `d`, by path.
pub fn view<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
) -> layerlab_core::Result<BTreeMap<String, Seen>> {
    view_with(d, layer, |d, path, kind, md| {
        let content = match kind {
            FileKind::File => Some(sha256(&ops::read_all(d, layer, path)?)),
            _ => None,
        };
        Ok(Seen {
            kind,
            mode: md.mode,
            owner: (md.uid, md.gid),
            target: md.target,
            content,
        })
    })
}

/// A layer's whole merged view through `d`, by path, each entry as `entry` records it
/// from the path, the kind the walk saw and `stat` (reading more through `d` if it needs).
pub fn view_with<D: LayerDriver + ?Sized, E>(
    d: &mut D,
    layer: &LayerId,
    mut entry: impl FnMut(
        &mut D,
        &LayerPath,
        FileKind,
        layerlab_core::Metadata,
    ) -> layerlab_core::Result<E>,
) -> layerlab_core::Result<BTreeMap<String, E>> {
    let mut out = BTreeMap::new();
    for (path, kind) in ops::walk(d, layer, &LayerPath::root())? {
        let md = d.stat(layer, &path)?;
        out.insert(path.to_string(), entry(d, &path, kind, md)?);
    }
    Ok(out)
}

/// One entry below a host directory.
#[derive(Debug)]
pub struct HostEntry {
    /// The path relative to the walked directory, without a leading `/`.
    pub rel: String,
    /// The full path.
    pub path: PathBuf,
    /// Its `lstat`.
    pub meta: Metadata,
}

/// Every entry below `root` (not `root` itself), symlinks not followed, in no promised
/// order.
pub fn host_tree(root: &Path) -> std::io::Result<Vec<HostEntry>> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir)? {
            let path = e?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                todo.push(path.clone());
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            out.push(HostEntry { rel, path, meta });
        }
    }
    Ok(out)
}

/// A host tree as `/path` → `dir MODE UID:GID`, `symlink TARGET` or
/// `file MODE UID:GID SHA256`: what an image's files look like once mounted.
pub fn host_view(root: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in host_tree(root)? {
        let m = &e.meta;
        let own = format!("{:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid());
        let what = if m.is_dir() {
            format!("dir {own}")
        } else if m.file_type().is_symlink() {
            format!("symlink {}", std::fs::read_link(&e.path)?.display())
        } else {
            format!("file {own} {}", sha256(&std::fs::read(&e.path)?))
        };
        out.insert(format!("/{}", e.rel), what);
    }
    Ok(out)
}

/// Writes each `(path, content)` below `dir`, making the directories on the way: a test's
/// tree of host files (a build context) in one list.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) -> std::io::Result<()> {
    for (rel, content) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content)?;
    }
    Ok(())
}

/// Sets the mtime of the file at `path` to `secs` seconds after the epoch, and nothing
/// else.
pub fn set_mtime(path: &Path, secs: u64) -> std::io::Result<()> {
    let f = std::fs::File::options().write(true).open(path)?;
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Flips the bits of `mask` in the byte at `pos` of the file at `path`: damage on disk
/// for a test of what notices it.
pub fn flip_bits(path: &Path, pos: u64, mask: u8) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::options().read(true).write(true).open(path)?;
    let mut b = [0u8];
    f.read_exact_at(&mut b, pos)?;
    f.write_all_at(&[b[0] ^ mask], pos)
}

/// Runs `cmd`: its stdout when it succeeds, otherwise the command and its stderr.
pub fn output(cmd: &mut Command) -> Result<String, String> {
    let o = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// One entry of a tar as its headers say it: what a layer keeps beyond its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// The path as written.
    pub name: String,
    /// The type flag (`b'0'` file, `b'5'` directory, `b'6'` fifo, ...).
    pub kind: u8,
    /// Permission bits.
    pub mode: u32,
    /// Owner and group.
    pub owner: (u64, u64),
    /// Seconds and nanoseconds: the PAX `mtime` where there is one, else the header's.
    pub mtime: (i64, u32),
    /// Device major and minor.
    pub dev: (u32, u32),
    /// A link's target.
    pub link: String,
    /// The PAX `SCHILY.xattr.*` records, by name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// The content.
    pub data: Vec<u8>,
}

/// Every entry of the tar in `bytes`, in order.
pub fn tar_entries(bytes: &[u8]) -> std::io::Result<Vec<TarEntry>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(bytes);
    for e in ar.entries()? {
        let mut e = e?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let h = e.header().clone();
        let mut mtime = (i64::try_from(h.mtime()?).map_err(|_| bad("mtime"))?, 0);
        let mut xattrs = BTreeMap::new();
        if let Some(pax) = e.pax_extensions()? {
            for ext in pax {
                let ext = ext?;
                let key = ext.key().map_err(|_| bad("PAX key"))?;
                if key == "mtime" {
                    let v = ext.value().map_err(|_| bad("PAX mtime"))?;
                    let (s, f) = v.split_once('.').unwrap_or((v, "0"));
                    let f: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
                    mtime = (
                        s.parse().map_err(|_| bad("PAX mtime"))?,
                        f.parse().map_err(|_| bad("PAX mtime"))?,
                    );
                } else if let Some(n) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(n.to_string(), ext.value_bytes().to_vec());
                }
            }
        }
        let link = e
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        out.push(TarEntry {
            name,
            kind: h.entry_type().as_byte(),
            mode: h.mode()? & 0o7777,
            owner: (h.uid()?, h.gid()?),
            mtime,
            dev: (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            ),
            link,
            xattrs,
            data,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::median_min_max;

    #[test]
    fn median_min_max_of_odd_even_and_no_samples() {
        assert_eq!(median_min_max(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(median_min_max(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
        assert!(median_min_max(&[]).0.is_nan());
    }
}
