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
    let mut cases = vec![
        case("dotdot", prefix().file("../evil", b"x").bytes(), "../evil"),
        case(
            "dotdot-deep",
            prefix().file("a/../../evil", b"x").bytes(),
            "a/../../evil",
        ),
        case(
            "dotdot-inside",
            prefix().file("a/../b", b"x").bytes(),
            "a/../b",
        ),
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
        case(
            "lower-symlink-write-through",
            prefix().file("lowlink/x", b"x").bytes(),
            "lowlink/x",
        ),
        case(
            "hardlink-outside",
            prefix().hardlink("h", "../../etc/passwd").bytes(),
            "h",
        ),
        case(
            "hardlink-absolute-missing",
            prefix().hardlink("h", "/etc/shadow").bytes(),
            "h",
        ),
        case(
            "hardlink-through-symlink",
            prefix()
                .symlink("s", "/etc")
                .hardlink("h", "s/hosts")
                .bytes(),
            "h",
        ),
        case(
            "hardlink-to-dir",
            prefix().hardlink("h", "etc").bytes(),
            "h",
        ),
        case(
            "bare-whiteout",
            prefix().file("etc/.wh.", b"").bytes(),
            "etc/.wh.",
        ),
        case(
            "whiteout-dotdot",
            prefix().file("../.wh.x", b"").bytes(),
            "../.wh.x",
        ),
        case(
            "whiteout-through-symlink",
            prefix().file("lowlink/.wh.x", b"").bytes(),
            "lowlink/.wh.x",
        ),
        // device nodes and fifos are kept (as root), but a character device 0:0 is
        // overlay's whiteout marker and is refused on every driver
        case(
            "char-device-0-0",
            prefix().entry("dev/null", EntryType::Char, b"", "").bytes(),
            "overlay whiteout marker",
        ),
        case("file-as-root", prefix().file("./", b"x").bytes(), "./"),
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
