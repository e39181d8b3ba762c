//! What podman writes, layerlab keeps: an image whose base layer has a file with
//! capabilities (`security.capability`), a fifo, a device node and mtimes with fractions,
//! and whose second layer was made by a `RUN` (a fifo and a file), is saved by podman,
//! imported into a store of every driver, and each layer written back as a tar with mtimes
//! (`diff --tar --no-reproducible`): the same entries with the same type, mode, owner,
//! mtime, device number, xattrs and content as the layer tar podman wrote. Skips visibly
//! without root or podman.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{podman_or_skip, tar_of, Lab};
use layerlab_testkit::{tar_entries, TarEntry};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

/// `setcap cap_net_raw+ep` (VFS_CAP_REVISION_2).
const CAP_NET_RAW: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Each entry of a layer tar by name (`./` and a trailing `/` cut, the root left out).
fn entries(tar_bytes: &[u8]) -> BTreeMap<String, TarEntry> {
    tar_entries(tar_bytes)
        .unwrap()
        .into_iter()
        .filter_map(|mut e| {
            e.name = e
                .name
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            (!e.name.is_empty()).then(|| (e.name.clone(), e))
        })
        .collect()
}

fn set_mtime(p: &Path, secs: i64, nsec: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nsec,
    };
    let ts = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &ts,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// A fifo or device node at `path`, its directory made first.
fn mknod(path: &Path, kind: rustix::fs::FileType, mode: u32, dev: rustix::fs::Dev) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    rustix::fs::mknodat(rustix::fs::CWD, path, kind, mode.into(), dev).unwrap();
}

/// The base image's root filesystem: busybox, a ping with file capabilities, a fifo, a
/// device node, mtimes with fractions.
fn rootfs(dir: &Path) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for c in ["sh", "mkfifo", "echo"] {
        std::os::unix::fs::symlink("busybox", bin.join(c)).unwrap();
    }
    fs::write(bin.join("ping"), b"\x7fELF not really ping").unwrap();
    rustix::fs::setxattr(
        bin.join("ping"),
        "security.capability",
        &CAP_NET_RAW,
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    mknod(
        &dir.join("run/initctl"),
        rustix::fs::FileType::Fifo,
        0o600,
        0,
    );
    mknod(
        &dir.join("dev/null"),
        rustix::fs::FileType::CharacterDevice,
        0o666,
        rustix::fs::makedev(1, 3),
    );
    set_mtime(&bin.join("ping"), 1_700_000_001, 500_000_000);
    set_mtime(&dir.join("run/initctl"), 1_700_000_002, 0);
    set_mtime(&dir.join("run"), 1_700_000_003, 0);
}

#[test]
fn a_podman_image_with_capabilities_fifos_and_mtimes_round_trips() {
    let Some((work, pm)) = podman_or_skip("podman attribute round trip") else {
        return;
    };
    let root = work.path().join("rootfs");
    rootfs(&root);
    let base_tar = work.path().join("base.tar");
    tar_of(&root, &base_tar, &["--xattrs", "--xattrs-include=*"]).unwrap();
    pm.cmd(&[
        "import",
        base_tar.to_str().unwrap(),
        "localhost/attrs/base:1",
    ])
    .unwrap();
    let ctx = work.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Containerfile"),
        "FROM localhost/attrs/base:1\nRUN mkfifo -m 0640 /run/app.fifo && echo hi > /run/app.txt\n",
    )
    .unwrap();
    pm.build(&ctx, "localhost/attrs/app:1").unwrap();
    let saved = work.path().join("img.tar");
    pm.cmd(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        "localhost/attrs/app:1",
    ])
    .unwrap();

    // podman's own layer tars, in the image's order
    let mut layers: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut manifest = Vec::new();
    let mut ar = tar::Archive::new(fs::File::open(&saved).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if name == "manifest.json" {
            manifest = data;
        } else {
            layers.insert(name, data);
        }
    }
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let order: Vec<String> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(order.len(), 2, "two layers: {manifest}");
    let podman: Vec<BTreeMap<String, TarEntry>> =
        order.iter().map(|l| entries(&layers[l])).collect();
    assert!(
        podman[0]["bin/ping"]
            .xattrs
            .contains_key("security.capability"),
        "podman kept the capability"
    );

    assert_eq!(
        podman[0]["run/initctl"].kind, b'6',
        "podman kept the fifo (type 6)"
    );
    assert_eq!(podman[0]["dev/null"].dev, (1, 3), "podman kept the device");
    assert_eq!(
        podman[0]["bin/ping"].mtime.0, 1_700_000_001,
        "podman kept the mtime"
    );
    assert!(
        podman[1].contains_key("run/app.fifo"),
        "the RUN layer: {:?}",
        podman[1].keys()
    );
    let mut checked = Vec::new();
    for info in layerlab_drivers::DRIVERS {
        if info.availability().is_err() {
            continue;
        }
        let lab = Lab::new(info.name);
        lab.ok(&["import", saved.to_str().unwrap(), "--name", "attrs"]);
        let images = lab.json(&["images", "--json"]);
        let chain: Vec<String> = images[0]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["chain_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(chain.len(), 2, "[{}] {images}", info.name);
        for (i, id) in chain.iter().enumerate() {
            let out = lab.tmp.path().join(format!("layer{i}.tar"));
            lab.ok(&[
                "diff",
                id,
                "--tar",
                out.to_str().unwrap(),
                "--no-reproducible",
            ]);
            let ours = entries(&fs::read(&out).unwrap());
            assert_eq!(
                ours, podman[i],
                "[{}] layer {i} came back changed",
                info.name
            );
        }
        checked.push(info.name);
    }
    println!(
        "podman layers {:?} came back the same from {checked:?}",
        podman
            .iter()
            .map(|l| l.keys().cloned().collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
}
