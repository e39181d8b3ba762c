//! The mount against kernel overlayfs and against `layerlab write`, measured (wall-clock,
//! one run each after a warm-up where it matters; printed, never asserted):
//!
//! 1. reading a 256 MiB file of a committed layer a second time through the mount vs
//!    through a kernel overlay mount of the same layer directories (target: >= 0.5x);
//! 2. `tar x` of 10,000 small files into an active layer through the mount vs into a
//!    kernel overlay mount (target: <= 5x the time);
//! 3. a 1-byte append to a 256 MiB lower file through the mount vs the same append as
//!    `layerlab write --append` does it (open the store, `append`, close; target <= 1.2x).
//!
//! Run: `cargo bench -p layerlab-mount --bench mount_vs_kernel` (root, /dev/fuse, overlay).

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

/// An overlay2 store: `base` with /big (256 MiB) committed, `app` active on it.
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
    d.create_layer(&id("app"), Some(&id("base"))).unwrap();
    root
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

fn kernel(store: &Path) -> tempfile::TempDir {
    let target = tempfile::tempdir().unwrap();
    let l = |x: &str| store.join("overlay2").join(x);
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off",
        l("base").join("diff").display(),
        l("app").join("diff").display(),
        l("app").join("work").display()
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

fn read_all(path: &Path) -> Duration {
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
    start.elapsed()
}

fn mbps(d: Duration) -> f64 {
    (BIG as f64 / (1 << 20) as f64) / d.as_secs_f64()
}

fn second_read() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), true);
    let m = fuse(&s, "base");
    read_all(&m.dir.path().join("big"));
    let f = read_all(&m.dir.path().join("big"));
    m.finish();
    let k = kernel(&s);
    read_all(&k.path().join("big"));
    let kt = read_all(&k.path().join("big"));
    kernel_done(k.path());
    println!(
        "second read of 256 MiB: mount {:.0} MiB/s, kernel overlay {:.0} MiB/s: ratio {:.2}x (target >= 0.5x)",
        mbps(f),
        mbps(kt),
        mbps(f) / mbps(kt)
    );
}

fn tar_x() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for d in 0..100 {
        let dir = src.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}")), [b'x'; 100]).unwrap();
        }
    }
    let tar = tmp.path().join("files.tar");
    let st = Command::new("tar")
        .arg("cf")
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let untar = |dir: &Path| {
        // the earlier benches' writeback must not land in this one's time
        Command::new("sync").status().unwrap();
        let start = Instant::now();
        let st = Command::new("tar")
            .arg("xf")
            .arg(&tar)
            .arg("-C")
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success());
        start.elapsed()
    };
    let t1 = tempfile::tempdir().unwrap();
    let s1 = store(t1.path(), false);
    let m = fuse(&s1, "app");
    let f = untar(m.dir.path());
    let totals = m.finish();
    let t2 = tempfile::tempdir().unwrap();
    let s2 = store(t2.path(), false);
    let k = kernel(&s2);
    let kt = untar(k.path());
    kernel_done(k.path());
    println!(
        "tar x: {} driver operations, store opened {} times; counts: {}",
        totals.ops,
        totals.opens,
        totals.counts.summary()
    );
    println!(
        "tar x of 10,000 files: mount {:.2} s, kernel overlay {:.2} s: ratio {:.1}x (target <= 5x)",
        f.as_secs_f64(),
        kt.as_secs_f64(),
        f.as_secs_f64() / kt.as_secs_f64()
    );
}

fn append() {
    let t1 = tempfile::tempdir().unwrap();
    let s1 = store(t1.path(), true);
    let m = fuse(&s1, "app");
    let big = m.dir.path().join("big");
    std::fs::metadata(&big).unwrap();
    let start = Instant::now();
    let mut f = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
    f.write_all(b"!").unwrap();
    drop(f);
    let through_mount = start.elapsed();
    m.finish();
    let t2 = tempfile::tempdir().unwrap();
    let s2 = store(t2.path(), true);
    let start = Instant::now();
    let mut d = registry::open(&s2, Access::Write).unwrap();
    d.append(&id("app"), &p("/big"), b"!").unwrap();
    drop(d);
    let direct = start.elapsed();
    println!(
        "1-byte append to a 256 MiB lower file: mount {:.3} s, layerlab write --append path {:.3} s: ratio {:.2}x (target <= 1.2x)",
        through_mount.as_secs_f64(),
        direct.as_secs_f64(),
        through_mount.as_secs_f64() / direct.as_secs_f64()
    );
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
    second_read();
    tar_x();
    append();
}
