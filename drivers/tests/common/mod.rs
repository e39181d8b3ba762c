//! Helpers shared by the conformance suite and the model property test: fresh stores for
//! every registered driver, the reference models to compare them with, whole-view capture,
//! and a harness that runs one scenario on every target and names every target that failed.

#![allow(dead_code, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod duo;
pub mod random_ops;
pub mod reopen;

use layerlab_core::model::ReferenceModel;
use layerlab_core::{
    ops, Change, DirEntry, Error, FileKind, LayerDriver, LayerId, LayerPath, Result, Semantics,
};
use layerlab_drivers::{registry, AnyDriver, Options, DRIVERS};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tempfile::TempDir;

/// A layer id from a literal.
pub fn id(s: &str) -> LayerId {
    LayerId::new(s).unwrap_or_else(|e| panic!("bad test layer id {s:?}: {e}"))
}

/// A layer path from a literal.
pub fn p(s: &str) -> LayerPath {
    LayerPath::parse(s).unwrap_or_else(|e| panic!("bad test path {s:?}: {e}"))
}

/// Unwraps a result, naming the target and the operation on failure.
pub fn ok<T>(r: Result<T>, who: &str, what: impl Display) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("[{who}] {what}: unexpected error {:?}: {e}", e.kind()),
    }
}

/// Asserts an error of `kind`, naming the target and the operation.
pub fn err_kind<T: std::fmt::Debug>(
    r: Result<T>,
    kind: layerlab_core::ErrorKind,
    who: &str,
    what: impl Display,
) {
    match r {
        Ok(v) => panic!("[{who}] {what}: expected {kind:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(
            e.kind(),
            kind,
            "[{who}] {what}: expected {kind:?}, got {:?}: {e}",
            e.kind()
        ),
    }
}

/// One operation on a layer, for the tables of steps and refusals.
pub type LayerOp<D> = fn(&mut D, &LayerId) -> layerlab_core::Result<()>;

/// Each step of `steps` on `layer` succeeds, in order.
pub fn done<D: LayerDriver>(d: &mut D, who: &str, layer: &LayerId, steps: &[(&str, LayerOp<D>)]) {
    for (what, op) in steps {
        ok(op(d, layer), who, what);
    }
}

/// Each operation of `cases` on `layer` fails with its error kind.
pub fn refused<D: LayerDriver>(
    d: &mut D,
    who: &str,
    layer: &LayerId,
    cases: &[(layerlab_core::ErrorKind, &str, LayerOp<D>)],
) {
    for (kind, what, op) in cases {
        err_kind(op(d, layer), *kind, who, what);
    }
}

/// A fresh store of the registered driver `name` in its own temporary directory. Keep the
/// `TempDir` alive as long as the driver.
pub fn fresh(name: &str) -> (TempDir, AnyDriver) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("[{name}] tempdir: {e}"));
    init_in(name, dir)
}

/// `fresh`, on a memory filesystem where there is one (`/dev/shm`), for tests that make
/// thousands of stores: the drivers' fsyncs cost nothing there. `LAYERLAB_TEST_TMPDIR`
/// chooses another directory.
pub fn fresh_fast(name: &str) -> (TempDir, AnyDriver) {
    let base = std::env::var_os("LAYERLAB_TEST_TMPDIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let shm = std::path::PathBuf::from("/dev/shm");
            tempfile::tempdir_in(&shm).is_ok().then_some(shm)
        });
    let dir = match base {
        Some(b) => tempfile::tempdir_in(&b),
        None => tempfile::tempdir(),
    }
    .unwrap_or_else(|e| panic!("[{name}] tempdir: {e}"));
    init_in(name, dir)
}

fn init_in(name: &str, dir: TempDir) -> (TempDir, AnyDriver) {
    let root = dir.path().join("store");
    let d = registry::init(name, &root, Options::new())
        .unwrap_or_else(|e| panic!("[{name}] registry::init: {e}"));
    (dir, d)
}

/// The store directory inside a `fresh` temporary directory.
pub fn store_root(dir: &TempDir) -> std::path::PathBuf {
    dir.path().join("store")
}

/// Every registered driver this machine can run, in registry order (only those named in
/// `LAYERLAB_TEST_DRIVERS`, comma-separated, when it is set). Each unavailable driver is
/// named with a visible `SKIP <driver>: <reason>` line (written to stderr directly, so
/// that the test harness does not capture it).
pub fn driver_names() -> Vec<&'static str> {
    let only = std::env::var("LAYERLAB_TEST_DRIVERS").ok();
    DRIVERS
        .iter()
        .filter(|d| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n.trim() == d.name))
        })
        .filter(|d| match d.availability() {
            Ok(()) => true,
            Err(why) => {
                skip_line(d.name, &why);
                false
            }
        })
        .map(|d| d.name)
        .collect()
}

/// Prints `SKIP <driver>: <reason>` where `cargo test` shows it (uncaptured stderr).
pub fn skip_line(driver: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP {driver}: {why}");
}

/// The registered drivers this machine can run, by name; `None` (after a `SKIP` line) when
/// `name` is not registered or not available here.
pub fn available(name: &str) -> Option<&'static str> {
    match DRIVERS.iter().find(|d| d.name == name) {
        None => {
            skip_line(name, "not registered");
            None
        }
        Some(d) => match d.availability() {
            Ok(()) => Some(d.name),
            Err(why) => {
                skip_line(d.name, &why);
                None
            }
        },
    }
}

/// Where a kernel reference driver's behaviour differs from the shared semantics, by
/// design of the kernel, not by a bug of the model: `(driver, scenario, why)`. The suite
/// prints `KERNEL DIFFERENCE <driver> <scenario>: <why>` and checks the kernel's actual
/// behaviour instead (see [`kernel_difference`]).
pub const KERNEL_DIFFERENCES: &[(&str, &str, &str)] = &[];

/// The documented kernel difference of `driver` in `scenario`, printed when there is one.
pub fn kernel_difference(driver: &str, scenario: &str) -> Option<&'static str> {
    let why = KERNEL_DIFFERENCES
        .iter()
        .find(|(d, s, _)| *d == driver && *s == scenario)
        .map(|(_, _, w)| *w)?;
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "KERNEL DIFFERENCE {driver} {scenario}: {why}"
    );
    Some(why)
}

/// The semantics each registered driver declares.
pub fn driver_semantics() -> Vec<(&'static str, Semantics)> {
    driver_names()
        .into_iter()
        .map(|n| {
            let (_dir, d) = fresh(n);
            (n, d.semantics())
        })
        .collect()
}

/// What a view holds at one path (mtimes only where a test set them; nlink and provider
/// only when asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File, directory or symlink.
    pub kind: FileKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size (0 for directories).
    pub size: u64,
    /// Symlink target.
    pub target: Option<String>,
    /// File content.
    pub content: Option<Vec<u8>>,
    /// Directory listing, sorted by name.
    pub listing: Option<Vec<DirEntry>>,
    /// The providing layer, when captured with provenance.
    pub provider: Option<LayerId>,
    /// Hard link count, when captured with nlink.
    pub nlink: Option<u32>,
    /// The device number of a device node.
    pub rdev: u64,
    /// Extended attributes, by name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// The mtime, where it is one a test set (a marker time, see
    /// [`random_ops::is_marker_time`]); every other mtime is whatever the clock said.
    pub set_mtime: Option<(i64, u32)>,
}

/// A whole merged view of one layer.
pub type View = BTreeMap<LayerPath, Entry>;

/// What to capture beyond the always-compared attributes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capture {
    /// Capture `Metadata::layer`.
    pub provider: bool,
    /// Capture `Metadata::nlink`.
    pub nlink: bool,
}

/// The merged view of `layer`: every path with kind, mode, owner, size, target, file
/// content and directory listing (mtime, nlink and provider ignored).
pub fn view<D: LayerDriver + ?Sized>(d: &mut D, layer: &LayerId) -> Result<View> {
    view_with(d, layer, Capture::default())
}

/// `view`, capturing the extras `cap` asks for.
pub fn view_with<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    cap: Capture,
) -> Result<View> {
    let mut out = View::new();
    for (path, kind) in ops::walk(d, layer, &LayerPath::root())? {
        let md = d.stat(layer, &path)?;
        if md.kind != kind {
            return Err(Error::Corrupt {
                path: path.as_str().into(),
                detail: format!("readdir says {kind:?}, stat says {:?}", md.kind),
            });
        }
        let content = match kind {
            FileKind::File => Some(ops::read_all(d, layer, &path)?),
            _ => None,
        };
        let listing = match kind {
            FileKind::Dir => Some(d.readdir(layer, &path)?),
            _ => None,
        };
        let xattrs = ops::xattrs(d, layer, &path)?.into_iter().collect();
        out.insert(
            path,
            Entry {
                kind: md.kind,
                mode: md.mode,
                uid: md.uid,
                gid: md.gid,
                size: md.size,
                target: md.target,
                content,
                listing,
                provider: cap.provider.then_some(md.layer),
                nlink: cap.nlink.then_some(md.nlink),
                rdev: md.rdev,
                xattrs,
                set_mtime: random_ops::is_marker_time(md.mtime)
                    .then_some((md.mtime, md.mtime_nsec)),
            },
        );
    }
    Ok(out)
}

/// `view`, panicking with the target's name on error.
pub fn must_view<D: LayerDriver + ?Sized>(d: &mut D, who: &str, layer: &LayerId) -> View {
    ok(view(d, layer), who, format!("view of {layer}"))
}

/// Describes the differences between two views (or any two trees keyed by path), or `None`
/// when they are equal.
pub fn view_diff<K: Ord + Display, V: PartialEq + std::fmt::Debug>(
    a: &BTreeMap<K, V>,
    b: &BTreeMap<K, V>,
    a_name: &str,
    b_name: &str,
) -> Option<String> {
    if a == b {
        return None;
    }
    let mut lines = Vec::new();
    for (path, ea) in a {
        match b.get(path) {
            None => lines.push(format!("  {path}: only in {a_name}: {ea:?}")),
            Some(eb) if eb != ea => lines.push(format!(
                "  {path}:\n    {a_name}: {ea:?}\n    {b_name}: {eb:?}"
            )),
            _ => {}
        }
    }
    for (path, eb) in b {
        if !a.contains_key(path) {
            lines.push(format!("  {path}: only in {b_name}: {eb:?}"));
        }
    }
    Some(lines.join("\n"))
}

/// Asserts two views are equal, printing the differing paths.
pub fn assert_views_eq(a: &View, b: &View, a_name: &str, b_name: &str, what: impl Display) {
    if let Some(diff) = view_diff(a, b, a_name, b_name) {
        panic!("{what}: views differ:\n{diff}");
    }
}

/// `changes()`, panicking with the target's name on error.
pub fn must_changes<D: LayerDriver + ?Sized>(d: &mut D, who: &str, layer: &LayerId) -> Vec<Change> {
    ok(d.changes(layer), who, format!("changes of {layer}"))
}

/// Where a scenario runs.
pub enum Target {
    /// The reference model with these semantics, labelled.
    Model(String, Semantics),
    /// A registered driver, by name.
    Driver(&'static str),
}

impl Target {
    /// The label in messages.
    pub fn label(&self) -> String {
        match self {
            Target::Model(l, _) => l.clone(),
            Target::Driver(n) => (*n).to_string(),
        }
    }
}

/// Every target of the suite: the plain model, a model with each driver's semantics, and
/// every registered driver.
pub fn targets() -> Vec<Target> {
    let mut out = vec![Target::Model("model(PLAIN)".into(), Semantics::PLAIN)];
    for (name, sem) in driver_semantics() {
        out.push(Target::Model(format!("model({name} semantics)"), sem));
    }
    for name in driver_names() {
        out.push(Target::Driver(name));
    }
    out
}

/// Runs a scenario on every target: `on_model` on each model, `on_driver` on a fresh store
/// of every registered driver, and `on_reopened` on another fresh store of every driver
/// through [`reopen::Reopening`] (closed and reopened before every call), whose views,
/// usage and Meter counts must then equal the kept-open run's. Every target runs even
/// after another failed; the test then fails naming every target that failed and why.
pub fn run_everywhere(
    scenario: &str,
    on_model: impl Fn(&mut ReferenceModel, &str),
    on_driver: impl Fn(&mut AnyDriver, &str),
    on_reopened: impl Fn(&mut reopen::Reopening, &str),
) {
    let mut failures = Vec::new();
    for t in targets() {
        let label = t.label();
        let r = catch_unwind(AssertUnwindSafe(|| match &t {
            Target::Model(l, sem) => {
                let mut m = ReferenceModel::new(*sem);
                on_model(&mut m, l);
            }
            Target::Driver(name) => {
                let (_dir, mut d) = fresh(name);
                on_driver(&mut d, name);
                let kept = reopen::Final::capture(&mut d, name);
                let (dir2, d2) = fresh(name);
                let mut r = reopen::Reopening::new(store_root(&dir2), d2);
                let who = format!("{name} reopened before every call");
                on_reopened(&mut r, &who);
                let reopened = reopen::Final::capture(&mut r, &who);
                if let Some(diff) = kept.diff(&reopened) {
                    panic!(
                        "[{name}] reopening the store between calls changed the outcome:\n{diff}"
                    );
                }
            }
        }));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            failures.push(format!("--- {scenario} failed on {label}:\n{msg}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{scenario}: {} target(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
