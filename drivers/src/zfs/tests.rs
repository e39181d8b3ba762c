//! Tests of the zfs driver, measured on the pool file's allocated size (st_blocks*512):
//! commit snapshot and clone add no data blocks; six 1-byte writes cost six 128 KiB
//! records; lz4 compression takes less pool space; a reopened store reads back every layer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::cow::testutil::{allocated, id, init, opts, p, pattern, tempdir, write_big};
use crate::front::Layers;
use crate::store::Access;
use layerlab_core::{ops, LayerDriver};

const MIB: u64 = 1 << 20;
const RECORD: u64 = 128 << 10;

#[test]
fn snapshot_and_clone_add_no_data_blocks() {
    let dir = tempdir();
    let mut d: Layers<Zfs> = init(&dir, Options::new());
    let (base, child) = (id("base"), id("child"));
    d.create_layer(&base, None).unwrap();
    write_big(&mut d, &base, &p("/data.bin"), 8 * MIB, 5);
    let alloc0 = allocated(&d);
    d.meter_mut().set_tracing(true);
    d.commit(&base).unwrap();
    d.create_layer(&child, Some(&base)).unwrap();
    let steps = d.meter_mut().take_steps();
    eprintln!(
        "zfs commit + clone: pool {alloc0} -> {}; {steps:?}",
        allocated(&d)
    );
    assert_eq!(allocated(&d), alloc0);
    assert!(steps
        .iter()
        .any(|s| s.contains("zfs snapshot layerlab/base@commit")));
    assert!(steps
        .iter()
        .any(|s| s.contains("zfs clone layerlab/base@commit layerlab/child")));
    let st = d.status().unwrap();
    let fact = |k: &str| {
        st.facts
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(fact("Datasets"), "layerlab/base");
    assert_eq!(fact("Snapshots"), "layerlab/base@commit");
    assert_eq!(
        fact("Clones"),
        "layerlab/child (origin layerlab/base@commit)"
    );
    let u = d.usage(&child).unwrap();
    assert_eq!(u.bytes, 0);
    assert_eq!(u.details["referenced"], 8 * MIB);
    let ub = d.usage(&base).unwrap();
    assert_eq!(ub.bytes, 0, "everything of base is shared with its clone");
    d.remove_layer(&child).unwrap();
    assert_eq!(d.usage(&base).unwrap().bytes, 8 * MIB);
    d.remove_layer(&base).unwrap();
    assert_eq!(allocated(&d), 0);
}

#[test]
fn six_one_byte_writes_cost_six_records() {
    let dir = tempdir();
    let mut d: Layers<Zfs> = init(&dir, Options::new());
    let (base, child) = (id("base"), id("child"));
    d.create_layer(&base, None).unwrap();
    let mut data = write_big(&mut d, &base, &p("/big.bin"), 8 * MIB, 3);
    d.commit(&base).unwrap();
    d.create_layer(&child, Some(&base)).unwrap();
    let alloc0 = allocated(&d);
    d.meter_mut().reset();
    d.meter_mut().set_tracing(true);
    for k in 0..6u64 {
        let off = k * 1_300_000 + 17;
        d.write(&child, &p("/big.bin"), off, b"#").unwrap();
        data[off as usize] = b'#';
    }
    let alloc1 = allocated(&d);
    let c = d.meter().counts;
    let steps = d.meter_mut().take_steps();
    eprintln!(
        "zfs six 1-byte writes: pool {alloc0} -> {alloc1} bytes allocated (+{}); meter {}",
        alloc1 - alloc0,
        c.summary()
    );
    for s in steps.iter().filter(|s| s.contains("extent")) {
        eprintln!("  {s}");
    }
    assert_eq!(alloc1 - alloc0, 6 * RECORD);
    assert_eq!(c.blocks_allocated, 6);
    assert_eq!(c.bytes_copied, 6 * RECORD);
    assert!(steps
        .iter()
        .any(|s| s.contains("shared with layerlab/base@commit: CoW 131072 bytes to block")));
    let u = d.usage(&child).unwrap();
    assert_eq!(u.bytes, 6 * RECORD);
    assert_eq!(ops::read_all(&mut d, &child, &p("/big.bin")).unwrap(), data);
    assert_eq!(
        d.read(&base, &p("/big.bin"), 17, 1).unwrap(),
        pattern(0, 18, 3)[17..].to_vec()
    );
}

fn compressible(len: usize) -> Vec<u8> {
    let words = ["layer ", "snapshot ", "clone ", "record ", "pool "];
    let mut out = Vec::with_capacity(len);
    let mut i = 0usize;
    while out.len() < len {
        out.extend_from_slice(words[i % 5].as_bytes());
        out.extend_from_slice(format!("{} ", i % 1000).as_bytes());
        i += 7;
    }
    out.truncate(len);
    out
}

#[test]
fn lz4_compression_takes_less_pool_space() {
    let text = compressible(4 * MIB as usize);
    let mut sizes = Vec::new();
    for comp in ["off", "lz4"] {
        let dir = tempdir();
        let root = dir.path().join("store");
        let mut d: Layers<Zfs> = init(&dir, opts(&[("zfs.compression", comp)]));
        let l = id("l");
        d.create_layer(&l, None).unwrap();
        ops::write_file(&mut d, &l, &p("/text"), &text, 0o644).unwrap();
        ops::write_file(&mut d, &l, &p("/noise"), &pattern(0, 512 << 10, 9), 0o644).unwrap();
        d.write(&l, &p("/text"), 1_000_000, b"EDIT").unwrap();
        let mut expect = text.clone();
        expect[1_000_000..1_000_004].copy_from_slice(b"EDIT");
        assert_eq!(ops::read_all(&mut d, &l, &p("/text")).unwrap(), expect);
        let alloc = allocated(&d);
        let u = d.usage(&l).unwrap();
        eprintln!(
            "zfs compression={comp}: 4 MiB text + 512 KiB noise -> pool {alloc} bytes \
             allocated; usage {:?}",
            u.details
        );
        sizes.push(alloc);
        if comp == "lz4" {
            assert!(u.details["compressratio_x100"] > 200);
            assert_eq!(u.details["logical_referenced"], 4 * MIB + (512 << 10));
            drop(d);
            let mut d = Layers::<Zfs>::open(&root, Access::Read).unwrap();
            assert_eq!(ops::read_all(&mut d, &l, &p("/text")).unwrap(), expect);
            assert_eq!(
                ops::read_all(&mut d, &l, &p("/noise")).unwrap(),
                pattern(0, 512 << 10, 9)
            );
        }
    }
    assert!(sizes[0] >= 4 * MIB + (512 << 10));
    assert!(sizes[1] * 2 < sizes[0], "{sizes:?}");
}

#[test]
fn reopened_store_reads_back_every_layer() {
    let dir = tempdir();
    let root = dir.path().join("store");
    let mut d: Layers<Zfs> = init(
        &dir,
        opts(&[("zfs.compression", "lz4"), ("zfs.recordsize", "16KiB")]),
    );
    let ids = [id("l0"), id("l1"), id("l2")];
    let mut expect = Vec::new();
    for (k, l) in ids.iter().enumerate() {
        d.create_layer(l, if k == 0 { None } else { Some(&ids[k - 1]) })
            .unwrap();
        ops::write_file(
            &mut d,
            l,
            &p(&format!("/f{k}")),
            &compressible(100_000),
            0o600,
        )
        .unwrap();
        d.write(l, &p("/f0"), 40_000 + k as u64, &pattern(0, 3, 1))
            .unwrap();
        d.truncate(l, &p("/f0"), 90_001 - k as u64).unwrap();
        d.commit(l).unwrap();
    }
    for l in &ids {
        let mut v = Vec::new();
        for e in d.readdir(l, &p("/")).unwrap() {
            v.push(ops::read_all(&mut d, l, &p(&format!("/{}", e.name))).unwrap());
        }
        expect.push(v);
    }
    drop(d);
    let mut d = Layers::<Zfs>::open(&root, Access::Write).unwrap();
    for (l, v) in ids.iter().zip(&expect) {
        let mut got = Vec::new();
        for e in d.readdir(l, &p("/")).unwrap() {
            got.push(ops::read_all(&mut d, l, &p(&format!("/{}", e.name))).unwrap());
        }
        assert_eq!(&got, v, "{l}");
    }
}

#[test]
fn bad_options_are_refused() {
    for (k, v) in [
        ("zfs.recordsize", "100KiB"),
        ("zfs.recordsize", "2MiB"),
        ("zfs.compression", "gzip"),
        ("zfs.poolsize", "1KiB"),
    ] {
        let dir = tempdir();
        assert!(
            Layers::<Zfs>::init(&dir.path().join("s"), opts(&[(k, v)])).is_err(),
            "{k}={v}"
        );
    }
}

/// Every zfs record is a block of its own: rewriting one record of an unshared file frees
/// the old record (nothing stays pinned as in btrfs).
#[test]
fn a_rewritten_record_is_freed_alone() {
    let dir = tempdir();
    let mut d: Layers<Zfs> = init(&dir, Options::new());
    let base = id("base");
    d.create_layer(&base, None).unwrap();
    ops::write_file(&mut d, &base, &p("/f"), &pattern(0, MIB as usize, 2), 0o644).unwrap();
    assert_eq!(allocated(&d), MIB);
    d.write(&base, &p("/f"), 300_000, b"#").unwrap();
    assert_eq!(allocated(&d), MIB, "the old record is freed");
    d.truncate(&base, &p("/f"), 4096).unwrap();
    assert_eq!(allocated(&d), RECORD);
}

/// The ARC caches pool blocks, whichever dataset reads them: a file read in the base is
/// warm in its clone (btrfs's page cache is per subvolume: see the btrfs test).
#[test]
fn clones_share_the_arc() {
    let (in_base, in_child) = crate::cow::testutil::page_cache_reads::<ZfsFlavor>();
    assert!(in_base >= 1);
    assert_eq!(in_child, 0, "served by the ARC");
}

#[test]
fn a_version_3_store_is_refused_naming_both_versions() {
    crate::cow::testutil::old_version_is_refused::<ZfsFlavor>(b"LLZFSPL3");
}

#[test]
fn times_xattrs_devices_and_fifos_survive_reopen() {
    crate::cow::testutil::attributes_survive_reopen::<ZfsFlavor>(65_536);
}

#[test]
fn attribute_changes_cost_what_a_chmod_costs() {
    crate::cow::testutil::attribute_changes_cost_what_a_chmod_costs::<ZfsFlavor>();
}

#[test]
fn mtimes_move_as_linux_moves_them_and_persist() {
    crate::cow::testutil::mtimes_move_and_persist::<ZfsFlavor>();
}

/// Half a pool free in scattered runs takes a write of a quarter of the pool.
#[test]
fn a_fragmented_pool_takes_large_writes() {
    crate::cow::testutil::fragmented_pool_takes_large_writes::<ZfsFlavor>(
        "zfs.poolsize",
        128 << 10,
    );
}

/// File sizes past 2^63 - 1 are refused as too large.
#[test]
fn sizes_past_the_largest_file_are_too_large() {
    crate::cow::testutil::sizes_past_the_largest_file_are_too_large::<ZfsFlavor>();
}
