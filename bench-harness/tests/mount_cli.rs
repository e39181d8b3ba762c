//! `layerlab mount` and `umount` through the binary (every command a new process that
//! reopens the store): serving in the background, the store usable beside the mount,
//! changes from elsewhere refused naming the mount, a killed server, bad input; and the
//! README's mount lab, verbatim.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::readme::{self, line_matches};
use common::{skip, Lab, BIN};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn fuse_or_skip(what: &str) -> bool {
    match layerlab_mount::fuse_available() {
        Ok(()) => true,
        Err(why) => {
            skip(what, &format!("FUSE unavailable: {why}"));
            false
        }
    }
}

fn two_layers(lab: &Lab) {
    lab.ok(&["layer", "create", "base"]);
    lab.ok(&["mkdir", "base", "/etc"]);
    lab.ok(&["write", "base", "/etc/motd", "--data", "hello"]);
    lab.ok(&["layer", "commit", "base"]);
    lab.ok(&["layer", "create", "app", "--parent", "base"]);
}

fn mnt(lab: &Lab) -> String {
    let dir = lab.file("mnt");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `umount` of `dir`, where no layer of the lab's store is mounted, is refused.
fn umount_refused(lab: &Lab, dir: &str) {
    let e = lab.fails(&["umount", dir]);
    assert!(e.contains("no layer of this store is mounted here"), "{e}");
}

/// A lab of `driver` with `two_layers` and an empty mount point; `None` (after a SKIP
/// line) where FUSE is unavailable.
fn mount_lab(what: &str, driver: &str) -> Option<(Lab, String)> {
    if !fuse_or_skip(what) {
        return None;
    }
    let lab = Lab::new(driver);
    two_layers(&lab);
    let dir = mnt(&lab);
    Some((lab, dir))
}

#[test]
fn mount_serves_in_the_background_beside_other_commands() {
    let Some((lab, dir)) = mount_lab("mount_serves_in_the_background", "overlay2") else {
        return;
    };
    let said = lab.ok(&["mount", "app", &dir]);
    assert!(said.starts_with("mounted layer app at "), "{said}");
    let motd = Path::new(&dir).join("etc/motd");
    assert_eq!(std::fs::read(&motd).unwrap(), b"hello");
    std::fs::write(Path::new(&dir).join("etc/new"), b"n").unwrap();
    // readers work beside the mount: the server holds the store only per burst
    assert_eq!(lab.ok(&["diff", "app"]), "C /etc\nA /etc/new\n");
    lab.ok(&["usage", "app"]);
    assert_eq!(lab.ok(&["cat", "app", "/etc/new"]), "n");
    // a change of the mounted layer from elsewhere is refused, naming the mount
    let e = lab.fails(&["write", "app", "/etc/motd", "--data", "x"]);
    assert!(e.contains("mounted at") && e.contains(&dir), "{e}");
    let e = lab.fails(&["layer", "commit", "app"]);
    assert!(e.contains("umount"), "{e}");
    // another layer of the same store can still change
    lab.ok(&["layer", "create", "other", "--parent", "base"]);
    lab.ok(&["write", "other", "/etc/motd", "--data", "o"]);
    let e = lab.fails(&["mount", "app", &lab.file("mnt")]);
    assert!(e.contains("mounted already"), "{e}");
    let done = lab.ok(&["umount", &dir]);
    assert!(done.starts_with("unmounted layer app from "), "{done}");
    assert!(
        done.contains("counts: ") && done.contains("bytes_written=1"),
        "{done}"
    );
    assert!(!motd.exists(), "unmounted");
    lab.ok(&["write", "app", "/etc/motd", "--data", "x"]);
    umount_refused(&lab, &dir);
}

#[test]
fn committed_layer_mounts_read_only() {
    let Some((lab, dir)) = mount_lab("committed_layer_mounts_read_only", "vfs") else {
        return;
    };
    lab.ok(&["mount", "base", &dir]);
    let e = std::fs::write(Path::new(&dir).join("x"), b"").unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(rustix::io::Errno::ROFS.raw_os_error())
    );
    // a committed layer is read by many: another command may read it beside
    assert_eq!(lab.ok(&["cat", "base", "/etc/motd"]), "hello");
    lab.ok(&["umount", &dir]);
}

#[test]
fn a_killed_server_leaves_the_store_usable_and_a_stale_mount_reported() {
    let Some((lab, dir)) = mount_lab("a_killed_server", "overlay2") else {
        return;
    };
    lab.ok(&["mount", "app", &dir]);
    let record = std::fs::read_to_string(lab.root.join("mounts/app.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let pid = record["pid"].as_u64().unwrap();
    std::fs::write(Path::new(&dir).join("etc/kept"), b"k").unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}/status")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/status"))
            .is_ok_and(|s| !s.contains("State:\tZ"))
    {
        assert!(start.elapsed() < Duration::from_secs(10), "server not dead");
        std::thread::sleep(Duration::from_millis(20));
    }
    // the store works: what was written is whole, and the layer can change again
    assert_eq!(lab.ok(&["cat", "app", "/etc/kept"]), "k");
    lab.ok(&["write", "app", "/etc/motd", "--data", "after"]);
    let e = lab.fails(&["mount", "app", &dir]);
    assert!(
        e.contains("stale mount") && e.contains("layerlab umount"),
        "{e}"
    );
    let said = lab.ok(&["umount", &dir]);
    assert!(
        said.contains("was gone") && said.contains("stale"),
        "{said}"
    );
    lab.ok(&["mount", "app", &dir]);
    assert_eq!(
        std::fs::read(Path::new(&dir).join("etc/motd")).unwrap(),
        b"after"
    );
    lab.ok(&["umount", &dir]);
}

#[test]
fn bad_input_is_one_error_line_and_changes_nothing() {
    let Some((lab, dir)) = mount_lab("mount bad input", "overlay2") else {
        return;
    };
    let missing = lab.file("missing");
    for (layer, at, named) in [
        ("nope", &dir, "nope"),
        ("app", &missing, "missing"),
        ("bad/id", &dir, "bad/id"),
    ] {
        let e = lab.fails(&["mount", layer, at]);
        assert!(e.contains(named), "{e}");
    }
    assert!(!lab.root.join("mounts").exists(), "no side effects");
    umount_refused(&lab, &dir);
}

#[test]
fn foreground_mount_finishes_on_sigterm_with_counts() {
    let Some((lab, dir)) = mount_lab("foreground_mount_finishes_on_sigterm", "overlay2") else {
        return;
    };
    let child = Command::new(BIN)
        .args(["mount", "app", &dir, "--foreground", "--trace"])
        .env("LAYERLAB_ROOT", &lab.root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let motd = Path::new(&dir).join("etc/motd");
    let start = Instant::now();
    while !motd.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "never mounted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&motd)
        .unwrap();
    std::io::Write::write_all(&mut f, b"!").unwrap();
    drop(f);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("unmounted layer app") && stdout.contains("bytes_copied=5"));
    assert!(stderr.contains("trace: write /etc/motd 5+1"), "{stderr}");
    assert!(stderr.contains("  step: "), "{stderr}");
    assert_eq!(lab.ok(&["cat", "app", "/etc/motd"]), "hello!");
}

// ----- the README's mount lab, verbatim -------------------------------------------------------

/// Unmounts whatever the lab left mounted if it fails half way.
struct LazyUnmount(std::path::PathBuf);

impl Drop for LazyUnmount {
    fn drop(&mut self) {
        let _ = layerlab_mount::unmount(&self.0, true);
    }
}

#[test]
fn readme_mount_lab_runs_verbatim() {
    if !fuse_or_skip("readme_mount_lab") {
        return;
    }
    let steps = readme::console_block("## Lab: a layer as a live filesystem");
    assert!(steps.iter().any(|(c, _)| c.contains("mount app")));
    let tmp = tempfile::tempdir().unwrap();
    let _guard = LazyUnmount(tmp.path().join("mnt"));
    readme::run_steps(tmp.path(), &steps);
}

#[test]
fn the_readme_matcher_is_strict() {
    assert!(line_matches("a ... b", "a x y b"));
    assert!(!line_matches("a ... b", "a x y c"));
    assert!(line_matches("... n=1 ...", "x n=1 y"));
    assert!(!line_matches("... n=1 ...", "x n=2 y"));
    assert!(!line_matches("exact", "exact "));
}
