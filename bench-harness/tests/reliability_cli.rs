//! Reliability through separate processes: `layerlab fsck` on clean stores of every driver;
//! ghost layers, orphans, stray staging, impossible whiteouts, parent cycles, unknown format
//! versions and flipped bytes in `layers.json` found, repaired where that loses no
//! committed data, with fsck(8)'s exit codes; the store lock (a waiting writer is not
//! starved by readers, `Locked` names live holders); errors (stderr on a full disk, sizes
//! too large, owner 4294967295, a full host filesystem, an output path inside the store).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Lab, BIN};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The drivers to test: every available driver on plain files (the kernel drivers need
/// mounts of their own), or `LAYERLAB_TEST_DRIVERS`.
fn drivers() -> Vec<&'static str> {
    let only = std::env::var("LAYERLAB_TEST_DRIVERS").ok();
    layerlab_drivers::DRIVERS
        .iter()
        .filter(|d| d.is_available() && !d.name.starts_with("kernel-"))
        .filter(|d| {
            only.as_ref()
                .is_none_or(|o| o.split(',').any(|n| n == d.name))
        })
        .map(|d| d.name)
        .collect()
}

/// The drivers fsck is tested on: [`drivers`], and kernel-overlay where it is available
/// (its layout is overlay2's, its view the kernel's), unless `LAYERLAB_TEST_DRIVERS` leaves
/// it out.
fn fsck_drivers() -> Vec<&'static str> {
    let mut out = drivers();
    let only = std::env::var("LAYERLAB_TEST_DRIVERS").ok();
    let kernel = layerlab_drivers::DRIVERS
        .iter()
        .find(|d| d.name == "kernel-overlay")
        .filter(|d| d.is_available())
        .filter(|d| {
            only.as_ref()
                .is_none_or(|o| o.split(',').any(|n| n == d.name))
        });
    match kernel {
        Some(k) => out.push(k.name),
        None => common::skip("fsck on kernel-overlay", "not available here"),
    }
    out
}

/// A store with a committed base (a file, a directory) and an active layer on it.
fn populated(driver: &str) -> Lab {
    let lab = Lab::new(driver);
    lab.ok(&["layer", "create", "base"]);
    lab.ok(&["write", "base", "/a", "--data", "hello"]);
    lab.ok(&["mkdir", "base", "/d"]);
    lab.ok(&["write", "base", "/d/f", "--data", "x"]);
    lab.ok(&["layer", "commit", "base"]);
    lab.ok(&["layer", "create", "top", "--parent", "base"]);
    lab.ok(&["rm", "top", "/a"]);
    lab
}

/// A populated store (as [`populated`]) on each driver of `wanted` that this run tests.
fn populated_on(wanted: &'static [&'static str]) -> impl Iterator<Item = (&'static str, Lab)> {
    let run = drivers();
    wanted
        .iter()
        .copied()
        .filter(move |d| run.contains(d))
        .map(|d| (d, populated(d)))
}

/// `fsck ARGS`: exit code and stdout.
fn fsck(lab: &Lab, args: &[&str]) -> (i32, String) {
    let mut all = vec!["fsck"];
    all.extend_from_slice(args);
    let o = lab.run(&all);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// `fsck ARGS` on `d` must exit with `code` and say each of `says`; returns what it printed.
fn fsck_says(lab: &Lab, d: &str, args: &[&str], code: i32, says: &[&str]) -> String {
    let (got, out) = fsck(lab, args);
    assert_eq!(got, code, "{d}: {out}");
    for s in says {
        assert!(out.contains(s), "{d}: {out}");
    }
    out
}

/// Where a union or vfs driver keeps a layer's data (what a ghost loses).
fn layer_data(lab: &Lab, driver: &str, id: &str) -> Option<std::path::PathBuf> {
    match driver {
        "vfs" => Some(lab.root.join("vfs/dir").join(id)),
        "overlay2" | "kernel-overlay" => Some(lab.root.join("overlay2").join(id).join("diff")),
        "aufs" => Some(lab.root.join("aufs/diff").join(id)),
        _ => None,
    }
}

fn edit_table(lab: &Lab, f: impl FnOnce(&mut serde_json::Value)) {
    let p = lab.root.join("layers.json");
    let mut t: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut t);
    std::fs::write(&p, serde_json::to_vec_pretty(&t).unwrap()).unwrap();
}

#[test]
fn a_used_store_is_clean_on_every_driver() {
    for d in fsck_drivers() {
        let lab = populated(d);
        let out = fsck_says(&lab, d, &[], 0, &[]);
        assert_eq!(out, "clean: nothing found\n", "{d}");
        let j: serde_json::Value = serde_json::from_str(&fsck(&lab, &["--json"]).1).unwrap();
        assert_eq!(j["exit_code"], 0, "{d}");
        assert_eq!(j["findings"].as_array().unwrap().len(), 0, "{d}");
    }
}

#[test]
fn a_ghost_layer_is_found_dropped_by_repair_and_never_wedges_a_writer() {
    for d in fsck_drivers() {
        let lab = populated(d);
        let Some(data) = layer_data(&lab, d, "top") else {
            continue; // the pools account for their layers in their own check
        };
        std::fs::remove_dir_all(&data).unwrap();
        // every writer still works (aufs used to refuse every one, `layer rm` included)
        lab.ok(&["layer", "create", "other", "--parent", "base"]);
        lab.ok(&["write", "other", "/n", "--data", "1"]);
        fsck_says(
            &lab,
            d,
            &[],
            4,
            &["UNCORRECTED layer top: layers.json: ghost layer"],
        );
        fsck_says(&lab, d, &["--repair"], 1, &["(dropped: layer top"]);
        assert_eq!(fsck(&lab, &[]).0, 0, "{d}");
        let ls = lab.ok(&["layer", "ls"]);
        assert!(!ls.contains("top") && ls.contains("other"), "{d}: {ls}");
        assert_eq!(lab.ok(&["cat", "other", "/d/f"]), "x", "{d}");
    }
}

#[test]
fn orphans_and_stray_staging_are_found_and_removed_by_repair() {
    for (d, lab) in populated_on(&["vfs", "overlay2", "aufs"]) {
        let (orphan, staging) = match d {
            "vfs" => (lab.root.join("vfs/dir/lost"), lab.root.join("vfs/tmp/half")),
            "overlay2" => (
                lab.root.join("overlay2/lost"),
                lab.root.join("overlay2/top/work/half"),
            ),
            _ => (
                lab.root.join("aufs/diff/lost"),
                lab.root.join("aufs/diff/top/.wh..wh.orph/half"),
            ),
        };
        std::fs::create_dir_all(&orphan).unwrap();
        std::fs::write(&staging, b"half").unwrap();
        let out = fsck_says(
            &lab,
            d,
            &[],
            4,
            &[
                "orphan: data no layer of the table names",
                "stray entries of an interrupted change: half",
            ],
        );
        assert!(
            out.ends_with("2 found: 0 repaired, 2 left uncorrected\n"),
            "{d}: {out}"
        );
        // a check changes nothing
        assert!(orphan.exists() && staging.exists(), "{d}");
        fsck_says(&lab, d, &["--repair"], 1, &[]);
        assert!(!orphan.exists() && !staging.exists(), "{d}");
        assert_eq!(fsck(&lab, &[]).0, 0, "{d}");
        assert_eq!(lab.ok(&["cat", "top", "/d/f"]), "x", "{d}");
    }
}

#[test]
fn an_impossible_whiteout_in_a_union_branch_is_found_and_removed() {
    // (overlay2's whiteouts are device nodes at the hidden name itself: `..` cannot be one)
    for (d, lab) in populated_on(&["aufs"]) {
        let marker = lab.root.join("aufs/diff/base/d/.wh...");
        std::fs::write(&marker, b"").unwrap();
        fsck_says(
            &lab,
            d,
            &[],
            4,
            &["aufs/diff/base/d/.wh...: whiteout of \"..\""],
        );
        assert_eq!(fsck(&lab, &["--repair"]).0, 1, "{d}");
        assert!(!marker.exists());
        assert_eq!(lab.ok(&["cat", "top", "/d/f"]), "x", "{d}");
    }
}

#[test]
fn a_stale_whiteout_beside_its_entry_is_found_and_removed() {
    // what an aufs change killed between placing an entry and unlinking the whiteout it
    // replaces leaves: the entry wins, so the view is whole and the repair drops nothing
    for (d, lab) in populated_on(&["aufs"]) {
        assert!(lab.root.join("aufs/diff/base/d/f").exists(), "{d}");
        let marker = lab.root.join("aufs/diff/base/d/.wh.f");
        std::fs::write(&marker, b"").unwrap();
        assert_eq!(lab.ok(&["cat", "top", "/d/f"]), "x", "{d}");
        fsck_says(
            &lab,
            d,
            &[],
            4,
            &["aufs/diff/base/d/.wh.f: whiteout beside", "(stale whiteout"],
        );
        fsck_says(&lab, d, &["--repair"], 1, &[]);
        assert!(!marker.exists(), "{d}");
        assert_eq!(fsck(&lab, &[]).0, 0, "{d}");
        assert_eq!(lab.ok(&["cat", "top", "/d/f"]), "x", "{d}");
    }
}

/// Runs `layerlab ARGS` and fails the test if it has not ended within a minute (a loop).
fn bounded(lab: &Lab, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("LAYERLAB_ROOT", &lab.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("layerlab {args:?} did not end: a loop");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_parent_cycle_is_refused_at_load_and_left_uncorrected_by_fsck() {
    for d in drivers() {
        let lab = populated(d);
        edit_table(&lab, |t| {
            t["layers"]["base"]["parent"] = "top".into();
            t.as_object_mut().unwrap().remove("checksum");
        });
        let o = bounded(&lab, &["cat", "top", "/d/f"]);
        assert_eq!(o.status.code(), Some(1), "{d}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("parent cycle: base -> top") && err.contains("layerlab fsck"),
            "{d}: {err}"
        );
        for args in [vec!["fsck"], vec!["fsck", "--repair"]] {
            let o = bounded(&lab, &args);
            assert_eq!(o.status.code(), Some(4), "{d}: {args:?}");
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(
                out.contains("which parent is wrong cannot be known"),
                "{d}: {out}"
            );
        }
    }
}

#[test]
fn an_unknown_format_version_and_a_flipped_byte_are_refused_and_named() {
    for d in drivers() {
        let lab = populated(d);
        let p = lab.root.join("layers.json");
        let good = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, good.replace("\"format\": 1", "\"format\": 7")).unwrap();
        let err = lab.fails(&["layer", "ls"]);
        assert!(err.contains("unknown format version 7"), "{d}: {err}");
        fsck_says(&lab, d, &[], 4, &["unknown format version 7"]);
        // one flipped digit: the depth of a layer
        std::fs::write(&p, good.replacen("\"depth\": 2", "\"depth\": 3", 1)).unwrap();
        let err = lab.fails(&["cat", "top", "/d/f"]);
        assert!(err.contains("checksum mismatch"), "{d}: {err}");
        fsck_says(&lab, d, &["--repair"], 1, &["depth 3 corrected to 2"]);
        assert_eq!(lab.ok(&["cat", "top", "/d/f"]), "x", "{d}");
        // one flipped letter of an id: the rows no longer match the data; nothing changed
        if layer_data(&lab, d, "top").is_some() {
            let good = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, good.replacen("\"top\"", "\"tap\"", 1)).unwrap();
            fsck_says(
                &lab,
                d,
                &["--repair"],
                4,
                &["UNCORRECTED layers.json: checksum mismatch"],
            );
            std::fs::write(&p, good).unwrap();
            assert_eq!(fsck(&lab, &[]).0, 0, "{d}");
        }
    }
}

#[test]
fn the_error_line_on_a_full_disk_exits_1_without_a_panic() {
    let lab = Lab::new("vfs");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(BIN)
        .args(["cat", "nosuch", "/x"])
        .env("LAYERLAB_ROOT", &lab.root)
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

/// Polls (bounded) until `layerlab write` is refused, and returns the refusal.
fn refusal(lab: &Lab) -> String {
    for _ in 0..600 {
        let o = lab.run(&["write", "w", "/probe", "--data", "1"]);
        if !o.status.success() {
            return String::from_utf8_lossy(&o.stderr).into_owned();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the store was never locked");
}

/// A vfs lab whose active layer `w` holds `/big`, `len` bytes.
fn with_big_file(len: usize) -> Lab {
    let lab = Lab::new("vfs");
    lab.ok(&["layer", "create", "w"]);
    let big = lab.tmp.path().join("big");
    std::fs::write(&big, vec![7u8; len]).unwrap();
    lab.ok(&["write", "w", "/big", "--from", big.to_str().unwrap()]);
    lab
}

/// A reader that holds the store's lock until it is killed: `cat` of a file larger than a
/// pipe's buffer into a pipe nobody reads.
fn holding_reader(lab: &Lab) -> std::process::Child {
    Command::new(BIN)
        .args(["cat", "w", "/big"])
        .env("LAYERLAB_ROOT", &lab.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn locked_names_the_live_holder_never_an_exited_writer() {
    let lab = with_big_file(8 << 20);
    // a writer holding the lock: `apply` reading from a fifo nobody writes yet
    let fifo = lab.tmp.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut apply = Command::new(BIN)
        .args(["apply", "w", fifo.to_str().unwrap()])
        .env("LAYERLAB_ROOT", &lab.root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let err = refusal(&lab);
    assert!(
        err.contains(&format!("written by pid {}", apply.id())),
        "{err}"
    );
    drop(pipe);
    assert!(apply.wait().unwrap().success());
    // a reader holding it: `cat` into a pipe nobody reads
    let mut cat = holding_reader(&lab);
    let err = refusal(&lab);
    assert!(err.contains(&format!("read by pid {}", cat.id())), "{err}");
    assert!(
        !err.contains(&apply.id().to_string()),
        "names an exited writer: {err}"
    );
    let _ = cat.kill();
    let _ = cat.wait();
}

#[test]
fn a_writer_is_not_starved_by_busy_readers() {
    let lab = with_big_file(4 << 20);
    // readers in relay: a new one starts before the last one ends, so the lock is never
    // free of readers; a writer that waits must still get in
    let mut held = holding_reader(&lab);
    std::thread::sleep(Duration::from_millis(200));
    let writer = Command::new(BIN)
        .args(["write", "w", "/f", "--data", "written"])
        .env("LAYERLAB_ROOT", &lab.root)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..20 {
        let next = holding_reader(&lab);
        std::thread::sleep(Duration::from_millis(100));
        let _ = held.kill();
        let _ = held.wait();
        held = next;
    }
    let _ = held.kill();
    let _ = held.wait();
    let o = writer.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "the writer was starved: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(lab.ok(&["cat", "w", "/f"]), "written");
}

#[test]
fn sizes_beyond_off_t_and_owner_4294967295_are_refused_clearly_on_every_driver() {
    for d in drivers() {
        let lab = populated(d);
        for size in ["9223372036854775808", "18446744073709551615"] {
            let err = lab.fails(&["truncate", "top", "/d/f", size]);
            assert!(err.contains("too large"), "{d}: {err}");
            assert!(!err.contains("integral type conversion"), "{d}: {err}");
        }
        for owner in ["4294967295:0", "0:4294967295"] {
            let err = lab.fails(&["chown", "top", owner, "/d/f"]);
            assert!(err.contains("4294967295 is not an owner"), "{d}: {err}");
        }
        let st = lab.json(&["stat", "top", "/d/f", "--json"]);
        assert_eq!(
            (st["size"].as_u64(), st["uid"].as_u64()),
            (Some(1), Some(0)),
            "{d}: {st}"
        );
    }
}

#[test]
fn a_full_host_filesystem_is_no_space_naming_layer_and_path_on_every_driver() {
    if !common::running_as_root() {
        common::skip("no-space errors", "mounting a small tmpfs needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        common::skip("no-space errors", "mount -t tmpfs failed");
        return;
    }
    let big = tmp.path().join("big");
    // incompressible, so that lz4 (zfs) cannot fit it
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..24 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&big, bytes).unwrap();
    let mut failures = Vec::new();
    for d in drivers() {
        let root = mnt.join(d);
        let run = |args: &[&str]| {
            Command::new(BIN)
                .args(args)
                .env("LAYERLAB_ROOT", &root)
                .output()
                .unwrap()
        };
        if !run(&["init", "--driver", d]).status.success() {
            continue; // the store itself does not fit: nothing to say about writes
        }
        run(&["layer", "create", "a"]);
        let o = run(&["write", "a", "/big", "--from", big.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        if o.status.code() != Some(1)
            || !err.starts_with("error: layer a: /big: no space left")
            || err.contains("os error")
        {
            failures.push(format!("{d}: {err}"));
        }
        let _ = std::fs::remove_dir_all(&root);
    }
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn export_and_tar_output_inside_the_store_are_refused_on_every_driver() {
    for d in drivers() {
        let lab = populated(d);
        let inside = lab.root.join("inside");
        let dotdot = format!("{}/../store/x", lab.root.display());
        let before = lab.ok(&["ls", "base", "/"]);
        for args in [
            vec!["export", "base", inside.to_str().unwrap()],
            vec!["export", "base", &dotdot],
            vec!["export", "base", "--tar", inside.to_str().unwrap()],
            vec!["diff", "top", "--tar", inside.to_str().unwrap()],
        ] {
            let err = lab.fails(&args);
            assert!(err.contains("inside the store"), "{d}: {args:?}: {err}");
            assert!(!inside.exists(), "{d}: {args:?}");
        }
        // a symlink from outside into the store is followed
        let link = lab.tmp.path().join("link");
        std::os::unix::fs::symlink(&lab.root, &link).unwrap();
        let via = format!("{}/sub", link.display());
        assert!(
            lab.fails(&["export", "base", &via])
                .contains("inside the store"),
            "{d}"
        );
        assert_eq!(lab.ok(&["ls", "base", "/"]), before, "{d}");
        // outside is fine
        let out = lab.tmp.path().join("out");
        lab.ok(&["export", "base", out.to_str().unwrap()]);
        assert_eq!(std::fs::read(out.join("d/f")).unwrap(), b"x", "{d}");
    }
}

/// The README's "Checking a store" example, run verbatim: `$ layerlab ...` lines through the
/// binary, `$ rm -r`/`$ mkdir` lines on the store, every printed line compared.
#[test]
fn the_readme_fsck_example_prints_what_the_readme_shows() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("### Checking a store")
        .nth(1)
        .expect("README has a 'Checking a store' section");
    let block = section
        .split("```console\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the section has a console block");
    let tmp = tempfile::tempdir().unwrap();
    let mut expected_codes = vec![4, 1, 0].into_iter();
    let mut lines = block.lines().peekable();
    while let Some(line) = lines.next() {
        let command = line.strip_prefix("$ ").expect("a command line");
        let mut want = String::new();
        while let Some(next) = lines.peek().filter(|l| !l.starts_with("$ ")) {
            want.push_str(next);
            want.push('\n');
            lines.next();
        }
        let words: Vec<&str> = command.split_whitespace().collect();
        match words[0] {
            "layerlab" => {
                let o = Command::new(BIN)
                    .args(&words[1..])
                    .env_remove("LAYERLAB_ROOT")
                    .current_dir(tmp.path())
                    .output()
                    .unwrap();
                assert_eq!(String::from_utf8_lossy(&o.stdout), want, "`{command}`");
                if words[1] == "fsck" {
                    assert_eq!(o.status.code(), expected_codes.next(), "`{command}`");
                } else {
                    assert!(o.status.success(), "`{command}`");
                }
            }
            "rm" => std::fs::remove_dir_all(tmp.path().join(words[2])).unwrap(),
            "mkdir" => std::fs::create_dir(tmp.path().join(words[1])).unwrap(),
            other => panic!("the example runs an unknown command {other}"),
        }
    }
    assert_eq!(expected_codes.next(), None, "every fsck of the example ran");
}

/// A layer holding `/f`: 8 MiB with data at 0 and at 2 MiB, holes elsewhere.
fn sparse_layer(d: &str) -> Lab {
    let lab = Lab::new(d);
    lab.ok(&["layer", "create", "a"]);
    lab.ok(&["write", "a", "/f", "--data", "head"]);
    lab.ok(&["truncate", "a", "/f", "8MiB"]);
    lab.ok(&[
        "write", "a", "/f", "--offset", "2097152", "--data", "middle",
    ]);
    lab
}

#[test]
fn diff_and_export_tars_keep_holes_as_holes_and_gnu_tar_reads_them() {
    use std::os::unix::fs::MetadataExt;
    for d in drivers() {
        let lab = sparse_layer(d);
        let want = lab.run(&["cat", "a", "/f"]).stdout;
        assert_eq!(want.len(), 8 << 20, "{d}");
        for args in [["diff", "a", "--tar"], ["export", "a", "--tar"]] {
            let tar = lab.tmp.path().join(format!("{}.tar", args[0]));
            let mut all: Vec<&str> = args.to_vec();
            all.push(tar.to_str().unwrap());
            lab.ok(&all);
            let size = std::fs::metadata(&tar).unwrap().len();
            assert!(
                size < 64 << 10,
                "{d}: {args:?}: the tar holds the holes ({size} bytes)"
            );
            let listing = Command::new("tar").arg("-tvf").arg(&tar).output().unwrap();
            let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
            assert!(listing.contains(" 8388608 "), "{d}: {listing}");
            let out = lab.tmp.path().join(format!("x-{}", args[0]));
            std::fs::create_dir(&out).unwrap();
            let st = Command::new("tar")
                .arg("-xf")
                .arg(&tar)
                .arg("-C")
                .arg(&out)
                .status()
                .unwrap();
            assert!(st.success(), "{d}: GNU tar could not extract {args:?}");
            let f = out.join("f");
            assert_eq!(std::fs::read(&f).unwrap(), want, "{d}: {args:?}");
            let on_disk = std::fs::metadata(&f).unwrap().blocks() * 512;
            assert!(
                on_disk < 1 << 20,
                "{d}: GNU tar wrote {on_disk} bytes: holes filled"
            );
            // and the tar applies back to the same file
            let id = format!("back-{}", args[0]);
            lab.ok(&["layer", "create", &id]);
            lab.ok(&["apply", &id, tar.to_str().unwrap()]);
            assert_eq!(lab.run(&["cat", &id, "/f"]).stdout, want, "{d}: {args:?}");
        }
    }
}

#[test]
fn podman_imports_a_sparse_layer_tar_as_the_same_file() {
    let Some((work, pm)) = common::podman_or_skip("sparse tar read by podman") else {
        return;
    };
    let lab = sparse_layer("vfs");
    let want = lab.run(&["cat", "a", "/f"]).stdout;
    let tar = lab.tmp.path().join("a.tar");
    lab.ok(&["diff", "a", "--tar", tar.to_str().unwrap()]);
    pm.cmd(&["import", tar.to_str().unwrap(), "sparse-test"])
        .unwrap();
    let mnt = pm.cmd(&["image", "mount", "sparse-test"]).unwrap();
    let got = std::fs::read(Path::new(mnt.trim()).join("f"));
    let _ = pm.cmd(&["image", "unmount", "sparse-test"]);
    drop(work);
    assert_eq!(got.unwrap(), want);
}
