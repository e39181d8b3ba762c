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
//! In the reopened run, each sequence runs twice, on a store kept open and on one closed and
//! reopened before every call (`common::reopen`): both must match the model, and end with the
//! same views, usage and Meter counts.
//!
//! `PROPTEST_CASES` overrides the number of cases (256 per driver by default). The stores
//! are made on `/dev/shm` where it exists (thousands of stores, each fsyncing), or in
//! `LAYERLAB_TEST_TMPDIR`.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::duo::Duo;
use common::random_ops::*;
use common::reopen::{Final, Reopening};
use common::{fresh_fast, store_root};
use layerlab_core::model::ReferenceModel;
use layerlab_core::{ops, LayerDriver, LayerId, LayerPath};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// The longest sequence.
const MAX_OPS: usize = 40;

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

// ----- one case -------------------------------------------------------------------------------

/// A driver and the model, through one sequence.
type Pair<D> = Duo<D, ReferenceModel>;

/// Views and changesets of `layers`; and the layer table.
fn check_layers<D: LayerDriver>(
    pair: &mut Pair<D>,
    layers: Vec<LayerId>,
    step: &str,
) -> std::result::Result<(), TestCaseError> {
    for l in layers {
        pair.check_view(&l, step)?;
        pair.check_changes(&l, step)?;
    }
    let la = pair.a.layers();
    let lb = pair.b.layers();
    match (&la, &lb) {
        (Ok(x), Ok(y)) if x == y => Ok(()),
        _ => Err(pair.fail(step, format!("layers(): {la:?}\n  model: {lb:?}"))),
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
    run_sequence(name, driver, ops).map(|_| ())
}

/// The sequence on a store kept open and on one reopened before every call: both match the
/// model, and they end the same.
fn run_case_reopened(
    name: &'static str,
    ops: &[Op<Sel>],
) -> std::result::Result<(), TestCaseError> {
    let (_dir, driver) = fresh_fast(name);
    let mut kept = run_sequence(name, driver, ops)?;
    let (dir2, d2) = fresh_fast(name);
    let mut reopened = run_sequence(name, Reopening::new(store_root(&dir2), d2), ops)?;
    let a = Final::capture(&mut kept, name);
    let b = Final::capture(&mut reopened, name);
    match a.diff(&b) {
        None => Ok(()),
        Some(diff) => Err(TestCaseError::fail(format!(
            "[{name}] reopening the store between calls changed the outcome:\n{diff}"
        ))),
    }
}

/// Runs the sequence on `driver` and the model; the driver as it ends.
fn run_sequence<D: LayerDriver>(
    name: &'static str,
    driver: D,
    ops: &[Op<Sel>],
) -> std::result::Result<D, TestCaseError> {
    let model = ReferenceModel::new(driver.semantics());
    let mut pair = Pair::start(driver, model, [name, "model"])?;
    for (i, generated) in ops.iter().enumerate() {
        let top = pair.top();
        let listing = entries(&mut pair.b, &top);
        let op = generated.map(|s| s.resolve(&listing));
        let step = format!("op #{i} `{op:?}`");
        if let Op::NewLayer = op {
            if pair.stack.len() >= MAX_STACK {
                continue;
            }
            check_layers(
                &mut pair,
                vec![top.clone()],
                &format!("{step}, before committing"),
            )?;
            pair.trace
                .push(format!("    #{i} {op:?} (commit {top}, new layer on it)"));
            pair.new_layer(&step)?;
            continue;
        }
        pair.trace.push(format!("    #{i} {op:?}"));
        pair.apply(&step, &op)?;
        if !op.is_read() {
            pair.check_view(&top, &format!("{step}, after it"))?;
        }
    }
    let all = pair.stack.clone();
    check_layers(&mut pair, all, "end of sequence")?;
    Ok(pair.a)
}

// ----- runners --------------------------------------------------------------------------------

/// Runs the property on every registered driver; fails naming every driver that failed,
/// each with its shrunk sequence.
fn run_all(hardlinks: bool) {
    run_all_with(hardlinks, cases(), run_case);
}

/// `run_all` with `cases` per driver, each case run by `case`.
fn run_all_with(
    hardlinks: bool,
    cases: u32,
    case: fn(&'static str, &[Op<Sel>]) -> std::result::Result<(), TestCaseError>,
) {
    let mut failures = Vec::new();
    for name in common::driver_names() {
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let strategy = prop::collection::vec(op(hardlinks), 1..=MAX_OPS);
        let r = runner.run(&strategy, |ops| case(name, &ops));
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

/// The sequences on stores reopened before every change (a sixteenth of the cases, each run
/// twice: kept open and reopened), on layered stacks.
#[test]
fn reopening_between_calls_changes_nothing() {
    run_all_with(false, (cases() / 16).max(1), run_case_reopened);
}
