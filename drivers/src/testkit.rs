//! What the in-crate tests of the drivers share: ids, paths and options from strings, and
//! the scenarios of the in-device formats (devicemapper's llfs, the cow engine's trees):
//! what an image layer carries besides bytes (mtimes with nanoseconds, extended
//! attributes, device nodes and fifos), written, then read back after the store is closed
//! and opened again, as every CLI command opens it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use layerlab_core::{
    makedev, ErrorKind, FileKind, LayerDriver, LayerId, LayerPath, Metadata, Node,
};

/// A mebibyte, the unit the tests write sizes in.
pub const MIB: u64 = 1 << 20;

/// `cap_net_raw+ep` as `setcap` writes `security.capability` (vfs_cap_data, revision 2).
pub const CAP_NET_RAW: &[u8] = &[
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

/// The device nodes the scenario makes (as root): `(path, kind, mode, rdev)`.
fn devices() -> [(&'static str, FileKind, u32, u64); 3] {
    [
        ("/dev/null", FileKind::CharDevice, 0o666, makedev(1, 3)),
        ("/dev/sda", FileKind::BlockDevice, 0o660, makedev(8, 0)),
        (
            "/dev/wide",
            FileKind::CharDevice,
            0o600,
            makedev(300, 70_000),
        ),
    ]
}

/// A layer id.
pub fn id(s: &str) -> LayerId {
    LayerId::new(s).unwrap()
}

/// A path.
pub fn p(s: &str) -> LayerPath {
    LayerPath::parse(s).unwrap()
}

/// Options from pairs.
pub fn opts(pairs: &[(&str, &str)]) -> crate::store::Options {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every entry of a layer's view, each as `describe` puts it (given its path and
/// attributes), sorted.
pub fn view_with(
    d: &mut dyn LayerDriver,
    l: &LayerId,
    mut describe: impl FnMut(&mut dyn LayerDriver, &LayerPath, &Metadata) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![LayerPath::root()];
    while let Some(dir) = todo.pop() {
        for e in d.readdir(l, &dir).unwrap() {
            let path = dir.join(&e.name).unwrap();
            let m = d.stat(l, &path).unwrap();
            out.push(describe(&mut *d, &path, &m));
            if m.kind == FileKind::Dir {
                todo.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every entry of a layer's view with what the formats keep of it: kind, mode, size,
/// nlink, device number, mtime (seconds and nanoseconds), extended attributes and values.
pub fn attr_view(d: &mut dyn LayerDriver, l: &LayerId) -> Vec<String> {
    view_with(d, l, |d, path, m| {
        let mut xattrs = Vec::new();
        for name in d.list_xattrs(l, path).unwrap() {
            let value = d.get_xattr(l, path, &name).unwrap();
            xattrs.push(format!("{name}={value:?}"));
        }
        format!(
            "{path} {:?} {:o} size={} nlink={} rdev={} mtime={}.{:09} {xattrs:?}",
            m.kind, m.mode, m.size, m.nlink, m.rdev, m.mtime, m.mtime_nsec
        )
    })
}

/// Builds layer `base` (committed) and its child `child`: device nodes, a fifo, a setuid
/// file with file capabilities and a user attribute (and a hard link to it), set mtimes on
/// a file, a symlink and a directory; the child changes and removes attributes and times
/// of what it inherited. Checks what each layer sees. `big` is the size of a value set in
/// the child (as large as the driver takes).
pub fn build_attributes(d: &mut dyn LayerDriver, big: usize) {
    let (base, child) = (id("base"), id("child"));
    d.create_layer(&base, None).unwrap();
    d.mkdir(&base, &p("/dev"), 0o755).unwrap();
    for (name, kind, mode, rdev) in devices() {
        let made = d.mknod(&base, &p(name), Node::new(kind, mode, rdev));
        if crate::hostfs::privileged() {
            made.unwrap();
        } else {
            // as the kernel answers a process without CAP_MKNOD
            assert_eq!(made.unwrap_err().kind(), ErrorKind::NotPermitted);
        }
    }
    d.mknod(&base, &p("/fifo"), Node::fifo(0o644)).unwrap();
    layerlab_core::ops::write_file(d, &base, &p("/ping"), b"\x7fELF", 0o4755).unwrap();
    d.set_xattr(&base, &p("/ping"), "security.capability", CAP_NET_RAW)
        .unwrap();
    d.set_xattr(&base, &p("/ping"), "user.note", b"base")
        .unwrap();
    d.set_mtime(&base, &p("/ping"), 1_000_000_007, 123_456_789)
        .unwrap();
    d.hardlink(&base, &p("/ping"), &p("/ping2")).unwrap();
    d.symlink(&base, "ping", &p("/link")).unwrap();
    d.set_mtime(&base, &p("/link"), 1_000_000_008, 1).unwrap();
    d.set_mtime(&base, &p("/dev"), 1_000_000_009, 999_999_999)
        .unwrap();
    d.commit(&base).unwrap();
    d.create_layer(&child, Some(&base)).unwrap();
    d.set_xattr(&child, &p("/ping2"), "user.note", b"child")
        .unwrap();
    d.remove_xattr(&child, &p("/ping"), "security.capability")
        .unwrap();
    d.set_mtime(&child, &p("/fifo"), 1_000_000_010, 5).unwrap();
    d.set_xattr(&child, &p("/dev"), "trusted.big", &vec![7u8; big])
        .unwrap();
    check_attributes(d, big);
}

/// What `build_attributes` left, as each layer sees it.
pub fn check_attributes(d: &mut dyn LayerDriver, big: usize) {
    let (base, child) = (id("base"), id("child"));
    if crate::hostfs::privileged() {
        for (name, kind, mode, rdev) in devices() {
            for l in [&base, &child] {
                let m = d.stat(l, &p(name)).unwrap();
                assert_eq!((m.kind, m.mode, m.rdev, m.size), (kind, mode, rdev, 0));
            }
        }
        let wide = d.stat(&child, &p("/dev/wide")).unwrap();
        assert_eq!(layerlab_core::dev_parts(wide.rdev), (300, 70_000));
    }
    assert_eq!(d.stat(&base, &p("/fifo")).unwrap().kind, FileKind::Fifo);
    assert_eq!(d.stat(&base, &p("/fifo")).unwrap().rdev, 0);
    let ping = d.stat(&base, &p("/ping")).unwrap();
    assert_eq!((ping.mtime, ping.mtime_nsec), (1_000_000_007, 123_456_789));
    assert_eq!(ping.mode, 0o4755);
    let link = d.stat(&base, &p("/link")).unwrap();
    assert_eq!((link.mtime, link.mtime_nsec), (1_000_000_008, 1));
    let dev = d.stat(&base, &p("/dev")).unwrap();
    assert_eq!((dev.mtime, dev.mtime_nsec), (1_000_000_009, 999_999_999));
    // the base keeps both attributes, on both names of the file
    for name in ["/ping", "/ping2"] {
        assert_eq!(
            d.list_xattrs(&base, &p(name)).unwrap(),
            ["security.capability", "user.note"]
        );
        assert_eq!(
            d.get_xattr(&base, &p(name), "security.capability").unwrap(),
            CAP_NET_RAW
        );
        assert_eq!(d.get_xattr(&base, &p(name), "user.note").unwrap(), b"base");
    }
    // the child changed its copy only
    assert_eq!(d.list_xattrs(&child, &p("/ping")).unwrap(), ["user.note"]);
    assert_eq!(
        d.get_xattr(&child, &p("/ping"), "user.note").unwrap(),
        b"child"
    );
    let gone = d.get_xattr(&child, &p("/ping"), "security.capability");
    assert_eq!(gone.unwrap_err().kind(), ErrorKind::NoAttribute);
    let fifo = d.stat(&child, &p("/fifo")).unwrap();
    assert_eq!((fifo.mtime, fifo.mtime_nsec), (1_000_000_010, 5));
    assert_ne!(d.stat(&base, &p("/fifo")).unwrap().mtime, 1_000_000_010);
    assert_eq!(
        d.get_xattr(&child, &p("/dev"), "trusted.big").unwrap(),
        vec![7u8; big]
    );
    assert!(d.list_xattrs(&base, &p("/dev")).unwrap().is_empty());
}

/// A marker mtime: far from any clock time of a test run.
const MARKER: (i64, u32) = (1_000_000_042, 42);

fn mtime_of(d: &mut dyn LayerDriver, l: &LayerId, path: &str) -> (i64, u32) {
    let m = d.stat(l, &p(path)).unwrap();
    (m.mtime, m.mtime_nsec)
}

fn mark(d: &mut dyn LayerDriver, l: &LayerId, paths: &[&str]) {
    for path in paths {
        d.set_mtime(l, &p(path), MARKER.0, MARKER.1).unwrap();
    }
}

/// What moves an mtime, as Linux moves it: a write of something, any truncate, an entry
/// added to or removed from a directory (both directories of a rename); what keeps it: an
/// empty write, chmod, chown, extended attributes, a hard link (the file's), a rename
/// (the entry's own). Returns the mtimes of layer `l`, for [`mtimes`] after a reopen.
pub fn mtimes_move_as_linux_moves_them(d: &mut dyn LayerDriver) -> Vec<(i64, u32)> {
    let l = id("l");
    d.create_layer(&l, None).unwrap();
    for dir in ["/a", "/b"] {
        d.mkdir(&l, &p(dir), 0o755).unwrap();
    }
    layerlab_core::ops::write_file(d, &l, &p("/a/f"), b"data", 0o644).unwrap();
    mark(d, &l, &["/a", "/b", "/a/f"]);
    d.write(&l, &p("/a/f"), 0, b"").unwrap();
    d.chmod(&l, &p("/a/f"), 0o600).unwrap();
    d.chown(&l, &p("/a/f"), 7, 7).unwrap();
    d.set_xattr(&l, &p("/a/f"), "user.k", b"v").unwrap();
    d.set_xattr(&l, &p("/a"), "user.k", b"v").unwrap();
    assert_eq!(mtime_of(d, &l, "/a/f"), MARKER, "kept by metadata changes");
    assert_eq!(mtime_of(d, &l, "/a"), MARKER);
    d.write(&l, &p("/a/f"), 1, b"A").unwrap();
    assert_ne!(mtime_of(d, &l, "/a/f"), MARKER, "a write");
    mark(d, &l, &["/a/f"]);
    d.truncate(&l, &p("/a/f"), 4).unwrap();
    assert_ne!(
        mtime_of(d, &l, "/a/f"),
        MARKER,
        "a truncate to the same size"
    );
    mark(d, &l, &["/a/f"]);
    d.hardlink(&l, &p("/a/f"), &p("/b/h")).unwrap();
    assert_eq!(mtime_of(d, &l, "/a/f"), MARKER, "a hard link");
    assert_ne!(mtime_of(d, &l, "/b"), MARKER, "an entry added");
    mark(d, &l, &["/b"]);
    d.rename(&l, &p("/a/f"), &p("/b/g")).unwrap();
    assert_eq!(mtime_of(d, &l, "/b/g"), MARKER, "the entry renamed");
    assert_ne!(mtime_of(d, &l, "/a"), MARKER, "an entry removed");
    assert_ne!(mtime_of(d, &l, "/b"), MARKER, "an entry added");
    mark(d, &l, &["/a", "/b"]);
    d.mknod(&l, &p("/a/p"), Node::fifo(0o644)).unwrap();
    d.unlink(&l, &p("/b/h")).unwrap();
    assert_ne!(mtime_of(d, &l, "/a"), MARKER, "a fifo made");
    assert_ne!(mtime_of(d, &l, "/b"), MARKER, "a name removed");
    mtimes(d)
}

/// The mtimes of the entries `mtimes_move_as_linux_moves_them` left.
pub fn mtimes(d: &mut dyn LayerDriver) -> Vec<(i64, u32)> {
    ["/", "/a", "/b", "/b/g", "/a/p"]
        .iter()
        .map(|path| mtime_of(d, &id("l"), path))
        .collect()
}
