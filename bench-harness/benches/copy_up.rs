//! The first 1-byte write to a 256 MiB file inherited from a committed layer, on every
//! driver (overlay2 copies the whole file up, devicemapper one 64 KiB block, btrfs one
//! 4 KiB sector, zfs one 128 KiB record, vfs paid its copy when the layer was made),
//! against `cp` copying the same file on the same disk, with and without an fsync, in the
//! same run. Set LAYERLAB_COPYUP_MIB to change the size.

mod common;
use common::{env_or, id};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use layerlab::harness::bench_drivers;
use layerlab_core::{LayerDriver, LayerPath};
use layerlab_drivers::{registry, AnyDriver, Options};
use std::hint::black_box;
use std::io::Write;
use std::process::Command;

fn bench(c: &mut Criterion) {
    let mib: usize = env_or("LAYERLAB_COPYUP_MIB", 256);
    let mut g = c.benchmark_group(format!("first_write_{mib}MiB"));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));

    // cp of the same file on the same disk
    let src = dir.path().join("src.bin");
    {
        let mut f = std::fs::File::create(&src).unwrap_or_else(|e| unreachable!("{e}"));
        let chunk = vec![0x5au8; 1 << 20];
        for _ in 0..mib {
            f.write_all(&chunk).unwrap_or_else(|e| unreachable!("{e}"));
        }
        f.sync_all().unwrap_or_else(|e| unreachable!("{e}"));
    }
    let dst = dir.path().join("dst.bin");
    for (name, fsync) in [("cp", false), ("cp+fsync", true)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let _ = std::fs::remove_file(&dst);
                },
                |()| {
                    let ok = Command::new("cp")
                        .arg(&src)
                        .arg(&dst)
                        .status()
                        .is_ok_and(|s| s.success());
                    if fsync {
                        let _ = std::fs::File::open(&dst).and_then(|f| f.sync_all());
                    }
                    black_box(ok)
                },
                BatchSize::PerIteration,
            )
        });
    }

    let file = LayerPath::parse("/big.bin").unwrap_or_else(|e| unreachable!("{e}"));
    for info in bench_drivers() {
        let root = dir.path().join(info.name);
        let mut d: AnyDriver = registry::init(info.name, &root, Options::new())
            .unwrap_or_else(|e| unreachable!("{e}"));
        let base = id("base");
        d.create_layer(&base, None)
            .unwrap_or_else(|e| unreachable!("{e}"));
        d.create(&base, &file, 0o644)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let chunk = vec![0x5au8; 1 << 20];
        for _ in 0..mib {
            d.append(&base, &file, &chunk)
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        d.commit(&base).unwrap_or_else(|e| unreachable!("{e}"));
        let mut n = 0u64;
        g.bench_function(format!("{}/first-write", info.name), |b| {
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
            "meter {} first write: [{}]",
            info.name,
            d.meter().counts.summary()
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
