//! Differential property test: the overlay2 model against the kernel's overlayfs.
//!
//! The same random operation sequences (every operation, hard links included, stacks up to
//! 16 layers) run on an `overlay2` store and a `kernel-overlay` store side by side. Both
//! must give the same results (the same bytes, metadata, listings, or errors of the same
//! kind); after every change the top layer's merged views must be identical (content,
//! modes, owners, listings, nlink, provenance); and the upper directory the kernel writes
//! must be the one the overlay2 driver writes: after every change and at the end, every
//! layer's `diff/` tree is compared host-side (the same copied-up files, the same
//! whiteout devices, the same opaque xattrs; the kernel's own bookkeeping xattrs
//! `trusted.overlay.origin`/`impure` are not part of the format the model writes and are
//! ignored).
//!
//! Each sequence starts with a few operations in the base layer (which the kernel driver
//! uses as a plain directory, as Docker does) and then commits it, so that most of the
//! sequence runs through a real overlay mount.
//!
//! `PROPTEST_CASES` overrides the number of cases (256 by default). On a machine without
//! mounts (not root, no overlay) the test prints `SKIP kernel-overlay: <reason>` and passes.
//!
//! The btrfs checks run the same snapshots and writes on the `btrfs` model and on
//! `kernel-btrfs`: `btrfs_exclusive_bytes_agree` compares every layer's exclusive bytes to
//! the sector (a base's extent partly overwritten in a snapshot stays shared whole);
//! `btrfs_bookend_extents_agree` compares the pool's use too, step by step, through
//! partial overwrites and truncations that leave extents pinned.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::duo::Duo;
use common::random_ops::*;
use common::{fresh_fast, store_root, view_diff, view_with, Capture};
use layerlab_core::{ops, LayerDriver, LayerId, LayerPath};
use layerlab_drivers::AnyDriver;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The longest sequence (after the base-layer prefix).
const MAX_OPS: usize = 40;

/// Every operation, hard links and new layers included: across layers a hard link is
/// "as the driver keeps it", and here the model must keep it as the kernel does.
fn op() -> BoxedStrategy<Op<Sel>> {
    prop_oneof![
        2 => Just(Op::NewLayer),
        7 => layer_op(),
        1 => (sel(), new_sel()).prop_map(|(a, b)| Op::Hardlink(a, b)),
    ]
    .boxed()
}

// ----- the diff trees, host-side ---------------------------------------------------------

/// What a `diff/` directory holds at one path, as overlayfs's upper-directory format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        nlink: u64,
        data: Vec<u8>,
    },
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
        opaque: Option<Vec<u8>>,
    },
    Symlink {
        uid: u32,
        gid: u32,
        target: PathBuf,
    },
    /// A character device 0/0.
    Whiteout,
    Other(String),
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    rustix::fs::lgetxattr(path, name, &mut buf).ok().map(|n| {
        buf.truncate(n);
        buf
    })
}

fn diff_tree(dir: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", d.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for name in names {
            let p = d.join(&name);
            let r = format!("{rel}/{name}");
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let node = if ft.is_dir() {
                stack.push((p.clone(), r.clone()));
                Node::Dir {
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    opaque: xattr(&p, "trusted.overlay.opaque"),
                }
            } else if ft.is_file() {
                Node::File {
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    nlink: md.nlink(),
                    data: std::fs::read(&p).unwrap(),
                }
            } else if ft.is_symlink() {
                Node::Symlink {
                    uid: md.uid(),
                    gid: md.gid(),
                    target: std::fs::read_link(&p).unwrap(),
                }
            } else if ft.is_char_device() && md.rdev() == 0 {
                Node::Whiteout
            } else {
                Node::Other(format!("{ft:?} rdev {}", md.rdev()))
            };
            out.insert(r, node);
        }
    }
    // the root's own attributes and marker
    let md = std::fs::symlink_metadata(dir).unwrap();
    out.insert(
        "/".into(),
        Node::Dir {
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            opaque: xattr(dir, "trusted.overlay.opaque"),
        },
    );
    out
}

// Differences found between the overlay2 model and the kernel, all modelled since:
// `rename-dir-opaque` (a directory moved into a merged parent is marked opaque: the union
// driver's `OPAQUE_ON_MOVE_INTO_MERGE`) and `rename-lower-hardlinks` (renaming one lower
// name of a hard-linked file onto another copies it up and renames, as overlayfs with
// `index=off` sees two inodes: `Flavor::LOWER_HARDLINKS_ONE_INODE`). The test now holds
// both against the kernel like any other operation.

// ----- one case -------------------------------------------------------------------------------

/// The overlay2 model and the kernel through one sequence, and where each keeps its
/// upper directories.
struct Pair {
    duo: Duo<AnyDriver, AnyDriver>,
    model_root: PathBuf,
    kernel_root: PathBuf,
}

fn diff_dir(root: &Path, id: &LayerId) -> PathBuf {
    layerlab_drivers::overlay2::layout::diff_dir(root, id)
}

impl Pair {
    fn check_diff(&mut self, l: &LayerId, step: &str) -> std::result::Result<(), TestCaseError> {
        let a = diff_tree(&diff_dir(&self.model_root, l));
        let b = diff_tree(&diff_dir(&self.kernel_root, l));
        match view_diff(&a, &b, "overlay2", "kernel") {
            None => Ok(()),
            Some(d) => Err(self.duo.fail(step, format!("diff/ of {l} differs:\n{d}"))),
        }
    }

    fn check_all(&mut self, step: &str) -> std::result::Result<(), TestCaseError> {
        for l in self.duo.stack.clone() {
            self.duo.check_view(&l, step)?;
            self.check_diff(&l, step)?;
            self.duo.check_changes(&l, step)?;
        }
        Ok(())
    }

    /// Applies one generated operation to both drivers and compares the results, the views
    /// and the upper directories.
    fn step(&mut self, i: usize, generated: &Op<Sel>) -> std::result::Result<(), TestCaseError> {
        let top = self.duo.top();
        let listing: Vec<LayerPath> = ops::walk(&mut self.duo.a, &top, &LayerPath::root())
            .map(|w| w.into_iter().map(|(p, _)| p).collect())
            .unwrap_or_default();
        let op = generated.map(|s| s.resolve(&listing));
        let step = format!("op #{i} `{op:?}`");
        if let Op::NewLayer = op {
            if self.duo.stack.len() >= MAX_STACK {
                return Ok(());
            }
            self.check_all(&format!("{step}, before committing"))?;
            self.duo
                .trace
                .push(format!("    #{i} {op:?} (commit {top}, new layer on it)"));
            return self.duo.new_layer(&step);
        }
        self.duo.trace.push(format!("    #{i} {op:?}"));
        self.duo.apply(&step, &op)?;
        if !op.is_read() {
            self.duo.check_view(&top, &format!("{step}, after it"))?;
            self.check_diff(&top, &format!("{step}, after it"))?;
        }
        Ok(())
    }
}

fn run_case(base_ops: &[Op<Sel>], ops: &[Op<Sel>]) -> std::result::Result<(), TestCaseError> {
    let (mdir, model) = fresh_fast("overlay2");
    let (kdir, kernel) = fresh_fast("kernel-overlay");
    let mut pair = Pair {
        duo: Duo::start(model, kernel, ["overlay2", "kernel"])?,
        model_root: store_root(&mdir),
        kernel_root: store_root(&kdir),
    };
    let all = base_ops
        .iter()
        .cloned()
        .chain(std::iter::once(Op::NewLayer))
        .chain(ops.iter().cloned());
    for (i, op) in all.enumerate() {
        pair.step(i, &op)?;
    }
    let r = pair.check_all("end of sequence");
    // the drivers (and their mounts) go before their directories
    drop(pair);
    assert_no_mounts_under(kdir.path());
    drop((mdir, kdir));
    r
}

/// No mount below `dir` (a test's own store) may outlive its driver. (Only the test's own
/// directory is checked: other tests and processes mount too.)
fn assert_no_mounts_under(dir: &Path) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir = format!("{}/", dir.display());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let left: Vec<&str> = info
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&dir)))
        .collect();
    assert!(left.is_empty(), "mounts left behind:\n{}", left.join("\n"));
}

/// Random sequences on overlay2 and kernel-overlay: identical merged views, identical
/// upper directories.
#[test]
fn overlay2_matches_the_kernel() {
    if common::available("kernel-overlay").is_none() || common::available("overlay2").is_none() {
        return;
    }
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = (
        prop::collection::vec(layer_op(), 0..8),
        prop::collection::vec(op(), 1..=MAX_OPS),
    );
    let r = runner.run(&strategy, |(base_ops, ops)| run_case(&base_ops, &ops));
    match r {
        Ok(()) => {}
        Err(TestError::Fail(reason, (base_ops, ops))) => panic!(
            "{reason}\n  minimal generated sequence: base {} ops, then {} ops:\n{}\n    --- new-layer ---\n{}",
            base_ops.len(),
            ops.len(),
            base_ops
                .iter()
                .map(|o| format!("    {o:?}"))
                .collect::<Vec<_>>()
                .join("\n"),
            ops.iter()
                .map(|o| format!("    {o:?}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        Err(e) => panic!("{e}"),
    }
}

/// The kernel driver's view really is an overlay mount, the kernel does the copy-up and
/// makes the whiteout, and the mount goes when the driver is dropped.
#[test]
fn kernel_overlay_really_mounts() {
    if common::available("kernel-overlay").is_none() {
        return;
    }
    let (dir, mut d) = fresh_fast("kernel-overlay");
    let root = store_root(&dir);
    let (b, c) = (
        LayerId::new("base").unwrap(),
        LayerId::new("child").unwrap(),
    );
    let p = |s: &str| LayerPath::parse(s).unwrap();
    d.create_layer(&b, None).unwrap();
    ops::write_file(&mut d, &b, &p("/f"), b"lower", 0o644).unwrap();
    ops::write_file(&mut d, &b, &p("/g"), b"gone", 0o644).unwrap();
    d.commit(&b).unwrap();
    d.create_layer(&c, Some(&b)).unwrap();
    d.append(&c, &p("/f"), b"+upper").unwrap();
    d.unlink(&c, &p("/g")).unwrap();
    let merged = layerlab_drivers::kernel::kernel_overlay::merged_dir(&root, &c);
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let canon = std::fs::canonicalize(&merged).unwrap();
    assert!(
        info.lines()
            .any(|l| l.contains(" overlay ") && l.contains(canon.to_str().unwrap())),
        "no overlay mount at {}",
        canon.display()
    );
    let upper = diff_dir(&root, &c);
    assert_eq!(std::fs::read(upper.join("f")).unwrap(), b"lower+upper");
    let wh = std::fs::symlink_metadata(upper.join("g")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(
        std::fs::read(diff_dir(&root, &b).join("f")).unwrap(),
        b"lower"
    );
    drop(d);
    assert_no_mounts_under(dir.path());
}

/// The btrfs model and its kernel reference, where this machine runs both (else a SKIP
/// line is printed).
fn btrfs_pair() -> Option<(&'static str, &'static str)> {
    let kernel = common::available("kernel-btrfs")?;
    Some((common::available("btrfs")?, kernel))
}

fn p(s: &str) -> LayerPath {
    LayerPath::parse(s).unwrap()
}

fn l(s: &str) -> LayerId {
    LayerId::new(s).unwrap()
}

/// The btrfs model and real btrfs: after the same snapshots and writes, the exclusive bytes
/// of every layer agree to the sector.
#[test]
fn btrfs_exclusive_bytes_agree() {
    let Some((model, kernel)) = btrfs_pair() else {
        return;
    };
    let mut results = Vec::new();
    for name in [model, kernel] {
        let (dir, mut d) = fresh_fast(name);
        let (b, c, g) = (l("base"), l("child"), l("grandchild"));
        d.create_layer(&b, None).unwrap();
        let big: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
        ops::write_file(&mut d, &b, &p("/big"), &big, 0o644).unwrap();
        ops::write_file(&mut d, &b, &p("/small"), &big[..65536], 0o644).unwrap();
        d.commit(&b).unwrap();
        d.create_layer(&c, Some(&b)).unwrap();
        // six 1-byte writes into six sectors of the inherited file
        for k in 0..6u64 {
            d.write(&c, &p("/big"), k * 100_000, b"x").unwrap();
        }
        // a new file of 3 sectors and a bit
        ops::write_file(&mut d, &c, &p("/new"), &big[..3 * 4096 + 10], 0o644).unwrap();
        let u = d.usage(&c).unwrap();
        let before = u.details.get("exclusive").copied().unwrap_or(u.bytes);
        d.commit(&c).unwrap();
        d.create_layer(&g, Some(&c)).unwrap();
        // the same sector twice, and one sector of the small file
        d.write(&g, &p("/big"), 5, b"yy").unwrap();
        d.write(&g, &p("/big"), 7, b"z").unwrap();
        d.write(&g, &p("/small"), 40_000, b"q").unwrap();
        let mut ex = vec![("child before its snapshot".to_string(), before)];
        for id in [&b, &c, &g] {
            let u = d.usage(id).unwrap();
            ex.push((
                id.to_string(),
                u.details.get("exclusive").copied().unwrap_or(u.bytes),
            ));
        }
        results.push((name, ex));
        drop(d);
        assert_no_mounts_under(dir.path());
    }
    let ((_, m), (_, k)) = (&results[0], &results[1]);
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "btrfs exclusive bytes: {model}: {m:?}; {kernel}: {k:?}"
    );
    // the base too: its 1 MiB extent, partly overwritten in the child, is still named by
    // the child, so btrfs counts none of it exclusive, and neither does the model
    for ((layer, a), (_, b)) in m.iter().zip(k) {
        assert_eq!(
            a / 4096,
            b / 4096,
            "{layer}: exclusive bytes differ: {model} {a}, {kernel} {b}"
        );
    }
}

/// Bytes of the pool in use: the model's pool file (allocated blocks), or the real
/// filesystem's data (`btrfs filesystem df`).
fn pool_used(name: &str, root: &Path) -> u64 {
    if name == "kernel-btrfs" {
        layerlab_drivers::kernel::kernel_btrfs::data_used(root).unwrap()
    } else {
        std::fs::metadata(root.join("btrfs").join("pool"))
            .unwrap()
            .blocks()
            * 512
    }
}

/// One btrfs driver running a scenario: after each step it notes the pool's use and the
/// exclusive bytes of the layers named.
struct Steps {
    d: AnyDriver,
    name: &'static str,
    root: PathBuf,
    rows: Vec<(String, u64, Vec<u64>)>,
}

impl Steps {
    fn record(&mut self, step: &str, layers: &[&LayerId]) {
        let ex = layers
            .iter()
            .map(|id| self.d.usage(id).unwrap().details["exclusive"])
            .collect();
        let used = pool_used(self.name, &self.root);
        self.rows.push((step.to_string(), used, ex));
    }
}

/// Runs `scenario` on the btrfs model and on kernel-btrfs, prints both drivers' rows
/// (`label`) and asserts that they agree to the sector, step by step (the kernel's
/// filesystem starts with no data).
fn btrfs_steps_agree(label: &str, scenario: impl Fn(&mut Steps)) {
    let Some((model, kernel)) = btrfs_pair() else {
        return;
    };
    let mut results = Vec::new();
    for name in [model, kernel] {
        let (dir, d) = fresh_fast(name);
        let mut s = Steps {
            d,
            name,
            root: store_root(&dir),
            rows: Vec::new(),
        };
        scenario(&mut s);
        results.push(s.rows);
        drop(s.d);
        assert_no_mounts_under(dir.path());
    }
    use std::io::Write;
    let (m, k) = (&results[0], &results[1]);
    for ((step, m_used, m_ex), (_, k_used, k_ex)) in m.iter().zip(k) {
        let _ = writeln!(
            std::io::stderr(),
            "btrfs {label}, {step}: pool used {model} {m_used} / {kernel} {k_used}; \
             exclusive {m_ex:?} / {k_ex:?}"
        );
    }
    assert_eq!(m.len(), k.len());
    for (a, b) in m.iter().zip(k) {
        assert_eq!(a.1 / 4096, b.1 / 4096, "{}: pool used differs", a.0);
        assert_eq!(a.2.len(), b.2.len());
        for (x, y) in a.2.iter().zip(&b.2) {
            assert_eq!(x / 4096, y / 4096, "{}: exclusive bytes differ", a.0);
        }
    }
}

/// Bookend extents, model against real btrfs: a disk extent partly overwritten (in its own
/// file or in a snapshot) or truncated stays allocated whole while any part of it is
/// named; the pool's use and every layer's exclusive bytes agree to the sector after each
/// step.
#[test]
fn btrfs_bookend_extents_agree() {
    btrfs_steps_agree("bookends", |s| {
        let (b, c) = (l("base"), l("child"));
        let mib: Vec<u8> = (0..(1u32 << 20))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        s.d.create_layer(&b, None).unwrap();
        for f in ["/f", "/g", "/t"] {
            ops::write_file(&mut s.d, &b, &p(f), &mib, 0o644).unwrap();
        }
        s.record("written", &[&b]);
        s.d.write(&b, &p("/f"), 512 * 1024, &[b'#'; 4096]).unwrap();
        s.record("4 KiB of /f overwritten", &[&b]);
        s.d.truncate(&b, &p("/t"), 4096).unwrap();
        s.record("/t truncated to 4 KiB", &[&b]);
        ops::write_file(&mut s.d, &b, &p("/u"), &mib, 0o644).unwrap();
        s.d.truncate(&b, &p("/u"), 0).unwrap();
        s.record("/u written and truncated to 0", &[&b]);
        s.d.commit(&b).unwrap();
        s.d.create_layer(&c, Some(&b)).unwrap();
        s.d.write(&c, &p("/g"), 0, &[b'x'; 4096]).unwrap();
        s.d.write(&c, &p("/f"), 512 * 1024 + 4096, b"y").unwrap();
        s.record("child overwrote /g and /f", &[&b, &c]);
        s.d.remove_layer(&c).unwrap();
        s.record("child removed", &[&b]);
    });
}

/// Small files, model against real btrfs: a file of at most 2048 bytes lives inline in
/// metadata (no data, no `du` bytes), one of 2049 takes a 4 KiB extent, an inline file
/// that grows past the limit moves to an extent; the pool's use and the exclusive bytes
/// agree to the sector after each step, in a base and in a snapshot.
#[test]
fn btrfs_inline_files_agree() {
    let bytes = |n: usize, seed: u32| -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect()
    };
    btrfs_steps_agree("inline", |s| {
        let (b, c) = (l("base"), l("child"));
        s.d.create_layer(&b, None).unwrap();
        ops::write_file(&mut s.d, &b, &p("/one"), &bytes(1, 1), 0o644).unwrap();
        ops::write_file(&mut s.d, &b, &p("/full"), &bytes(2048, 2), 0o644).unwrap();
        s.record("files of 1 and 2048 bytes", &[&b]);
        ops::write_file(&mut s.d, &b, &p("/over"), &bytes(2049, 3), 0o644).unwrap();
        s.record("a file of 2049 bytes", &[&b]);
        ops::write_file(&mut s.d, &b, &p("/two"), &bytes(1000, 4), 0o644).unwrap();
        s.d.append(&b, &p("/two"), &bytes(1000, 5)).unwrap();
        s.record("1000 bytes and 1000 appended", &[&b]);
        ops::write_file(&mut s.d, &b, &p("/grow"), &bytes(100, 6), 0o644).unwrap();
        s.d.append(&b, &p("/grow"), &bytes(5000, 7)).unwrap();
        s.record("100 bytes and 5000 appended", &[&b]);
        ops::write_file(&mut s.d, &b, &p("/trunc"), &bytes(100, 8), 0o644).unwrap();
        s.d.truncate(&b, &p("/trunc"), 10_000).unwrap();
        s.record("100 bytes truncated up to 10000", &[&b]);
        s.d.create(&b, &p("/sparse"), 0o644).unwrap();
        s.d.write(&b, &p("/sparse"), 4096, &bytes(100, 9)).unwrap();
        s.record("100 bytes at offset 4096", &[&b]);
        s.d.commit(&b).unwrap();
        s.d.create_layer(&c, Some(&b)).unwrap();
        s.d.write(&c, &p("/one"), 0, b"!").unwrap();
        s.d.write(&c, &p("/full"), 100, b"!").unwrap();
        s.record("child changed two inline files", &[&b, &c]);
        for f in ["/one", "/full", "/two", "/grow", "/trunc"] {
            let size = s.d.stat(&c, &p(f)).unwrap().size;
            assert_eq!(
                ops::read_all(&mut s.d, &c, &p(f)).unwrap().len() as u64,
                size
            );
        }
    });
}

/// Renaming one lower name of a hard-linked file onto another: overlayfs with `index=off`
/// sees two inodes, copies the source up over the destination and whites the source out;
/// the other name keeps the lower file. The overlay2 driver does the same (views with
/// nlink, and the upper directory, compared).
#[test]
fn renaming_a_lower_hardlink_onto_its_other_name_matches_the_kernel() {
    if common::available("kernel-overlay").is_none() {
        return;
    }
    let mut views = Vec::new();
    for name in ["overlay2", "kernel-overlay"] {
        let (dir, mut d) = fresh_fast(name);
        let (b, c) = (l("base"), l("child"));
        d.create_layer(&b, None).unwrap();
        ops::write_file(&mut d, &b, &p("/a"), b"shared", 0o644).unwrap();
        d.hardlink(&b, &p("/a"), &p("/b")).unwrap();
        d.hardlink(&b, &p("/a"), &p("/c")).unwrap();
        d.commit(&b).unwrap();
        d.create_layer(&c, Some(&b)).unwrap();
        d.rename(&c, &p("/a"), &p("/b")).unwrap();
        let cap = Capture {
            provider: false,
            nlink: true,
        };
        let view = view_with(&mut d, &c, cap).unwrap();
        let upper = diff_tree(&diff_dir(&store_root(&dir), &c));
        drop(d);
        assert_no_mounts_under(dir.path());
        views.push((view, upper));
    }
    let ((mv, mu), (kv, ku)) = (&views[0], &views[1]);
    assert!(
        view_diff(mv, kv, "overlay2", "kernel").is_none(),
        "{}",
        view_diff(mv, kv, "overlay2", "kernel").unwrap_or_default()
    );
    assert!(
        view_diff(mu, ku, "overlay2", "kernel").is_none(),
        "{}",
        view_diff(mu, ku, "overlay2", "kernel").unwrap_or_default()
    );
    assert!(mu.contains_key("/a") && mu.contains_key("/b"), "{mu:?}");
}
