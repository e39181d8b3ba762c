//! `layerlab calibrate [--out FILE] [--dir DIR] [--size SIZE]`: measures this machine's
//! primitive costs and writes them as a device profile (the format of
//! `configs/profiles/*.toml`), by default to `configs/profiles/calibrated.toml`.
//!
//! What is measured, in a scratch directory under `--dir` (default: the current one):
//! - `probe_cold_us`: `lstat` of a missing name in a directory not in any cache (the page
//!   cache, dentries and inodes dropped with `echo 3 > /proc/sys/vm/drop_caches` where
//!   this process may; otherwise the directory was only just made, and the profile says so);
//! - `probe_warm_us`: the same `lstat` again (answered by the dentry cache);
//! - `entry_scan_us`: a warm `readdir` of 1000 entries, per entry;
//! - `write_bandwidth`: writing `--size` bytes (1 MiB writes) and fsyncing them (this and
//!   the next two: the median of three runs);
//! - `read_bandwidth`: reading them back, cold where caches can be dropped;
//! - `copy_bandwidth`: copying them (`copy_file_range`, source cached) and fsyncing the
//!   copy, which is what an overlayfs copy-up does;
//! - `metadata_write_us`: creating an empty file (median of 200);
//! - `fsync_us`: a 4 KiB write and its fsync (median of 20);
//! - `extent_us`: a cold 4 KiB read at a random offset (a seek on a disk);
//! - `block_alloc_us`: not measurable from user space: the nvme profile's value.

use crate::harness::env::drop_caches;
use crate::harness::profile::Profile;
use anyhow::{Context, Result};
use layerlab_core::size;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The default output file.
pub const DEFAULT_OUT: &str = "configs/profiles/calibrated.toml";

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn us(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}

/// A bandwidth as the profile writes it: whole MiB per second, at least 1 (`1234MiB`,
/// `2GiB`), in the one size format.
fn bw(bytes: u64, micros: f64) -> String {
    let per_s = bytes as f64 / (micros.max(1.0) / 1e6);
    let mib = ((per_s / (1 << 20) as f64).round() as u64).max(1);
    size::format(mib.saturating_mul(1 << 20))
}

/// What one calibration measured.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// The profile, as TOML text.
    pub toml: String,
    /// Whether the caches could be dropped (cold values are really cold).
    pub cold: bool,
}

/// Measures in `dir` with a bandwidth file of `size` bytes.
pub fn measure(dir: &Path, size: u64) -> Result<Calibration> {
    let scratch = tempfile::Builder::new()
        .prefix(".layerlab-calibrate-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot make a scratch directory in {}", dir.display()))?;
    let s = scratch.path();

    // probes: 64 directories of 16 entries each
    let dirs: Vec<PathBuf> = (0..64).map(|i| s.join(format!("d{i}"))).collect();
    for d in &dirs {
        fs::create_dir(d)?;
        for j in 0..16 {
            File::create(d.join(format!("f{j}")))?;
        }
    }
    let cold = drop_caches();
    let mut cold_t = Vec::new();
    for d in &dirs {
        let t = Instant::now();
        let _ = fs::symlink_metadata(d.join("missing"));
        cold_t.push(us(t));
    }
    let mut warm_t = Vec::new();
    for _ in 0..5 {
        for d in &dirs {
            let t = Instant::now();
            let _ = fs::symlink_metadata(d.join("missing"));
            warm_t.push(us(t));
        }
    }
    // entry scan
    let big = s.join("big");
    fs::create_dir(&big)?;
    for j in 0..1000 {
        File::create(big.join(format!("e{j}")))?;
    }
    let mut scan = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let n = fs::read_dir(&big)?.count();
        scan.push(us(t) / n.max(1) as f64);
    }
    // metadata writes
    let md = s.join("md");
    fs::create_dir(&md)?;
    let mut meta = Vec::new();
    for j in 0..200 {
        let t = Instant::now();
        File::create(md.join(format!("n{j}")))?;
        meta.push(us(t));
    }
    // fsync
    let mut sync = Vec::new();
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(s.join("sync"))?;
    for j in 0..20u64 {
        let t = Instant::now();
        f.write_all_at(&[j as u8; 4096], j * 4096)?;
        f.sync_all()?;
        sync.push(us(t));
    }
    // bandwidths: the median of three runs each (the machine may be busy)
    let data = s.join("data");
    let chunk = vec![0x5au8; 1 << 20];
    let (mut writes, mut reads, mut copies) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let t = Instant::now();
        {
            let mut f = File::create(&data)?;
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                f.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            f.sync_all()?;
        }
        writes.push(us(t));
        drop_caches();
        let t = Instant::now();
        {
            let mut f = File::open(&data)?;
            let mut buf = vec![0u8; 1 << 20];
            while f.read(&mut buf)? > 0 {}
        }
        reads.push(us(t));
        // the source is cached now, as the lower file of a copy-up usually is
        let copy = s.join("copy");
        let _ = fs::remove_file(&copy);
        let t = Instant::now();
        fs::copy(&data, &copy)?;
        File::open(&copy)?.sync_all()?;
        copies.push(us(t));
    }
    let (write_us, read_us, copy_us) = (median(writes), median(reads), median(copies));
    // a cold random read
    drop_caches();
    let mut extent = Vec::new();
    {
        let f = File::open(&data)?;
        let mut buf = [0u8; 4096];
        let blocks = (size / 4096).max(1);
        for j in 0..16u64 {
            let off = (j * 2_654_435_761 % blocks) * 4096;
            let t = Instant::now();
            let _ = f.read_at(&mut buf, off)?;
            extent.push(us(t));
        }
    }
    let nvme = Profile::embedded("nvme")
        .transpose()?
        .map(|p| p.block_alloc_us)
        .unwrap_or(0.2);
    let fsname = layerlab_drivers::hostfs::fs_type_name(dir);
    let toml = format!(
        "# Measured on this machine by `layerlab calibrate` in {dir} ({fsname}), with a \
         {size} test file.\n\
         # Cold values {cold_note}.\n\
         name = \"calibrated\"\n\
         description = \"this machine, measured by layerlab calibrate\"\n\
         probe_cold_us = {pc:.2}\n\
         probe_warm_us = {pw:.3}\n\
         entry_scan_us = {es:.3}\n\
         read_bandwidth = \"{rb}\"\n\
         write_bandwidth = \"{wb}\"\n\
         copy_bandwidth = \"{cb}\"\n\
         metadata_write_us = {mw:.2}\n\
         fsync_us = {fs:.1}\n\
         extent_us = {ex:.2}\n\
         # not measurable from user space: the nvme profile's value\n\
         block_alloc_us = {ba}\n",
        dir = dir.display(),
        size = size::format(size),
        cold_note = if cold {
            "follow `echo 3 > /proc/sys/vm/drop_caches`"
        } else {
            "are NOT cold: this process may not drop the caches (run as root)"
        },
        pc = median(cold_t),
        pw = median(warm_t),
        es = median(scan),
        rb = bw(size, read_us),
        wb = bw(size, write_us),
        cb = bw(size, copy_us),
        mw = median(meta),
        fs = median(sync),
        ex = median(extent),
        ba = nvme,
    );
    // the profile must read back
    Profile::parse(&toml, "calibrated.toml")?;
    Ok(Calibration { toml, cold })
}

/// Runs the calibration and writes the profile.
pub fn calibrate<W: Write>(
    out: &mut W,
    file: Option<PathBuf>,
    dir: Option<PathBuf>,
    size: Option<&str>,
) -> Result<()> {
    let size = match size {
        Some(s) => size::parse(s).map_err(|e| anyhow::anyhow!("--size: {e}"))?,
        None => 256 << 20,
    };
    anyhow::ensure!(size >= 1 << 20, "the test file must be 1MiB or more");
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let file = file.unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    let c = measure(&dir, size)?;
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::write(&file, &c.toml).with_context(|| format!("cannot write {}", file.display()))?;
    write!(out, "{}", c.toml)?;
    writeln!(
        out,
        "profile written to {}{}",
        file.display(),
        if c.cold {
            ""
        } else {
            " (caches could not be dropped: cold values are warm)"
        }
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bw;
    use layerlab_core::size;

    #[test]
    fn bandwidths_are_whole_mib_in_the_one_size_format() {
        assert_eq!(bw(1 << 20, 1e6), "1MiB");
        assert_eq!(bw(1234 << 20, 1e6), "1234MiB");
        assert_eq!(bw(2 << 30, 1e6), "2GiB");
        assert_eq!(bw(1, 1e6), "1MiB");
        assert_eq!(size::parse(&bw(1234 << 20, 1e6)), Ok(1234 << 20));
    }
}
