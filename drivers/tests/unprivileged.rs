//! The unprivileged path: a student's laptop runs layerlab without root. Owners a process
//! may not set are kept in the store's xattrs, overlay2 keeps opaque directories in
//! `user.overlay.opaque` (the kernel's userxattr convention), whiteouts are character
//! devices 0/0 (allowed unprivileged since Linux 5.8), and setuid bits survive writes.
//!
//! Run as root (CI), the test re-runs itself as the user `nobody` through `setpriv`; run
//! unprivileged, it checks directly. Where neither is possible it prints a visible skip line.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{done, id, ok, p, view};
use layerlab_core::model::ReferenceModel;
use layerlab_core::{ops, ErrorKind, FileKind, LayerDriver, Node};
use layerlab_drivers::{registry, Options, DRIVERS};
use std::process::Command;

const CHILD_ENV: &str = "LAYERLAB_UNPRIVILEGED_CHILD";
const NOBODY: u32 = 65534;

/// One scenario on both a driver and the model: owners, modes, whiteouts and opaque
/// directories without root.
fn scenario<D: LayerDriver>(d: &mut D, who: &str) {
    let (b, c) = (id("base"), id("child"));
    done(
        d,
        who,
        &b,
        &[
            ("create base", |d, l| d.create_layer(l, None)),
            ("mkdir", |d, l| ops::mkdir_p(d, l, &p("/etc/conf.d"), 0o755)),
            ("write a", |d, l| {
                ops::write_file(d, l, &p("/etc/conf.d/a"), b"a", 0o644)
            }),
            ("write passwd", |d, l| {
                ops::write_file(d, l, &p("/etc/passwd"), b"root", 0o644)
            }),
            ("mkdir bin", |d, l| ops::mkdir_p(d, l, &p("/bin"), 0o755)),
            ("write su", |d, l| {
                ops::write_file(d, l, &p("/bin/su"), b"su", 0o644)
            }),
            ("chown file", |d, l| {
                d.chown(l, &p("/etc/passwd"), 1000, 1000)
            }),
            ("chown dir", |d, l| d.chown(l, &p("/etc/conf.d"), 0, 42)),
            ("chmod setuid", |d, l| d.chmod(l, &p("/bin/su"), 0o4755)),
            ("append to setuid file", |d, l| {
                d.append(l, &p("/bin/su"), b"!")
            }),
        ],
    );
    // attributes without root: trusted.* and security.* kept in the store's own user
    // xattrs (a fifo, like a symlink, can keep no owner: it is checked apart below)
    ok(
        ops::write_file(d, &b, &p("/bin/ping"), b"ping", 0o755),
        who,
        "write ping",
    );
    ok(
        d.set_xattr(
            &b,
            &p("/bin/ping"),
            "security.capability",
            &[
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ),
        who,
        "setcap",
    );
    ok(
        d.set_xattr(&b, &p("/etc"), "trusted.t", b"v"),
        who,
        "trusted xattr",
    );
    ok(
        d.set_xattr(&b, &p("/etc"), "user.u", b"w"),
        who,
        "user xattr",
    );
    ok(
        d.set_mtime(&b, &p("/etc/conf.d/a"), 1_000_000_010, 1),
        who,
        "set_mtime",
    );
    ok(d.commit(&b), who, "commit");
    ok(d.create_layer(&c, Some(&b)), who, "create child");
    done(
        d,
        who,
        &c,
        &[
            ("trusted xattr in child", |d, l| {
                d.set_xattr(l, &p("/bin/ping"), "trusted.u", b"x")
            }),
            ("unlink lower file (whiteout)", |d, l| {
                d.unlink(l, &p("/etc/passwd"))
            }),
            ("rm -r lower dir", |d, l| {
                ops::remove_all(d, l, &p("/etc/conf.d"))
            }),
            ("mkdir again (opaque)", |d, l| {
                d.mkdir(l, &p("/etc/conf.d"), 0o700)
            }),
            ("write setuid file in child", |d, l| {
                d.write(l, &p("/bin/su"), 0, b"SU")
            }),
        ],
    );
}

#[test]
fn unprivileged_store_keeps_owners_modes_and_whiteouts() {
    let euid = rustix::process::geteuid().as_raw();
    if euid != 0 {
        check_all();
        return;
    }
    if std::env::var_os(CHILD_ENV).is_some() {
        panic!("setpriv did not drop root");
    }
    let Ok(exe) = std::env::current_exe() else {
        common::skip_line("unprivileged", "cannot find the test binary");
        return;
    };
    let Ok(work) = tempfile::tempdir() else {
        common::skip_line("unprivileged", "no temporary directory");
        return;
    };
    if rustix::fs::chown(
        work.path(),
        Some(rustix::fs::Uid::from_raw(NOBODY)),
        Some(rustix::fs::Gid::from_raw(NOBODY)),
    )
    .is_err()
    {
        common::skip_line("unprivileged", "cannot hand a directory to nobody");
        return;
    }
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&exe)
        .args([
            "--exact",
            "unprivileged_store_keeps_owners_modes_and_whiteouts",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .env("TMPDIR", work.path())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            common::skip_line(
                "unprivileged",
                &format!("setpriv is not available here ({e})"),
            );
            return;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "the unprivileged run failed:\n{text}"
    );
    // drivers that need root (the kernel drivers) are skipped in the unprivileged run
    for info in DRIVERS {
        let checked = format!("unprivileged {}: views equal", info.name);
        let skipped = format!("SKIP unprivileged {}:", info.name);
        assert!(
            text.contains(&checked) || text.contains(&skipped),
            "the unprivileged run did not check {}:\n{text}",
            info.name
        );
    }
    println!("unprivileged run as uid {NOBODY} passed for every driver");
}

fn check_all() {
    for info in DRIVERS {
        if let Err(why) = info.availability() {
            // the kernel reference drivers need root: they have no unprivileged path
            println!("SKIP unprivileged {}: {why}", info.name);
            continue;
        }
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let root = dir.path().join("store");
        let mut d = registry::init(info.name, &root, Options::new())
            .unwrap_or_else(|e| panic!("[{}] init unprivileged: {e}", info.name));
        let mut m = ReferenceModel::new(d.semantics());
        scenario(&mut d, info.name);
        scenario(&mut m, "model");
        for l in ["base", "child"] {
            let a = ok(view(&mut d, &id(l)), info.name, "view");
            let b = ok(view(&mut m, &id(l)), "model", "view");
            assert_eq!(
                a, b,
                "[{}] unprivileged view of {l} differs from the model",
                info.name
            );
        }
        drop(d);
        // a later unprivileged process reads the same thing back
        let mut d = registry::open(&root, layerlab_drivers::Access::Read)
            .unwrap_or_else(|e| panic!("[{}] reopen unprivileged: {e}", info.name));
        let su = ok(d.stat(&id("child"), &p("/bin/su")), info.name, "stat su");
        assert_eq!(
            su.mode, 0o4755,
            "[{}] setuid survives writes unprivileged",
            info.name
        );
        let passwd = ok(
            d.stat(&id("base"), &p("/etc/passwd")),
            info.name,
            "stat passwd",
        );
        assert_eq!(
            (passwd.uid, passwd.gid),
            (1000, 1000),
            "[{}] owner kept",
            info.name
        );
        // a device node needs root, as mknod(2) says (the model knows no privileges); a
        // fifo does not
        drop(d);
        let mut d = registry::open(&root, layerlab_drivers::Access::Write)
            .unwrap_or_else(|e| panic!("[{}] reopen for writing: {e}", info.name));
        ok(
            d.mknod(&id("child"), &p("/fifo"), Node::fifo(0o640)),
            info.name,
            "mkfifo",
        );
        let fifo = ok(d.stat(&id("child"), &p("/fifo")), info.name, "stat fifo");
        assert_eq!(
            (fifo.kind, fifo.mode),
            (FileKind::Fifo, 0o640),
            "[{}] fifo",
            info.name
        );
        let null = Node::new(FileKind::CharDevice, 0o666, layerlab_core::makedev(1, 3));
        let dev = d.mknod(&id("child"), &p("/null"), null);
        assert_eq!(
            dev.map_err(|e| e.kind()),
            Err(ErrorKind::NotPermitted),
            "[{}] mknod of a device without root",
            info.name
        );
        println!("unprivileged {}: views equal to the model", info.name);
    }
}
