//! The space metric includes the image on every driver, and a calibrated run records its
//! profile in the CSV and JSON outputs and its hash in the environment.

// A test fails by panicking.
#![allow(clippy::expect_used, clippy::panic)]

use layerlab::harness::config::Experiment;
use layerlab::harness::results::Source;
use layerlab::harness::runner::{self, RunOptions};
use layerlab::harness::{calibration, output};
use std::fs;

const MIB: f64 = 1024.0 * 1024.0;

fn experiment(text: &str) -> (Experiment, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exp.toml");
    fs::write(&path, text).expect("write config");
    (Experiment::load(&path).expect("config"), dir)
}

/// An image of 2 MiB of files (plus a 512-byte state file) and one container: every
/// driver's disk bytes hold at least the image, whether the driver counts the image as
/// exclusive to its layer (overlay2) or as shared with the container (btrfs, zfs,
/// devicemapper).
#[test]
fn every_drivers_space_at_one_container_holds_the_image() {
    let (exp, dir) = experiment(
        "name = \"space\"\nrepetitions = 1\nprofiles = [\"nvme\"]\n\
         [[workload.sharing]]\ncontainers = [1]\nfiles = 20\nbytes = \"2MiB\"\nreads = 5\n",
    );
    let mut opts = RunOptions::new(dir.path().join("out"));
    opts.progress = false;
    let r = runner::run(&exp, &opts).expect("run");
    assert!(!exp.drivers.is_empty());
    for d in &exp.drivers {
        let disk: Vec<f64> = r
            .rows
            .iter()
            .filter(|row| row.driver == d.label && row.metric == "disk_bytes" && row.x == 1.0)
            .map(|row| row.value)
            .collect();
        assert_eq!(disk.len(), 1, "{}: {disk:?}", d.label);
        assert!(
            disk[0] >= 2.0 * MIB,
            "{}: disk bytes {} at one container, below the 2 MiB image",
            d.label,
            disk[0]
        );
        let logical = r
            .rows
            .iter()
            .find(|row| row.driver == d.label && row.metric == "logical_bytes")
            .expect("logical bytes");
        assert_eq!(logical.source, Source::Derived);
        assert_eq!(logical.value, 2.0 * MIB + 512.0 + 4096.0);
    }
}

/// A calibrated run: the profile's rows (modelled, profile `calibrated`) in results.csv and
/// results.json, the profile itself in profiles.csv and profiles.json, and its hash in
/// environment.json.
#[test]
fn the_calibrated_profile_is_in_the_csv_and_json() {
    let (exp, dir) = experiment(
        "name = \"cal\"\nrepetitions = 1\ndrivers = [\"vfs\", \"overlay2\"]\n\
         profiles = [\"nvme\"]\n\
         [[workload.copy-up]]\nsizes = [\"4KiB\", \"64KiB\"]\n",
    );
    let cal = calibration::measure(dir.path(), 1 << 20).expect("calibrate");
    assert_eq!(
        cal.profile.fingerprint,
        calibration::fingerprint(dir.path())
    );
    let out = dir.path().join("out");
    let mut opts = RunOptions::new(&out);
    opts.progress = false;
    opts.calibration = Some(cal.clone());
    let r = runner::run(&exp, &opts).expect("run");
    output::write_results(&r, &out).expect("write");
    let read = |f: &str| fs::read_to_string(out.join(f)).expect(f);
    let csv = read("results.csv");
    assert!(
        csv.lines()
            .any(|l| l.contains(",calibrated,modelled,") && l.contains("overlay2")),
        "no calibrated rows in results.csv"
    );
    assert!(read("results.json").contains("\"profile\": \"calibrated\""));
    assert!(read("summary.csv").contains(",calibrated,modelled,"));
    let profiles = read("profiles.csv");
    assert!(profiles
        .lines()
        .next()
        .is_some_and(|h| h.contains("probe_cold_us")));
    assert!(
        profiles
            .lines()
            .any(|l| l.starts_with("calibrated,") && l.contains(&cal.profile.fingerprint)),
        "{profiles}"
    );
    let json = read("profiles.json");
    assert!(json.contains("\"name\": \"calibrated\"") && json.contains(&cal.profile.fingerprint));
    let env = read("environment.json");
    assert!(env.contains(&cal.hash()), "{env}");
    assert_eq!(cal.hash().len(), 64);
    // a recorded calibration is used only on the machine it was measured on
    let file = dir.path().join("calibrated.toml");
    calibration::record(&cal, &file).expect("record");
    assert!(calibration::recorded(&file, dir.path())
        .expect("read")
        .is_some());
    let other = cal
        .toml
        .replace(&cal.profile.fingerprint, "0000000000000000");
    fs::write(&file, other).expect("write");
    assert!(calibration::recorded(&file, dir.path())
        .expect("read")
        .is_none());
}
