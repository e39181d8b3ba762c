//! What the tests of the union drivers (aufs, overlay2) share: a fresh store, the base
//! layer every scenario starts from, and the scenarios both formats pass, each returning
//! what a driver's own test goes on to check of its layout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{Flavor, Union};
use crate::front::Layers;
use crate::store::Access;
pub use crate::testkit::{id, opts, p};
use layerlab_core::{ops, Change, ErrorKind, FileKind, LayerDriver, LayerId, LayerPath};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A union driver of flavor `F`: the checked front over it.
pub type Driver<F> = Layers<Union<F>>;

/// A new store of flavor `F` with the options `o`, in a temporary directory (the store
/// at `<dir>/store`).
pub fn fresh<F: Flavor>(o: &[(&str, &str)]) -> (TempDir, Driver<F>) {
    let dir = tempfile::tempdir().unwrap();
    let d = Driver::<F>::init(&dir.path().join("store"), opts(o)).unwrap();
    (dir, d)
}

/// Writes the file `path` (mode 0644) with `data`.
pub fn write<D: LayerDriver>(d: &mut D, l: &LayerId, path: &str, data: &[u8]) {
    ops::write_file(d, l, &p(path), data, 0o644).unwrap();
}

/// The names a layer's directory `path` lists.
pub fn names<D: LayerDriver>(d: &mut D, l: &LayerId, path: &str) -> Vec<String> {
    d.readdir(l, &p(path))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// base: /etc/passwd (1234 bytes), /etc/hosts, /usr/lib/x, /d/ (with /d/f), committed.
pub fn base_layer<D: LayerDriver>(d: &mut D) -> LayerId {
    let b = id("base");
    d.create_layer(&b, None).unwrap();
    ops::mkdir_p(d, &b, &p("/etc"), 0o755).unwrap();
    ops::mkdir_p(d, &b, &p("/usr/lib"), 0o750).unwrap();
    ops::mkdir_p(d, &b, &p("/d"), 0o700).unwrap();
    write(d, &b, "/etc/passwd", &[b'p'; 1234]);
    write(d, &b, "/etc/hosts", b"127.0.0.1 localhost\n");
    write(d, &b, "/usr/lib/x", b"lib");
    write(d, &b, "/d/f", b"f");
    d.commit(&b).unwrap();
    b
}

/// A new layer `name` on `parent`.
pub fn child<D: LayerDriver>(d: &mut D, name: &str, parent: &LayerId) -> LayerId {
    let c = id(name);
    d.create_layer(&c, Some(parent)).unwrap();
    c
}

/// Bytes a chmod of `path` in layer `l` copies up (the meter reset first): the whole
/// file without metacopy, none with it.
pub fn bytes_a_chmod_copies<F: Flavor>(d: &mut Driver<F>, l: &LayerId, path: &str) -> u64 {
    d.meter_mut().reset();
    d.chmod(l, &p(path), 0o600).unwrap();
    d.meter().counts.bytes_copied
}

/// A fresh store ([`fresh`]) holding [`base_layer`] and its child `c`: the driver, the
/// base and the child.
pub fn base_and_child<F: Flavor>(o: &[(&str, &str)]) -> (TempDir, Driver<F>, LayerId, LayerId) {
    let (t, mut d) = fresh::<F>(o);
    let b = base_layer(&mut d);
    let c = child(&mut d, "c", &b);
    (t, d, b, c)
}

/// In the child of [`base_layer`], /etc/hosts removed is hidden (`whiteout` checks its
/// on-disk form in the child's branch); /d removed with its file (`removed` checks the
/// branch) then made again is an opaque directory (`opaque` checks the branch): empty,
/// the child's own; the usage counts one whiteout and one opaque directory. Returns the
/// driver and the child.
pub fn whiteout_then_opaque_dir<F: Flavor>(
    whiteout: impl FnOnce(&Path),
    removed: impl FnOnce(&Path),
    opaque: impl FnOnce(&Path),
) -> (TempDir, Driver<F>, LayerId) {
    let (t, mut d, _, c) = base_and_child::<F>(&[]);
    let branch = d.backend().branch_dir(&c);
    d.unlink(&c, &p("/etc/hosts")).unwrap();
    whiteout(&branch);
    // never shown
    assert_eq!(names(&mut d, &c, "/etc"), vec!["passwd"]);
    assert_eq!(
        d.stat(&c, &p("/etc/hosts")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // rm -r /d then mkdir /d
    d.unlink(&c, &p("/d/f")).unwrap();
    d.rmdir(&c, &p("/d")).unwrap();
    removed(&branch);
    d.mkdir(&c, &p("/d"), 0o755).unwrap();
    opaque(&branch);
    assert!(d.readdir(&c, &p("/d")).unwrap().is_empty());
    assert_eq!(d.stat(&c, &p("/d")).unwrap().layer, c);
    let u = d.usage(&c).unwrap();
    assert_eq!(u.details["whiteouts"], 1, "{u:?}");
    assert_eq!(u.details["opaque_dirs"], 1);
    (t, d, c)
}

/// A stack of `F::MAX_DEPTH` committed layers `l1`, `l2`, ...: one more is refused as too
/// many layers, and is not made. Returns the driver and the error.
pub fn one_layer_past_the_depth_limit<F: Flavor>() -> (TempDir, Driver<F>, layerlab_core::Error) {
    let (t, mut d) = fresh::<F>(&[]);
    let mut parent: Option<LayerId> = None;
    for i in 1..=F::MAX_DEPTH {
        let l = id(&format!("l{i}"));
        d.create_layer(&l, parent.as_ref()).unwrap();
        d.commit(&l).unwrap();
        parent = Some(l);
    }
    let top = id(&format!("l{}", F::MAX_DEPTH));
    assert_eq!(d.layer(&top).unwrap().depth, F::MAX_DEPTH);
    let over = id(&format!("l{}", F::MAX_DEPTH + 1));
    let e = d.create_layer(&over, parent.as_ref()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooManyLayers, "{e}");
    assert!(!d.exists(&over));
    (t, d, e)
}

/// The first write of the child's inherited /etc/passwd copies it up with its parent
/// directory (and its attributes), not its siblings, once: an append after it copies
/// nothing, and the base keeps its own bytes. Returns the driver, base and child, and the
/// trace of the first write.
pub fn first_write_copies_up_once<F: Flavor>(
    o: &[(&str, &str)],
) -> (TempDir, Driver<F>, LayerId, LayerId) {
    let (t, mut d, b, c) = base_and_child::<F>(o);
    d.meter_mut().reset();
    d.meter_mut().set_tracing(true);
    d.write(&c, &p("/etc/passwd"), 0, b"root").unwrap();
    let n = d.meter().counts;
    assert_eq!(n.bytes_copied, 1234);
    assert_eq!(n.bytes_written, 4);
    assert_eq!(
        (n.fsyncs, n.entry_fsyncs),
        (0, 1),
        "the staged copy's first fsync"
    );
    let steps = d.meter_mut().take_steps();
    assert!(
        steps
            .iter()
            .any(|s| s == "copy-up /etc/passwd from layer base (1234 bytes)"),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(|s| s.starts_with("copy-up dir /etc")),
        "{steps:?}"
    );
    // the parent dir was copied with its attributes, the file is in the branch
    let up = d.backend().branch_dir(&c).join("etc");
    assert_eq!(
        std::fs::symlink_metadata(&up).unwrap().mode() & 0o7777,
        0o755
    );
    assert_eq!(std::fs::read(up.join("passwd")).unwrap().len(), 1234);
    assert!(!up.join("hosts").exists(), "siblings are not copied");
    // once
    d.meter_mut().reset();
    d.append(&c, &p("/etc/passwd"), b"!").unwrap();
    assert_eq!(d.meter().counts.bytes_copied, 0);
    let data = ops::read_all(&mut d, &c, &p("/etc/passwd")).unwrap();
    assert_eq!(&data[..5], b"rootp");
    assert_eq!(data.len(), 1235);
    assert_eq!(
        ops::read_all(&mut d, &b, &p("/etc/passwd")).unwrap(),
        vec![b'p'; 1234]
    );
    (t, d, b, c)
}

/// A committed layer `b` holds the symlink /esc to a directory outside the store; in its
/// child `c`, making an entry through it is "not a directory" (the link is never
/// followed). Returns the driver, the child and the outside directory, which must stay
/// empty whatever the caller goes on to do.
pub fn symlink_out_of_the_store<F: Flavor>() -> (TempDir, Driver<F>, LayerId, PathBuf) {
    let (t, mut d) = fresh::<F>(&[]);
    let b = id("b");
    d.create_layer(&b, None).unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    d.symlink(&b, outside.to_str().unwrap(), &p("/esc"))
        .unwrap();
    d.commit(&b).unwrap();
    let c = child(&mut d, "c", &b);
    assert_eq!(
        d.create(&c, &p("/esc/x"), 0o644).unwrap_err().kind(),
        ErrorKind::NotADirectory
    );
    assert_eq!(
        d.mkdir(&c, &p("/esc/x"), 0o755).unwrap_err().kind(),
        ErrorKind::NotADirectory
    );
    (t, d, c, outside)
}

/// What a layer shows: its tree (paths and kinds) and its changes.
pub type Shown = (Vec<(LayerPath, FileKind)>, Vec<Change>);

/// The changes of the reopen scenario, made in the child `c` of [`base_layer`]: /etc/hosts
/// removed, /usr/lib/x chmodded 0700, /etc/passwd rewritten, the directory `dir` made
/// holding the symlink `<dir>/link` to ../etc/passwd. Returns what the child shows: its
/// tree and its changes.
pub fn change_child<D: LayerDriver>(d: &mut D, c: &LayerId, dir: &str) -> Shown {
    d.unlink(c, &p("/etc/hosts")).unwrap();
    d.chmod(c, &p("/usr/lib/x"), 0o700).unwrap();
    write(d, c, "/etc/passwd", b"short");
    d.mkdir(c, &p(dir), 0o755).unwrap();
    d.symlink(c, "../etc/passwd", &p(&format!("{dir}/link")))
        .unwrap();
    (ops::walk(d, c, &p("/")).unwrap(), d.changes(c).unwrap())
}

/// After a reopen, the child shows what [`change_child`] left (`before`, and each change
/// read back).
pub fn assert_changed_child<D: LayerDriver>(d: &mut D, c: &LayerId, dir: &str, before: &Shown) {
    assert_eq!(ops::walk(d, c, &p("/")).unwrap(), before.0);
    assert_eq!(d.changes(c).unwrap(), before.1);
    assert_eq!(d.stat(c, &p("/usr/lib/x")).unwrap().mode, 0o700);
    assert_eq!(ops::read_all(d, c, &p("/etc/passwd")).unwrap(), b"short");
    assert_eq!(
        d.stat(c, &p(&format!("{dir}/link")))
            .unwrap()
            .target
            .as_deref(),
        Some("../etc/passwd")
    );
}

/// The store at `root` opened read-only: the child still hides /etc/hosts, and a write
/// is refused as locked.
pub fn assert_read_only_reopen<F: Flavor>(root: &Path, c: &LayerId) {
    let mut r = Driver::<F>::open(root, Access::Read).unwrap();
    assert!(r.stat(c, &p("/etc/hosts")).is_err());
    assert_eq!(
        r.write(c, &p("/etc/passwd"), 0, b"x").unwrap_err().kind(),
        ErrorKind::Locked
    );
}
