//! What real image layers carry survives layerlab on every driver: a layer tar with file
//! capabilities (`SCHILY.xattr.security.capability`), user xattrs, mtimes with nanoseconds,
//! a fifo and device nodes is applied, diffed back (mtimes kept), and has the same entries
//! with the same attributes; the reproducible tar of the result comes back byte for byte.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use layerlab_core::{FileKind, LayerDriver};
use layerlab_oci::{apply_archive, write_diff, DiffOptions, Limits};
use layerlab_testkit::{tar_entries, TarEntry};
use std::collections::BTreeMap;

/// `setcap cap_net_raw+ep` (VFS_CAP_REVISION_2).
const CAP_NET_RAW: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Each tar entry by name: type, mode, owner, mtime (secs, nsec), device, link, xattrs, data.
fn entries(bytes: &[u8]) -> BTreeMap<String, TarEntry> {
    tar_entries(bytes)
        .unwrap()
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect()
}

/// A layer tar as an image build writes one: PAX headers with xattrs and fractional
/// mtimes, a fifo, and (as root) a character and a block device.
fn image_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str,
                   kind: tar::EntryType,
                   mode: u32,
                   mtime: &str,
                   dev: (u32, u32),
                   xattrs: &[(&str, &[u8])],
                   data: &[u8]| {
        let mut pax: Vec<(String, Vec<u8>)> = vec![("mtime".into(), mtime.as_bytes().to_vec())];
        for (k, v) in xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v.to_vec()));
        }
        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime.split('.').next().unwrap().parse().unwrap());
        h.set_size(data.len() as u64);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(dev.0).unwrap();
            h.set_device_minor(dev.1).unwrap();
        }
        b.append_data(&mut h, name, data).unwrap();
    };
    add(
        "bin/",
        tar::EntryType::Directory,
        0o755,
        "1700000000.5",
        (0, 0),
        &[("user.dir", b"d")],
        b"",
    );
    add(
        "bin/ping",
        tar::EntryType::Regular,
        0o755,
        "1700000001.123456789",
        (0, 0),
        &[
            ("security.capability", &CAP_NET_RAW),
            ("user.origin", b"iputils"),
        ],
        b"\x7fELF ping",
    );
    add(
        "run/",
        tar::EntryType::Directory,
        0o755,
        "1700000002",
        (0, 0),
        &[],
        b"",
    );
    add(
        "run/initctl",
        tar::EntryType::Fifo,
        0o600,
        "1700000003.000000001",
        (0, 0),
        &[],
        b"",
    );
    if root() {
        add(
            "dev/",
            tar::EntryType::Directory,
            0o755,
            "1700000004",
            (0, 0),
            &[],
            b"",
        );
        add(
            "dev/null",
            tar::EntryType::Char,
            0o666,
            "1700000005",
            (1, 3),
            &[],
            b"",
        );
        add(
            "dev/loop0",
            tar::EntryType::Block,
            0o660,
            "1700000006",
            (7, 0),
            &[],
            b"",
        );
    }
    b.into_inner().unwrap()
}

#[test]
fn image_attributes_survive_apply_and_diff_on_every_driver() {
    let layer = image_layer();
    let want = entries(&layer);
    let mut reproducible = BTreeMap::new();
    for (_tmp, mut d) in stores() {
        let who = d.name();
        let l = id("img");
        d.create_layer(&l, None).unwrap();
        apply_archive(&mut d, &l, "image.tar", &layer[..], &Limits::default())
            .unwrap_or_else(|e| panic!("[{who}] apply: {e}"));
        let md = d.stat(&l, &p("/run/initctl")).unwrap();
        assert_eq!((md.kind, md.mode), (FileKind::Fifo, 0o600), "[{who}]");
        assert_eq!(
            d.get_xattr(&l, &p("/bin/ping"), "security.capability")
                .unwrap(),
            CAP_NET_RAW,
            "[{who}] file capability"
        );
        let md = d.stat(&l, &p("/bin/ping")).unwrap();
        assert_eq!(
            (md.mtime, md.mtime_nsec),
            (1_700_000_001, 123_456_789),
            "[{who}]"
        );
        // diffed back, keeping mtimes: the same entries with the same attributes
        let opts = DiffOptions {
            reproducible: false,
            gzip: false,
        };
        let (back, _) = write_diff(&mut d, &l, Vec::new(), &opts).unwrap();
        let got = entries(&back);
        assert_eq!(got, want, "[{who}] the layer came back changed");
        // the reproducible tar of the result is the same bytes on every driver
        let (bytes, _) = write_diff(&mut d, &l, Vec::new(), &DiffOptions::default()).unwrap();
        reproducible.insert(who, bytes);
    }
    let first = reproducible.values().next().cloned().unwrap();
    for (who, bytes) in &reproducible {
        assert!(*bytes == first, "[{who}] reproducible tar differs");
    }
}

#[test]
fn reproducible_tar_applied_comes_back_byte_for_byte() {
    for (_tmp, mut d) in stores() {
        let who = d.name();
        let (a, b) = (id("a"), id("b"));
        d.create_layer(&a, None).unwrap();
        apply_archive(
            &mut d,
            &a,
            "image.tar",
            &image_layer()[..],
            &Limits::default(),
        )
        .unwrap();
        let (first, _) = write_diff(&mut d, &a, Vec::new(), &DiffOptions::default()).unwrap();
        d.create_layer(&b, None).unwrap();
        apply_archive(&mut d, &b, "again.tar", &first[..], &Limits::default()).unwrap();
        let (second, _) = write_diff(&mut d, &b, Vec::new(), &DiffOptions::default()).unwrap();
        assert!(
            first == second,
            "[{who}] the reproducible tar did not come back byte for byte"
        );
    }
}

#[test]
fn archives_with_bad_attributes_are_refused_whole() {
    for (name, xattr) in [
        ("reserved", "trusted.overlay.opaque"),
        ("no namespace", "bogus"),
    ] {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([(format!("SCHILY.xattr.{xattr}").as_str(), &b"y"[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "d/", &b""[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        for (_tmp, mut d) in stores() {
            let l = id("l");
            d.create_layer(&l, None).unwrap();
            let e = apply_archive(&mut d, &l, "bad.tar", &bytes[..], &Limits::default())
                .err()
                .unwrap_or_else(|| panic!("[{}] {name}: accepted", d.name()));
            let text = e.to_string();
            assert!(
                text.contains("bad.tar") && text.contains("d/"),
                "[{}] {name}: {text}",
                d.name()
            );
            assert!(
                d.readdir(&l, &p("/")).unwrap().is_empty(),
                "[{}] {name}: changed the layer",
                d.name()
            );
        }
    }
}
