//! RUN on a mounted layer of every driver, with busybox-static as the image's tools: output,
//! files made, exit codes, environment, working directory, user, no network, PID 1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use layerlab_build::run::{run_available, run_step, RunOutput, RunSpec};
use layerlab_core::{LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, Options};
use layerlab_testkit::skip;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "id", "pwd", "touch", "mkdir", "env", "rm", "cp", "true",
];

fn usable(test: &str) -> Option<Vec<&'static str>> {
    if let Err(why) = run_available() {
        skip(&format!("{test}: RUN unavailable: {why}"));
        return None;
    }
    if !Path::new("/bin/busybox").exists() {
        skip(&format!("{test}: /bin/busybox (busybox-static) missing"));
        return None;
    }
    Some(layerlab_testkit::drivers(test))
}

fn id(s: &str) -> LayerId {
    LayerId::new(s).unwrap()
}

fn p(s: &str) -> LayerPath {
    LayerPath::parse(s).unwrap()
}

/// A store of `driver` with a committed busybox base and an active layer `run` on it.
fn store(driver: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let mut d = registry::init(driver, &root, Options::new()).unwrap();
    let base = id("base");
    d.create_layer(&base, None).unwrap();
    for dir in ["/bin", "/etc", "/proc", "/tmp", "/home", "/home/app"] {
        d.mkdir(&base, &p(dir), 0o755).unwrap();
    }
    d.chown(&base, &p("/home/app"), 1000, 1000).unwrap();
    d.chmod(&base, &p("/tmp"), 0o1777).unwrap();
    let bb = std::fs::read("/bin/busybox").unwrap();
    layerlab_core::ops::write_file(&mut d, &base, &p("/bin/busybox"), &bb, 0o755).unwrap();
    for a in APPLETS {
        d.symlink(&base, "busybox", &p(&format!("/bin/{a}")))
            .unwrap();
    }
    layerlab_core::ops::write_file(
        &mut d,
        &base,
        &p("/etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        0o644,
    )
    .unwrap();
    layerlab_core::ops::write_file(
        &mut d,
        &base,
        &p("/etc/group"),
        b"root:x:0:\napp:x:1000:\nstaff:x:50:\n",
        0o644,
    )
    .unwrap();
    d.commit(&base).unwrap();
    d.create_layer(&id("run"), Some(&base)).unwrap();
    drop(d);
    (t, root)
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// RUN of `argv` on the layer `run` of the store at `root`, as `user`, in `/`, with no
/// environment of its own.
fn spec(root: &Path, argv: &[&str], user: &str, output: RunOutput) -> RunSpec {
    RunSpec {
        store: root.to_path_buf(),
        layer: id("run"),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        env: vec![],
        workdir: "/".into(),
        user: user.into(),
        output,
    }
}

/// Runs `sh -c script` as `user` in `workdir`; the status and the output.
fn sh(
    root: &Path,
    script: &str,
    env: &[(&str, &str)],
    workdir: &str,
    user: &str,
) -> (i32, String, u64) {
    let sink = Sink::default();
    let output = RunOutput::Sink(Box::new(sink.clone()));
    let out = run_step(RunSpec {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        workdir: workdir.into(),
        ..spec(root, &["/bin/sh", "-c", script], user, output)
    })
    .unwrap();
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    (out.status, text, out.totals.ops)
}

fn read(root: &Path, path: &str) -> Vec<u8> {
    let mut d = registry::open(root, layerlab_drivers::Access::Read).unwrap();
    layerlab_core::ops::read_all(&mut d, &id("run"), &p(path)).unwrap()
}

#[test]
fn run_on_every_driver() {
    let Some(drivers) = usable("run_on_every_driver") else {
        return;
    };
    for driver in drivers {
        let (_t, root) = store(driver);
        // output (stdout and stderr, in order) and a file made in the layer
        let (status, out, ops) = sh(
            &root,
            "echo hello; echo oops >&2; echo made > /tmp/f; ls /tmp",
            &[],
            "/",
            "",
        );
        assert_eq!((status, out.as_str()), (0, "hello\noops\nf\n"), "{driver}");
        assert!(ops > 0, "{driver}: the mount served the command");
        assert_eq!(read(&root, "/tmp/f"), b"made\n", "{driver}");
        // exit codes
        assert_eq!(sh(&root, "exit 3", &[], "/", "").0, 3, "{driver}");
        // PID 1 ignores a signal from inside its namespace: a child is killed instead
        assert_eq!(
            sh(&root, "sh -c 'kill -9 $$'; exit $?", &[], "/", "").0,
            128 + 9,
            "{driver}"
        );
        // environment: only what was given, with PATH's default and the user's HOME
        let (_, out, _) = sh(&root, "env | sort", &[("GREETING", "hi there")], "/", "");
        assert_eq!(
            out,
            "GREETING=hi there\nHOME=/root\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nPWD=/\nSHLVL=1\n",
            "{driver}"
        );
        // working directory, made when missing
        let (_, out, _) = sh(&root, "pwd; touch here", &[], "/srv/app", "");
        assert_eq!(out, "/srv/app\n", "{driver}");
        assert_eq!(read(&root, "/srv/app/here"), b"", "{driver}");
        // user by name, by uid, with a group
        let (_, out, _) = sh(&root, "id; echo $HOME", &[], "/", "app");
        assert_eq!(out, "uid=1000(app) gid=1000(app)\n/home/app\n", "{driver}");
        let (_, out, _) = sh(&root, "id", &[], "/", "1000:staff");
        assert_eq!(out, "uid=1000(app) gid=50(staff)\n", "{driver}");
        let (status, out, _) = sh(&root, "touch /etc/nope", &[], "/", "app");
        assert_eq!(status, 1, "{driver}: {out}");
        // no network: only lo, and it is down; PID 1; a hostname of its own
        let (_, out, _) = sh(
            &root,
            "cat /proc/net/dev | cut -d: -f1 | tail -n +3; echo $$",
            &[],
            "/",
            "",
        );
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["lo", "1"],
            "{driver}"
        );
        let mut d = registry::open(&root, layerlab_drivers::Access::Read).unwrap();
        let names: Vec<String> = d
            .readdir(&id("run"), &p("/proc"))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(
            names.is_empty(),
            "{driver}: proc was mounted in the namespace only: {names:?}"
        );
    }
}

#[test]
fn a_missing_command_and_a_bad_user_are_clear() {
    let Some(drivers) = usable("a_missing_command_and_a_bad_user_are_clear") else {
        return;
    };
    let (_t, root) = store(drivers[0]);
    let sink = Sink::default();
    let output = RunOutput::Sink(Box::new(sink.clone()));
    let out = run_step(spec(&root, &["/bin/nothing"], "", output)).unwrap();
    assert_ne!(out.status, 0);
    let err = run_step(spec(&root, &["/bin/true"], "ghost", RunOutput::Inherit)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer run: USER ghost: no user ghost in /etc/passwd"
    );
    // nothing is left mounted: the layer mounts again
    assert_eq!(sh(&root, "true", &[], "/", "").0, 0);
}
