//! The report: files written, plots drawn with text, sentences computed from the data, a
//! self-contained HTML page, and no panic on odd data. Built from synthetic `Results`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use layerlab::harness::profile::Profile;
use layerlab::harness::report::{self, text};
use layerlab::harness::results::{Environment, Results, Row, Source, Summary};
use std::path::Path;

const MIB: f64 = 1024.0 * 1024.0;

/// The charts a report of the synthetic results draws, by file name.
const CHARTS: [&str; 6] = [
    "copy-up",
    "read-depth",
    "read-depth-measured",
    "sharing",
    "snapshot",
    "mixed",
];

/// Where a synthetic summary stands: driver, workload, x, parameter and variant.
struct At<'a> {
    driver: &'a str,
    workload: &'a str,
    x: f64,
    parameter: &'a str,
    variant: &'a str,
}

fn at<'a>(
    driver: &'a str,
    workload: &'a str,
    x: f64,
    parameter: &'a str,
    variant: &'a str,
) -> At<'a> {
    At {
        driver,
        workload,
        x,
        parameter,
        variant,
    }
}

impl At<'_> {
    /// A time in µs modelled on `profile` (one value).
    fn modelled(&self, profile: &str, us: f64) -> Summary {
        self.summary("modelled_us", profile, Source::Modelled, "µs", us, 1)
    }

    /// A time in µs measured over three repetitions.
    fn measured(&self, us: f64) -> Summary {
        self.summary("measured_us", "", Source::Measured, "µs", us, 3)
    }

    /// Any other figure, on no profile.
    fn value(&self, metric: &str, source: Source, unit: &str, median: f64, n: usize) -> Summary {
        self.summary(metric, "", source, unit, median, n)
    }

    fn summary(
        &self,
        metric: &str,
        profile: &str,
        source: Source,
        unit: &str,
        median: f64,
        n: usize,
    ) -> Summary {
        let spread = if n > 1 { median * 0.05 } else { 0.0 };
        Summary {
            experiment: "synthetic".into(),
            driver: self.driver.into(),
            workload: self.workload.into(),
            parameter: self.parameter.into(),
            x: self.x,
            variant: self.variant.into(),
            metric: metric.into(),
            profile: profile.into(),
            source,
            unit: unit.into(),
            n,
            median,
            min: median - spread,
            max: median + spread,
            mean: median,
            p99: median + spread,
            ci_low: median - spread,
            ci_high: median + spread,
            ci_level: if n > 5 { 0.95 } else { 0.0 },
        }
    }
}

fn size_name(b: f64) -> String {
    if b >= MIB {
        format!("{}MiB", b / MIB)
    } else {
        format!("{}KiB", b / 1024.0)
    }
}

/// overlay2's modelled copy-up is exactly 20 + 250 µs per MiB on nvme; vfs copies nothing.
fn overlay2_copy_up_us(bytes: f64) -> f64 {
    20.0 + 250.0 * bytes / MIB
}

fn synthetic(drivers: &[&str]) -> Results {
    let mut s = Vec::new();
    let sizes = [4096.0, 65536.0, MIB, 16.0 * MIB, 64.0 * MIB];
    for (di, d) in drivers.iter().enumerate() {
        let k = 1.0 + di as f64;
        for &b in &sizes {
            let p = size_name(b);
            let (nvme, hdd) = if d.starts_with("overlay2") {
                (overlay2_copy_up_us(b), 8000.0 + 6000.0 * b / MIB)
            } else {
                (3.0 * k, 8000.0)
            };
            let here = at(d, "copy-up", b, &p, "");
            s.push(here.modelled("nvme", nvme));
            s.push(here.modelled("hdd", hdd));
            s.push(here.measured(nvme * 1.7 + 15.0));
            let copied = if d.starts_with("overlay2") { b } else { 0.0 };
            s.push(here.value("bytes_copied", Source::Counted, "bytes", copied, 1));
            s.push(here.value("fsyncs", Source::Counted, "count", 0.0, 1));
        }
        for depth in [1.0, 8.0, 32.0, 128.0] {
            let p = format!("depth {depth}");
            let per = if *d == "vfs" { 0.0 } else { 35.0 };
            s.push(at(d, "read-depth", depth, &p, "cold").modelled("nvme", 900.0 + per * depth));
            s.push(
                at(d, "read-depth", depth, &p, "warm").modelled("nvme", 5.0 + per * depth / 100.0),
            );
            s.push(at(d, "read-depth", depth, &p, "cold").measured(30.0 + per * depth / 10.0));
            s.push(at(d, "read-depth", depth, &p, "warm").measured(4.0 + per * depth / 200.0));
        }
        for c in [1.0, 2.0, 4.0, 8.0] {
            let p = format!("{c} containers");
            let store = if *d == "vfs" {
                50.0 * MIB * (1.0 + c)
            } else {
                50.0 * MIB + c * 40960.0
            };
            let here = at(d, "sharing", c, &p, "");
            s.push(here.value("disk_bytes", Source::Measured, "bytes", store, 1));
            s.push(here.value("page_cache_bytes", Source::Derived, "bytes", store / 2.0, 1));
        }
        for &b in &sizes[1..] {
            let p = size_name(b);
            let m = if *d == "vfs" {
                100.0 + 900.0 * b / MIB
            } else {
                60.0
            };
            s.push(at(d, "snapshot", b, &p, "").modelled("nvme", m));
            s.push(at(d, "snapshot", b, &p, "").measured(m * 2.0));
        }
        s.push(at(d, "mixed", 0.0, "", "").value(
            "ops_per_s",
            Source::Measured,
            "ops/s",
            10000.0 / k,
            3,
        ));
        for v in ["chmod", "chown", "rename", "delete"] {
            s.push(at(d, "metadata", 0.0, "", v).modelled("nvme", 10.0 * k));
        }
    }
    let rows = s
        .iter()
        .map(|x| Row {
            experiment: x.experiment.clone(),
            driver: x.driver.clone(),
            workload: x.workload.clone(),
            parameter: x.parameter.clone(),
            x: x.x,
            variant: x.variant.clone(),
            repetition: 0,
            metric: x.metric.clone(),
            profile: x.profile.clone(),
            source: x.source,
            unit: x.unit.clone(),
            value: x.median,
        })
        .collect();
    Results {
        experiment: "synthetic".into(),
        rows,
        summaries: s,
        environment: Environment {
            cpu: "Test CPU x2".into(),
            kernel: "6.1.0-test".into(),
            store_filesystem: "ext4".into(),
            layerlab_version: "0.1.0".into(),
            rustc: "rustc 1.85".into(),
            config_hash: "abc123".into(),
            seed: 42,
            quick: true,
            started: "2026-11-01T00:00:00Z".into(),
            drop_caches: true,
            ..Environment::default()
        },
        notes: vec!["overlay2 cannot run depth 200 (more than 128 lower layers)".into()],
        profiles: Vec::new(),
        families: drivers
            .iter()
            .map(|d| {
                let fam = if d.starts_with("overlay2") || d.starts_with("kernel-overlay") {
                    "union drivers"
                } else {
                    "copy and snapshot drivers"
                };
                (d.to_string(), fam.to_string())
            })
            .collect(),
        machines: Vec::new(),
    }
}

/// The report's section whose heading starts with `prefix`.
fn section<'a>(r: &'a report::Report, prefix: &str) -> &'a report::Section {
    r.sections
        .iter()
        .find(|s| s.heading.starts_with(prefix))
        .unwrap_or_else(|| panic!("no section {prefix}"))
}

fn keep(dir: &Path, name: &str) {
    // LAYERLAB_REPORT_KEEP=DIR copies the report there, to look at it.
    if let Some(to) = std::env::var_os("LAYERLAB_REPORT_KEEP") {
        let to = Path::new(&to).join(name);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Checks the PNG signature and that the IHDR says 960 x 600.
fn check_png(path: &Path) {
    let b = std::fs::read(path).unwrap();
    assert!(b.len() > 1000, "{} is too small", path.display());
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&b[12..16], b"IHDR");
    let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
    let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
    assert_eq!((w, h), report::PLOT_SIZE, "{}", path.display());
}

/// The text of every `<text>` element of an SVG.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

fn assert_self_contained(html: &str) {
    for attr in ["src=", "href=", "url("] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            let after = rest[i + attr.len()..].trim_start_matches(['"', '\'']);
            // in-page links (the table of contents) are not resources
            assert!(
                after.starts_with("data:") || (attr == "href=" && after.starts_with('#')),
                "external reference in report.html: {}",
                &rest[i..(i + 80).min(rest.len())]
            );
            rest = &rest[i + attr.len()..];
        }
    }
    assert!(!html.contains("<link"), "report.html links a resource");
    assert!(!html.contains("<script"), "report.html has a script");
}

#[test]
fn writes_markdown_html_and_every_plot() {
    let results = synthetic(&["vfs", "overlay2", "overlay2+metacopy"]);
    let dir = tempfile::tempdir().unwrap();
    let written = report::write_report(&results, dir.path()).unwrap();
    keep(dir.path(), "full");
    assert!(written.markdown.ends_with("report.md"));
    assert!(written.html.ends_with("report.html"));
    for id in CHARTS {
        let svg_path = dir.path().join(format!("{id}.svg"));
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        assert!(svg.contains("<svg"), "{id}.svg");
        let texts = svg_texts(&svg);
        for d in ["vfs", "overlay2", "overlay2+metacopy"] {
            assert!(
                // a label names drivers before its comma; identical lines are merged
                // into one label, `overlay2 = overlay2+metacopy`
                texts
                    .iter()
                    .any(|t| t.split(',').next().is_some_and(|names| names
                        .split(" = ")
                        .any(|n| n == d || n.starts_with(&format!("{d} "))))),
                "{id}.svg does not name {d}: {texts:?}"
            );
        }
        check_png(&dir.path().join(format!("{id}.png")));
        assert!(written.plots.contains(&svg_path));
    }
    let copy_up =
        svg_texts(&std::fs::read_to_string(dir.path().join("copy-up.svg")).unwrap()).join("\n");
    assert!(copy_up.contains("file size (bytes)"));
    assert!(copy_up.contains("time (µs)"));
    assert!(copy_up.contains("modelled (nvme)"));
    assert!(copy_up.contains("measured"));
    let depth =
        svg_texts(&std::fs::read_to_string(dir.path().join("read-depth.svg")).unwrap()).join("\n");
    assert!(depth.contains("depth (layers)"));
    assert!(depth.contains("cold") && depth.contains("warm"));
    let sharing =
        svg_texts(&std::fs::read_to_string(dir.path().join("sharing.svg")).unwrap()).join("\n");
    assert!(sharing.contains("containers") && sharing.contains("disk bytes (MiB)"));
    let mixed =
        svg_texts(&std::fs::read_to_string(dir.path().join("mixed.svg")).unwrap()).join("\n");
    assert!(mixed.contains("ops/s"));

    let md = std::fs::read_to_string(&written.markdown).unwrap();
    for id in CHARTS {
        assert!(
            md.contains(&format!("({id}.svg)")),
            "report.md lacks {id}.svg"
        );
    }
    // wide tables say their source, metric and unit in the title
    assert!(
        md.contains("time, measured, µs (median (interval of the median))"),
        "{md}"
    );
    assert!(md.contains("time, modelled (nvme), µs"), "{md}");
    assert!(md.contains("| driver | 4KiB | 64KiB |"), "sizes as columns");
    // a table of contents links every section
    assert!(md.contains("- [Scorecard and verdict](#scorecard-and-verdict)"));
    assert!(md.contains("- [Environment](#environment)"));
    assert!(md.contains("Test CPU x2") && md.contains("6.1.0-test"));
    assert!(md.contains("modelled µs (hdd)"), "the every-profile table");
    assert!(md.contains("bytes copied, counted"));

    let html = std::fs::read_to_string(&written.html).unwrap();
    assert_eq!(html.matches("<svg").count(), CHARTS.len());
    assert!(!html.contains("<?xml"));
    assert_self_contained(&html);
    assert!(html.contains("Test CPU x2"));
    assert!(
        md.contains("overlay2 cannot run depth 200"),
        "notes are reported"
    );
}

#[test]
fn sentences_state_computed_slopes_and_mention_every_driver() {
    let results = synthetic(&["vfs", "overlay2"]);
    let r = report::build(&results);
    let copy = section(&r, "Copy-up");
    let all = copy.sentences.join(" ");
    assert!(
        all.contains("overlay2 250 µs per MiB"),
        "slope of an exactly linear copy-up: {all}"
    );
    assert!(all.contains("vfs 0 µs per MiB"), "{all}");
    assert!(
        all.contains("modelled (nvme)") && all.contains("measured"),
        "{all}"
    );
    // At 64 MiB: overlay2 costs 20 + 250 * 64 = 16020 µs, vfs 3 µs: 5340 times; their
    // intervals are apart, so they are ranked.
    assert!(
        all.contains(
            "At 64 MiB, the first write costs (modelled (nvme)), in order: vfs 3 µs; then \
             overlay2 16020 µs, 5340 times the first"
        ),
        "{all}"
    );
    assert!((2..=4).contains(&copy.sentences.len()), "{all}");

    let depth = r
        .sections
        .iter()
        .find(|s| s.heading.starts_with("Read latency") && s.heading.contains("modelled"))
        .unwrap()
        .sentences
        .join(" ");
    assert!(depth.contains("overlay2 35 µs per layer"), "{depth}");
    assert!(depth.contains("overlay2 0.35 µs per layer"), "{depth}");
    assert!(depth.contains("vfs 0 µs per layer"), "{depth}");

    let sharing = section(&r, "Space").sentences.join(" ");
    assert!(sharing.contains("vfs 50 MiB"), "{sharing}");
    assert!(sharing.contains("overlay2 40 KiB"), "{sharing}");

    let mixed = section(&r, "Mixed").sentences.join(" ");
    assert!(mixed.contains("vfs 10000 ops/s"), "{mixed}");
    assert!(mixed.contains("overlay2 5000 ops/s"), "{mixed}");
    assert!(
        mixed.contains("Fastest first, in order: vfs 10000 ops/s; then overlay2 5000 ops/s"),
        "{mixed}"
    );

    for sec in &r.sections {
        let all = sec.sentences.join(" ");
        for d in ["vfs", "overlay2"] {
            assert!(
                all.contains(d),
                "section {} does not name {d}: {all}",
                sec.heading
            );
        }
    }
}

#[test]
fn numbers_and_fits() {
    assert_eq!(text::num(250.0), "250");
    assert_eq!(text::num(16020.4), "16020");
    assert_eq!(text::num(2.5), "2.5");
    assert_eq!(text::num(0.0123), "0.0123");
    assert_eq!(text::num(-0.0), "0");
    assert_eq!(text::bytes(4096.0), "4 KiB");
    assert_eq!(text::bytes(1.5 * MIB), "1.5 MiB");
    assert_eq!(text::bytes(100.0), "100 bytes");
    let (a, b) = text::least_squares(&[(1.0, 3.0), (2.0, 5.0), (4.0, 9.0)]).unwrap();
    assert!((a - 1.0).abs() < 1e-9 && (b - 2.0).abs() < 1e-9);
    assert!(text::least_squares(&[(1.0, 3.0)]).is_none());
    assert!(text::least_squares(&[(1.0, 3.0), (1.0, 4.0)]).is_none());
}

fn write_ok(results: &Results, name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let w = report::write_report(results, dir.path()).unwrap();
    keep(dir.path(), name);
    for p in &w.plots {
        assert!(std::fs::metadata(p).unwrap().len() > 0, "{}", p.display());
        if p.extension().is_some_and(|e| e == "png") {
            check_png(p);
        }
    }
    assert_self_contained(&std::fs::read_to_string(&w.html).unwrap());
    std::fs::read_to_string(&w.markdown).unwrap()
}

#[test]
fn one_driver_only() {
    let md = write_ok(&synthetic(&["overlay2"]), "one-driver");
    assert!(md.contains("Only overlay2 has"), "{md}");
}

#[test]
fn empty_results_write_a_report_without_plots() {
    let md = write_ok(&Results::default(), "empty");
    assert!(md.contains("no data for this plot"));
}

#[test]
fn zeros_on_a_log_axis_are_left_off_and_said() {
    let mut results = synthetic(&["vfs", "overlay2"]);
    for s in &mut results.summaries {
        if s.driver == "vfs" && s.workload == "copy-up" && s.source == Source::Modelled {
            s.median = 0.0;
            s.ci_low = 0.0;
            s.ci_high = 0.0;
        }
    }
    let r = report::build(&results);
    let copy = section(&r, "Copy-up");
    assert!(
        copy.sentences
            .iter()
            .any(|s| s.contains("left off the plot")),
        "{:?}",
        copy.sentences
    );
    write_ok(&results, "zeros");
}

#[test]
fn single_points_missing_drivers_and_missing_workloads() {
    let mut results = synthetic(&["vfs", "overlay2"]);
    // One size of copy-up only; no vfs in the read-depth plot; no mixed and no snapshot.
    results.summaries.retain(|s| {
        let other_copy_up_size = s.workload == "copy-up" && s.x != 4096.0;
        let vfs_read_depth = s.workload == "read-depth" && s.driver == "vfs";
        let dropped_workload = s.workload == "mixed" || s.workload == "snapshot";
        !(other_copy_up_size || vfs_read_depth || dropped_workload)
    });
    let md = write_ok(&results, "sparse");
    assert!(md.contains("one point only"), "{md}");
    // A single measured repetition: no whiskers, no CI in the table.
    let mut single = synthetic(&["vfs"]);
    single.summaries.truncate(3);
    for s in &mut single.summaries {
        s.n = 1;
    }
    write_ok(&single, "single");
}

#[test]
fn negative_and_non_finite_values_do_not_panic() {
    let mut results = synthetic(&["vfs", "overlay2"]);
    for (i, s) in results.summaries.iter_mut().enumerate() {
        match i % 7 {
            0 => s.median = -5.0,
            1 => s.median = f64::NAN,
            2 => s.x = -1.0,
            _ => {}
        }
    }
    write_ok(&results, "odd");
}

#[test]
fn layerlab_report_quick_writes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_layerlab"))
        .args(["report", "--quick", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "layerlab report failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("report.html"), "{stdout}");
    keep(&out, "e2e");
    for f in [
        "report.md",
        "report.html",
        "results.csv",
        "summary.csv",
        "results.json",
    ] {
        assert!(
            std::fs::metadata(out.join(f)).unwrap().len() > 0,
            "{f} is missing or empty"
        );
    }
    for id in CHARTS {
        let svg = std::fs::read_to_string(out.join(format!("{id}.svg"))).unwrap();
        let texts = svg_texts(&svg).join("\n");
        assert!(
            texts.contains("overlay2") && texts.contains("vfs"),
            "{id}.svg"
        );
        check_png(&out.join(format!("{id}.png")));
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("µs per MiB") && md.contains("per layer"),
        "{md}"
    );
    // the profile calibrated before the run models every point too, in µs
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.contains(",modelled_us,calibrated,modelled,µs,")),
        "no modelled rows for the calibrated profile"
    );
    assert!(!csv.contains(",us,"), "a time's unit is µs");
    // where a kernel reference ran, the cost window measured beside it priced the model too
    if out.join("fidelity-copy-up.svg").exists() {
        let profiles = std::fs::read_to_string(out.join("profiles.csv")).unwrap();
        assert!(profiles.contains("\ncalibrated@copy-up,"), "{profiles}");
        assert!(csv
            .lines()
            .any(|l| l.contains(",overlay2,copy-up,") && l.contains(",calibrated@copy-up,")));
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(md.contains("**Costs that drift (µs)"), "{md}");
    } else {
        layerlab_testkit::skip(
            "report --quick: the cost window's profiles: no kernel reference driver ran here",
        );
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_self_contained(&html);
    // the six plots, plus the fidelity section's two where the kernel drivers ran
    let fidelity = ["fidelity-copy-up", "fidelity-read-depth"]
        .iter()
        .filter(|id| out.join(format!("{id}.svg")).exists())
        .count();
    assert_eq!(html.matches("<svg").count(), 6 + fidelity);
}

/// Two drivers whose intervals overlap are not ranked: the sentence calls them not
/// distinguishable, and the scorecard puts them in one tier.
#[test]
fn overlapping_intervals_are_not_ranked() {
    let mut results = synthetic(&["vfs", "overlay2"]);
    for s in &mut results.summaries {
        if s.workload == "copy-up" && s.source == Source::Measured && s.x == 64.0 * MIB {
            let (m, lo, hi) = if s.driver == "vfs" {
                (100.0, 80.0, 120.0)
            } else {
                (110.0, 90.0, 130.0)
            };
            (s.median, s.ci_low, s.ci_high, s.n) = (m, lo, hi, 5);
        }
    }
    let r = report::build(&results);
    let copy = section(&r, "Copy-up");
    let measured = copy
        .sentences
        .iter()
        .find(|s| s.starts_with("At 64 MiB") && s.contains("(measured)"))
        .unwrap();
    assert!(
        measured.contains("vfs = overlay2 are not distinguishable"),
        "{measured}"
    );
    assert!(!measured.contains("then"), "a ranking: {measured}");
    let card = &r.sections[0];
    assert!(card.heading.starts_with("Scorecard"));
    let table = &card.tables[0];
    let col = table
        .columns
        .iter()
        .position(|c| c.contains("64MiB") && c.starts_with("first write"))
        .unwrap();
    let tiers: Vec<Option<usize>> = table.tiers.iter().map(|row| row[col]).collect();
    assert_eq!(tiers, vec![Some(0), Some(0)], "{table:?}");
    assert!(table.rows.iter().all(|row| row[col].starts_with('①')));
}

/// The fidelity section judges every comparison by a target it defines in its own text.
#[test]
fn every_fidelity_target_is_defined_where_it_is_judged() {
    let results = synthetic(&["vfs", "overlay2", "kernel-overlay"]);
    let r = report::build(&results);
    let fid = r
        .sections
        .iter()
        .find(|s| s.heading.starts_with("Fidelity"))
        .expect("a fidelity section");
    let table = fid.tables.first().expect("the fidelity table");
    assert!(!table.rows.is_empty());
    let target = table.columns.iter().position(|c| c == "target").unwrap();
    let verdict = table.columns.iter().position(|c| c == "verdict").unwrap();
    let text = fid.sentences.join(" ");
    for row in &table.rows {
        let t = &row[target];
        assert!(
            text.contains(&format!("Target {t} (")),
            "target {t} judged but not defined: {text}"
        );
        assert!(
            ["met", "missed", "undecided"].contains(&row[verdict].as_str()),
            "{row:?}"
        );
    }
}

/// Where the run has a cost window for a workload (`calibrated@<workload>`), the fidelity
/// section holds the model to the kernel with it, not with the calibration, says so, and
/// lists the window's costs; the table of every profile leaves it out.
#[test]
fn the_fidelity_section_prices_the_model_with_the_cost_window() {
    let mut results = synthetic(&["vfs", "overlay2", "kernel-overlay"]);
    let calibrated = Profile {
        name: "calibrated".into(),
        ..Profile::embedded("nvme").unwrap().unwrap()
    };
    let window = Profile {
        name: "calibrated@copy-up".into(),
        description: "measured beside the kernel references' copy-up runs".into(),
        fsync_us: 777.0,
        ..calibrated.clone()
    };
    let mut extra = Vec::new();
    for s in &results.summaries {
        if s.driver == "overlay2" && s.source == Source::Modelled && s.profile == "nvme" {
            let priced = |profile: &str, k: f64| Summary {
                profile: profile.into(),
                median: s.median * k,
                ci_low: s.median * k,
                ci_high: s.median * k,
                ..s.clone()
            };
            extra.push(priced("calibrated", 1.0));
            if s.workload == "copy-up" {
                extra.push(priced("calibrated@copy-up", 3.0));
            }
        }
    }
    results.summaries.extend(extra);
    results.profiles = vec![calibrated, window];
    let r = report::build(&results);
    let fid = section(&r, "Fidelity: the models");
    let table = &fid.tables[0];
    let model = table
        .columns
        .iter()
        .position(|c| c == "model modelled")
        .unwrap();
    let row_at = |what: &str, point: &str| {
        table
            .rows
            .iter()
            .find(|row| row[0].ends_with(what) && row[1] == point)
            .unwrap_or_else(|| panic!("no {what} row at {point}: {table:?}"))
    };
    let tripled = text::num(3.0 * overlay2_copy_up_us(MIB));
    assert_eq!(row_at("copy-up", "1 MiB")[model], format!("{tripled} µs"));
    let as_calibrated = text::num(900.0 + 35.0 * 8.0);
    assert_eq!(
        row_at("cold read", "depth 8")[model],
        format!("{as_calibrated} µs")
    );
    let text = fid.sentences.join(" ");
    assert!(text.contains("`calibrated@<workload>`"), "{text}");
    let costs = fid
        .tables
        .iter()
        .find(|t| t.title.starts_with("Costs that drift"))
        .expect("the window's costs");
    assert!(costs
        .rows
        .iter()
        .any(|row| row[0] == "`calibrated@copy-up`" && row[2] == "777"));
    let all = r
        .sections
        .iter()
        .flat_map(|s| &s.tables)
        .find(|t| t.title.starts_with("Modelled time on every device profile"));
    assert!(all.is_none_or(|t| t.columns.iter().all(|c| !c.contains('@'))));
}

/// Measured lines carry every repetition (drawn as dots beside the medians); exact ones none.
#[test]
fn measured_lines_carry_every_repetition() {
    let r = synthetic(&["vfs", "overlay2"]);
    let order = vec!["vfs".to_string(), "overlay2".to_string()];
    let measured = report::lines(&r, &order, "copy-up", "measured_us", Source::Measured, None);
    assert!(!measured.is_empty());
    for l in &measured {
        let rows: Vec<(f64, f64)> = r
            .rows
            .iter()
            .filter(|x| {
                x.driver == l.driver
                    && x.workload == "copy-up"
                    && x.metric == "measured_us"
                    && x.source == Source::Measured
                    && x.variant == l.variant
            })
            .map(|x| (x.x, x.value))
            .collect();
        assert!(!rows.is_empty());
        assert_eq!(l.runs, rows, "{}", l.driver);
    }
    for l in report::lines(&r, &order, "copy-up", "modelled_us", Source::Modelled, None) {
        assert!(l.runs.is_empty(), "{}: exact values have no runs", l.driver);
    }
}
