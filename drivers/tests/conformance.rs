//! The conformance suite: docs/DESIGN.md section 3 as executable scenarios.
//!
//! Every scenario is a plain function generic over `LayerDriver`; one `#[test]` per scenario
//! runs it on the reference model (plain semantics, and the semantics of every registered
//! driver) and on a fresh store of every driver in `layerlab_drivers::DRIVERS`, so a driver
//! added to the registry gets the whole suite with no extra wiring. A failure names every
//! target that failed.
//!
//! Store-level scenarios (reopen, lock) need a store directory and run on the drivers only.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    assert_views_eq, done, err_kind, fresh, id, must_changes, must_view, ok, p, refused,
    store_root, view_with, Capture,
};
use layerlab_core::{
    ops, Change, ChangeKind, DirEntry, Error, ErrorKind, FileKind, LayerDriver, LayerId, LayerPath,
    LayerState, LowerDirRename, Node, Provenance,
};
use layerlab_drivers::{registry, Access};

// ----- small helpers ------------------------------------------------------------------

fn write_file<D: LayerDriver>(d: &mut D, who: &str, l: &LayerId, path: &str, data: &[u8]) {
    ok(
        ops::write_file(d, l, &p(path), data, 0o644),
        who,
        format!("write_file {l} {path}"),
    );
}

fn mkdir<D: LayerDriver>(d: &mut D, who: &str, l: &LayerId, path: &str, mode: u32) {
    ok(d.mkdir(l, &p(path), mode), who, format!("mkdir {l} {path}"));
}

fn read<D: LayerDriver>(d: &mut D, who: &str, l: &LayerId, path: &str) -> Vec<u8> {
    ok(
        ops::read_all(d, l, &p(path)),
        who,
        format!("read {l} {path}"),
    )
}

fn names<D: LayerDriver>(d: &mut D, who: &str, l: &LayerId, path: &str) -> Vec<String> {
    ok(d.readdir(l, &p(path)), who, format!("readdir {l} {path}"))
        .into_iter()
        .map(|e| e.name)
        .collect()
}

fn absent<D: LayerDriver>(d: &mut D, who: &str, l: &LayerId, path: &str) {
    err_kind(
        d.stat(l, &p(path)),
        ErrorKind::NotFound,
        who,
        format!("stat {l} {path} (should be absent)"),
    );
}

fn commit<D: LayerDriver>(d: &mut D, who: &str, l: &LayerId) {
    ok(d.commit(l), who, format!("commit {l}"));
}

fn child<D: LayerDriver>(d: &mut D, who: &str, l: &LayerId, parent: &LayerId) {
    ok(
        d.create_layer(l, Some(parent)),
        who,
        format!("create_layer {l} on {parent}"),
    );
}

fn base<D: LayerDriver>(d: &mut D, who: &str, l: &LayerId) {
    ok(d.create_layer(l, None), who, format!("create_layer {l}"));
}

fn change(path: &str, kind: ChangeKind) -> Change {
    Change {
        path: p(path),
        kind,
    }
}

fn full() -> Capture {
    Capture {
        provider: true,
        nlink: true,
    }
}

/// An operation to try on the child and the base, for the failed-operation scenarios.
type Refusal<D> = fn(&mut D, &LayerId, &LayerId) -> layerlab_core::Result<()>;

/// Expected attributes: path, kind, mode, uid, gid, symlink target.
type Attrs<'a> = (&'a str, FileKind, u32, u32, u32, Option<&'a str>);

// ----- scenarios ----------------------------------------------------------------------

/// A file in a lower layer reads the same through a child and a grandchild.
fn lower_file_reads_through_descendants<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c, g) = (id("base"), id("child"), id("grandchild"));
    base(d, who, &b);
    mkdir(d, who, &b, "/etc", 0o755);
    write_file(d, who, &b, "/etc/motd", b"hello, layers");
    write_file(d, who, &b, "/top", b"t");
    commit(d, who, &b);
    child(d, who, &c, &b);
    commit(d, who, &c);
    child(d, who, &g, &c);
    for l in [&b, &c, &g] {
        assert_eq!(
            read(d, who, l, "/etc/motd"),
            b"hello, layers",
            "[{who}] {l}"
        );
        let md = ok(d.stat(l, &p("/etc/motd")), who, "stat motd");
        assert_eq!(md.kind, FileKind::File, "[{who}] {l}");
        assert_eq!(md.size, 13, "[{who}] {l}");
        assert_eq!(md.mode, 0o644, "[{who}] {l}");
        assert_eq!(
            ok(d.read(l, &p("/etc/motd"), 7, 3), who, "read range"),
            b"lay",
            "[{who}] {l}: partial read"
        );
        assert_eq!(
            ok(d.read(l, &p("/etc/motd"), 10, 100), who, "read to end"),
            b"ers",
            "[{who}] {l}: short read at the end"
        );
        assert!(
            ok(d.read(l, &p("/etc/motd"), 50, 4), who, "read past end").is_empty(),
            "[{who}] {l}: read past the end must be empty"
        );
        assert_eq!(names(d, who, l, "/"), ["etc", "top"], "[{who}] {l}");
        assert_eq!(
            ok(d.readdir(l, &p("/etc")), who, "readdir"),
            vec![DirEntry {
                name: "motd".into(),
                kind: FileKind::File
            }],
            "[{who}] {l}"
        );
    }
    let vb = must_view(d, who, &b);
    let vg = must_view(d, who, &g);
    assert_views_eq(&vb, &vg, "base", "grandchild", format!("[{who}]"));
}

/// Writes, appends and truncates of a lower file in a child: zero-filled gaps, the parent
/// untouched.
fn file_data_in_child<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c) = (id("base"), id("child"));
    base(d, who, &b);
    write_file(d, who, &b, "/f", b"abcdef");
    commit(d, who, &b);
    child(d, who, &c, &b);
    ok(d.write(&c, &p("/f"), 2, b"XY"), who, "write in middle");
    assert_eq!(read(d, who, &c, "/f"), b"abXYef", "[{who}]");
    ok(d.write(&c, &p("/f"), 8, b"Z"), who, "write past end");
    assert_eq!(
        read(d, who, &c, "/f"),
        b"abXYef\0\0Z",
        "[{who}] gap is zeros"
    );
    ok(d.append(&c, &p("/f"), b"++"), who, "append");
    assert_eq!(read(d, who, &c, "/f"), b"abXYef\0\0Z++", "[{who}]");
    ok(d.truncate(&c, &p("/f"), 3), who, "truncate shrink");
    assert_eq!(read(d, who, &c, "/f"), b"abX", "[{who}]");
    ok(d.truncate(&c, &p("/f"), 5), who, "truncate extend");
    assert_eq!(read(d, who, &c, "/f"), b"abX\0\0", "[{who}]");
    assert_eq!(ok(d.stat(&c, &p("/f")), who, "stat").size, 5, "[{who}]");
    ok(d.write(&c, &p("/f"), 0, b""), who, "empty write");
    assert_eq!(
        read(d, who, &c, "/f"),
        b"abX\0\0",
        "[{who}] empty write is no-op"
    );
    assert_eq!(
        read(d, who, &b, "/f"),
        b"abcdef",
        "[{who}] parent untouched"
    );
}

/// `replace` gives a file exactly the new bytes, longer or shorter, own or inherited, keeping
/// its mode, owner and extended attributes (and, within a layer, its hard links); the
/// parent is untouched. (The drivers that stage a file must give what the model's write
/// then cut gives.)
fn replace_keeps_attributes<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c) = (id("base"), id("child"));
    base(d, who, &b);
    write_file(d, who, &b, "/f", b"abcdef");
    ok(d.chown(&b, &p("/f"), 7, 8), who, "chown");
    ok(d.chmod(&b, &p("/f"), 0o4751), who, "chmod");
    ok(d.set_xattr(&b, &p("/f"), "user.k", b"v"), who, "setxattr");
    write_file(d, who, &b, "/g", b"own");
    commit(d, who, &b);
    child(d, who, &c, &b);
    ok(
        d.replace(&c, &p("/f"), b"XY"),
        who,
        "replace inherited, shorter",
    );
    assert_eq!(read(d, who, &c, "/f"), b"XY", "[{who}]");
    let md = ok(d.stat(&c, &p("/f")), who, "stat");
    assert_eq!(
        (md.mode, md.uid, md.gid),
        (0o4751, 7, 8),
        "[{who}] attributes kept"
    );
    assert_eq!(
        ok(d.get_xattr(&c, &p("/f"), "user.k"), who, "getxattr"),
        b"v",
        "[{who}] xattr kept"
    );
    ok(
        d.replace(&c, &p("/f"), b"a longer content"),
        who,
        "replace own, longer",
    );
    assert_eq!(read(d, who, &c, "/f"), b"a longer content", "[{who}]");
    ok(d.replace(&c, &p("/f"), b""), who, "replace with nothing");
    assert_eq!(read(d, who, &c, "/f"), b"", "[{who}]");
    assert_eq!(
        read(d, who, &b, "/f"),
        b"abcdef",
        "[{who}] parent untouched"
    );
    write_file(d, who, &c, "/h", b"linked");
    ok(d.hardlink(&c, &p("/h"), &p("/h2")), who, "hardlink");
    ok(
        d.replace(&c, &p("/h"), b"both names"),
        who,
        "replace a linked file",
    );
    assert_eq!(
        read(d, who, &c, "/h2"),
        b"both names",
        "[{who}] the other link"
    );
    err_kind(
        d.replace(&c, &p("/"), b"x"),
        ErrorKind::IsADirectory,
        who,
        "replace a directory",
    );
    err_kind(
        d.replace(&b, &p("/g"), b"x"),
        ErrorKind::ReadOnlyLayer,
        who,
        "replace in a committed layer",
    );
}

/// A write of no bytes changes nothing, even at an offset past the end (pwrite(2)).
fn empty_write_past_end_changes_nothing<D: LayerDriver>(d: &mut D, who: &str) {
    let b = id("base");
    base(d, who, &b);
    write_file(d, who, &b, "/f", b"ab");
    ok(
        d.write(&b, &p("/f"), 10, b""),
        who,
        "empty write past the end",
    );
    assert_eq!(
        read(d, who, &b, "/f"),
        b"ab",
        "[{who}] an empty write past the end must not extend the file"
    );
    assert_eq!(ok(d.stat(&b, &p("/f")), who, "stat").size, 2, "[{who}]");
}

/// A file deleted in a child stays deleted in every descendant and can be created again.
fn deleted_file_stays_deleted<D: LayerDriver>(d: &mut D, who: &str) {
    let ids: Vec<LayerId> = (0..5).map(|i| id(&format!("l{i}"))).collect();
    base(d, who, &ids[0]);
    mkdir(d, who, &ids[0], "/a", 0o755);
    write_file(d, who, &ids[0], "/a/f", b"old");
    write_file(d, who, &ids[0], "/a/g", b"keep");
    commit(d, who, &ids[0]);
    child(d, who, &ids[1], &ids[0]);
    ok(d.unlink(&ids[1], &p("/a/f")), who, "unlink lower file");
    absent(d, who, &ids[1], "/a/f");
    assert_eq!(names(d, who, &ids[1], "/a"), ["g"], "[{who}]");
    commit(d, who, &ids[1]);
    child(d, who, &ids[2], &ids[1]);
    commit(d, who, &ids[2]);
    child(d, who, &ids[3], &ids[2]);
    for l in &ids[1..4] {
        absent(d, who, l, "/a/f");
        assert_eq!(names(d, who, l, "/a"), ["g"], "[{who}] {l}");
    }
    ok(d.create(&ids[3], &p("/a/f"), 0o600), who, "create again");
    assert!(
        read(d, who, &ids[3], "/a/f").is_empty(),
        "[{who}] recreated file is empty"
    );
    assert_eq!(
        ok(d.stat(&ids[3], &p("/a/f")), who, "stat").mode,
        0o600,
        "[{who}]"
    );
    write_file(d, who, &ids[3], "/a/f", b"new");
    commit(d, who, &ids[3]);
    child(d, who, &ids[4], &ids[3]);
    assert_eq!(read(d, who, &ids[4], "/a/f"), b"new", "[{who}]");
    assert_eq!(names(d, who, &ids[4], "/a"), ["f", "g"], "[{who}]");
    assert_eq!(
        read(d, who, &ids[0], "/a/f"),
        b"old",
        "[{who}] base untouched"
    );
    absent(d, who, &ids[2], "/a/f");
}

/// A directory removed and made again in a child hides every lower entry of it.
fn recreated_dir_hides_lower_entries<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c, g) = (id("base"), id("child"), id("grandchild"));
    base(d, who, &b);
    mkdir(d, who, &b, "/d", 0o755);
    write_file(d, who, &b, "/d/x", b"x");
    write_file(d, who, &b, "/d/y", b"y");
    mkdir(d, who, &b, "/d/sub", 0o755);
    write_file(d, who, &b, "/d/sub/z", b"z");
    commit(d, who, &b);
    child(d, who, &c, &b);
    ok(ops::remove_all(d, &c, &p("/d")), who, "rm -r /d");
    absent(d, who, &c, "/d");
    mkdir(d, who, &c, "/d", 0o750);
    assert!(
        names(d, who, &c, "/d").is_empty(),
        "[{who}] recreated dir is empty"
    );
    write_file(d, who, &c, "/d/new", b"n");
    for path in ["/d/x", "/d/y", "/d/sub", "/d/sub/z"] {
        absent(d, who, &c, path);
    }
    assert_eq!(names(d, who, &c, "/d"), ["new"], "[{who}]");
    assert_eq!(ok(d.stat(&c, &p("/d")), who, "stat").mode, 0o750, "[{who}]");
    commit(d, who, &c);
    child(d, who, &g, &c);
    assert_eq!(names(d, who, &g, "/d"), ["new"], "[{who}]");
    for path in ["/d/x", "/d/sub/z"] {
        absent(d, who, &g, path);
    }
    // creating a name the lower layer had gives a new, empty entry
    mkdir(d, who, &g, "/d/sub", 0o755);
    assert!(names(d, who, &g, "/d/sub").is_empty(), "[{who}]");
    assert_eq!(
        names(d, who, &b, "/d"),
        ["sub", "x", "y"],
        "[{who}] base untouched"
    );
    assert_eq!(names(d, who, &b, "/d/sub"), ["z"], "[{who}] base untouched");
}

/// Modes (setuid, setgid, sticky), owners and symlink targets survive into descendants.
fn attributes_survive<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c, g) = (id("base"), id("child"), id("grandchild"));
    base(d, who, &b);
    ok(d.create(&b, &p("/suid"), 0o4755), who, "create suid");
    mkdir(d, who, &b, "/sgid", 0o2755);
    mkdir(d, who, &b, "/tmp", 0o1777);
    ok(d.create(&b, &p("/all"), 0o7777), who, "create 7777");
    ok(d.create(&b, &p("/none"), 0), who, "create 0000");
    ok(d.create(&b, &p("/owned"), 0o640), who, "create owned");
    ok(d.chown(&b, &p("/owned"), 1000, 1000), who, "chown owned");
    mkdir(d, who, &b, "/home", 0o700);
    ok(d.chown(&b, &p("/home"), 1000, 100), who, "chown home");
    ok(d.symlink(&b, "../target/x", &p("/link")), who, "symlink");
    ok(
        d.symlink(&b, "/abs/elsewhere", &p("/home/abs")),
        who,
        "symlink",
    );
    ok(
        d.chown(&b, &p("/home/abs"), 1001, 1002),
        who,
        "chown symlink",
    );
    // chown keeps setuid/setgid in layerlab (Linux would clear them)
    ok(d.create(&b, &p("/suid2"), 0o6755), who, "create suid2");
    ok(d.chown(&b, &p("/suid2"), 5, 6), who, "chown suid2");
    commit(d, who, &b);
    child(d, who, &c, &b);
    commit(d, who, &c);
    child(d, who, &g, &c);
    let expect: &[Attrs] = &[
        ("/suid", FileKind::File, 0o4755, 0, 0, None),
        ("/sgid", FileKind::Dir, 0o2755, 0, 0, None),
        ("/tmp", FileKind::Dir, 0o1777, 0, 0, None),
        ("/all", FileKind::File, 0o7777, 0, 0, None),
        ("/none", FileKind::File, 0, 0, 0, None),
        ("/owned", FileKind::File, 0o640, 1000, 1000, None),
        ("/home", FileKind::Dir, 0o700, 1000, 100, None),
        ("/link", FileKind::Symlink, 0o777, 0, 0, Some("../target/x")),
        (
            "/home/abs",
            FileKind::Symlink,
            0o777,
            1001,
            1002,
            Some("/abs/elsewhere"),
        ),
        ("/suid2", FileKind::File, 0o6755, 5, 6, None),
    ];
    for l in [&b, &c, &g] {
        for (path, kind, mode, uid, gid, target) in expect {
            let md = ok(d.stat(l, &p(path)), who, format!("stat {l} {path}"));
            assert_eq!(md.kind, *kind, "[{who}] {l} {path} kind");
            assert_eq!(md.mode, *mode, "[{who}] {l} {path} mode {:o}", md.mode);
            assert_eq!((md.uid, md.gid), (*uid, *gid), "[{who}] {l} {path} owner");
            assert_eq!(md.target.as_deref(), *target, "[{who}] {l} {path} target");
            if let Some(t) = target {
                assert_eq!(md.size, t.len() as u64, "[{who}] {l} {path} symlink size");
            }
        }
    }
    // symlinks are never read or followed as files
    err_kind(
        d.read(&g, &p("/link"), 0, 10),
        ErrorKind::InvalidArgument,
        who,
        "read symlink",
    );
    // changing attributes in the grandchild leaves the lower layers alone
    ok(d.chmod(&g, &p("/suid"), 0o2711), who, "chmod lower file");
    ok(
        d.chown(&g, &p("/owned"), 2000, 3000),
        who,
        "chown lower file",
    );
    ok(d.chmod(&g, &p("/tmp"), 0o755), who, "chmod lower dir");
    let md = ok(d.stat(&g, &p("/suid")), who, "stat");
    assert_eq!(md.mode, 0o2711, "[{who}]");
    let md = ok(d.stat(&g, &p("/owned")), who, "stat");
    assert_eq!((md.uid, md.gid, md.mode), (2000, 3000, 0o640), "[{who}]");
    assert_eq!(
        ok(d.stat(&g, &p("/tmp")), who, "stat").mode,
        0o755,
        "[{who}]"
    );
    assert_eq!(
        ok(d.stat(&c, &p("/suid")), who, "stat").mode,
        0o4755,
        "[{who}]"
    );
    let md = ok(d.stat(&c, &p("/owned")), who, "stat");
    assert_eq!((md.uid, md.gid), (1000, 1000), "[{who}]");
    assert_eq!(
        ok(d.stat(&c, &p("/tmp")), who, "stat").mode,
        0o1777,
        "[{who}]"
    );
}

/// New entries are owned by 0:0 with exactly the mode asked for, even inside a setgid
/// directory owned by another group (the host would hand down the group and the setgid bit).
fn new_entries_owned_by_root<D: LayerDriver>(d: &mut D, who: &str) {
    let b = id("base");
    base(d, who, &b);
    mkdir(d, who, &b, "/shared", 0o2775);
    ok(d.chown(&b, &p("/shared"), 0, 50), who, "chown dir");
    ok(d.create(&b, &p("/shared/f"), 0o644), who, "create");
    mkdir(d, who, &b, "/shared/sub", 0o755);
    ok(d.symlink(&b, "f", &p("/shared/l")), who, "symlink");
    for (path, mode) in [
        ("/shared/f", 0o644),
        ("/shared/sub", 0o755),
        ("/shared/l", 0o777),
    ] {
        let md = ok(d.stat(&b, &p(path)), who, format!("stat {path}"));
        assert_eq!(
            (md.uid, md.gid, md.mode),
            (0, 0, mode),
            "[{who}] {path}: new entries are 0:0 with exactly their mode (got {}:{} {:o})",
            md.uid,
            md.gid,
            md.mode
        );
    }
}

/// rename(2) of a file over another, within a layer and over lower files.
fn rename_file_over_file<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c) = (id("base"), id("child"));
    base(d, who, &b);
    write_file(d, who, &b, "/a", b"A");
    write_file(d, who, &b, "/b", b"BB");
    ok(d.chmod(&b, &p("/a"), 0o600), who, "chmod");
    ok(d.rename(&b, &p("/a"), &p("/b")), who, "rename a over b");
    absent(d, who, &b, "/a");
    assert_eq!(read(d, who, &b, "/b"), b"A", "[{who}]");
    assert_eq!(ok(d.stat(&b, &p("/b")), who, "stat").mode, 0o600, "[{who}]");
    write_file(d, who, &b, "/x", b"X");
    write_file(d, who, &b, "/y", b"YYY");
    ok(d.symlink(&b, "somewhere", &p("/s")), who, "symlink");
    commit(d, who, &b);
    child(d, who, &c, &b);
    ok(
        d.rename(&c, &p("/x"), &p("/y")),
        who,
        "rename lower x over lower y",
    );
    absent(d, who, &c, "/x");
    assert_eq!(read(d, who, &c, "/y"), b"X", "[{who}]");
    ok(
        d.rename(&c, &p("/y"), &p("/s")),
        who,
        "rename file over symlink",
    );
    absent(d, who, &c, "/y");
    assert_eq!(read(d, who, &c, "/s"), b"X", "[{who}]");
    ok(d.rename(&c, &p("/b"), &p("/b")), who, "rename onto itself");
    assert_eq!(
        read(d, who, &c, "/b"),
        b"A",
        "[{who}] rename onto itself is a no-op"
    );
    assert_eq!(names(d, who, &c, "/"), ["b", "s"], "[{who}]");
    assert_eq!(
        names(d, who, &b, "/"),
        ["b", "s", "x", "y"],
        "[{who}] base untouched"
    );
    assert_eq!(read(d, who, &b, "/y"), b"YYY", "[{who}] base untouched");
}

/// Renaming a file from a lower layer: old name gone, new name present, lower unchanged.
fn rename_lower_file<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c, g) = (id("base"), id("child"), id("grandchild"));
    base(d, who, &b);
    mkdir(d, who, &b, "/dir", 0o755);
    mkdir(d, who, &b, "/other", 0o755);
    write_file(d, who, &b, "/dir/f", b"data");
    ok(d.chmod(&b, &p("/dir/f"), 0o4750), who, "chmod");
    ok(d.chown(&b, &p("/dir/f"), 7, 8), who, "chown");
    ok(d.symlink(&b, "dir/f", &p("/ln")), who, "symlink");
    commit(d, who, &b);
    let before = must_view(d, who, &b);
    child(d, who, &c, &b);
    ok(
        d.rename(&c, &p("/dir/f"), &p("/dir/g")),
        who,
        "rename in dir",
    );
    ok(
        d.rename(&c, &p("/ln"), &p("/other/ln2")),
        who,
        "rename symlink",
    );
    absent(d, who, &c, "/dir/f");
    absent(d, who, &c, "/ln");
    assert_eq!(read(d, who, &c, "/dir/g"), b"data", "[{who}]");
    let md = ok(d.stat(&c, &p("/dir/g")), who, "stat");
    assert_eq!(
        (md.mode, md.uid, md.gid),
        (0o4750, 7, 8),
        "[{who}] attributes travel"
    );
    let md = ok(d.stat(&c, &p("/other/ln2")), who, "stat");
    assert_eq!(md.target.as_deref(), Some("dir/f"), "[{who}]");
    commit(d, who, &c);
    child(d, who, &g, &c);
    ok(
        d.rename(&g, &p("/dir/g"), &p("/other/h")),
        who,
        "rename across dirs",
    );
    assert!(names(d, who, &g, "/dir").is_empty(), "[{who}]");
    assert_eq!(names(d, who, &g, "/other"), ["h", "ln2"], "[{who}]");
    assert_eq!(read(d, who, &g, "/other/h"), b"data", "[{who}]");
    assert_eq!(
        read(d, who, &c, "/dir/g"),
        b"data",
        "[{who}] child untouched"
    );
    let after = must_view(d, who, &b);
    assert_views_eq(&before, &after, "before", "after", format!("[{who}] base"));
}

/// Renaming a directory from a lower layer moves it where `lower_dir_rename` is Moves and
/// fails with CrossDevice, changing nothing, where it is CrossDevice. A directory made in
/// the layer itself always moves.
fn rename_lower_dir<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c) = (id("base"), id("child"));
    base(d, who, &b);
    mkdir(d, who, &b, "/src", 0o755);
    write_file(d, who, &b, "/src/a", b"1");
    mkdir(d, who, &b, "/src/sub", 0o711);
    write_file(d, who, &b, "/src/sub/b", b"2");
    mkdir(d, who, &b, "/empty", 0o755);
    commit(d, who, &b);
    let base_view = must_view(d, who, &b);
    child(d, who, &c, &b);
    let before = must_view(d, who, &c);
    let r = d.rename(&c, &p("/src"), &p("/dst"));
    match d.semantics().lower_dir_rename {
        LowerDirRename::Moves => {
            ok(r, who, "rename lower dir");
            absent(d, who, &c, "/src");
            assert_eq!(names(d, who, &c, "/dst"), ["a", "sub"], "[{who}]");
            assert_eq!(read(d, who, &c, "/dst/sub/b"), b"2", "[{who}]");
            assert_eq!(
                ok(d.stat(&c, &p("/dst/sub")), who, "stat").mode,
                0o711,
                "[{who}]"
            );
            ok(
                d.rename(&c, &p("/dst"), &p("/empty")),
                who,
                "dir over empty lower dir",
            );
            absent(d, who, &c, "/dst");
            assert_eq!(read(d, who, &c, "/empty/a"), b"1", "[{who}]");
        }
        LowerDirRename::CrossDevice => {
            err_kind(r, ErrorKind::CrossDevice, who, "rename lower dir");
            let after = must_view(d, who, &c);
            assert_views_eq(&before, &after, "before", "after", format!("[{who}] EXDEV"));
            err_kind(
                d.rename(&c, &p("/empty"), &p("/empty2")),
                ErrorKind::CrossDevice,
                who,
                "rename empty lower dir",
            );
        }
        LowerDirRename::CrossDeviceUnlessEmpty => {
            err_kind(r, ErrorKind::CrossDevice, who, "rename lower dir");
            let after = must_view(d, who, &c);
            assert_views_eq(&before, &after, "before", "after", format!("[{who}] EXDEV"));
            ok(
                d.rename(&c, &p("/empty"), &p("/empty2")),
                who,
                "rename empty lower dir",
            );
            absent(d, who, &c, "/empty");
            assert!(names(d, who, &c, "/empty2").is_empty(), "[{who}]");
        }
    }
    // a directory made in this layer moves on every driver
    mkdir(d, who, &c, "/mine", 0o755);
    write_file(d, who, &c, "/mine/f", b"m");
    ok(
        d.rename(&c, &p("/mine"), &p("/moved")),
        who,
        "rename own dir",
    );
    absent(d, who, &c, "/mine");
    assert_eq!(read(d, who, &c, "/moved/f"), b"m", "[{who}]");
    let after = must_view(d, who, &b);
    assert_views_eq(
        &base_view,
        &after,
        "before",
        "after",
        format!("[{who}] base"),
    );
}

/// Hard links within a layer: one inode, two names.
fn hardlinks_within_layer<D: LayerDriver>(d: &mut D, who: &str) {
    let b = id("base");
    base(d, who, &b);
    mkdir(d, who, &b, "/d", 0o755);
    write_file(d, who, &b, "/f", b"one");
    ok(d.hardlink(&b, &p("/f"), &p("/d/g")), who, "hardlink");
    for path in ["/f", "/d/g"] {
        assert_eq!(
            ok(d.stat(&b, &p(path)), who, "stat").nlink,
            2,
            "[{who}] {path}"
        );
    }
    ok(d.write(&b, &p("/d/g"), 0, b"TWO!"), who, "write via link");
    assert_eq!(
        read(d, who, &b, "/f"),
        b"TWO!",
        "[{who}] write seen via other name"
    );
    ok(d.append(&b, &p("/f"), b"+"), who, "append");
    assert_eq!(read(d, who, &b, "/d/g"), b"TWO!+", "[{who}]");
    ok(d.chmod(&b, &p("/f"), 0o4700), who, "chmod");
    ok(d.chown(&b, &p("/d/g"), 3, 4), who, "chown");
    for path in ["/f", "/d/g"] {
        let md = ok(d.stat(&b, &p(path)), who, "stat");
        assert_eq!(
            (md.mode, md.uid, md.gid, md.size),
            (0o4700, 3, 4, 5),
            "[{who}] {path}: one inode"
        );
    }
    ok(d.symlink(&b, "f", &p("/s")), who, "symlink");
    refused(
        d,
        who,
        &b,
        &[
            (ErrorKind::NotFound, "hardlink missing", |d, l| {
                d.hardlink(l, &p("/missing"), &p("/x"))
            }),
            (ErrorKind::IsADirectory, "hardlink dir", |d, l| {
                d.hardlink(l, &p("/d"), &p("/x"))
            }),
            (ErrorKind::InvalidArgument, "hardlink symlink", |d, l| {
                d.hardlink(l, &p("/s"), &p("/x"))
            }),
            (ErrorKind::AlreadyExists, "hardlink over", |d, l| {
                d.hardlink(l, &p("/f"), &p("/d/g"))
            }),
        ],
    );
    ok(d.unlink(&b, &p("/d/g")), who, "unlink one name");
    assert_eq!(ok(d.stat(&b, &p("/f")), who, "stat").nlink, 1, "[{who}]");
    assert_eq!(read(d, who, &b, "/f"), b"TWO!+", "[{who}]");
}

/// POSIX rename(2): when both names are links to the same file, rename does nothing.
fn rename_hardlink_onto_its_other_name<D: LayerDriver>(d: &mut D, who: &str) {
    let b = id("base");
    base(d, who, &b);
    write_file(d, who, &b, "/f", b"x");
    ok(d.hardlink(&b, &p("/f"), &p("/g")), who, "hardlink");
    ok(
        d.rename(&b, &p("/f"), &p("/g")),
        who,
        "rename f onto g (same inode)",
    );
    assert_eq!(
        names(d, who, &b, "/"),
        ["f", "g"],
        "[{who}] rename(2) of a link onto another link of the same file does nothing"
    );
    assert_eq!(ok(d.stat(&b, &p("/g")), who, "stat").nlink, 2, "[{who}]");
}

/// Every change to a committed layer fails with ReadOnlyLayer, before anything else is
/// checked, and changes nothing.
fn committed_layer_is_read_only<D: LayerDriver>(d: &mut D, who: &str) {
    let b = id("base");
    base(d, who, &b);
    mkdir(d, who, &b, "/d", 0o755);
    write_file(d, who, &b, "/f", b"f");
    ok(d.symlink(&b, "f", &p("/s")), who, "symlink");
    commit(d, who, &b);
    commit(d, who, &b); // committing twice is a no-op
    assert_eq!(ok(d.layer(&b), who, "layer").state, LayerState::Committed);
    let before = view_with(d, &b, full());
    let ro = ErrorKind::ReadOnlyLayer;
    let f = p("/f");
    let m = p("/missing/x");
    err_kind(d.create(&b, &p("/new"), 0o644), ro, who, "create");
    err_kind(d.create(&b, &f, 0o644), ro, who, "create existing");
    err_kind(d.write(&b, &f, 0, b"x"), ro, who, "write");
    err_kind(d.write(&b, &m, 0, b"x"), ro, who, "write missing");
    err_kind(d.append(&b, &f, b"x"), ro, who, "append");
    err_kind(d.truncate(&b, &f, 0), ro, who, "truncate");
    err_kind(d.mkdir(&b, &p("/e"), 0o755), ro, who, "mkdir");
    err_kind(d.symlink(&b, "t", &p("/s2")), ro, who, "symlink");
    err_kind(
        d.symlink(&b, "", &p("/s2")),
        ro,
        who,
        "symlink empty target",
    );
    err_kind(d.hardlink(&b, &f, &p("/h")), ro, who, "hardlink");
    err_kind(d.unlink(&b, &f), ro, who, "unlink");
    err_kind(d.unlink(&b, &m), ro, who, "unlink missing");
    err_kind(d.rmdir(&b, &p("/d")), ro, who, "rmdir");
    err_kind(d.rename(&b, &f, &p("/g")), ro, who, "rename");
    err_kind(
        d.rename(&b, &p("/d"), &p("/d/x")),
        ro,
        who,
        "rename into itself",
    );
    err_kind(d.chmod(&b, &f, 0o600), ro, who, "chmod");
    err_kind(d.chmod(&b, &p("/s"), 0o600), ro, who, "chmod symlink");
    err_kind(d.chown(&b, &f, 1, 1), ro, who, "chown");
    err_kind(
        ops::write_file(d, &b, &f, b"x", 0o644),
        ro,
        who,
        "write_file",
    );
    err_kind(ops::remove_all(d, &b, &p("/d")), ro, who, "rm -r");
    let after = view_with(d, &b, full());
    assert_eq!(before.is_ok(), after.is_ok(), "[{who}]");
    if let (Ok(x), Ok(y)) = (before, after) {
        assert_views_eq(
            &x,
            &y,
            "before",
            "after",
            format!("[{who}] committed layer"),
        );
    }
    // reads still work
    assert_eq!(read(d, who, &b, "/f"), b"f", "[{who}]");
}

/// Layer lifecycle: only committed layers have children; ids are unique; parents exist;
/// layer facts (parent, depth, state).
fn layer_lifecycle_rules<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c, x) = (id("base"), id("child"), id("x"));
    base(d, who, &b);
    err_kind(
        d.create_layer(&c, Some(&b)),
        ErrorKind::ParentNotCommitted,
        who,
        "child of active layer",
    );
    assert!(!d.exists(&c), "[{who}] failed create_layer left a layer");
    err_kind(
        d.create_layer(&c, Some(&id("nope"))),
        ErrorKind::NoSuchLayer,
        who,
        "child of missing layer",
    );
    err_kind(
        d.create_layer(&b, None),
        ErrorKind::LayerExists,
        who,
        "duplicate id",
    );
    err_kind(
        d.stat(&id("nope"), &p("/")),
        ErrorKind::NoSuchLayer,
        who,
        "stat missing layer",
    );
    err_kind(
        d.commit(&id("nope")),
        ErrorKind::NoSuchLayer,
        who,
        "commit missing layer",
    );
    err_kind(
        d.changes(&id("nope")),
        ErrorKind::NoSuchLayer,
        who,
        "changes of missing layer",
    );
    commit(d, who, &b);
    child(d, who, &c, &b);
    err_kind(
        d.create_layer(&c, Some(&b)),
        ErrorKind::LayerExists,
        who,
        "duplicate child",
    );
    child(d, who, &id("sibling"), &b);
    let infos = ok(d.layers(), who, "layers");
    let got: Vec<(String, Option<String>, LayerState, usize)> = infos
        .iter()
        .map(|i| {
            (
                i.id.to_string(),
                i.parent.as_ref().map(|p| p.to_string()),
                i.state,
                i.depth,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("base".into(), None, LayerState::Committed, 1),
            ("child".into(), Some("base".into()), LayerState::Active, 2),
            ("sibling".into(), Some("base".into()), LayerState::Active, 2),
        ],
        "[{who}] layers(), sorted by id"
    );
    // the root of a new base layer
    base(d, who, &x);
    let md = ok(d.stat(&x, &p("/")), who, "stat /");
    assert_eq!(
        (md.kind, md.mode, md.uid, md.gid),
        (FileKind::Dir, 0o755, 0, 0),
        "[{who}] new root"
    );
    assert!(names(d, who, &x, "/").is_empty(), "[{who}]");
}

/// A layer with children cannot be removed; leaves can, and their parents stay intact.
fn remove_layer_with_children<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c) = (id("base"), id("child"));
    base(d, who, &b);
    write_file(d, who, &b, "/f", b"base");
    commit(d, who, &b);
    child(d, who, &c, &b);
    write_file(d, who, &c, "/f", b"child");
    let vb = must_view(d, who, &b);
    let vc = must_view(d, who, &c);
    err_kind(
        d.remove_layer(&b),
        ErrorKind::HasChildren,
        who,
        "remove parent",
    );
    assert!(d.exists(&b), "[{who}]");
    assert_views_eq(
        &vb,
        &must_view(d, who, &b),
        "before",
        "after",
        format!("[{who}] base"),
    );
    assert_views_eq(
        &vc,
        &must_view(d, who, &c),
        "before",
        "after",
        format!("[{who}] child"),
    );
    ok(d.remove_layer(&c), who, "remove child");
    assert!(!d.exists(&c), "[{who}]");
    err_kind(
        d.stat(&c, &p("/f")),
        ErrorKind::NoSuchLayer,
        who,
        "stat removed",
    );
    assert_views_eq(
        &vb,
        &must_view(d, who, &b),
        "before",
        "after",
        format!("[{who}] base"),
    );
    ok(d.remove_layer(&b), who, "remove base");
    assert!(!d.exists(&b), "[{who}]");
    err_kind(
        d.remove_layer(&b),
        ErrorKind::NoSuchLayer,
        who,
        "remove twice",
    );
    assert!(ok(d.layers(), who, "layers").is_empty(), "[{who}]");
}

/// How many layers the deep-chain scenarios stack.
fn chain_depth<D: LayerDriver>(d: &D) -> usize {
    d.semantics().max_depth.map_or(128, |m| m.min(128))
}

/// Builds a chain `c0..c{n-1}`, each adding `/files/f{i}` and overwriting `/shared`; all but
/// the top committed. Returns the ids.
fn build_chain<D: LayerDriver>(d: &mut D, who: &str, n: usize) -> Vec<LayerId> {
    let ids: Vec<LayerId> = (0..n).map(|i| id(&format!("c{i:03}"))).collect();
    for (i, l) in ids.iter().enumerate() {
        if i == 0 {
            base(d, who, l);
            mkdir(d, who, l, "/files", 0o755);
        } else {
            commit(d, who, &ids[i - 1]);
            child(d, who, l, &ids[i - 1]);
        }
        write_file(
            d,
            who,
            l,
            &format!("/files/f{i:03}"),
            format!("file {i}").as_bytes(),
        );
        write_file(d, who, l, "/shared", format!("version {i}").as_bytes());
    }
    ids
}

/// A chain of min(128, max_depth) layers shows every file and the top version of the shared
/// file; one layer beyond max_depth fails with TooManyLayers.
fn deep_chain<D: LayerDriver>(d: &mut D, who: &str) {
    let n = chain_depth(d);
    let ids = build_chain(d, who, n);
    let top = &ids[n - 1];
    let listing = names(d, who, top, "/files");
    assert_eq!(listing.len(), n, "[{who}] all files visible at depth {n}");
    for i in [0, 1, n / 2, n - 1] {
        assert_eq!(
            read(d, who, top, &format!("/files/f{i:03}")),
            format!("file {i}").as_bytes(),
            "[{who}] file {i} through {n} layers"
        );
    }
    assert_eq!(
        read(d, who, top, "/shared"),
        format!("version {}", n - 1).as_bytes(),
        "[{who}] top version wins"
    );
    assert_eq!(read(d, who, &ids[0], "/shared"), b"version 0", "[{who}]");
    assert_eq!(
        read(d, who, &ids[n / 2], "/shared"),
        format!("version {}", n / 2).as_bytes(),
        "[{who}]"
    );
    assert_eq!(ok(d.layer(top), who, "layer").depth, n, "[{who}]");
    if let Some(max) = d.semantics().max_depth {
        // extend the chain (without files) to the limit, then one more
        let mut last = top.clone();
        for i in n..max {
            let l = id(&format!("x{i:04}"));
            commit(d, who, &last);
            child(d, who, &l, &last);
            last = l;
        }
        commit(d, who, &last);
        let over = id("over");
        err_kind(
            d.create_layer(&over, Some(&last)),
            ErrorKind::TooManyLayers,
            who,
            format!("layer {} of a driver limited to {max}", max + 1),
        );
        assert!(!d.exists(&over), "[{who}] refused layer must not exist");
    }
}

/// The changeset lists exactly what a layer added, modified and deleted.
fn changeset_is_exact<D: LayerDriver>(d: &mut D, who: &str) {
    use ChangeKind::{Added, Deleted, Modified};
    let (b, c, g) = (id("base"), id("child"), id("grandchild"));
    base(d, who, &b);
    mkdir(d, who, &b, "/etc", 0o755);
    write_file(d, who, &b, "/etc/passwd", b"root");
    write_file(d, who, &b, "/etc/hosts", b"localhost");
    mkdir(d, who, &b, "/var", 0o755);
    mkdir(d, who, &b, "/var/log", 0o755);
    write_file(d, who, &b, "/var/log/a", b"a");
    ok(d.symlink(&b, "etc", &p("/lnk")), who, "symlink");
    write_file(d, who, &b, "/keep", b"k");
    write_file(d, who, &b, "/same", b"s");
    write_file(d, who, &b, "/owner", b"o");
    mkdir(d, who, &b, "/opq", 0o755);
    write_file(d, who, &b, "/opq/x", b"x");
    let mut expect = vec![
        change("/etc", Added),
        change("/etc/passwd", Added),
        change("/etc/hosts", Added),
        change("/var", Added),
        change("/var/log", Added),
        change("/var/log/a", Added),
        change("/lnk", Added),
        change("/keep", Added),
        change("/same", Added),
        change("/owner", Added),
        change("/opq", Added),
        change("/opq/x", Added),
    ];
    expect.sort();
    assert_eq!(must_changes(d, who, &b), expect, "[{who}] base changeset");
    commit(d, who, &b);
    child(d, who, &c, &b);
    assert!(
        must_changes(d, who, &c).is_empty(),
        "[{who}] fresh child has no changes"
    );
    write_file(d, who, &c, "/etc/passwd", b"root2");
    ok(d.unlink(&c, &p("/etc/hosts")), who, "unlink");
    ok(d.create(&c, &p("/etc/new"), 0o644), who, "create");
    ok(d.chmod(&c, &p("/keep"), 0o600), who, "chmod");
    ok(d.chown(&c, &p("/owner"), 0, 1), who, "chown");
    ok(ops::remove_all(d, &c, &p("/var")), who, "rm -r");
    ok(d.unlink(&c, &p("/lnk")), who, "unlink symlink");
    ok(d.symlink(&c, "var", &p("/lnk")), who, "symlink again");
    ok(
        d.write(&c, &p("/same"), 0, b"s"),
        who,
        "write identical bytes",
    );
    ok(ops::remove_all(d, &c, &p("/opq")), who, "rm -r opq");
    mkdir(d, who, &c, "/opq", 0o755);
    write_file(d, who, &c, "/opq/y", b"y");
    mkdir(d, who, &c, "/newdir", 0o700);
    write_file(d, who, &c, "/newdir/inner", b"i");
    // Docker's rule: a directory (not `/`) where an entry was added or deleted is
    // modified too, once (`/etc`, `/opq`; `/newdir` is added, `/` is never listed for it)
    let mut expect = vec![
        change("/etc", Modified),
        change("/opq", Modified),
        change("/etc/passwd", Modified),
        change("/etc/hosts", Deleted),
        change("/etc/new", Added),
        change("/keep", Modified),
        change("/owner", Modified),
        change("/var", Deleted),
        change("/lnk", Modified),
        change("/opq/x", Deleted),
        change("/opq/y", Added),
        change("/newdir", Added),
        change("/newdir/inner", Added),
    ];
    expect.sort();
    let got = must_changes(d, who, &c);
    assert_eq!(got, expect, "[{who}] child changeset");
    commit(d, who, &c);
    child(d, who, &g, &c);
    assert!(
        must_changes(d, who, &g).is_empty(),
        "[{who}] fresh grandchild"
    );
    ok(d.chmod(&g, &LayerPath::root(), 0o700), who, "chmod /");
    ok(d.rename(&g, &p("/keep"), &p("/kept")), who, "rename");
    ok(d.chmod(&g, &p("/etc"), 0o750), who, "chmod dir");
    assert_eq!(
        must_changes(d, who, &g),
        vec![
            change("/", Modified),
            change("/etc", Modified),
            change("/keep", Deleted),
            change("/kept", Added),
        ],
        "[{who}] grandchild changeset"
    );
    // the parents' changesets did not move
    assert_eq!(
        must_changes(d, who, &c),
        got,
        "[{who}] child changeset after commit"
    );
}

/// Invalid paths are refused at parse, with InvalidPath; normalized paths work.
fn invalid_paths_rejected<D: LayerDriver>(d: &mut D, who: &str) {
    for raw in [
        "",
        "..",
        "/..",
        "/../etc",
        "a/../../b",
        "/a/b/../../..",
        "/a\0b",
        "\0",
        "/x/.wh.y",
        "/.wh..wh..opq",
    ] {
        err_kind(
            Error::parse_path(raw),
            ErrorKind::InvalidPath,
            who,
            format!("parse {raw:?}"),
        );
    }
    let long = format!("/{}", "n".repeat(256));
    err_kind(
        Error::parse_path(&long),
        ErrorKind::InvalidPath,
        who,
        "name too long",
    );
    for name in ["", "..", ".", "a/b", "x\0"] {
        assert!(
            LayerPath::root().join(name).is_err(),
            "[{who}] join {name:?}"
        );
    }
    let b = id("base");
    base(d, who, &b);
    let weird = ok(Error::parse_path("//a/./b/../c/"), who, "parse");
    assert_eq!(weird.as_str(), "/a/c", "[{who}]");
    mkdir(d, who, &b, "/a", 0o755);
    ok(d.create(&b, &weird, 0o644), who, "create normalized");
    assert_eq!(names(d, who, &b, "/a"), ["c"], "[{who}]");
    err_kind(
        d.symlink(&b, "", &p("/l")),
        ErrorKind::InvalidArgument,
        who,
        "empty target",
    );
    err_kind(
        d.symlink(&b, "a\0b", &p("/l")),
        ErrorKind::InvalidArgument,
        who,
        "NUL target",
    );
    absent(d, who, &b, "/l");
}

/// POSIX errors on the obvious cases, on entries of this layer and of lower layers.
fn posix_errors<D: LayerDriver>(d: &mut D, who: &str) {
    use ErrorKind::{
        AlreadyExists, DirectoryNotEmpty, InvalidArgument, IsADirectory, NotADirectory, NotFound,
    };
    let (b, c) = (id("base"), id("child"));
    base(d, who, &b);
    mkdir(d, who, &b, "/ld", 0o755);
    write_file(d, who, &b, "/ld/x", b"x");
    write_file(d, who, &b, "/lf", b"f");
    mkdir(d, who, &b, "/lempty", 0o755);
    commit(d, who, &b);
    child(d, who, &c, &b);
    mkdir(d, who, &c, "/d", 0o755);
    write_file(d, who, &c, "/d/x", b"x");
    mkdir(d, who, &c, "/e", 0o755);
    write_file(d, who, &c, "/f", b"f");
    ok(d.symlink(&c, "f", &p("/s")), who, "symlink");
    let before = view_with(d, &c, full()).ok();
    refused(
        d,
        who,
        &c,
        &[
            (NotFound, "stat missing", |d, l| {
                d.stat(l, &p("/nope")).map(drop)
            }),
            (NotFound, "read missing", |d, l| {
                d.read(l, &p("/nope"), 0, 1).map(drop)
            }),
            (NotFound, "readdir missing", |d, l| {
                d.readdir(l, &p("/nope")).map(drop)
            }),
            (NotFound, "create, parent missing", |d, l| {
                d.create(l, &p("/nope/f"), 0o644)
            }),
            (NotFound, "mkdir, parent missing", |d, l| {
                d.mkdir(l, &p("/nope/d"), 0o755)
            }),
            (NotFound, "write missing", |d, l| {
                d.write(l, &p("/nope"), 0, b"x")
            }),
            (NotFound, "append missing", |d, l| {
                d.append(l, &p("/nope"), b"x")
            }),
            (NotFound, "truncate missing", |d, l| {
                d.truncate(l, &p("/nope"), 0)
            }),
            (NotFound, "unlink missing", |d, l| d.unlink(l, &p("/nope"))),
            (NotFound, "rmdir missing", |d, l| d.rmdir(l, &p("/nope"))),
            (NotFound, "rename missing", |d, l| {
                d.rename(l, &p("/nope"), &p("/x"))
            }),
            (NotFound, "rename to missing dir", |d, l| {
                d.rename(l, &p("/f"), &p("/nope/x"))
            }),
            (NotFound, "chmod missing", |d, l| {
                d.chmod(l, &p("/nope"), 0o644)
            }),
            (NotFound, "chown missing", |d, l| {
                d.chown(l, &p("/nope"), 1, 1)
            }),
            (NotFound, "stat missing in lower dir", |d, l| {
                d.stat(l, &p("/ld/nope")).map(drop)
            }),
            (AlreadyExists, "create existing", |d, l| {
                d.create(l, &p("/f"), 0o644)
            }),
            (AlreadyExists, "create existing lower", |d, l| {
                d.create(l, &p("/lf"), 0o644)
            }),
            (AlreadyExists, "create over dir", |d, l| {
                d.create(l, &p("/d"), 0o644)
            }),
            (AlreadyExists, "mkdir existing", |d, l| {
                d.mkdir(l, &p("/d"), 0o755)
            }),
            (AlreadyExists, "mkdir existing lower", |d, l| {
                d.mkdir(l, &p("/ld"), 0o755)
            }),
            (AlreadyExists, "mkdir over file", |d, l| {
                d.mkdir(l, &p("/f"), 0o755)
            }),
            (AlreadyExists, "mkdir /", |d, l| {
                d.mkdir(l, &LayerPath::root(), 0o755)
            }),
            (AlreadyExists, "symlink over file", |d, l| {
                d.symlink(l, "t", &p("/f"))
            }),
            (AlreadyExists, "symlink over symlink", |d, l| {
                d.symlink(l, "t", &p("/s"))
            }),
            (NotADirectory, "create under file", |d, l| {
                d.create(l, &p("/f/x"), 0o644)
            }),
            (NotADirectory, "create under lower file", |d, l| {
                d.create(l, &p("/lf/x"), 0o644)
            }),
            (NotADirectory, "stat under file", |d, l| {
                d.stat(l, &p("/f/x/y")).map(drop)
            }),
            (NotADirectory, "stat under symlink", |d, l| {
                d.stat(l, &p("/s/x")).map(drop)
            }),
            (NotADirectory, "readdir file", |d, l| {
                d.readdir(l, &p("/f")).map(drop)
            }),
            (NotADirectory, "readdir symlink", |d, l| {
                d.readdir(l, &p("/s")).map(drop)
            }),
            (NotADirectory, "rmdir file", |d, l| d.rmdir(l, &p("/f"))),
            (NotADirectory, "rmdir symlink", |d, l| d.rmdir(l, &p("/s"))),
            (NotADirectory, "rename dir over file", |d, l| {
                d.rename(l, &p("/e"), &p("/f"))
            }),
            (IsADirectory, "read dir", |d, l| {
                d.read(l, &p("/d"), 0, 1).map(drop)
            }),
            (IsADirectory, "write dir", |d, l| {
                d.write(l, &p("/d"), 0, b"x")
            }),
            (IsADirectory, "append lower dir", |d, l| {
                d.append(l, &p("/ld"), b"x")
            }),
            (IsADirectory, "truncate dir", |d, l| {
                d.truncate(l, &p("/d"), 0)
            }),
            (IsADirectory, "unlink dir", |d, l| d.unlink(l, &p("/d"))),
            (IsADirectory, "unlink lower dir", |d, l| {
                d.unlink(l, &p("/ld"))
            }),
            (IsADirectory, "rename file over dir", |d, l| {
                d.rename(l, &p("/f"), &p("/e"))
            }),
            (DirectoryNotEmpty, "rmdir non-empty", |d, l| {
                d.rmdir(l, &p("/d"))
            }),
            (DirectoryNotEmpty, "rmdir non-empty lower", |d, l| {
                d.rmdir(l, &p("/ld"))
            }),
            (DirectoryNotEmpty, "rename dir over non-empty", |d, l| {
                d.rename(l, &p("/e"), &p("/d"))
            }),
            (InvalidArgument, "rmdir /", |d, l| {
                d.rmdir(l, &LayerPath::root())
            }),
            (InvalidArgument, "rename /", |d, l| {
                d.rename(l, &LayerPath::root(), &p("/x"))
            }),
            (InvalidArgument, "rename over /", |d, l| {
                d.rename(l, &p("/f"), &LayerPath::root())
            }),
            (InvalidArgument, "rename dir into itself", |d, l| {
                d.rename(l, &p("/d"), &p("/d/sub"))
            }),
            (InvalidArgument, "chmod symlink", |d, l| {
                d.chmod(l, &p("/s"), 0o644)
            }),
            (InvalidArgument, "read symlink", |d, l| {
                d.read(l, &p("/s"), 0, 1).map(drop)
            }),
            (InvalidArgument, "write symlink", |d, l| {
                d.write(l, &p("/s"), 0, b"x")
            }),
            (InvalidArgument, "truncate symlink", |d, l| {
                d.truncate(l, &p("/s"), 0)
            }),
            (InvalidArgument, "symlink empty target", |d, l| {
                d.symlink(l, "", &p("/t"))
            }),
        ],
    );
    let after = view_with(d, &c, full()).ok();
    assert!(before.is_some() && after.is_some(), "[{who}] views");
    if let (Some(x), Some(y)) = (before, after) {
        assert_views_eq(
            &x,
            &y,
            "before",
            "after",
            format!("[{who}] failed ops changed the view"),
        );
    }
    // a lower directory emptied in the child can be removed, and an empty one directly
    ok(d.unlink(&c, &p("/ld/x")), who, "unlink lower x");
    ok(d.rmdir(&c, &p("/ld")), who, "rmdir emptied lower dir");
    ok(d.rmdir(&c, &p("/lempty")), who, "rmdir empty lower dir");
    absent(d, who, &c, "/ld");
    absent(d, who, &c, "/lempty");
    // a directory over an empty directory
    ok(
        d.rename(&c, &p("/d"), &p("/e")),
        who,
        "rename dir over empty dir",
    );
    assert_eq!(names(d, who, &c, "/e"), ["x"], "[{who}]");
}

/// Provenance: with Union, stat names the layer whose storage provides the entry; with Own,
/// the layer itself.
fn provenance<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c, g) = (id("base"), id("child"), id("grandchild"));
    base(d, who, &b);
    write_file(d, who, &b, "/f", b"x");
    mkdir(d, who, &b, "/d", 0o755);
    write_file(d, who, &b, "/d/g", b"g");
    write_file(d, who, &b, "/h", b"h");
    commit(d, who, &b);
    child(d, who, &c, &b);
    let union = d.semantics().provenance == Provenance::Union;
    let layer_of = |d: &mut D, l: &LayerId, path: &str| -> LayerId {
        ok(d.stat(l, &p(path)), who, format!("stat {l} {path}")).layer
    };
    let expect = |lower: &LayerId, own: &LayerId| if union { lower.clone() } else { own.clone() };
    assert_eq!(layer_of(d, &c, "/f"), expect(&b, &c), "[{who}] lower file");
    assert_eq!(
        layer_of(d, &c, "/d/g"),
        expect(&b, &c),
        "[{who}] lower nested file"
    );
    assert_eq!(layer_of(d, &b, "/f"), b, "[{who}] base file in base");
    ok(d.write(&c, &p("/f"), 0, b"y"), who, "write");
    assert_eq!(
        layer_of(d, &c, "/f"),
        c,
        "[{who}] after a write in the child"
    );
    ok(d.create(&c, &p("/d/new"), 0o644), who, "create");
    assert_eq!(layer_of(d, &c, "/d/new"), c, "[{who}] new file");
    ok(d.chmod(&c, &p("/h"), 0o600), who, "chmod");
    assert_eq!(layer_of(d, &c, "/h"), c, "[{who}] after chmod in the child");
    assert_eq!(
        layer_of(d, &c, "/d/g"),
        expect(&b, &c),
        "[{who}] untouched sibling"
    );
    assert_eq!(layer_of(d, &b, "/f"), b, "[{who}] base unchanged");
    commit(d, who, &c);
    child(d, who, &g, &c);
    assert_eq!(
        layer_of(d, &g, "/f"),
        expect(&c, &g),
        "[{who}] grandchild, child's copy"
    );
    assert_eq!(
        layer_of(d, &g, "/d/g"),
        expect(&b, &g),
        "[{who}] grandchild, base file"
    );
}

/// Failed operations change nothing: the views of the layer and its parent, the changesets
/// and the layer table are as before.
/// `security.capability` as `setcap cap_net_raw+ep` writes it (VFS_CAP_REVISION_2).
const CAP_NET_RAW: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Extended attributes and mtimes: set, read back, inherited by a child, kept through a
/// child's metadata change (copy-up keeps them), part of the changeset; every error case.
fn xattrs_and_times<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c) = (id("base"), id("child"));
    base(d, who, &b);
    mkdir(d, who, &b, "/d", 0o755);
    write_file(d, who, &b, "/d/f", b"data");
    write_file(d, who, &b, "/g", b"g");
    done(
        d,
        who,
        &b,
        &[
            ("symlink", |d, l| d.symlink(l, "d/f", &p("/l"))),
            ("setxattr user", |d, l| {
                d.set_xattr(l, &p("/d/f"), "user.mime", b"text/plain")
            }),
            ("setcap", |d, l| {
                d.set_xattr(l, &p("/d/f"), "security.capability", &CAP_NET_RAW)
            }),
            ("setxattr trusted, empty", |d, l| {
                d.set_xattr(l, &p("/d"), "trusted.t", b"")
            }),
            ("setxattr trusted on a link", |d, l| {
                d.set_xattr(l, &p("/l"), "trusted.link", b"x")
            }),
            ("set_mtime file", |d, l| {
                d.set_mtime(l, &p("/d/f"), 1_000_000_001, 5)
            }),
            ("set_mtime file g", |d, l| {
                d.set_mtime(l, &p("/g"), 1_000_000_002, 0)
            }),
            ("set_mtime symlink", |d, l| {
                d.set_mtime(l, &p("/l"), 1_000_000_003, 7)
            }),
            ("set_mtime dir", |d, l| {
                d.set_mtime(l, &p("/d"), 1_000_000_004, 999_999_999)
            }),
        ],
    );
    let names = ok(d.list_xattrs(&b, &p("/d/f")), who, "listxattr");
    assert_eq!(names, ["security.capability", "user.mime"], "[{who}]");
    assert_eq!(
        ok(
            d.get_xattr(&b, &p("/d/f"), "security.capability"),
            who,
            "getcap"
        ),
        CAP_NET_RAW,
        "[{who}]"
    );
    // errors, on the base layer (active)
    refused(
        d,
        who,
        &b,
        &[
            (ErrorKind::NoAttribute, "get missing", |d, l| {
                d.get_xattr(l, &p("/d/f"), "user.none").map(drop)
            }),
            (ErrorKind::NoAttribute, "remove missing", |d, l| {
                d.remove_xattr(l, &p("/d/f"), "user.none")
            }),
            (ErrorKind::InvalidArgument, "no namespace", |d, l| {
                d.set_xattr(l, &p("/d/f"), "bogus", b"1")
            }),
            (ErrorKind::InvalidArgument, "empty name", |d, l| {
                d.set_xattr(l, &p("/d/f"), "user.", b"1")
            }),
            (ErrorKind::NotPermitted, "reserved", |d, l| {
                d.set_xattr(l, &p("/d"), "trusted.overlay.opaque", b"y")
            }),
            (ErrorKind::NotPermitted, "reserved user", |d, l| {
                d.set_xattr(l, &p("/d"), "user.overlay.opaque", b"y")
            }),
            (ErrorKind::NotPermitted, "user.* on a symlink", |d, l| {
                d.set_xattr(l, &p("/l"), "user.a", b"1")
            }),
            (ErrorKind::InvalidArgument, "too large", |d, l| {
                d.set_xattr(l, &p("/g"), "user.big", &vec![0u8; 65537])
            }),
            (ErrorKind::NotFound, "missing path", |d, l| {
                d.set_xattr(l, &p("/missing"), "user.a", b"1")
            }),
            (ErrorKind::InvalidArgument, "nsec", |d, l| {
                d.set_mtime(l, &p("/g"), 1, 1_000_000_000)
            }),
        ],
    );
    commit(d, who, &b);
    err_kind(
        d.set_xattr(&b, &p("/g"), "user.a", b"1"),
        ErrorKind::ReadOnlyLayer,
        who,
        "committed",
    );
    err_kind(
        d.set_mtime(&b, &p("/g"), 1_000_000_005, 0),
        ErrorKind::ReadOnlyLayer,
        who,
        "committed mtime",
    );
    child(d, who, &c, &b);
    let base_view = must_view(d, who, &b);
    let inherited = must_view(d, who, &c);
    assert_eq!(
        inherited.get(&p("/d/f")).map(|e| e.set_mtime),
        Some(Some((1_000_000_001, 5))),
        "[{who}] inherited mtime"
    );
    assert_eq!(
        inherited.get(&p("/d")).map(|e| e.set_mtime),
        Some(Some((1_000_000_004, 999_999_999))),
        "[{who}] dir mtime"
    );
    assert_eq!(
        inherited.get(&p("/l")).map(|e| e.set_mtime),
        Some(Some((1_000_000_003, 7))),
        "[{who}] link mtime"
    );
    assert_eq!(
        inherited.get(&p("/d/f")).map(|e| e.xattrs.len()),
        Some(2),
        "[{who}] inherited xattrs"
    );
    // a metadata change in the child copies up (where the driver copies up) and keeps
    // the mtime and every attribute of the file, and of its directory
    ok(d.chmod(&c, &p("/d/f"), 0o600), who, "chmod in child");
    let v = must_view(d, who, &c);
    let f = v.get(&p("/d/f")).cloned();
    assert_eq!(
        f.as_ref().and_then(|e| e.set_mtime),
        Some((1_000_000_001, 5)),
        "[{who}] mtime after chmod"
    );
    assert_eq!(
        f.as_ref().map(|e| e.xattrs.clone()),
        inherited.get(&p("/d/f")).map(|e| e.xattrs.clone()),
        "[{who}] xattrs after chmod"
    );
    assert_eq!(
        v.get(&p("/d")).and_then(|e| e.set_mtime),
        Some((1_000_000_004, 999_999_999)),
        "[{who}] parent mtime after copy-up"
    );
    // a write gives the file the clock's mtime; an xattr change is a change
    ok(d.append(&c, &p("/g"), b"+"), who, "append");
    assert!(
        must_view(d, who, &c)
            .get(&p("/g"))
            .is_some_and(|e| e.set_mtime.is_none()),
        "[{who}] mtime after a write"
    );
    ok(
        d.set_xattr(&c, &p("/d"), "user.new", b"v"),
        who,
        "setxattr in child",
    );
    ok(
        d.remove_xattr(&c, &p("/d"), "trusted.t"),
        who,
        "removexattr in child",
    );
    let changes = must_changes(d, who, &c);
    for path in ["/d", "/d/f", "/g"] {
        assert!(
            changes.contains(&change(path, ChangeKind::Modified)),
            "[{who}] {path} modified in {changes:?}"
        );
    }
    assert_eq!(
        ok(d.list_xattrs(&c, &p("/d")), who, "listxattr child"),
        ["user.new"],
        "[{who}]"
    );
    let after = must_view(d, who, &b);
    assert_views_eq(
        &base_view,
        &after,
        "before",
        "after",
        format!("[{who}] base untouched"),
    );
}

/// Device nodes and fifos: made, listed and stat'ed with their numbers, copied up by a
/// child's metadata change, deleted through a whiteout; every error case.
fn device_nodes_and_fifos<D: LayerDriver>(d: &mut D, who: &str) {
    let root = rustix::process::geteuid().is_root();
    let (b, c) = (id("base"), id("child"));
    base(d, who, &b);
    mkdir(d, who, &b, "/dev", 0o755);
    ok(
        d.mknod(&b, &p("/dev/fifo"), Node::fifo(0o620)),
        who,
        "mkfifo",
    );
    let null = layerlab_core::makedev(1, 3);
    let loop1 = layerlab_core::makedev(7, 1);
    if root {
        ok(
            d.mknod(
                &b,
                &p("/dev/null"),
                Node::new(FileKind::CharDevice, 0o666, null),
            ),
            who,
            "mknod c 1 3",
        );
        ok(
            d.mknod(
                &b,
                &p("/dev/loop1"),
                Node::new(FileKind::BlockDevice, 0o660, loop1),
            ),
            who,
            "mknod b 7 1",
        );
    }
    refused(
        d,
        who,
        &b,
        &[
            (ErrorKind::InvalidArgument, "c 0 0", |d, l| {
                d.mknod(l, &p("/dev/wh"), Node::new(FileKind::CharDevice, 0o600, 0))
            }),
            (ErrorKind::InvalidArgument, "fifo with rdev", |d, l| {
                let rdev = layerlab_core::makedev(1, 3);
                d.mknod(l, &p("/dev/x"), Node::new(FileKind::Fifo, 0o600, rdev))
            }),
            (ErrorKind::InvalidArgument, "mknod a file", |d, l| {
                d.mknod(l, &p("/dev/y"), Node::new(FileKind::File, 0o600, 0))
            }),
            (ErrorKind::AlreadyExists, "exists", |d, l| {
                d.mknod(l, &p("/dev/fifo"), Node::fifo(0o600))
            }),
            (ErrorKind::InvalidArgument, "read a fifo", |d, l| {
                d.read(l, &p("/dev/fifo"), 0, 1).map(drop)
            }),
        ],
    );
    let md = ok(d.stat(&b, &p("/dev/fifo")), who, "stat fifo");
    assert_eq!(
        (md.kind, md.mode, md.rdev, md.size),
        (FileKind::Fifo, 0o620, 0, 0),
        "[{who}]"
    );
    if root {
        let md = ok(d.stat(&b, &p("/dev/null")), who, "stat null");
        assert_eq!(
            (md.kind, md.mode, md.rdev),
            (FileKind::CharDevice, 0o666, null),
            "[{who}]"
        );
        assert_eq!(layerlab_core::dev_parts(md.rdev), (1, 3), "[{who}]");
        let md = ok(d.stat(&b, &p("/dev/loop1")), who, "stat loop1");
        assert_eq!(
            (md.kind, md.rdev),
            (FileKind::BlockDevice, loop1),
            "[{who}]"
        );
        assert_eq!(
            names(d, who, &b, "/dev"),
            ["fifo", "loop1", "null"],
            "[{who}]"
        );
    }
    commit(d, who, &b);
    child(d, who, &c, &b);
    ok(
        d.chmod(&c, &p("/dev/fifo"), 0o600),
        who,
        "chmod fifo in child",
    );
    ok(
        d.chown(&c, &p("/dev/fifo"), 5, 5),
        who,
        "chown fifo in child",
    );
    let md = ok(d.stat(&c, &p("/dev/fifo")), who, "stat fifo in child");
    assert_eq!(
        (md.kind, md.mode, md.uid),
        (FileKind::Fifo, 0o600, 5),
        "[{who}]"
    );
    let mut expect = vec![change("/dev/fifo", ChangeKind::Modified)];
    if root {
        ok(d.unlink(&c, &p("/dev/null")), who, "unlink device in child");
        absent(d, who, &c, "/dev/null");
        expect.push(change("/dev/null", ChangeKind::Deleted));
    }
    let changes = must_changes(d, who, &c);
    for e in &expect {
        assert!(changes.contains(e), "[{who}] {e:?} in {changes:?}");
    }
    let md = ok(d.stat(&b, &p("/dev/fifo")), who, "base fifo");
    assert_eq!((md.mode, md.uid), (0o620, 0), "[{who}] base untouched");
}

fn failed_ops_change_nothing<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c) = (id("base"), id("child"));
    base(d, who, &b);
    mkdir(d, who, &b, "/ld", 0o755);
    mkdir(d, who, &b, "/ld/sub", 0o755);
    write_file(d, who, &b, "/ld/sub/x", b"x");
    write_file(d, who, &b, "/lf", b"lower");
    commit(d, who, &b);
    child(d, who, &c, &b);
    mkdir(d, who, &c, "/d", 0o755);
    write_file(d, who, &c, "/d/f", b"file");
    ok(d.hardlink(&c, &p("/d/f"), &p("/d/h")), who, "hardlink");
    ok(d.symlink(&c, "d/f", &p("/s")), who, "symlink");
    ok(d.unlink(&c, &p("/lf")), who, "unlink lower");
    let snapshot = |d: &mut D| {
        (
            view_with(d, &c, full()).ok(),
            view_with(d, &b, full()).ok(),
            d.changes(&c).ok(),
            d.changes(&b).ok(),
            d.layers().ok(),
        )
    };
    let before = snapshot(d);
    assert!(before.0.is_some() && before.2.is_some(), "[{who}] snapshot");
    let mut ops_list: Vec<(&str, Refusal<D>)> = vec![
        ("create existing", |d, c, _| d.create(c, &p("/d/f"), 0o600)),
        ("create over whiteout parent", |d, c, _| {
            d.create(c, &p("/lf/x"), 0o600)
        }),
        ("mkdir under file", |d, c, _| {
            d.mkdir(c, &p("/d/f/x"), 0o700)
        }),
        ("write to dir", |d, c, _| d.write(c, &p("/d"), 0, b"zz")),
        ("write to deleted lower", |d, c, _| {
            d.write(c, &p("/lf"), 0, b"zz")
        }),
        ("append to symlink", |d, c, _| d.append(c, &p("/s"), b"zz")),
        ("truncate lower dir", |d, c, _| d.truncate(c, &p("/ld"), 0)),
        ("unlink lower dir", |d, c, _| d.unlink(c, &p("/ld"))),
        ("rmdir non-empty lower", |d, c, _| d.rmdir(c, &p("/ld"))),
        ("rmdir non-empty", |d, c, _| d.rmdir(c, &p("/d"))),
        ("rename into itself", |d, c, _| {
            d.rename(c, &p("/d"), &p("/d/in"))
        }),
        ("rename file over dir", |d, c, _| {
            d.rename(c, &p("/s"), &p("/ld"))
        }),
        ("rename dir over non-empty", |d, c, _| {
            d.rename(c, &p("/d"), &p("/ld"))
        }),
        ("rename lower dir over file", |d, c, _| {
            d.rename(c, &p("/ld"), &p("/s"))
        }),
        ("hardlink dir", |d, c, _| {
            d.hardlink(c, &p("/ld"), &p("/hl"))
        }),
        ("hardlink over existing", |d, c, _| {
            d.hardlink(c, &p("/d/f"), &p("/s"))
        }),
        ("symlink empty", |d, c, _| d.symlink(c, "", &p("/t"))),
        ("chmod symlink", |d, c, _| d.chmod(c, &p("/s"), 0o4777)),
        ("chown missing", |d, c, _| d.chown(c, &p("/ld/nope"), 9, 9)),
        ("write to committed", |d, _, b| {
            d.write(b, &p("/ld/sub/x"), 0, b"zz")
        }),
        ("create_layer duplicate", |d, c, b| {
            d.create_layer(c, Some(b))
        }),
        ("create_layer on active", |d, c, _| {
            d.create_layer(&id("n"), Some(c))
        }),
        ("remove_layer with children", |d, _, b| d.remove_layer(b)),
    ];
    if d.semantics().lower_dir_rename == LowerDirRename::CrossDevice {
        ops_list.push(("rename lower dir (EXDEV)", |d, c, _| {
            d.rename(c, &p("/ld"), &p("/moved"))
        }));
    }
    for (what, op) in &ops_list {
        let r = op(d, &c, &b);
        assert!(r.is_err(), "[{who}] {what}: expected an error");
        let after = snapshot(d);
        assert_eq!(before.2, after.2, "[{who}] {what}: child changeset changed");
        assert_eq!(before.3, after.3, "[{who}] {what}: base changeset changed");
        assert_eq!(before.4, after.4, "[{who}] {what}: layer table changed");
        if let (Some(x), Some(y)) = (&before.0, &after.0) {
            assert_views_eq(
                x,
                y,
                "before",
                "after",
                format!("[{who}] {what}: child view"),
            );
        }
        if let (Some(x), Some(y)) = (&before.1, &after.1) {
            assert_views_eq(
                x,
                y,
                "before",
                "after",
                format!("[{who}] {what}: base view"),
            );
        }
    }
}

// ----- the per-scenario tests: model (plain and each driver's semantics), every driver --

macro_rules! everywhere {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod everywhere {
            $(
                #[test]
                $(#[$attr])*
                fn $name() {
                    super::common::run_everywhere(
                        stringify!($name),
                        |m, who| super::$name(m, who),
                        |d, who| super::$name(d, who),
                        |r, who| super::$name(r, who),
                    );
                }
            )*
        }
    };
}

everywhere! {
    lower_file_reads_through_descendants,
    file_data_in_child,
    replace_keeps_attributes,
    empty_write_past_end_changes_nothing,
    deleted_file_stays_deleted,
    recreated_dir_hides_lower_entries,
    attributes_survive,
    new_entries_owned_by_root,
    rename_file_over_file,
    rename_lower_file,
    rename_lower_dir,
    hardlinks_within_layer,
    rename_hardlink_onto_its_other_name,
    committed_layer_is_read_only,
    layer_lifecycle_rules,
    remove_layer_with_children,
    deep_chain,
    changeset_is_exact,
    invalid_paths_rejected,
    posix_errors,
    provenance,
    failed_ops_change_nothing,
    xattrs_and_times,
    device_nodes_and_fifos,
}

// ----- store-level scenarios: every registered driver -----------------------------------

/// Runs `f` on every registered driver with its store directory, reporting each failure.
fn on_every_driver(scenario: &str, f: impl Fn(&'static str)) {
    let mut failures = Vec::new();
    for name in common::driver_names() {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(name)));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            failures.push(format!("--- {scenario} failed on {name}:\n{msg}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A store reopened (drop, then `registry::open`) reads back every layer of a deep chain.
#[test]
fn reopened_store_reads_back_every_layer() {
    on_every_driver("reopen", |name| {
        let (dir, mut d) = fresh(name);
        let n = chain_depth(&d);
        let ids = build_chain(&mut d, name, n);
        commit(&mut d, name, &ids[n - 1]);
        let views: Vec<_> = ids
            .iter()
            .map(|l| ok(view_with(&mut d, l, full()), name, format!("view {l}")))
            .collect();
        let changes: Vec<_> = ids.iter().map(|l| must_changes(&mut d, name, l)).collect();
        let infos = ok(d.layers(), name, "layers");
        drop(d);
        let mut d = ok(
            registry::open(&store_root(&dir), Access::Write),
            name,
            "registry::open",
        );
        assert_eq!(d.name(), name, "[{name}] reopened as another driver");
        assert_eq!(
            ok(d.layers(), name, "layers"),
            infos,
            "[{name}] layer table"
        );
        for (i, l) in ids.iter().enumerate() {
            let v = ok(
                view_with(&mut d, l, full()),
                name,
                format!("view {l} after reopen"),
            );
            assert_views_eq(&views[i], &v, "before", "reopened", format!("[{name}] {l}"));
            assert_eq!(
                must_changes(&mut d, name, l),
                changes[i],
                "[{name}] {l} changes"
            );
        }
        // still writable: a child of the top, and a change in it
        if d.semantics().max_depth.is_none_or(|m| n < m) {
            let t = id("after-reopen");
            child(&mut d, name, &t, &ids[n - 1]);
            write_file(&mut d, name, &t, "/shared", b"again");
            assert_eq!(read(&mut d, name, &t, "/shared"), b"again", "[{name}]");
        }
        // and a read-only open sees the same
        drop(d);
        let mut r = ok(
            registry::open(&store_root(&dir), Access::Read),
            name,
            "open read-only",
        );
        let top = &ids[n - 1];
        let v = ok(view_with(&mut r, top, full()), name, "view read-only");
        assert_views_eq(
            &views[n - 1],
            &v,
            "before",
            "read-only",
            format!("[{name}] {top}"),
        );
    });
}

/// A second open while the first is held fails with Locked; after the first is dropped the
/// store opens again.
#[test]
fn second_open_is_locked() {
    on_every_driver("lock", |name| {
        let (dir, mut d) = fresh(name);
        let b = id("base");
        base(&mut d, name, &b);
        write_file(&mut d, name, &b, "/f", b"x");
        let root = store_root(&dir);
        for access in [Access::Write, Access::Read] {
            err_kind(
                registry::open(&root, access),
                ErrorKind::Locked,
                name,
                format!("second open ({access:?}) while a writer holds the store"),
            );
        }
        // the first handle still works
        assert_eq!(read(&mut d, name, &b, "/f"), b"x", "[{name}]");
        drop(d);
        let r1 = ok(registry::open(&root, Access::Read), name, "reader 1");
        let r2 = ok(
            registry::open(&root, Access::Read),
            name,
            "reader 2 (shared)",
        );
        err_kind(
            registry::open(&root, Access::Write),
            ErrorKind::Locked,
            name,
            "writer while readers hold the store",
        );
        drop((r1, r2));
        let mut w = ok(
            registry::open(&root, Access::Write),
            name,
            "reopen for writing",
        );
        assert_eq!(read(&mut w, name, &b, "/f"), b"x", "[{name}]");
    });
}

/// A store opened read-only refuses every change (Locked) and changes nothing.
#[test]
fn read_only_open_refuses_changes() {
    on_every_driver("read-only", |name| {
        let (dir, mut d) = fresh(name);
        let b = id("base");
        base(&mut d, name, &b);
        write_file(&mut d, name, &b, "/f", b"x");
        drop(d);
        let mut r = ok(
            registry::open(&store_root(&dir), Access::Read),
            name,
            "open read",
        );
        let before = must_view(&mut r, name, &b);
        assert!(
            r.write(&b, &p("/f"), 0, b"y").is_err(),
            "[{name}] write on a read-only open"
        );
        assert!(
            r.create_layer(&id("n"), None).is_err(),
            "[{name}] create_layer"
        );
        assert!(r.commit(&b).is_err(), "[{name}] commit");
        assert!(r.remove_layer(&b).is_err(), "[{name}] remove_layer");
        assert_views_eq(
            &before,
            &must_view(&mut r, name, &b),
            "before",
            "after",
            format!("[{name}]"),
        );
        assert_eq!(
            ok(r.layer(&b), name, "layer").state,
            LayerState::Active,
            "[{name}]"
        );
    });
}

/// Every driver in the registry opens through `registry::init` and reports its own name.
#[test]
fn registry_lists_working_drivers() {
    assert!(!common::driver_names().is_empty(), "no drivers registered");
    assert!(
        common::driver_names().contains(&"vfs"),
        "vfs must be registered"
    );
    for name in common::driver_names() {
        let (_dir, d) = fresh(name);
        assert_eq!(d.name(), name, "[{name}] registry name");
        assert!(
            layerlab_drivers::registry::info(name).is_some(),
            "[{name}] info"
        );
    }
}
