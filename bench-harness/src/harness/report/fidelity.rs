//! The fidelity section: the models against the kernel drivers, where the experiment ran
//! them (`kernel-overlay`, `kernel-btrfs`), as one table with every comparison, its target
//! and its verdict, the targets defined in the section's text.
//!
//! The kernel drivers count no probes or copies (the kernel does that work), so for them
//! only **measured** times (and the space their store holds) are used. The model's side is
//! its **modelled** time: its Meter counts through the profile calibrated on this machine
//! (`calibrated`, in the results when the run was calibrated; `nvme` otherwise, and the
//! section says so), with the costs that drift (flushes, read calls) measured again beside
//! the kernel's runs of the same workload where the run has that window
//! (`calibrated@<workload>`, [`crate::harness::window`]): a flush's latency moves by 2x
//! within minutes on a shared disk.
//!
//! Targets, judged with the kernel's uncertainty (the interval of its median):
//!
//! - **T1 (time)**: a modelled time within 30% of the kernel's measured median; *met* when
//!   the error is within ±30% for every value of the kernel's interval, *missed* when it is
//!   outside for every value, *undecided* when the interval straddles the limit.
//! - **T2 (space)**: the model's exclusive bytes within 30% of its kernel driver's (both
//!   exact: met or missed).

use super::text::{bytes, num};
use super::{lines, Chart, Figure, Line, Scale, Section, Table, Ticks};
use crate::harness::calibration;
use crate::harness::profile::Profile;
use crate::harness::results::{Results, Source, Summary};
use crate::harness::window;
use crate::harness::workloads::kind;

/// The model each kernel driver is the reference of.
const PAIRS: &[(&str, &str)] = &[("kernel-overlay", "overlay2"), ("kernel-btrfs", "btrfs")];

/// The limit of both targets, percent.
const LIMIT: f64 = 30.0;

/// What the fidelity section adds to a report.
#[derive(Debug, Default)]
pub struct Fidelity {
    /// Its sections (figures, sentences, the table).
    pub sections: Vec<Section>,
}

/// One comparison: which quantity, on which kernel/model pair, from which rows.
struct Comparison {
    what: &'static str,
    workload: &'static str,
    variant: &'static str,
    /// The kernel's metric and source, and the model's.
    kernel: (&'static str, Source),
    model: (&'static str, Source),
    /// Points below this x are not compared (overlay copy-up of 4 KiB: fixed costs the
    /// model does not claim).
    from_x: f64,
    target: &'static str,
    /// Write x for people.
    x_fmt: fn(f64) -> String,
    /// Write a value for people.
    v_fmt: fn(f64) -> String,
}

fn depth(x: f64) -> String {
    format!("depth {}", num(x))
}

fn us(v: f64) -> String {
    format!("{} µs", num(v))
}

fn containers(x: f64) -> String {
    if x == 1.0 {
        "1 container".into()
    } else {
        format!("{} containers", num(x))
    }
}

const TIME: (&str, Source) = ("measured_us", Source::Measured);
const MODEL: (&str, Source) = ("modelled_us", Source::Modelled);

/// A comparison of times: the kernel's measured median against the model's modelled time,
/// judged by T1.
const fn time(
    what: &'static str,
    workload: &'static str,
    variant: &'static str,
    from_x: f64,
    x_fmt: fn(f64) -> String,
) -> Comparison {
    Comparison {
        what,
        workload,
        variant,
        kernel: TIME,
        model: MODEL,
        from_x,
        target: "T1",
        x_fmt,
        v_fmt: us,
    }
}

const COMPARISONS: &[Comparison] = &[
    time("copy-up", kind::COPY_UP, "", 65536.0, bytes),
    time("cold read", kind::READ_DEPTH, "cold", 0.0, depth),
    time("warm read", kind::READ_DEPTH, "warm", 0.0, depth),
    time("snapshot", kind::SNAPSHOT, "", 0.0, bytes),
    Comparison {
        what: "exclusive bytes",
        workload: kind::SHARING,
        variant: "",
        kernel: ("exclusive_bytes", Source::Derived),
        model: ("exclusive_bytes", Source::Derived),
        from_x: 0.0,
        target: "T2",
        x_fmt: containers,
        v_fmt: bytes,
    },
];

/// The targets, as the section defines them (every target a row is judged by is here).
pub const TARGETS: &[(&str, &str)] = &[
    (
        "T1",
        "Target T1 (time): the model's modelled time is within 30% of the kernel's measured \
         median. Error = (modelled − kernel) / kernel, computed for every value of the \
         kernel's interval: met when all of them are within ±30%, missed when none is, \
         undecided when the interval straddles the limit.",
    ),
    (
        "T2",
        "Target T2 (space): the model's exclusive bytes (the sum of every layer's `usage()`) \
         are within 30% of its kernel driver's (kernel-btrfs: `btrfs filesystem du`; \
         kernel-overlay: the diff directories); both exact, so met or missed.",
    ),
];

/// What a kernel reference's measured time holds that its model's operation does not do,
/// said where that reference is compared (a miss there may be this, not the model).
const REFERENCE_STEPS: &[(&str, &str)] = &[
    (
        "kernel-overlay",
        "kernel-overlay checks a read's path with an `lstat` per component through the mount \
         before it opens the file (the model checks it against its lookup cache: one cache \
         hit; the read call's fixed cost is calibrated through the same checked front, on a \
         vfs store), reads a base layer (depth 1) from its own directory and a layer with a \
         parent through an overlay mount, whose open also opens the branch's file (the \
         model counts that as `backing_opens`, calibrated on an overlay mount), and mounts a \
         stack whose lowerdir list outgrows a page (depth 128) through the `l/` short links, \
         each read and followed when the view is mounted cold (the model reaches each layer \
         by its own directory). Its snapshot is the overlay2 model's own layer creation: the \
         same layout code and system calls (strace: the same sequence, seven fsyncs; the \
         overlay mount waits for the layer's first use), so that comparison holds the \
         entry-fsync price (measured on a vfs store, in the cost window beside the kernel's \
         snapshots) against this filesystem's fsyncs, whose latency on a shared disk moves \
         with its load (the same creation: medians of 1.2 to 9 ms within an hour on a loaded \
         machine). Its copy-up creates the copy in the work directory and fsyncs it before \
         the rename, as the model's staged copy is: an fsync of a new file, an entry fsync.",
    ),
    (
        "kernel-btrfs",
        "kernel-btrfs checks a read's path with an `lstat` per component before it opens \
         the file (the model: one cache hit), and makes a subvolume and a snapshot with the \
         kernel's ioctls (`BTRFS_IOC_SUBVOL_CREATE_V2`, `BTRFS_IOC_SNAP_CREATE_V2`), as a \
         storage driver does and as the calibration measures `commit_us`: both sides time \
         the kernel's snapshot, no process start. Its copy-up is a 1-byte write and its \
         `fdatasync`, a btrfs log commit (the model counts one `log_commits`, priced at the \
         calibration's log commit on a loop-mounted btrfs). Every layer is its own subvolume, \
         whose tree here is one leaf, its root node (the model counts one layer entered and \
         one extent at every depth, the name lookup a cache hit in that leaf), and whose \
         root item sits in the root tree by subvolume id, about thirty to a leaf: a cold \
         read after another in one cache drop found the leaf the other brought in \
         (subvolumes made one after another have neighbouring ids) and skipped a device \
         read, so every depth's cold read follows its own cache drop and reopen, on both \
         sides. Even so the kernel's cold read is not the same at every depth: it reads the \
         subvolume's root node and the file's extent, and the root-tree leaf with the \
         subvolume's root item unless the mount or the warm-up read brought it in \
         (counted on the loop device: two reads at depths 1, 4 and 128, three at 8, 16 and \
         32, in every round; the warm-up layer's root ref shares a leaf with the first \
         subvolumes' root items, and its root item neighbours the deepest stack's top; the \
         mount reads both leaves too, for the checksum, uuid and free-space trees' root \
         items and the data relocation tree's). The model lays its root tree out by \
         subvolume id with the kernel's leaf balancing (the same leaves as the kernel's for \
         these stacks) and counts the leaf as a `tree_leaf_reads` where the mount, a change \
         or an earlier read since the cache drop did not bring it in: one at depths 8, 16 \
         and 32, none at 1, 4 and 128, priced as one device read (`tree_leaf_us`, the \
         calibration's `extent_us` measurement). Each of these reads passes the loop device \
         under the kernel's btrfs, which the model counts as `pool_reads` beside them, \
         priced at what the calibration measured a loop device to add to a host read. \
         It rebuilds the layout on open from the subvolumes there, in id order: a store \
         whose subvolumes were deleted may have its leaves elsewhere on the kernel.",
    ),
];

/// The profile the model's side of a comparison of `workload` uses: the cost window's of
/// that workload when the run has it, else `base` (the calibrated profile, or nvme).
fn profile_for(results: &Results, base: &str, workload: &str) -> String {
    let window = window::window_name(workload);
    if results.profiles.iter().any(|p| p.name == window) {
        window
    } else {
        base.to_string()
    }
}

/// The drifting costs of the calibration and of every window, as a table (none without
/// windows).
fn window_table(results: &Results) -> Option<Table> {
    let windows: Vec<&Profile> = results
        .profiles
        .iter()
        .filter(|p| window::is_window(&p.name))
        .collect();
    let base = results
        .profiles
        .iter()
        .find(|p| p.name == calibration::NAME)?;
    if windows.is_empty() {
        return None;
    }
    let row = |p: &Profile, when: &str| {
        vec![
            format!("`{}`", p.name),
            when.to_string(),
            num(p.fsync_us),
            num(p.entry_fsync_us),
            num(p.log_commit_us),
            num(p.commit_us),
            num(p.read_call_us),
            num(p.cow_read_call_us),
            num(p.extent_us),
            num(p.pool_read_us),
        ]
    };
    let mut rows = vec![row(base, "the calibration")];
    rows.extend(windows.iter().map(|p| row(p, &p.description)));
    Some(Table {
        title: "Costs that drift (µs): the calibration, and each workload's window beside the \
                kernel's runs"
            .into(),
        columns: [
            "profile",
            "measured",
            "fsync",
            "entry fsync",
            "btrfs log commit",
            "btrfs commit",
            "read call",
            "btrfs read call",
            "device read",
            "loop device's share",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        tiers: Vec::new(),
    })
}

/// The profile the model's side uses: the calibrated one when the run has it.
fn model_profile(results: &Results) -> (String, String) {
    if results.profiles.iter().any(|p| p.name == calibration::NAME) {
        let how = if results.environment.calibration.is_empty() {
            "calibrated on this machine".to_string()
        } else {
            results.environment.calibration.clone()
        };
        (
            calibration::NAME.to_string(),
            format!(
                "the profile calibrated on this machine (`{}`, {how}; SHA-256 {})",
                calibration::NAME,
                short(&results.environment.calibration_hash)
            ),
        )
    } else {
        (
            "nvme".into(),
            "the nvme profile (this run was not calibrated: `layerlab report` calibrates)".into(),
        )
    }
}

fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

fn find<'a>(
    results: &'a Results,
    driver: &str,
    c: &Comparison,
    (metric, source): (&str, Source),
    profile: &str,
) -> Vec<&'a Summary> {
    let mut v: Vec<&Summary> = results
        .summaries
        .iter()
        .filter(|s| {
            s.driver == driver
                && s.workload == c.workload
                && s.variant == c.variant
                && s.metric == metric
                && s.source == source
                && (source != Source::Modelled || s.profile == profile)
                && s.x >= c.from_x
        })
        .collect();
    v.sort_by(|a, b| a.x.total_cmp(&b.x));
    v
}

/// The error interval, percent, of `model` against a kernel value in `[lo, hi]` (median
/// `mid`): (error at the median, smallest, largest).
fn error(model: f64, k: &Summary) -> Option<(f64, f64, f64)> {
    let pct = |kv: f64| (kv > 0.0).then(|| (model - kv) / kv * 100.0);
    let mid = pct(k.median)?;
    let a = pct(k.ci_low.min(k.median)).unwrap_or(mid);
    let b = pct(k.ci_high.max(k.median)).unwrap_or(mid);
    Some((mid, a.min(b), a.max(b)))
}

/// Met, missed or undecided, for an error interval.
fn verdict(lo: f64, hi: f64) -> &'static str {
    if lo >= -LIMIT && hi <= LIMIT {
        "met"
    } else if lo > LIMIT || hi < -LIMIT {
        "missed"
    } else {
        "undecided"
    }
}

fn signed(e: f64) -> String {
    format!("{e:+.0}%")
}

/// One table row per compared point, and one sentence per comparison: its worst error.
fn compare(
    results: &Results,
    profile: &str,
    (kernel, model): (&str, &str),
    c: &Comparison,
    rows: &mut Vec<Vec<String>>,
    sentences: &mut Vec<String>,
) {
    let ks = find(results, kernel, c, c.kernel, profile);
    let ms = find(results, model, c, c.model, profile);
    let mut worst: Option<(f64, f64, &str)> = None;
    let mut verdicts = Vec::new();
    for k in &ks {
        let Some(m) = ms.iter().find(|m| m.x == k.x) else {
            continue;
        };
        let Some((mid, lo, hi)) = error(m.median, k) else {
            continue;
        };
        let v = verdict(lo, hi);
        verdicts.push(v);
        if worst.is_none_or(|w| mid.abs() > w.1.abs()) {
            worst = Some((k.x, mid, v));
        }
        let kernel_cell = if k.ci_low < k.ci_high {
            format!(
                "{} ({}–{})",
                (c.v_fmt)(k.median),
                num(k.ci_low),
                num(k.ci_high)
            )
        } else {
            (c.v_fmt)(k.median)
        };
        let err_cell = if lo < hi {
            format!("{} ({} to {})", signed(mid), signed(lo), signed(hi))
        } else {
            signed(mid)
        };
        rows.push(vec![
            format!("{model} vs {kernel}: {}", c.what),
            (c.x_fmt)(k.x),
            kernel_cell,
            (c.v_fmt)(m.median),
            err_cell,
            c.target.to_string(),
            v.to_string(),
        ]);
    }
    if let Some((x, e, v)) = worst {
        let count = |w: &str| verdicts.iter().filter(|v| **v == w).count();
        sentences.push(format!(
            "{model} vs {kernel}, {} ({}): worst error {} at {} ({v}); {} of {} points met, {} \
             missed, {} undecided.",
            c.what,
            c.target,
            signed(e),
            (c.x_fmt)(x),
            count("met"),
            verdicts.len(),
            count("missed"),
            count("undecided"),
        ));
    }
}

/// Builds the fidelity section from the results; empty when no kernel driver ran.
pub fn build(results: &Results, order: &[String]) -> Fidelity {
    let mut out = Fidelity::default();
    let present = |d: &str| results.summaries.iter().any(|s| s.driver == d);
    let pairs: Vec<(&str, &str)> = PAIRS.iter().copied().filter(|(k, _)| present(k)).collect();
    if pairs.is_empty() {
        return out;
    }
    let (profile, prof_note) = model_profile(results);
    let mut rows = Vec::new();
    let mut judged = Vec::new();
    for pair in &pairs {
        for c in COMPARISONS {
            let p = profile_for(results, &profile, c.workload);
            compare(results, &p, *pair, c, &mut rows, &mut judged);
        }
    }
    let drift = window_table(results);
    let window_note = if drift.is_some() {
        " A flush waits on the disk, whose latency moves by 2x within minutes on a shared \
         machine, and a read call is CPU work, which on a shared virtual machine runs slower \
         or faster by a fifth from one minute to the next. So these costs (fsync, entry \
         fsync, btrfs log commit, btrfs commit, the read call on the host filesystem and on \
         btrfs) were measured again after every measured phase of the kernel references' \
         runs (up to 12 times per run; each flush the median of 3, each read call of 40), \
         and where a workload dropped the caches for a cold read, so were a device read and \
         what a loop device adds to one (8 each, the medians, before the store was opened \
         again; a cold lookup's cost depends on where the host filesystem put the \
         directories, so it stays the calibration's, the median over 256 of them); the \
         model's points of a workload are priced with the calibration whose \
         drifting costs are the medians of that workload's probes (`calibrated@<workload>`, \
         in profiles.csv; the table after this one)."
    } else {
        ""
    };
    let cold = if results.environment.drop_caches {
        "after the page cache, dentries and inodes were dropped"
    } else {
        "with the page cache warm (it could not be dropped on this machine)"
    };
    let mut sentences = vec![format!(
        "Every comparison of a model with its kernel reference, in one table. The kernel \
         drivers count no probes or copies (the kernel does that work), so their measured \
         values are the reference; the model's side is its modelled time through {prof_note}.\
         {window_note} Cold reads are the first on a freshly opened store or mount, {cold}."
    )];
    let used: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.get(5))
        .map(|s| s.as_str())
        .collect();
    sentences.extend(
        TARGETS
            .iter()
            .filter(|(t, _)| used.contains(t))
            .map(|(_, text)| text.to_string()),
    );
    sentences.extend(
        REFERENCE_STEPS
            .iter()
            .filter(|(k, _)| pairs.iter().any(|(p, _)| p == k))
            .map(|(_, text)| text.to_string()),
    );
    sentences.extend(judged);
    let table = Table {
        title: "Fidelity: every model-vs-kernel comparison, with its target and verdict".into(),
        columns: [
            "comparison",
            "point",
            "kernel measured (interval)",
            "model modelled",
            "error (over the kernel's interval)",
            "target",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        tiers: Vec::new(),
    };
    let figures = figures(results, order, &pairs, &profile);
    let mut tables = vec![table];
    tables.extend(drift);
    let mut figures = figures.into_iter();
    out.sections.push(Section {
        heading: "Fidelity: the models against the kernel".into(),
        figure: figures.next(),
        sentences,
        tables,
    });
    if let Some(f) = figures.next() {
        out.sections.push(Section {
            heading: "Fidelity: read latency against depth, kernel and model".into(),
            figure: Some(f),
            sentences: vec!["The errors per depth are in the fidelity table above.".into()],
            tables: Vec::new(),
        });
    }
    out
}

/// The kernel's measured curves beside the model's modelled (calibrated) and measured ones:
/// copy-up against size, read latency against depth.
fn figures(
    results: &Results,
    order: &[String],
    pairs: &[(&str, &str)],
    profile: &str,
) -> Vec<Figure> {
    let mut drivers = order.to_vec();
    for (k, m) in pairs {
        for d in [k, m] {
            if !drivers.iter().any(|x| x == d) {
                drivers.push((*d).to_string());
            }
        }
    }
    let of = |workload: &str| -> Vec<Line> {
        let mut ls = Vec::new();
        for (k, m) in pairs {
            let one = |d: &str| [d.to_string()];
            ls.extend(lines(
                results,
                &one(k),
                workload,
                "measured_us",
                Source::Measured,
                None,
            ));
            ls.extend(lines(
                results,
                &one(m),
                workload,
                "modelled_us",
                Source::Modelled,
                Some(&profile_for(results, profile, workload)),
            ));
            ls.extend(lines(
                results,
                &one(m),
                workload,
                "measured_us",
                Source::Measured,
                None,
            ));
        }
        ls
    };
    let fig = |id: &str, title: &str, x: &str, ticks: Ticks, lines: Vec<Line>| {
        (!lines.is_empty()).then(|| Figure {
            id: id.into(),
            title: title.into(),
            x_label: x.into(),
            y_label: "time (µs)".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Log,
            x_ticks: ticks,
            x_divisor: 1.0,
            y_divisor: 1.0,
            chart: Chart::Lines(lines),
            drivers: drivers.clone(),
            panels: super::panels(results, &drivers),
        })
    };
    [
        fig(
            "fidelity-copy-up",
            "Copy-up against file size: kernel measured, model modelled and measured",
            "file size (bytes)",
            Ticks::Bytes,
            of(kind::COPY_UP),
        ),
        fig(
            "fidelity-read-depth",
            "Read latency against depth: kernel measured, model modelled and measured",
            "depth (layers)",
            Ticks::Number,
            of(kind::READ_DEPTH),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}
