//! A corpus of hostile archives, built here with raw headers, applied on every registered
//! driver: each is refused with an error naming the entry, and the layer's view is exactly
//! as it was (good entries before the bad one are not left applied).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use layerlab_core::LayerDriver;
use layerlab_oci::{apply_archive, Limits, OciError};
use tar::EntryType;

/// Good entries first, so that a half-applied archive would show.
fn prefix() -> Raw {
    Raw::new()
        .file("good.txt", b"should not stay")
        .file(".wh.keep", b"")
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    limits: Limits,
    /// Text the error must contain (the entry's name, or the limit).
    says: &'static str,
}

fn corpus() -> Vec<Case> {
    let small = Limits {
        max_size: 64 * 1024,
        max_entries: 1_000,
    };
    let few = Limits {
        max_size: 1 << 30,
        max_entries: 10,
    };
    let mut many = prefix();
    for i in 0..20 {
        many = many.file(&format!("f{i}"), b"x");
    }
    let bomb = gzip(&prefix().file("zeros", &vec![0u8; 4 << 20]).bytes());
    let case = |name, bytes, says| Case {
        name,
        bytes,
        limits: Limits::default(),
        says,
    };
    // a file entry whose name is what is wrong: the error names it
    let bad_file =
        |name, path: &'static str, data: &[u8]| case(name, prefix().file(path, data).bytes(), path);
    // a hard link `h` whose target is what is wrong: the error names the link
    let bad_link = |name, target| case(name, prefix().hardlink("h", target).bytes(), "h");
    let mut cases = vec![
        bad_file("dotdot", "../evil", b"x"),
        bad_file("dotdot-deep", "a/../../evil", b"x"),
        bad_file("dotdot-inside", "a/../b", b"x"),
        case(
            "symlink-then-write-through",
            prefix()
                .symlink("esc", "/etc")
                .file("esc/passwd", b"x")
                .bytes(),
            "esc/passwd",
        ),
        case(
            "relative-symlink-then-write-through",
            prefix()
                .symlink("up", "../../..")
                .file("up/tmp/x", b"x")
                .bytes(),
            "up/tmp/x",
        ),
        case(
            "symlink-then-dir-through",
            prefix().symlink("s", "/").dir("s/d/").bytes(),
            "s/d/",
        ),
        bad_file("lower-symlink-write-through", "lowlink/x", b"x"),
        bad_link("hardlink-outside", "../../etc/passwd"),
        bad_link("hardlink-absolute-missing", "/etc/shadow"),
        case(
            "hardlink-through-symlink",
            prefix()
                .symlink("s", "/etc")
                .hardlink("h", "s/hosts")
                .bytes(),
            "h",
        ),
        bad_link("hardlink-to-dir", "etc"),
        bad_file("bare-whiteout", "etc/.wh.", b""),
        bad_file("whiteout-dotdot", "../.wh.x", b""),
        bad_file("whiteout-through-symlink", "lowlink/.wh.x", b""),
        // device nodes and fifos are kept (as root), but a character device 0:0 is
        // overlay's whiteout marker and is refused on every driver
        case(
            "char-device-0-0",
            prefix().entry("dev/null", EntryType::Char, b"", "").bytes(),
            "overlay whiteout marker",
        ),
        bad_file("file-as-root", "./", b"x"),
        case(
            "through-a-file",
            prefix().file("keep2", b"").file("keep2/x", b"").bytes(),
            "keep2/x",
        ),
        Case {
            name: "too-large",
            bytes: prefix().file("big", &vec![1u8; 256 * 1024]).bytes(),
            limits: small,
            says: "--max-size",
        },
        Case {
            name: "gzip-bomb",
            bytes: bomb,
            limits: Limits {
                max_size: 1 << 20,
                max_entries: 1000,
            },
            says: "--max-size",
        },
        Case {
            name: "too-many-entries",
            bytes: many.bytes(),
            limits: few,
            says: "more than 10 entries",
        },
        case(
            "truncated",
            {
                let mut b = prefix().file("cut", &[5u8; 4000]).bytes();
                b.truncate(512 * 5);
                b
            },
            "cut",
        ),
    ];
    // a terminal escape in a name is shown escaped, never echoed
    cases.push(Case {
        name: "escape-in-name",
        bytes: prefix().file("a\u{1b}[2J\u{7}/../../evil", b"").bytes(),
        limits: Limits::default(),
        says: "a\\u{1b}[2J\\u{7}/../../evil",
    });
    // a whiteout of `.` or `..` names no entry; normalized, `a/.wh...` would be the root
    for dir in ["", "a/", "a/b/", "a/b/c/"] {
        for hidden in [".", ".."] {
            let entry: &'static str = Box::leak(format!("{dir}.wh.{hidden}").into_boxed_str());
            cases.push(Case {
                name: entry,
                bytes: prefix()
                    .dir("a")
                    .dir("a/b")
                    .dir("a/b/c")
                    .file(entry, b"")
                    .bytes(),
                limits: Limits::default(),
                says: entry,
            });
        }
    }
    cases
}

#[test]
fn hostile_archives_are_refused_and_change_nothing_on_every_driver() {
    let cases = corpus();
    for (_tmp, mut d) in stores() {
        let t = child_of_base(&mut d, "target");
        write(&mut d, &t, "/mine", b"the layer's own file");
        let before = view(&mut d, &t);
        for c in &cases {
            let err = apply_archive(&mut d, &t, c.name, &c.bytes[..], &c.limits)
                .err()
                .unwrap_or_else(|| panic!("{}: archive {} was accepted", d.name(), c.name));
            let msg = err.to_string();
            assert!(
                !msg.chars().any(char::is_control),
                "{}: archive {}: a control character in the message: {msg:?}",
                d.name(),
                c.name
            );
            assert!(
                msg.contains(c.says) && msg.contains(c.name),
                "{}: archive {}: the error does not name '{}': {msg}",
                d.name(),
                c.name,
                c.says
            );
            assert!(
                !matches!(err, OciError::Driver { .. }),
                "{}: {} reached the driver: {msg}",
                d.name(),
                c.name
            );
            let after = view(&mut d, &t);
            assert_eq!(
                after,
                before,
                "{}: archive {} changed the layer",
                d.name(),
                c.name
            );
        }
        println!(
            "{}: {} hostile archives refused, view unchanged",
            d.name(),
            cases.len()
        );
    }
}

#[test]
fn a_leading_slash_is_normalised_into_the_layer() {
    for (tmp, mut d) in stores() {
        let t = child_of_base(&mut d, "t");
        let bytes = Raw::new()
            .file("/abs/file", b"inside")
            .file("//etc/x", b"y")
            .bytes();
        apply_archive(&mut d, &t, "abs", &bytes[..], &Limits::default()).unwrap();
        assert_eq!(
            layerlab_core::ops::read_all(&mut d, &t, &p("/abs/file")).unwrap(),
            b"inside"
        );
        assert!(d.stat(&t, &p("/etc/x")).is_ok());
        assert!(!std::path::Path::new("/abs/file").exists());
        drop(tmp);
    }
}

#[test]
fn a_committed_layer_is_refused() {
    for (_tmp, mut d) in stores() {
        let b = base(&mut d);
        let bytes = Raw::new().file("x", b"x").bytes();
        let err = apply_archive(&mut d, &b, "ro", &bytes[..], &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
    }
}

/// A 20,000-entry archive (40 directories of 499 files) applies whole on every driver,
/// and reads back the same after the store is reopened.
#[test]
fn a_20000_entry_archive_applies_whole_and_survives_reopen() {
    let (dirs, per) = (40usize, 499usize);
    let mut raw = Raw::new();
    for d in 0..dirs {
        raw = raw.dir(&format!("d{d:02}/"));
        for f in 0..per {
            raw = raw.file(&format!("d{d:02}/f{f:03}"), format!("{d}/{f}").as_bytes());
        }
    }
    let bytes = raw.bytes();
    for (tmp, mut d) in stores() {
        let name = d.name();
        let t = id("t");
        d.create_layer(&t, None).unwrap();
        let s = apply_archive(&mut d, &t, "big", &bytes[..], &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.entries, 20_000, "{name}");
        drop(d);
        let root = tmp.path().join("store");
        let mut d = layerlab_drivers::registry::open(&root, layerlab_drivers::Access::Read)
            .unwrap_or_else(|e| panic!("{name}: reopen: {e}"));
        assert_eq!(d.readdir(&t, &p("/")).unwrap().len(), dirs, "{name}");
        for k in 0..dirs {
            let dir = p(&format!("/d{k:02}"));
            assert_eq!(d.readdir(&t, &dir).unwrap().len(), per, "{name} {dir}");
        }
        for (k, f) in [(0, 0), (17, 250), (39, 498)] {
            let got =
                layerlab_core::ops::read_all(&mut d, &t, &p(&format!("/d{k:02}/f{f:03}"))).unwrap();
            assert_eq!(got, format!("{k}/{f}").as_bytes(), "{name}");
        }
    }
}
