//! `copy-up`: the first small write to a file inherited from the image, for a list of file
//! sizes. Overlay-style drivers copy the whole file up on this write; vfs has copied it
//! already when the container layer was made; block drivers copy one block.

use super::{fill_file, layer_with, lid, lpath, mkdirs, Header, RunCtx, Sample, Workload};
use crate::harness::error::Result;
use layerlab_core::size::{self, Size};
use layerlab_core::LayerDriver;
use serde::{Deserialize, Serialize};

/// `[[workload.copy-up]]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CopyUp {
    /// The sizes of the inherited files (default 4KiB, 64KiB, 1MiB, 16MiB, 256MiB).
    pub sizes: Vec<Size>,
    /// The bytes of the first write (default 1B).
    pub write: Size,
    /// Repetitions, overriding the experiment's.
    pub repetitions: Option<u32>,
    /// A real image the workload's layers sit on (`image = { archive = "…" }`).
    pub image: Option<super::ImageSource>,
    /// Rounds per store: each a new container layer on the same image, paying its own
    /// first writes (default 1).
    pub rounds: Option<u32>,
}

impl Default for CopyUp {
    fn default() -> Self {
        CopyUp {
            sizes: default_sizes(),
            write: Size(1),
            repetitions: None,
            image: None,
            rounds: None,
        }
    }
}

fn default_sizes() -> Vec<Size> {
    ["4KiB", "64KiB", "1MiB", "16MiB", "256MiB"]
        .iter()
        .filter_map(|s| Size::parse(s).ok())
        .collect()
}

impl Workload for CopyUp {
    fn header(&self) -> Header {
        Header::new(super::kind::COPY_UP, self.repetitions, self.rounds)
    }

    fn check_keys(&self) -> std::result::Result<(), (String, String)> {
        super::check_sizes(&self.sizes)?;
        if self.write.0 == 0 || self.write.0 > 1 << 20 {
            return Err(("write".into(), "the first write is 1B to 1MiB".into()));
        }
        Ok(())
    }

    fn shrink(&mut self) {
        self.sizes.retain(|s| s.0 <= 1 << 20);
        if self.sizes.is_empty() {
            self.sizes.push(Size(4096));
        }
        self.repetitions = Some(1);
        self.rounds = Some(1);
    }

    fn run(&self, ctx: &mut RunCtx<'_>) -> Result<Vec<Sample>> {
        let mut d = ctx.init()?;
        let base = lid("image").map_err(ctx.err("copy-up set-up"))?;
        let mut files = Vec::new();
        for (i, s) in self.sizes.iter().enumerate() {
            let dir = lpath(&format!("/data{i}")).map_err(ctx.err("copy-up set-up"))?;
            let file = lpath(&format!("/data{i}/file")).map_err(ctx.err("copy-up set-up"))?;
            files.push((dir, file, *s));
        }
        let image = super::import_image(ctx, &mut d, self.image.as_ref(), "copy-up set-up")?;
        layer_with(&mut d, &base, image.as_ref(), |d, l| {
            for (i, (dir, file, s)) in files.iter().enumerate() {
                mkdirs(d, l, dir)?;
                fill_file(d, l, file, s.0, i as u64)?;
            }
            Ok(())
        })
        .map_err(ctx.err("copy-up set-up"))?;
        // The image made durable before the first round (sync(2), as the snapshot workload
        // does): a copy-up's fsync commits the host's journal, which must first write out the
        // image's files written just before and still dirty (kernel-overlay's first 64 KiB
        // copy-up took 1,087 µs right after the set-up, 260 to 330 µs in the next rounds),
        // a cost of the image's writes, not of the copy-up.
        rustix::fs::sync();
        let data = vec![b'x'; self.write.0 as usize];
        let mut out = Vec::new();
        for round in 0..self.rounds() {
            let c = lid(&format!("container{round}")).map_err(ctx.err("copy-up set-up"))?;
            d.create_layer(&c, Some(&base))
                .map_err(ctx.err("copy-up set-up"))?;
            let mut timed = Vec::with_capacity(files.len());
            ctx.clock.begin();
            for (_, file, _) in &files {
                let t = ctx.clock.op(&mut d, |d| d.write(&c, file, 0, &data));
                timed.push(t);
            }
            ctx.clock.end();
            for ((_, _, s), t) in files.iter().zip(timed) {
                let t = t.map_err(ctx.err(&format!("copy-up {}", size::format(s.0))))?;
                out.push(
                    Sample::new(size::format(s.0), s.0 as f64, "", t.counts, t.time)
                        .in_round(round),
                );
            }
        }
        Ok(out)
    }
}
