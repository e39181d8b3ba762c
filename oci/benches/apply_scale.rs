//! Apply scaling: archives of 1,000, 10,000 and 100,000 small files applied to an active
//! layer on every driver, beside GNU `tar x` of the same archive into a plain directory, in
//! the same run (issue 12, "Scale"). The 100,000 files are spread as an image spreads them
//! (a few hundred directories, two levels deep); a flat case puts 10,000 files in one
//! directory, which a quadratic directory format cannot hide. Each point is timed
//! `LAYERLAB_SCALE_REPS` times (default 3, in turn with `tar x` so that load on the shared
//! machine falls on both) and reported as the median with the min..max interval, the ratio
//! of the driver's median to `tar x`'s, and the ratio of each size to the size ten times
//! smaller (linear is 10x). Before every timed sample the host's dirty pages are written
//! out (`sync`, untimed): otherwise the first fsync of one side would also write out what
//! the other side left dirty (ext4 commits its whole journal transaction on an fsync), and
//! each sample would pay for the one before it.
//!
//! The timed region is what `layerlab apply` does after its process starts: open the store
//! for writing, parse, check and apply the archive, close the store. `tar x` is timed as a
//! process (GNU tar's own start is a millisecond). Knobs: `LAYERLAB_SCALE_DRIVERS`
//! (comma list, default the six model drivers), `LAYERLAB_SCALE_SIZES` (default
//! `1000,10000,100000`), `LAYERLAB_SCALE_FLAT` (default 10000, 0 for none),
//! `LAYERLAB_SCALE_DIR` (where stores and trees go, default the temp dir),
//! `LAYERLAB_SCALE_BUDGET` (seconds; a driver whose point took longer skips its bigger
//! sizes, default 120).

use layerlab_core::{LayerDriver, LayerId};
use layerlab_drivers::{registry, Access, Options};
use layerlab_oci::{apply_archive_in_store, Limits};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MODEL_DRIVERS: &str = "vfs,overlay2,aufs,devicemapper,btrfs,zfs";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    let _ = writeln!(std::io::stderr(), "apply_scale: {what}: {e}");
    std::process::exit(1)
}

/// One archive of the benchmark.
struct Case {
    label: String,
    files: usize,
    /// Files per directory; 0 for one flat directory.
    per_dir: usize,
    tar: PathBuf,
}

/// Writes `files` small files (40..1,000 bytes) as an image layer would hold them: the
/// directories `usr/lib/dNNN/` of `per_dir` files each, every directory entry before its
/// files; or all in `flat/` when `per_dir` is 0.
fn write_archive(path: &Path, files: usize, per_dir: usize) {
    let f = std::fs::File::create(path).unwrap_or_else(|e| fail("creating the archive", e));
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    let dir = |b: &mut tar::Builder<_>, name: &str| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, std::io::empty())
            .unwrap_or_else(|e| fail("writing the archive", e));
    };
    dir(&mut b, "usr/");
    dir(&mut b, "usr/lib/");
    if per_dir == 0 {
        dir(&mut b, "flat/");
    }
    let body = vec![b'x'; 1000];
    for i in 0..files {
        let name = match i.checked_div(per_dir) {
            None => format!("flat/file{i:06}"),
            Some(d) => {
                if i % per_dir == 0 {
                    dir(&mut b, &format!("usr/lib/d{d:04}/"));
                }
                format!("usr/lib/d{d:04}/file{i:06}.so")
            }
        };
        let len = 40 + (i * 37) % 960;
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(len as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, &name, &body[..len])
            .unwrap_or_else(|e| fail("writing the archive", e));
    }
    b.into_inner()
        .and_then(|mut w| w.flush())
        .unwrap_or_else(|e| fail("finishing the archive", e));
}

/// Writes out the host's dirty pages, so that a sample does not pay for the previous one's.
fn settle() {
    let st = Command::new("sync")
        .status()
        .unwrap_or_else(|e| fail("running sync", e));
    if !st.success() {
        fail("sync", st);
    }
}

fn tar_x(case: &Case, dir: &Path) -> Duration {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| fail("mkdir", e));
    settle();
    let t = Instant::now();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&case.tar)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap_or_else(|e| fail("running tar", e));
    let d = t.elapsed();
    if !st.success() {
        fail("tar x", st);
    }
    d
}

/// The store's options: the defaults, but a devicemapper pool and device large enough
/// for the archive (each small file takes a 64 KiB data block and an index block).
fn options(driver: &str, files: usize) -> Options {
    let mut o = Options::new();
    if driver == "devicemapper" && files > 40_000 {
        let gib = (files as u64 * 2 * 64 * 1024 * 5 / 4)
            .div_ceil(1 << 30)
            .max(8);
        o.insert("dm.loopdatasize".into(), format!("{gib}GiB"));
        o.insert("dm.basesize".into(), format!("{gib}GiB"));
    }
    o
}

fn apply(driver: &str, case: &Case, root: &Path) -> Result<Duration, String> {
    let layer = LayerId::new("target").unwrap_or_else(|e| fail("id", e));
    {
        let mut d = registry::init(driver, root, options(driver, case.files))
            .unwrap_or_else(|e| fail(&format!("init {driver}"), e));
        d.create_layer(&layer, None)
            .unwrap_or_else(|e| fail("create layer", e));
    }
    let limits = Limits::default();
    settle();
    let t = Instant::now();
    let summary = {
        let mut d =
            registry::open(root, Access::Write).unwrap_or_else(|e| fail("open the store", e));
        let f = std::fs::File::open(&case.tar).unwrap_or_else(|e| fail("open the archive", e));
        apply_archive_in_store(
            &mut d,
            root,
            &layer,
            &case.label,
            BufReader::new(f),
            &limits,
        )
        .map_err(|e| e.to_string())?
    };
    let d = t.elapsed();
    let dirs = if case.per_dir == 0 {
        3
    } else {
        2 + case.files.div_ceil(case.per_dir)
    };
    if summary.entries != case.files + dirs {
        fail(
            "apply",
            format!(
                "{} entries applied, {} expected",
                summary.entries,
                case.files + dirs
            ),
        );
    }
    Ok(d)
}

/// Median, min and max of the samples, in seconds.
fn stats(samples: &[Duration]) -> (f64, f64, f64) {
    let secs: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    layerlab_testkit::median_min_max(&secs)
}

fn rm(p: &Path) {
    if p.exists() {
        let _ = std::fs::remove_dir_all(p);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`) has nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let reps = env_num("LAYERLAB_SCALE_REPS", 3).max(1) as usize;
    let budget = env_num("LAYERLAB_SCALE_BUDGET", 120) as f64;
    let drivers: Vec<String> = env_or("LAYERLAB_SCALE_DRIVERS", MODEL_DRIVERS)
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let sizes: Vec<usize> = env_or("LAYERLAB_SCALE_SIZES", "1000,10000,100000")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let flat = env_num("LAYERLAB_SCALE_FLAT", 10_000) as usize;
    let base = tempfile::Builder::new()
        .prefix("apply-scale")
        .tempdir_in(env_or(
            "LAYERLAB_SCALE_DIR",
            &std::env::temp_dir().display().to_string(),
        ))
        .unwrap_or_else(|e| fail("temp dir", e));
    let mut cases: Vec<Case> = sizes
        .iter()
        .map(|&n| Case {
            label: format!("{n} files"),
            files: n,
            per_dir: 250,
            tar: base.path().join(format!("spread-{n}.tar")),
        })
        .collect();
    if flat > 0 {
        cases.push(Case {
            label: format!("{flat} flat"),
            files: flat,
            per_dir: 0,
            tar: base.path().join(format!("flat-{flat}.tar")),
        });
    }
    for c in &cases {
        write_archive(&c.tar, c.files, c.per_dir);
    }
    println!(
        "apply scaling, {reps} reps per point, median [min..max] seconds; \
         x tar = median / tar x median; x10 = median / median of the size ten times smaller"
    );
    println!(
        "{:<13} {:<13} {:>9} {:>21} {:>8} {:>7}",
        "driver", "archive", "median", "interval", "x tar", "x10"
    );
    let mut over: Vec<String> = drivers.clone();
    let mut prev: std::collections::BTreeMap<(String, usize), f64> = Default::default();
    let mut failed: std::collections::BTreeMap<(String, String), String> = Default::default();
    for c in &cases {
        let mut tar_samples = Vec::new();
        let mut drv_samples: Vec<Vec<Duration>> = vec![Vec::new(); drivers.len()];
        let mut active: Vec<bool> = drivers
            .iter()
            .map(|d| c.per_dir == 0 || over.contains(d))
            .collect();
        for rep in 0..reps {
            let dir = base.path().join(format!("tar-{rep}"));
            tar_samples.push(tar_x(c, &dir));
            rm(&dir);
            for (i, driver) in drivers.iter().enumerate() {
                if !active[i] {
                    continue;
                }
                let root = base.path().join(format!("store-{driver}"));
                rm(&root);
                let t = apply(driver, c, &root);
                rm(&root);
                let t = match t {
                    Ok(t) => t,
                    Err(e) => {
                        failed.insert((driver.clone(), c.label.clone()), e);
                        active[i] = false;
                        continue;
                    }
                };
                drv_samples[i].push(t);
                if t.as_secs_f64() > budget {
                    active[i] = false;
                }
            }
        }
        let (tm, tlo, thi) = stats(&tar_samples);
        let key = |name: &str| (name.to_string(), c.per_dir);
        let x10 = |name: &str, m: f64, prev: &std::collections::BTreeMap<_, f64>| match (
            c.per_dir,
            prev.get(&key(name)),
        ) {
            (0, _) | (_, None) => "-".to_string(),
            (_, Some(p)) => format!("{:.1}", m / p),
        };
        println!(
            "{:<13} {:<13} {:>9.3} {:>21} {:>8} {:>7}",
            "tar x",
            c.label,
            tm,
            format!("[{tlo:.3}..{thi:.3}]"),
            "1.0",
            x10("tar x", tm, &prev)
        );
        prev.insert(key("tar x"), tm);
        for (i, driver) in drivers.iter().enumerate() {
            if let Some(e) = failed.get(&(driver.clone(), c.label.clone())) {
                println!("{driver:<13} {:<13} failed: {e}", c.label);
                over.retain(|d| d != driver);
                continue;
            }
            if drv_samples[i].is_empty() {
                println!(
                    "{driver:<13} {:<13} skipped (a smaller size took over {budget} s)",
                    c.label
                );
                continue;
            }
            let (m, lo, hi) = stats(&drv_samples[i]);
            println!(
                "{:<13} {:<13} {:>9.3} {:>21} {:>8.1} {:>7}{}",
                driver,
                c.label,
                m,
                format!("[{lo:.3}..{hi:.3}]"),
                m / tm,
                x10(driver, m, &prev),
                if drv_samples[i].len() < reps {
                    format!(" ({} reps: over budget)", drv_samples[i].len())
                } else {
                    String::new()
                }
            );
            prev.insert(key(driver), m);
            if c.per_dir != 0 && m > budget {
                over.retain(|d| d != driver);
            }
        }
    }
}
