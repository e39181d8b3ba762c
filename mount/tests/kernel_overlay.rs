//! Differential test against kernel overlayfs: two overlay2 stores with the same image;
//! the active layer of one served through the FUSE mount, the same layer directories of the
//! other mounted by the kernel's overlayfs (Docker's options: index, redirect_dir and
//! metacopy off). The same system calls on both give the same results and errno, and
//! leave the same upper directory (files, modes, owners, whiteouts, opaque markers).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rustix::fs::{self as fs, RenameFlags, XattrFlags, CWD};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The overlay2 layout of a layer's upper directory (see drivers/src/overlay2/layout.rs).
fn diff_dir(store: &Path, layer: &str) -> PathBuf {
    store.join("overlay2").join(layer).join("diff")
}

struct KernelMount(PathBuf);

impl Drop for KernelMount {
    fn drop(&mut self) {
        let _ = layerlab_mount::unmount(&self.0, false);
    }
}

fn kernel_mount(store: &Path, target: &Path) -> Result<KernelMount, String> {
    let layer = |l: &str| store.join("overlay2").join(l);
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off",
        layer("base").join("diff").display(),
        layer("app").join("diff").display(),
        layer("app").join("work").display()
    );
    let out = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(target)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(KernelMount(target.to_path_buf()))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A small deterministic generator (xorshift), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const NAMES: &[&str] = &[
    "etc/motd",
    "etc/motd.link",
    "etc/new",
    "etc",
    "usr",
    "usr/bin",
    "usr/bin/tool",
    "data/big",
    "data",
    "a",
    "b",
    "d",
    "d/e",
    "d/e/f",
    "missing/x",
];

fn outcome<T: std::fmt::Debug>(r: std::io::Result<T>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("errno {:?}", e.raw_os_error()),
    }
}

fn stat_line(p: &Path) -> std::io::Result<String> {
    let m = std::fs::symlink_metadata(p)?;
    let kind = if m.is_dir() {
        "dir"
    } else if m.file_type().is_symlink() {
        "symlink"
    } else {
        "file"
    };
    // directory sizes and link counts are the backing filesystem's, not overlay's
    let (size, nlink) = if m.is_dir() {
        (0, 0)
    } else {
        (m.len(), m.nlink())
    };
    Ok(format!(
        "{kind} {:o} {}:{} size={size} nlink={nlink}",
        m.permissions().mode() & 0o7777,
        m.uid(),
        m.gid()
    ))
}

/// One random system call on the mount at `m`; its result as text.
fn step(m: &Path, rng: &mut Rng) -> String {
    let a = m.join(rng.pick(NAMES));
    let b = m.join(rng.pick(NAMES));
    let label = format!(
        "{} {}",
        a.strip_prefix(m).unwrap().display(),
        b.strip_prefix(m).unwrap().display()
    );
    let what = match rng.next() % 16 {
        0 => ("write", outcome(std::fs::write(&a, b"data"))),
        1 => ("append", {
            let r = std::fs::OpenOptions::new().append(true).open(&a);
            outcome(r.and_then(|mut f| std::io::Write::write_all(&mut f, b"+")))
        }),
        2 => ("read", outcome(std::fs::read(&a))),
        3 => ("mkdir", outcome(std::fs::create_dir(&a))),
        4 => ("rmdir", outcome(std::fs::remove_dir(&a))),
        5 => ("unlink", outcome(std::fs::remove_file(&a))),
        6 => ("rename", outcome(std::fs::rename(&a, &b))),
        7 => (
            "rename-noreplace",
            outcome(
                fs::renameat_with(CWD, &a, CWD, &b, RenameFlags::NOREPLACE)
                    .map_err(std::io::Error::from),
            ),
        ),
        8 => (
            "chmod",
            outcome(std::fs::set_permissions(
                &a,
                PermissionsExt::from_mode(0o640),
            )),
        ),
        9 => ("symlink", outcome(std::os::unix::fs::symlink("target", &a))),
        10 => ("link", outcome(std::fs::hard_link(&a, &b))),
        11 => ("stat", outcome(stat_line(&a))),
        12 => ("readdir", {
            let r = std::fs::read_dir(&a).map(|it| {
                let mut v: Vec<String> = it
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                v.sort();
                v
            });
            outcome(r)
        }),
        13 => (
            "truncate",
            outcome(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&a)
                    .and_then(|f| f.set_len(3)),
            ),
        ),
        14 => (
            "setxattr",
            outcome(
                fs::setxattr(&a, "user.k", b"v", XattrFlags::empty()).map_err(std::io::Error::from),
            ),
        ),
        // no fifos: opening one for the reads and writes above would block
        _ => (
            "lchown",
            outcome(std::os::unix::fs::lchown(&a, Some(7), Some(8))),
        ),
    };
    format!("{} {label}: {}", what.0, what.1)
}

/// The upper directory as overlayfs's format: entries, modes, owners, content, whiteouts,
/// the opaque marker (the kernel's own `origin`/`impure` bookkeeping left out).
fn upper(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in layerlab_testkit::host_tree(dir).unwrap() {
        let (p, m) = (&e.path, &e.meta);
        let mut line = stat_line(p).unwrap();
        if m.file_type().is_char_device() {
            line = format!("whiteout {}", m.rdev());
        } else if m.is_dir() {
            let mut buf = [0u8; 8];
            let opaque = fs::lgetxattr(p, "trusted.overlay.opaque", &mut buf)
                .map(|n| buf[..n].to_vec())
                .ok();
            line.push_str(&format!(" opaque={opaque:?}"));
        } else if m.is_file() {
            line.push_str(&format!(" {:?}", std::fs::read(p).unwrap()));
        }
        let mut buf = [0u8; 64];
        if let Ok(n) = fs::lgetxattr(p, "user.k", &mut buf) {
            line.push_str(&format!(" user.k={:?}", &buf[..n]));
        }
        out.insert(e.rel, line);
    }
    out
}

#[test]
fn fuse_mount_and_kernel_overlay_agree() {
    if !fuse_or_skip("fuse_mount_and_kernel_overlay_agree") {
        return;
    }
    if let Some(Err(why)) =
        layerlab_drivers::registry::info("kernel-overlay").map(|d| d.availability())
    {
        layerlab_testkit::skip(&format!("fuse_mount_and_kernel_overlay_agree: {why}"));
        return;
    }
    for seed in [1u64, 7, 42, 1234, 99_991, 5, 11, 2024, 31_337, 77] {
        let (ta, mut da) = store("overlay2");
        image(&mut da);
        drop(da);
        let (tb, mut db) = store("overlay2");
        image(&mut db);
        drop(db);
        let (sa, sb) = (ta.path().join("store"), tb.path().join("store"));
        let kdir = tempfile::tempdir().unwrap();
        let kernel = kernel_mount(&sb, kdir.path()).unwrap();
        let fuse = mount(&sa, "app", false);
        let (mut ra, mut rb) = (Rng(seed), Rng(seed));
        let (mut oks, mut errs) = (0, 0);
        for i in 0..150 {
            let got = step(fuse.path(), &mut ra);
            let want = step(kdir.path(), &mut rb);
            assert_eq!(got, want, "seed {seed}, step {i}");
            if got.contains(": ok ") {
                oks += 1;
            } else {
                errs += 1;
            }
        }
        assert!(
            oks > 10 && errs > 10,
            "seed {seed}: {oks} ok, {errs} errors"
        );
        fuse.finish();
        drop(kernel);
        let up = upper(&diff_dir(&sa, "app"));
        assert!(
            !up.is_empty(),
            "seed {seed}: nothing reached the upper directory"
        );
        assert_eq!(
            up,
            upper(&diff_dir(&sb, "app")),
            "seed {seed}: upper directories"
        );
    }
}
