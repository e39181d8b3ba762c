//! Helpers shared by the integration tests that build real images with podman.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod readme;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// True when the tests run as root.
pub fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Writes the contents of `dir` to the tar `archive` with GNU tar, `options` before the
/// others (`--xattrs`, ...).
pub fn tar_of(dir: &Path, archive: &Path, options: &[&str]) -> Result<(), String> {
    let st = Command::new("tar")
        .args(options)
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(archive)
        .arg(".")
        .status()
        .map_err(|e| e.to_string())?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("tar of {} failed", dir.display()))
    }
}

/// Writes `SKIP <what>: <why>` to raw stderr, where `cargo test` shows it uncaptured.
pub fn skip(what: &str, why: &str) {
    layerlab_testkit::skip(&format!("{what}: {why}"));
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// podman and busybox-static, installed with apt-get if missing and possible.
pub fn ensure_tools() -> Result<(), String> {
    if have("podman") && Path::new("/bin/busybox").exists() {
        return Ok(());
    }
    if !running_as_root() || !have("apt-get") {
        return Err("podman or busybox-static missing, and cannot apt-get install".into());
    }
    let st = Command::new("sh")
        .args(["-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman busybox-static >/dev/null 2>&1"])
        .status()
        .map_err(|e| e.to_string())?;
    if st.success() && have("podman") && Path::new("/bin/busybox").exists() {
        Ok(())
    } else {
        Err("apt-get install podman busybox-static failed".into())
    }
}

/// A temporary directory with a private podman store in it, or `None` after a `SKIP`
/// line naming `what` when podman cannot run here (not root, tools missing).
pub fn podman_or_skip(what: &str) -> Option<(tempfile::TempDir, Podman)> {
    if !running_as_root() {
        skip(what, "needs root (podman build, podman image mount)");
        return None;
    }
    if let Err(e) = ensure_tools() {
        skip(what, &e);
        return None;
    }
    let work = tempfile::tempdir().unwrap();
    let pm = Podman::new(work.path());
    Some((work, pm))
}

/// A private podman store (vfs) under a test's temporary directory.
pub struct Podman {
    /// `--root`.
    pub root: PathBuf,
    /// `--runroot`.
    pub run: PathBuf,
}

impl Podman {
    /// A store under `work`.
    pub fn new(work: &Path) -> Podman {
        Podman {
            root: work.join("pm-root"),
            run: work.join("pm-run"),
        }
    }

    /// Runs podman on this store; its stdout, or its stderr as the error.
    pub fn cmd(&self, args: &[&str]) -> Result<String, String> {
        layerlab_testkit::output(
            Command::new("podman")
                .arg("--root")
                .arg(&self.root)
                .arg("--runroot")
                .arg(&self.run)
                .args(["--storage-driver", "vfs"])
                .args(args),
        )
    }

    /// Imports a busybox rootfs (`/bin/busybox` and a few applet links) as `tag`.
    pub fn busybox_base(&self, work: &Path, tag: &str) -> Result<(), String> {
        let rootfs = work.join("rootfs");
        fs::create_dir_all(rootfs.join("bin")).map_err(|e| e.to_string())?;
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).map_err(|e| e.to_string())?;
        for c in [
            "sh", "rm", "mkdir", "echo", "chmod", "chown", "ln", "cat", "dd", "sed", "tar",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(c))
                .map_err(|e| e.to_string())?;
        }
        let base = work.join("base.tar");
        tar_of(&rootfs, &base, &[])?;
        self.cmd(&["import", base.to_str().unwrap_or_default(), tag])?;
        Ok(())
    }

    /// Builds `ctx/Containerfile` as `tag`.
    pub fn build(&self, ctx: &Path, tag: &str) -> Result<(), String> {
        self.build_file(ctx, "Containerfile", tag).map(drop)
    }

    /// Builds `ctx/file` as `tag` (RUN in a chroot); podman's output.
    pub fn build_file(&self, ctx: &Path, file: &str, tag: &str) -> Result<String, String> {
        self.cmd(&[
            "build",
            "--isolation",
            "chroot",
            "-t",
            tag,
            "-f",
            ctx.join(file).to_str().unwrap_or_default(),
            ctx.to_str().unwrap_or_default(),
        ])
    }
}

/// Each element of the JSON array `v`, through `f` (a panic when `v` is no array).
pub fn rows<'a, T>(v: &'a serde_json::Value, f: impl Fn(&'a serde_json::Value) -> T) -> Vec<T> {
    v.as_array().unwrap().iter().map(f).collect()
}

/// The `layerlab` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_layerlab");

/// A temporary working directory with a store (`./store`) in it; every command is a new
/// process that reopens the store.
pub struct Lab {
    /// The working directory.
    pub tmp: tempfile::TempDir,
    /// The store.
    pub root: PathBuf,
}

impl Lab {
    /// A store for `driver`.
    pub fn new(driver: &str) -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let lab = Lab { tmp, root };
        lab.ok(&["init", "--driver", driver]);
        lab
    }

    /// Runs `layerlab ARGS` on the store.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .env("LAYERLAB_ROOT", &self.root)
            .current_dir(self.tmp.path())
            .output()
            .unwrap()
    }

    /// A command that must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "layerlab {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A command that must succeed with JSON on stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// A command that must fail with exit 1 and one `error:` line: that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(1), "layerlab {args:?} should fail");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            err.starts_with("error: ") && err.trim_end().lines().count() == 1,
            "{err}"
        );
        err
    }

    /// A path in the working directory.
    pub fn file(&self, name: &str) -> String {
        self.tmp.path().join(name).display().to_string()
    }
}
