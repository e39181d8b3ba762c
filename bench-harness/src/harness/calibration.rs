//! Calibration: this machine's primitive costs measured and written as a device profile,
//! and the machine's fingerprint that says whether a recorded calibration is this
//! machine's.
//!
//! What is measured, in a scratch directory (by its absolute path, as the drivers reach a
//! store's files):
//! - `probe_cold_us`: `lstat` of a missing name in a directory not in any cache (the page
//!   cache, dentries and inodes dropped with `echo 3 > /proc/sys/vm/drop_caches` where
//!   this process may; otherwise the directory was only just made, and the profile says so);
//! - `probe_warm_us`: the same `lstat` again (answered by the dentry cache);
//! - `layer_open_us`: `lstat` of a layer's branch directory (`overlay2/<id>/diff`, laid out
//!   as the overlay2 driver lays a layer out: `diff`, `work` and `link` beside each other)
//!   with nothing cached (after a cache drop), median over 64 layers: what entering a layer
//!   cold costs before a name in it is probed;
//! - every cold measurement (`probe_cold_us`, `layer_open_us`, `extent_us`) is taken in
//!   five rounds, each after its own cache drop, and the median of the rounds' medians
//!   kept: the device's latency drifts over seconds on a shared disk, and one round could
//!   land on a slow moment (a cold probe measured 85 then 298 µs a minute apart);
//! - `entry_scan_us`: a warm `readdir` of 1000 entries, per entry;
//! - `write_bandwidth`: writing the test file (1 MiB writes) and fsyncing it (this and the
//!   next two: the median of three runs);
//! - `read_bandwidth`: reading it back from the page cache (the Meter counts a cold read's
//!   device reads apart, as extents: `extent_us`);
//! - `read_call_us`: a read call's fixed cost: a warm 4 KiB read of `/app/target` through
//!   the checked front of a vfs store (the layer table, the rule's lookup, the host's open,
//!   `fstat`, read and close: what every driver's read call passes), median of 200, less
//!   the dentry-cache hit and the bytes the Meter counts for that read apart;
//! - `backing_open_us`: what a backing file's open adds to a read call: the same open,
//!   `fstat`, 4 KiB read and close through an overlay mount and of its lower file itself,
//!   the difference of the medians (of 200, three times, the median); where no overlay can
//!   be mounted (not root), the nvme profile's value, and the profile says so;
//! - `copy_bandwidth`: copying it (`copy_file_range`, source cached) and fsyncing the copy,
//!   which is what an overlayfs copy-up does;
//! - `metadata_write_us`: creating an empty file (median of 200);
//! - `fsync_us`: a 4 KiB write and its fsync (median of 20);
//! - `entry_fsync_us`: an fsync that makes new entries durable, timed where a store makes
//!   them: 20 layers created on an empty committed parent in a vfs store through the
//!   checked front (the layer's directory renamed into place and its parent fsynced, the
//!   layer table's new file fsynced, renamed, its directory fsynced), each creation's time
//!   less its other counts at the costs measured before, over its `entry_fsyncs` (3), the
//!   median;
//! - `extent_us`: a cold 4 KiB read at a random offset (a seek on a disk);
//! - `tree_leaf_us`: the same measurement: a btrfs root-tree leaf read is one device read
//!   of a metadata block, which a kernel-btrfs store's loop device turns into a read at a
//!   random offset of its backing file, as an extent read is;
//! - `block_alloc_us`: not measurable from user space: the nvme profile's value;
//! - `commit_us`: the btrfs transaction commit a snapshot is made in (the Meter counts one
//!   commit per snapshot or clone): a snapshot of a subvolume of 100 files with the
//!   kernel's ioctl (`BTRFS_IOC_SNAP_CREATE_V2`, no process started, as the kernel-btrfs
//!   reference makes its snapshots), median of 15, on a btrfs made with `mkfs.btrfs` in a
//!   sparse 1 GiB file of the scratch directory (a kernel-btrfs store's size) and
//!   loop-mounted;
//!   where that cannot be done (not root, no btrfs-progs), the nvme profile's value, and
//!   the profile says so.
//!
//! The fingerprint is the SHA-256 of the CPU model and count, the kernel release and the
//! filesystem type of the measured directory: a recorded profile whose `fingerprint` key
//! differs was measured on another machine (or filesystem) and is not used for it; nor is
//! one that lacks a cost this calibration measures (recorded by an older version).

use super::env::{can_drop_caches, cpu, drop_caches, kernel};
use super::error::{DriverContext, HarnessError, Result};
use super::profile::Profile;
use super::workloads::{lid, lpath};
use layerlab_core::size::format as fmt_size;
use layerlab_core::{ops, Counts, LayerDriver, LayerId, LayerPath};
use layerlab_drivers::kernel::kernel_btrfs;
use layerlab_drivers::{registry, Options};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Where `layerlab calibrate` and the report record the calibrated profile.
pub const RECORDED: &str = "configs/profiles/calibrated.toml";

/// The name of the calibrated profile (its rows' `profile` column).
pub const NAME: &str = "calibrated";

/// This machine's fingerprint for stores made in `dir`: 16 hex digits of the SHA-256 of
/// CPU, kernel and filesystem type.
pub fn fingerprint(dir: &Path) -> String {
    let mut h = Sha256::new();
    h.update(cpu().as_bytes());
    h.update(b"\n");
    h.update(kernel().as_bytes());
    h.update(b"\n");
    h.update(layerlab_drivers::hostfs::fs_type_name(dir).as_bytes());
    hex::encode(h.finalize())[..16].to_string()
}

/// The SHA-256 of a profile's TOML text, in hex.
pub fn hash(toml: &str) -> String {
    hex::encode(Sha256::digest(toml.as_bytes()))
}

/// A calibrated profile and where it came from.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// The profile.
    pub profile: Profile,
    /// Its TOML text.
    pub toml: String,
    /// Whether the caches could be dropped (cold values are really cold).
    pub cold: bool,
    /// How it was obtained, for people: measured now, or recorded in a file.
    pub origin: String,
}

impl Calibration {
    /// The SHA-256 of its TOML text.
    pub fn hash(&self) -> String {
        hash(&self.toml)
    }
}

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

/// A bandwidth as the profile writes it (`1234MiB`, at least 1 MiB/s).
fn bw(bytes: u64, micros: f64) -> String {
    let per_s = bytes as f64 / (micros.max(1.0) / 1e6);
    let mib = ((per_s / (1 << 20) as f64).round() as u64).max(1);
    fmt_size(mib.saturating_mul(1 << 20))
}

/// Turns an I/O error into one that names `path`.
fn at<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| HarnessError::io(path, e))
}

/// Median latencies of `lstat` of a missing name in each directory, cold (after a cache
/// drop where allowed) then warm: (cold, warm, whether the drop happened).
fn probes(dirs: &[PathBuf]) -> (f64, f64, bool) {
    let cold = can_drop_caches();
    let cold_us = cold_rounds(|| {
        dirs.iter()
            .map(|d| {
                let t = Instant::now();
                let _ = fs::symlink_metadata(d.join("missing"));
                us(t)
            })
            .collect()
    });
    let mut warm_t = Vec::new();
    for _ in 0..5 {
        for d in dirs {
            let t = Instant::now();
            let _ = fs::symlink_metadata(d.join("missing"));
            warm_t.push(us(t));
        }
    }
    (cold_us, median(warm_t), cold)
}

/// Median microseconds of entering a layer cold: `lstat` of `overlay2/<id>/diff` after a
/// cache drop, for 64 layers laid out as the overlay2 driver lays them out.
fn layer_open_cost(s: &Path) -> Result<f64> {
    let layers: Vec<PathBuf> = (0..64)
        .map(|i| s.join("overlay2").join(format!("{i:026}")))
        .collect();
    for l in &layers {
        for sub in ["diff", "work"] {
            let d = l.join(sub);
            at(&d, fs::create_dir_all(&d))?;
        }
        let link = l.join("link");
        at(&link, fs::write(&link, b"SHORTLINKNAME0000000000000"))?;
    }
    Ok(cold_rounds(|| {
        layers
            .iter()
            .map(|l| {
                let t = Instant::now();
                let _ = fs::symlink_metadata(l.join("diff"));
                us(t)
            })
            .collect()
    }))
}

/// Median microseconds per entry of a warm `readdir` of 1000 entries, of an empty file's
/// creation, and of a 4 KiB write with its fsync.
fn metadata_costs(s: &Path) -> Result<(f64, f64, f64)> {
    let big = s.join("big");
    at(&big, fs::create_dir(&big))?;
    for j in 0..1000 {
        let p = big.join(format!("e{j}"));
        at(&p, File::create(&p))?;
    }
    let mut scan = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let n = at(&big, fs::read_dir(&big))?.count();
        scan.push(us(t) / n.max(1) as f64);
    }
    let md = s.join("md");
    at(&md, fs::create_dir(&md))?;
    let mut meta = Vec::new();
    for j in 0..200 {
        let p = md.join(format!("n{j}"));
        let t = Instant::now();
        at(&p, File::create(&p))?;
        meta.push(us(t));
    }
    let path = s.join("sync");
    let f = at(
        &path,
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path),
    )?;
    let mut sync = Vec::new();
    for j in 0..20u64 {
        let t = Instant::now();
        at(&path, f.write_all_at(&[j as u8; 4096], j * 4096))?;
        at(&path, f.sync_all())?;
        sync.push(us(t));
    }
    Ok((median(scan), median(meta), median(sync)))
}

/// Median microseconds per fsync that makes new entries durable: 20 layers created on an
/// empty committed parent in a vfs store, through the checked front (the layer's directory
/// made and renamed into place, its parent directory fsynced, then the layer table's new
/// file fsynced, renamed over the old one and its directory fsynced: three such fsyncs,
/// as the Meter counts them), each creation's time less what its other counts cost at the
/// costs measured before (`other`), over its `entry_fsyncs`.
fn entry_fsync_cost(s: &Path, other: impl Fn(&Counts) -> f64) -> Result<f64> {
    let each =
        entry_fsync_each(&s.join("vfs-layers"), other).ctx("vfs", "calibrate: layer creation")?;
    Ok(median(each))
}

/// Per creation of one of 20 child layers in a new vfs store at `root`: its time less what
/// its other counts cost (`other`), over its `entry_fsyncs`.
fn entry_fsync_each(
    root: &Path,
    other: impl Fn(&Counts) -> f64,
) -> layerlab_core::Result<Vec<f64>> {
    let mut d = registry::init("vfs", root, Options::new())?;
    let base = lid("calibrate")?;
    d.create_layer(&base, None)?;
    d.commit(&base)?;
    let mut each = Vec::new();
    for j in 0..20 {
        let child = lid(&format!("child{j}"))?;
        let before = d.meter().counts;
        let t = Instant::now();
        d.create_layer(&child, Some(&base))?;
        let time = us(t);
        let c = d.meter().counts.since(&before);
        let rest = Counts {
            entry_fsyncs: 0,
            ..c
        };
        each.push((time - other(&rest)).max(0.0) / c.entry_fsyncs.max(1) as f64);
    }
    Ok(each)
}

/// Median microseconds of a read call's fixed cost: a warm 4 KiB read of `/app/target`
/// through the checked front of a vfs store in `s` (every driver's read passes the same
/// front: the layer table, the rule's lookup, then the host's open, `fstat`, read and
/// close of a file as deep as a layer's file is in a store), median of 200, less what the
/// Meter counts for that read apart: its lookup's dentry-cache hit (`probe_warm`) and its
/// 4 KiB at the page-cache bandwidth (`per_byte` microseconds a byte).
fn read_call_cost(s: &Path, probe_warm: f64, per_byte: f64) -> Result<f64> {
    let calls = warm_read_times(&s.join("vfs-store")).ctx("vfs", "calibrate: read call")?;
    Ok((median(calls) - probe_warm - 4096.0 * per_byte).max(0.0))
}

/// The times of 200 warm 4 KiB reads of `/app/target` in a new vfs store at `root`.
fn warm_read_times(root: &Path) -> layerlab_core::Result<Vec<f64>> {
    let mut d = registry::init("vfs", root, Options::new())?;
    let (layer, dir, file) = layer_and_paths()?;
    d.create_layer(&layer, None)?;
    ops::mkdir_p(&mut d, &layer, &dir, 0o755)?;
    ops::write_file(&mut d, &layer, &file, &[0x5a; 4096], 0o644)?;
    d.read(&layer, &file, 0, 4096)?;
    let mut calls = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        d.read(&layer, &file, 0, 4096)?;
        calls.push(us(t));
    }
    Ok(calls)
}

/// The calibration's layer and the file it reads (`/app/target`, as `read-depth` reads).
fn layer_and_paths() -> layerlab_core::Result<(LayerId, LayerPath, LayerPath)> {
    Ok((lid("calibrate")?, lpath("/app")?, lpath("/app/target")?))
}

/// Median microseconds of an open, an `fstat`, a 4 KiB read and a close of `path` (cached),
/// 200 runs.
fn open_read_close(path: &Path) -> Option<f64> {
    let mut buf = [0u8; 4096];
    let mut calls = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let f = File::open(path).ok()?;
        f.metadata().ok()?;
        f.read_at(&mut buf, 0).ok()?;
        drop(f);
        calls.push(us(t));
    }
    Some(median(calls))
}

/// Microseconds a backing file's open adds to a read call: the open, `fstat`, 4 KiB read
/// and close of a cached file through an overlay mount (a lower, an upper and a work
/// directory in `s`), less the same of the lower file itself; medians of 200, interleaved
/// three times, the median of the three differences. `None` where no overlay can be
/// mounted here (root, overlayfs).
fn backing_open_cost(s: &Path) -> Option<f64> {
    let base = s.join("ovl");
    let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|d| base.join(d));
    for d in [&lower, &upper, &work, &merged] {
        fs::create_dir_all(d).ok()?;
    }
    fs::create_dir(lower.join("app")).ok()?;
    let direct = lower.join("app/target");
    fs::write(&direct, [0x5au8; 4096]).ok()?;
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    ok(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged))?;
    // unmounted when this goes out of scope, whatever happens below
    let mount = layerlab_drivers::kernel::mount::Mount::adopt(merged.clone());
    let through = merged.join("app/target");
    let mut diffs = Vec::new();
    for _ in 0..3 {
        let over = open_read_close(&through)?;
        let own = open_read_close(&direct)?;
        diffs.push(over - own);
    }
    mount.unmount().ok()?;
    Some(median(diffs).max(0.0))
}

/// Median microseconds of writing (with fsync), reading (from the page cache) and copying
/// (with fsync) a file of `size` bytes, three runs each.
fn bandwidths(s: &Path, size: u64) -> Result<(f64, f64, f64)> {
    let data = s.join("data");
    let copy = s.join("copy");
    let chunk = vec![0x5au8; 1 << 20];
    let (mut writes, mut reads, mut copies) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let t = Instant::now();
        {
            let mut f = at(&data, File::create(&data))?;
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                at(&data, f.write_all(&chunk[..n]))?;
                left -= n as u64;
            }
            at(&data, f.sync_all())?;
        }
        writes.push(us(t));
        // read back from the page cache (the write left it there)
        let t = Instant::now();
        {
            let mut f = at(&data, File::open(&data))?;
            let mut buf = vec![0u8; 1 << 20];
            while at(&data, f.read(&mut buf))? > 0 {}
        }
        reads.push(us(t));
        // the source is cached now, as the lower file of a copy-up usually is
        let _ = fs::remove_file(&copy);
        let t = Instant::now();
        at(&copy, fs::copy(&data, &copy))?;
        at(&copy, File::open(&copy).and_then(|f| f.sync_all()))?;
        copies.push(us(t));
    }
    Ok((median(writes), median(reads), median(copies)))
}

/// Median microseconds of a cold 4 KiB read at a random offset of the `size`-byte file.
fn extent_cost(s: &Path, size: u64) -> Result<f64> {
    let data = s.join("data");
    let f = at(&data, File::open(&data))?;
    let mut buf = [0u8; 4096];
    let blocks = (size / 4096).max(1);
    let mut failed = None;
    let mut round = 0u64;
    let cost = cold_rounds(|| {
        round += 1;
        let mut extent = Vec::new();
        for j in 0..16u64 {
            let off = ((round * 16 + j) * 2_654_435_761 % blocks) * 4096;
            let t = Instant::now();
            match f.read_at(&mut buf, off) {
                Ok(_) => extent.push(us(t)),
                Err(e) => failed = Some(e),
            }
        }
        extent
    });
    match failed {
        Some(e) => at(&data, Err::<f64, _>(e)),
        None => Ok(cost),
    }
}

/// Rounds of a cold measurement, each after its own cache drop: the device's latency
/// drifts over seconds on a shared disk (a journal commit or a neighbour's burst), so one
/// round can land on a slow moment.
const COLD_ROUNDS: usize = 5;

/// The median of [`COLD_ROUNDS`] rounds' medians of `timed` (microseconds), each round
/// after a cache drop.
fn cold_rounds(mut timed: impl FnMut() -> Vec<f64>) -> f64 {
    let rounds: Vec<f64> = (0..COLD_ROUNDS)
        .map(|_| {
            drop_caches();
            median(timed())
        })
        .collect();
    median(rounds)
}

/// Runs a command, `None` when it cannot be run or fails.
fn ok(cmd: &mut Command) -> Option<()> {
    cmd.output().ok().filter(|o| o.status.success()).map(|_| ())
}

/// Snapshots timed for `commit_us`: a commit waits on the disk's flush, whose latency
/// varies from one to the next on a shared disk.
const SNAPSHOTS: usize = 15;

/// Median microseconds of the btrfs transaction commit a snapshot is made in: a snapshot
/// of a subvolume of 100 files by the kernel's ioctl (`BTRFS_IOC_SNAP_CREATE_V2`, as the
/// kernel-btrfs reference makes its layers: the snapshot's root item, its root node copied
/// copy-on-write, the directory entry, all written in one commit with the superblock after
/// a cache flush), median of [`SNAPSHOTS`], on a btrfs of the size a kernel-btrfs store
/// makes (1 GiB), loop-mounted from a sparse file in `s`. `None`
/// where no btrfs can be made and mounted here.
fn commit_cost(s: &Path) -> Option<f64> {
    let img = s.join("btrfs.img");
    let mnt = s.join("btrfs");
    fs::create_dir(&mnt).ok()?;
    // the size of a kernel-btrfs store's filesystem (its `kbtrfs.size` default), so that
    // mkfs lays out the same block groups
    File::create(&img).ok()?.set_len(1 << 30).ok()?;
    ok(Command::new("mkfs.btrfs").arg("-q").arg("-f").arg(&img))?;
    ok(Command::new("mount")
        .args(["-t", "btrfs", "-o", "loop"])
        .arg(&img)
        .arg(&mnt))?;
    // unmounted when this goes out of scope, whatever happens below
    let mount = layerlab_drivers::kernel::mount::Mount::adopt(mnt.clone());
    let base = mnt.join("base");
    kernel_btrfs::create_subvolume(&base).ok()?;
    for j in 0..100 {
        fs::write(base.join(format!("f{j}")), [j as u8; 4096]).ok()?;
    }
    let root = File::open(&mnt).ok()?;
    // what mkfs, the mount and the files left dirty is committed before the timing
    rustix::fs::syncfs(&root).ok()?;
    drop(root);
    let mut snaps = Vec::new();
    for j in 0..SNAPSHOTS {
        let t = Instant::now();
        kernel_btrfs::snapshot(&base, &mnt.join(format!("s{j}"))).ok()?;
        snaps.push(us(t));
    }
    mount.unmount().ok()?;
    Some(median(snaps))
}

/// Measures this machine in a scratch directory under `dir`, with a bandwidth test file of
/// `size` bytes.
pub fn measure(dir: &Path, size: u64) -> Result<Calibration> {
    let scratch = at(
        dir,
        tempfile::Builder::new()
            .prefix(".layerlab-calibrate-")
            .tempdir_in(dir),
    )?;
    // by its absolute path, as the drivers reach a store's files
    let abs = at(scratch.path(), scratch.path().canonicalize())?;
    let s = abs.as_path();
    // probes: 64 directories of 16 entries each
    let dirs: Vec<PathBuf> = (0..64).map(|i| s.join(format!("d{i}"))).collect();
    for d in &dirs {
        at(d, fs::create_dir(d))?;
        for j in 0..16 {
            let p = d.join(format!("f{j}"));
            at(&p, File::create(&p))?;
        }
    }
    let (probe_cold, probe_warm, cold) = probes(&dirs);
    let layer_open = layer_open_cost(s)?;
    let (scan, meta, sync) = metadata_costs(s)?;
    let entry_sync = entry_fsync_cost(s, |c| {
        c.probes as f64 * probe_cold
            + (c.cache_hits + c.warm_probes) as f64 * probe_warm
            + c.entries_scanned as f64 * scan
            + c.metadata_writes as f64 * meta
            + c.fsyncs as f64 * sync
    })?;
    let (write_us, read_us, copy_us) = bandwidths(s, size)?;
    let nvme = Profile::embedded("nvme").transpose()?;
    let read_call = read_call_cost(s, probe_warm, read_us / size.max(1) as f64)?;
    let backing = match backing_open_cost(s) {
        Some(b) => format!(
            "# through an overlay mount, less the same read of the branch's own file\n\
             backing_open_us = {b:.3}\n"
        ),
        None => format!(
            "# no overlay could be mounted here (root, overlayfs): the nvme profile's value\n\
             backing_open_us = {}\n",
            nvme.as_ref().map_or(0.5, |p| p.backing_open_us)
        ),
    };
    let extent = extent_cost(s, size)?;
    let nvme_alloc = nvme.as_ref().map_or(0.2, |p| p.block_alloc_us);
    let commit = match commit_cost(s) {
        Some(c) => format!(
            "# the commit a btrfs snapshot is made in: the snapshot ioctl on a loop-mounted \
             btrfs\ncommit_us = {c:.1}\n"
        ),
        None => format!(
            "# no btrfs could be made here (root, btrfs-progs): the nvme profile's value\n\
             commit_us = {}\n",
            nvme.as_ref().map_or(300.0, |p| p.commit_us)
        ),
    };
    let fsname = layerlab_drivers::hostfs::fs_type_name(dir);
    let toml = format!(
        "# Measured by `layerlab calibrate` on {cpu}, Linux {kernel}, in {dir} ({fsname}), \
         with a {size} test file.\n\
         # Cold values {cold_note}.\n\
         name = \"{NAME}\"\n\
         description = \"this machine, measured by layerlab calibrate\"\n\
         fingerprint = \"{fp}\"\n\
         probe_cold_us = {probe_cold:.2}\n\
         probe_warm_us = {probe_warm:.3}\n\
         layer_open_us = {layer_open:.2}\n\
         entry_scan_us = {scan:.3}\n\
         read_bandwidth = \"{rb}\"\n\
         write_bandwidth = \"{wb}\"\n\
         copy_bandwidth = \"{cb}\"\n\
         metadata_write_us = {meta:.2}\n\
         fsync_us = {sync:.1}\n\
         entry_fsync_us = {entry_sync:.1}\n\
         extent_us = {extent:.2}\n\
         # a root-tree leaf read: one device read, as an extent read (the same measurement)\n\
         tree_leaf_us = {extent:.2}\n\
         read_call_us = {read_call:.3}\n\
         {backing}\
         # not measurable from user space: the nvme profile's value\n\
         block_alloc_us = {nvme_alloc}\n\
         {commit}",
        cpu = cpu(),
        kernel = kernel(),
        dir = dir.display(),
        size = fmt_size(size),
        cold_note = if cold {
            "follow `echo 3 > /proc/sys/vm/drop_caches`"
        } else {
            "are NOT cold: this process may not drop the caches (run as root)"
        },
        fp = fingerprint(dir),
        rb = bw(size, read_us),
        wb = bw(size, write_us),
        cb = bw(size, copy_us),
    );
    let profile = Profile::parse(&toml, "calibrated.toml")?;
    Ok(Calibration {
        profile,
        toml,
        cold,
        origin: format!(
            "measured on this machine before the run ({})",
            fmt_size(size)
        ),
    })
}

/// The recorded calibration in `file` if it is this machine's (its fingerprint matches
/// `dir`'s); `None` when there is none or it is another machine's.
pub fn recorded(file: &Path, dir: &Path) -> Result<Option<Calibration>> {
    let Ok(toml) = fs::read_to_string(file) else {
        return Ok(None);
    };
    let profile = Profile::parse(&toml, &file.display().to_string())?;
    if profile.fingerprint != fingerprint(dir) || !complete(&toml, &profile) {
        return Ok(None);
    }
    Ok(Some(Calibration {
        profile,
        cold: !toml.contains("NOT cold"),
        origin: format!(
            "recorded for this machine in {} (fingerprint {} of CPU, kernel and filesystem)",
            file.display(),
            fingerprint(dir)
        ),
        toml,
    }))
}

/// True when `toml` sets every cost a calibration measures: a profile recorded by an older
/// `layerlab calibrate` lacks the primitives added since (they would count as free) and is
/// measured again.
fn complete(toml: &str, profile: &Profile) -> bool {
    let (Ok(given), Ok(toml::Value::Table(all))) = (
        toml::from_str::<toml::Table>(toml),
        toml::Value::try_from(profile),
    ) else {
        return false;
    };
    all.keys().all(|k| given.contains_key(k))
}

/// The calibration for stores made in `dir`: the one recorded in `file` if it is this
/// machine's, else a new measurement (a `size`-byte test file), recorded in `file` for the
/// next run.
pub fn for_this_machine(file: &Path, dir: &Path, size: u64) -> Result<Calibration> {
    if let Some(c) = recorded(file, dir)? {
        return Ok(c);
    }
    let c = measure(dir, size)?;
    record(&c, file)?;
    Ok(c)
}

/// Writes a calibration's profile to `file` (its directory created if missing).
pub fn record(c: &Calibration, file: &Path) -> Result<()> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        at(parent, fs::create_dir_all(parent))?;
    }
    at(file, fs::write(file, &c.toml))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{bw, complete};
    use crate::harness::profile::Profile;
    use layerlab_core::size;

    #[test]
    fn a_profile_without_a_measured_cost_is_incomplete() {
        let p = Profile::embedded("nvme").unwrap().unwrap();
        let full = toml::to_string(&p).unwrap();
        assert!(complete(&full, &p));
        let older: String = full
            .lines()
            .filter(|l| !l.starts_with("layer_open_us"))
            .map(|l| format!("{l}\n"))
            .collect();
        let q = Profile::parse(&older, "older.toml").unwrap();
        assert_eq!(q.layer_open_us, 0.0, "an older profile parses");
        assert!(!complete(&older, &q));
    }

    #[test]
    fn bandwidths_are_whole_mib_in_the_one_size_format() {
        assert_eq!(bw(1 << 20, 1e6), "1MiB");
        assert_eq!(bw(1234 << 20, 1e6), "1234MiB");
        assert_eq!(bw(2 << 30, 1e6), "2GiB");
        assert_eq!(bw(1, 1e6), "1MiB");
        assert_eq!(size::parse(&bw(1234 << 20, 1e6)), Ok(1234 << 20));
    }
}
