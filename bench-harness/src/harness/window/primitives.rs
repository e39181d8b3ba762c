//! How each drifting cost is measured, once: the helpers the calibration
//! ([`crate::harness::calibration`]) and the cost window ([`super::Window`]) share.

use super::super::workloads::{lid, lpath};
use layerlab_core::{ops, Counts, LayerDriver, LayerId, LayerPath};
use layerlab_drivers::kernel::{kernel_btrfs, mount::Mount};
use layerlab_drivers::{registry, AnyDriver, Options};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Microseconds since `t`.
pub fn us(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}

/// The median (the upper one of an even count); 0 for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs a command, `None` when it cannot be run or fails.
pub fn ok(cmd: &mut Command) -> Option<()> {
    cmd.output().ok().filter(|o| o.status.success()).map(|_| ())
}

/// Microseconds of a 4 KiB write at block `j` of `f` and its fsync.
pub fn fsync_once(f: &File, j: u64) -> std::io::Result<f64> {
    let t = Instant::now();
    f.write_all_at(&[j as u8; 4096], (j % 256) * 4096)?;
    f.sync_all()?;
    Ok(us(t))
}

/// Empty files created one after another in one directory: a metadata write each.
#[derive(Debug)]
pub struct Creates {
    dir: PathBuf,
    made: u64,
}

impl Creates {
    /// Creates in `dir` (made here).
    pub fn new(dir: PathBuf) -> std::io::Result<Creates> {
        fs::create_dir_all(&dir)?;
        Ok(Creates { dir, made: 0 })
    }

    /// The microseconds of each of `n` more creations.
    pub fn times(&mut self, n: usize) -> std::io::Result<Vec<f64>> {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            self.made += 1;
            let p = self.dir.join(format!("n{}", self.made));
            let t = Instant::now();
            File::create(&p)?;
            times.push(us(t));
        }
        Ok(times)
    }
}

/// A btrfs made with `mkfs.btrfs` in a sparse 1 GiB file (a kernel-btrfs store's size, so
/// that mkfs lays out the same block groups), loop-mounted; with a subvolume of 100 files
/// of 4 KiB to snapshot, and a 64 KiB file that no snapshot shares, to overwrite.
#[derive(Debug)]
pub struct LoopBtrfs {
    // dropped before the mount: an open file would keep it busy
    log_file: File,
    base: PathBuf,
    snapshots: usize,
    writes: u64,
    /// The loop device, opened for direct reads, and the 4 KiB blocks of its image that
    /// hold data (the image is sparse: a hole reads without a device read).
    device: Option<(File, Vec<u64>)>,
    device_reads: u64,
    mount: Mount,
}

/// A 4 KiB buffer aligned for `O_DIRECT`.
#[repr(C, align(4096))]
struct Block([u8; 4096]);

/// The loop device whose backing file is `img` (`/sys/block/loop*/loop/backing_file`).
fn loop_device_of(img: &Path) -> Option<PathBuf> {
    let img = img.canonicalize().ok()?;
    fs::read_dir("/sys/block").ok()?.flatten().find_map(|e| {
        let backing = fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
        (Path::new(backing.trim()) == img).then(|| Path::new("/dev").join(e.file_name()))
    })
}

/// Every 64th 4 KiB block of `img` that holds data, at most 4096 of them.
fn data_blocks(img: &Path) -> Option<Vec<u64>> {
    use rustix::fs::{seek, SeekFrom};
    let f = File::open(img).ok()?;
    let end = f.metadata().ok()?.len();
    let mut blocks = Vec::new();
    let mut at = 0u64;
    while at < end && blocks.len() < 4096 {
        let Ok(start) = seek(&f, SeekFrom::Data(at)) else {
            break;
        };
        let stop = seek(&f, SeekFrom::Hole(start)).ok()?;
        let mut b = start.div_ceil(4096) * 4096;
        while b + 4096 <= stop && blocks.len() < 4096 {
            blocks.push(b);
            b += 64 * 4096;
        }
        at = stop;
    }
    (!blocks.is_empty()).then_some(blocks)
}

impl LoopBtrfs {
    /// Makes and mounts it in the directory `s` (`btrfs.img`, mounted at `btrfs/`); `None`
    /// where no btrfs can be made and mounted here (not root, no btrfs-progs).
    pub fn make(s: &Path) -> Option<LoopBtrfs> {
        let img = s.join("btrfs.img");
        let mnt = s.join("btrfs");
        fs::create_dir(&mnt).ok()?;
        File::create(&img).ok()?.set_len(1 << 30).ok()?;
        ok(Command::new("mkfs.btrfs").arg("-q").arg("-f").arg(&img))?;
        ok(Command::new("mount")
            .args(["-t", "btrfs", "-o", "loop"])
            .arg(&img)
            .arg(&mnt))?;
        // unmounted when dropped, whatever happens below
        let mount = Mount::adopt(mnt.clone());
        let base = mnt.join("base");
        kernel_btrfs::create_subvolume(&base).ok()?;
        for j in 0..100 {
            fs::write(base.join(format!("f{j}")), [j as u8; 4096]).ok()?;
        }
        let log_path = mnt.join("log");
        let log_file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&log_path)
            .ok()?;
        log_file.write_all_at(&[0x5a; 65536], 0).ok()?;
        let root = File::open(&mnt).ok()?;
        // what mkfs, the mount and the files left dirty is committed before any timing
        rustix::fs::syncfs(&root).ok()?;
        // 16 MiB of file data, for the device reads to land in
        let data = mnt.join("data");
        let chunk = vec![0x5au8; 1 << 20];
        let f = File::create(&data).ok()?;
        for m in 0..16u64 {
            f.write_all_at(&chunk, m << 20).ok()?;
        }
        f.sync_all().ok()?;
        rustix::fs::syncfs(&root).ok()?;
        let device = loop_device_of(&img).and_then(|dev| {
            use std::os::unix::fs::OpenOptionsExt;
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
                .open(dev)
                .ok()?;
            Some((file, data_blocks(&img)?))
        });
        Some(LoopBtrfs {
            log_file,
            base,
            snapshots: 0,
            writes: 0,
            device,
            device_reads: 0,
            mount,
        })
    }

    /// Microseconds of a snapshot of the subvolume of 100 files with the kernel's ioctl
    /// (`BTRFS_IOC_SNAP_CREATE_V2`, as the kernel-btrfs reference makes its layers): the
    /// transaction commit it is made in.
    pub fn snapshot_us(&mut self) -> Option<f64> {
        let dst = self.mount.target().join(format!("s{}", self.snapshots));
        self.snapshots += 1;
        let t = Instant::now();
        kernel_btrfs::snapshot(&self.base, &dst).ok()?;
        Some(us(t))
    }

    /// Microseconds of a log commit: a 1-byte overwrite of the 64 KiB file no snapshot
    /// shares, at a different 4 KiB block each time, and its `fdatasync` (btrfs writes the
    /// block, then the file's log tree and a superblock, with cache flushes between).
    pub fn log_commit_us(&mut self) -> Option<f64> {
        let off = (self.writes % 16) * 4096 + 100;
        self.writes += 1;
        let t = Instant::now();
        self.log_file.write_all_at(&[self.writes as u8], off).ok()?;
        self.log_file.sync_data().ok()?;
        Some(us(t))
    }

    /// The median microseconds of `n` direct 4 KiB reads of its loop device at blocks of the
    /// image that hold data, each not read before: one device read of the btrfs each, which
    /// the loop device serves by a read of its backing file (cold after a cache drop).
    /// `None` where the loop device could not be found or read.
    pub fn device_read_us(&mut self, n: usize) -> Option<f64> {
        let (dev, blocks) = self.device.as_ref()?;
        let mut buf = Box::new(Block([0; 4096]));
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            self.device_reads += 1;
            let b = blocks[(self.device_reads * 2_654_435_761 % blocks.len() as u64) as usize];
            let t = Instant::now();
            dev.read_at(&mut buf.0, b).ok()?;
            times.push(us(t));
        }
        Some(median(times))
    }

    /// Where it is mounted.
    pub fn dir(&self) -> &Path {
        self.mount.target()
    }

    /// Unmounts it now (drop only tries).
    pub fn unmount(self) -> Option<()> {
        let LoopBtrfs {
            log_file,
            device,
            mount,
            ..
        } = self;
        drop((log_file, device));
        mount.unmount().ok()
    }
}

/// Layers created on an empty committed parent in a vfs store, through the checked front,
/// each timed for the fsyncs that make new entries durable: the layer's directory renamed
/// into place and its parent fsynced, the layer table's new file fsynced, renamed, its
/// directory fsynced (three such fsyncs, as the Meter counts them).
#[derive(Debug)]
pub struct EntryFsyncs {
    d: AnyDriver,
    base: LayerId,
    children: u32,
}

impl EntryFsyncs {
    /// A new vfs store at `root` with the committed parent.
    pub fn new(root: &Path) -> layerlab_core::Result<EntryFsyncs> {
        let mut d = registry::init("vfs", root, Options::new())?;
        let base = lid("calibrate")?;
        d.create_layer(&base, None)?;
        d.commit(&base)?;
        Ok(EntryFsyncs {
            d,
            base,
            children: 0,
        })
    }

    /// Microseconds per entry fsync of one more child's creation: its time less what its
    /// other counts cost (`other`), over its `entry_fsyncs`.
    pub fn one(&mut self, other: impl Fn(&Counts) -> f64) -> layerlab_core::Result<f64> {
        let child = lid(&format!("child{}", self.children))?;
        self.children += 1;
        let before = self.d.meter().counts;
        let t = Instant::now();
        self.d.create_layer(&child, Some(&self.base))?;
        let time = us(t);
        let c = self.d.meter().counts.since(&before);
        let rest = Counts {
            entry_fsyncs: 0,
            ..c
        };
        Ok((time - other(&rest)).max(0.0) / c.entry_fsyncs.max(1) as f64)
    }
}

/// Warm 4 KiB reads of `/app/target` through the checked front of a vfs store (every
/// driver's read passes the same front: the layer table, the rule's lookup, then the host's
/// open, `fstat`, read and close of a file as deep as a layer's file is in a store).
#[derive(Debug)]
pub struct ReadCalls {
    d: AnyDriver,
    layer: LayerId,
    file: LayerPath,
}

impl ReadCalls {
    /// A new vfs store at `root` with the file, read once.
    pub fn new(root: &Path) -> layerlab_core::Result<ReadCalls> {
        let mut d = registry::init("vfs", root, Options::new())?;
        let (layer, dir, file) = (lid("calibrate")?, lpath("/app")?, lpath("/app/target")?);
        d.create_layer(&layer, None)?;
        ops::mkdir_p(&mut d, &layer, &dir, 0o755)?;
        ops::write_file(&mut d, &layer, &file, &[0x5a; 4096], 0o644)?;
        d.read(&layer, &file, 0, 4096)?;
        Ok(ReadCalls { d, layer, file })
    }

    /// The median microseconds of `n` reads, less what the Meter counts for a read apart:
    /// its lookup's dentry-cache hit (`probe_warm` microseconds) and its 4 KiB at the
    /// page-cache bandwidth (`per_byte` microseconds a byte).
    pub fn fixed_cost(
        &mut self,
        n: usize,
        probe_warm: f64,
        per_byte: f64,
    ) -> layerlab_core::Result<f64> {
        let mut calls = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            self.d.read(&self.layer, &self.file, 0, 4096)?;
            calls.push(us(t));
        }
        Ok((median(calls) - probe_warm - 4096.0 * per_byte).max(0.0))
    }
}

/// What the caches hold cold, measured right after a cache drop: directories of 16
/// entries, layer directories laid out as the overlay2 driver lays them out (`diff`,
/// `work` and `link` beside each other) and a file written and synced when these were made.
/// Each measurement looks into every directory and layer once, and reads blocks of the
/// file at random offsets not read before.
#[derive(Debug)]
pub struct ColdCosts {
    dirs: Vec<PathBuf>,
    layers: Vec<PathBuf>,
    file: File,
    blocks: u64,
    extents: usize,
    reads: u64,
}

/// One cold measurement's medians, microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cold {
    /// `lstat` of a missing name in a directory not cached (`probe_cold_us`).
    pub probe_us: f64,
    /// `lstat` of a layer's `diff` not cached (`layer_open_us`).
    pub layer_open_us: f64,
    /// A 4 KiB read at a random offset not cached (`extent_us`).
    pub extent_us: f64,
}

impl ColdCosts {
    /// Makes `n` directories and `n` layers in `s`, and a file of `bytes` (at least 1 MiB)
    /// from which each measurement reads `extents` blocks.
    pub fn new(s: &Path, n: usize, bytes: u64, extents: usize) -> std::io::Result<ColdCosts> {
        let mut dirs = Vec::new();
        let mut layers = Vec::new();
        for i in 0..n {
            let d = s.join(format!("cold{i}"));
            fs::create_dir_all(&d)?;
            for j in 0..16 {
                File::create(d.join(format!("f{j}")))?;
            }
            dirs.push(d);
            let l = s.join("overlay2").join(format!("{i:026}"));
            for sub in ["diff", "work"] {
                fs::create_dir_all(l.join(sub))?;
            }
            fs::write(l.join("link"), b"SHORTLINKNAME0000000000000")?;
            layers.push(l.join("diff"));
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(s.join("cold-data"))?;
        let block = vec![0x5au8; 1 << 20];
        let mib = bytes.div_ceil(1 << 20).max(1);
        for m in 0..mib {
            file.write_all_at(&block, m << 20)?;
        }
        file.sync_all()?;
        Ok(ColdCosts {
            dirs,
            layers,
            file,
            blocks: mib * 256,
            extents,
            reads: 0,
        })
    }

    /// One measurement; call right after a cache drop.
    pub fn measure(&mut self) -> std::io::Result<Cold> {
        let lstat = |p: PathBuf| {
            let t = Instant::now();
            let _ = fs::symlink_metadata(p);
            us(t)
        };
        let probes = self.dirs.iter().map(|d| lstat(d.join("missing"))).collect();
        let opens = self.layers.iter().map(|l| lstat(l.clone())).collect();
        let mut buf = [0u8; 4096];
        let mut extents = Vec::new();
        for _ in 0..self.extents {
            self.reads += 1;
            let off = (self.reads * 2_654_435_761 % self.blocks) * 4096;
            let t = Instant::now();
            self.file.read_at(&mut buf, off)?;
            extents.push(us(t));
        }
        Ok(Cold {
            probe_us: median(probes),
            layer_open_us: median(opens),
            extent_us: median(extents),
        })
    }

    /// The median of `lstat` of a missing name in each directory, five times: warm (the
    /// dentry cache answers) once a measurement has looked into them.
    pub fn warm_probe_us(&self) -> f64 {
        let mut warm = Vec::new();
        for _ in 0..5 {
            for d in &self.dirs {
                let t = Instant::now();
                let _ = fs::symlink_metadata(d.join("missing"));
                warm.push(us(t));
            }
        }
        median(warm)
    }
}
