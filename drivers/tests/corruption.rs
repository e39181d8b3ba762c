//! Flipped bytes in the files of the block and snapshot drivers (devicemapper, btrfs,
//! zfs): a store holding a few layers and files (a checkpoint and log records after it) has
//! one byte flipped at a time, at every record boundary and a spread of offsets of its
//! metadata file and of the bytes its data file holds; after each flip the store is opened
//! read-only, every layer's whole view is compared with the one before, and `check` (the
//! `fsck` hook) is run. Each flip must be detected: by open (refused), by a read (an
//! error, never other bytes) or by `check`. The one exception is the last log record: a
//! damaged last record cannot be told from a torn one, so it is discarded as a torn tail
//! (the store shows the commit before it) and `check` reports it.
//!
//! dm-thin checksums only its metadata, so a flip in devicemapper's data file can return
//! other bytes (as on a real thin pool); those flips are counted and printed, not asserted.
//!
//! `LAYERLAB_LONG=1` flips every byte of every superblock and record header and many more
//! offsets; the default run takes a few seconds per driver.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{id, p, view, View};
use layerlab_core::{ops, LayerDriver, LayerId, Meter};
use layerlab_drivers::blockpool::{data_regions, Examined};
use layerlab_drivers::btrfs::{Btrfs, BtrfsFlavor};
use layerlab_drivers::cow::engine::Engine;
use layerlab_drivers::cow::Flavor;
use layerlab_drivers::devicemapper::pool::Pool;
use layerlab_drivers::devicemapper::Devicemapper;
use layerlab_drivers::fsck::CheckReport;
use layerlab_drivers::store::Store;
use layerlab_drivers::zfs::{Zfs, ZfsFlavor};
use layerlab_drivers::{registry, Access, Cx, Lifecycle, Options};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

fn long() -> bool {
    std::env::var_os("LAYERLAB_LONG").is_some_and(|v| v != "0")
}

fn opts(pairs: &[(&str, &str)]) -> Options {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Bytes from a xorshift stream seeded by `seed`: no run of one pattern is found in another.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(seed).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Compacts the driver's metadata log into a checkpoint (later changes go to records).
fn compact(name: &str, root: &Path) {
    let store = Store::open(root, name, Access::Write).unwrap();
    let mut meter = Meter::new();
    let mut cx = Cx {
        store: &store,
        meter: &mut meter,
    };
    let done = match name {
        "devicemapper" => Devicemapper::open(&mut cx).unwrap().compact(&mut cx),
        "btrfs" => Btrfs::open(&mut cx).unwrap().checkpoint_now(&mut cx),
        "zfs" => Zfs::open(&mut cx).unwrap().checkpoint_now(&mut cx),
        _ => unreachable!(),
    };
    assert!(done.unwrap());
}

/// `check` of the driver on the store, read-only (no repair).
fn check(name: &str, root: &Path) -> CheckReport {
    check_with(name, root, false)
}

/// The driver's directory, metadata file and data file, and how its metadata file reads.
fn files(name: &str, root: &Path) -> (PathBuf, PathBuf, Examined) {
    let dir = root.join(name);
    let ex = match name {
        "devicemapper" => Pool::examine(&dir, false),
        "btrfs" => Engine::examine(&dir, BtrfsFlavor::FORMAT, false),
        "zfs" => Engine::examine(&dir, ZfsFlavor::FORMAT, false),
        _ => unreachable!(),
    }
    .unwrap();
    let data = if name == "devicemapper" {
        "data"
    } else {
        "pool"
    };
    (dir.join("metadata"), dir.join(data), ex)
}

/// A store with a committed base (checkpointed), a committed child and an active
/// grandchild changed after the checkpoint (log records).
fn build(name: &str, root: &Path) -> Vec<LayerId> {
    let o = match name {
        "devicemapper" => opts(&[("dm.loopdatasize", "64MiB"), ("dm.blocksize", "64KiB")]),
        _ => Options::new(),
    };
    let (base, child, top) = (id("base"), id("child"), id("top"));
    let mut d = registry::init(name, root, o).unwrap();
    d.create_layer(&base, None).unwrap();
    ops::mkdir_p(&mut d, &base, &p("/etc"), 0o755).unwrap();
    ops::mkdir_p(&mut d, &base, &p("/dir/sub"), 0o755).unwrap();
    ops::write_file(&mut d, &base, &p("/etc/hostname"), b"layerlab\n", 0o644).unwrap();
    ops::write_file(&mut d, &base, &p("/tool"), &pattern(200 << 10, 1), 0o755).unwrap();
    ops::write_file(&mut d, &base, &p("/dir/sub/f"), &pattern(9000, 2), 0o600).unwrap();
    d.symlink(&base, "/etc/hostname", &p("/link")).unwrap();
    d.hardlink(&base, &p("/tool"), &p("/tool2")).unwrap();
    d.set_xattr(&base, &p("/tool"), "user.note", b"value")
        .unwrap();
    d.commit(&base).unwrap();
    drop(d);
    compact(name, root);
    let mut d = registry::open(root, Access::Write).unwrap();
    d.create_layer(&child, Some(&base)).unwrap();
    d.write(&child, &p("/tool"), 64 << 10, &pattern(5000, 3))
        .unwrap();
    d.unlink(&child, &p("/etc/hostname")).unwrap();
    ops::write_file(&mut d, &child, &p("/new"), &pattern(50 << 10, 4), 0o644).unwrap();
    d.commit(&child).unwrap();
    d.create_layer(&top, Some(&child)).unwrap();
    ops::mkdir_p(&mut d, &top, &p("/d2"), 0o700).unwrap();
    d.chmod(&top, &p("/new"), 0o600).unwrap();
    ops::write_file(&mut d, &top, &p("/d2/small"), b"tiny", 0o644).unwrap();
    vec![base, child, top]
}

/// A store made by `build` in a new directory, and every layer's view (the store closed).
fn built(name: &str) -> (tempfile::TempDir, PathBuf, Vec<(LayerId, View)>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let layers = build(name, &root);
    let mut d = registry::open(&root, Access::Read).unwrap();
    let want = layers
        .iter()
        .map(|l| (l.clone(), view(&mut d, l).unwrap()))
        .collect();
    (dir, root, want)
}

/// Offsets to flip in the metadata file: around every boundary of every live region
/// (superblocks, checkpoint, records), and a spread inside each.
fn meta_offsets(ex: &Examined) -> Vec<u64> {
    let mut out = Vec::new();
    let spread = if long() { 64 } else { 4 };
    for (start, len) in ex.regions() {
        if long() && len <= 128 {
            out.extend(start..start + len);
            continue;
        }
        for k in [0, 1, 4, 8, 12, 13, 16, 19, 20, 21] {
            if k < len {
                out.push(start + k);
            }
        }
        out.push(start + len - 1);
        for k in 1..=spread {
            out.push(start + len * k / (spread + 1));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Offsets to flip in the data file: a spread over the bytes it holds on the host.
fn data_offsets(path: &Path) -> Vec<u64> {
    let f = File::open(path).unwrap();
    let regions = data_regions(&f, 0, f.metadata().unwrap().len());
    let total: u64 = regions.iter().map(|(a, b)| b - a).sum();
    let n = if long() { 2048 } else { 48 };
    let mut out = Vec::new();
    for k in 0..n {
        // the k-th of n evenly spaced bytes of the held bytes, shifted inside its sector
        let mut at = total * k / n + (k * 97) % 4096;
        for (a, b) in &regions {
            if at < b - a {
                out.push(a + at);
                break;
            }
            at -= b - a;
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn flip(path: &Path, off: u64) {
    layerlab_testkit::flip_bits(path, off, 0x5a).unwrap();
}

#[derive(Debug, Default)]
struct Tally {
    made: u64,
    by_open: u64,
    by_read: u64,
    by_check: u64,
    /// The last record discarded as a torn tail (the previous commit shown), and reported
    /// by check.
    torn_tail: u64,
    /// Other bytes returned without an error.
    wrong: Vec<String>,
    /// Nothing noticed anything.
    missed: Vec<u64>,
}

impl Tally {
    fn line(&self, what: &str) -> String {
        format!(
            "{what}: {} flips made, {} detected (open {}, read {}, check {}, last record \
             discarded as torn and reported by check {}), {} wrong bytes returned, {} missed",
            self.made,
            self.by_open + self.by_read + self.by_check + self.torn_tail,
            self.by_open,
            self.by_read,
            self.by_check,
            self.torn_tail,
            self.wrong.len(),
            self.missed.len()
        )
    }
}

/// One flip: open, every view, check; the byte is put back afterwards.
fn one_flip(
    name: &str,
    root: &Path,
    file: &Path,
    off: u64,
    last_record: std::ops::Range<u64>,
    want: &[(LayerId, View)],
    t: &mut Tally,
) {
    flip(file, off);
    t.made += 1;
    match registry::open(root, Access::Read) {
        Err(_) => t.by_open += 1,
        Ok(mut d) => {
            let (mut errors, mut wrong) = (0, None);
            for (l, v) in want {
                match view(&mut d, l) {
                    Err(_) => errors += 1,
                    Ok(got) if &got != v => wrong = Some(l.clone()),
                    Ok(_) => {}
                }
            }
            drop(d);
            let report = check(name, root);
            if let Some(l) = wrong {
                if last_record.contains(&off) && !report.is_clean() {
                    t.torn_tail += 1;
                } else {
                    t.wrong
                        .push(format!("{} byte {off}: layer {l}", file.display()));
                }
            } else if errors > 0 {
                t.by_read += 1;
            } else if !report.is_clean() {
                t.by_check += 1;
            } else {
                t.missed.push(off);
            }
        }
    }
    flip(file, off);
}

fn flips(name: &str) {
    let (_dir, root, want) = built(name);
    assert!(check(name, &root).is_clean(), "{:?}", check(name, &root));
    let (meta, data, ex) = files(name, &root);
    let last = ex.regions().last().map(|(a, n)| *a..a + n).unwrap();
    let mut tm = Tally::default();
    for off in meta_offsets(&ex) {
        one_flip(name, &root, &meta, off, last.clone(), &want, &mut tm);
    }
    let mut td = Tally::default();
    for off in data_offsets(&data) {
        one_flip(name, &root, &data, off, 0..0, &want, &mut td);
    }
    let lines = format!(
        "{}\n{}\n",
        tm.line(&format!("{name} metadata")),
        td.line(&format!("{name} data"))
    );
    std::io::stderr().write_all(lines.as_bytes()).unwrap();
    // every byte is back: the store is as it was
    assert!(check(name, &root).is_clean());
    assert!(tm.wrong.is_empty(), "{name} metadata: {:?}", tm.wrong);
    assert!(
        tm.missed.is_empty(),
        "{name} metadata missed: {:?}",
        tm.missed
    );
    assert!(tm.made >= 50, "{name}: only {} metadata flips", tm.made);
    if name != "devicemapper" {
        assert!(td.wrong.is_empty(), "{name} data: {:?}", td.wrong);
        assert!(td.missed.is_empty(), "{name} data missed: {:?}", td.missed);
        assert_eq!(td.torn_tail, 0);
    }
}

#[test]
fn devicemapper_flips_are_detected() {
    flips("devicemapper");
}

#[test]
fn btrfs_flips_are_detected() {
    flips("btrfs");
}

#[test]
fn zfs_flips_are_detected() {
    flips("zfs");
}

fn check_with(name: &str, root: &Path, repair: bool) -> CheckReport {
    let access = if repair { Access::Write } else { Access::Read };
    let store = Store::open(root, name, access).unwrap();
    let mut meter = Meter::new();
    let mut cx = Cx {
        store: &store,
        meter: &mut meter,
    };
    let mut report = CheckReport::default();
    match name {
        "devicemapper" => Devicemapper::check(&mut cx, repair, &mut report),
        "btrfs" => Btrfs::check(&mut cx, repair, &mut report),
        "zfs" => Zfs::check(&mut cx, repair, &mut report),
        _ => unreachable!(),
    }
    .unwrap();
    report
}

/// Writes `bytes` at `off` in the file at `path` (which must exist).
fn write_at(path: &Path, bytes: &[u8], off: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

/// `check` finds `finding` first, a repair fixes it, and the store then checks clean with
/// every view in `want` as before.
fn repaired(name: &str, root: &Path, finding: &str, want: &[(LayerId, View)]) {
    let r = check_with(name, root, false);
    assert_eq!(r.exit_code(), 4, "{r:?}");
    assert!(r.findings[0].what.contains(finding), "{r:?}");
    let r = check_with(name, root, true);
    assert_eq!(r.exit_code(), 1, "{r:?}");
    assert_eq!(check_with(name, root, false).exit_code(), 0);
    let mut d = registry::open(root, Access::Read).unwrap();
    for (l, v) in want {
        assert_eq!(
            &view(&mut d, l).unwrap(),
            v,
            "{name}: {l} after repairing {finding}"
        );
    }
}

/// `check` and its repairs through the library, on each driver: a torn tail is reported,
/// then discarded by a repair (the store then opens clean, every view as before); damage
/// in the second-to-last record refuses the open (no panic) and is left uncorrected by a
/// repair, which says what it would lose and changes no byte; a free block holding bytes
/// on the host is leaked space, punched by a repair.
fn check_and_repair(name: &str) {
    let (_dir, root, want) = built(name);
    assert_eq!(check_with(name, &root, false).exit_code(), 0);
    let (meta, data, ex) = files(name, &root);
    let end = ex.opened.log.log_pos();

    // a torn record after the last one: its header and half its payload
    let mut torn = b"LREC".to_vec();
    torn.extend_from_slice(&[9u8; 30]);
    write_at(&meta, &torn, end);
    repaired(name, &root, "torn tail", &want);

    // damage in the second-to-last record: refused, left as it is, the loss named
    let regions = ex.regions();
    let (pos, len) = regions[regions.len() - 2];
    flip(&meta, pos + len / 2);
    let before = std::fs::read(&meta).unwrap();
    let err = registry::open(&root, Access::Write).unwrap_err();
    assert!(err.to_string().contains("layerlab fsck"), "{err}");
    for repair in [false, true] {
        let r = check_with(name, &root, repair);
        assert_eq!(r.exit_code(), 4, "{r:?}");
        let f = r
            .findings
            .iter()
            .find(|f| f.what.contains("would lose"))
            .unwrap_or_else(|| panic!("{r:?}"));
        assert!(f.what.contains("1 committed record(s) follow"), "{f:?}");
    }
    assert!(
        std::fs::read(&meta).unwrap() == before,
        "a refused repair changed bytes"
    );
    flip(&meta, pos + len / 2);

    // a free block past everything in use, holding bytes on the host: leaked
    let size = std::fs::metadata(&data).unwrap().len().max(64 << 20);
    write_at(&data, b"leaked", size - (1 << 20));
    repaired(name, &root, "leaked", &want);
}

#[test]
fn devicemapper_check_and_repair() {
    check_and_repair("devicemapper");
}

#[test]
fn btrfs_check_and_repair() {
    check_and_repair("btrfs");
}

#[test]
fn zfs_check_and_repair() {
    check_and_repair("zfs");
}

/// A data sector that fails its checksum is an EIO-like error naming the layer, the path
/// and the pool offset, in every layer that shares it, never other bytes; `check` names
/// the same place; the sector's other files read on.
fn bad_sector_is_eio(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    build(name, &root);
    let (_, data, _) = files(name, &root);
    // /dir/sub/f's first unit: find it by its bytes in the pool file
    let needle = pattern(9000, 2);
    let pool = std::fs::read(&data).unwrap();
    let at = pool.windows(64).position(|w| w == &needle[..64]).unwrap() as u64;
    flip(&data, at + 10);
    let mut d = registry::open(&root, Access::Read).unwrap();
    for l in ["base", "child", "top"] {
        let Err(err) = ops::read_all(&mut d, &id(l), &p("/dir/sub/f")) else {
            panic!("{name}: layer {l}: a flipped sector read without an error");
        };
        assert_eq!(err.kind(), layerlab_core::ErrorKind::Checksum, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("layer {l}"))
                && msg.contains("/dir/sub/f")
                && msg.contains(&format!("byte {}", at / 4096 * 4096)),
            "{msg}"
        );
    }
    assert_eq!(
        ops::read_all(&mut d, &id("base"), &p("/tool")).unwrap(),
        pattern(200 << 10, 1)
    );
    drop(d);
    let r = check_with(name, &root, true);
    assert_eq!(r.exit_code(), 4, "{r:?}");
    assert!(
        r.findings
            .iter()
            .any(|f| f.place.contains("/dir/sub/f") && f.what.contains("checksum")),
        "{r:?}"
    );
}

#[test]
fn btrfs_bad_sector_is_eio() {
    bad_sector_is_eio("btrfs");
}

#[test]
fn zfs_bad_sector_is_eio() {
    bad_sector_is_eio("zfs");
}
