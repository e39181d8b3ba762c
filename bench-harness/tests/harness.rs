//! The experiment harness: config errors with file, line, column and key; the embedded
//! experiments; every workload on every driver in --quick; byte-identical modelled.csv for
//! the same config and seed; the shapes the report relies on.

// A test fails by panicking.
#![allow(clippy::expect_used, clippy::panic)]

use layerlab::harness::config::Experiment;
use layerlab::harness::results::{Results, Source};
use layerlab::harness::runner::{self, RunOptions};
use layerlab::harness::workloads::Workload;
use layerlab::harness::{output, HarnessError};
use layerlab_drivers::DRIVERS;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_layerlab");

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// Writes `text` as an experiment file and loads it.
fn load(text: &str) -> (Result<Experiment, HarnessError>, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exp.toml");
    fs::write(&path, text).expect("write config");
    (Experiment::load(&path), path, dir)
}

/// Loads a config that must fail with a config error; returns (line, column, key, message).
fn config_error(text: &str) -> (usize, usize, String, String) {
    let (r, path, _dir) = load(text);
    match r {
        Err(HarnessError::Config {
            file,
            line,
            column,
            key,
            message,
        }) => {
            assert_eq!(file, path.display().to_string());
            (line, column, key, message)
        }
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(_) => panic!("expected a config error for:\n{text}"),
    }
}

const HEAD: &str = "name = \"t\"\nseed = 1\n";

#[test]
fn unknown_key_names_line_column_and_key() {
    let (line, col, key, msg) = config_error(&format!("{HEAD}sead = 3\n[[workload.copy-up]]\n"));
    assert_eq!((line, col), (3, 1));
    assert_eq!(key, "sead");
    assert!(msg.contains("unknown field"), "{msg}");
}

#[test]
fn unknown_key_in_a_workload() {
    let text = format!("{HEAD}[[workload.copy-up]]\nsizes = [\"4KiB\"]\nsize = 3\n");
    let (line, col, key, _) = config_error(&text);
    assert_eq!((line, col), (5, 1));
    assert_eq!(key, "workload.copy-up.size");
}

#[test]
fn bad_size_points_at_the_value() {
    let text = format!("{HEAD}[[workload.copy-up]]\nsizes = [\"4KiB\", \"4XB\"]\n");
    let (line, col, key, msg) = config_error(&text);
    assert_eq!(line, 4);
    assert_eq!(col, 18, "{msg}");
    assert_eq!(key, "workload.copy-up.sizes");
    assert!(msg.contains("4XB"), "{msg}");
}

/// Experiment files read sizes as the rest of layerlab does: GB in powers of ten, GiB in
/// powers of two, a bare G refused as ambiguous.
#[test]
fn sizes_in_experiment_files_have_the_one_meaning() {
    let text = format!("{HEAD}[[workload.copy-up]]\nsizes = [\"10GB\", \"10GiB\", 4096]\n");
    let (r, _path, _dir) = load(&text);
    let exp = r.expect("config loads");
    let Some(layerlab::harness::workloads::WorkloadSpec::CopyUp(c)) = exp.workloads.first() else {
        panic!("one copy-up workload: {:?}", exp.workloads);
    };
    let bytes: Vec<u64> = c.sizes.iter().map(|s| s.bytes()).collect();
    assert_eq!(bytes, [10_000_000_000, 10 << 30, 4096]);
    let (line, _, key, msg) =
        config_error(&format!("{HEAD}[[workload.copy-up]]\nsizes = [\"10G\"]\n"));
    assert_eq!((line, key.as_str()), (4, "workload.copy-up.sizes"));
    assert!(msg.contains("ambiguous"), "{msg}");
}

#[test]
fn unknown_workload_kind() {
    let (line, _, key, msg) = config_error(&format!("{HEAD}[[workload.copyup]]\nsizes = []\n"));
    assert_eq!(line, 3);
    assert!(key.contains("copyup"), "{key}");
    assert!(msg.contains("copy-up"), "{msg}");
}

#[test]
fn unknown_driver_and_bad_options() {
    let (line, col, key, msg) = config_error(&format!(
        "{HEAD}drivers = [\"vfs\", \"overlay3\"]\n[[workload.copy-up]]\n"
    ));
    assert_eq!((line, col, key.as_str()), (3, 19, "drivers"));
    assert!(
        msg.contains("overlay3") && msg.contains("overlay2"),
        "{msg}"
    );

    let text = format!(
        "{HEAD}drivers = [{{ name = \"overlay2\", opts = {{ metacopi = \"on\" }} }}]\n[[workload.copy-up]]\n"
    );
    let (line, _, key, msg) = config_error(&text);
    assert_eq!((line, key.as_str()), (3, "drivers"));
    assert!(msg.contains("metacopi"), "{msg}");

    let text = format!(
        "{HEAD}drivers = [{{ name = \"overlay2\", opts = {{ metacopy = \"maybe\" }} }}]\n[[workload.copy-up]]\n"
    );
    let (line, _, key, msg) = config_error(&text);
    assert_eq!((line, key.as_str()), (3, "drivers"));
    assert!(msg.contains("maybe"), "{msg}");
}

#[test]
fn wrong_types_and_values() {
    let (line, _, key, _) = config_error(&format!("{HEAD}repetitions = \"three\"\n"));
    assert_eq!((line, key.as_str()), (3, "repetitions"));

    let text = format!("{HEAD}[[workload.read-depth]]\nwarm_reads = 3\ndepths = [0, 2]\n");
    let (line, col, key, _) = config_error(&text);
    assert_eq!((line, col), (5, 1));
    assert_eq!(key, "workload.read-depth.depths");

    let (line, _, key, _) = config_error(&format!(
        "{HEAD}profiles = [\"floppy\"]\n[[workload.copy-up]]\n"
    ));
    assert_eq!((line, key.as_str()), (3, "profiles"));

    let (_, _, key, _) = config_error("seed = 1\n[[workload.copy-up]]\n");
    assert_eq!(key, "name");

    let err = load(&format!("{HEAD}sead = 3\n"))
        .0
        .err()
        .map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(err.contains("exp.toml:3:1: key `sead`"), "{err}");
}

#[test]
fn bad_trace_line_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("t.jsonl"),
        "{\"op\":\"create_layer\",\"layer\":\"a\"}\n\n{\"op\":\"write\",\"layer\":\"a\"}\n",
    )
    .expect("trace");
    let path = dir.path().join("exp.toml");
    fs::write(
        &path,
        format!("{HEAD}[[workload.replay]]\ntrace = \"t.jsonl\"\n"),
    )
    .expect("cfg");
    match Experiment::load(&path) {
        Err(HarnessError::Trace {
            file,
            line,
            message,
        }) => {
            assert!(file.ends_with("t.jsonl"), "{file}");
            assert_eq!(line, 3);
            assert!(message.contains("path"), "{message}");
        }
        other => panic!("expected a trace error, got {other:?}"),
    }
    fs::write(
        &path,
        format!("{HEAD}[[workload.replay]]\ntrace = \"missing.jsonl\"\n"),
    )
    .expect("cfg");
    let (line, _, key, _) = match Experiment::load(&path) {
        Err(HarnessError::Config {
            line,
            column,
            key,
            message,
            ..
        }) => (line, column, key, message),
        other => panic!("expected a config error, got {other:?}"),
    };
    assert_eq!((line, key.as_str()), (4, "workload.replay.trace"));
}

#[test]
fn embedded_experiments_cover_everything() {
    let std_exp = Experiment::try_standard().expect("standard.toml loads");
    let kinds: Vec<&str> = std_exp.workloads.iter().map(|w| w.kind()).collect();
    for k in [
        "copy-up",
        "read-depth",
        "metadata",
        "snapshot",
        "sharing",
        "mixed",
        "replay",
    ] {
        assert!(kinds.contains(&k), "standard lacks {k}");
    }
    for d in DRIVERS {
        assert!(
            std_exp.drivers.iter().any(|s| s.label == d.name),
            "standard lacks {}",
            d.name
        );
    }
    assert!(std_exp
        .drivers
        .iter()
        .any(|s| s.label == "overlay2+metacopy"));
    assert_eq!(std_exp.profiles.len(), 4);
    Experiment::try_quick_config().expect("quick.toml loads");
    // The files on disk are the embedded ones.
    Experiment::load(configs().join("standard.toml")).expect("configs/standard.toml");
    Experiment::load(configs().join("quick.toml")).expect("configs/quick.toml");
}

/// The standard experiment in --quick, run once for the tests that look at its rows.
fn quick_standard() -> &'static Results {
    static R: OnceLock<Results> = OnceLock::new();
    R.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = RunOptions::new(dir.path());
        opts.quick = true;
        opts.progress = false;
        runner::run(&Experiment::standard(), &opts).expect("quick standard run")
    })
}

#[test]
fn every_workload_runs_on_every_driver_in_quick() {
    let r = quick_standard();
    let exp = Experiment::standard();
    for w in &exp.workloads {
        for d in &exp.drivers {
            let n = r
                .rows
                .iter()
                .filter(|row| row.workload == w.kind() && row.driver == d.label)
                .count();
            assert!(n > 0, "no rows for {} on {}", w.kind(), d.label);
            // the kernel reference drivers are measured only: their Meter counts no work
            let metered = layerlab_drivers::registry::info(&d.name).is_none_or(|i| i.metered);
            let sources: &[Source] = if metered {
                &[Source::Counted, Source::Modelled, Source::Measured]
            } else {
                &[Source::Measured]
            };
            if !metered {
                assert!(
                    !r.rows.iter().any(|row| row.driver == d.label
                        && matches!(row.source, Source::Counted | Source::Modelled)),
                    "{} is measured only, yet has counted or modelled rows",
                    d.label
                );
            }
            for &src in sources {
                assert!(
                    r.rows.iter().any(|row| row.workload == w.kind()
                        && row.driver == d.label
                        && row.source == src),
                    "no {src:?} rows for {} on {}",
                    w.kind(),
                    d.label
                );
            }
        }
    }
    assert!(r.environment.quick);
    assert!(!r.summaries.is_empty());
    for s in &r.summaries {
        assert!(s.min <= s.median && s.median <= s.max, "{s:?}");
        assert!(s.ci_low <= s.median && s.median <= s.ci_high, "{s:?}");
        if s.metric == "measured_us" {
            assert!(s.ci_low >= 0.0, "a time's interval below zero: {s:?}");
        }
    }
}

fn value(
    r: &Results,
    driver: &str,
    workload: &str,
    variant: &str,
    metric: &str,
) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = r
        .rows
        .iter()
        .filter(|row| {
            row.driver == driver
                && row.workload == workload
                && row.variant == variant
                && row.metric == metric
        })
        .map(|row| (row.x, row.value))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// Whether each point's value is above the one before.
fn grows(points: &[(f64, f64)]) -> bool {
    points.windows(2).all(|w| w[1].1 > w[0].1)
}

#[test]
fn copy_up_and_depth_shapes() {
    let r = quick_standard();
    let ov = value(r, "overlay2", "copy-up", "", "bytes_copied");
    assert!(ov.len() >= 2, "{ov:?}");
    assert!(
        grows(&ov),
        "overlay2 copy-up bytes must grow with size: {ov:?}"
    );
    for (x, v) in &ov {
        assert!(*v >= *x, "overlay2 copies the whole file: {ov:?}");
    }
    let vfs = value(r, "vfs", "copy-up", "", "bytes_copied");
    assert!(
        !vfs.is_empty() && vfs.iter().all(|(_, v)| *v == 0.0),
        "{vfs:?}"
    );

    let cold = value(r, "overlay2", "read-depth", "cold", "probes");
    assert!(cold.len() >= 3, "{cold:?}");
    assert!(
        grows(&cold),
        "overlay2 cold probes must grow with depth: {cold:?}"
    );
    let warm = value(r, "overlay2", "read-depth", "warm", "probes");
    assert!(
        warm.iter().all(|(_, v)| *v == 0.0),
        "warm reads hit the cache: {warm:?}"
    );

    // metacopy: chmod copies no data.
    let chmod = value(r, "overlay2+metacopy", "metadata", "chmod", "bytes_copied");
    assert!(chmod.iter().all(|(_, v)| *v == 0.0), "{chmod:?}");
    let chmod = value(r, "overlay2", "metadata", "chmod", "bytes_copied");
    assert!(chmod.iter().any(|(_, v)| *v > 0.0), "{chmod:?}");

    // vfs snapshots copy the image; vfs containers cache their own pages.
    let snap = value(r, "vfs", "snapshot", "", "store_bytes");
    assert!(snap.iter().all(|(x, v)| *v >= *x), "{snap:?}");
    let pc = value(r, "overlay2", "sharing", "", "page_cache_bytes");
    assert!(pc.windows(2).all(|w| w[0].1 == w[1].1), "{pc:?}");
    let pc = value(r, "vfs", "sharing", "", "page_cache_bytes");
    assert!(grows(&pc), "{pc:?}");
}

#[test]
fn modelled_csv_is_byte_identical_across_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // Once through the command line ...
    let stdout = layerlab_testkit::output(
        Command::new(BIN)
            .arg("run")
            .arg(configs().join("quick.toml"))
            .arg("--quick")
            .arg("--out")
            .arg(&a),
    )
    .expect("run layerlab");
    assert!(stdout.contains("harness overhead"), "{stdout}");
    // ... once through the library.
    let exp = Experiment::load(configs().join("quick.toml")).expect("quick.toml");
    let mut opts = RunOptions::new(&b);
    opts.quick = true;
    opts.progress = false;
    let r = runner::run(&exp, &opts).expect("run");
    output::write_results(&r, &b).expect("write");
    let ma = fs::read(a.join("modelled.csv")).expect("a/modelled.csv");
    let mb = fs::read(b.join("modelled.csv")).expect("b/modelled.csv");
    assert!(ma.len() > 1000);
    // the seeded workload's rows are among them (its operations come from the generator)
    assert!(
        String::from_utf8_lossy(&ma).contains(",mixed,"),
        "modelled.csv has no mixed rows"
    );
    assert!(
        ma == mb,
        "modelled.csv differs between two runs of the same config and seed"
    );
    for f in [
        "results.csv",
        "results.json",
        "summary.csv",
        "summary.json",
        "environment.json",
    ] {
        assert!(a.join(f).is_file(), "{f} missing");
    }
    let env: serde_json::Value =
        serde_json::from_slice(&fs::read(a.join("environment.json")).expect("env")).expect("json");
    assert_eq!(env["seed"], 7);
    assert_eq!(env["config_hash"].as_str().map(str::len), Some(64));
    // No stores are left behind.
    let left: Vec<_> = fs::read_dir(&a)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".layerlab-run-")
        })
        .collect();
    assert!(left.is_empty());
}

#[test]
fn run_command_reports_a_bad_config_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    fs::write(&path, "name = \"x\"\nrepetitons = 2\n").expect("write");
    let out = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("bad.toml:2:1: key `repetitons`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
