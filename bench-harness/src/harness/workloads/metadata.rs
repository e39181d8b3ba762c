//! `metadata`: chmod, chown, rename and delete (a whiteout on union drivers) of a file
//! inherited from a layer deep in the stack. Overlay2 copies the whole file up for a chmod
//! unless `metacopy=on` (run it both ways via driver options in the config).
//!
//! Depth N: the file sits in layer 1 and the container is layer N (N = 1: the file is the
//! container's own).

use super::{
    fill_file, layer_with, lid, lpath, mkdirs, stackable_depths, Header, RunCtx, Sample, Workload,
};
use crate::harness::error::Result;
use layerlab_core::size::Size;
use layerlab_core::{LayerDriver, LayerId};
use layerlab_drivers::AnyDriver;
use serde::{Deserialize, Serialize};

/// `[[workload.metadata]]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataOps {
    /// Stack depths (default 2, 8, 32).
    pub depths: Vec<u32>,
    /// The size of each file operated on (default 1MiB: large enough that a full copy-up
    /// shows).
    pub file_size: Size,
    /// Repetitions, overriding the experiment's.
    pub repetitions: Option<u32>,
    /// Rounds per store: each a new container at every depth (default 1).
    pub rounds: Option<u32>,
}

impl Default for MetadataOps {
    fn default() -> Self {
        MetadataOps {
            depths: vec![2, 8, 32],
            file_size: Size(1 << 20),
            repetitions: None,
            rounds: None,
        }
    }
}

const OPS: [&str; 4] = ["chmod", "chown", "rename", "delete"];

impl Workload for MetadataOps {
    fn header(&self) -> Header {
        Header::new(super::kind::METADATA, self.repetitions, self.rounds)
    }

    fn check_keys(&self) -> std::result::Result<(), (String, String)> {
        super::check_depths(&self.depths)?;
        if self.file_size.0 > 1 << 30 {
            return Err(("file_size".into(), "at most 1GiB".into()));
        }
        Ok(())
    }

    fn shrink(&mut self) {
        super::shrink_depths(&mut self.depths, 2);
        self.file_size = Size(self.file_size.0.min(64 << 10));
        self.repetitions = Some(1);
        self.rounds = Some(1);
    }

    fn run(&self, ctx: &mut RunCtx<'_>) -> Result<Vec<Sample>> {
        let mut d = ctx.init()?;
        let depths = stackable_depths(ctx, self.kind(), &d, &self.depths);
        let Some(&deepest) = depths.last() else {
            return Ok(Vec::new());
        };
        let setup = "metadata set-up";
        let mut files = Vec::new();
        for op in OPS {
            let dir = lpath(&format!("/m/{op}")).map_err(ctx.err(setup))?;
            let f = lpath(&format!("/m/{op}/f")).map_err(ctx.err(setup))?;
            files.push((dir, f));
        }
        let renamed = lpath("/m/rename/g").map_err(ctx.err(setup))?;
        let fill = |d: &mut AnyDriver, l: &LayerId| -> layerlab_core::Result<()> {
            for (i, (dir, f)) in files.iter().enumerate() {
                mkdirs(d, l, dir)?;
                fill_file(d, l, f, self.file_size.0, i as u64)?;
            }
            Ok(())
        };
        // The image: layers 1 .. deepest-1, the files in layer 1.
        let etc = lpath("/etc").map_err(ctx.err(setup))?;
        let mut image: Vec<LayerId> = Vec::new();
        for n in 1..deepest {
            let id = lid(&format!("l{n}")).map_err(ctx.err(setup))?;
            let extra = lpath(&format!("/etc/layer{n}")).map_err(ctx.err(setup))?;
            let parent = image.last();
            layer_with(&mut d, &id, parent, |d, l| {
                if n == 1 {
                    fill(d, l)?;
                }
                mkdirs(d, l, &etc)?;
                fill_file(d, l, &extra, 32, u64::from(n))
            })
            .map_err(ctx.err(setup))?;
            image.push(id);
        }
        let mut out = Vec::new();
        for round in 0..self.rounds() {
            for &depth in &depths {
                let c = lid(&format!("c{depth}-{round}")).map_err(ctx.err(setup))?;
                let parent = if depth > 1 {
                    image.get(depth as usize - 2)
                } else {
                    None
                };
                d.create_layer(&c, parent).map_err(ctx.err(setup))?;
                if depth == 1 {
                    fill(&mut d, &c).map_err(ctx.err(setup))?;
                }
                let (f0, f1, f2, f3) = (&files[0].1, &files[1].1, &files[2].1, &files[3].1);
                ctx.clock.begin();
                let r = [
                    ctx.clock.op(&mut d, |d| d.chmod(&c, f0, 0o600)),
                    ctx.clock.op(&mut d, |d| d.chown(&c, f1, 1000, 1000)),
                    ctx.clock.op(&mut d, |d| d.rename(&c, f2, &renamed)),
                    ctx.clock.op(&mut d, |d| d.unlink(&c, f3)),
                ];
                ctx.clock.end();
                let param = format!("depth {depth}");
                for (op, t) in OPS.iter().zip(r) {
                    let t = t.map_err(ctx.err(&format!("metadata {op} at depth {depth}")))?;
                    out.push(
                        Sample::new(&param, f64::from(depth), op, t.counts, t.time).in_round(round),
                    );
                }
            }
        }
        Ok(out)
    }
}
