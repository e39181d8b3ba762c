//! The crash test, in the spirit of redb's: every mutating command of the CLI, on every
//! driver on plain files, is failed (EIO, ENOSPC) or killed at its system calls, one point
//! at a time, with strace's syscall-exact injection (`tests/common/faults.rs`).
//!
//! After each faulted run the store must open as the next writer opens it, and then:
//! - a command that exited 0 happened: every layer's view, the layer table and the images
//!   are exactly those of a run without the fault;
//! - a command that reported an error did not happen: all of it is as before the command;
//! - a killed command is whole or absent: one of the two;
//! - when it is absent, the same command run again works and gives the complete result
//!   (an interrupted `import` is cleaned up or resumed, never refused).
//!
//! The completed commands that built the store before (the template) are part of "as
//! before", so their effects must survive every fault.
//!
//! By default a sample of each command's points is tried (every point's fault in turn:
//! EIO, ENOSPC where the call may allocate, kill), over a thousand points in all;
//! `LAYERLAB_CRASH=all` tries every fault at every point (tens of thousands of runs),
//! `LAYERLAB_CRASH=N` about N points per command and driver;
//! `LAYERLAB_CRASH_CASES=apply,rm` tries only the commands whose names start with one of
//! these.
//! The kernel drivers are not injected (their bytes are the kernel's).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/faults.rs"]
mod faults;

use faults::{Ended, Fault, Point, Snapshot};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_layerlab");

/// Points tried per command and driver when `LAYERLAB_CRASH` is unset.
const DEFAULT_PER_CASE: usize = 9;

/// Which points to try.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Every fault at every point.
    All,
    /// About this many (point, fault) pairs per command, spread evenly.
    Sample(usize),
}

fn mode() -> Mode {
    match std::env::var("LAYERLAB_CRASH").ok().as_deref() {
        Some("all") => Mode::All,
        Some(n) => Mode::Sample(n.parse().unwrap_or(DEFAULT_PER_CASE)),
        None => Mode::Sample(DEFAULT_PER_CASE),
    }
}

/// The (point, fault) pairs to try among `points`.
fn plan(points: &[Point], mode: Mode) -> Vec<(Point, Fault)> {
    let mut all = Vec::new();
    for (i, p) in points.iter().enumerate() {
        for (k, f) in Fault::ALL.iter().enumerate() {
            if f.applies_to(&p.syscall) {
                all.push((i, k, p.clone(), *f));
            }
        }
    }
    match mode {
        Mode::All => all.into_iter().map(|(_, _, p, f)| (p, f)).collect(),
        Mode::Sample(n) => {
            // every point once, its fault rotating, then an even spread of those
            let mut one: Vec<(Point, Fault)> = Vec::new();
            for (i, p) in points.iter().enumerate() {
                let faults: Vec<Fault> = Fault::ALL
                    .iter()
                    .copied()
                    .filter(|f| f.applies_to(&p.syscall))
                    .collect();
                one.push((p.clone(), faults[i % faults.len()]));
            }
            if one.len() <= n {
                return one;
            }
            (0..n).map(|k| one[k * one.len() / n].clone()).collect()
        }
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn cli(root: &Path, args: &[&str]) {
    layerlab_testkit::output(Command::new(BIN).arg("--root").arg(root).args(args)).unwrap();
}

/// The host inputs of `copy`, `apply` and `import`.
struct Inputs {
    tree: PathBuf,
    layer_tar: PathBuf,
    /// A layer tar that changes what the layer holds: removals, replacements, owners,
    /// modes, extended attributes.
    changes_tar: PathBuf,
    archive: PathBuf,
}

/// A GNU header of `kind` for `size` bytes with `mode` and `mtime`, owned by root.
fn tar_header(kind: tar::EntryType, mode: u32, mtime: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_entry_type(kind);
    h
}

fn tar_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar_header(
        tar::EntryType::Regular,
        0o644,
        1_700_000_000,
        data.len() as u64,
    );
    b.append_data(&mut h, path, data).expect("tar entry");
}

fn tar_dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut h = tar_header(tar::EntryType::Directory, 0o755, 1_700_000_000, 0);
    b.append_data(&mut h, path, &[][..]).expect("tar dir");
}

/// A tar entry with owner, mode, an mtime before 2001 and extended attributes (PAX).
fn tar_entry_attrs(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    (mode, uid, gid): (u32, u64, u64),
    xattrs: &[(&str, &[u8])],
    data: &[u8],
) {
    if !xattrs.is_empty() {
        let pax: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
            .expect("pax");
    }
    let mut h = tar_header(kind, mode, 900_000_000, data.len() as u64);
    h.set_uid(uid);
    h.set_gid(gid);
    b.append_data(&mut h, path, data).expect("tar entry");
}

/// The changes tar: over `top` it removes an own subtree (`tree`), empties an inherited
/// directory (an opaque `dir/sub`), replaces an own file by a directory (`b.txt`), an
/// inherited file by one of another owner and mode (`a.txt`) and an inherited symlink by a
/// file (`sym`), and changes an inherited directory's owner, mode and extended attributes
/// (`dir`).
fn changes_tar() -> Vec<u8> {
    use tar::EntryType::{Directory, Regular};
    let mut b = tar::Builder::new(Vec::new());
    tar_entry_attrs(
        &mut b,
        "dir/",
        Directory,
        (0o750, 5, 6),
        &[("user.color", b"blue")],
        b"",
    );
    tar_file(&mut b, "dir/sub/.wh..wh..opq", b"");
    tar_file(&mut b, "dir/sub/fresh", b"in the emptied directory");
    tar_file(&mut b, ".wh.tree", b"");
    tar_dir(&mut b, "b.txt/");
    tar_file(&mut b, "b.txt/inner", b"a file where a file was");
    tar_entry_attrs(
        &mut b,
        "a.txt",
        Regular,
        (0o640, 7, 8),
        &[("user.k", b"v")],
        &[b'A'; 6000],
    );
    tar_file(&mut b, "sym", b"no longer a symlink");
    b.into_inner().unwrap()
}

fn inputs(dir: &Path) -> Inputs {
    let tree = dir.join("host-tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    std::fs::write(tree.join("one"), b"first host file").unwrap();
    std::fs::write(tree.join("sub/two"), vec![b'2'; 5000]).unwrap();
    std::fs::write(tree.join("sub/deeper/three"), b"3").unwrap();
    std::os::unix::fs::symlink("one", tree.join("link")).unwrap();

    // an OCI layer tar: new directories and files, a replaced file, a whiteout
    let mut b = tar::Builder::new(Vec::new());
    tar_dir(&mut b, "etc/");
    tar_file(&mut b, "etc/conf", b"key=value\n");
    tar_file(&mut b, "etc/more", &[7u8; 3000]);
    tar_file(&mut b, "a.txt", b"applied over alpha");
    tar_file(&mut b, ".wh.b.txt", b"");
    tar_dir(&mut b, "dir/");
    tar_file(&mut b, "dir/.wh.f1", b"");
    let layer_tar = dir.join("layer.tar");
    std::fs::write(&layer_tar, b.into_inner().unwrap()).unwrap();
    let changes = dir.join("changes.tar");
    std::fs::write(&changes, changes_tar()).unwrap();

    // a docker-save archive of two layers
    let mut l0 = tar::Builder::new(Vec::new());
    tar_dir(&mut l0, "bin/");
    tar_file(&mut l0, "bin/tool", &[0x7f; 2000]);
    tar_file(&mut l0, "readme", b"image base");
    let l0 = l0.into_inner().unwrap();
    let mut l1 = tar::Builder::new(Vec::new());
    tar_file(&mut l1, "readme", b"image top");
    tar_file(&mut l1, "bin/.wh.tool", b"");
    tar_file(&mut l1, "app", b"the app");
    let l1 = l1.into_inner().unwrap();
    let ids = [
        layerlab_oci::digest::sha256(&l0),
        layerlab_oci::digest::sha256(&l1),
    ];
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
        ids[0], ids[1]
    );
    let manifest = r#"[{"Config":"config.json","RepoTags":["crash:1"],"Layers":["l0/layer.tar","l1/layer.tar"]}]"#;
    let mut a = tar::Builder::new(Vec::new());
    tar_file(&mut a, "manifest.json", manifest.as_bytes());
    tar_file(&mut a, "config.json", config.as_bytes());
    tar_file(&mut a, "l0/layer.tar", &l0);
    tar_file(&mut a, "l1/layer.tar", &l1);
    let archive = dir.join("image.tar");
    std::fs::write(&archive, a.into_inner().unwrap()).unwrap();
    Inputs {
        tree,
        layer_tar,
        changes_tar: changes,
        archive,
    }
}

/// The store every case starts from: a committed base and an active layer on it, made by
/// commands that completed.
fn template(driver: &str, root: &Path) {
    cli(root, &["init", "--driver", driver]);
    let steps: &[&[&str]] = &[
        &["layer", "create", "base"],
        &["write", "base", "/a.txt", "--data", "alpha"],
        &["mkdir", "-p", "base", "/dir/sub"],
        &["write", "base", "/dir/f1", "--data", "file one"],
        &["write", "base", "/dir/sub/f2", "--data", "file two, deeper"],
        &["ln", "-s", "base", "a.txt", "/sym"],
        &["layer", "commit", "base"],
        &["layer", "create", "top", "--parent", "base"],
        &["write", "top", "/b.txt", "--data", "beta in top"],
        &["mkdir", "-p", "top", "/tree/x"],
        &["write", "top", "/tree/x/1", "--data", "one"],
        &["write", "top", "/tree/2", "--data", "two"],
        &["write", "top", "/dir/f1", "--data", "f1 copied up"],
        &["layer", "create", "leaf"],
        &[
            "write",
            "leaf",
            "/only",
            "--data",
            "in an active layer of its own",
        ],
    ];
    for a in steps {
        cli(root, a);
    }
}

/// The mutating commands tried, by name (`{tree}`, `{tar}`, `{archive}` are host inputs).
const CASES: &[(&str, &[&str])] = &[
    (
        "layer create",
        &["layer", "create", "new", "--parent", "base"],
    ),
    ("layer commit", &["layer", "commit", "top"]),
    ("layer rm", &["layer", "rm", "leaf"]),
    (
        "write (replace own)",
        &[
            "write",
            "top",
            "/b.txt",
            "--data",
            "BETA, longer than before",
        ],
    ),
    (
        "write (copy-up)",
        &["write", "top", "/a.txt", "--data", "alpha replaced"],
    ),
    (
        "write (shorter)",
        &["write", "top", "/dir/f1", "--data", "XY"],
    ),
    (
        "write (new file)",
        &["write", "top", "/tree/new", "--data", "a new file"],
    ),
    (
        "write --offset",
        &["write", "top", "/b.txt", "--data", "XY", "--offset", "3"],
    ),
    (
        "write --append",
        &[
            "write",
            "top",
            "/dir/sub/f2",
            "--data",
            " and more",
            "--append",
        ],
    ),
    ("truncate", &["truncate", "top", "/b.txt", "4"]),
    ("mkdir", &["mkdir", "top", "/newdir"]),
    ("mkdir -p", &["mkdir", "-p", "top", "/p/q/r"]),
    ("rm", &["rm", "top", "/a.txt"]),
    ("rm -r (own)", &["rm", "-r", "top", "/tree"]),
    ("rm -r (inherited)", &["rm", "-r", "top", "/dir"]),
    ("mv", &["mv", "top", "/b.txt", "/c.txt"]),
    ("ln", &["ln", "top", "/b.txt", "/b.hard"]),
    ("ln -s", &["ln", "-s", "top", "b.txt", "/b.sym"]),
    ("chmod", &["chmod", "top", "600", "/a.txt"]),
    ("chown", &["chown", "top", "1:2", "/b.txt"]),
    (
        "touch",
        &["touch", "top", "/dir/f1", "--mtime", "900000000.25"],
    ),
    (
        "setfattr",
        &["setfattr", "top", "/b.txt", "-n", "user.k", "-v", "val"],
    ),
    ("mknod", &["mknod", "top", "/fifo", "p"]),
    ("copy", &["copy", "top", "{tree}", "/copied"]),
    ("apply", &["apply", "top", "{tar}"]),
    ("apply (changes)", &["apply", "top", "{changes}"]),
    ("apply (new layer)", &["apply", "leaf", "{changes}"]),
    ("import", &["import", "{archive}"]),
];

/// What one (driver, command, fault) tried and how it went.
#[derive(Default)]
struct Tally {
    points: usize,
    done: usize,
    failed: usize,
    killed: usize,
    retried: usize,
    resumed: usize,
    /// Points after which fsck found only host bytes left in free pool blocks (space, not
    /// data: a block written before its record committed), released by `fsck --repair`.
    leaked: usize,
}

/// A target a point broke: why, and the entries it destroyed (see [`Snapshot::lost`]).
struct Broke {
    why: String,
    lost: Vec<String>,
}

fn broke(why: String) -> Broke {
    Broke {
        why,
        lost: Vec::new(),
    }
}

fn check_point(
    root: &Path,
    args: &[String],
    ended: &Ended,
    (before, after): (&Snapshot, &Snapshot),
    resumable: bool,
    tally: &mut Tally,
) -> Result<(), Broke> {
    let snap =
        faults::snapshot(root).map_err(|e| broke(format!("the store does not open: {e}")))?;
    // the next writer's open (above) has swept what the fault left: fsck must find nothing
    // but, on the pool drivers, host bytes left in free blocks, which a repair releases
    let fsck = |repair| {
        layerlab_drivers::registry::fsck(root, repair)
            .map_err(|e| broke(format!("fsck could not run: {e}")))
    };
    let report = fsck(false)?;
    if !report.is_clean() {
        // an aufs change killed between placing an entry and unlinking the whiteout it
        // replaces leaves a stale whiteout beside it (the entry wins: the view is whole)
        let repairable = |w: &str| w.contains("(leaked)") || w.contains("(stale whiteout");
        if !report.findings.iter().all(|f| repairable(&f.what)) {
            return Err(broke(format!(
                "fsck after the fault: {:?}",
                report.findings
            )));
        }
        tally.leaked += 1;
        let repaired = fsck(true)?;
        if repaired.exit_code() != 1 || !fsck(false)?.is_clean() {
            return Err(broke(format!(
                "fsck --repair did not repair what the fault left: {:?}",
                repaired.findings
            )));
        }
    }
    let is_before = snap == *before;
    let is_after = snap == *after;
    let lost = snap.lost(before, after);
    let verdict = match ended {
        Ended::Done => {
            tally.done += 1;
            (!is_after).then(|| format!("exited 0 but did not happen: {}", snap.diff(after)))
        }
        Ended::Failed(code, stderr) => {
            tally.failed += 1;
            if *code != 1 || !stderr.contains("error:") {
                Some(format!("exit {code} without one error line: {stderr:?}"))
            } else if !is_before {
                Some(format!(
                    "reported an error ({}) but changed the store: {}",
                    stderr.trim(),
                    if is_after {
                        "the change happened".to_string()
                    } else {
                        snap.diff(before)
                    }
                ))
            } else {
                None
            }
        }
        Ended::Killed => {
            tally.killed += 1;
            (!is_before && !is_after).then(|| {
                format!(
                    "killed, neither whole nor absent: vs before: {}",
                    snap.diff(before)
                )
            })
        }
    };
    if let Some(why) = verdict {
        if !resumable || is_after {
            return Err(Broke { why, lost });
        }
        // an interrupted import is resumed or cleaned up by the next run: checked below
        tally.resumed += 1;
    }
    if is_before || (resumable && !is_after) {
        // the next run of the same command must work and give the whole result
        tally.retried += 1;
        let out = Command::new(BIN).args(args).output().expect("run layerlab");
        if !out.status.success() {
            return Err(Broke {
                why: format!(
                    "the same command run again fails: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                lost,
            });
        }
        let again = faults::snapshot(root).map_err(|e| broke(format!("after the retry: {e}")))?;
        if again != *after {
            return Err(Broke {
                why: format!("the retry differs: {}", again.diff(after)),
                lost,
            });
        }
    }
    Ok(())
}

/// The targets this branch does not meet yet, as `(drivers, command, why)` (`*`: every
/// driver). A broken point of one of these is printed as `OPEN` (with the data it lost)
/// and does not fail the test unless `LAYERLAB_CRASH_STRICT=1`; any other broken point
/// fails it.
const OPEN: &[(&str, &str, &str)] = &[];

fn open_gap(driver: &str, command: &str) -> Option<&'static str> {
    OPEN.iter()
        .find(|(d, c, _)| (*d == "*" || d.split(',').any(|x| x == driver)) && *c == command)
        .map(|(_, _, why)| *why)
}

fn skip(what: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP {what}: {why}");
}

fn crash_driver(driver: &str) {
    if !faults::strace_works() {
        skip(
            &format!("crash_inject {driver}"),
            "strace is missing or cannot trace here (apt-get install strace)",
        );
        return;
    }
    let started = std::time::Instant::now();
    let mode = mode();
    let work = tempfile::tempdir().unwrap();
    let inputs = inputs(work.path());
    let tpl = work.path().join("template");
    template(driver, &tpl);
    let root = work.path().join("store");
    let log = work.path().join("strace.log");
    let mut tallies: BTreeMap<(String, Fault), Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut open = Vec::new();
    let mut lost = 0usize;
    let strict = std::env::var("LAYERLAB_CRASH_STRICT").is_ok_and(|v| v == "1");
    let only = std::env::var("LAYERLAB_CRASH_CASES").ok();
    let wanted = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| name.starts_with(p.trim())))
    };
    for (name, raw) in CASES.iter().filter(|(n, _)| wanted(n)) {
        let mut args: Vec<String> = vec!["--root".into(), s(&root)];
        args.extend(raw.iter().map(|a| match *a {
            "{tree}" => s(&inputs.tree),
            "{tar}" => s(&inputs.layer_tar),
            "{changes}" => s(&inputs.changes_tar),
            "{archive}" => s(&inputs.archive),
            a => a.to_string(),
        }));
        faults::copy_tree(&tpl, &root);
        let before = faults::snapshot(&root).expect("template opens");
        faults::copy_tree(&tpl, &root);
        let (out, points) = faults::trace_points(Path::new(BIN), &args, &log);
        assert!(
            out.status.success(),
            "{driver} {name} without faults: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = faults::snapshot(&root).expect("store opens after the command");
        assert_ne!(before, after, "{driver} {name} changes nothing");
        let resumable = *name == "import";
        for (point, fault) in plan(&points, mode) {
            faults::copy_tree(&tpl, &root);
            let ended = faults::run_faulted(Path::new(BIN), &args, &point, fault);
            let tally = tallies.entry((name.to_string(), fault)).or_default();
            tally.points += 1;
            let checked = check_point(&root, &args, &ended, (&before, &after), resumable, tally);
            if let Err(b) = checked {
                let line = format!(
                    "{driver} {name}: {fault} at {} #{} ({}): {}{}",
                    point.syscall,
                    point.nth,
                    point.line,
                    b.why,
                    if b.lost.is_empty() {
                        String::new()
                    } else {
                        format!(" [DATA LOST: {}]", b.lost.join(", "))
                    }
                );
                lost += usize::from(!b.lost.is_empty());
                match open_gap(driver, name) {
                    Some(why) if !strict => open.push(format!("OPEN {line} -- {why}")),
                    _ => failures.push(line),
                }
            }
        }
    }
    let mut report = String::new();
    let total: usize = tallies.values().map(|t| t.points).sum();
    for ((name, fault), t) in &tallies {
        let _ = writeln!(
            report,
            "crash {driver:<12} {name:<20} {fault:<6} points {:>4}  exit0 {:>4}  error {:>4}  killed {:>4}  retried {:>4}  resumed {:>3}  leaked {:>3}",
            t.points, t.done, t.failed, t.killed, t.retried, t.resumed, t.leaked
        );
    }
    for line in &open {
        let _ = writeln!(report, "{line}");
    }
    let _ = writeln!(
        report,
        "crash {driver}: {total} injection points, {} broke a target, {} in open gaps, {lost} lost data, {:.1} s",
        failures.len(),
        open.len(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::io::stderr().write_all(report.as_bytes());
    assert!(
        failures.is_empty(),
        "{} of {total} injection points broke a target on {driver}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn crash_vfs() {
    crash_driver("vfs");
}

#[test]
fn crash_overlay2() {
    crash_driver("overlay2");
}

#[test]
fn crash_aufs() {
    crash_driver("aufs");
}

#[test]
fn crash_devicemapper() {
    crash_driver("devicemapper");
}

#[test]
fn crash_btrfs() {
    crash_driver("btrfs");
}

#[test]
fn crash_zfs() {
    crash_driver("zfs");
}
