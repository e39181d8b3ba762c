//! Real programs on a mount of every driver: a shell script with cp -a, tar c/x, mv, ln,
//! chmod, rm -r, find and du, run on the mounted active layer and on a plain directory
//! holding the same image; the trees and the programs' outputs must agree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use layerlab_testkit::drivers;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

const SCRIPT: &str = r#"
set -eu
cd "$1"; out="$2"
mkdir -p work/a/b
echo hello > work/a/b/f
printf 'x%.0s' $(seq 1 5000) > work/a/b/g
cp -a etc work/etc-copy
cp -a usr/bin/tool work/tool
tar cf "$out/a.tar" -C work a
mkdir work/x
tar xf "$out/a.tar" -C work/x
mv work/x/a work/y
mv work/tool work/y/tool
ln work/y/b/f work/y/b/f2
ln -s y work/link
chmod 0600 work/y/b/f
chmod -R go-rx work/etc-copy
rm -r work/etc-copy work/x
echo more >> etc/motd
mv data/big data/big2
rm etc/motd.link
tar cf "$out/whole.tar" work etc
find . | LC_ALL=C sort > "$out/find.txt"
du --apparent-size -b work/y/b/* | LC_ALL=C sort -k2 > "$out/du.txt"
cat work/link/b/f2 etc/motd > "$out/cat.txt"
"#;

/// Every entry below `root`: kind, permission bits, size and nlink of files, link target,
/// content.
fn manifest(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in layerlab_testkit::host_tree(root).unwrap() {
        let m = &e.meta;
        let mode = m.permissions().mode() & 0o7777;
        let what = if m.is_dir() {
            format!("dir {mode:o}")
        } else if m.file_type().is_symlink() {
            format!(
                "symlink -> {}",
                std::fs::read_link(&e.path).unwrap().display()
            )
        } else {
            let bytes = std::fs::read(&e.path).unwrap();
            let sum: u64 = bytes.iter().map(|b| u64::from(*b)).sum();
            format!(
                "file {mode:o} size={} nlink={} sum={sum}",
                m.len(),
                m.nlink()
            )
        };
        out.insert(e.rel, what);
    }
    out
}

fn run_script(dir: &Path, out: &Path) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("script")
        .arg(dir)
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "script failed in {}", dir.display());
}

fn plain_image(dir: &Path) {
    for d in ["etc", "usr/bin", "data"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("etc/motd"), b"hello\n").unwrap();
    std::fs::write(dir.join("usr/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(dir.join("usr/bin/tool"), PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("data/big"), vec![7u8; 200_000]).unwrap();
    std::os::unix::fs::symlink("motd", dir.join("etc/motd.link")).unwrap();
}

fn outputs(dir: &Path) -> Vec<(String, String)> {
    ["find.txt", "du.txt", "cat.txt"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read_to_string(dir.join(f)).unwrap()))
        .collect()
}

#[test]
fn shell_script_on_every_driver_matches_a_plain_directory() {
    if !fuse_or_skip("shell_script_on_every_driver") {
        return;
    }
    let plain = tempfile::tempdir().unwrap();
    let plain_out = tempfile::tempdir().unwrap();
    plain_image(plain.path());
    run_script(plain.path(), plain_out.path());
    let want = manifest(plain.path());
    let want_out = outputs(plain_out.path());
    for driver in drivers("shell_script_on_every_driver") {
        let (tmp, mut d) = store(driver);
        image(&mut d);
        drop(d);
        let store = tmp.path().join("store");
        let m = mount(&store, "app", false);
        let out = tempfile::tempdir().unwrap();
        run_script(m.path(), out.path());
        let got = manifest(m.path());
        let got_out = outputs(out.path());
        let totals = m.finish();
        assert_eq!(got, want, "{driver}: tree after the script");
        assert_eq!(got_out, want_out, "{driver}: outputs of find, du, cat");
        assert!(totals.ops > 0, "{driver}: nothing served");
        // the changes are the driver's, visible to a new opening of the store
        let mut d =
            layerlab_drivers::registry::open(&store, layerlab_drivers::Access::Read).unwrap();
        let motd = layerlab_core::ops::read_all(&mut d, &id("app"), &p("/etc/motd")).unwrap();
        assert_eq!(motd, b"hello\nmore\n", "{driver}");
    }
}
