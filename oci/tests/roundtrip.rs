//! diff -> tar -> apply, on every registered driver: the reproducible tar is the same bytes
//! on every driver, and applying it onto the parent gives back the same view.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use layerlab_core::LayerDriver;
use layerlab_oci::{apply_archive, tar_in, write_diff, DiffOptions, Limits};
use std::collections::BTreeMap;

fn diff_bytes<D: LayerDriver + ?Sized>(
    d: &mut D,
    l: &layerlab_core::LayerId,
    gzip: bool,
) -> Vec<u8> {
    let opts = DiffOptions {
        reproducible: true,
        gzip,
    };
    let (bytes, summary) = write_diff(d, l, Vec::new(), &opts).unwrap();
    assert_eq!(summary.size, bytes.len() as u64);
    bytes
}

#[test]
fn reproducible_diff_has_the_same_digest_on_every_driver() {
    let mut digests = BTreeMap::new();
    for (_tmp, mut d) in stores() {
        let b = base(&mut d);
        let c = changed(&mut d, &b, "c");
        let bytes = diff_bytes(&mut d, &c, false);
        let again = diff_bytes(&mut d, &c, false);
        assert_eq!(bytes, again, "{}: two diffs differ", d.name());
        let gz = diff_bytes(&mut d, &c, true);
        digests.insert(
            d.name(),
            (
                layerlab_oci::digest::sha256(&bytes),
                layerlab_oci::digest::sha256(&gz),
            ),
        );
    }
    let first = digests.values().next().cloned().unwrap();
    for (name, dg) in &digests {
        assert_eq!(
            *dg, first,
            "driver {name} gives another digest: {digests:#?}"
        );
    }
    println!("reproducible diff digests: {digests:#?}");
}

#[test]
fn the_tar_follows_the_oci_rules() {
    let (_tmp, mut d) = stores().into_iter().next().unwrap();
    let b = base(&mut d);
    let c = changed(&mut d, &b, "c");
    let bytes = diff_bytes(&mut d, &c, false);
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut names = Vec::new();
    let mut links = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        assert_eq!(e.header().mtime().unwrap(), 0);
        if e.header().entry_type() == tar::EntryType::Link {
            links.insert(
                name.clone(),
                e.link_name().unwrap().unwrap().display().to_string(),
            );
        }
        names.push(name);
    }
    for want in [
        "etc/.wh.passwd",
        "usr/share/doc/.wh.a",
        "opt/x/",
        "opt/x/.wh..wh..opq",
        "opt/x/3",
        "usr/share/doc/b",
        "new-link",
        "shared/",
        "var/log/",
        // Docker's changesets: the directories where an entry was deleted are modified,
        // so their entries are in the tar (as in Docker's layer tars)
        "etc/",
        "usr/share/doc/",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "missing {want}: {names:#?}"
        );
    }
    assert!(
        !names.iter().any(|n| n == "opt/x/.wh.1"),
        "per-entry whiteouts in an opaque dir"
    );
    assert_eq!(
        links.get("hl/b").map(String::as_str),
        Some("hl/a"),
        "{links:?}"
    );
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| {
        n.trim_end_matches('/')
            .split('/')
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    assert_eq!(names, sorted);
}

#[test]
fn diff_then_apply_onto_the_parent_gives_the_same_view_on_every_driver() {
    for (_tmp, mut d) in stores() {
        let b = base(&mut d);
        let c = changed(&mut d, &b, "c");
        let want = view(&mut d, &c);
        for (i, (what, bytes)) in [
            ("plain", diff_bytes(&mut d, &c, false)),
            ("gzip", diff_bytes(&mut d, &c, true)),
            ("zstd", zstd(&diff_bytes(&mut d, &c, false))),
        ]
        .into_iter()
        .enumerate()
        {
            let target = id(&format!("applied-{i}"));
            d.create_layer(&target, Some(&b)).unwrap();
            let s = apply_archive(&mut d, &target, what, &bytes[..], &Limits::default())
                .unwrap_or_else(|e| panic!("{} {what}: {e}", d.name()));
            assert_eq!(s.compression, what);
            assert!(s.bytes > 0);
            let got = view(&mut d, &target);
            assert_eq!(got, want, "{} {what}: the applied view differs", d.name());
            // nlink of the hardlink pair survives
            assert_eq!(
                d.stat(&target, &p("/hl/b")).unwrap().nlink,
                2,
                "{}",
                d.name()
            );
            // and the changeset re-diffs to the same bytes
            let again = diff_bytes(&mut d, &target, false);
            assert_eq!(again, diff_bytes(&mut d, &c, false), "{} {what}", d.name());
        }
    }
}

#[test]
fn apply_follows_the_image_spec_rules() {
    for (_tmp, mut d) in stores() {
        let t = child_of_base(&mut d, "t");
        // the opaque marker comes after an entry of the same archive: that entry stays;
        // a whiteout never appears; a dir over a dir keeps its contents.
        let bytes = Raw::new()
            .file("opt/x/new", b"new")
            .file("opt/x/.wh..wh..opq", b"")
            .file("etc/.wh.hosts", b"")
            .file("etc/.wh.missing", b"")
            .dir("usr/")
            .file("keep", b"replaced")
            .file("a/b/c", b"implicit parents")
            .bytes();
        apply_archive(&mut d, &t, "rules", &bytes[..], &Limits::default()).unwrap();
        let v = view(&mut d, &t);
        assert!(v.contains_key("/opt/x/new"), "{}", d.name());
        assert!(!v.contains_key("/opt/x/1"), "{}", d.name());
        assert!(!v.contains_key("/etc/hosts"), "{}", d.name());
        assert!(!v.keys().any(|k| k.contains(".wh.")), "{}: {v:?}", d.name());
        assert!(v.contains_key("/usr/share/doc/a/README"), "{}", d.name());
        assert!(v.contains_key("/a/b/c"), "{}", d.name());
        assert_eq!(
            layerlab_core::ops::read_all(&mut d, &t, &p("/keep")).unwrap(),
            b"replaced"
        );
    }
}

#[test]
fn parse_reports_the_diff_id_of_the_uncompressed_stream() {
    let bytes = Raw::new().file("a", b"x").bytes();
    let want = layerlab_oci::digest::sha256(&bytes);
    for data in [bytes.clone(), gzip(&bytes), zstd(&bytes)] {
        let parsed = tar_in::parse("t", &data[..], &Limits::default()).unwrap();
        assert_eq!(parsed.diff_id, want);
        assert_eq!(parsed.tar_size, bytes.len() as u64);
    }
}
