//! `snapshot`: creating a child layer of an image of N files and M bytes. vfs pays the
//! full copy here; overlay2 makes an empty directory; snapshot drivers share blocks.
//! Reports the counts and time of `create_layer`, and (Derived `store_bytes`) the bytes the
//! new layer holds exclusively. The image is made durable (`sync`) before the children are
//! timed, so that their fsyncs do not also write out the image's files.

use super::{fill_file, layer_with, lid, lpath, mkdirs, Header, RunCtx, Sample, Workload};
use crate::harness::error::Result;
use layerlab_core::size::{self, Size};
use layerlab_core::LayerDriver;
use serde::{Deserialize, Serialize};

/// `[[workload.snapshot]]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Image sizes in bytes (default 1MiB, 16MiB, 128MiB).
    #[serde(default = "default_sizes")]
    pub sizes: Vec<Size>,
    /// Files per image (default 1000), in directories of 100.
    #[serde(default = "default_files")]
    pub files: u32,
    /// Repetitions, overriding the experiment's.
    #[serde(default)]
    pub repetitions: Option<u32>,
    /// Rounds per store: each a new child layer of every image (default 1).
    #[serde(default)]
    pub rounds: Option<u32>,
}

fn default_sizes() -> Vec<Size> {
    vec![Size(1 << 20), Size(16 << 20), Size(128 << 20)]
}
fn default_files() -> u32 {
    1000
}

impl Workload for Snapshot {
    fn header(&self) -> Header {
        Header::new(super::kind::SNAPSHOT, self.repetitions, self.rounds)
    }

    fn check_keys(&self) -> std::result::Result<(), (String, String)> {
        if self.sizes.is_empty() {
            return Err(("sizes".into(), "give at least one size".into()));
        }
        if self.files == 0 || self.files > 1_000_000 {
            return Err(("files".into(), "1 to 1000000 files".into()));
        }
        Ok(())
    }

    fn shrink(&mut self) {
        self.sizes.retain(|s| s.0 <= 1 << 20);
        if self.sizes.is_empty() {
            self.sizes.push(Size(256 << 10));
        }
        self.files = self.files.min(100);
        self.repetitions = Some(1);
        self.rounds = Some(1);
    }

    fn run(&self, ctx: &mut RunCtx<'_>) -> Result<Vec<Sample>> {
        let mut d = ctx.init()?;
        let setup = "snapshot set-up";
        let n = u64::from(self.files);
        let mut out = Vec::new();
        for (i, size) in self.sizes.iter().enumerate() {
            let img = lid(&format!("image{i}")).map_err(ctx.err(setup))?;
            let mut paths = Vec::new();
            for f in 0..n {
                let dir = lpath(&format!("/d{}", f / 100)).map_err(ctx.err(setup))?;
                let p = lpath(&format!("/d{}/f{f}", f / 100)).map_err(ctx.err(setup))?;
                let bytes = size.0 / n + u64::from(f < size.0 % n);
                paths.push((dir, p, bytes));
            }
            layer_with(&mut d, &img, None, |d, l| {
                for (f, (dir, p, bytes)) in paths.iter().enumerate() {
                    if f % 100 == 0 {
                        mkdirs(d, l, dir)?;
                    }
                    fill_file(d, l, p, *bytes, f as u64)?;
                }
                Ok(())
            })
            .map_err(ctx.err(setup))?;
            // The image made durable before a child is timed (sync(2): a kernel driver's
            // files are on its own mount): the creation's fsyncs would otherwise also write
            // out the image's files, written just before and still dirty (strace: overlay2's
            // create_layer spent 7.3 ms in its fsyncs after 1 MB of new files on the same
            // ext4, 2.0 ms after a sync), a cost of the image's writes, not of the snapshot.
            rustix::fs::sync();
            for round in 0..self.rounds() {
                let snap = lid(&format!("snap{i}-{round}")).map_err(ctx.err(setup))?;
                ctx.clock.begin();
                let t = ctx.clock.op(&mut d, |d| d.create_layer(&snap, Some(&img)));
                ctx.clock.end();
                let what = format!("snapshot of {}", size::format(size.0));
                let t = t.map_err(ctx.err(&what))?;
                let usage = d.usage(&snap).map_err(ctx.err(&what))?;
                out.push(
                    Sample::new(size::format(size.0), size.0 as f64, "", t.counts, t.time)
                        .derived("store_bytes", "bytes", usage.bytes as f64)
                        .in_round(round),
                );
            }
        }
        Ok(out)
    }
}
