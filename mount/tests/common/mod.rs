//! What the mount tests share: stores of every driver, a layer mounted in a thread of the
//! test, and the visible skip where FUSE is unavailable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use layerlab_core::{LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, AnyDriver, Options};
use layerlab_mount::{MountRequest, Totals};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// True when FUSE mounts work here; otherwise writes a SKIP line to raw stderr.
pub fn fuse_or_skip(test: &str) -> bool {
    match layerlab_mount::fuse_available() {
        Ok(()) => true,
        Err(why) => {
            layerlab_testkit::skip(&format!("{test}: FUSE unavailable: {why}"));
            false
        }
    }
}

pub fn id(s: &str) -> LayerId {
    LayerId::new(s).unwrap()
}

pub fn p(s: &str) -> LayerPath {
    LayerPath::parse(s).unwrap()
}

/// A new store of `driver`, opened for writing.
pub fn store(driver: &str) -> (tempfile::TempDir, AnyDriver) {
    let dir = tempfile::tempdir().unwrap();
    let d = registry::init(driver, &dir.path().join("store"), Options::new()).unwrap();
    (dir, d)
}

/// A base layer with a few entries (files, a symlink, a hard link pair, a device-free
/// tree), committed, and an active child `app` of it.
pub fn image(d: &mut AnyDriver) {
    let base = id("base");
    d.create_layer(&base, None).unwrap();
    for dir in ["/etc", "/usr", "/usr/bin", "/data"] {
        d.mkdir(&base, &p(dir), 0o755).unwrap();
    }
    layerlab_core::ops::write_file(d, &base, &p("/etc/motd"), b"hello\n", 0o644).unwrap();
    layerlab_core::ops::write_file(
        d,
        &base,
        &p("/usr/bin/tool"),
        b"#!/bin/sh\necho hi\n",
        0o644,
    )
    .unwrap();
    d.chmod(&base, &p("/usr/bin/tool"), 0o755).unwrap();
    layerlab_core::ops::write_file(d, &base, &p("/data/big"), &vec![7u8; 200_000], 0o644).unwrap();
    d.symlink(&base, "motd", &p("/etc/motd.link")).unwrap();
    d.commit(&base).unwrap();
    d.create_layer(&id("app"), Some(&base)).unwrap();
}

/// A layer served by `serve` in a thread of this process, unmounted when dropped.
pub struct Mounted {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
    server: Option<JoinHandle<Result<Totals, layerlab_mount::MountError>>>,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Unmounts and returns the totals of the mount.
    pub fn finish(mut self) -> Totals {
        self.stop().unwrap()
    }

    fn stop(&mut self) -> Option<Totals> {
        let server = self.server.take()?;
        let mut tries = 0;
        while let Err(e) = layerlab_mount::unmount(self.dir.path(), false) {
            tries += 1;
            if tries > 200 {
                panic!("unmount {}: {e}", self.dir.path().display());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Some(server.join().unwrap().unwrap())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.server.is_some() {
            let _ = layerlab_mount::unmount(self.dir.path(), true);
        }
    }
}

/// Mounts `layer` of the store at `store`.
pub fn mount(store: &Path, layer: &str, read_only: bool) -> Mounted {
    let dir = tempfile::tempdir().unwrap();
    let req = MountRequest {
        store: store.to_path_buf(),
        layer: id(layer),
        dir: dir.path().to_path_buf(),
        read_only,
    };
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        layerlab_mount::serve(&req, None, move |_| {
            let _ = tx.send(());
        })
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        panic!("mount failed: {:?}", server.join().map(|r| r.err()));
    }
    Mounted {
        dir,
        store: store.to_path_buf(),
        server: Some(server),
    }
}
