//! Tests of the zfs driver, measured on the pool file's allocated size (st_blocks*512):
//! commit snapshot and clone add no data blocks; six 1-byte writes cost six 128 KiB
//! records; lz4 compression takes less pool space; a reopened store reads back every layer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::cow::testutil::{
    allocated, assert_traced, fresh_with_base, id, init, layer_chain, opts, p, pattern, root_files,
    six_one_byte_writes, tempdir, write_big, MIB,
};
use crate::front::Layers;
use crate::store::Access;
use layerlab_core::{ops, LayerDriver};

const RECORD: u64 = 128 << 10;

#[test]
fn snapshot_and_clone_add_no_data_blocks() {
    let (_dir, mut d, base) = fresh_with_base::<ZfsFlavor>(Options::new());
    write_big(&mut d, &base, &p("/data.bin"), 8 * MIB, 5);
    let child = id("child");
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
    assert_traced(&steps, "zfs snapshot layerlab/base@commit");
    assert_traced(&steps, "zfs clone layerlab/base@commit layerlab/child");
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
    let (_, _, steps) = six_one_byte_writes::<ZfsFlavor>(&dir, RECORD);
    assert_traced(
        &steps,
        "shared with layerlab/base@commit: CoW 131072 bytes to block",
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
    let ids = layer_chain(&mut d, 3, |d, k, l| {
        let f = p(&format!("/f{k}"));
        ops::write_file(d, l, &f, &compressible(100_000), 0o600).unwrap();
        d.write(l, &p("/f0"), 40_000 + k as u64, &pattern(0, 3, 1))
            .unwrap();
        d.truncate(l, &p("/f0"), 90_001 - k as u64).unwrap();
    });
    let layers: Vec<&LayerId> = ids.iter().collect();
    let expect = root_files(&mut d, &layers);
    drop(d);
    let mut d = Layers::<Zfs>::open(&root, Access::Write).unwrap();
    assert_eq!(root_files(&mut d, &layers), expect);
}

#[test]
fn bad_options_are_refused() {
    crate::cow::testutil::bad_options_are_refused::<ZfsFlavor>(&[
        ("zfs.recordsize", "100KiB"),
        ("zfs.recordsize", "2MiB"),
        ("zfs.compression", "gzip"),
        ("zfs.poolsize", "1KiB"),
    ]);
}

/// Every zfs record is a block of its own: rewriting one record of an unshared file frees
/// the old record (nothing stays pinned as in btrfs).
#[test]
fn a_rewritten_record_is_freed_alone() {
    let (_dir, mut d, base) = fresh_with_base::<ZfsFlavor>(Options::new());
    ops::write_file(&mut d, &base, &p("/f"), &pattern(0, MIB as usize, 2), 0o644).unwrap();
    assert_eq!(allocated(&d), MIB);
    d.write(&base, &p("/f"), 300_000, b"#").unwrap();
    assert_eq!(allocated(&d), MIB, "the old record is freed");
    d.truncate(&base, &p("/f"), 4096).unwrap();
    // the record is rewritten whole; its zero sectors past the 4 KiB are holes on the host
    let used = d.backend().engine().refs.used() * crate::cow::engine::SECTOR;
    assert_eq!(used, RECORD);
    assert_eq!(allocated(&d), 4096);
}

/// The ARC caches pool blocks, whichever dataset reads them: a file read in the base is
/// warm in its clone (btrfs's page cache is per subvolume: see the btrfs test).
#[test]
fn clones_share_the_arc() {
    let (in_base, in_child) = crate::cow::testutil::page_cache_reads::<ZfsFlavor>();
    assert!(in_base >= 1);
    assert_eq!(in_child, 0, "served by the ARC");
}

crate::cow::testutil::cow_scenarios! {
    flavor: ZfsFlavor,
    old_magic: b"LLZFSPL4",
    big_xattr: 65_536,
    pool_key: "zfs.poolsize",
    run: 128 << 10,
}
