//! The mount against kernel overlayfs and against `layerlab write`, measured side by side
//! in one run (wall-clock; printed, never asserted). Each of `MOUNT_BENCH_REPS` repetitions
//! (default 7) measures both sides, alternating which goes first so that a load that
//! comes and goes on a shared machine falls on both; every figure is the median over the
//! repetitions with `[min, max]`, which holds the median with probability `1 - 2^(1-n)`
//! (98.4% for 7), and the ratio is taken per repetition:
//!
//! 1. reading a 256 MiB file of a committed layer a second time through the mount vs
//!    through a kernel overlay mount of the same layer directories (target: >= 0.5x);
//! 2. `tar x` of 10,000 small files into an active layer through the mount vs into a
//!    kernel overlay mount (target: <= 5x the time);
//! 3. a 1-byte append to a 256 MiB lower file through the mount vs the same append as
//!    `layerlab write --append` does it (open the store, `append`, close; target <= 1.2x).
//!
//! Run: `cargo bench -p layerlab-mount --bench mount_vs_kernel` (root, /dev/fuse, overlay).
//! `MOUNT_BENCH_ONLY=read,tar,append` (any of them) runs only those comparisons (more
//! repetitions of one in the same time). With `MOUNT_BENCH_OPS=1` it instead extracts the
//! tar once and counts the driver calls by kind (where the requests of an extraction go).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use layerlab_core::{LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, Access, Options};
use layerlab_mount::MountRequest;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIG: u64 = 256 << 20;

fn id(s: &str) -> LayerId {
    LayerId::new(s).unwrap()
}

fn p(s: &str) -> LayerPath {
    LayerPath::parse(s).unwrap()
}

/// An overlay2 store with `base` committed (holding /big, 256 MiB, if `big`).
fn store(dir: &Path, big: bool) -> PathBuf {
    let root = dir.join("store");
    let mut d = registry::init("overlay2", &root, Options::new()).unwrap();
    d.create_layer(&id("base"), None).unwrap();
    if big {
        d.create(&id("base"), &p("/big"), 0o644).unwrap();
        let chunk: Vec<u8> = (0..(4u32 << 20)).map(|i| (i % 251) as u8).collect();
        let mut off = 0;
        while off < BIG {
            d.write(&id("base"), &p("/big"), off, &chunk).unwrap();
            off += chunk.len() as u64;
        }
    }
    d.commit(&id("base")).unwrap();
    root
}

/// A new active layer on `base`.
fn layer(store: &Path, name: &str) {
    let mut d = registry::open(store, Access::Write).unwrap();
    d.create_layer(&id(name), Some(&id("base"))).unwrap();
}

struct Fuse {
    dir: tempfile::TempDir,
    server: std::thread::JoinHandle<layerlab_mount::Totals>,
}

fn fuse(store: &Path, layer: &str) -> Fuse {
    let dir = tempfile::tempdir().unwrap();
    let req = MountRequest {
        store: store.to_path_buf(),
        layer: id(layer),
        dir: dir.path().to_path_buf(),
        read_only: false,
    };
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        layerlab_mount::serve(&req, None, move |_| tx.send(()).unwrap()).unwrap()
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    Fuse { dir, server }
}

impl Fuse {
    fn finish(self) -> layerlab_mount::Totals {
        while layerlab_mount::unmount(self.dir.path(), false).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.server.join().unwrap()
    }
}

/// A kernel overlay mount of `layer` (upper) on `base` (lower) of the store.
fn kernel(store: &Path, layer: &str) -> tempfile::TempDir {
    let target = tempfile::tempdir().unwrap();
    let l = |x: &str| store.join("overlay2").join(x);
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off",
        l("base").join("diff").display(),
        l(layer).join("diff").display(),
        l(layer).join("work").display()
    );
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(target.path())
        .status()
        .unwrap();
    assert!(st.success(), "kernel overlay mount");
    target
}

fn kernel_done(t: &Path) {
    layerlab_mount::unmount(t, false).unwrap();
}

fn read_all(path: &Path) -> f64 {
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    assert_eq!(n, BIG);
    start.elapsed().as_secs_f64()
}

/// Both sides of one comparison over the repetitions (seconds, or a throughput).
#[derive(Default)]
struct Pairs {
    mount: Vec<f64>,
    other: Vec<f64>,
}

impl Pairs {
    fn push(&mut self, mount: f64, other: f64) {
        self.mount.push(mount);
        self.other.push(other);
    }

    /// The same comparison with every figure `f` of it (a time turned into a throughput).
    fn map(&self, f: impl Fn(f64) -> f64) -> Pairs {
        Pairs {
            mount: self.mount.iter().copied().map(&f).collect(),
            other: self.other.iter().copied().map(&f).collect(),
        }
    }

    /// Prints `what`: the mount's figures and `other`'s in `unit`, and the per-repetition
    /// ratio `mount / other` held to `target`; nothing when the comparison did not run.
    fn print(&self, what: &str, other: &str, unit: &str, target: &str) {
        if self.mount.is_empty() {
            return;
        }
        let ratio: Vec<f64> = self
            .mount
            .iter()
            .zip(&self.other)
            .map(|(m, o)| m / o)
            .collect();
        println!(
            "{what}: {}, {}: ratio {} (target {target})",
            show("mount", &self.mount, unit),
            show(other, &self.other, unit),
            show("", &ratio, "x").trim_start()
        );
    }
}

fn show(what: &str, values: &[f64], unit: &str) -> String {
    let (m, lo, hi) = layerlab_testkit::median_min_max(values);
    format!("{what} {m:.3} [{lo:.3}, {hi:.3}] {unit}")
}

fn reps() -> usize {
    std::env::var("MOUNT_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(7)
}

/// Whether the comparison `what` runs (`MOUNT_BENCH_ONLY`, all when unset).
fn runs(what: &str) -> bool {
    std::env::var("MOUNT_BENCH_ONLY").map_or(true, |only| only.split(',').any(|w| w.trim() == what))
}

/// Both sides of repetition `rep`, the mount's first in even repetitions and second in odd
/// ones, so that neither side always runs on the machine the other left: `(mount, other)`.
fn alternate<M, O>(rep: usize, mount: impl FnOnce() -> M, other: impl FnOnce() -> O) -> (M, O) {
    if rep.is_multiple_of(2) {
        let m = mount();
        (m, other())
    } else {
        let o = other();
        (mount(), o)
    }
}

fn second_read(s: &Path, rep: usize, out: &mut Pairs) {
    let fuse_side = || {
        let m = fuse(s, "base");
        read_all(&m.dir.path().join("big"));
        let t = read_all(&m.dir.path().join("big"));
        m.finish();
        t
    };
    let kernel_side = || {
        let k = kernel(s, "reader");
        read_all(&k.path().join("big"));
        let t = read_all(&k.path().join("big"));
        kernel_done(k.path());
        t
    };
    let (f, k) = alternate(rep, fuse_side, kernel_side);
    out.push(f, k);
}

fn tar_file(tmp: &Path) -> PathBuf {
    let src = tmp.join("src");
    for d in 0..100 {
        let dir = src.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}")), [b'x'; 100]).unwrap();
        }
    }
    let tar = tmp.join("files.tar");
    let st = Command::new("tar")
        .arg("cf")
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

fn untar(tar: &Path, dir: &Path) -> f64 {
    // the earlier benches' writeback must not land in this one's time
    Command::new("sync").status().unwrap();
    let start = Instant::now();
    let st = Command::new("tar")
        .arg("xf")
        .arg(tar)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    start.elapsed().as_secs_f64()
}

fn tar_x(s: &Path, tar: &Path, rep: usize, out: &mut Pairs) -> layerlab_mount::Totals {
    let (lm, lk) = (format!("tm{rep}"), format!("tk{rep}"));
    layer(s, &lm);
    layer(s, &lk);
    let fuse_side = || {
        let m = fuse(s, &lm);
        let t = untar(tar, m.dir.path());
        (t, m.finish())
    };
    let kernel_side = || {
        let k = kernel(s, &lk);
        let t = untar(tar, k.path());
        kernel_done(k.path());
        t
    };
    let ((f, totals), k) = alternate(rep, fuse_side, kernel_side);
    out.push(f, k);
    totals
}

fn append(s: &Path, rep: usize, out: &mut Pairs) {
    let (lm, lw) = (format!("am{rep}"), format!("aw{rep}"));
    layer(s, &lm);
    layer(s, &lw);
    let fuse_side = || {
        let m = fuse(s, &lm);
        let big = m.dir.path().join("big");
        std::fs::metadata(&big).unwrap();
        let start = Instant::now();
        let mut f = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
        f.write_all(b"!").unwrap();
        drop(f);
        let t = start.elapsed().as_secs_f64();
        m.finish();
        t
    };
    let write_side = || {
        let start = Instant::now();
        let mut d = registry::open(s, Access::Write).unwrap();
        d.append(&id(&lw), &p("/big"), b"!").unwrap();
        drop(d);
        start.elapsed().as_secs_f64()
    };
    let (f, w) = alternate(rep, fuse_side, write_side);
    out.push(f, w);
}

/// `tar x` through the mount once, counting the driver calls by kind (`stat!` a failed
/// one, `get_xattr` by attribute name): where the requests of an extraction go.
fn driver_calls() {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), false);
    let tar = tar_file(tmp.path());
    layer(&s, "t");
    let calls: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let seen = calls.clone();
    let tracer: layerlab_mount::Tracer = Box::new(move |label, _, _, failed| {
        let mut words = label.split(' ');
        let kind = match words.next() {
            Some("get_xattr") => format!("get_xattr {}", words.nth(1).unwrap_or("")),
            other => other.unwrap_or("").to_string(),
        };
        let key = if failed { format!("{kind}!") } else { kind };
        *seen.lock().unwrap().entry(key).or_default() += 1;
    });
    let dir = tempfile::tempdir().unwrap();
    let req = MountRequest {
        store: s.clone(),
        layer: id("t"),
        dir: dir.path().to_path_buf(),
        read_only: false,
    };
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        layerlab_mount::serve(&req, Some(tracer), move |_| tx.send(()).unwrap()).unwrap()
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let t = untar(&tar, dir.path());
    let totals = Fuse { dir, server }.finish();
    println!(
        "tar x of 10,000 files: {t:.2} s, {} driver calls, store opened {} times",
        totals.ops, totals.opens
    );
    for (kind, n) in calls.lock().unwrap().iter() {
        println!("  {kind}: {n}");
    }
}

fn main() {
    if let Err(why) = layerlab_mount::fuse_available() {
        let _ = std::io::stderr().write_all(format!("SKIP mount benches: {why}\n").as_bytes());
        return;
    }
    // `cargo test --benches` runs this with --bench absent: keep that quick
    if !std::env::args().any(|a| a == "--bench") {
        println!("mount_vs_kernel: run with `cargo bench` to measure");
        return;
    }
    let n = reps();
    if std::env::var_os("MOUNT_BENCH_OPS").is_some() {
        return driver_calls();
    }
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), runs("read") || runs("append"));
    layer(&s, "reader");
    let tar = tar_file(tmp.path());
    let (mut read, mut untars, mut appends) =
        (Pairs::default(), Pairs::default(), Pairs::default());
    for rep in 0..n {
        if runs("read") {
            second_read(&s, rep, &mut read);
        }
        if runs("tar") {
            let totals = tar_x(&s, &tar, rep, &mut untars);
            if rep == 0 {
                println!(
                    "tar x through the mount: {} driver operations, store opened {} times; counts: {}",
                    totals.ops,
                    totals.opens,
                    totals.counts.summary()
                );
            }
        }
        if runs("append") {
            append(&s, rep, &mut appends);
        }
    }
    println!("{n} repetitions; each figure: median [min, max]");
    // the read as a throughput: its ratio mount / other is the kernel's time over the mount's
    let read = read.map(|t| 256.0 / t);
    read.print(
        "second read of 256 MiB",
        "kernel overlay",
        "MiB/s",
        ">= 0.5x",
    );
    untars.print("tar x of 10,000 files", "kernel overlay", "s", "<= 5x");
    appends.print(
        "1-byte append to a 256 MiB lower file",
        "layerlab write --append",
        "s",
        "<= 1.2x",
    );
}
