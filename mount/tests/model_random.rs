//! The random operation sequences of the model property test (drivers/tests/common/
//! random_ops.rs, reused as is), run through the mount with std::fs and rustix calls,
//! must agree with `ReferenceModel` built from the driver's semantics: the same results,
//! the same errno, the same view afterwards.
//!
//! Where the kernel answers a call before the filesystem sees it, or a program cannot
//! express the trait's operation, the operation is left out of the sequence (and counted):
//! data operations on symlinks and device nodes (open follows links; fifos block), chmod
//! of a symlink (Linux has no lchmod), a symlink with an empty target (ENOENT from the
//! kernel), xattr names outside a namespace (EOPNOTSUPP from the kernel), `user.*` xattrs
//! on symlinks and nodes (the kernel answers), chown of a setuid/setgid file (Linux clears
//! those bits on chown, which the model does not model), mknod (made through syscalls in
//! `syscalls.rs`), calls that make, remove or rename `/` (the mount point: the kernel
//! answers), a rename onto an ancestor of its source (the kernel's ENOTEMPTY), and paths
//! through a symlinked directory (the kernel follows it, the trait never does); when a
//! path is missing, or both paths of a rename fail their lookups, the kernel's ENOENT or
//! ENOTDIR stands for the rules' first error;
//! mkdir's mode is given as the kernel passes it (no setuid/setgid).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../drivers/tests/common/random_ops.rs"]
#[allow(dead_code)]
mod random_ops;

use common::{fuse_or_skip, id, mount};
use layerlab_core::model::ReferenceModel;
use layerlab_core::{ops, DirEntry, FileKind, LayerDriver, LayerPath};
use layerlab_drivers::{hostfs, registry, Access, Options};
use layerlab_testkit::drivers;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use random_ops::{apply, layer_op, Op, Outcome, Sel};
use rustix::fs::{self as fs, AtFlags, Timespec, Timestamps, XattrFlags, CWD};
use std::io::{Seek, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

type Got = Result<Outcome, i32>;

fn host(m: &Path, p: &LayerPath) -> PathBuf {
    m.join(p.relative())
}

fn io<T>(r: std::io::Result<T>) -> Result<T, i32> {
    r.map_err(|e| e.raw_os_error().unwrap_or(-1))
}

fn rx<T>(r: rustix::io::Result<T>) -> Result<T, i32> {
    r.map_err(|e| e.raw_os_error())
}

/// What the mount says of an entry, as the trait's metadata (provenance and non-marker
/// times left out, as `apply` leaves them out).
fn meta(m: &Path, p: &LayerPath) -> Result<Outcome, i32> {
    let md = io(std::fs::symlink_metadata(host(m, p)))?;
    // a socket (which no layer holds) reads as a file
    let kind = hostfs::kind_of(&md).unwrap_or(FileKind::File);
    let target = if kind == FileKind::Symlink {
        Some(io(std::fs::read_link(host(m, p)))?.display().to_string())
    } else {
        None
    };
    let marker = random_ops::is_marker_time(md.mtime());
    Ok(Outcome::Meta(layerlab_core::Metadata {
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        size: md.size(),
        nlink: md.nlink() as u32,
        target,
        rdev: md.rdev(),
        mtime: if marker { md.mtime() } else { 0 },
        mtime_nsec: if marker { md.mtime_nsec() as u32 } else { 0 },
        layer: id("x"),
    }))
}

fn open_w(m: &Path, p: &LayerPath, append: bool) -> Result<std::fs::File, i32> {
    io(std::fs::OpenOptions::new()
        .write(true)
        .append(append)
        .open(host(m, p)))
}

fn remove_all(m: &Path, p: &LayerPath) -> Result<(), i32> {
    let h = host(m, p);
    let md = io(std::fs::symlink_metadata(&h))?;
    if !md.is_dir() {
        return io(std::fs::remove_file(&h));
    }
    if !p.is_root() {
        return io(std::fs::remove_dir_all(&h));
    }
    for e in io(std::fs::read_dir(&h))? {
        let name = io(e)?.file_name().into_string().map_err(|_| -1)?;
        remove_all(m, &p.join(&name).map_err(|_| -1)?)?;
    }
    Ok(())
}

/// One operation through the mount.
fn through_mount(m: &Path, op: &Op) -> Got {
    use Outcome::Done;
    let ok = |r: Result<(), i32>| r.map(|()| Done);
    match op {
        Op::Write(p, o, data) => ok(open_w(m, p, false).and_then(|mut f| {
            io(f.seek(std::io::SeekFrom::Start(*o)))?;
            io(f.write_all(data))
        })),
        Op::Append(p, data) => ok(open_w(m, p, true).and_then(|mut f| io(f.write_all(data)))),
        Op::Truncate(p, s) => ok(open_w(m, p, false).and_then(|f| io(f.set_len(*s)))),
        Op::WriteFile(p, data) => {
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o640)
                .open(host(m, p));
            let f = match created {
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::EXIST.raw_os_error()) => {
                    io(std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(host(m, p)))
                }
                other => io(other),
            };
            ok(f.and_then(|mut f| io(f.write_all(data))))
        }
        Op::Create(p, mode) => ok(io(std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(*mode & 0o7777)
            .open(host(m, p)))
        .map(drop)),
        Op::Mkdir(p, mode) => ok(rx(fs::mkdir(host(m, p), fs::Mode::from_raw_mode(*mode)))),
        Op::Unlink(p) => ok(io(std::fs::remove_file(host(m, p)))),
        Op::Rmdir(p) => ok(io(std::fs::remove_dir(host(m, p)))),
        Op::RemoveAll(p) => ok(remove_all(m, p)),
        Op::Rename(a, b) => ok(io(std::fs::rename(host(m, a), host(m, b)))),
        Op::Chmod(p, mode) => ok(io(std::fs::set_permissions(
            host(m, p),
            PermissionsExt::from_mode(*mode & 0o7777),
        ))),
        Op::Chown(p, u, g) => ok(io(std::os::unix::fs::lchown(
            host(m, p),
            Some(*u),
            Some(*g),
        ))),
        Op::Symlink(t, p) => ok(io(std::os::unix::fs::symlink(t, host(m, p)))),
        Op::Hardlink(a, b) => ok(io(std::fs::hard_link(host(m, a), host(m, b)))),
        Op::Read(p, o, n) => {
            // pread(2) until `n` bytes or the end; one call even for 0 bytes
            let f = io(std::fs::File::open(host(m, p)))?;
            let mut buf = vec![0u8; *n as usize];
            let mut got = 0;
            loop {
                let k = io(f.read_at(&mut buf[got..], o + got as u64))?;
                got += k;
                if k == 0 || got == buf.len() {
                    break;
                }
            }
            buf.truncate(got);
            Ok(Outcome::Bytes(buf))
        }
        Op::Stat(p) => meta(m, p),
        Op::Readdir(p) => {
            let mut out = Vec::new();
            for e in io(std::fs::read_dir(host(m, p)))? {
                let e = io(e)?;
                let name = e.file_name().into_string().map_err(|_| -1)?;
                let Outcome::Meta(md) = meta(m, &p.join(&name).map_err(|_| -1)?)? else {
                    return Err(-1);
                };
                out.push(DirEntry {
                    name,
                    kind: md.kind,
                });
            }
            out.sort();
            Ok(Outcome::List(out))
        }
        Op::SetMtime(p, s, n) => {
            let t = Timespec {
                tv_sec: *s,
                tv_nsec: i64::from(*n),
            };
            let times = Timestamps {
                last_access: t,
                last_modification: t,
            };
            ok(rx(fs::utimensat(
                CWD,
                host(m, p),
                &times,
                AtFlags::SYMLINK_NOFOLLOW,
            )))
        }
        Op::SetXattr(p, n, v) => ok(rx(fs::lsetxattr(host(m, p), *n, v, XattrFlags::empty()))),
        Op::RemoveXattr(p, n) => ok(rx(fs::lremovexattr(host(m, p), *n))),
        Op::GetXattr(p, n) => {
            let mut buf = vec![0u8; 1 << 16];
            let k = rx(fs::lgetxattr(host(m, p), *n, &mut buf))?;
            buf.truncate(k);
            Ok(Outcome::Bytes(buf))
        }
        Op::ListXattrs(p) => {
            let mut buf = vec![0u8; 1 << 16];
            let k = rx(fs::llistxattr(host(m, p), &mut buf))?;
            let names = buf[..k]
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            Ok(Outcome::Names(names))
        }
        Op::NewLayer | Op::Mknod(..) => Ok(Done),
    }
}

/// Whether a program can make this call and the filesystem answers it (see the module
/// documentation); `kind` is what the model has at the operation's first path.
fn expressible(op: &Op, kind: Option<FileKind>) -> bool {
    let data_target = matches!(kind, Some(k) if k == FileKind::Symlink || k.is_node());
    let user_on_other = |n: &str| {
        n.starts_with("user.") && !matches!(kind, None | Some(FileKind::File | FileKind::Dir))
    };
    match op {
        Op::NewLayer | Op::Mknod(..) | Op::Hardlink(..) => false,
        Op::WriteFile(p, _) => !data_target && !p.is_root(),
        Op::Write(..) | Op::Append(..) | Op::Truncate(..) | Op::Read(..) => !data_target,
        Op::Readdir(_) | Op::Chmod(..) => kind != Some(FileKind::Symlink),
        Op::Symlink(t, p) => !t.is_empty() && !p.is_root(),
        // the view's root is the mount point: the kernel answers for it (EXDEV, EBUSY)
        // and renaming onto an ancestor of the source is the kernel's ENOTEMPTY
        // (`lock_rename`'s trap) before the filesystem sees it
        Op::Rename(a, b) => !a.is_root() && !b.is_root() && !b.is_ancestor_of(a),
        Op::Rmdir(p) | Op::Unlink(p) | Op::Create(p, _) | Op::Mkdir(p, _) => !p.is_root(),
        Op::SetXattr(_, n, _) | Op::RemoveXattr(_, n) | Op::GetXattr(_, n) => {
            n.contains('.') && !user_on_other(n)
        }
        _ => true,
    }
}

/// Applies the sequence to the model and through the mount; the first disagreement.
fn run(driver: &str, ops: &[Op<Sel>], compared: &std::cell::Cell<usize>) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mut d = registry::init(driver, &store, Options::new()).unwrap();
    let mut model = ReferenceModel::new(d.semantics());
    let (base, app) = (id("base"), id("app"));
    for x in [&mut d as &mut dyn LayerDriver, &mut model] {
        x.create_layer(&base, None).unwrap();
        x.commit(&base).unwrap();
        x.create_layer(&app, Some(&base)).unwrap();
    }
    drop(d);
    let m = mount(&store, "app", false);
    let mut log = Vec::new();
    for op in ops {
        let entries: Vec<LayerPath> = ops::walk(&mut model, &app, &LayerPath::root())
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        let mut op = op.map(|s| s.resolve(&entries));
        if let Op::Mkdir(_, mode) = &mut op {
            *mode &= 0o1777;
        }
        let first = first_path(&op);
        let st = first.and_then(|p| model.stat(&app, p).ok());
        if let (Op::Chown(..), Some(s)) = (&op, &st) {
            if s.kind != FileKind::Dir && s.mode & 0o6000 != 0 {
                continue;
            }
        }
        if !expressible(&op, st.as_ref().map(|s| s.kind)) || through_symlink(&mut model, &app, &op)
        {
            continue;
        }
        let missing = st.is_none() || parent_missing(&mut model, &app, &op);
        compared.set(compared.get() + 1);
        let want = apply(&mut model, &app, &op);
        let got = through_mount(m.path(), &op);
        log.push(format!("{op:?}"));
        let agree = match (&want, &got) {
            (Ok(Outcome::Meta(a)), Ok(Outcome::Meta(b))) => {
                let mut b = b.clone();
                b.layer = a.layer.clone();
                if a.kind == FileKind::Dir {
                    b.size = a.size;
                    b.nlink = a.nlink;
                }
                *a == b
            }
            (Ok(a), Ok(b)) => a == b,
            (Err(e), Err(n)) => {
                let lookup = [
                    rustix::io::Errno::NOENT.raw_os_error(),
                    rustix::io::Errno::NOTDIR.raw_os_error(),
                ];
                let code = layerlab_mount::errno::errno(e).code();
                code == *n
                    || (two_paths(&op) && lookup.contains(n) && lookup.contains(&code))
                    // the kernel looks the path up before the call's own checks
                    || (missing && lookup.contains(n))
            }
            _ => false,
        };
        if !agree {
            m.finish();
            return Err(format!(
                "{driver}: after {log:#?}\nmodel {}, mount {got:?}",
                random_ops::show(&want)
            ));
        }
    }
    m.finish();
    // and the driver's own view, reopened, is the model's
    let mut d = registry::open(&store, Access::Read).unwrap();
    let view = |x: &mut dyn LayerDriver| -> Vec<String> {
        ops::walk(x, &app, &LayerPath::root())
            .unwrap()
            .into_iter()
            .map(|(p, k)| {
                let s = x.stat(&app, &p).unwrap();
                format!("{p} {k:?} {:o} {}:{} {}", s.mode, s.uid, s.gid, s.size)
            })
            .collect()
    };
    let (a, b) = (view(&mut model), view(&mut d));
    if a != b {
        return Err(format!(
            "{driver}: views differ after {log:#?}\nmodel {a:#?}\ndriver {b:#?}"
        ));
    }
    Ok(())
}

/// Whether a path of the call has a symlink among its parents: the kernel follows it, the
/// trait never does.
fn through_symlink(model: &mut ReferenceModel, l: &layerlab_core::LayerId, op: &Op) -> bool {
    let paths = std::cell::RefCell::new(Vec::new());
    op.map(|p: &LayerPath| paths.borrow_mut().push(p.clone()));
    let paths = paths.into_inner();
    paths.iter().any(|p| {
        p.ancestors()
            .iter()
            .any(|a| model.stat(l, a).is_ok_and(|m| m.kind == FileKind::Symlink))
    })
}

/// Whether the parent of a path of the call is not a directory of the view: the kernel's
/// lookup fails (ENOENT, ENOTDIR) before the filesystem is asked.
fn parent_missing(model: &mut ReferenceModel, l: &layerlab_core::LayerId, op: &Op) -> bool {
    let paths = std::cell::RefCell::new(Vec::new());
    op.map(|p: &LayerPath| paths.borrow_mut().push(p.clone()));
    let paths = paths.into_inner();
    paths.iter().filter_map(|p| p.parent()).any(|parent| {
        !model
            .stat(l, &parent)
            .is_ok_and(|m| m.kind == FileKind::Dir)
    })
}

/// Calls naming two paths: the kernel resolves both parents before the filesystem is
/// asked, the rules check the source first; when both fail on a lookup (ENOENT, ENOTDIR)
/// either may be reported.
fn two_paths(op: &Op) -> bool {
    matches!(op, Op::Rename(..) | Op::Hardlink(..))
}

fn first_path(op: &Op) -> Option<&LayerPath> {
    match op {
        Op::NewLayer => None,
        Op::Symlink(_, p) => Some(p),
        Op::Write(p, ..)
        | Op::Append(p, _)
        | Op::Truncate(p, _)
        | Op::WriteFile(p, _)
        | Op::Create(p, _)
        | Op::Mkdir(p, _)
        | Op::Unlink(p)
        | Op::Rmdir(p)
        | Op::RemoveAll(p)
        | Op::Rename(p, _)
        | Op::Chmod(p, _)
        | Op::Chown(p, ..)
        | Op::Hardlink(p, _)
        | Op::Read(p, ..)
        | Op::Stat(p)
        | Op::Readdir(p)
        | Op::SetMtime(p, ..)
        | Op::SetXattr(p, ..)
        | Op::RemoveXattr(p, _)
        | Op::GetXattr(p, _)
        | Op::ListXattrs(p)
        | Op::Mknod(p, ..) => Some(p),
    }
}

#[test]
fn random_sequences_through_the_mount_agree_with_the_model() {
    if !fuse_or_skip("random_sequences_through_the_mount") {
        return;
    }
    // the modes the sequences ask for are the modes the files get
    rustix::process::umask(fs::Mode::empty());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    for driver in drivers("random_sequences_through_the_mount") {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = prop::collection::vec(layer_op(), 1..40);
        let compared = std::cell::Cell::new(0);
        let result = runner.run(&strategy, |ops| {
            run(driver, &ops, &compared).map_err(proptest::test_runner::TestCaseError::fail)
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        // most operations are expressible: a sequence that compared nothing proves nothing
        assert!(
            compared.get() >= cases as usize * 5,
            "{driver}: only {} operations compared",
            compared.get()
        );
    }
}
