//! Snapshot time against subvolume size: a child layer made on a committed base of 10
//! files and of 100,000 files (empty files in 100 directories), on btrfs (a subvolume
//! snapshot) and zfs (a clone of the base's `@commit` snapshot), in the same run. Both are
//! O(1) in the number of files (a root pointer copied and one log record), so the two
//! sizes should take about the same time. Stores live in /dev/shm where there is one, so
//! building the 100,000-file base does not wait on the disk. LAYERLAB_SNAPSHOT_FILES
//! changes the large size.

mod common;
use common::{env_or, id, path};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use layerlab_core::LayerDriver;
use layerlab_drivers::{registry, AnyDriver, Options};
use std::hint::black_box;

fn build(root: &std::path::Path, driver: &str, files: usize) -> AnyDriver {
    let mut d =
        registry::init(driver, root, Options::new()).unwrap_or_else(|e| unreachable!("{e}"));
    let base = id("base");
    d.create_layer(&base, None)
        .unwrap_or_else(|e| unreachable!("{e}"));
    let dirs = files.div_ceil(1000);
    for k in 0..dirs {
        d.mkdir(&base, &path(&format!("/d{k}")), 0o755)
            .unwrap_or_else(|e| unreachable!("{e}"));
    }
    for i in 0..files {
        d.create(&base, &path(&format!("/d{}/f{i}", i / 1000)), 0o644)
            .unwrap_or_else(|e| unreachable!("{e}"));
    }
    d.commit(&base).unwrap_or_else(|e| unreachable!("{e}"));
    d
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap_or_else(|e| unreachable!("{e}"));
    for driver in ["btrfs", "zfs"] {
        for files in [10, env_or("LAYERLAB_SNAPSHOT_FILES", 100_000)] {
            let root = dir.path().join(format!("{driver}-{files}"));
            let mut d = build(&root, driver, files);
            let base = id("base");
            let mut n = 0u64;
            g.bench_function(format!("{driver}/{files}-files"), |b| {
                b.iter_custom(|iters| {
                    let mut total = std::time::Duration::ZERO;
                    for _ in 0..iters {
                        let c = id(&format!("c{n}"));
                        n += 1;
                        d.meter_mut().reset();
                        let t = std::time::Instant::now();
                        black_box(d.create_layer(&c, Some(&base)).is_ok());
                        total += t.elapsed();
                        // not timed: drop the snapshot again
                        let _ = d.remove_layer(&c);
                    }
                    total
                })
            });
            let c = id("probe");
            d.meter_mut().reset();
            let _ = d.create_layer(&c, Some(&base));
            eprintln!(
                "meter {driver} snapshot of {files} files: [{}]",
                d.meter().counts.summary()
            );
            drop(d);
            let _ = std::fs::remove_dir_all(&root);
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
