//! Reopen equivalence: [`Reopening`] is a driver that closes its store and opens it again
//! (for writing, as every CLI command does) before every change, and before the first
//! query after a change, so a state that lives only in memory is lost, as it would be
//! between two commands. (Queries that follow queries share one opening: reopening before
//! each of the thousands of reads of a 125-layer scenario would take minutes and catch
//! nothing more, since a read changes nothing that could live in memory only.) The conformance scenarios and
//! the model sequences run through it must give the same views, usage and Meter counts as
//! on a driver kept open ([`Final`]).
//!
//! Its Meter is the sum of the counts of every opening's calls (opening itself is not
//! counted by any driver). The counts that depend on what a driver cached since it was
//! opened ([`CACHE_COUNTS`]: cold and warm probes, cache hits, extents read past the page
//! cache, layers entered, root-tree leaves and the pool reads beside them) are left out of the comparison: the caches are empty on every open by design
//! (`drivers/src/warm.rs`), so they measure the reopening itself.

use super::{ok, view_with, Capture, View};
use layerlab_core::{LayerDriver, LayerInfo, Meter, Usage};
use layerlab_drivers::{registry, Access, AnyDriver};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The counters that depend on the caches of one opening.
pub const CACHE_COUNTS: &[&str] = &[
    "probes",
    "warm_probes",
    "cache_hits",
    "extents_read",
    "layer_opens",
    "tree_leaf_reads",
    "pool_reads",
];

/// A driver reopened before every call.
pub struct Reopening {
    root: PathBuf,
    inner: RefCell<Option<AnyDriver>>,
    meter: Meter,
    opens: Cell<u64>,
    /// A change was made since the store was last opened.
    dirty: Cell<bool>,
}

impl Reopening {
    /// Wraps the open driver `d` of the store at `root`.
    pub fn new(root: PathBuf, d: AnyDriver) -> Reopening {
        Reopening {
            root,
            inner: RefCell::new(Some(d)),
            meter: Meter::new(),
            opens: Cell::new(0),
            dirty: Cell::new(true),
        }
    }

    /// How many times the store was reopened.
    pub fn opens(&self) -> u64 {
        self.opens.get()
    }

    /// Closes the store (releasing its lock) and opens it again.
    fn reopen(&self) {
        let mut slot = self.inner.borrow_mut();
        drop(slot.take());
        let d = registry::open(&self.root, Access::Write)
            .unwrap_or_else(|e| panic!("reopening {}: {e}", self.root.display()));
        *slot = Some(d);
        self.opens.set(self.opens.get() + 1);
    }

    /// A change on a freshly opened store; its counts (and steps) go to this Meter.
    fn with<T>(&mut self, f: impl FnOnce(&mut AnyDriver) -> T) -> T {
        self.reopen();
        self.dirty.set(true);
        self.call(f)
    }

    /// A query: on a freshly opened store when a change came since the last opening.
    fn query<T>(&mut self, f: impl FnOnce(&mut AnyDriver) -> T) -> T {
        if self.dirty.replace(false) {
            self.reopen();
        }
        self.call(f)
    }

    /// One call on the open store, its counts (and steps) moved to this Meter.
    fn call<T>(&mut self, f: impl FnOnce(&mut AnyDriver) -> T) -> T {
        let tracing = self.meter.tracing();
        let slot = self.inner.get_mut();
        let d = slot
            .as_mut()
            .unwrap_or_else(|| panic!("the store is open after reopen"));
        d.meter_mut().set_tracing(tracing);
        let r = f(d);
        self.meter.counts.add(&d.meter().counts);
        for s in d.meter_mut().take_steps() {
            self.meter.step(|| s);
        }
        d.meter_mut().reset();
        r
    }

    /// A query taking `&self` (such queries count nothing), as [`Reopening::query`].
    fn peek<T>(&self, f: impl FnOnce(&AnyDriver) -> T) -> T {
        if self.dirty.replace(false) {
            self.reopen();
        }
        let slot = self.inner.borrow();
        f(slot
            .as_ref()
            .unwrap_or_else(|| panic!("the store is open after reopen")))
    }
}

/// A `&self` query, a `&mut self` query and a change of the forwarded trait
/// ([`layerlab_core::forward_layer_driver`]), as [`Reopening`] runs them.
macro_rules! peek {
    ($s:ident, $d:ident => $call:expr) => {
        $s.peek(|$d| $call)
    };
}
macro_rules! query {
    ($s:ident, $d:ident => $call:expr) => {
        $s.query(|$d| $call)
    };
}
macro_rules! change {
    ($s:ident, $d:ident => $call:expr) => {
        $s.with(|$d| $call)
    };
}

layerlab_core::forward_layer_driver!(Reopening, peek, query, change, {
    fn meter(&self) -> &Meter {
        &self.meter
    }

    fn meter_mut(&mut self) -> &mut Meter {
        &mut self.meter
    }
});

/// What a run left: the Meter counts compared (cache counts left out), then every layer's
/// table entry, whole view (with providers and link counts) and usage.
#[derive(Debug, PartialEq)]
pub struct Final {
    counts: Vec<(&'static str, u64)>,
    layers: Vec<(LayerInfo, View, Usage)>,
}

impl Final {
    /// Captures `d`'s counts first (the capture's own reads are not counted), then its
    /// layers. For the kernel reference drivers (not metered: their usage is what the
    /// kernel left in the upper directories, and kernel-overlay's shows one whiteout more
    /// after a remount in two scenarios) only the table and the views are captured.
    pub fn capture<D: LayerDriver + ?Sized>(d: &mut D, who: &str) -> Final {
        let metered = layerlab_drivers::DRIVERS
            .iter()
            .find(|i| i.name == d.name())
            .is_none_or(|i| i.metered);
        let counts = d
            .meter()
            .counts
            .fields()
            .into_iter()
            .filter(|(n, _)| metered && !CACHE_COUNTS.contains(n))
            .collect();
        let cap = Capture {
            provider: true,
            nlink: true,
        };
        let mut layers = Vec::new();
        for info in ok(d.layers(), who, "layers()") {
            let v = ok(
                view_with(d, &info.id, cap),
                who,
                format!("view of {}", info.id),
            );
            let u = if metered {
                ok(d.usage(&info.id), who, format!("usage of {}", info.id))
            } else {
                Usage::default()
            };
            layers.push((info, v, u));
        }
        Final { counts, layers }
    }

    /// The first differences from `other`, or `None` when equal.
    pub fn diff(&self, other: &Final) -> Option<String> {
        if self == other {
            return None;
        }
        let mut out = Vec::new();
        if self.counts != other.counts {
            let a: BTreeMap<_, _> = self.counts.iter().copied().collect();
            for (n, v) in &other.counts {
                if a.get(n) != Some(v) {
                    out.push(format!(
                        "  count {n}: {:?} kept open, {v} reopened",
                        a.get(n)
                    ));
                }
            }
        }
        if self.layers.len() != other.layers.len() {
            out.push(format!(
                "  {} layers kept open, {} reopened",
                self.layers.len(),
                other.layers.len()
            ));
        }
        for ((ia, va, ua), (ib, vb, ub)) in self.layers.iter().zip(&other.layers) {
            if ia != ib {
                out.push(format!("  layer {ia:?} kept open, {ib:?} reopened"));
            }
            if ua != ub {
                out.push(format!(
                    "  usage of {}: {ua:?} kept open, {ub:?} reopened",
                    ia.id
                ));
            }
            if let Some(d) = super::view_diff(va, vb, "kept open", "reopened") {
                out.push(format!("  view of {}:\n{d}", ia.id));
            }
        }
        Some(out.join("\n"))
    }
}
