//! `read-depth`: the read of a small file at the bottom of a stack of N layers, read from
//! the top layer (the layers above it are empty). Every depth has its own stack (a read
//! through a shared stack would warm the layers a shallower read meets), and every depth's
//! cold read follows its own cache drop and reopen, so that no read finds what an earlier
//! read of the round brought in (kernel-btrfs: the root-tree leaf that holds the root items
//! of about thirty subvolumes made one after another); the stacks are read deepest first,
//! against the order they were made in, so that the host's readahead (forward only) never
//! brings a later read's data in with an earlier one. Cold: the first lookup on a freshly
//! opened driver (kernel drivers: a new mount), after the page cache, dentries and inodes
//! are dropped where this process may (`drop_caches`, on by default); warm: the same read
//! repeated, the median of several. Depths above a driver's `max_depth` are skipped and
//! noted.

use super::{
    fill_file, layer_with, lid, lpath, median, mkdirs, stackable_depths, Header, RunCtx, Sample,
    Workload,
};
use crate::harness::env;
use crate::harness::error::Result;
use layerlab_core::size::Size;
use layerlab_core::{LayerDriver, LayerId, LayerPath};
use layerlab_drivers::AnyDriver;
use serde::{Deserialize, Serialize};

/// `[[workload.read-depth]]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadDepth {
    /// Stack depths (the file sits in layer 1, the read is from layer N; default 1, 2, 4,
    /// 8, 16, 32, 64, 128).
    #[serde(default = "default_depths")]
    pub depths: Vec<u32>,
    /// The size of the file read (default 4KiB).
    #[serde(default = "default_file")]
    pub file_size: Size,
    /// Warm reads per depth; the median is reported (default 15).
    #[serde(default = "default_warm")]
    pub warm_reads: u32,
    /// Repetitions, overriding the experiment's.
    #[serde(default)]
    pub repetitions: Option<u32>,
    /// A real image the workload's layers sit on (`image = { archive = "…" }`).
    #[serde(default)]
    pub image: Option<super::ImageSource>,
    /// Drop the page cache, dentries and inodes before each cold read (where allowed;
    /// default true).
    #[serde(default = "default_drop")]
    pub drop_caches: bool,
    /// Rounds per store: each reads every depth, cold (after its own cache drop and
    /// reopen), then warm (default 1).
    #[serde(default)]
    pub rounds: Option<u32>,
}

fn default_drop() -> bool {
    true
}

fn default_depths() -> Vec<u32> {
    vec![1, 2, 4, 8, 16, 32, 64, 128]
}
fn default_file() -> Size {
    Size(4096)
}
fn default_warm() -> u32 {
    15
}

impl Workload for ReadDepth {
    fn header(&self) -> Header {
        Header::new(super::kind::READ_DEPTH, self.repetitions, self.rounds)
    }

    fn check_keys(&self) -> std::result::Result<(), (String, String)> {
        super::check_depths(&self.depths)?;
        if self.warm_reads == 0 {
            return Err(("warm_reads".into(), "at least one warm read".into()));
        }
        if self.file_size.0 > 64 << 20 {
            return Err(("file_size".into(), "at most 64MiB".into()));
        }
        Ok(())
    }

    fn shrink(&mut self) {
        self.depths.retain(|&d| d <= 16);
        if self.depths.is_empty() {
            self.depths.push(1);
        }
        self.file_size = Size(self.file_size.0.min(1 << 20));
        self.warm_reads = self.warm_reads.min(5);
        self.repetitions = Some(1);
        self.rounds = Some(1);
    }

    fn run(&self, ctx: &mut RunCtx<'_>) -> Result<Vec<Sample>> {
        let mut d = ctx.init()?;
        let depths = stackable_depths(ctx, self.kind(), &d, &self.depths);
        let setup = "read-depth set-up";
        let dir = lpath("/app").map_err(ctx.err(setup))?;
        let target = lpath("/app/target").map_err(ctx.err(setup))?;
        let image = super::import_image(ctx, &mut d, self.image.as_ref(), setup)?;
        // One stack per depth: a read through a shared stack would warm the layers a
        // shallower read meets.
        let mut tops = Vec::new();
        for &depth in &depths {
            let mut parent = image.clone();
            for n in 1..=depth {
                let id = lid(&format!("d{depth}-l{n}")).map_err(ctx.err(setup))?;
                // Layer 1 holds the file; the layers above change other things (nothing
                // the lookup of /app/target meets), as image layers mostly do.
                layer_with(&mut d, &id, parent.as_ref(), |d, l| {
                    if n == 1 {
                        mkdirs(d, l, &dir)?;
                        fill_file(d, l, &target, self.file_size.0, 1)?;
                    }
                    Ok(())
                })
                .map_err(ctx.err(setup))?;
                parent = Some(id);
            }
            tops.extend(parent.map(|top| (depth, top)));
        }
        // A layer made last (so that readahead from it reaches no measured file), read
        // first in every round, unmeasured: the first read after a cache drop also brings
        // back what every read needs (the program's code, the driver's own metadata), which
        // no depth should pay alone.
        let warmup = lid("warmup").map_err(ctx.err(setup))?;
        layer_with(&mut d, &warmup, image.as_ref(), |d, l| {
            mkdirs(d, l, &dir)?;
            fill_file(d, l, &target, self.file_size.0, 2)
        })
        .map_err(ctx.err(setup))?;
        let mut out = Vec::new();
        for round in 0..self.rounds() {
            // deepest first: the stacks were made shallowest first, and the kernel's
            // readahead only reads forward, so a read never brings in a later one's data
            for (depth, top) in tops.iter().rev() {
                d = self.cold_again(ctx, d, &warmup, &target)?;
                out.extend(
                    self.read_at(ctx, &mut d, *depth, top, &target)?
                        .into_iter()
                        .map(|s| s.in_round(round)),
                );
            }
        }
        Ok(out)
    }
}

impl ReadDepth {
    /// Makes the next read cold: the caches dropped (where this process may), the store
    /// opened again, then the warm-up layer read. Before every depth's read, not once per
    /// round: a read after another of the same round would find what that one brought in
    /// (a btrfs root-tree leaf holds the root items of about thirty subvolumes made one
    /// after another), and be colder or warmer by where its layers sit, not by its depth.
    fn cold_again(
        &self,
        ctx: &mut RunCtx<'_>,
        d: AnyDriver,
        warmup: &LayerId,
        target: &LayerPath,
    ) -> Result<AnyDriver> {
        // caches dropped before the store is opened again: opening reads the driver's
        // own metadata, which is part of opening, not of the read
        if self.drop_caches {
            if env::drop_caches() {
                ctx.clock.caches_dropped();
            } else {
                ctx.notes.push(
                    "read-depth: the page cache could not be dropped here (needs root): cold \
                     reads are the first on a reopened store, with the page cache warm"
                        .into(),
                );
            }
        }
        let mut d = ctx.reopen(d)?;
        d.read(warmup, target, 0, self.file_size.0)
            .map_err(ctx.err("read-depth warm-up read"))?;
        Ok(d)
    }

    /// The cold read of `target` through `top` (the first since the store was opened), then
    /// the warm reads: a cold and a warm sample.
    fn read_at(
        &self,
        ctx: &mut RunCtx<'_>,
        d: &mut AnyDriver,
        depth: u32,
        top: &LayerId,
        target: &LayerPath,
    ) -> Result<Vec<Sample>> {
        let len = self.file_size.0;
        let what = format!("read-depth depth {depth}");
        let mut times = Vec::with_capacity(self.warm_reads as usize);
        ctx.clock.begin();
        let cold = ctx.clock.op(d, |d| d.read(top, target, 0, len));
        let mut warm = Vec::with_capacity(self.warm_reads as usize);
        for _ in 0..self.warm_reads {
            warm.push(ctx.clock.op(d, |d| d.read(top, target, 0, len)));
        }
        ctx.clock.end();
        let cold = cold.map_err(ctx.err(&what))?;
        let mut last = None;
        for w in warm {
            let w = w.map_err(ctx.err(&what))?;
            times.push(w.time);
            last = Some(w.counts);
        }
        let param = format!("depth {depth}");
        let mut out = vec![Sample::new(
            &param,
            f64::from(depth),
            "cold",
            cold.counts,
            cold.time,
        )];
        if let Some(c) = last {
            out.push(Sample::new(
                &param,
                f64::from(depth),
                "warm",
                c,
                median(&mut times),
            ));
        }
        Ok(out)
    }
}
