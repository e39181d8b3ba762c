//! Helpers for the btrfs and zfs tests: stores on a memory filesystem where there is one
//! (its allocated sizes are exact), allocated bytes of the pool file, patterns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{CowDriver, Flavor};
use crate::backend::{Backend, Cx};
use crate::front::Layers;
use crate::store::{Access, Options, Store};
use layerlab_core::{LayerDriver, LayerId, LayerPath, Meter};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A driver of flavor `F`: the checked front over the engine.
pub type Driver<F> = Layers<CowDriver<F>>;

/// A temporary directory, in `/dev/shm` when there is one.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

/// A layer id.
pub fn id(s: &str) -> LayerId {
    LayerId::new(s).unwrap()
}

/// A path.
pub fn p(s: &str) -> LayerPath {
    LayerPath::parse(s).unwrap()
}

/// Options from pairs.
pub fn opts(pairs: &[(&str, &str)]) -> Options {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A new store of flavor `F` in `dir`.
pub fn init<F: Flavor>(dir: &tempfile::TempDir, o: Options) -> Driver<F> {
    Driver::<F>::init(&dir.path().join("store"), o).unwrap()
}

/// Compacts the metadata log of the (closed) store at `root` into a checkpoint; false when
/// the checkpoint does not fit.
pub fn checkpoint<F: Flavor>(root: &Path) -> bool {
    let store = Store::open(root, F::NAME, Access::Write).unwrap();
    let mut meter = Meter::new();
    let mut cx = Cx {
        store: &store,
        meter: &mut meter,
    };
    let mut b = CowDriver::<F>::open(&mut cx).unwrap();
    b.checkpoint_now(&mut cx).unwrap()
}

/// Bytes the pool file really occupies on the host (st_blocks * 512).
pub fn allocated<F: Flavor>(d: &Driver<F>) -> u64 {
    std::fs::metadata(d.backend().pool_path()).unwrap().blocks() * 512
}

/// Incompressible bytes that depend on their offset.
pub fn pattern(off: u64, len: usize, seed: u8) -> Vec<u8> {
    let mut x = (off.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(seed)) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes a file of `size` bytes in 1 MiB chunks.
pub fn write_big<F: Flavor>(
    d: &mut Driver<F>,
    l: &LayerId,
    path: &LayerPath,
    size: u64,
    seed: u8,
) -> Vec<u8> {
    d.create(l, path, 0o644).unwrap();
    let mut all = Vec::with_capacity(size as usize);
    let chunk = 1 << 20;
    let mut off = 0;
    while off < size {
        let n = chunk.min(size - off);
        let data = pattern(off, n as usize, seed);
        d.write(l, path, off, &data).unwrap();
        all.extend_from_slice(&data);
        off += n;
    }
    all
}

/// Reads a 1 MiB file twice in a committed base, then once in its child; the extents the
/// base's reads and the child's read counted (what the page cache did not hold).
pub fn page_cache_reads<F: Flavor>() -> (u64, u64) {
    let dir = tempdir();
    let mut d: Driver<F> = init(&dir, Options::new());
    let (base, child) = (id("base"), id("child"));
    d.create_layer(&base, None).unwrap();
    write_big(&mut d, &base, &p("/f"), 1 << 20, 1);
    d.commit(&base).unwrap();
    d.create_layer(&child, Some(&base)).unwrap();
    d.meter_mut().reset();
    d.read(&base, &p("/f"), 0, 1 << 20).unwrap();
    d.read(&base, &p("/f"), 0, 1 << 20).unwrap();
    let in_base = d.meter().counts.extents_read;
    d.meter_mut().reset();
    d.read(&child, &p("/f"), 0, 1 << 20).unwrap();
    (in_base, d.meter().counts.extents_read)
}
