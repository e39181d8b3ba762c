//! The first 1-byte write into a 256 MiB file inherited from a committed layer, on btrfs
//! (one 4 KiB sector copied), zfs (one 128 KiB record copied) and overlay2 (the whole file
//! copied up), measured in the same run. Set-up (a fresh child layer) is kept out of the
//! timing with `iter_custom`. LAYERLAB_COW_MIB changes the size.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use layerlab_core::{LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, AnyDriver, Options};
use std::hint::black_box;

fn id(s: &str) -> LayerId {
    LayerId::new(s).unwrap_or_else(|e| unreachable!("{e}"))
}

fn size_mib() -> usize {
    std::env::var("LAYERLAB_COW_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

fn bench(c: &mut Criterion) {
    let mib = size_mib();
    let mut g = c.benchmark_group(format!("cow_write_{mib}MiB"));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let file = LayerPath::parse("/big.bin").unwrap_or_else(|e| unreachable!("{e}"));
    for driver in ["btrfs", "zfs", "overlay2"] {
        let root = dir.path().join(driver);
        let mut d: AnyDriver =
            registry::init(driver, &root, Options::new()).unwrap_or_else(|e| unreachable!("{e}"));
        let base = id("base");
        d.create_layer(&base, None)
            .unwrap_or_else(|e| unreachable!("{e}"));
        d.create(&base, &file, 0o644)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        for _ in 0..mib {
            d.append(&base, &file, &chunk)
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        d.commit(&base).unwrap_or_else(|e| unreachable!("{e}"));
        let mut n = 0u64;
        g.bench_function(format!("{driver}/1-byte-write"), |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    // set-up, not timed: a fresh container layer on the image
                    if n > 0 {
                        let _ = d.remove_layer(&id(&format!("c{}", n - 1)));
                    }
                    let c = id(&format!("c{n}"));
                    n += 1;
                    d.create_layer(&c, Some(&base))
                        .unwrap_or_else(|e| unreachable!("{e}"));
                    d.meter_mut().reset();
                    let t = std::time::Instant::now();
                    black_box(d.write(&c, &file, 12345, b"x").is_ok());
                    total += t.elapsed();
                }
                total
            })
        });
        eprintln!(
            "meter {driver} 1-byte write into {mib} MiB: [{}]",
            d.meter().counts.summary()
        );
        drop(d);
        let _ = std::fs::remove_dir_all(&root);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
