//! Property test: every registered driver behaves exactly as the reference model built from
//! its own `semantics()`, on random operation sequences over a small name space and stacks
//! up to 16 layers deep.
//!
//! Each operation is applied to the driver and to the model: both must succeed (with the
//! same bytes, metadata or listing for reads) or both fail with the same `ErrorKind`. After
//! every change the top layer's views must be identical (content, attributes, listings,
//! nlink, provenance); before every commit the top layer's changeset too; at the end every
//! layer's view and changeset, and the layer table. A failure names the driver and shows the
//! shrunk sequence as generated and as applied (paths resolved).
//!
//! `PROPTEST_CASES` overrides the number of cases (256 per driver by default). The stores
//! are made on `/dev/shm` where it exists (thousands of stores, each fsyncing), or in
//! `LAYERLAB_TEST_TMPDIR`.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fresh_fast, view_diff, view_with, Capture, View};
use layerlab_core::model::ReferenceModel;
use layerlab_core::{ops, DirEntry, LayerDriver, LayerId, LayerPath, Metadata, Result};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use std::fmt;

/// The deepest stack a sequence builds.
const MAX_STACK: usize = 16;
/// The longest sequence.
const MAX_OPS: usize = 40;

/// One operation. Generated with `Sel` paths, applied with the `LayerPath`s they resolve to.
#[derive(Clone)]
enum Op<P = LayerPath> {
    /// Commit the top layer and create a child of it.
    NewLayer,
    Write(P, u64, Vec<u8>),
    Append(P, Vec<u8>),
    Truncate(P, u64),
    /// `ops::write_file`: create or replace the whole content.
    WriteFile(P, Vec<u8>),
    Create(P, u32),
    Mkdir(P, u32),
    Unlink(P),
    Rmdir(P),
    /// `ops::remove_all` (rm -r).
    RemoveAll(P),
    Rename(P, P),
    Chmod(P, u32),
    Chown(P, u32, u32),
    Symlink(String, P),
    Hardlink(P, P),
    Read(P, u64, u64),
    Stat(P),
    Readdir(P),
}

/// How a generated operation picks a path: a fixed path, the k-th entry of the top
/// layer's view at that moment (mod the number of entries, root first), or a name in that
/// entry. Resolved against the model's view, so that many operations meet existing entries.
#[derive(Clone)]
enum Sel {
    Path(LayerPath),
    Existing(usize),
    Under(usize, &'static str),
}

impl fmt::Debug for Sel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Sel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sel::Path(p) => write!(f, "{p}"),
            Sel::Existing(k) => write!(f, "<entry #{k}>"),
            Sel::Under(k, n) => write!(f, "<entry #{k}>/{n}"),
        }
    }
}

impl Sel {
    fn resolve(&self, entries: &[LayerPath]) -> LayerPath {
        let pick = |k: usize| entries.get(k % entries.len().max(1)).cloned();
        match self {
            Sel::Path(p) => p.clone(),
            Sel::Existing(k) => pick(*k).unwrap_or_else(LayerPath::root),
            Sel::Under(k, n) => {
                let dir = pick(*k).unwrap_or_else(LayerPath::root);
                dir.join(n).unwrap_or_else(|e| panic!("join {n}: {e}"))
            }
        }
    }
}

impl<P: Clone> Op<P> {
    /// The same operation with every path mapped by `f`.
    fn map<Q>(&self, f: impl Fn(&P) -> Q) -> Op<Q> {
        match self {
            Op::NewLayer => Op::NewLayer,
            Op::Write(p, o, d) => Op::Write(f(p), *o, d.clone()),
            Op::Append(p, d) => Op::Append(f(p), d.clone()),
            Op::Truncate(p, n) => Op::Truncate(f(p), *n),
            Op::WriteFile(p, d) => Op::WriteFile(f(p), d.clone()),
            Op::Create(p, m) => Op::Create(f(p), *m),
            Op::Mkdir(p, m) => Op::Mkdir(f(p), *m),
            Op::Unlink(p) => Op::Unlink(f(p)),
            Op::Rmdir(p) => Op::Rmdir(f(p)),
            Op::RemoveAll(p) => Op::RemoveAll(f(p)),
            Op::Rename(a, b) => Op::Rename(f(a), f(b)),
            Op::Chmod(p, m) => Op::Chmod(f(p), *m),
            Op::Chown(p, u, g) => Op::Chown(f(p), *u, *g),
            Op::Symlink(t, p) => Op::Symlink(t.clone(), f(p)),
            Op::Hardlink(a, b) => Op::Hardlink(f(a), f(b)),
            Op::Read(p, o, n) => Op::Read(f(p), *o, *n),
            Op::Stat(p) => Op::Stat(f(p)),
            Op::Readdir(p) => Op::Readdir(f(p)),
        }
    }

    fn is_read(&self) -> bool {
        matches!(self, Op::Read(..) | Op::Stat(_) | Op::Readdir(_))
    }
}

struct Bytes<'a>(&'a [u8]);

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl<P: fmt::Display> fmt::Debug for Op<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::NewLayer => write!(f, "new-layer"),
            Op::Write(p, o, d) => write!(f, "write {p} @{o} {:?}", Bytes(d)),
            Op::Append(p, d) => write!(f, "append {p} {:?}", Bytes(d)),
            Op::Truncate(p, s) => write!(f, "truncate {p} {s}"),
            Op::WriteFile(p, d) => write!(f, "write-file {p} {:?}", Bytes(d)),
            Op::Create(p, m) => write!(f, "create {p} {m:o}"),
            Op::Mkdir(p, m) => write!(f, "mkdir {p} {m:o}"),
            Op::Unlink(p) => write!(f, "unlink {p}"),
            Op::Rmdir(p) => write!(f, "rmdir {p}"),
            Op::RemoveAll(p) => write!(f, "rm-r {p}"),
            Op::Rename(a, b) => write!(f, "rename {a} {b}"),
            Op::Chmod(p, m) => write!(f, "chmod {p} {m:o}"),
            Op::Chown(p, u, g) => write!(f, "chown {p} {u}:{g}"),
            Op::Symlink(t, p) => write!(f, "symlink {t:?} {p}"),
            Op::Hardlink(a, b) => write!(f, "hardlink {a} {b}"),
            Op::Read(p, o, l) => write!(f, "read {p} @{o} len {l}"),
            Op::Stat(p) => write!(f, "stat {p}"),
            Op::Readdir(p) => write!(f, "readdir {p}"),
        }
    }
}

// ----- generators -----------------------------------------------------------------------

fn path_of(names: &[&str]) -> LayerPath {
    let mut p = LayerPath::root();
    for n in names {
        p = p.join(n).unwrap_or_else(|e| panic!("join {n}: {e}"));
    }
    p
}

fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "c", "d"])
}

/// Names below the top level: fewer, so that nested paths meet existing directories.
fn inner() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "c"])
}

/// A path of depth 1 to 3 (names a..d at the top, a..c below), shallow paths more likely.
fn path() -> impl Strategy<Value = LayerPath> {
    prop_oneof![
        5 => name().prop_map(|a| path_of(&[a])),
        4 => (name(), inner()).prop_map(|(a, b)| path_of(&[a, b])),
        1 => (name(), inner(), inner()).prop_map(|(a, b, c)| path_of(&[a, b, c])),
    ]
}

/// A path for an operation on an entry: most often one that exists.
fn sel() -> impl Strategy<Value = Sel> {
    prop_oneof![
        2 => path().prop_map(Sel::Path),
        3 => (0usize..64).prop_map(Sel::Existing),
        1 => (0usize..64, inner()).prop_map(|(k, n)| Sel::Under(k, n)),
    ]
}

/// A path for an operation that makes an entry: most often a new name in an existing one.
fn new_sel() -> impl Strategy<Value = Sel> {
    prop_oneof![
        3 => path().prop_map(Sel::Path),
        1 => (0usize..64).prop_map(Sel::Existing),
        3 => (0usize..64, inner()).prop_map(|(k, n)| Sel::Under(k, n)),
    ]
}

fn mode() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => prop::sample::select(vec![
            0o644, 0o755, 0o600, 0o700, 0o4755, 0o2755, 0o1777, 0o6711, 0o3770, 0, 0o7777,
        ]),
        1 => 0u32..0o10000,
        // bits beyond 0o7777 are ignored
        1 => Just(0o100644u32),
    ]
}

fn owner() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![0u32, 1, 1000, 65534])
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        6 => prop::collection::vec(prop::sample::select(b"xyz0\n".to_vec()), 1..8),
        2 => prop::collection::vec(any::<u8>(), 0..=64),
    ]
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["a", "../b", "/a/b/c", "c/d", "."]).prop_map(String::from),
        1 => Just(String::new()),
    ]
}

/// The operations within one layer.
fn layer_op() -> impl Strategy<Value = Op<Sel>> {
    prop_oneof![
        4 => (sel(), 0u64..=100, data()).prop_map(|(p, o, d)| Op::Write(p, o, d)),
        2 => (sel(), data()).prop_map(|(p, d)| Op::Append(p, d)),
        2 => (sel(), 0u64..=100).prop_map(|(p, s)| Op::Truncate(p, s)),
        3 => (new_sel(), data()).prop_map(|(p, d)| Op::WriteFile(p, d)),
        4 => (new_sel(), mode()).prop_map(|(p, m)| Op::Create(p, m)),
        5 => (new_sel(), mode()).prop_map(|(p, m)| Op::Mkdir(p, m)),
        3 => sel().prop_map(Op::Unlink),
        2 => sel().prop_map(Op::Rmdir),
        2 => sel().prop_map(Op::RemoveAll),
        4 => (sel(), new_sel()).prop_map(|(a, b)| Op::Rename(a, b)),
        3 => (sel(), mode()).prop_map(|(p, m)| Op::Chmod(p, m)),
        2 => (sel(), owner(), owner()).prop_map(|(p, u, g)| Op::Chown(p, u, g)),
        2 => (target(), new_sel()).prop_map(|(t, p)| Op::Symlink(t, p)),
        1 => (sel(), 0u64..=100, 0u64..=80).prop_map(|(p, o, l)| Op::Read(p, o, l)),
        1 => sel().prop_map(Op::Stat),
        1 => sel().prop_map(Op::Readdir),
    ]
}

/// Layered sequences: every operation but hard links, and new layers. Single-layer
/// sequences: the same plus hard links (across layers a link is "as the driver keeps it",
/// which the model does not predict, so hard links are checked within one layer).
fn op(hardlinks: bool) -> BoxedStrategy<Op<Sel>> {
    if hardlinks {
        prop_oneof![
            8 => layer_op(),
            1 => (sel(), new_sel()).prop_map(|(a, b)| Op::Hardlink(a, b)),
        ]
        .boxed()
    } else {
        prop_oneof![
            1 => Just(Op::NewLayer),
            3 => layer_op(),
        ]
        .boxed()
    }
}

// ----- applying an operation to a driver or the model ----------------------------------------

/// What a successful operation returned.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Bytes(Vec<u8>),
    Meta(Metadata),
    List(Vec<DirEntry>),
}

fn apply<D: LayerDriver>(d: &mut D, l: &LayerId, op: &Op) -> Result<Outcome> {
    use Outcome::Done;
    match op {
        Op::NewLayer => Ok(Done),
        Op::Write(p, o, data) => d.write(l, p, *o, data).map(|()| Done),
        Op::Append(p, data) => d.append(l, p, data).map(|()| Done),
        Op::Truncate(p, s) => d.truncate(l, p, *s).map(|()| Done),
        Op::WriteFile(p, data) => ops::write_file(d, l, p, data, 0o640).map(|()| Done),
        Op::Create(p, m) => d.create(l, p, *m).map(|()| Done),
        Op::Mkdir(p, m) => d.mkdir(l, p, *m).map(|()| Done),
        Op::Unlink(p) => d.unlink(l, p).map(|()| Done),
        Op::Rmdir(p) => d.rmdir(l, p).map(|()| Done),
        Op::RemoveAll(p) => ops::remove_all(d, l, p).map(|()| Done),
        Op::Rename(a, b) => d.rename(l, a, b).map(|()| Done),
        Op::Chmod(p, m) => d.chmod(l, p, *m).map(|()| Done),
        Op::Chown(p, u, g) => d.chown(l, p, *u, *g).map(|()| Done),
        Op::Symlink(t, p) => d.symlink(l, t, p).map(|()| Done),
        Op::Hardlink(a, b) => d.hardlink(l, a, b).map(|()| Done),
        Op::Read(p, o, n) => d.read(l, p, *o, *n).map(Outcome::Bytes),
        Op::Stat(p) => d.stat(l, p).map(|mut md| {
            md.mtime = 0; // kept, never compared
            Outcome::Meta(md)
        }),
        Op::Readdir(p) => d.readdir(l, p).map(Outcome::List),
    }
}

fn show(r: &Result<Outcome>) -> String {
    match r {
        Ok(o) => format!("Ok({o:?})"),
        Err(e) => format!("Err({:?}: {e})", e.kind()),
    }
}

// ----- one case -------------------------------------------------------------------------------

struct Pair<D: LayerDriver> {
    name: &'static str,
    driver: D,
    model: ReferenceModel,
    stack: Vec<LayerId>,
    /// The operations applied so far, with their paths resolved.
    trace: Vec<String>,
}

impl<D: LayerDriver> Pair<D> {
    fn fail(&self, step: &str, detail: String) -> TestCaseError {
        TestCaseError::fail(format!(
            "[{}] {step} (stack depth {}): {detail}\n  operations as applied (paths resolved):\n{}",
            self.name,
            self.stack.len(),
            self.trace.join("\n")
        ))
    }

    fn top(&self) -> LayerId {
        self.stack
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("empty stack"))
    }

    fn views(
        &mut self,
        l: &LayerId,
        step: &str,
    ) -> std::result::Result<(View, View), TestCaseError> {
        let cap = Capture {
            provider: true,
            nlink: true,
        };
        let a = view_with(&mut self.driver, l, cap)
            .map_err(|e| self.fail(step, format!("driver view of {l}: {e}")))?;
        let b = view_with(&mut self.model, l, cap)
            .map_err(|e| self.fail(step, format!("model view of {l}: {e}")))?;
        Ok((a, b))
    }

    fn check_top(&mut self, step: &str) -> std::result::Result<(), TestCaseError> {
        let top = self.top();
        let (a, b) = self.views(&top, step)?;
        if let Some(diff) = view_diff(&a, &b, self.name, "model") {
            return Err(self.fail(step, format!("view of {top} differs:\n{diff}")));
        }
        Ok(())
    }

    /// Views and changesets of `layers`; and the layer table.
    fn check_layers(
        &mut self,
        layers: Vec<LayerId>,
        step: &str,
    ) -> std::result::Result<(), TestCaseError> {
        for l in layers {
            let (a, b) = self.views(&l, step)?;
            if let Some(diff) = view_diff(&a, &b, self.name, "model") {
                return Err(self.fail(step, format!("view of {l} differs:\n{diff}")));
            }
            let ca = self.driver.changes(&l);
            let cb = self.model.changes(&l);
            match (&ca, &cb) {
                (Ok(x), Ok(y)) if x == y => {}
                _ => {
                    return Err(self.fail(
                        step,
                        format!("changes of {l}: {}: {ca:?}\n  model: {cb:?}", self.name),
                    ))
                }
            }
        }
        let la = self.driver.layers();
        let lb = self.model.layers();
        match (&la, &lb) {
            (Ok(x), Ok(y)) if x == y => Ok(()),
            _ => Err(self.fail(step, format!("layers(): {la:?}\n  model: {lb:?}"))),
        }
    }

    fn same<T: fmt::Debug>(
        &self,
        step: &str,
        a: Result<T>,
        b: Result<T>,
    ) -> std::result::Result<(), TestCaseError> {
        match (&a, &b) {
            (Ok(_), Ok(_)) => Ok(()),
            (Err(x), Err(y)) if x.kind() == y.kind() => Ok(()),
            _ => Err(self.fail(step, format!("{}: {a:?}\n  model: {b:?}", self.name))),
        }
    }

    fn new_layer(&mut self, step: &str) -> std::result::Result<(), TestCaseError> {
        let top = self.top();
        let a = self.driver.commit(&top);
        let b = self.model.commit(&top);
        self.same(step, a, b)?;
        let next = LayerId::new(&format!("l{:02}", self.stack.len()))
            .unwrap_or_else(|e| panic!("layer id: {e}"));
        let a = self.driver.create_layer(&next, Some(&top));
        let b = self.model.create_layer(&next, Some(&top));
        self.same(step, a, b)?;
        self.stack.push(next);
        Ok(())
    }
}

/// The entries of the model's view of `l`, root first (what `Sel` indexes).
fn entries(m: &mut ReferenceModel, l: &LayerId) -> Vec<LayerPath> {
    ops::walk(m, l, &LayerPath::root())
        .map(|w| w.into_iter().map(|(p, _)| p).collect())
        .unwrap_or_default()
}

fn run_case(name: &'static str, ops: &[Op<Sel>]) -> std::result::Result<(), TestCaseError> {
    let (_dir, driver) = fresh_fast(name);
    let model = ReferenceModel::new(driver.semantics());
    let mut pair = Pair {
        name,
        driver,
        model,
        stack: Vec::new(),
        trace: Vec::new(),
    };
    let base = LayerId::new("l00").unwrap_or_else(|e| panic!("layer id: {e}"));
    let a = pair.driver.create_layer(&base, None);
    let b = pair.model.create_layer(&base, None);
    pair.same("create base layer", a, b)?;
    pair.stack.push(base);
    for (i, generated) in ops.iter().enumerate() {
        let top = pair.top();
        let listing = entries(&mut pair.model, &top);
        let op = generated.map(|s| s.resolve(&listing));
        let step = format!("op #{i} `{op:?}`");
        if let Op::NewLayer = op {
            if pair.stack.len() >= MAX_STACK {
                continue;
            }
            pair.check_layers(vec![top.clone()], &format!("{step}, before committing"))?;
            pair.trace
                .push(format!("    #{i} {op:?} (commit {top}, new layer on it)"));
            pair.new_layer(&step)?;
            continue;
        }
        pair.trace.push(format!("    #{i} {op:?}"));
        let a = apply(&mut pair.driver, &top, &op);
        let b = apply(&mut pair.model, &top, &op);
        let agree = match (&a, &b) {
            (Ok(x), Ok(y)) => x == y,
            (Err(x), Err(y)) => x.kind() == y.kind(),
            _ => false,
        };
        if !agree {
            return Err(pair.fail(
                &step,
                format!("{name}: {}\n  model: {}", show(&a), show(&b)),
            ));
        }
        if !op.is_read() {
            pair.check_top(&format!("{step}, after it"))?;
        }
    }
    let all = pair.stack.clone();
    pair.check_layers(all, "end of sequence")
}

// ----- runners --------------------------------------------------------------------------------

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

/// Runs the property on every registered driver; fails naming every driver that failed,
/// each with its shrunk sequence.
fn run_all(hardlinks: bool) {
    let mut failures = Vec::new();
    for name in common::driver_names() {
        let config = Config {
            cases: cases(),
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let strategy = prop::collection::vec(op(hardlinks), 1..=MAX_OPS);
        let r = runner.run(&strategy, |ops| run_case(name, &ops));
        match r {
            Ok(()) => {}
            Err(TestError::Fail(reason, ops)) => failures.push(format!(
                "=== driver {name}: {reason}\n  minimal generated sequence ({} ops):\n{}",
                ops.len(),
                ops.iter()
                    .map(|o| format!("    {o:?}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
            Err(e) => failures.push(format!("=== driver {name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Random sequences of every operation but hard links, with stacks up to 16 layers.
#[test]
fn drivers_match_the_model() {
    run_all(false);
}

/// Hard links with every other operation, within one layer.
#[test]
fn drivers_match_the_model_with_hardlinks() {
    run_all(true);
}
