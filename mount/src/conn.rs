//! The driver behind a mount, opened per burst of operations.
//!
//! A driver holds the store's lock for as long as it is open (exclusive for an active layer).
//! The server must not keep it between operations, or `layerlab diff` and `usage` could not
//! run beside a mount. Opening the store for every request would cost a store open (for the
//! cow drivers, rebuilding refcounts from the trees) per FUSE request; so the driver is
//! opened on the first request of a burst and dropped, with its lock, once no request came
//! for [`IDLE`]. Another command retries a held lock for 500 ms
//! (`layerlab_drivers::store`), so it gets in between bursts; during a long busy stretch
//! it is refused with the store's `Locked` error. Reopening also picks up what other
//! commands changed in the store meanwhile (new layers, the pool).

use layerlab_core::{Counts, LayerDriver, Result};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long the driver (and the store's lock) is kept after the last request.
pub const IDLE: Duration = Duration::from_millis(20);

/// Opens the store for the mount.
pub type Opener<D> = Box<dyn Fn() -> Result<D> + Send + Sync>;

/// Receives each operation's label, driver steps and counts, and whether it failed (the
/// CLI prints them as its `--trace` does).
pub type Tracer = Box<dyn Fn(&str, &[String], &Counts, bool) + Send + Sync>;

/// What a whole mount did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    /// Driver operations served.
    pub ops: u64,
    /// Their Meter counts, summed.
    pub counts: Counts,
    /// How many times the store was opened (bursts).
    pub opens: u64,
}

struct Held<D> {
    driver: Option<D>,
    last: Instant,
    totals: Totals,
}

/// The driver of a mount, opened when needed.
pub struct Conn<D> {
    opener: Opener<D>,
    tracer: Option<Tracer>,
    held: Mutex<Held<D>>,
}

impl<D> std::fmt::Debug for Conn<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("tracing", &self.tracer.is_some())
            .finish_non_exhaustive()
    }
}

impl<D: LayerDriver> Conn<D> {
    /// A connection that opens the store with `opener` when a request comes.
    pub fn new(opener: Opener<D>, tracer: Option<Tracer>) -> Self {
        Conn {
            opener,
            tracer,
            held: Mutex::new(Held {
                driver: None,
                last: Instant::now(),
                totals: Totals::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held<D>> {
        // a panic while holding the lock leaves the counts usable
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one driver operation, opening the store first if it is closed; counts it and
    /// traces it.
    pub fn op<T>(
        &self,
        label: impl FnOnce() -> String,
        f: impl FnOnce(&mut D) -> Result<T>,
    ) -> Result<T> {
        let mut held = self.lock();
        let held = &mut *held;
        let driver = match &mut held.driver {
            Some(d) => d,
            slot => {
                let mut d = (self.opener)()?;
                d.meter_mut().set_tracing(self.tracer.is_some());
                held.totals.opens += 1;
                slot.insert(d)
            }
        };
        let before = driver.meter().counts;
        let result = f(driver);
        let counts = driver.meter().counts.since(&before);
        held.totals.ops += 1;
        held.totals.counts.add(&counts);
        held.last = Instant::now();
        if let Some(tracer) = &self.tracer {
            let steps = driver.meter_mut().take_steps();
            tracer(&label(), &steps, &counts, result.is_err());
        }
        result
    }

    /// Closes the store if no request came for `idle`.
    pub fn release_idle(&self, idle: Duration) {
        let mut held = self.lock();
        if held.driver.is_some() && held.last.elapsed() >= idle {
            held.driver = None;
        }
    }

    /// Closes the store now and returns what the mount did so far.
    pub fn close(&self) -> Totals {
        let mut held = self.lock();
        held.driver = None;
        held.totals
    }
}
