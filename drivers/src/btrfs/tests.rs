//! Tests of the btrfs driver, measured on the pool file's allocated size (st_blocks*512):
//! a snapshot adds no data blocks and logs a bounded amount of metadata whatever the number
//! of files; six 1-byte writes cost six 4 KiB sectors; a reopened store reads back every
//! layer; a file rewritten at random in a snapshot reads back in more extents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::cow::testutil::{
    allocated, assert_traced, base_and_child, checkpoint, fresh_with_base, id, init, layer_chain,
    opts, p, pattern, root_files, six_one_byte_writes, tempdir, write_big, Driver, MIB,
};
use crate::front::Layers;
use crate::store::Access;
use layerlab_core::{ops, LayerDriver};

#[test]
fn snapshot_adds_no_data_blocks_and_bounded_metadata() {
    let (_dir, mut d, base) = fresh_with_base::<BtrfsFlavor>(Options::new());
    let data = write_big(&mut d, &base, &p("/data.bin"), 16 * MIB, 7);
    let child = id("child");
    d.commit(&base).unwrap();
    let alloc0 = allocated(&d);
    let pos = d.backend().engine().log_pos();
    d.meter_mut().reset();
    d.meter_mut().set_tracing(true);
    d.create_layer(&child, Some(&base)).unwrap();
    let alloc1 = allocated(&d);
    let logged = d.backend().engine().log_pos() - pos;
    let steps = d.meter_mut().take_steps();
    eprintln!(
        "btrfs snapshot of a 16 MiB layer: pool {alloc0} -> {alloc1} bytes allocated, \
         {logged} bytes of metadata logged; meter {}; {steps:?}",
        d.meter().counts.summary()
    );
    assert!(alloc0 >= 16 * MIB);
    assert_eq!(alloc1, alloc0, "a snapshot must add no data blocks");
    assert!(logged < 128, "snapshot logged {logged} bytes");
    assert_eq!(d.meter().counts.bytes_copied, 0);
    assert_eq!(d.meter().counts.blocks_allocated, 0);
    assert_traced(&steps, "btrfs subvolume snapshot");
    let got = d.read(&child, &p("/data.bin"), 5 * MIB, 100).unwrap();
    assert_eq!(got, &data[5 * MIB as usize..5 * MIB as usize + 100]);
    let u = d.usage(&child).unwrap();
    assert_eq!(u.bytes, 0);
    assert_eq!(u.details["referenced"], 16 * MIB);
    assert_eq!(u.details["shared"], 16 * MIB);
    // removing the child frees nothing of the base; removing the base frees it all
    d.remove_layer(&child).unwrap();
    assert_eq!(allocated(&d), alloc0);
    d.remove_layer(&base).unwrap();
    assert_eq!(
        allocated(&d),
        0,
        "freed sectors are punched out of the pool"
    );
}

/// The snapshot figure does not depend on the number of files: the same record for a
/// subvolume of 10 files and one of 20,000.
#[test]
fn snapshot_metadata_does_not_grow_with_files() {
    let mut figures = Vec::new();
    for n in [10usize, 20_000] {
        let (_dir, mut d, base) = fresh_with_base::<BtrfsFlavor>(Options::new());
        for k in 0..n.div_ceil(1000) {
            d.mkdir(&base, &p(&format!("/d{k}")), 0o755).unwrap();
        }
        for i in 0..n {
            ops::write_file(
                &mut d,
                &base,
                &p(&format!("/d{}/f{i}", i / 1000)),
                b"x",
                0o644,
            )
            .unwrap();
        }
        d.commit(&base).unwrap();
        let (pos, alloc) = (d.backend().engine().log_pos(), allocated(&d));
        d.meter_mut().reset();
        d.create_layer(&id("snap"), Some(&base)).unwrap();
        let logged = d.backend().engine().log_pos() - pos;
        let c = d.meter().counts;
        eprintln!(
            "btrfs snapshot of {n} files: {logged} bytes logged, {} metadata writes, pool \
             {alloc} -> {}",
            c.metadata_writes,
            allocated(&d)
        );
        assert_eq!(allocated(&d), alloc);
        figures.push((logged, c.metadata_writes));
        let last = p(&format!("/d{}/f{}", (n - 1) / 1000, n - 1));
        assert_eq!(d.read(&id("snap"), &last, 0, 10).unwrap(), b"x");
    }
    assert_eq!(
        figures[0], figures[1],
        "snapshot cost grew with the file count"
    );
}

#[test]
fn six_one_byte_writes_cost_six_sectors() {
    let dir = tempdir();
    let (mut d, child, steps) = six_one_byte_writes::<BtrfsFlavor>(&dir, 4096);
    assert!(
        steps.iter().any(|s| s.contains("of /big.bin")
            && s.contains("shared with base: CoW 4096 bytes to block")),
        "{steps:?}"
    );
    let u = d.usage(&child).unwrap();
    assert_eq!(u.details["exclusive"], 6 * 4096, "like btrfs filesystem du");
    assert_eq!(u.details["referenced"], 8 * MIB);
    // a second write into a sector the child now owns costs no new pool space
    let alloc1 = allocated(&d);
    d.write(&child, &p("/big.bin"), 18, b"!").unwrap();
    assert_eq!(allocated(&d), alloc1);
}

#[test]
fn random_rewrite_fragments_the_file() {
    let dir = tempdir();
    let mut d: Layers<Btrfs> = init(&dir, Options::new());
    let (_, child, mut data) = base_and_child(&mut d, "/db", 4 * MIB, 9);
    d.meter_mut().reset();
    let before = d.read(&child, &p("/db"), 0, 4 * MIB).unwrap();
    let ext_before = d.meter().counts.extents_read;
    assert_eq!(before, data);
    let mut x: u64 = 12345;
    for _ in 0..64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let block = (x >> 33) % 1024;
        let bytes = pattern(block, 4096, 1);
        d.write(&child, &p("/db"), block * 4096, &bytes).unwrap();
        data[(block * 4096) as usize..(block * 4096 + 4096) as usize].copy_from_slice(&bytes);
    }
    // a warm re-read is served by the page cache: no extent read
    d.meter_mut().reset();
    d.read(&child, &p("/db"), 0, 4 * MIB).unwrap();
    assert_eq!(d.meter().counts.extents_read, 0);
    assert_eq!(d.meter().counts.cache_hits, 1);
    // a cold one (a reopened store) reads every fragment
    drop(d);
    let mut d = Layers::<Btrfs>::open(&dir.path().join("store"), Access::Write).unwrap();
    let after = d.read(&child, &p("/db"), 0, 4 * MIB).unwrap();
    let ext_after = d.meter().counts.extents_read;
    eprintln!("btrfs one sequential read of a 4 MiB file: {ext_before} extent(s) before, {ext_after} after 64 random 4 KiB rewrites in the snapshot");
    assert_eq!(after, data);
    assert_eq!(ext_before, 1);
    assert!(ext_after > 64, "{ext_after}");
}

#[test]
fn reopened_store_reads_back_every_layer() {
    let dir = tempdir();
    let root = dir.path().join("store");
    let mut d: Layers<Btrfs> = init(&dir, Options::new());
    let ids = layer_chain(&mut d, 3, |d, k, l| {
        let f = p(&format!("/f{k}"));
        ops::write_file(d, l, &f, &pattern(0, 10_000, k as u8), 0o640).unwrap();
        d.write(l, &p("/f0"), 5000 + k as u64, b"zz").unwrap();
        d.hardlink(l, &f, &p(&format!("/h{k}"))).unwrap();
    });
    let layers: Vec<&LayerId> = ids.iter().collect();
    d.unlink(&ids[2], &p("/f1")).unwrap_err();
    let expect = root_files(&mut d, &layers);
    let used = d.backend().engine().refs.used();
    drop(d);
    let mut d = Layers::<Btrfs>::open(&root, Access::Write).unwrap();
    assert_eq!(root_files(&mut d, &layers), expect);
    assert_eq!(d.backend().engine().refs.used(), used);
    // after a compaction too
    drop(d);
    let mut d = Layers::<Btrfs>::open(&root, Access::Write).unwrap();
    let c = id("c");
    d.create_layer(&c, Some(&ids[2])).unwrap();
    d.write(&c, &p("/f0"), 0, b"new").unwrap();
    drop(d);
    assert!(checkpoint::<BtrfsFlavor>(&root));
    let mut d = Layers::<Btrfs>::open(&root, Access::Read).unwrap();
    assert_eq!(root_files(&mut d, &layers), expect, "after compaction");
    assert_eq!(d.read(&c, &p("/f0"), 0, 3).unwrap(), b"new");
}

#[test]
fn bad_options_are_refused() {
    crate::cow::testutil::bad_options_are_refused::<BtrfsFlavor>(&[
        ("btrfs.sectorsize", "3000"),
        ("btrfs.sectorsize", "1MiB"),
        ("btrfs.poolsize", "x"),
        ("btrfs.nope", "1"),
    ]);
}

/// A disk extent stays allocated whole while any part of it is named (btrfs's bookends,
/// measured on real btrfs on this machine: a 4 KiB overwrite of a 1 MiB extent leaves
/// Data used at 1 MiB + 4 KiB; a truncation to 4 KiB keeps the 1 MiB; `filesystem du`
/// counts only the named bytes, and an extent two slices of one file name is not shared).
#[test]
fn partly_overwritten_extent_stays_allocated_whole() {
    let (dir, mut d, base) = fresh_with_base::<BtrfsFlavor>(Options::new());
    let root = dir.path().join("store");
    let mut data = pattern(0, MIB as usize, 9);
    ops::write_file(&mut d, &base, &p("/f"), &data, 0o644).unwrap();
    assert_eq!(allocated(&d), MIB);
    d.meter_mut().set_tracing(true);
    d.write(&base, &p("/f"), 512 * 1024, &[b'#'; 4096]).unwrap();
    data[512 * 1024..516 * 1024].fill(b'#');
    let steps = d.meter_mut().take_steps();
    assert_traced(&steps, "old disk extent of 256 sectors stays allocated");
    assert_eq!(
        allocated(&d),
        MIB + 4096,
        "the overwritten sector is pinned"
    );
    let u = d.usage(&base).unwrap();
    assert_eq!(
        u.bytes, MIB,
        "du counts the named bytes, all of them exclusive"
    );
    assert_eq!(u.details["pinned"], 4096);
    let facts = d.status().unwrap().facts;
    assert!(
        facts
            .iter()
            .any(|(k, v)| k == "Pinned by bookend extents" && v.starts_with("4KiB ")),
        "{facts:?}"
    );
    // a truncation narrows the slices, not the extents: the new sector goes, the first
    // sector of the old extent keeps all of it
    d.truncate(&base, &p("/f"), 4096).unwrap();
    assert_eq!(allocated(&d), MIB);
    assert_eq!(d.usage(&base).unwrap().details["pinned"], MIB - 4096);
    // the pins survive a reopen (checkpoint counts recomputed from the trees) ...
    drop(d);
    let mut d = Layers::<Btrfs>::open(&root, Access::Write).unwrap();
    assert_eq!(d.usage(&base).unwrap().details["pinned"], MIB - 4096);
    drop(d);
    assert!(checkpoint::<BtrfsFlavor>(&root));
    let mut d = Layers::<Btrfs>::open(&root, Access::Write).unwrap();
    assert_eq!(d.read(&base, &p("/f"), 0, 10).unwrap(), data[..10].to_vec());
    // ... and go when no part of the extent is named
    d.truncate(&base, &p("/f"), 0).unwrap();
    assert_eq!(allocated(&d), 0);
    assert_eq!(d.usage(&base).unwrap().details["pinned"], 0);
}

/// The base's extent partly overwritten in a snapshot is shared as a whole: nothing of it
/// is exclusive to the base (real btrfs: 0), and removing the child frees only its own.
#[test]
fn an_extent_partly_overwritten_in_a_snapshot_stays_shared() {
    let dir = tempdir();
    let mut d: Layers<Btrfs> = init(&dir, Options::new());
    let (base, child, _) = base_and_child(&mut d, "/g", MIB, 4);
    d.write(&child, &p("/g"), 0, b"x").unwrap();
    let (b, c) = (d.usage(&base).unwrap(), d.usage(&child).unwrap());
    assert_eq!(b.bytes, 0, "the whole extent is shared with the child");
    assert_eq!(b.details["shared"], MIB);
    assert_eq!(c.bytes, 4096);
    assert_eq!(c.details["shared"], MIB - 4096);
    assert_eq!(allocated(&d), MIB + 4096);
    d.remove_layer(&child).unwrap();
    assert_eq!(allocated(&d), MIB);
    assert_eq!(d.usage(&base).unwrap().bytes, MIB);
}

/// btrfs's page cache is per subvolume inode: a file read (twice) in the base is cold
/// again in a snapshot (zfs's ARC, keyed by block, is shared: see the zfs test).
#[test]
fn snapshots_do_not_share_the_page_cache() {
    let (in_base, in_child) = crate::cow::testutil::page_cache_reads::<BtrfsFlavor>();
    assert!(in_base >= 1);
    assert_eq!(
        in_child, in_base,
        "cold in the snapshot, warm on the second base read"
    );
}

/// Small files live inline in metadata, as on this machine's btrfs (measured: 2048 bytes
/// inline, 2049 a 4 KiB extent; an inline file that grows past the limit moves to an
/// extent; a write starting past it makes a regular extent; `filesystem du` counts none of
/// the inline bytes).
#[test]
fn small_files_live_inline() {
    let dir = tempdir();
    let root = dir.path().join("store");
    let mut d: Layers<Btrfs> = init(&dir, Options::new());
    let (base, child) = (id("base"), id("child"));
    d.create_layer(&base, None).unwrap();
    for (name, n) in [("/one", 1), ("/full", 2048)] {
        ops::write_file(&mut d, &base, &p(name), &pattern(0, n, 3), 0o644).unwrap();
    }
    assert_eq!(allocated(&d), 0, "inline files take no pool space");
    let u = d.usage(&base).unwrap();
    assert_eq!((u.bytes, u.details["inline"]), (0, 2049));
    ops::write_file(&mut d, &base, &p("/over"), &pattern(0, 2049, 3), 0o644).unwrap();
    assert_eq!(allocated(&d), 4096);
    // two appends that stay within the limit stay inline
    ops::write_file(&mut d, &base, &p("/two"), &pattern(0, 1000, 4), 0o644).unwrap();
    d.append(&base, &p("/two"), &pattern(1000, 1000, 4))
        .unwrap();
    assert_eq!(allocated(&d), 4096);
    let mut two = pattern(0, 1000, 4);
    two.extend_from_slice(&pattern(1000, 1000, 4));
    assert_eq!(ops::read_all(&mut d, &base, &p("/two")).unwrap(), two);
    // growing past the limit: the inline bytes move to unit 0
    ops::write_file(&mut d, &base, &p("/grow"), &pattern(0, 100, 5), 0o644).unwrap();
    d.meter_mut().set_tracing(true);
    d.write(&base, &p("/grow"), 8192, b"tail").unwrap();
    let steps = d.meter_mut().take_steps();
    assert_traced(&steps, "100 inline bytes move to a data extent");
    assert_eq!(allocated(&d), 3 * 4096, "unit 0 and unit 2; unit 1 a hole");
    let mut want = pattern(0, 100, 5);
    want.resize(8192, 0);
    want.extend_from_slice(b"tail");
    assert_eq!(ops::read_all(&mut d, &base, &p("/grow")).unwrap(), want);
    // truncating an inline file past the limit: one block, the rest a hole
    ops::write_file(&mut d, &base, &p("/trunc"), &pattern(0, 100, 6), 0o644).unwrap();
    d.truncate(&base, &p("/trunc"), 10_000).unwrap();
    assert_eq!(allocated(&d), 4 * 4096);
    let mut want = pattern(0, 100, 6);
    want.resize(10_000, 0);
    assert_eq!(ops::read_all(&mut d, &base, &p("/trunc")).unwrap(), want);
    // a first write past the limit is a regular extent
    d.create(&base, &p("/sparse"), 0o644).unwrap();
    d.write(&base, &p("/sparse"), 4096, b"x").unwrap();
    assert_eq!(allocated(&d), 5 * 4096);
    // a snapshot shares inline files; changing one in the child takes no pool space
    d.commit(&base).unwrap();
    d.create_layer(&child, Some(&base)).unwrap();
    d.write(&child, &p("/one"), 0, b"!").unwrap();
    assert_eq!(allocated(&d), 5 * 4096);
    assert_eq!(d.usage(&child).unwrap().bytes, 0);
    assert_eq!(d.read(&base, &p("/one"), 0, 1).unwrap(), pattern(0, 1, 3));
    assert_eq!(d.read(&child, &p("/one"), 0, 1).unwrap(), b"!");
    // inline bytes survive a reopen and a compaction
    let views = root_files(&mut d, &[&base, &child]);
    drop(d);
    assert!(checkpoint::<BtrfsFlavor>(&root));
    let mut d = Layers::<Btrfs>::open(&root, Access::Read).unwrap();
    assert_eq!(root_files(&mut d, &[&base, &child]), views);
}

/// `btrfs.max_inline=0` turns inlining off.
#[test]
fn max_inline_zero_stores_every_file_in_extents() {
    let (_dir, mut d, base) = fresh_with_base::<BtrfsFlavor>(opts(&[("btrfs.max_inline", "0")]));
    ops::write_file(&mut d, &base, &p("/one"), b"x", 0o644).unwrap();
    assert_eq!(allocated(&d), 4096);
    let dir2 = tempdir();
    let err = Layers::<Btrfs>::init(
        &dir2.path().join("store"),
        opts(&[("btrfs.max_inline", "4096")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("btrfs.max_inline"), "{err}");
}

/// `max_inline` is kept in the superblock: every command reopens the store, so a small
/// file written after a reopen is inline (no pool sector), and one past the limit is not
/// (issue 12, item 10: the limit read back as 0).
#[test]
fn max_inline_survives_reopen() {
    for (limit, small_inline) in [("2048", true), ("100", false)] {
        let dir = tempdir();
        let root = dir.path().join("store");
        let d: Layers<Btrfs> = init(&dir, opts(&[("btrfs.max_inline", limit)]));
        drop(d);
        let base = id("base");
        let mut d = Layers::<Btrfs>::open(&root, Access::Write).unwrap();
        assert_eq!(
            d.backend().engine().geo.max_inline.to_string(),
            limit,
            "max_inline after a reopen"
        );
        d.create_layer(&base, None).unwrap();
        drop(d);
        let mut d = Layers::<Btrfs>::open(&root, Access::Write).unwrap();
        ops::write_file(&mut d, &base, &p("/small"), &[7u8; 1000], 0o644).unwrap();
        drop(d);
        let mut d = Layers::<Btrfs>::open(&root, Access::Write).unwrap();
        let want = if small_inline { 0 } else { 4096 };
        assert_eq!(allocated(&d), want, "max_inline {limit}");
        ops::write_file(&mut d, &base, &p("/big"), &[8u8; 2049], 0o644).unwrap();
        drop(d);
        let mut d = Layers::<Btrfs>::open(&root, Access::Read).unwrap();
        assert_eq!(allocated(&d), want + 4096);
        assert_eq!(
            ops::read_all(&mut d, &base, &p("/small")).unwrap(),
            [7u8; 1000]
        );
        drop(d);
        assert!(checkpoint::<BtrfsFlavor>(&root));
        let mut d = Layers::<Btrfs>::open(&root, Access::Read).unwrap();
        assert_eq!(d.backend().engine().geo.max_inline.to_string(), limit);
        assert_eq!(
            ops::read_all(&mut d, &base, &p("/big")).unwrap(),
            [8u8; 2049]
        );
    }
}

/// btrfs keeps an extended attribute in one leaf item: name and value at most 16228
/// bytes together (BTRFS_MAX_XATTR_SIZE, 16 KiB nodes), else ENOSPC with nothing changed;
/// removing an attribute that is not there changes nothing either.
#[test]
fn an_xattr_item_is_bounded_by_the_leaf() {
    let (_dir, mut d, base) = fresh_with_base::<BtrfsFlavor>(Options::new());
    d.create(&base, &p("/f"), 0o644).unwrap();
    let name = "user.a";
    d.set_xattr(&base, &p("/f"), name, &vec![1u8; 16228 - name.len()])
        .unwrap();
    let pos = d.backend().engine().log_pos();
    let err = d
        .set_xattr(&base, &p("/f"), name, &vec![2u8; 16229 - name.len()])
        .unwrap_err();
    assert_eq!(err.kind(), layerlab_core::ErrorKind::NoSpace, "{err}");
    let err = d.remove_xattr(&base, &p("/f"), "user.other").unwrap_err();
    assert_eq!(err.kind(), layerlab_core::ErrorKind::NoAttribute, "{err}");
    assert_eq!(d.backend().engine().log_pos(), pos, "nothing logged");
    assert_eq!(
        d.get_xattr(&base, &p("/f"), name).unwrap(),
        vec![1u8; 16228 - name.len()]
    );
}

crate::cow::testutil::cow_scenarios! {
    flavor: BtrfsFlavor,
    old_magic: b"LLBTRFS4",
    big_xattr: 16_000,
    pool_key: "btrfs.poolsize",
    run: 64 << 10,
}

/// Reads `/f` of `layer` and returns the root-tree leaves the read counted.
fn leaf_reads(d: &mut Layers<Btrfs>, layer: &str) -> u64 {
    d.meter_mut().reset();
    d.read(&id(layer), &p("/f"), 0, 1).unwrap();
    d.meter().counts.tree_leaf_reads
}

#[test]
fn a_cold_entry_reads_the_root_tree_leaf_of_its_subvolume_unless_cached() {
    let dir = tempdir();
    let mut d: Layers<Btrfs> = init(&dir, Options::new());
    // 60 subvolumes, ids 256 to 315: the root tree's leaves hold the low trees' root items
    // and every root ref with the first six subvolumes' root items, then l06 to l36, then
    // l37 to l59 with the data relocation tree's root item
    for i in 0..60 {
        let l = id(&format!("l{i:02}"));
        d.create_layer(&l, None).unwrap();
        ops::write_file(&mut d, &l, &p("/f"), b"x", 0o644).unwrap();
    }
    assert_eq!(leaf_reads(&mut d, "l10"), 0, "made since open: in memory");
    drop(d);
    let mut d = Layers::<Btrfs>::open(&dir.path().join("store"), Access::Read).unwrap();
    assert_eq!(
        leaf_reads(&mut d, "l00"),
        0,
        "beside the roots the mount read"
    );
    assert_eq!(
        leaf_reads(&mut d, "l50"),
        0,
        "beside the data relocation root"
    );
    assert_eq!(leaf_reads(&mut d, "l10"), 1, "a leaf nothing read yet");
    assert_eq!(leaf_reads(&mut d, "l20"), 0, "the leaf l10's entry read");
    assert_eq!(leaf_reads(&mut d, "l10"), 0, "entered already");
}

/// Every subvolume's id, by name.
fn subvol_ids(d: &Driver<BtrfsFlavor>) -> std::collections::BTreeMap<String, u64> {
    let subvols = &d.backend().engine().subvols;
    subvols.iter().map(|(n, t)| (n.clone(), t.id)).collect()
}

#[test]
fn subvolume_ids_survive_a_reopen_and_a_new_one_takes_the_next() {
    let dir = tempdir();
    let root = dir.path().join("store");
    let mut d: Driver<BtrfsFlavor> = init(&dir, Options::new());
    let chain = layer_chain(&mut d, 3, |_, _, _| {});
    d.remove_layer(&chain[2]).unwrap();
    let before = subvol_ids(&d);
    drop(d);
    let mut d = Driver::<BtrfsFlavor>::open(&root, Access::Write).unwrap();
    assert_eq!(subvol_ids(&d), before, "ids as they were before the reopen");
    let highest = before.values().copied().max().unwrap();
    assert!(before.values().all(|&i| i >= 256), "{before:?}");
    d.create_layer(&id("d"), Some(&chain[1])).unwrap();
    let after = subvol_ids(&d);
    let new: Vec<u64> = after
        .iter()
        .filter(|(n, _)| !before.contains_key(*n))
        .map(|(_, &i)| i)
        .collect();
    assert_eq!(new, [highest + 1], "{after:?}");
}

/// The probes and layer entries a cold read of `/app/f` in `layer` counts, on a store
/// opened again (nothing cached).
fn cold_lookups(dir: &tempfile::TempDir, layer: &str) -> (u64, u64) {
    let mut d = Layers::<Btrfs>::open(&dir.path().join("store"), Access::Read).unwrap();
    d.read(&id(layer), &p("/app/f"), 0, 1).unwrap();
    let c = d.meter().counts;
    (c.probes, c.layer_opens)
}

/// A subvolume whose tree is one 16 KiB leaf is read whole with its root node on entering
/// it: its names cost no probe. One of 100 files has a tree of several leaves: a name not
/// looked up before is a probe.
#[test]
fn a_name_in_a_one_leaf_subvolume_costs_no_probe() {
    let dir = tempdir();
    let mut d: Layers<Btrfs> = init(&dir, Options::new());
    let (small, big) = (id("small"), id("big"));
    for l in [&small, &big] {
        d.create_layer(l, None).unwrap();
        ops::mkdir_p(&mut d, l, &p("/app"), 0o755).unwrap();
        ops::write_file(&mut d, l, &p("/app/f"), &[7u8; 4096], 0o644).unwrap();
    }
    for i in 0..100 {
        ops::write_file(&mut d, &big, &p(&format!("/file{i:03}")), b"x", 0o644).unwrap();
    }
    drop(d);
    assert_eq!(
        cold_lookups(&dir, "small"),
        (0, 1),
        "entered, nothing probed"
    );
    assert_eq!(
        cold_lookups(&dir, "big"),
        (1, 1),
        "entered, the name probed"
    );
}
