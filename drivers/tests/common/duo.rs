//! Two drivers taken through one sequence of random operations side by side, compared
//! after each: what `model_proptest` (a driver and the model) and `kernel_differential`
//! (the overlay2 model and the kernel) share.

use super::random_ops::{agree, apply, show, Op};
use super::{view_diff, view_with, Capture};
use layerlab_core::{LayerDriver, LayerId, Result};
use proptest::test_runner::TestCaseError;
use std::fmt;

/// Two drivers taken through one sequence side by side (a driver and the model, or the
/// overlay2 model and the kernel): their names, the stack of layers both build, and the
/// operations applied so far with their paths resolved.
pub struct Duo<A, B> {
    pub a: A,
    pub b: B,
    pub names: [&'static str; 2],
    pub stack: Vec<LayerId>,
    pub trace: Vec<String>,
}

impl<A: LayerDriver, B: LayerDriver> Duo<A, B> {
    /// Both drivers, with the base layer `l00` created on each.
    pub fn start(a: A, b: B, names: [&'static str; 2]) -> std::result::Result<Self, TestCaseError> {
        let mut duo = Duo {
            a,
            b,
            names,
            stack: Vec::new(),
            trace: Vec::new(),
        };
        let base = LayerId::new("l00").unwrap_or_else(|e| panic!("layer id: {e}"));
        let x = duo.a.create_layer(&base, None);
        let y = duo.b.create_layer(&base, None);
        duo.same("create base layer", x, y)?;
        duo.stack.push(base);
        Ok(duo)
    }

    /// A failure at `step`, with the stack depth and the trace.
    pub fn fail(&self, step: &str, detail: String) -> TestCaseError {
        TestCaseError::fail(format!(
            "[{} / {}] {step} (stack depth {}): {detail}\n  operations as applied (paths resolved):\n{}",
            self.names[0],
            self.names[1],
            self.stack.len(),
            self.trace.join("\n")
        ))
    }

    /// The top layer of the stack.
    pub fn top(&self) -> LayerId {
        self.stack
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("empty stack"))
    }

    /// Both results of one call agree: both succeeded, or both failed with one error kind.
    pub fn same<T: fmt::Debug>(
        &self,
        step: &str,
        x: Result<T>,
        y: Result<T>,
    ) -> std::result::Result<(), TestCaseError> {
        if agree(&x, &y, |_, _| true) {
            Ok(())
        } else {
            let [m, n] = self.names;
            Err(self.fail(step, format!("{m}: {x:?}\n  {n}: {y:?}")))
        }
    }

    /// Commits the top layer on both and pushes a new child of it.
    pub fn new_layer(&mut self, step: &str) -> std::result::Result<(), TestCaseError> {
        let top = self.top();
        let x = self.a.commit(&top);
        let y = self.b.commit(&top);
        self.same(step, x, y)?;
        let next = LayerId::new(&format!("l{:02}", self.stack.len()))
            .unwrap_or_else(|e| panic!("layer id: {e}"));
        let x = self.a.create_layer(&next, Some(&top));
        let y = self.b.create_layer(&next, Some(&top));
        self.same(step, x, y)?;
        self.stack.push(next);
        Ok(())
    }

    /// `op` on the top layer of both: the same outcome, or errors of the same kind.
    pub fn apply(&mut self, step: &str, op: &Op) -> std::result::Result<(), TestCaseError> {
        let top = self.top();
        let x = apply(&mut self.a, &top, op);
        let y = apply(&mut self.b, &top, op);
        if agree(&x, &y, |p, q| p == q) {
            Ok(())
        } else {
            let [m, n] = self.names;
            Err(self.fail(step, format!("{m}: {}\n  {n}: {}", show(&x), show(&y))))
        }
    }

    /// The merged views of `l` (with providers and link counts) are the same.
    pub fn check_view(
        &mut self,
        l: &LayerId,
        step: &str,
    ) -> std::result::Result<(), TestCaseError> {
        let cap = Capture {
            provider: true,
            nlink: true,
        };
        let [m, n] = self.names;
        let x = view_with(&mut self.a, l, cap)
            .map_err(|e| self.fail(step, format!("{m} view of {l}: {e}")))?;
        let y = view_with(&mut self.b, l, cap)
            .map_err(|e| self.fail(step, format!("{n} view of {l}: {e}")))?;
        match view_diff(&x, &y, m, n) {
            None => Ok(()),
            Some(d) => Err(self.fail(step, format!("view of {l} differs:\n{d}"))),
        }
    }

    /// The changesets of `l` are the same.
    pub fn check_changes(
        &mut self,
        l: &LayerId,
        step: &str,
    ) -> std::result::Result<(), TestCaseError> {
        let x = self.a.changes(l);
        let y = self.b.changes(l);
        match (&x, &y) {
            (Ok(p), Ok(q)) if p == q => Ok(()),
            _ => {
                let [m, n] = self.names;
                Err(self.fail(step, format!("changes of {l}: {m}: {x:?}\n  {n}: {y:?}")))
            }
        }
    }
}
