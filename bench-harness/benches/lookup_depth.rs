//! Read of a small file at the bottom of a stack of 1 and 128 layers, on every driver:
//! warm (the same lookup repeated: overlay2 answers from its lookup cache, as the kernel's
//! dentry cache does) and cold (the first lookup after the store is opened: every layer is
//! probed). The Meter counts of one cold and one warm read are printed beside the timings.

mod common;
use common::{id, path};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use layerlab::harness::bench_drivers;
use layerlab_core::{LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, Access, Options};
use std::hint::black_box;
use std::path::Path;

/// Builds a chain of `depth` layers (`l0` .. top; fewer where the driver's limit is lower)
/// with `/bottom.txt` (4 KiB) in `l0`, each upper layer adding one file; returns the top
/// layer's id and the depth built.
fn build(driver: &str, root: &Path, depth: usize) -> (LayerId, usize) {
    let mut d =
        registry::init(driver, root, Options::new()).unwrap_or_else(|e| unreachable!("{e}"));
    let depth = depth.min(d.semantics().max_depth.unwrap_or(usize::MAX));
    let mut parent: Option<LayerId> = None;
    for i in 0..depth {
        let l = id(&format!("l{i}"));
        d.create_layer(&l, parent.as_ref())
            .unwrap_or_else(|e| unreachable!("{e}"));
        let p = if i == 0 {
            path("/bottom.txt")
        } else {
            path(&format!("/f{i}"))
        };
        layerlab_core::ops::write_file(&mut d, &l, &p, &[7u8; 4096], 0o644)
            .unwrap_or_else(|e| unreachable!("{e}"));
        if i + 1 < depth {
            d.commit(&l).unwrap_or_else(|e| unreachable!("{e}"));
        }
        parent = Some(l);
    }
    (parent.unwrap_or_else(|| unreachable!()), depth)
}

fn read_bottom<D: LayerDriver>(d: &mut D, top: &LayerId, p: &LayerPath) -> usize {
    d.read(top, p, 0, 4096).map(|v| v.len()).unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_at_depth");
    g.sample_size(30);
    let file = path("/bottom.txt");
    for info in bench_drivers() {
        for depth in [1usize, 128] {
            let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
            let root = dir.path().join("store");
            let (top, depth) = build(info.name, &root, depth);
            let mut d = registry::open(&root, Access::Read).unwrap_or_else(|e| unreachable!("{e}"));
            read_bottom(&mut d, &top, &file);
            d.meter_mut().reset();
            read_bottom(&mut d, &top, &file);
            let warm = d.meter().counts;
            drop(d);
            let mut cold_d =
                registry::open(&root, Access::Read).unwrap_or_else(|e| unreachable!("{e}"));
            read_bottom(&mut cold_d, &top, &file);
            eprintln!(
                "meter {} depth {depth}: cold [{}] warm [{}]",
                info.name,
                cold_d.meter().counts.summary(),
                warm.summary()
            );
            drop(cold_d);

            let mut d = registry::open(&root, Access::Read).unwrap_or_else(|e| unreachable!("{e}"));
            g.bench_function(
                BenchmarkId::new(format!("{}/warm", info.name), depth),
                |b| b.iter(|| black_box(read_bottom(&mut d, &top, &file))),
            );
            drop(d);
            g.bench_function(
                BenchmarkId::new(format!("{}/cold", info.name), depth),
                |b| {
                    b.iter_batched(
                        || {
                            registry::open(&root, Access::Read)
                                .unwrap_or_else(|e| unreachable!("{e}"))
                        },
                        |mut d| black_box(read_bottom(&mut d, &top, &file)),
                        BatchSize::PerIteration,
                    )
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
