//! The durable undo log of an apply: a "killed" apply (the log on disk, the journal not
//! ended) is undone by the next writer's open, and a recovery cut short at any call is
//! recovered again by the open after it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use crate::front::Layers;
use crate::store::{Options, Store};
use crate::testkit::{id, p};
use crate::vfs::Vfs;
use crate::Access;
use layerlab_core::{FileKind, Meter};
use std::cell::Cell;
use std::process::Command;

/// Hands every call to the store; changes fail with EIO once `left` of them were made.
struct FailAfter<'a> {
    inner: &'a mut Layers<Vfs>,
    left: Cell<usize>,
}

impl FailAfter<'_> {
    fn change<T>(&mut self, f: impl FnOnce(&mut Layers<Vfs>) -> Result<T>) -> Result<T> {
        match self.left.get() {
            0 => Err(Error::io("/injected", std::io::Error::from_raw_os_error(5))),
            n => {
                self.left.set(n - 1);
                f(self.inner)
            }
        }
    }
}

macro_rules! peek {
    ($s:ident, $d:ident => $call:expr) => {{
        let $d = &*$s.inner;
        $call
    }};
}
macro_rules! query {
    ($s:ident, $d:ident => $call:expr) => {{
        let $d = &mut *$s.inner;
        $call
    }};
}
macro_rules! change {
    ($s:ident, $d:ident => $call:expr) => {
        $s.change(|$d| $call)
    };
}

layerlab_core::forward_layer_driver!(FailAfter<'_>, peek, query, change, {
    fn meter(&self) -> &Meter {
        self.inner.meter()
    }

    fn meter_mut(&mut self) -> &mut Meter {
        self.inner.meter_mut()
    }
});

/// Every entry of the layer: kind, mode, owner, content, xattrs, a non-directory's mtime.
fn view(d: &mut Layers<Vfs>, l: &LayerId) -> Vec<String> {
    let mut out = Vec::new();
    for (path, kind) in ops::walk(d, l, &LayerPath::root()).unwrap() {
        let md = d.stat(l, &path).unwrap();
        let content = match kind {
            FileKind::File => ops::read_all(d, l, &path).unwrap(),
            _ => Vec::new(),
        };
        let mtime = (kind != FileKind::Dir).then_some((md.mtime, md.mtime_nsec));
        out.push(format!(
            "{path} {kind:?} {:o} {}:{} {content:?} {:?} {mtime:?}",
            md.mode,
            md.uid,
            md.gid,
            ops::xattrs(d, l, &path).unwrap()
        ));
    }
    out
}

fn copy(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_killed_apply_is_undone_and_a_cut_recovery_is_recovered_again() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let l = id("l");
    let before = {
        let mut d = Layers::<Vfs>::init(&root, Options::default()).unwrap();
        d.create_layer(&l, None).unwrap();
        ops::write_file(&mut d, &l, &p("/a"), b"alpha", 0o644).unwrap();
        d.set_xattr(&l, &p("/a"), "user.k", b"v").unwrap();
        d.set_mtime(&l, &p("/a"), 900_000_000, 5).unwrap();
        d.mkdir(&l, &p("/d"), 0o755).unwrap();
        ops::write_file(&mut d, &l, &p("/d/x"), b"x content", 0o600).unwrap();
        d.symlink(&l, "x", &p("/d/y")).unwrap();
        view(&mut d, &l)
    };
    {
        // an apply killed part way: every change recorded first, the journal not ended
        let mut d = Layers::<Vfs>::open(&root, Access::Write).unwrap();
        let mut log = begin_apply(&root, &l).unwrap();
        log.save_subtree(&mut d, &l, &p("/d")).unwrap();
        ops::remove_all(&mut d, &l, &p("/d")).unwrap();
        log.push(Undo::Remove { path: p("/d") }).unwrap();
        d.mkdir(&l, &p("/d"), 0o700).unwrap();
        // covered by the removal of /d: logs nothing
        log.push(Undo::Remove { path: p("/d/new") }).unwrap();
        ops::write_file(&mut d, &l, &p("/d/new"), b"new", 0o644).unwrap();
        let md = d.stat(&l, &p("/a")).unwrap();
        log.push(Undo::Attrs {
            path: p("/a"),
            mode: md.mode,
            uid: md.uid,
            gid: md.gid,
        })
        .unwrap();
        d.chmod(&l, &p("/a"), 0o600).unwrap();
        d.chown(&l, &p("/a"), 7, 8).unwrap();
        log.push(Undo::Xattrs {
            path: p("/a"),
            xattrs: ops::xattrs(&mut d, &l, &p("/a")).unwrap(),
        })
        .unwrap();
        d.set_xattr(&l, &p("/a"), "user.k", b"changed").unwrap();
        log.push(Undo::Mtime {
            path: p("/a"),
            secs: md.mtime,
            nsec: md.mtime_nsec,
        })
        .unwrap();
        d.set_mtime(&l, &p("/a"), 1, 0).unwrap();
        // a record written but its change not made yet, then a torn one
        log.push(Undo::Remove { path: p("/z") }).unwrap();
        let mut records = std::fs::OpenOptions::new()
            .append(true)
            .open(undo::dir(&root).join("records"))
            .unwrap();
        std::io::Write::write_all(&mut records, b"{\"undo\":\"remo").unwrap();
        assert_ne!(view(&mut d, &l), before);
    }
    let crashed = tmp.path().join("crashed");
    copy(&root, &crashed);
    for m in 0.. {
        copy(&crashed, &root);
        let finished = {
            let mut d =
                Layers::<Vfs>::over(Store::open(&root, "vfs", Access::Write).unwrap()).unwrap();
            let mut cut = FailAfter {
                inner: &mut d,
                left: Cell::new(m),
            };
            recover(&mut cut, &root).is_ok()
        };
        let mut d = Layers::<Vfs>::open(&root, Access::Write).unwrap();
        assert_eq!(view(&mut d, &l), before, "recovery cut after {m} changes");
        assert!(!file(&root).exists());
        assert!(!undo::dir(&root).exists());
        if finished {
            assert!(m > 5, "the recovery made {m} changes");
            break;
        }
    }
}

/// A `Cut` left by a kill: the next open cuts a file whose first bytes are the new
/// content (the write happened, the cut did not), and leaves a file that does not have
/// them (the write had not happened) as it was; either way the journal is gone.
#[test]
fn a_killed_shorter_replace_is_completed_only_where_its_content_is_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let l = id("l");
    {
        let mut d = Layers::<Vfs>::init(&root, Options::default()).unwrap();
        d.create_layer(&l, None).unwrap();
        ops::write_file(&mut d, &l, &p("/written"), b"NEW old tail", 0o644).unwrap();
        ops::write_file(&mut d, &l, &p("/untouched"), b"old content", 0o644).unwrap();
    }
    for (path, after) in [
        ("/written", b"NEW".as_slice()),
        ("/untouched", b"old content".as_slice()),
    ] {
        let intent = Intent::Cut {
            layer: l.clone(),
            path: p(path),
            len: 3,
            crc: cut::checksum(b"NEW"),
        };
        begin(&root, &intent).unwrap();
        let mut d = Layers::<Vfs>::open(&root, Access::Write).unwrap();
        assert_eq!(
            ops::read_all(&mut d, &l, &p(path)).unwrap(),
            after,
            "{path}"
        );
        assert!(!file(&root).exists(), "{path}: the journal is gone");
    }
}
