//! The workloads: a closed set of kinds read from TOML, each a module, each run on a fresh
//! store per driver and repetition. Set-up is done outside the measured part; only the
//! driver calls being measured are timed (see [`Clock`]).
//!
//! The `Workload` trait and the `WorkloadSpec` enum live in this crate, so `enum_dispatch`
//! links them (docs/DESIGN.md section 7).

pub mod copy_up;
pub mod metadata;
pub mod mixed;
pub mod read_depth;
pub mod replay;
pub mod sharing;
pub mod snapshot;

use super::driver_spec::DriverSpec;
use super::error::{DriverContext, HarnessError, Result};
use super::results::Source;
use enum_dispatch::enum_dispatch;
use layerlab_core::size::Size;
use layerlab_core::{Counts, Error, LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, Access, AnyDriver};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `image = { archive = "…" }`: a real image (`docker save` / `podman save` archive or an
/// OCI layout) imported into the store; the workload's own layers sit on its top layer.
/// A relative path is taken from the experiment file's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSource {
    /// The archive or layout directory.
    pub archive: PathBuf,
}

/// Imports `image` (if any) into the store (set-up, not measured); its top layer.
pub fn import_image(
    ctx: &RunCtx<'_>,
    d: &mut AnyDriver,
    image: Option<&ImageSource>,
    workload: &str,
) -> Result<Option<LayerId>> {
    let Some(image) = image else {
        return Ok(None);
    };
    let rec = layerlab_oci::import(d, &image.archive, &layerlab_oci::ImportOptions::default())
        .map_err(|e| HarnessError::Image {
            driver: ctx.driver.label.clone(),
            workload: workload.to_string(),
            source: Box::new(e),
        })?;
    let top = LayerId::new(&rec.top_layer).map_err(|e| HarnessError::Driver {
        driver: ctx.driver.label.clone(),
        workload: workload.to_string(),
        source: Box::new(Error::InvalidLayerId(e)),
    })?;
    Ok(Some(top))
}

/// The generator of every seeded workload: ChaCha with 8 rounds, a generator named after its
/// algorithm, whose stream rand promises to keep for a seed (rand's `StdRng` does not: its
/// algorithm may change in any release). Seeded with `seed_from_u64`, whose expansion
/// rand_core also treats as value-stable. Same seed, same operations, same `modelled.csv`.
pub type SeededRng = rand::rngs::ChaCha8Rng;

/// The workload kinds, as in `[[workload.KIND]]` and the `workload` column of the results:
/// the one place they are spelled.
pub mod kind {
    /// `copy-up`.
    pub const COPY_UP: &str = "copy-up";
    /// `read-depth`.
    pub const READ_DEPTH: &str = "read-depth";
    /// `metadata`.
    pub const METADATA: &str = "metadata";
    /// `snapshot`.
    pub const SNAPSHOT: &str = "snapshot";
    /// `sharing`.
    pub const SHARING: &str = "sharing";
    /// `mixed`.
    pub const MIXED: &str = "mixed";
    /// `replay`.
    pub const REPLAY: &str = "replay";
}

pub use copy_up::CopyUp;
pub use metadata::MetadataOps;
pub use mixed::Mixed;
pub use read_depth::ReadDepth;
pub use replay::Replay;
pub use sharing::Sharing;
pub use snapshot::Snapshot;

/// What every workload says of itself: its kind and the keys of how often it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The kind, as in `[[workload.KIND]]` and the `workload` column of the results.
    pub kind: &'static str,
    /// `repetitions`: the experiment's repetitions overridden, if given.
    pub repetitions: Option<u32>,
    /// `rounds`, if given (`None` also for a workload without the key).
    pub rounds: Option<u32>,
}

impl Header {
    /// A workload's header.
    pub fn new(kind: &'static str, repetitions: Option<u32>, rounds: Option<u32>) -> Header {
        Header {
            kind,
            repetitions,
            rounds,
        }
    }
}

/// One kind of workload, with its parameters.
#[enum_dispatch]
pub trait Workload {
    /// Its kind, repetitions and rounds keys.
    fn header(&self) -> Header;
    /// The kind, as in `[[workload.KIND]]` and the `workload` column of the results.
    fn kind(&self) -> &'static str {
        self.header().kind
    }
    /// The repetitions asked for this workload, if it overrides the experiment's.
    fn repetitions(&self) -> Option<u32> {
        self.header().repetitions
    }
    /// Measured rounds per store (`rounds`, default 1): each round measures again on the
    /// same set-up (a new container, or a reopened store with the caches dropped), and is
    /// one repetition in the results. Set-up is the expensive part of some workloads; rounds
    /// repeat the measurement without repeating it.
    fn rounds(&self) -> u32 {
        self.header().rounds.unwrap_or(1)
    }
    /// Checks the parameters: `Err((key, message))` names the key that is wrong.
    fn check(&self) -> std::result::Result<(), (String, String)> {
        check_rounds(self.header().rounds)?;
        self.check_keys()
    }
    /// Checks the workload's own keys (`rounds` is checked by [`Workload::check`]).
    fn check_keys(&self) -> std::result::Result<(), (String, String)>;
    /// Shrinks the workload for `--quick` (sizes at most 1 MiB, depths at most 16, small
    /// images).
    fn shrink(&mut self);
    /// Runs one repetition on one driver, in a fresh store, and returns what it measured.
    fn run(&self, ctx: &mut RunCtx<'_>) -> Result<Vec<Sample>>;
}

/// A workload of an experiment: one of the kinds.
#[enum_dispatch(Workload)]
#[derive(Debug, Clone)]
pub enum WorkloadSpec {
    /// `copy-up`.
    CopyUp,
    /// `read-depth`.
    ReadDepth,
    /// `metadata`.
    MetadataOps,
    /// `snapshot`.
    Snapshot,
    /// `sharing`.
    Sharing,
    /// `mixed`.
    Mixed,
    /// `replay`.
    Replay,
}

/// A value a workload adds beside the counts and the time.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    /// The metric (`store_bytes`, `page_cache_bytes`, `ops_per_s`).
    pub metric: &'static str,
    /// Derived (deterministic) or Measured.
    pub source: Source,
    /// The unit.
    pub unit: &'static str,
    /// The value.
    pub value: f64,
}

/// One measurement of a workload: the counts and time of the measured operation(s) at
/// one parameter and variant, and any extra values.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The parameter, for people.
    pub parameter: String,
    /// The parameter, for plots.
    pub x: f64,
    /// The sub-series, or empty.
    pub variant: String,
    /// The round of the repetition it was measured in (0 unless the workload has rounds).
    pub round: u32,
    /// The Meter counts of the measured operation(s), if counted.
    pub counts: Option<Counts>,
    /// The measured time of the operation(s), microseconds.
    pub time_us: Option<f64>,
    /// Extra values.
    pub extra: Vec<Extra>,
}

impl Sample {
    /// A sample of counted and timed operations.
    pub fn new(
        parameter: impl Into<String>,
        x: f64,
        variant: &str,
        counts: Counts,
        time: Duration,
    ) -> Sample {
        Sample {
            parameter: parameter.into(),
            x,
            variant: variant.to_string(),
            round: 0,
            counts: Some(counts),
            time_us: Some(us(time)),
            extra: Vec::new(),
        }
    }

    /// The sample of round `round`.
    pub fn in_round(mut self, round: u32) -> Sample {
        self.round = round;
        self
    }

    /// Adds a Derived value (deterministic, from the store).
    pub fn derived(mut self, metric: &'static str, unit: &'static str, value: f64) -> Sample {
        self.extra.push(Extra {
            metric,
            source: Source::Derived,
            unit,
            value,
        });
        self
    }

    /// Adds a Measured value.
    pub fn measured(mut self, metric: &'static str, unit: &'static str, value: f64) -> Sample {
        self.extra.push(Extra {
            metric,
            source: Source::Measured,
            unit,
            value,
        });
        self
    }
}

/// Microseconds of a duration.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The result of one timed driver call.
#[derive(Debug)]
pub struct Timed<T> {
    /// What the call returned.
    pub value: T,
    /// What the call counted.
    pub counts: Counts,
    /// How long the call took.
    pub time: Duration,
}

/// Times driver calls and the measured phases around them, so that the harness's own
/// share of a measured phase can be shown (`harness_overhead`).
///
/// Only the driver call is inside the timed region of [`Clock::op`]; the meter snapshots
/// are taken just outside it. A measured phase ([`Clock::begin`] .. [`Clock::end`]) holds
/// the timed calls and the harness's bookkeeping between them, never set-up.
#[derive(Debug, Default)]
pub struct Clock {
    ops: Duration,
    phases: Duration,
    started: Option<Instant>,
    /// The cost window, probed after each measured phase (a kernel reference's run in a
    /// calibrated run: [`crate::harness::window`]).
    pub window: Option<crate::harness::window::Window>,
}

impl Clock {
    /// Starts a measured phase.
    pub fn begin(&mut self) {
        self.started = Some(Instant::now());
    }

    /// Ends the measured phase; then, outside it, probes the cost window if there is one.
    pub fn end(&mut self) {
        if let Some(t) = self.started.take() {
            self.phases += t.elapsed();
        }
        if let Some(w) = &mut self.window {
            w.probe();
        }
    }

    /// Says that the caches were just dropped for a cold read: the cost window, if there is
    /// one, measures its cold costs now (before the store is opened again).
    pub fn caches_dropped(&mut self) {
        if let Some(w) = &mut self.window {
            w.probe_cold();
        }
    }

    /// Runs one driver call, timing only the call.
    #[inline]
    pub fn op<T>(
        &mut self,
        d: &mut AnyDriver,
        f: impl FnOnce(&mut AnyDriver) -> layerlab_core::Result<T>,
    ) -> layerlab_core::Result<Timed<T>> {
        let before = d.meter().counts;
        let t0 = Instant::now();
        let r = f(d);
        let time = t0.elapsed();
        let counts = d.meter().counts.since(&before);
        self.ops += time;
        r.map(|value| Timed {
            value,
            counts,
            time,
        })
    }

    /// Total time of the timed driver calls.
    pub fn op_time(&self) -> Duration {
        self.ops
    }

    /// Total wall time of the measured phases.
    pub fn phase_time(&self) -> Duration {
        self.phases
    }
}

/// What a workload run has: the driver to run on, the store directory, the seed, the clock.
#[derive(Debug)]
pub struct RunCtx<'a> {
    /// The driver (name, label, options).
    pub driver: &'a DriverSpec,
    /// The store directory (created by `init`).
    pub root: PathBuf,
    /// The seed of this workload and repetition (the same for every driver).
    pub seed: u64,
    /// Times driver calls.
    pub clock: Clock,
    /// Notes for the report (skipped parameters).
    pub notes: Vec<String>,
    /// The driver's semantics, once the store is made (the report groups drivers by it).
    pub semantics: Option<layerlab_core::Semantics>,
}

impl RunCtx<'_> {
    /// Creates the fresh store and opens the driver.
    pub fn init(&mut self) -> Result<AnyDriver> {
        let d = registry::init(&self.driver.name, &self.root, self.driver.options.clone())
            .ctx(&self.driver.label, "creating the store")?;
        self.semantics = Some(d.semantics());
        Ok(d)
    }

    /// Closes the driver and opens the store again: nothing cached survives.
    pub fn reopen(&self, d: AnyDriver) -> Result<AnyDriver> {
        drop(d);
        registry::open(&self.root, Access::Write).ctx(&self.driver.label, "reopening the store")
    }

    /// Names the driver and what was being done in a driver error.
    pub fn err(&self, what: &str) -> impl FnOnce(Error) -> HarnessError + '_ {
        let what = what.to_string();
        move |source| HarnessError::Driver {
            driver: self.driver.label.clone(),
            workload: what,
            source: Box::new(source),
        }
    }
}

/// The `depths` key of a workload: stack depths from 1 to 4096, at least one; the error as
/// `(key, reason)`.
pub fn check_depths(depths: &[u32]) -> std::result::Result<(), (String, String)> {
    if depths.is_empty() || depths.contains(&0) {
        return Err(("depths".into(), "give depths of 1 or more".into()));
    }
    if depths.iter().any(|&d| d > 4096) {
        return Err((
            "depths".into(),
            "depths above 4096 are not supported".into(),
        ));
    }
    Ok(())
}

/// The `sizes` key of a workload: at least one size; the error as `(key, reason)`.
pub fn check_sizes(sizes: &[Size]) -> std::result::Result<(), (String, String)> {
    if sizes.is_empty() {
        return Err(("sizes".into(), "give at least one size".into()));
    }
    Ok(())
}

/// `--quick` for a list of stack depths: those up to 16, or `fallback` alone when none is.
pub fn shrink_depths(depths: &mut Vec<u32>, fallback: u32) {
    depths.retain(|&d| d <= 16);
    if depths.is_empty() {
        depths.push(fallback);
    }
}

/// The `rounds` key of a workload: 1 to 100; the error as `(key, reason)`.
pub fn check_rounds(rounds: Option<u32>) -> std::result::Result<(), (String, String)> {
    match rounds {
        Some(0) | Some(101..) => Err(("rounds".into(), "give 1 to 100 rounds".into())),
        _ => Ok(()),
    }
}

/// A layer id made by the harness.
pub fn lid(raw: &str) -> layerlab_core::Result<LayerId> {
    Error::parse_id(raw)
}

/// A path made by the harness.
pub fn lpath(raw: &str) -> layerlab_core::Result<LayerPath> {
    Error::parse_path(raw)
}

/// Deterministic content for generated files: a pattern that depends on `salt`.
pub fn pattern(len: usize, salt: u64) -> Vec<u8> {
    let mut x = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

const CHUNK: usize = 1 << 20;

/// Creates a file of `size` bytes (set-up, not measured), written in 1 MiB chunks.
pub fn fill_file(
    d: &mut AnyDriver,
    layer: &LayerId,
    path: &LayerPath,
    size: u64,
    salt: u64,
) -> layerlab_core::Result<()> {
    d.create(layer, path, 0o644)?;
    if size == 0 {
        return Ok(());
    }
    let buf = pattern(CHUNK.min(size as usize), salt);
    let mut off = 0u64;
    while off < size {
        let n = (size - off).min(buf.len() as u64) as usize;
        d.write(layer, path, off, &buf[..n])?;
        off += n as u64;
    }
    Ok(())
}

/// `mkdir -p` (set-up).
pub fn mkdirs(d: &mut AnyDriver, layer: &LayerId, path: &LayerPath) -> layerlab_core::Result<()> {
    layerlab_core::ops::mkdir_p(d, layer, path, 0o755)
}

/// Creates a committed layer (set-up): `create_layer`, `fill`, `commit`.
pub fn layer_with(
    d: &mut AnyDriver,
    id: &LayerId,
    parent: Option<&LayerId>,
    fill: impl FnOnce(&mut AnyDriver, &LayerId) -> layerlab_core::Result<()>,
) -> layerlab_core::Result<()> {
    d.create_layer(id, parent)?;
    fill(d, id)?;
    d.commit(id)
}

/// The median of some durations (the lower middle for an even count).
pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times
        .get(times.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

/// The depths of `depths` the driver can stack, sorted, each once; the others are skipped,
/// with a note for the report.
pub fn stackable_depths(
    ctx: &mut RunCtx<'_>,
    kind: &str,
    d: &AnyDriver,
    depths: &[u32],
) -> Vec<u32> {
    let max = d.semantics().max_depth;
    let (mut ok, skipped) = split_depths(depths, max);
    if !skipped.is_empty() {
        ctx.notes.push(skip_note(
            kind,
            &ctx.driver.label,
            &skipped,
            max.unwrap_or(0),
        ));
    }
    ok.sort_unstable();
    ok.dedup();
    ok
}

/// A depth note, said once per driver: the depths above the driver's limit are skipped.
pub fn skip_note(kind: &str, driver: &str, skipped: &[u32], max: usize) -> String {
    let list: Vec<String> = skipped.iter().map(|d| d.to_string()).collect();
    format!(
        "{kind}: {driver} skipped depth {} (the driver allows at most {max} layers)",
        list.join(", ")
    )
}

/// The depths of `depths` a driver can stack, and those it cannot.
pub fn split_depths(depths: &[u32], max: Option<usize>) -> (Vec<u32>, Vec<u32>) {
    depths
        .iter()
        .partition(|&&dep| max.is_none_or(|m| dep as usize <= m))
}

#[cfg(test)]
mod tests {
    use super::SeededRng;
    use rand::{Rng, SeedableRng};

    /// The seeded stream is pinned: if a dependency update changed it, every seeded result
    /// (and `modelled.csv`) would change with it, so this test fails first.
    #[test]
    fn the_seeded_stream_is_pinned() {
        let mut r = SeededRng::seed_from_u64(42);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                12578764544318200737,
                17529487244874322312,
                7886285670807131020
            ]
        );
    }
}
