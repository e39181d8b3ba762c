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
//!   with nothing cached (after a cache drop), median over 256 layers (as many as a
//!   standard report's stores hold): what entering a layer cold costs before a name in it
//!   is probed;
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
//! - `metadata_write_us`: creating an empty file (median of 200: 50 at each of four points
//!   of the calibration);
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
//!   loop-mounted ([`super::window::LoopBtrfs`]);
//! - `log_commit_us`: a btrfs log commit, an fsync on btrfs (the Meter counts one per
//!   operation of the btrfs and zfs models, their commit point): a 1-byte overwrite of a
//!   file no snapshot shares and its `fdatasync`, on the same btrfs, median of 15,
//!   alternated with the snapshots;
//! - `pool_read_us`: what a loop device adds to a device read (the btrfs and zfs models
//!   count `pool_reads` beside their device reads: their pool is a file of the host, as a
//!   kernel-btrfs store's filesystem is): direct 4 KiB reads of the loop device of the same
//!   btrfs at blocks of its image that hold data, less cold 4 KiB reads of a host file,
//!   after the same cache drop, median of five rounds; 0 where no loop device can be read;
//! - `cow_read_call_us`: a read call's fixed cost on a copy-on-write filesystem (the btrfs
//!   and zfs models count theirs as `cow_reads`): the `read_call_us` measurement, in a vfs
//!   store on the same btrfs;
//!   where these three cannot be measured (not root, no btrfs-progs), the nvme profile's
//!   commits and this filesystem's read call, and the profile says so.
//!
//! The costs that drift (`fsync_us`, `entry_fsync_us`, `log_commit_us`, `commit_us`,
//! `read_call_us`, `cow_read_call_us`) are also measured again beside the kernel
//! references' runs ([`super::window`]): the report holds the model to the kernel with
//! those.
//!
//! The fingerprint is the SHA-256 of the CPU model and count, the kernel release and the
//! filesystem type of the measured directory: a recorded profile whose `fingerprint` key
//! differs was measured on another machine (or filesystem) and is not used for it; nor is
//! one that lacks a cost this calibration measures (recorded by an older version).

use super::env::{can_drop_caches, cpu, drop_caches, kernel};
use super::error::{DriverContext, HarnessError, Result};
use super::profile::Profile;
use super::window::{
    fsync_once, median, ok, us, Cold, ColdCosts, Creates, EntryFsyncs, LoopBtrfs, ReadCalls,
};
use layerlab_core::size::format as fmt_size;
use layerlab_core::Counts;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
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

/// Median microseconds per entry of a warm `readdir` of 1000 entries, and of a 4 KiB write
/// with its fsync.
fn metadata_costs(s: &Path) -> Result<(f64, f64)> {
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
        sync.push(at(&path, fsync_once(&f, j))?);
    }
    Ok((median(scan), median(sync)))
}

/// Median microseconds per fsync that makes new entries durable: 20 layers created on an
/// empty committed parent in a vfs store, through the checked front (the layer's directory
/// made and renamed into place, its parent directory fsynced, then the layer table's new
/// file fsynced, renamed over the old one and its directory fsynced: three such fsyncs,
/// as the Meter counts them), each creation's time less what its other counts cost at the
/// costs measured before (`other`), over its `entry_fsyncs`.
fn entry_fsync_cost(s: &Path, other: impl Fn(&Counts) -> f64) -> Result<f64> {
    let each = (|| {
        let mut e = EntryFsyncs::new(&s.join("vfs-layers"))?;
        (0..20)
            .map(|_| e.one(&other))
            .collect::<layerlab_core::Result<Vec<f64>>>()
    })()
    .ctx("vfs", "calibrate: layer creation")?;
    Ok(median(each))
}

/// Median microseconds of a read call's fixed cost: 200 warm 4 KiB reads through a vfs
/// store in `s` ([`ReadCalls`]), less what the Meter counts for a read apart.
fn read_call_cost(s: &Path, probe_warm: f64, per_byte: f64) -> Result<f64> {
    ReadCalls::new(&s.join("vfs-store"))
        .and_then(|mut r| r.fixed_cost(200, probe_warm, per_byte))
        .ctx("vfs", "calibrate: read call")
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

/// Directories and layers the cold measurements look into.
const COLD_DIRS: usize = 256;

/// Rounds of the cold measurements, each after its own cache drop: the device's latency
/// drifts over seconds on a shared disk (a journal commit or a neighbour's burst), so one
/// round can land on a slow moment.
const COLD_ROUNDS: usize = 5;

/// The cold costs (medians of [`COLD_ROUNDS`] rounds' medians, each round after its own
/// cache drop) of [`COLD_DIRS`] directories and as many layers and 16 random 4 KiB reads of
/// a `size`-byte file per round ([`ColdCosts`]), then the warm probe of the same directories: (cold costs,
/// warm probe, whether the caches could be dropped).
fn cold_costs(s: &Path, c: &mut ColdCosts) -> Result<(Cold, f64, bool)> {
    let mut rounds = Vec::new();
    for _ in 0..COLD_ROUNDS {
        drop_caches();
        rounds.push(at(s, c.measure())?);
    }
    let of = |f: fn(&Cold) -> f64| median(rounds.iter().map(f).collect());
    let cold = Cold {
        probe_us: of(|c| c.probe_us),
        layer_open_us: of(|c| c.layer_open_us),
        extent_us: of(|c| c.extent_us),
    };
    Ok((cold, c.warm_probe_us(), can_drop_caches()))
}

/// Snapshots and log commits timed for `commit_us` and `log_commit_us`: both wait on the
/// disk's flush, whose latency varies from one to the next on a shared disk.
const BTRFS_REPS: usize = 15;

/// What the calibration measures on a loop-mounted btrfs.
struct BtrfsCosts {
    commit_us: f64,
    log_commit_us: f64,
    read_call_us: f64,
    /// What its loop device adds to a device read (`None`: the device could not be read).
    pool_read_us: Option<f64>,
}

/// Median microseconds of a btrfs transaction commit, a btrfs log commit and a read call,
/// on a btrfs of a kernel-btrfs store's size loop-mounted from a sparse file in `s`
/// ([`LoopBtrfs`]): a snapshot of a subvolume of 100 files by the kernel's ioctl (its root
/// item, its root node copied copy-on-write and the directory entry written in one commit,
/// with the superblock after a cache flush) and a 1-byte overwrite of a file and its
/// `fdatasync`, alternated, [`BTRFS_REPS`] each; then `read_call(dir)`: the read call's
/// measurement in a directory of that btrfs. `None` where no btrfs can be made and
/// mounted here.
fn btrfs_costs(
    s: &Path,
    read_call: impl Fn(&Path) -> Result<f64>,
    cold: &mut ColdCosts,
) -> Option<BtrfsCosts> {
    let mut b = LoopBtrfs::make(s)?;
    let (mut snaps, mut logs) = (Vec::new(), Vec::new());
    for _ in 0..BTRFS_REPS {
        snaps.push(b.snapshot_us()?);
        logs.push(b.log_commit_us()?);
    }
    let read_call_us = read_call(b.dir()).ok()?;
    let mut added = Vec::new();
    for _ in 0..COLD_ROUNDS {
        drop_caches();
        let host = cold.measure().ok()?.extent_us;
        if let Some(through) = b.device_read_us(16) {
            added.push((through - host).max(0.0));
        }
    }
    b.unmount()?;
    Some(BtrfsCosts {
        commit_us: median(snaps),
        log_commit_us: median(logs),
        read_call_us,
        pool_read_us: (!added.is_empty()).then(|| median(added)),
    })
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
    // an empty file's creation, 50 at a time at four points of the calibration: the host's
    // journal makes some moments slow (one calibration's 200 in a row took 81 µs each, the
    // next ones' 8)
    let md = s.join("md");
    let mut creates = at(&md, Creates::new(md.clone()))?;
    let mut meta_times = at(&md, creates.times(50))?;
    // as many directories and layers as a standard report's stores hold (read-depth's
    // stacks: 189 layers): spread over more of the disk, a cold read there costs more than
    // among a few (64 layers: 60 µs; a store's 189: 80 µs per device read)
    let mut cold_files = at(s, ColdCosts::new(s, COLD_DIRS, size, 16))?;
    let (cold_costs, probe_warm, cold) = cold_costs(s, &mut cold_files)?;
    meta_times.extend(at(&md, creates.times(50))?);
    let Cold {
        probe_us: probe_cold,
        layer_open_us: layer_open,
        extent_us: extent,
    } = cold_costs;
    let (scan, sync) = metadata_costs(s)?;
    meta_times.extend(at(&md, creates.times(50))?);
    let meta_so_far = median(meta_times.clone());
    let entry_sync = entry_fsync_cost(s, |c| {
        c.probes as f64 * probe_cold
            + (c.cache_hits + c.warm_probes) as f64 * probe_warm
            + c.entries_scanned as f64 * scan
            + c.metadata_writes as f64 * meta_so_far
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
    let nvme_alloc = nvme.as_ref().map_or(0.2, |p| p.block_alloc_us);
    let per_byte = read_us / size.max(1) as f64;
    let btrfs = btrfs_costs(
        s,
        |dir| read_call_cost(dir, probe_warm, per_byte),
        &mut cold_files,
    );
    let pool = match btrfs.as_ref().and_then(|b| b.pool_read_us) {
        Some(p) => format!(
            "# what a loop device adds to a device read: a direct 4 KiB read of a loop-mounted \
             btrfs's device,\n# less a cold 4 KiB read of a host file, after the same cache \
             drop\npool_read_us = {p:.2}\n"
        ),
        None => "# no loop device could be read here: none assumed\npool_read_us = 0.0\n".into(),
    };
    let commit = match btrfs {
        Some(b) => format!(
            "# a read call on btrfs: the read call's measurement in a vfs store on a \
             loop-mounted btrfs\n\
             cow_read_call_us = {:.3}\n\
             # a btrfs log commit: a 1-byte overwrite and its fdatasync on a loop-mounted btrfs\n\
             log_commit_us = {:.1}\n\
             # the commit a btrfs snapshot is made in: the snapshot ioctl on a loop-mounted \
             btrfs\ncommit_us = {:.1}\n",
            b.read_call_us, b.log_commit_us, b.commit_us
        ),
        None => format!(
            "# no btrfs could be made here (root, btrfs-progs): the read call measured here, \
             the nvme profile's commits\n\
             cow_read_call_us = {read_call:.3}\n\
             log_commit_us = {}\n\
             commit_us = {}\n",
            nvme.as_ref().map_or(200.0, |p| p.log_commit_us),
            nvme.as_ref().map_or(300.0, |p| p.commit_us)
        ),
    };
    meta_times.extend(at(&md, creates.times(50))?);
    let meta = median(meta_times);
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
         {pool}\
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
