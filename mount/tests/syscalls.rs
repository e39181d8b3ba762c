//! System calls on a mount of every driver, one test per family, with their error cases.
//! EACCES is checked as an unprivileged uid (the kernel checks permissions,
//! default_permissions); EXDEV where the driver's `Semantics` says a lower directory cannot
//! be renamed; ENOSPC on a small pool of each pool driver.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use layerlab_core::{LowerDirRename, Semantics};
use layerlab_testkit::drivers;
use rustix::fs::{self as fs, AtFlags, Mode, RenameFlags, Timespec, Timestamps, XattrFlags, CWD};
use rustix::io::Errno;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The drivers a mount test runs on here (a SKIP line for each other one): none, after a
/// SKIP line, without FUSE.
fn mount_drivers(test: &str) -> Vec<&'static str> {
    if fuse_or_skip(test) {
        drivers(test)
    } else {
        Vec::new()
    }
}

/// Runs `check` on a mount of the active layer `app` over the common image, on every
/// driver here.
fn on_every_driver(test: &str, check: impl Fn(&Path, &str, Semantics)) {
    for driver in mount_drivers(test) {
        let (tmp, mut d) = store(driver);
        image(&mut d);
        let sem = layerlab_core::LayerDriver::semantics(&d);
        drop(d);
        let m = mount(&tmp.path().join("store"), "app", false);
        check(m.path(), driver, sem);
        m.finish();
    }
}

/// `cap_net_raw+ep` as `setcap` writes `security.capability` (vfs_cap_data, revision 2).
const CAP_NET_RAW: &[u8] = &[
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

fn err<T: std::fmt::Debug>(r: std::io::Result<T>) -> Errno {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => Errno::from_io_error(&e).unwrap_or_else(|| panic!("no errno in {e}")),
    }
}

fn rerr<T: std::fmt::Debug>(r: rustix::io::Result<T>) -> Errno {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

/// `mknod(2)` of `kind` at `path` with permission bits `mode` and device number `dev`.
fn mknod(path: &Path, kind: fs::FileType, mode: u32, dev: u64) -> rustix::io::Result<()> {
    fs::mknodat(CWD, path, kind, Mode::from_raw_mode(mode), dev)
}

fn at(dir: &Path, rel: &str) -> PathBuf {
    dir.join(rel)
}

/// Each `(path, errno)` of `cases`: `op` on `path` in the mount fails with `errno`.
fn refused(
    m: &Path,
    d: &str,
    what: &str,
    op: fn(PathBuf) -> std::io::Result<()>,
    cases: &[(&str, Errno)],
) {
    for (path, errno) in cases {
        assert_eq!(err(op(at(m, path))), *errno, "{d}: {what} {path}");
    }
}

/// Each `(from, to, errno)` of `cases`: `op` from `from` to `to` in the mount fails with
/// `errno`.
fn refused_pairs(
    m: &Path,
    d: &str,
    what: &str,
    op: fn(PathBuf, PathBuf) -> std::io::Result<()>,
    cases: &[(&str, &str, Errno)],
) {
    for (from, to, errno) in cases {
        let got = err(op(at(m, from), at(m, to)));
        assert_eq!(got, *errno, "{d}: {what} {from} {to}");
    }
}

#[test]
fn open_read_write() {
    on_every_driver("open_read_write", |m, d, _| {
        let f = at(m, "etc/new");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"abc", "{d}");
        let excl = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&f);
        assert_eq!(err(excl), Errno::EXIST, "{d}");
        assert_eq!(err(std::fs::read(at(m, "nope"))), Errno::NOENT, "{d}");
        assert_eq!(
            err(std::fs::write(at(m, "nope/x"), b"")),
            Errno::NOENT,
            "{d}"
        );
        assert_eq!(
            err(std::fs::write(at(m, "etc/motd/x"), b"")),
            Errno::NOTDIR,
            "{d}"
        );
        let w = std::fs::OpenOptions::new().write(true).open(at(m, "etc"));
        assert_eq!(err(w), Errno::ISDIR, "{d}");
        let long = "n".repeat(256);
        assert_eq!(
            err(std::fs::write(at(m, &long), b"")),
            Errno::NAMETOOLONG,
            "{d}"
        );
        std::os::unix::fs::symlink("loop2", at(m, "loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", at(m, "loop2")).unwrap();
        assert_eq!(err(std::fs::read(at(m, "loop1"))), Errno::LOOP, "{d}");
        // append to a lower file (copy-up where the driver copies up), O_TRUNC
        let mut a = std::fs::OpenOptions::new()
            .append(true)
            .open(at(m, "etc/motd"))
            .unwrap();
        std::io::Write::write_all(&mut a, b"more\n").unwrap();
        drop(a);
        assert_eq!(std::fs::read(at(m, "etc/motd")).unwrap(), b"hello\nmore\n");
        let big = std::fs::read(at(m, "data/big")).unwrap();
        assert_eq!(big, vec![7u8; 200_000], "{d}");
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(at(m, "data/big"))
            .unwrap();
        assert_eq!(
            std::fs::metadata(at(m, "data/big")).unwrap().len(),
            0,
            "{d}"
        );
    });
}

#[test]
fn mkdir_rmdir_unlink() {
    on_every_driver("mkdir_rmdir_unlink", |m, d, _| {
        std::fs::DirBuilder::new()
            .mode(0o750)
            .create(at(m, "newdir"))
            .unwrap();
        let md = std::fs::metadata(at(m, "newdir")).unwrap();
        assert!(md.is_dir());
        assert_eq!(md.permissions().mode() & 0o7777, 0o750 & !umask(), "{d}");
        let cases = [("newdir", Errno::EXIST), ("no/dir", Errno::NOENT)];
        refused(m, d, "mkdir", std::fs::create_dir, &cases);
        let cases = [
            ("etc", Errno::NOTEMPTY),
            ("etc/motd", Errno::NOTDIR),
            ("gone", Errno::NOENT),
        ];
        refused(m, d, "rmdir", std::fs::remove_dir, &cases);
        assert_eq!(err(std::fs::remove_file(at(m, "etc"))), Errno::ISDIR, "{d}");
        assert_eq!(
            err(std::fs::remove_file(at(m, "gone"))),
            Errno::NOENT,
            "{d}"
        );
        std::fs::remove_dir(at(m, "newdir")).unwrap();
        std::fs::remove_file(at(m, "etc/motd")).unwrap();
        assert!(
            !at(m, "etc/motd").exists(),
            "{d}: a lower file is gone from the view"
        );
        std::fs::remove_file(at(m, "usr/bin/tool")).unwrap();
        std::fs::remove_dir(at(m, "usr/bin")).unwrap();
        assert_eq!(
            std::fs::read_dir(at(m, "usr")).unwrap().count(),
            0,
            "{d}: a removed lower directory stays hidden"
        );
    });
}

fn umask() -> u32 {
    // the test process's umask, read without changing it for long
    let old = rustix::process::umask(Mode::from_raw_mode(0o022));
    rustix::process::umask(old);
    old.bits()
}

#[test]
fn rename() {
    on_every_driver("rename", |m, d, sem| {
        std::fs::write(at(m, "a"), b"a").unwrap();
        std::fs::write(at(m, "b"), b"b").unwrap();
        std::fs::create_dir(at(m, "dir")).unwrap();
        std::fs::create_dir(at(m, "full")).unwrap();
        std::fs::write(at(m, "full/x"), b"").unwrap();
        let ino = std::fs::metadata(at(m, "a")).unwrap().ino();
        std::fs::rename(at(m, "a"), at(m, "b")).unwrap();
        assert_eq!(std::fs::read(at(m, "b")).unwrap(), b"a", "{d}");
        assert_eq!(
            std::fs::metadata(at(m, "b")).unwrap().ino(),
            ino,
            "{d}: ino moves"
        );
        let cases = [
            ("b", "dir", Errno::ISDIR),
            ("dir", "b", Errno::NOTDIR),
            ("dir", "full", Errno::NOTEMPTY),
            ("dir", "dir/in", Errno::INVAL),
            ("gone", "x", Errno::NOENT),
        ];
        refused_pairs(m, d, "rename", std::fs::rename, &cases);
        let noreplace = fs::renameat_with(
            CWD,
            at(m, "b"),
            CWD,
            at(m, "etc/motd"),
            RenameFlags::NOREPLACE,
        );
        assert_eq!(rerr(noreplace), Errno::EXIST, "{d}");
        fs::renameat_with(CWD, at(m, "b"), CWD, at(m, "c"), RenameFlags::NOREPLACE).unwrap();
        let exchange = fs::renameat_with(
            CWD,
            at(m, "c"),
            CWD,
            at(m, "etc/motd"),
            RenameFlags::EXCHANGE,
        );
        assert_eq!(
            rerr(exchange),
            Errno::INVAL,
            "{d}: the trait has no exchange"
        );
        std::fs::remove_file(at(m, "full/x")).unwrap();
        std::fs::rename(at(m, "dir"), at(m, "full")).unwrap();
        let lower = std::fs::rename(at(m, "usr"), at(m, "usr2"));
        match sem.lower_dir_rename {
            LowerDirRename::Moves => {
                lower.unwrap();
                assert!(at(m, "usr2/bin/tool").exists(), "{d}");
            }
            LowerDirRename::CrossDevice | LowerDirRename::CrossDeviceUnlessEmpty => {
                assert_eq!(
                    err(lower),
                    Errno::XDEV,
                    "{d}: lower directory with children"
                )
            }
        }
    });
}

#[test]
fn link_symlink_readlink() {
    on_every_driver("link_symlink_readlink", |m, d, _| {
        std::fs::write(at(m, "f"), b"x").unwrap();
        std::fs::hard_link(at(m, "f"), at(m, "g")).unwrap();
        let (f, g) = (
            std::fs::metadata(at(m, "f")).unwrap(),
            std::fs::metadata(at(m, "g")).unwrap(),
        );
        assert_eq!(f.ino(), g.ino(), "{d}: links share an inode");
        assert_eq!(g.nlink(), 2, "{d}");
        std::fs::write(at(m, "g"), b"both").unwrap();
        assert_eq!(std::fs::read(at(m, "f")).unwrap(), b"both", "{d}");
        let cases = [
            ("etc", "e2", Errno::PERM),
            ("f", "g", Errno::EXIST),
            ("no", "h", Errno::NOENT),
        ];
        refused_pairs(m, d, "link", std::fs::hard_link, &cases);
        std::os::unix::fs::symlink("../etc/motd", at(m, "s")).unwrap();
        assert_eq!(
            std::fs::read_link(at(m, "s")).unwrap(),
            Path::new("../etc/motd"),
            "{d}"
        );
        assert_eq!(
            std::fs::read_link(at(m, "etc/motd.link")).unwrap(),
            Path::new("motd")
        );
        let again = std::os::unix::fs::symlink("x", at(m, "s"));
        assert_eq!(err(again), Errno::EXIST, "{d}");
        assert_eq!(err(std::fs::read_link(at(m, "f"))), Errno::INVAL, "{d}");
        std::fs::remove_file(at(m, "f")).unwrap();
        assert_eq!(std::fs::metadata(at(m, "g")).unwrap().nlink(), 1, "{d}");
    });
}

#[test]
fn chmod_chown_truncate_utimens() {
    on_every_driver("chmod_chown_truncate_utimens", |m, d, _| {
        let tool = at(m, "usr/bin/tool");
        std::fs::set_permissions(&tool, PermissionsExt::from_mode(0o4711)).unwrap();
        assert_eq!(
            std::fs::metadata(&tool).unwrap().mode() & 0o7777,
            0o4711,
            "{d}"
        );
        std::os::unix::fs::chown(&tool, Some(1000), Some(100)).unwrap();
        let md = std::fs::metadata(&tool).unwrap();
        assert_eq!((md.uid(), md.gid()), (1000, 100), "{d}");
        std::os::unix::fs::lchown(at(m, "etc/motd.link"), Some(7), Some(8)).unwrap();
        let l = std::fs::symlink_metadata(at(m, "etc/motd.link")).unwrap();
        assert_eq!((l.uid(), l.gid()), (7, 8), "{d}: lchown changes the link");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(at(m, "etc/motd"))
            .unwrap();
        f.set_len(10_000).unwrap();
        drop(f);
        let data = std::fs::read(at(m, "etc/motd")).unwrap();
        assert_eq!(data.len(), 10_000, "{d}");
        assert_eq!(&data[..6], b"hello\n");
        assert!(
            data[6..].iter().all(|b| *b == 0),
            "{d}: extended with zeros"
        );
        let t = Timestamps {
            last_access: Timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: 1_234_567_890,
                tv_nsec: 123_456_789,
            },
        };
        fs::utimensat(CWD, at(m, "etc/motd"), &t, AtFlags::empty()).unwrap();
        let md = std::fs::metadata(at(m, "etc/motd")).unwrap();
        assert_eq!(
            (md.mtime(), md.mtime_nsec()),
            (1_234_567_890, 123_456_789),
            "{d}"
        );
        fs::utimensat(CWD, at(m, "etc/motd.link"), &t, AtFlags::SYMLINK_NOFOLLOW).unwrap();
        let l = std::fs::symlink_metadata(at(m, "etc/motd.link")).unwrap();
        assert_eq!(l.mtime(), 1_234_567_890, "{d}: the link's own time");
        let bad = Timestamps {
            last_access: t.last_access,
            last_modification: Timespec {
                tv_sec: 1,
                tv_nsec: 1_000_000_000,
            },
        };
        let r = fs::utimensat(CWD, at(m, "etc/motd"), &bad, AtFlags::empty());
        assert_eq!(rerr(r), Errno::INVAL, "{d}");
        let r = std::fs::OpenOptions::new().write(true).open(at(m, "etc"));
        assert_eq!(err(r), Errno::ISDIR, "{d}");
    });
}

#[test]
fn mknod_mkfifo() {
    on_every_driver("mknod_mkfifo", |m, d, _| {
        fs::mkfifoat(CWD, at(m, "fifo"), Mode::from_raw_mode(0o640)).unwrap();
        assert!(
            std::fs::metadata(at(m, "fifo"))
                .unwrap()
                .file_type()
                .is_fifo(),
            "{d}"
        );
        let dev = fs::makedev(1, 3);
        mknod(&at(m, "null"), fs::FileType::CharacterDevice, 0o666, dev).unwrap();
        let md = std::fs::metadata(at(m, "null")).unwrap();
        assert!(md.file_type().is_char_device(), "{d}");
        assert_eq!(md.rdev(), dev, "{d}");
        let bdev = fs::makedev(259, 70_000);
        mknod(&at(m, "disk"), fs::FileType::BlockDevice, 0o660, bdev).unwrap();
        assert_eq!(
            std::fs::metadata(at(m, "disk")).unwrap().rdev(),
            bdev,
            "{d}"
        );
        let again = fs::mkfifoat(CWD, at(m, "fifo"), Mode::from_raw_mode(0o640));
        assert_eq!(rerr(again), Errno::EXIST, "{d}");
        let sock = mknod(&at(m, "sock"), fs::FileType::Socket, 0o600, 0);
        assert_eq!(
            rerr(sock),
            Errno::OPNOTSUPP,
            "{d}: the trait has no sockets"
        );
    });
}

#[test]
fn xattrs() {
    on_every_driver("xattrs", |m, d, _| {
        let f = at(m, "etc/motd");
        fs::setxattr(&f, "user.color", b"blue", XattrFlags::empty()).unwrap();
        let mut buf = vec![0u8; 64];
        let n = fs::getxattr(&f, "user.color", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"blue", "{d}");
        assert_eq!(fs::getxattr_query(&f, "user.color").unwrap(), 4, "{d}");
        let mut small = [0u8; 2];
        assert_eq!(
            rerr(fs::getxattr(&f, "user.color", &mut small)),
            Errno::RANGE
        );
        let mut list = vec![0u8; 256];
        let n = fs::listxattr(&f, &mut list).unwrap();
        assert_eq!(&list[..n], b"user.color\0", "{d}");
        let create = fs::setxattr(&f, "user.color", b"red", XattrFlags::CREATE);
        assert_eq!(rerr(create), Errno::EXIST, "{d}");
        let replace = fs::setxattr(&f, "user.none", b"x", XattrFlags::REPLACE);
        assert_eq!(rerr(replace), Errno::NODATA, "{d}");
        assert_eq!(rerr(fs::getxattr(&f, "user.none", &mut buf)), Errno::NODATA);
        let acl = fs::getxattr(&f, "system.posix_acl_access", &mut buf);
        assert_eq!(rerr(acl), Errno::OPNOTSUPP, "{d}");
        fs::removexattr(&f, "user.color").unwrap();
        assert_eq!(
            rerr(fs::removexattr(&f, "user.color")),
            Errno::NODATA,
            "{d}"
        );
        // the absence of capabilities is remembered for the kernel's write checks, and
        // forgotten when they are set
        let caps = "security.capability";
        assert_eq!(rerr(fs::getxattr(&f, caps, &mut buf)), Errno::NODATA, "{d}");
        std::fs::write(&f, b"write after the capability check\n").unwrap();
        fs::setxattr(&f, caps, CAP_NET_RAW, XattrFlags::empty()).unwrap();
        let n = fs::getxattr(&f, caps, &mut buf).unwrap();
        assert_eq!(&buf[..n], CAP_NET_RAW, "{d}");
        fs::setxattr(&f, "trusted.t", b"", XattrFlags::empty()).unwrap();
        assert_eq!(fs::getxattr_query(&f, "trusted.t").unwrap(), 0, "{d}");
    });
}

#[test]
fn readdir_statfs_inodes() {
    on_every_driver("readdir_statfs_inodes", |m, d, _| {
        std::fs::create_dir(at(m, "many")).unwrap();
        let names: Vec<String> = (0..600)
            .map(|i| format!("file-with-a-long-name-{i:04}"))
            .collect();
        for n in &names {
            std::fs::write(at(m, &format!("many/{n}")), b"").unwrap();
        }
        let mut listed: Vec<String> = std::fs::read_dir(at(m, "many"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        listed.sort();
        assert_eq!(listed, names, "{d}: every entry once across readdir calls");
        let ino = std::fs::metadata(at(m, "etc/motd")).unwrap().ino();
        let via_dir = std::fs::read_dir(at(m, "etc"))
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.file_name() == "motd")
            .unwrap();
        assert_eq!(std::os::unix::fs::DirEntryExt::ino(&via_dir), ino, "{d}");
        assert_eq!(
            std::fs::metadata(at(m, "etc/motd")).unwrap().ino(),
            ino,
            "{d}"
        );
        let s = fs::statvfs(m).unwrap();
        assert_eq!(s.f_namemax, 255, "{d}");
        assert!(s.f_blocks > 0, "{d}");
    });
}

/// `statfs` is the pool of a pool driver (its size and free space as its usage reports
/// them), the host filesystem under the store for the file-based drivers.
#[test]
fn statfs_is_the_pool_or_the_host() {
    for driver in mount_drivers("statfs_is_the_pool_or_the_host") {
        let (tmp, mut d) = store(driver);
        image(&mut d);
        let details = layerlab_core::LayerDriver::usage(&mut d, &id("app"))
            .unwrap()
            .details;
        drop(d);
        let root = tmp.path().join("store");
        let m = mount(&root, "app", false);
        let s = fs::statvfs(m.path()).unwrap();
        m.finish();
        let bytes = |blocks: u64| blocks * s.f_frsize;
        match (details.get("pool_bytes"), details.get("pool_free_bytes")) {
            (Some(&total), Some(&free)) => {
                assert_eq!(bytes(s.f_blocks), total, "{driver}: pool size");
                assert_eq!(bytes(s.f_bavail), free, "{driver}: pool free");
                assert!(free < total, "{driver}: the image takes pool blocks");
            }
            _ => {
                let host = fs::statvfs(&root).unwrap();
                let host_bytes = host.f_blocks * host.f_frsize;
                assert_eq!(bytes(s.f_blocks), host_bytes / 4096 * 4096, "{driver}");
            }
        }
    }
}

#[test]
fn permissions_are_the_kernels_for_other_users() {
    on_every_driver("permissions_are_the_kernels", |m, d, _| {
        std::fs::write(at(m, "secret"), b"s").unwrap();
        std::fs::set_permissions(at(m, "secret"), PermissionsExt::from_mode(0o600)).unwrap();
        std::fs::write(at(m, "open"), b"o").unwrap();
        std::fs::set_permissions(at(m, "open"), PermissionsExt::from_mode(0o644)).unwrap();
        let as_nobody = |args: &[&str]| {
            std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .args(args)
                .output()
                .unwrap()
        };
        let secret = at(m, "secret");
        let r = as_nobody(&["cat", secret.to_str().unwrap()]);
        assert!(!r.status.success(), "{d}: nobody read a 0600 root file");
        assert!(
            String::from_utf8_lossy(&r.stderr).contains("Permission denied"),
            "{d}: EACCES expected: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let open = at(m, "open");
        let r = as_nobody(&["cat", open.to_str().unwrap()]);
        assert_eq!(r.stdout, b"o", "{d}: allow_other lets other users in");
        let touch = at(m, "etc/by-nobody");
        let r = as_nobody(&["touch", touch.to_str().unwrap()]);
        assert!(
            !r.status.success(),
            "{d}: nobody wrote into a 0755 root directory"
        );
    });
}

#[test]
fn committed_and_read_only_layers_refuse_changes() {
    for driver in mount_drivers("committed_and_read_only") {
        let (tmp, mut d) = store(driver);
        image(&mut d);
        drop(d);
        let store = tmp.path().join("store");
        for (layer, ro) in [("base", false), ("app", true)] {
            let m = mount(&store, layer, ro);
            let p = m.path();
            assert_eq!(std::fs::read(p.join("etc/motd")).unwrap(), b"hello\n");
            assert_eq!(
                err(std::fs::write(p.join("new"), b"")),
                Errno::ROFS,
                "{driver}"
            );
            assert_eq!(err(std::fs::write(p.join("etc/motd"), b"")), Errno::ROFS);
            assert_eq!(err(std::fs::remove_file(p.join("etc/motd"))), Errno::ROFS);
            assert_eq!(err(std::fs::create_dir(p.join("d"))), Errno::ROFS);
            m.finish();
        }
    }
}

/// A pool driver with a small pool: writing past its free space through the mount is
/// ENOSPC (never a short success, never another errno), the pool's free space stays as
/// `statfs` says, and removing the file gives the space back, so a new file fits; the
/// store reopens with the same view after the mount.
#[test]
fn a_full_pool_is_enospc_and_removing_gives_it_back() {
    for driver in mount_drivers("a_full_pool_is_enospc") {
        let pool: &[(&str, &str)] = match driver {
            "devicemapper" => &[("dm.loopdatasize", "8MiB"), ("dm.blocksize", "64KiB")],
            "btrfs" => &[("btrfs.poolsize", "8MiB")],
            "zfs" => &[("zfs.poolsize", "8MiB")],
            _ => continue, // the file drivers' space is the host's
        };
        let options = pool
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let mut d = layerlab_drivers::registry::init(driver, &root, options).unwrap();
        image(&mut d);
        drop(d);
        let m = mount(&root, "app", false);
        let fill = at(m.path(), "data/fill");
        let mut f = std::fs::File::create(&fill).unwrap();
        let chunk = vec![0x5au8; 256 << 10];
        let mut written = 0u64;
        let full = loop {
            match std::io::Write::write_all(&mut f, &chunk) {
                Ok(()) => written += chunk.len() as u64,
                Err(e) => break Errno::from_io_error(&e).unwrap(),
            }
            assert!(
                written < 64 << 20,
                "{driver}: 64 MiB written into an 8 MiB pool"
            );
        };
        drop(f);
        assert_eq!(full, Errno::NOSPC, "{driver}: a full pool");
        assert!(written > 0, "{driver}: nothing fitted");
        let before = fs::statvfs(m.path()).unwrap().f_bavail;
        std::fs::remove_file(&fill).unwrap();
        let after = fs::statvfs(m.path()).unwrap().f_bavail;
        assert!(
            after > before,
            "{driver}: removing freed nothing ({before} -> {after})"
        );
        std::fs::write(at(m.path(), "data/small"), vec![1u8; 300 << 10]).unwrap();
        assert_eq!(std::fs::read(at(m.path(), "etc/motd")).unwrap(), b"hello\n");
        m.finish();
        let mut d =
            layerlab_drivers::registry::open(&root, layerlab_drivers::Access::Read).unwrap();
        let app = id("app");
        assert!(layerlab_core::LayerDriver::stat(&mut d, &app, &p("/data/fill")).is_err());
        let small = layerlab_core::ops::read_all(&mut d, &app, &p("/data/small")).unwrap();
        assert_eq!(small, vec![1u8; 300 << 10], "{driver}: after reopen");
    }
}
