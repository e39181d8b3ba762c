//! The cache key of COPY and RUN steps: what changes it and what does not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use layerlab_build::cache;
use layerlab_build::copy::{self, Context, Request};
use layerlab_drivers::{registry, AnyDriver, Options};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A context with sources, a dependency manifest and an ignored directory.
fn context() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    layerlab_testkit::write_files(
        t.path(),
        &[
            ("package.json", "{\"deps\": 1}\n"),
            ("src/main.js", "console.log(1)\n"),
            ("node_modules/dep/index.js", "module.exports = 1\n"),
            (".dockerignore", "node_modules\n*.log\n"),
        ],
    )
    .unwrap();
    t
}

fn driver() -> (tempfile::TempDir, AnyDriver) {
    let t = tempfile::tempdir().unwrap();
    let d = registry::init("vfs", &t.path().join("store"), Options::new()).unwrap();
    (t, d)
}

/// The key of `COPY SRCS DEST` on a fixed parent key, as the builder computes it.
fn copy_key(ctx: &Path, srcs: &[&str], dest: &str, owner: Option<(u32, u32)>) -> String {
    let (_t, mut d) = driver();
    let context = Context::open(ctx).unwrap();
    let srcs: Vec<String> = srcs.iter().map(|s| s.to_string()).collect();
    let req = Request {
        add: false,
        srcs: &srcs,
        dest,
        owner,
        mode: None,
    };
    let items = copy::from_context(&context, &req, false).unwrap();
    let sum = copy::checksum(&mut d, None, &items).unwrap();
    cache::copy_key(
        "sha256:parent",
        &format!("COPY {} {dest}", srcs.join(" ")),
        &sum,
    )
}

#[test]
fn copy_key_follows_content_not_mtime() {
    let t = context();
    let c = t.path();
    let k0 = copy_key(c, &["."], "/app/", None);
    assert_eq!(
        k0,
        copy_key(c, &["."], "/app/", None),
        "same inputs, same key"
    );

    // mtime only: a hit
    layerlab_testkit::set_mtime(&c.join("src/main.js"), 1_000_000).unwrap();
    assert_eq!(
        k0,
        copy_key(c, &["."], "/app/", None),
        "mtime-only change is a hit"
    );

    // an ignored file changes: a hit
    fs::write(c.join("node_modules/dep/index.js"), "changed\n").unwrap();
    fs::write(c.join("debug.log"), "new ignored file\n").unwrap();
    assert_eq!(
        k0,
        copy_key(c, &["."], "/app/", None),
        ".dockerignore'd change is a hit"
    );

    // content: a miss
    fs::write(c.join("src/main.js"), "console.log(2)\n").unwrap();
    let k1 = copy_key(c, &["."], "/app/", None);
    assert_ne!(k0, k1, "content change is a miss");

    // mode: a miss
    fs::set_permissions(c.join("src/main.js"), fs::Permissions::from_mode(0o755)).unwrap();
    let k2 = copy_key(c, &["."], "/app/", None);
    assert_ne!(k1, k2, "mode change is a miss");

    // owner (--chown) and destination: misses
    assert_ne!(k2, copy_key(c, &["."], "/app/", Some((1000, 1000))));
    assert_ne!(k2, copy_key(c, &["."], "/srv/", None));

    // a file not copied by this COPY does not matter to it
    let m0 = copy_key(c, &["package.json"], "/app/", None);
    fs::write(c.join("src/main.js"), "console.log(3)\n").unwrap();
    assert_eq!(m0, copy_key(c, &["package.json"], "/app/", None));
    // a renamed file is a miss
    fs::rename(c.join("package.json"), c.join("package2.json")).unwrap();
    fs::write(c.join("package.json"), "").unwrap();
    let m1 = copy_key(c, &["package*.json"], "/app/", None);
    fs::remove_file(c.join("package2.json")).unwrap();
    assert_ne!(m1, copy_key(c, &["package*.json"], "/app/", None));
}

#[test]
fn run_key_follows_command_args_and_env() {
    let argv = |s: &str| vec!["/bin/sh".to_string(), "-c".to_string(), s.to_string()];
    let kv = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let key = |parent: &str, cmd: &str, v: &str, a: &str, workdir: &str, user: &str| {
        cache::run_key(parent, &argv(cmd), &kv("V", v), &kv("A", a), workdir, user)
    };
    let base = key("p", "make", "1", "x", "/", "");
    assert_eq!(base, key("p", "make", "1", "x", "/", ""));
    for (what, changed) in [
        ("build-arg change", key("p", "make", "2", "x", "/", "")),
        ("env change", key("p", "make", "1", "y", "/", "")),
        ("command text", key("p", "make all", "1", "x", "/", "")),
        ("parent", key("q", "make", "1", "x", "/", "")),
        ("workdir", key("p", "make", "1", "x", "/src", "")),
        ("user", key("p", "make", "1", "x", "/", "1000")),
    ] {
        assert_ne!(base, changed, "{what}");
    }
}
