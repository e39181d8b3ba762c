//! readdir of a directory spread over 64 branches, aufs against overlay2 on the same stack:
//! each of the 64 layers adds one file to `/` (so the root is in every branch) and one to
//! `/data`, deleting the one below (a whiteout per layer). Warm (the same listing repeated:
//! the lookup is cached on both, the merge is redone on both) and cold (the first listing
//! after the store is opened). The Meter counts of one cold and one warm listing are
//! printed once per driver and directory: aufs reads its `.wh..wh.orph` housekeeping entry
//! in every branch root, whiteouts cost one entry on both formats.

mod common;
use common::{id, path};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use layerlab_core::{ops, LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, Access, Options};
use std::hint::black_box;
use std::path::Path;

const DEPTH: usize = 64;
const DRIVERS: [&str; 2] = ["aufs", "overlay2"];

/// Builds the stack; returns the top layer's id.
fn build(driver: &str, root: &Path) -> LayerId {
    let mut d =
        registry::init(driver, root, Options::new()).unwrap_or_else(|e| unreachable!("{e}"));
    let mut parent: Option<LayerId> = None;
    for i in 0..DEPTH {
        let l = id(&format!("l{i}"));
        d.create_layer(&l, parent.as_ref())
            .unwrap_or_else(|e| unreachable!("{e}"));
        ops::write_file(&mut d, &l, &path(&format!("/f{i}")), b"x", 0o644)
            .unwrap_or_else(|e| unreachable!("{e}"));
        ops::mkdir_p(&mut d, &l, &path("/data"), 0o755).unwrap_or_else(|e| unreachable!("{e}"));
        ops::write_file(&mut d, &l, &path(&format!("/data/g{i}")), b"x", 0o644)
            .unwrap_or_else(|e| unreachable!("{e}"));
        if i > 0 {
            d.unlink(&l, &path(&format!("/data/g{}", i - 1)))
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        d.commit(&l).unwrap_or_else(|e| unreachable!("{e}"));
        parent = Some(l);
    }
    parent.unwrap_or_else(|| unreachable!())
}

fn list<D: LayerDriver>(d: &mut D, top: &LayerId, dir: &LayerPath) -> usize {
    d.readdir(top, dir).map(|v| v.len()).unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("readdir_64_branches");
    g.sample_size(30);
    let dirs = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let stores: Vec<(&str, std::path::PathBuf, LayerId)> = DRIVERS
        .iter()
        .map(|name| {
            let root = dirs.path().join(name);
            let top = build(name, &root);
            (*name, root, top)
        })
        .collect();
    for dir in ["/", "/data"] {
        let p = path(dir);
        for (name, root, top) in &stores {
            let mut cold =
                registry::open(root, Access::Read).unwrap_or_else(|e| unreachable!("{e}"));
            let n = list(&mut cold, top, &p);
            let cold_counts = cold.meter().counts;
            cold.meter_mut().reset();
            list(&mut cold, top, &p);
            eprintln!(
                "meter {name} readdir {dir} ({n} entries shown): cold [{}] warm [{}]",
                cold_counts.summary(),
                cold.meter().counts.summary()
            );
            g.bench_function(BenchmarkId::new(format!("{name}/warm"), dir), |b| {
                b.iter(|| black_box(list(&mut cold, top, &p)))
            });
            drop(cold);
            g.bench_function(BenchmarkId::new(format!("{name}/cold"), dir), |b| {
                b.iter_batched(
                    || registry::open(root, Access::Read).unwrap_or_else(|e| unreachable!("{e}")),
                    |mut d| black_box(list(&mut d, top, &p)),
                    BatchSize::PerIteration,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
