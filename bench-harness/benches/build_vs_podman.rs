//! `layerlab build` against `podman build --isolation chroot`, the lab's fast Containerfile
//! (examples/build-lab/app/Containerfile.fast) on the same busybox base, measured wall-clock
//! in one run, interleaved (the order alternates every repetition), printed, never asserted:
//!
//! 1. a full build (`--no-cache`: every step built) on overlay2 vs podman's (its overlay
//!    storage driver) (target: <= 1.5x);
//! 2. a fully cached rebuild vs podman's (target: <= 1x).
//!
//! Each figure is the median of the repetitions with its order-statistic interval
//! (`harness::stats`); the ratio is the median of the per-repetition ratios.
//!
//! Run: `cargo bench -p layerlab --bench build_vs_podman` (root, podman, /dev/fuse);
//! `LAYERLAB_BENCH_REPS` sets the repetitions (default 7).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::env_or;
use layerlab::harness::stats::{median, median_interval};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_layerlab");

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Setup {
    _tmp: tempfile::TempDir,
    lab: PathBuf,
    store: PathBuf,
    pm: [String; 4],
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let lab = tmp.path().join("lab");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/build-lab");
        run(Command::new("cp").arg("-r").arg(&src).arg(&lab));
        run(Command::new("sh")
            .args(["make-rootfs.sh", "base"])
            .current_dir(&lab));
        let store = tmp.path().join("store");
        let pm = [
            "--root".to_string(),
            tmp.path().join("pm-root").display().to_string(),
            "--runroot".to_string(),
            tmp.path().join("pm-run").display().to_string(),
        ];
        let s = Setup {
            _tmp: tmp,
            lab,
            store,
            pm,
        };
        run(s.layerlab().args(["init", "--driver", "overlay2"]));
        let base = s.lab.join("base");
        run(s
            .layerlab()
            .args(["build", "-t", "busybox", "-f"])
            .arg(base.join("Containerfile"))
            .arg(&base));
        run(s
            .podman()
            .args([
                "build",
                "-q",
                "--isolation",
                "chroot",
                "-t",
                "busybox",
                "-f",
            ])
            .arg(base.join("Containerfile"))
            .arg(&base));
        s
    }

    fn layerlab(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.store);
        c
    }

    fn podman(&self) -> Command {
        let mut c = Command::new("podman");
        c.args(&self.pm);
        c
    }

    /// Seconds of one build of the fast Containerfile.
    fn build(&self, podman: bool, no_cache: bool) -> f64 {
        let ctx = self.lab.join("app");
        let mut c = if podman {
            let mut c = self.podman();
            c.args(["build", "-q", "--isolation", "chroot"]);
            c
        } else {
            let mut c = self.layerlab();
            c.arg("build");
            c
        };
        if no_cache {
            c.arg("--no-cache");
        }
        c.args(["-t", "app:fast", "-f"])
            .arg(ctx.join("Containerfile.fast"))
            .arg(&ctx);
        let start = Instant::now();
        run(&mut c);
        start.elapsed().as_secs_f64()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.podman().args(["rmi", "-a", "-f"]).output();
    }
}

fn line(what: &str, lab: &mut [f64], pm: &mut [f64], target: &str) {
    let mut ratios: Vec<f64> = lab.iter().zip(pm.iter()).map(|(a, b)| a / b).collect();
    for v in [&mut *lab, &mut *pm, &mut ratios[..]] {
        v.sort_by(f64::total_cmp);
    }
    let show = |v: &[f64]| {
        let (lo, hi, _) = median_interval(v);
        format!("{:.3} s [{lo:.3}, {hi:.3}]", median(v))
    };
    let (rlo, rhi, level) = median_interval(&ratios);
    println!(
        "{what}: layerlab (overlay2) {}, podman {}: ratio {:.2}x [{rlo:.2}, {rhi:.2}] ({:.0}% interval, n={}; target {target})",
        show(lab),
        show(pm),
        median(&ratios),
        level * 100.0,
        ratios.len()
    );
}

fn main() {
    if !rustix::process::geteuid().is_root()
        || Command::new("podman").arg("version").output().is_err()
    {
        println!("SKIP build_vs_podman: needs root and podman");
        return;
    }
    let reps: usize = env_or("LAYERLAB_BENCH_REPS", 7);
    let s = Setup::new();
    // warm-up: one of each, not counted (page cache, podman's first-run set-up)
    s.build(false, true);
    s.build(true, true);
    let (mut full_l, mut full_p, mut cached_l, mut cached_p) = (vec![], vec![], vec![], vec![]);
    for i in 0..reps {
        let podman_first = i % 2 == 1;
        for (full, ours, podmans) in [
            (true, &mut full_l, &mut full_p),
            (false, &mut cached_l, &mut cached_p),
        ] {
            for podman in [podman_first, !podman_first] {
                let t = s.build(podman, full);
                if podman {
                    podmans.push(t)
                } else {
                    ours.push(t)
                }
            }
        }
    }
    line(
        "full build of the lab's fast Containerfile",
        &mut full_l,
        &mut full_p,
        "<= 1.5x",
    );
    line(
        "fully cached rebuild",
        &mut cached_l,
        &mut cached_p,
        "<= 1x",
    );
}
