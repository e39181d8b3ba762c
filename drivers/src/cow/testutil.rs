//! Helpers for the btrfs and zfs tests: stores on a memory filesystem where there is one
//! (its allocated sizes are exact), allocated bytes of the pool file, patterns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{CowDriver, Flavor};
use crate::backend::{Cx, Lifecycle};
use crate::front::Layers;
use crate::store::{Access, Options, Store};
use crate::testkit;
pub use crate::testkit::{id, opts, p, MIB};
use layerlab_core::{ErrorKind, LayerDriver, LayerId, LayerPath, Meter};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A driver of flavor `F`: the checked front over the engine.
pub type Driver<F> = Layers<CowDriver<F>>;

/// A temporary directory, in `/dev/shm` when there is one.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

/// A new store of flavor `F` in `dir`.
pub fn init<F: Flavor>(dir: &tempfile::TempDir, o: Options) -> Driver<F> {
    Driver::<F>::init(&dir.path().join("store"), o).unwrap()
}

/// A new store of flavor `F` (options `o`) in a fresh [`tempdir`], holding an empty layer
/// `base`: the directory, the driver and the layer.
pub fn fresh_with_base<F: Flavor>(o: Options) -> (tempfile::TempDir, Driver<F>, LayerId) {
    let dir = tempdir();
    let mut d = init::<F>(&dir, o);
    let base = id("base");
    d.create_layer(&base, None).unwrap();
    (dir, d, base)
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

/// Opens a store of flavor `F` whose superblocks name the previous format version `old`:
/// refused, the error naming both versions.
pub fn old_version_is_refused<F: Flavor>(old: &[u8; 8]) {
    let dir = tempdir();
    let root = dir.path().join("store");
    let mut d: Driver<F> = init(&dir, Options::new());
    d.create_layer(&id("base"), None).unwrap();
    drop(d);
    crate::blockpool::rewrite_magic(&root.join(F::NAME).join("metadata"), old).unwrap();
    let new = String::from_utf8_lossy(F::MAGIC).into_owned();
    let old = String::from_utf8_lossy(old).into_owned();
    for access in [Access::Read, Access::Write] {
        let err = Driver::<F>::open(&root, access).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{msg}");
        assert!(msg.contains(&old) && msg.contains(&new), "{msg}");
    }
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
    let chunk = MIB;
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

/// Layer `base` (active) holding the file `path` of `size` bytes ([`write_big`] with
/// `seed`); the file's bytes.
pub fn base_with_file<F: Flavor>(
    d: &mut Driver<F>,
    path: &str,
    size: u64,
    seed: u8,
) -> (LayerId, Vec<u8>) {
    let base = id("base");
    d.create_layer(&base, None).unwrap();
    let data = write_big(d, &base, &p(path), size, seed);
    (base, data)
}

/// The trace `steps` holds a step naming `what`.
pub fn assert_traced(steps: &[String], what: &str) {
    assert!(steps.iter().any(|s| s.contains(what)), "{what}: {steps:?}");
}

/// Layer `base` holding the file `path` of `size` bytes ([`write_big`] with `seed`),
/// committed, and its child `child`; the file's bytes.
pub fn base_and_child<F: Flavor>(
    d: &mut Driver<F>,
    path: &str,
    size: u64,
    seed: u8,
) -> (LayerId, LayerId, Vec<u8>) {
    let (base, data) = base_with_file(d, path, size, seed);
    let child = id("child");
    d.commit(&base).unwrap();
    d.create_layer(&child, Some(&base)).unwrap();
    (base, child, data)
}

/// `n` committed layers `l0`, `l1`, ..., each the child of the one before, each filled by
/// `fill` (given its index) before its commit.
pub fn layer_chain<F: Flavor>(
    d: &mut Driver<F>,
    n: usize,
    mut fill: impl FnMut(&mut Driver<F>, usize, &LayerId),
) -> Vec<LayerId> {
    let ids: Vec<LayerId> = (0..n).map(|k| id(&format!("l{k}"))).collect();
    for (k, l) in ids.iter().enumerate() {
        d.create_layer(l, k.checked_sub(1).map(|j| &ids[j]))
            .unwrap();
        fill(d, k, l);
        d.commit(l).unwrap();
    }
    ids
}

/// The files of a layer's root directory: name, content and number of links, for each of
/// `layers`.
pub fn root_files<F: Flavor>(
    d: &mut Driver<F>,
    layers: &[&LayerId],
) -> Vec<Vec<(String, Vec<u8>, u32)>> {
    let mut views = Vec::new();
    for l in layers {
        let mut out = Vec::new();
        for e in d.readdir(l, &p("/")).unwrap() {
            let path = p(&format!("/{}", e.name));
            let md = d.stat(l, &path).unwrap();
            out.push((
                e.name,
                layerlab_core::ops::read_all(d, l, &path).unwrap(),
                md.nlink,
            ));
        }
        views.push(out);
    }
    views
}

/// Every option of `cases` (`key`, `value`) is refused by `init`.
pub fn bad_options_are_refused<F: Flavor>(cases: &[(&str, &str)]) {
    for (k, v) in cases {
        let dir = tempdir();
        assert!(
            Driver::<F>::init(&dir.path().join("s"), opts(&[(k, v)])).is_err(),
            "{k}={v}"
        );
    }
}

/// Six 1-byte writes 1.3 MB apart into an 8 MiB file the child inherits: each copies the
/// copy-on-write unit of `unit` bytes it falls in to a new pool unit, and no more; the
/// child reads back its bytes, the base its own. Returns the driver (in `dir`), the child
/// and the trace of the writes.
pub fn six_one_byte_writes<F: Flavor>(
    dir: &tempfile::TempDir,
    unit: u64,
) -> (Driver<F>, LayerId, Vec<String>) {
    let mut d: Driver<F> = init(dir, Options::new());
    let (base, child, mut data) = base_and_child(&mut d, "/big.bin", 8 << 20, 3);
    let alloc0 = allocated(&d);
    d.meter_mut().reset();
    d.meter_mut().set_tracing(true);
    for k in 0..6u64 {
        let off = k * 1_300_000 + 17;
        d.write(&child, &p("/big.bin"), off, b"#").unwrap();
        data[off as usize] = b'#';
    }
    let alloc1 = allocated(&d);
    let steps = d.meter_mut().take_steps();
    let c = d.meter().counts;
    eprintln!(
        "{} six 1-byte writes: pool {alloc0} -> {alloc1} bytes allocated (+{}); meter {}",
        F::NAME,
        alloc1 - alloc0,
        c.summary()
    );
    for s in steps.iter().filter(|s| s.contains("extent")) {
        eprintln!("  {s}");
    }
    assert_eq!(alloc1 - alloc0, 6 * unit);
    assert_eq!(c.blocks_allocated, 6);
    assert_eq!(c.bytes_copied, 6 * unit);
    assert_eq!(d.usage(&child).unwrap().bytes, 6 * unit);
    assert_eq!(
        layerlab_core::ops::read_all(&mut d, &child, &p("/big.bin")).unwrap(),
        data
    );
    // the base is untouched
    assert_eq!(
        d.read(&base, &p("/big.bin"), 17, 1).unwrap(),
        pattern(0, 18, 3)[17..].to_vec()
    );
    (d, child, steps)
}

/// Reads a 1 MiB file twice in a committed base, then once in its child; the extents the
/// base's reads and the child's read counted (what the page cache did not hold).
pub fn page_cache_reads<F: Flavor>() -> (u64, u64) {
    let dir = tempdir();
    let mut d: Driver<F> = init(&dir, Options::new());
    let (base, child, _) = base_and_child(&mut d, "/f", MIB, 1);
    d.meter_mut().reset();
    d.read(&base, &p("/f"), 0, MIB).unwrap();
    d.read(&base, &p("/f"), 0, MIB).unwrap();
    let in_base = d.meter().counts.extents_read;
    d.meter_mut().reset();
    d.read(&child, &p("/f"), 0, MIB).unwrap();
    (in_base, d.meter().counts.extents_read)
}

/// Times, extended attributes, device nodes and fifos (see [`crate::testkit`]) read back
/// the same after a reopen, and again from a checkpoint; `big`: a value size the flavor
/// takes.
pub fn attributes_survive_reopen<F: Flavor>(big: usize) {
    let dir = tempdir();
    let root = dir.path().join("store");
    let mut d: Driver<F> = init(&dir, Options::new());
    testkit::build_attributes(&mut d, big);
    let (base, child) = (id("base"), id("child"));
    let views = [
        testkit::attr_view(&mut d, &base),
        testkit::attr_view(&mut d, &child),
    ];
    drop(d);
    for compacted in [false, true] {
        if compacted {
            assert!(checkpoint::<F>(&root));
        }
        let mut d = Driver::<F>::open(&root, Access::Read).unwrap();
        testkit::check_attributes(&mut d, big);
        let again = [
            testkit::attr_view(&mut d, &base),
            testkit::attr_view(&mut d, &child),
        ];
        assert_eq!(again, views, "compacted: {compacted}");
    }
}

/// The Meter counts of one change of a fresh child's inherited file `/f`.
fn counts_in_fresh_child<F: Flavor>(
    change: impl Fn(&mut Driver<F>, &LayerId) -> layerlab_core::Result<()>,
) -> layerlab_core::Counts {
    let dir = tempdir();
    let mut d: Driver<F> = init(&dir, Options::new());
    let (_, child, _) = base_and_child(&mut d, "/f", MIB, 3);
    d.meter_mut().reset();
    change(&mut d, &child).unwrap();
    let c = d.meter().counts;
    // a second change of the same kind finds everything the child's own
    d.meter_mut().reset();
    change(&mut d, &child).unwrap();
    let again = d.meter().counts;
    // the op and the record: nothing shared is left to copy
    assert_eq!(again.metadata_writes, 2, "first {c:?}, again {again:?}");
    c
}

/// Setting an mtime or an extended attribute of an inherited file is a metadata change
/// like a chmod: it copies the inode and the tree nodes on its path from the snapshot,
/// and no data.
pub fn attribute_changes_cost_what_a_chmod_costs<F: Flavor>() {
    let chmod = counts_in_fresh_child::<F>(|d, l| d.chmod(l, &p("/f"), 0o600));
    let mtime = counts_in_fresh_child::<F>(|d, l| d.set_mtime(l, &p("/f"), 1_000_000_001, 2));
    let xattr = counts_in_fresh_child::<F>(|d, l| d.set_xattr(l, &p("/f"), "user.a", b"1"));
    assert_eq!(mtime, chmod);
    assert_eq!(xattr, chmod);
    assert_eq!((chmod.bytes_copied, chmod.blocks_allocated), (0, 0));
    assert_eq!(chmod.bytes_written, 0);
    // the op, the inode and its 4 tree nodes copied, the record
    // the op, the inode and the 4 tree nodes on its path copied, the record
    assert_eq!(chmod.metadata_writes, 7, "{chmod:?}");
    assert_eq!(
        (chmod.fsyncs, chmod.log_commits),
        (0, 1),
        "the record's log commit; no data"
    );
}

/// Mtimes move as Linux moves them (see [`crate::testkit`]) and read back after a reopen.
pub fn mtimes_move_and_persist<F: Flavor>() {
    let dir = tempdir();
    let mut d: Driver<F> = init(&dir, Options::new());
    let before = testkit::mtimes_move_as_linux_moves_them(&mut d);
    drop(d);
    let mut d = Driver::<F>::open(&dir.path().join("store"), Access::Read).unwrap();
    assert_eq!(testkit::mtimes(&mut d), before);
}

/// A pool of 64 runs of `run` bytes, filled by 64 files and then every other file
/// removed: half the pool is free in 32 scattered runs. A write of 16 runs (through a
/// reopen, as every command reopens the store) takes fragmented extents and reads back;
/// one more write than the free sectors hold fails with `NoSpace` and changes nothing
/// (issue 12, item 9: one contiguous run per write was needed).
pub fn fragmented_pool_takes_large_writes<F: Flavor>(key: &str, run: usize) {
    let dir = tempdir();
    let root = dir.path().join("store");
    let pool = (64 * run).to_string();
    let mut d: Driver<F> = init(&dir, opts(&[(key, &pool)]));
    let base = id("base");
    d.create_layer(&base, None).unwrap();
    for k in 0..64u8 {
        let path = p(&format!("/f{k}"));
        layerlab_core::ops::write_file(&mut d, &base, &path, &pattern(0, run, k), 0o644).unwrap();
    }
    let err = layerlab_core::ops::write_file(&mut d, &base, &p("/full"), &[1u8; 4096], 0o644)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
    for k in (0..64u8).step_by(2) {
        d.unlink(&base, &p(&format!("/f{k}"))).unwrap();
    }
    drop(d);
    let mut d = Driver::<F>::open(&root, Access::Write).unwrap();
    let big = pattern(0, 16 * run, 99);
    layerlab_core::ops::write_file(&mut d, &base, &p("/big"), &big, 0o644).unwrap();
    assert_eq!(allocated(&d), 48 * run as u64);
    // the other half of the free space, and one sector more: refused, nothing changed
    let more = vec![7u8; 16 * run + 4096];
    d.create(&base, &p("/more"), 0o644).unwrap();
    let err = d.write(&base, &p("/more"), 0, &more).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
    assert_eq!(d.stat(&base, &p("/more")).unwrap().size, 0);
    d.write(&base, &p("/more"), 0, &more[..16 * run]).unwrap();
    drop(d);
    let mut d = Driver::<F>::open(&root, Access::Read).unwrap();
    assert_eq!(
        layerlab_core::ops::read_all(&mut d, &base, &p("/big")).unwrap(),
        big
    );
    assert_eq!(
        layerlab_core::ops::read_all(&mut d, &base, &p("/more")).unwrap(),
        &more[..16 * run]
    );
    assert_eq!(
        layerlab_core::ops::read_all(&mut d, &base, &p("/f1")).unwrap(),
        pattern(0, run, 1)
    );
    assert_eq!(allocated(&d), 64 * run as u64);
}

/// `truncate`, `write` and `append` past 2^63 - 1 bytes: `InvalidArgument` "file too
/// large", the file as it was; up to the limit a sparse file is taken.
pub fn sizes_past_the_largest_file_are_too_large<F: Flavor>() {
    let dir = tempdir();
    let root = dir.path().join("store");
    let mut d: Driver<F> = init(&dir, Options::new());
    let base = id("base");
    d.create_layer(&base, None).unwrap();
    layerlab_core::ops::write_file(&mut d, &base, &p("/f"), b"abc", 0o644).unwrap();
    let max = super::MAX_FILE_SIZE;
    for r in [
        d.truncate(&base, &p("/f"), max + 1),
        d.truncate(&base, &p("/f"), u64::MAX),
        d.write(&base, &p("/f"), max, b"x"),
        d.write(&base, &p("/f"), u64::MAX - 1, b"xy"),
    ] {
        let err = r.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains("too large"), "{err}");
    }
    assert_eq!(d.stat(&base, &p("/f")).unwrap().size, 3);
    d.truncate(&base, &p("/f"), max).unwrap();
    let err = d.append(&base, &p("/f"), b"z").unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
    drop(d);
    let mut d = Driver::<F>::open(&root, Access::Read).unwrap();
    assert_eq!(d.stat(&base, &p("/f")).unwrap().size, max);
    assert_eq!(d.read(&base, &p("/f"), 0, 4).unwrap(), b"abc\0");
    assert_eq!(d.read(&base, &p("/f"), max - 2, 10).unwrap(), [0u8; 2]);
}

/// The `#[test]`s of the scenarios above every flavor passes, in the module it is invoked
/// in: `old_magic`, the superblock magic of the previous format version; `big_xattr`, a
/// value size the flavor takes; `pool_key` and `run`, the option that sizes the pool and
/// a run of the fragmented pool.
macro_rules! cow_scenarios {
    (
        flavor: $flavor:ty,
        old_magic: $old:expr,
        big_xattr: $big:expr,
        pool_key: $key:expr,
        run: $run:expr $(,)?
    ) => {
        #[test]
        fn an_older_version_store_is_refused_naming_both_versions() {
            $crate::cow::testutil::old_version_is_refused::<$flavor>($old);
        }

        #[test]
        fn times_xattrs_devices_and_fifos_survive_reopen() {
            $crate::cow::testutil::attributes_survive_reopen::<$flavor>($big);
        }

        #[test]
        fn attribute_changes_cost_what_a_chmod_costs() {
            $crate::cow::testutil::attribute_changes_cost_what_a_chmod_costs::<$flavor>();
        }

        #[test]
        fn mtimes_move_as_linux_moves_them_and_persist() {
            $crate::cow::testutil::mtimes_move_and_persist::<$flavor>();
        }

        /// Half a pool free in scattered runs takes a write of a quarter of the pool.
        #[test]
        fn a_fragmented_pool_takes_large_writes() {
            $crate::cow::testutil::fragmented_pool_takes_large_writes::<$flavor>($key, $run);
        }

        /// File sizes past 2^63 - 1 (Linux's MAX_LFS_FILESIZE) are refused as too large,
        /// through write, append and truncate, and nothing changes (issue 12, item 11:
        /// btrfs and zfs took sizes up to 2^64 - 1).
        #[test]
        fn sizes_past_the_largest_file_are_too_large() {
            $crate::cow::testutil::sizes_past_the_largest_file_are_too_large::<$flavor>();
        }
    };
}
pub(crate) use cow_scenarios;
