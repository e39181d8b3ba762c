//! The results of an experiment: one long table of rows, their summaries over repetitions,
//! and the environment they were measured in. This is the interface between the runner
//! (which produces rows) and the report (which plots and describes them).
//!
//! Row conventions (every workload follows them, the report relies on them):
//! - `source = Counted`: a Meter counter of the measured operation(s); `metric` is the
//!   counter's name (`probes`, `bytes_copied`, ... as in `Counts::NAMES`), unit `count` or
//!   `bytes`. Deterministic.
//! - `source = Modelled`: `metric = "modelled_us"`, the counts through the device profile
//!   named in `profile`. Deterministic.
//! - `source = Measured`: wall time or a rate measured on this machine: `metric =
//!   "measured_us"` (time of the measured part), `"ops_per_s"`; never deterministic.
//! - `source = Derived`: deterministic figures computed from the store, not the Meter:
//!   `store_bytes` (space the store holds), `page_cache_bytes` (cached pages the reads need).
//!
//! `x` is the numeric parameter a plot puts on its x axis (bytes for copy-up and snapshot,
//! depth for read-depth, containers for sharing, 0 where there is none); `parameter` is the
//! same thing for people (`4KiB`, `depth 32`, `8 containers`). `variant` names a sub-series
//! (`cold`/`warm` for read-depth; `chmod`, `chown`, `rename`, `delete` for metadata; empty
//! otherwise). A driver with options appears under a distinct `driver` label, e.g.
//! `overlay2+metacopy`.

use serde::{Deserialize, Serialize};

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A Meter count (deterministic).
    Counted,
    /// Counts through a device profile (deterministic).
    Modelled,
    /// Measured on this machine (wall time, rates).
    Measured,
    /// Computed from the store's state (deterministic).
    Derived,
}

impl Source {
    /// True for values that must be byte-identical across runs with the same seed.
    pub fn deterministic(self) -> bool {
        !matches!(self, Source::Measured)
    }

    /// `counted`, `modelled`, `measured`, `derived`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Counted => "counted",
            Source::Modelled => "modelled",
            Source::Measured => "measured",
            Source::Derived => "derived",
        }
    }
}

/// One value: the long format of the CSV and JSON outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The experiment's name.
    pub experiment: String,
    /// The driver label (registry name, plus `+option` when run with options).
    pub driver: String,
    /// The workload kind (`copy-up`, `read-depth`, `metadata`, `snapshot`, `sharing`,
    /// `mixed`, `replay`).
    pub workload: String,
    /// The parameter, for people.
    pub parameter: String,
    /// The parameter, for plots.
    pub x: f64,
    /// The sub-series, or empty.
    pub variant: String,
    /// 0-based repetition.
    pub repetition: u32,
    /// What is measured.
    pub metric: String,
    /// The device profile of a modelled value, or empty.
    pub profile: String,
    /// Where the value comes from.
    pub source: Source,
    /// `µs` (metric names and column names keep ASCII: `measured_us`, `modelled_us`), `bytes`,
    /// `count`, `ops/s`.
    pub unit: String,
    /// The value.
    pub value: f64,
}

/// One group of rows (all repetitions of one driver/workload/parameter/variant/metric/
/// profile), summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The experiment's name.
    pub experiment: String,
    /// The driver label.
    pub driver: String,
    /// The workload kind.
    pub workload: String,
    /// The parameter, for people.
    pub parameter: String,
    /// The parameter, for plots.
    pub x: f64,
    /// The sub-series, or empty.
    pub variant: String,
    /// What is measured.
    pub metric: String,
    /// The device profile, or empty.
    pub profile: String,
    /// Where the values come from.
    pub source: Source,
    /// The unit.
    pub unit: String,
    /// Number of repetitions.
    pub n: usize,
    /// Median (p50).
    pub median: f64,
    /// 99th percentile (nearest rank over the repetitions: the largest value below 100).
    pub p99: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Lower end of the order-statistic confidence interval of the median (a measured
    /// value: never below the minimum); see [`crate::harness::stats`].
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// The interval's achieved confidence level (0.95 or more from 6 repetitions; 0.9375
    /// for 5; 0 for a single value).
    pub ci_level: f64,
}

/// What names one point of an experiment: every field of a row but its repetition, unit and
/// value. The rows of one point are the repetitions of one measurement, and its summary
/// carries the same point.
pub type PointKey<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    u64,
    &'a str,
    &'a str,
    &'a str,
    Source,
);

/// The [`PointKey`] of a row or summary (`x` by its bits, so that it can be hashed).
macro_rules! point_of {
    ($v:expr) => {
        (
            $v.experiment.as_str(),
            $v.driver.as_str(),
            $v.workload.as_str(),
            $v.parameter.as_str(),
            $v.x.to_bits(),
            $v.variant.as_str(),
            $v.metric.as_str(),
            $v.profile.as_str(),
            $v.source,
        )
    };
}

impl Row {
    /// The point this row is a repetition of.
    pub fn point(&self) -> PointKey<'_> {
        point_of!(self)
    }
}

impl Summary {
    /// The point this summary summarises.
    pub fn point(&self) -> PointKey<'_> {
        point_of!(self)
    }
}

/// Where the experiment ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// CPU model and count.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Filesystem type of the directory the stores were made in.
    pub store_filesystem: String,
    /// Mount options of that filesystem (mount and superblock options).
    #[serde(default)]
    pub store_mount_options: String,
    /// Total memory.
    #[serde(default)]
    pub memory: String,
    /// The load average (1, 5, 15 minutes) when the run started: other work on the machine
    /// widens the intervals of measured values.
    #[serde(default)]
    pub load_average: String,
    /// The disk under the stores: device, driver or model, size, rotational or not.
    #[serde(default)]
    pub disk: String,
    /// layerlab's version.
    pub layerlab_version: String,
    /// rustc version, if known.
    pub rustc: String,
    /// Hash of the experiment configuration text.
    pub config_hash: String,
    /// The experiment's seed.
    pub seed: u64,
    /// Whether the run was shrunk with `--quick`.
    pub quick: bool,
    /// UTC start time (not part of deterministic outputs).
    pub started: String,
    /// Whether the page cache could be dropped before cold reads (root, writable
    /// `/proc/sys/vm/drop_caches`).
    #[serde(default)]
    pub drop_caches: bool,
    /// The calibrated profile used by the run, if any: how it was obtained.
    #[serde(default)]
    pub calibration: String,
    /// The SHA-256 of the calibrated profile's TOML text, if any.
    #[serde(default)]
    pub calibration_hash: String,
    /// Wall time of each workload over every driver and repetition, seconds, set-up
    /// included (not part of deterministic outputs).
    #[serde(default)]
    pub wall_seconds: Vec<(String, f64)>,
    /// Wall time of each (workload, driver label) over its repetitions, seconds, fresh
    /// stores included: the measured per-driver factors of the sweep's estimate
    /// ([`crate::harness::sweep::driver_factor`]).
    #[serde(default)]
    pub driver_seconds: Vec<(String, String, f64)>,
}

/// Everything an experiment produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The experiment's name.
    pub experiment: String,
    /// Every value of every repetition.
    pub rows: Vec<Row>,
    /// The rows summarised over repetitions.
    pub summaries: Vec<Summary>,
    /// Where it ran.
    pub environment: Environment,
    /// Notes for the report: parameters a driver could not run (depths above its limit).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The device profiles the modelled rows use (a calibrated one among them when the run
    /// was calibrated).
    #[serde(default)]
    pub profiles: Vec<super::profile::Profile>,
    /// Each driver label's family (`union drivers`, `copy and snapshot drivers`), from its
    /// semantics: the panels of the report's small multiples.
    #[serde(default)]
    pub families: Vec<(String, String)>,
    /// Where merged shards ran on more than one machine: each machine's measured rows
    /// summarised apart (measured times of different machines are not one sample); empty
    /// for a run on one machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machines: Vec<MachineSummaries>,
}

impl Results {
    /// The summaries of one metric of one workload, in order.
    pub fn summaries_of<'a>(
        &'a self,
        workload: &'a str,
        metric: &'a str,
    ) -> impl Iterator<Item = &'a Summary> + 'a {
        self.summaries
            .iter()
            .filter(move |s| s.workload == workload && s.metric == metric)
    }
}

/// One machine's measured summaries, in a merge of shards from several machines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineSummaries {
    /// The machine's host name (as the shards' manifests give it).
    pub machine: String,
    /// Its measured rows, summarised over repetitions.
    pub summaries: Vec<Summary>,
}
