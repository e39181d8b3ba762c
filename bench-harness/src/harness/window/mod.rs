//! The cost window: the primitive costs that drift while a run goes on, measured again, a
//! few at a time, after every measured phase of a kernel reference's run. Those are the
//! flushes (an fsync of a file's data, an fsync that commits new entries, a btrfs log
//! commit, a btrfs transaction commit) and the read calls (on the host's filesystem and on
//! btrfs). The calibration measures them too, in many repetitions
//! ([`super::calibration`], with the helpers here).
//!
//! A flush waits on the disk, and on a shared machine that wait moves by 2x within minutes:
//! four reports in one hour measured the kernel-btrfs copy-up at 449 to 825 µs, and the
//! calibrated fsync at 157 to 440 µs. A read call is CPU work: on a shared virtual machine
//! it ran 20% slower in one report than in the calibration a minute before (a vfs store's
//! warm read: 3.60 µs measured, 2.96 modelled). The window gives each workload a profile of
//! its own: the calibration, with these costs replaced by the medians measured beside that
//! workload's kernel samples (named `calibrated@<workload>`). The model's points are priced
//! with it where they are held to the kernel.

use super::cost;
use super::profile::Profile;
use std::fs::{File, OpenOptions};
use std::path::Path;

mod primitives;

pub use primitives::{
    fsync_once, median, ok, us, Cold, ColdCosts, Creates, EntryFsyncs, LoopBtrfs, ReadCalls,
};

/// The drifting costs measured once, beside a kernel reference's measured phase: each the
/// median of a few repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// A 4 KiB write and its fsync (`fsync_us`).
    pub fsync_us: f64,
    /// An fsync that makes new entries durable (`entry_fsync_us`).
    pub entry_fsync_us: f64,
    /// A btrfs log commit (`log_commit_us`), where a btrfs could be mounted.
    pub log_commit_us: Option<f64>,
    /// A btrfs snapshot's commit (`commit_us`), where a btrfs could be mounted.
    pub commit_us: Option<f64>,
    /// A read call's fixed cost (`read_call_us`).
    pub read_call_us: f64,
    /// A read call's fixed cost on btrfs (`cow_read_call_us`), where a btrfs could be
    /// mounted.
    pub cow_read_call_us: Option<f64>,
}

/// Repetitions of each flush in one probe.
const PROBE_REPS: usize = 3;

/// Read calls in one probe (a few microseconds each).
const PROBE_READS: usize = 40;

/// Probes kept per workload and kernel driver: enough for a median with its spread, few
/// enough that a workload of many short phases is not slowed by them.
const PROBES_PER_RUN: usize = 12;

/// The cost window of a run: the scratch files its probes use, and the probes taken so far,
/// by workload and driver.
#[derive(Debug)]
pub struct Window {
    sync: File,
    fsyncs: u64,
    entries: EntryFsyncs,
    reads: ReadCalls,
    /// Read calls in a vfs store on the btrfs, dropped before it.
    cow_reads: Option<ReadCalls>,
    btrfs: Option<LoopBtrfs>,
    cold: ColdCosts,
    /// The calibration: prices a layer creation's other counts.
    calibrated: Profile,
    /// Where the next probes go: (workload, driver).
    at: Option<(String, String)>,
    probes: Vec<(String, String, Probe)>,
    /// Cold probes, with what the loop device added to a device read where measured.
    colds: Vec<(String, String, Cold, Option<f64>)>,
    // removed last, after the mount in it is gone
    scratch: tempfile::TempDir,
}

impl Window {
    /// A window with its scratch directory under `dir` (beside the stores), a vfs store
    /// for the entry fsyncs and, where it can be made, a loop-mounted btrfs.
    pub fn new(dir: &Path, calibrated: &Profile) -> std::io::Result<Window> {
        let scratch = tempfile::Builder::new()
            .prefix(".layerlab-flush-")
            .tempdir_in(dir)?;
        let s = scratch.path().canonicalize()?;
        let sync = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(s.join("sync"))?;
        let entries = EntryFsyncs::new(&s.join("vfs")).map_err(std::io::Error::other)?;
        let reads = ReadCalls::new(&s.join("vfs-reads")).map_err(std::io::Error::other)?;
        // device reads only: a cold lookup's cost depends on where the host filesystem put
        // the directories (16 of them measured 63 µs in one report and 229 µs in the next,
        // where the calibration's 64 measured 58 to 79 µs all day), so the window leaves it
        // to the calibration
        let cold = ColdCosts::new(&s, 0, 16 << 20, 8)?;
        let btrfs = LoopBtrfs::make(&s);
        let cow_reads = btrfs
            .as_ref()
            .and_then(|b| ReadCalls::new(&b.dir().join("vfs-reads")).ok());
        Ok(Window {
            sync,
            fsyncs: 0,
            entries,
            reads,
            cow_reads,
            btrfs,
            cold,
            calibrated: calibrated.clone(),
            at: None,
            probes: Vec::new(),
            colds: Vec::new(),
            scratch,
        })
    }

    /// The next probes are taken beside `driver`'s run of `workload`; `None`: no probes.
    pub fn at(&mut self, at: Option<(&str, &str)>) {
        self.at = at.map(|(w, d)| (w.to_string(), d.to_string()));
    }

    /// Takes one probe where [`Window::at`] says, unless that run has its share already or
    /// a measurement failed (a failed probe is left out).
    pub fn probe(&mut self) {
        let taken = self.probes.iter().map(|(w, d, _)| (w, d));
        let Some((w, d)) = self.room(taken) else {
            return;
        };
        if let Some(p) = self.measure() {
            self.probes.push((w, d, p));
        }
    }

    /// Takes one cold probe where [`Window::at`] says (unless that run has its share):
    /// call right after a cache drop the workload made for its own cold reads.
    pub fn probe_cold(&mut self) {
        let taken = self.colds.iter().map(|(w, d, _, _)| (w, d));
        let Some((w, d)) = self.room(taken) else {
            return;
        };
        if let Ok(c) = self.cold.measure() {
            let pool = self
                .btrfs
                .as_mut()
                .and_then(|b| b.device_read_us(8))
                .map(|through| (through - c.extent_us).max(0.0));
            self.colds.push((w, d, c, pool));
        }
    }

    /// Where [`Window::at`] says the next probe goes, unless the probes `taken` so far (by
    /// workload and driver) hold that run's share already.
    fn room<'a>(
        &self,
        taken: impl Iterator<Item = (&'a String, &'a String)>,
    ) -> Option<(String, String)> {
        let (w, d) = self.at.clone()?;
        let n = taken.filter(|(pw, pd)| **pw == w && **pd == d).count();
        (n < PROBES_PER_RUN).then_some((w, d))
    }

    fn measure(&mut self) -> Option<Probe> {
        let mut syncs = Vec::new();
        for _ in 0..PROBE_REPS {
            self.fsyncs += 1;
            syncs.push(fsync_once(&self.sync, self.fsyncs).ok()?);
        }
        let fsync_us = median(syncs);
        let priced = Profile {
            fsync_us,
            ..self.calibrated.clone()
        };
        let mut entries = Vec::new();
        for _ in 0..PROBE_REPS {
            entries.push(self.entries.one(|c| cost::modelled_us(c, &priced)).ok()?);
        }
        let (mut logs, mut commits) = (Vec::new(), Vec::new());
        if let Some(b) = &mut self.btrfs {
            for _ in 0..PROBE_REPS {
                logs.push(b.log_commit_us()?);
                commits.push(b.snapshot_us()?);
            }
        }
        let (warm, per_byte) = (
            self.calibrated.probe_warm_us,
            1e6 / self.calibrated.read_bandwidth.0.max(1) as f64,
        );
        let read_call_us = self.reads.fixed_cost(PROBE_READS, warm, per_byte).ok()?;
        let cow_read_call_us = match &mut self.cow_reads {
            Some(r) => Some(r.fixed_cost(PROBE_READS, warm, per_byte).ok()?),
            None => None,
        };
        Some(Probe {
            fsync_us,
            entry_fsync_us: median(entries),
            log_commit_us: (!logs.is_empty()).then(|| median(logs)),
            commit_us: (!commits.is_empty()).then(|| median(commits)),
            read_call_us,
            cow_read_call_us,
        })
    }

    /// Every workload with probes, and its profile ([`Window::profile_of`]).
    pub fn profiles(&self) -> Vec<(String, Profile)> {
        let mut workloads: Vec<&str> = Vec::new();
        for (w, _, _) in &self.probes {
            if !workloads.contains(&w.as_str()) {
                workloads.push(w);
            }
        }
        workloads
            .into_iter()
            .map(|w| (w.to_string(), self.profile_of(w)))
            .collect()
    }

    /// The profile of workload `w` ([`window_profile`] of its probes).
    fn profile_of(&self, w: &str) -> Profile {
        let of: Vec<&Probe> = self
            .probes
            .iter()
            .filter(|(pw, _, _)| pw == w)
            .map(|(_, _, p)| p)
            .collect();
        let colds: Vec<(&Cold, Option<f64>)> = self
            .colds
            .iter()
            .filter(|(cw, _, _, _)| cw == w)
            .map(|(_, _, p, pool)| (p, *pool))
            .collect();
        window_profile(&self.calibrated, w, &of, &colds)
    }

    /// Unmounts the btrfs and removes the scratch directory.
    pub fn close(self) {
        let Window {
            btrfs,
            entries,
            reads,
            cow_reads,
            sync,
            scratch,
            ..
        } = self;
        drop((entries, reads, cow_reads, sync));
        if let Some(b) = btrfs {
            let _ = b.unmount();
        }
        drop(scratch);
    }
}

/// The name of a workload's window profile: `calibrated@<workload>`.
pub fn window_name(workload: &str) -> String {
    format!("{}@{workload}", super::calibration::NAME)
}

/// Whether a profile is a window's (it prices one workload, where the model is held to
/// the kernel).
pub fn is_window(profile: &str) -> bool {
    profile.starts_with(&format!("{}@", super::calibration::NAME))
}

/// The profile of workload `w`: the calibration `c` with the drifting costs replaced by the
/// medians of the probes taken beside that workload's kernel runs (`of`, and `colds` with
/// the loop device's share where measured); a cost no probe measured keeps the
/// calibration's value.
pub fn window_profile(
    c: &Profile,
    w: &str,
    of: &[&Probe],
    colds: &[(&Cold, Option<f64>)],
) -> Profile {
    let each = |f: fn(&Probe) -> Option<f64>, keep: f64| {
        let v: Vec<f64> = of.iter().filter_map(|p| f(p)).collect();
        if v.is_empty() {
            keep
        } else {
            median(v)
        }
    };
    let cold = |f: fn(&(&Cold, Option<f64>)) -> Option<f64>, keep: f64| {
        let v: Vec<f64> = colds.iter().filter_map(f).collect();
        if v.is_empty() {
            keep
        } else {
            median(v)
        }
    };
    let extent_us = cold(|p| Some(p.0.extent_us), c.extent_us);
    let after_drops = if colds.is_empty() {
        String::new()
    } else {
        format!(", {} after their cache drops", colds.len())
    };
    Profile {
        name: window_name(w),
        description: format!(
            "this machine's calibration, its costs that drift measured beside the kernel \
             references' {w} runs ({} probes{after_drops})",
            of.len(),
        ),
        fsync_us: each(|p| Some(p.fsync_us), c.fsync_us),
        entry_fsync_us: each(|p| Some(p.entry_fsync_us), c.entry_fsync_us),
        log_commit_us: each(|p| p.log_commit_us, c.log_commit_us),
        commit_us: each(|p| p.commit_us, c.commit_us),
        read_call_us: each(|p| Some(p.read_call_us), c.read_call_us),
        cow_read_call_us: each(|p| p.cow_read_call_us, c.cow_read_call_us),
        extent_us,
        tree_leaf_us: extent_us,
        pool_read_us: cold(|p| p.1, c.pool_read_us),
        ..c.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn probe(fsync_us: f64, log_commit_us: Option<f64>) -> Probe {
        Probe {
            fsync_us,
            entry_fsync_us: 2.0 * fsync_us,
            log_commit_us,
            commit_us: None,
            read_call_us: 3.0,
            cow_read_call_us: None,
        }
    }

    #[test]
    fn a_window_profile_takes_the_medians_of_its_probes_and_keeps_what_none_measured() {
        let c = Profile::embedded("nvme").unwrap().unwrap();
        let (a, b, d) = (
            probe(100.0, None),
            probe(300.0, Some(900.0)),
            probe(200.0, None),
        );
        let cold = Cold {
            probe_us: 50.0,
            layer_open_us: 60.0,
            extent_us: 70.0,
        };
        let p = window_profile(&c, "copy-up", &[&a, &b, &d], &[(&cold, Some(40.0))]);
        assert_eq!(p.name, "calibrated@copy-up");
        assert!(is_window(&p.name) && !is_window("calibrated"));
        assert_eq!((p.fsync_us, p.entry_fsync_us), (200.0, 400.0));
        assert_eq!(p.log_commit_us, 900.0, "the one probe that measured it");
        assert_eq!(p.commit_us, c.commit_us, "no probe measured it");
        assert_eq!(p.cow_read_call_us, c.cow_read_call_us);
        assert_eq!(p.read_call_us, 3.0);
        assert_eq!(
            p.metadata_write_us, c.metadata_write_us,
            "a host file's creation is not what the models' metadata writes are"
        );
        assert_eq!(
            (p.probe_cold_us, p.layer_open_us),
            (c.probe_cold_us, c.layer_open_us),
            "cold lookups are the calibration's"
        );
        assert_eq!(
            (p.extent_us, p.tree_leaf_us, p.pool_read_us),
            (70.0, 70.0, 40.0)
        );
        assert_eq!(p.write_bandwidth, c.write_bandwidth, "not a drifting cost");
        let none = window_profile(&c, "snapshot", &[&a], &[]);
        assert_eq!(
            none.extent_us, c.extent_us,
            "no cold probe: the calibration's"
        );
    }
}
