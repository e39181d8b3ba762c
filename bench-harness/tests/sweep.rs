//! Sweeps: expansion and its errors, the plan, shards balanced and deterministic, and the
//! merge property: N merged shards give byte-identical counted and modelled results to one
//! unsharded run (N = 1, 3, 7); missing, duplicated and foreign shards are refused. The
//! deploy/slurm examples are what `layerlab slurm` writes.

// A test fails by panicking.
#![allow(clippy::expect_used, clippy::panic)]

use layerlab::harness::slurm::{self, SlurmJob};
use layerlab::harness::sweep::{self, Sweep};
use layerlab::harness::HarnessError;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_layerlab");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sweep_config() -> PathBuf {
    repo().join("configs/sweep.toml")
}

fn layerlab(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run layerlab")
}

fn ok(args: &[&str]) -> String {
    let o = layerlab(args);
    assert!(
        o.status.success(),
        "layerlab {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Fails with one `error:` line and exit status 1; returns the line.
fn fails(args: &[&str]) -> String {
    let o = layerlab(args);
    assert_eq!(o.status.code(), Some(1), "layerlab {args:?} should fail");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.starts_with("error: ") && err.lines().count() == 1,
        "one error line: {err}"
    );
    err
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// One unsharded run of configs/sweep.toml, shared by the tests.
fn unsharded() -> &'static (tempfile::TempDir, PathBuf) {
    static ONE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    ONE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("one");
        ok(&["run", s(&sweep_config()), "--out", s(&out), "--no-progress"]);
        (dir, out)
    })
}

/// Runs every shard of `n` into `dir/shard-K`; their directories.
fn run_shards(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|k| {
            let out = dir.join(format!("shard-{k}"));
            let text = format!("{k}/{n}");
            let said = ok(&[
                "run",
                s(&sweep_config()),
                "--shard",
                &text,
                "--out",
                s(&out),
                "--no-progress",
            ]);
            assert!(
                said.contains(&format!("shard {k}/{n} of experiment sweep")),
                "{said}"
            );
            out
        })
        .collect()
}

fn counted_and_modelled(dir: &Path) -> String {
    fs::read_to_string(dir.join("modelled.csv")).expect("modelled.csv")
}

/// The rows of results.csv that are not measured, in file order.
fn deterministic_rows(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("results.csv"))
        .expect("results.csv")
        .lines()
        .filter(|l| !l.contains(",measured,"))
        .map(str::to_string)
        .collect()
}

fn merge_property(n: usize) {
    let (_keep, one) = unsharded();
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = run_shards(dir.path(), n);
    let out = dir.path().join("merged");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|p| s(p)));
    args.extend(["--out", s(&out)]);
    let said = ok(&args);
    assert!(said.contains(&format!("merged {n} shards")), "{said}");
    let merged = counted_and_modelled(&out);
    assert!(merged.lines().count() > 100, "a real sweep: {merged}");
    assert_eq!(
        merged,
        counted_and_modelled(one),
        "modelled.csv of {n} shards"
    );
    // counted and derived rows also come back in the unsharded run's order
    assert_eq!(deterministic_rows(&out), deterministic_rows(one));
    assert!(out.join("report.md").is_file() && out.join("report.html").is_file());
    let measured = fs::read_to_string(out.join("measured.csv")).expect("measured.csv");
    let header = measured.lines().next().unwrap_or("");
    assert!(header.ends_with(",value,machine"), "{header}");
    assert!(measured.lines().skip(1).all(|l| l.contains(",measured,")));
    let shards_csv = fs::read_to_string(out.join("shards.csv")).expect("shards.csv");
    assert_eq!(shards_csv.lines().count(), n + 1, "{shards_csv}");
}

#[test]
fn one_shard_merges_to_the_unsharded_run() {
    merge_property(1);
}

#[test]
fn three_shards_merge_to_the_unsharded_run() {
    merge_property(3);
}

#[test]
fn seven_shards_merge_to_the_unsharded_run() {
    merge_property(7);
}

#[test]
fn missing_duplicated_and_foreign_shards_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = run_shards(dir.path(), 3);
    let out = dir.path().join("merged");
    let (a, b, c) = (s(&shards[0]), s(&shards[1]), s(&shards[2]));

    let err = fails(&["merge", a, c, "--out", s(&out)]);
    assert!(err.contains("shard 1 of 3 missing"), "{err}");
    assert!(!out.exists(), "nothing written on a refused merge");

    let err = fails(&["merge", a, b, c, a, "--out", s(&out)]);
    assert!(err.contains("shard 0/3 given twice"), "{err}");
    assert!(err.contains(a), "{err}");
    assert!(!out.exists());

    // a shard of another experiment (another seed: another config hash)
    let other_cfg = dir.path().join("other.toml");
    let text = fs::read_to_string(sweep_config()).expect("config");
    fs::write(&other_cfg, text.replace("seed = 11", "seed = 12")).expect("write");
    let foreign = dir.path().join("foreign");
    ok(&[
        "run",
        s(&other_cfg),
        "--shard",
        "2/3",
        "--out",
        s(&foreign),
        "--no-progress",
    ]);
    let err = fails(&["merge", a, b, s(&foreign), "--out", s(&out)]);
    assert!(
        err.contains("not one experiment: config hash differs"),
        "{err}"
    );

    // a shard made where other points were seen (another set of available drivers)
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    for f in fs::read_dir(&shards[2]).expect("shard dir").flatten() {
        fs::copy(f.path(), elsewhere.join(f.file_name())).expect("copy");
    }
    let manifest = fs::read_to_string(elsewhere.join("manifest.json")).expect("manifest");
    let hash_line = manifest
        .lines()
        .find(|l| l.contains("\"plan_hash\""))
        .expect("plan_hash in the manifest");
    let edited = manifest.replace(hash_line, "  \"plan_hash\": \"0000\",");
    fs::write(elsewhere.join("manifest.json"), edited).expect("write");
    let err = fails(&["merge", a, b, s(&elsewhere), "--out", s(&out)]);
    assert!(
        err.contains("points (drivers available differ?) differs"),
        "{err}"
    );
    assert!(!out.exists());

    // not a shard at all
    let err = fails(&["merge", a, b, s(dir.path()), "--out", s(&out)]);
    assert!(err.contains("no manifest.json"), "{err}");
    assert!(!out.exists());

    // --partial merges what is there and says what is missing
    let said = ok(&["merge", a, c, "--out", s(&out), "--partial"]);
    assert!(said.contains("partial: shards missing: 1/3"), "{said}");
    assert!(out.join("report.md").is_file());
}

#[test]
fn the_plan_lists_every_point_with_an_estimate() {
    let said = ok(&["run", s(&sweep_config()), "--plan"]);
    // copy-up: 2 writes x 2 repetitions x 2 drivers (vfs excluded); mixed: 2 x 2 x 3
    assert!(
        said.contains("experiment sweep: 20 points, estimated"),
        "{said}"
    );
    assert!(said.contains("write=64KiB"), "{said}");
    assert!(said.contains("zipf=1.2"), "{said}");
    let vfs_copy_up = said
        .lines()
        .filter(|l| l.contains("copy-up") && l.contains(" vfs "))
        .count();
    assert_eq!(vfs_copy_up, 0, "excluded: {said}");
    let btrfs: Vec<&str> = said.lines().filter(|l| l.contains(" btrfs ")).collect();
    assert!(!btrfs.is_empty() && btrfs.iter().all(|l| l.trim_end().ends_with("nvme")));
}

#[test]
fn shards_are_deterministic_balanced_and_cover_every_point() {
    let sw = Sweep::load(sweep_config()).expect("load");
    let points = sw.points(false);
    for n in [1, 3, 7] {
        let mut all: Vec<usize> = Vec::new();
        let mut loads = Vec::new();
        for k in 0..n {
            let mine = sweep::shard(&points, k, n);
            assert_eq!(mine, sweep::shard(&points, k, n), "deterministic");
            loads.push(mine.iter().map(|&i| points[i].estimate_s).sum::<f64>());
            all.extend(mine);
        }
        all.sort_unstable();
        assert_eq!(all, (0..points.len()).collect::<Vec<_>>(), "n = {n}");
        let max = loads.iter().copied().fold(0.0, f64::max);
        let min = loads.iter().copied().fold(f64::INFINITY, f64::min);
        let longest = points.iter().map(|p| p.estimate_s).fold(0.0, f64::max);
        // greedy largest-first: shards differ by at most the longest point
        assert!(max - min <= longest + 1e-9, "n = {n}: {loads:?}");
    }
    assert_eq!(sweep::parse_shard("2/3"), Ok((2, 3)));
    for bad in ["3/3", "1", "a/3", "0/0", "-1/3"] {
        assert!(sweep::parse_shard(bad).is_err(), "{bad}");
    }
}

/// Loads a sweep config text that must fail; (line, key, message).
fn sweep_error(text: &str) -> (usize, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exp.toml");
    fs::write(&path, text).expect("write");
    match Sweep::load(&path) {
        Err(HarnessError::Config {
            line, key, message, ..
        }) => (line, key, message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

const BASE: &str = "name = \"t\"\ndrivers = [\"vfs\", \"overlay2\"]\nprofiles = [\"nvme\"]\n\n[[workload.copy-up]]\nsizes = [\"4KiB\"]\n\n";

#[test]
fn sweep_mistakes_name_the_key_and_line() {
    let (line, key, msg) = sweep_error(&format!("{BASE}[sweep.copy-up]\nwrites = [\"1B\"]\n"));
    assert_eq!((line, key.as_str()), (8, "sweep.copy-up"));
    assert!(msg.contains("unknown field `writes`"), "{msg}");

    let (line, key, msg) = sweep_error(&format!("{BASE}[sweep.copy-up]\nwrite = \"1B\"\n"));
    assert_eq!((line, key.as_str()), (9, "sweep.copy-up.write"));
    assert!(msg.contains("non-empty list"), "{msg}");

    let (_, key, msg) = sweep_error(&format!("{BASE}[sweep.copy-up]\nwrite = [\"1K\"]\n"));
    assert_eq!(key, "sweep.copy-up");
    assert!(msg.contains("ambiguous"), "{msg}");

    let (_, key, msg) = sweep_error(&format!("{BASE}[sweep.snapshot]\nfiles = [1, 2]\n"));
    assert_eq!(key, "sweep.snapshot");
    assert!(msg.contains("no [[workload.snapshot]]"), "{msg}");

    let (line, key, msg) = sweep_error(&format!(
        "{BASE}[sweep.copy-up]\nwrite = [\"1B\", \"2B\"]\n\n[[sweep.exclude]]\nwrite = \"3B\"\n"
    ));
    assert_eq!((line, key.as_str()), (12, "sweep.exclude.write"));
    assert!(msg.contains("not a swept value"), "{msg}");

    let (_, key, msg) = sweep_error(&format!(
        "{BASE}[sweep.copy-up]\nwrite = [\"1B\"]\n\n[[sweep.exclude]]\ndriver = \"zfs\"\n"
    ));
    assert_eq!(key, "sweep.exclude.driver");
    assert!(msg.contains("no driver labelled 'zfs'"), "{msg}");

    // `workload` narrows the parameters an entry may name, wherever it is written
    let mixed = "\n[[workload.mixed]]\nlayers = 2\nfiles = 10\noperations = 10\n\n";
    let (_, key, msg) = sweep_error(&format!(
        "{BASE}{mixed}[sweep.mixed]\nfiles = [10, 20]\n\n[[sweep.exclude]]\nfiles = 10\nworkload = \"copy-up\"\n"
    ));
    assert_eq!(key, "sweep.exclude.files");
    assert!(msg.contains("not a swept value of 'files'"), "{msg}");

    // the rest of the file is still checked by the experiment's own parser
    let err = fails(&["run", "/nonexistent/sweep.toml", "--plan"]);
    assert!(err.contains("/nonexistent/sweep.toml"), "{err}");
}

#[test]
fn a_sweep_expands_into_tagged_workloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exp.toml");
    fs::write(
        &path,
        format!("{BASE}[sweep.copy-up]\nwrite = [\"1B\", \"4KiB\"]\nsizes = [[\"4KiB\"], [\"8KiB\", \"16KiB\"]]\n"),
    )
    .expect("write");
    let sw = Sweep::load(&path).expect("load");
    assert_eq!(
        sw.tags,
        [
            "sizes=[\"4KiB\"] write=1B",
            "sizes=[\"4KiB\"] write=4KiB",
            "sizes=[\"8KiB\", \"16KiB\"] write=1B",
            "sizes=[\"8KiB\", \"16KiB\"] write=4KiB"
        ]
    );
    assert_eq!(sw.points(false).len(), 8);
    // no sweep: the experiment as it is, one point per workload, repetition and driver
    let plain = Sweep::load(repo().join("configs/quick.toml")).expect("quick");
    assert!(plain.tags.iter().all(String::is_empty));
    assert_eq!(
        plain.points(false).len(),
        plain.exp.workloads.len() * plain.exp.drivers.len()
    );
}

#[test]
fn bad_shard_and_slurm_arguments_are_refused_without_side_effects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x");
    let cfg = sweep_config();
    let err = fails(&["run", s(&cfg), "--shard", "3/3", "--out", s(&out)]);
    assert!(err.contains("--shard '3/3'"), "{err}");
    let err = fails(&["run", s(&cfg), "--shard", "0/21", "--out", s(&out)]);
    assert!(err.contains("20 points"), "{err}");
    let err = fails(&[
        "slurm",
        s(&cfg),
        "--shards",
        "2",
        "--time",
        "1 h",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("--time '1 h'"), "{err}");
    let err = fails(&["slurm", s(&cfg), "--shards", "0", "--out", s(&out)]);
    assert!(err.contains("--shards 0"), "{err}");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn the_deploy_examples_are_what_layerlab_slurm_writes() {
    let job = SlurmJob {
        name: "sweep".into(),
        exe: "layerlab".into(),
        config: "configs/sweep.toml".into(),
        out: "reports/sweep-sweep".into(),
        shards: 4,
        partition: Some("batch".into()),
        time: Some("30:00".into()),
        quick: false,
    };
    let dir = repo().join("deploy/slurm");
    for (name, text) in [
        (slurm::ARRAY_SCRIPT, slurm::array_script(&job)),
        (slurm::MERGE_SCRIPT, slurm::merge_script(&job)),
        (slurm::SUBMIT_SCRIPT, slurm::submit_script(&job)),
    ] {
        if std::env::var_os("LAYERLAB_WRITE_EXAMPLES").is_some() {
            fs::write(dir.join(name), &text).expect("write example");
        }
        let have = fs::read_to_string(dir.join(name)).expect("deploy/slurm example");
        assert_eq!(
            have, text,
            "deploy/slurm/{name} is stale: rerun with LAYERLAB_WRITE_EXAMPLES=1"
        );
    }
    assert!(slurm::array_script(&job).contains("--shard \"$SLURM_ARRAY_TASK_ID/4\""));
    assert_eq!(slurm::sh_quote("a b'c"), "'a b'\\''c'");
}

#[test]
fn the_readme_shows_the_plan_as_layerlab_prints_it() {
    let readme = fs::read_to_string(repo().join("README.md")).expect("README.md");
    let cmd = "$ layerlab run configs/sweep.toml --plan\n";
    let at = readme.find(cmd).expect("the plan example in the README") + cmd.len();
    let block: String = readme[at..]
        .lines()
        .take_while(|l| !l.starts_with("```") && !l.starts_with("$ "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(block, ok(&["run", s(&sweep_config()), "--plan"]));
    assert!(readme.contains("$ layerlab slurm configs/sweep.toml --shards 3 --submit\n"));
}

#[test]
fn shards_from_two_machines_are_reported_per_machine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = run_shards(dir.path(), 2);
    // the second shard's manifest says it ran on another machine
    let manifest = shards[1].join("manifest.json");
    let text = fs::read_to_string(&manifest).expect("manifest");
    let mut m: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    let first: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(shards[0].join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let here = first["machine"].as_str().expect("machine").to_string();
    m["machine"] = serde_json::Value::String("node-b".into());
    fs::write(&manifest, m.to_string()).expect("write manifest");
    let out = dir.path().join("merged");
    ok(&["merge", s(&shards[0]), s(&shards[1]), "--out", s(&out)]);
    let md = fs::read_to_string(out.join("report.md")).expect("report.md");
    let at = md
        .find("## Measured results by machine")
        .expect("a section per machine");
    let section = &md[at..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    for machine in [here.as_str(), "node-b"] {
        assert!(
            section.contains(&format!("machine `{machine}`: `copy-up`: time, measured")),
            "{machine} has its own measured tables: {section}"
        );
    }
    // each machine's tables hold only its own repetitions: the counts add up to the merge's
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("summary JSON");
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("machines.json")).expect("machines"))
            .expect("machines JSON");
    let machines = json.as_array().expect("an array of machines");
    assert_eq!(machines.len(), 2);
    let n_of = |summaries: &serde_json::Value| -> u64 {
        summaries
            .as_array()
            .expect("summaries")
            .iter()
            .filter(|x| x["metric"] == "measured_us")
            .map(|x| x["n"].as_u64().expect("n"))
            .sum()
    };
    let pooled = n_of(&summary);
    let apart: u64 = machines.iter().map(|m| n_of(&m["summaries"])).sum();
    assert_eq!(
        pooled, apart,
        "every measured repetition on exactly one machine"
    );
    // one machine: no such section
    let single = dir.path().join("single");
    let again = run_shards(&dir.path().join("again"), 2);
    ok(&["merge", s(&again[0]), s(&again[1]), "--out", s(&single)]);
    let md = fs::read_to_string(single.join("report.md")).expect("report.md");
    assert!(!md.contains("Measured results by machine"), "{md}");
    assert!(!single.join("machines.json").exists());
}

#[test]
fn the_estimate_scales_each_driver_by_its_measured_time() {
    let env = r#"{"driver_seconds": [
        ["copy-up", "vfs", 1.0], ["copy-up", "btrfs", 3.0],
        ["mixed", "vfs", 2.0]
    ]}"#;
    let f = sweep::factors(env);
    let of = |k: &str, d: &str| {
        f.iter()
            .find(|(a, b, _)| a == k && b == d)
            .map(|x| x.2)
            .expect("factor")
    };
    assert_eq!(of("copy-up", "vfs"), 0.5);
    assert_eq!(of("copy-up", "btrfs"), 1.5);
    assert_eq!(of("mixed", "vfs"), 1.0);
    assert!(sweep::factors("not json").is_empty());
    // the plan: points of one workload and repetition differ by driver where the
    // committed report measured the drivers differently
    let sweep = Sweep::load(sweep_config()).expect("sweep");
    let points = sweep.points(false);
    for a in &points {
        for b in points
            .iter()
            .filter(|b| b.workload == a.workload && b.repetition == a.repetition)
        {
            let (fa, fb) = (
                sweep::driver_factor(&a.kind, &a.driver),
                sweep::driver_factor(&b.kind, &b.driver),
            );
            // configs/sweep.toml: store_seconds = { btrfs = 0.1 }; the work beyond the
            // store orders as the factors do
            let store = |d: &str| {
                if d == "btrfs" {
                    0.1
                } else {
                    sweep::EST_STORE_S
                }
            };
            let (wa, wb) = (
                a.estimate_s - store(&a.driver),
                b.estimate_s - store(&b.driver),
            );
            let order = |x: f64, y: f64| {
                if (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) {
                    std::cmp::Ordering::Equal
                } else {
                    x.total_cmp(&y)
                }
            };
            assert_eq!(
                order(fa, fb),
                order(wa, wb),
                "{} ({fa}) vs {} ({fb})",
                a.id(),
                b.id()
            );
        }
    }
}
