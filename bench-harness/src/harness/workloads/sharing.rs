//! `sharing`: K containers started on one image, each reading the same files and writing a
//! little. Reports, against K, the space the store holds (the metric defined in
//! [`crate::harness::space`]: Measured `disk_bytes`, image included, with Derived
//! `exclusive_bytes` and `logical_bytes` and Measured `shared_bytes` beside it) and the
//! page-cache memory the reads need (Derived `page_cache_bytes`).
//!
//! Page cache: the driver says in `Semantics::page_cache` whether containers share the
//! cached pages of lower files (`SharedLowerFiles`: overlay2, aufs, zfs clones) or each
//! layer caches its own copy (`PerLayer`: devicemapper, btrfs snapshots, vfs copies). A
//! file a container changed is its own either way (found in the container's changeset).

use super::{fill_file, layer_with, lid, lpath, mkdirs, Header, RunCtx, Sample, Workload};
use crate::harness::error::Result;
use crate::harness::space;
use layerlab_core::size::Size;
use layerlab_core::{LayerDriver, LayerId, LayerPath, PageCache, Semantics};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// `[[workload.sharing]]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sharing {
    /// Container counts to report (default 1, 2, 4, 8, 16).
    pub containers: Vec<u32>,
    /// Files of the image (default 200).
    pub files: u32,
    /// Bytes of the image (default 16MiB).
    pub bytes: Size,
    /// Files each container reads, whole (default 50; the same for every container).
    pub reads: u32,
    /// Bytes each container appends to a small image file (default 4KiB).
    pub write: Size,
    /// Repetitions, overriding the experiment's.
    pub repetitions: Option<u32>,
}

impl Default for Sharing {
    fn default() -> Self {
        Sharing {
            containers: vec![1, 2, 4, 8, 16],
            files: 200,
            bytes: Size(16 << 20),
            reads: 50,
            write: Size(4096),
            repetitions: None,
        }
    }
}

const PAGE: u64 = 4096;

/// The small image file every container appends to.
const STATE_BYTES: u64 = 512;

fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE) * PAGE
}

/// True when the driver's containers share the cached pages of files they inherit.
pub fn shares_lower_pages(s: &Semantics) -> bool {
    matches!(s.page_cache, PageCache::SharedLowerFiles)
}

impl Workload for Sharing {
    fn header(&self) -> Header {
        Header::new(super::kind::SHARING, self.repetitions, None)
    }

    fn check_keys(&self) -> std::result::Result<(), (String, String)> {
        if self.containers.is_empty() || self.containers.contains(&0) {
            return Err((
                "containers".into(),
                "give container counts of 1 or more".into(),
            ));
        }
        if self.containers.iter().any(|&k| k > 1000) {
            return Err(("containers".into(), "at most 1000 containers".into()));
        }
        if self.files == 0 || self.files > 100_000 {
            return Err(("files".into(), "1 to 100000 files".into()));
        }
        if self.reads > self.files {
            return Err((
                "reads".into(),
                "cannot read more files than the image has".into(),
            ));
        }
        Ok(())
    }

    fn shrink(&mut self) {
        self.containers.retain(|&k| k <= 4);
        if self.containers.is_empty() {
            self.containers.push(1);
        }
        self.files = self.files.min(50);
        self.reads = self.reads.min(self.files).min(20);
        self.bytes = Size(self.bytes.0.min(1 << 20));
        self.repetitions = Some(1);
    }

    fn run(&self, ctx: &mut RunCtx<'_>) -> Result<Vec<Sample>> {
        let mut d = ctx.init()?;
        let empty = space::disk_bytes(&ctx.root)?;
        let setup = "sharing set-up";
        let shared = shares_lower_pages(&d.semantics());
        let img = lid("image").map_err(ctx.err(setup))?;
        let n = u64::from(self.files);
        let mut files: Vec<(LayerPath, u64)> = Vec::new();
        for f in 0..n {
            let p = lpath(&format!("/data/d{}/f{f}", f / 100)).map_err(ctx.err(setup))?;
            files.push((p, self.bytes.0 / n + u64::from(f < self.bytes.0 % n)));
        }
        let state = lpath("/etc/state").map_err(ctx.err(setup))?;
        layer_with(&mut d, &img, None, |d, l| {
            for (f, (p, size)) in files.iter().enumerate() {
                if f % 100 == 0 {
                    if let Some(parent) = p.parent() {
                        mkdirs(d, l, &parent)?;
                    }
                }
                fill_file(d, l, p, *size, f as u64)?;
            }
            if let Some(etc) = state.parent() {
                mkdirs(d, l, &etc)?;
            }
            fill_file(d, l, &state, STATE_BYTES, 7)
        })
        .map_err(ctx.err(setup))?;
        let reads = &files[..self.reads as usize];
        let data = vec![b'w'; self.write.0 as usize];
        let wanted: BTreeSet<u32> = self.containers.iter().copied().collect();
        let kmax = wanted.last().copied().unwrap_or(0);
        let mut total = layerlab_core::Counts::default();
        let mut time = Duration::ZERO;
        let mut started: Vec<LayerId> = Vec::new();
        let mut out = Vec::new();
        for k in 1..=kmax {
            let c = lid(&format!("c{k}")).map_err(ctx.err(setup))?;
            let what = format!("sharing: container {k}");
            ctx.clock.begin();
            let mut r = Vec::with_capacity(reads.len() + 2);
            r.push(
                ctx.clock
                    .op(&mut d, |d| d.create_layer(&c, Some(&img)).map(|_| 0)),
            );
            for (p, size) in reads {
                r.push(
                    ctx.clock
                        .op(&mut d, |d| d.read(&c, p, 0, *size).map(|b| b.len())),
                );
            }
            r.push(
                ctx.clock
                    .op(&mut d, |d| d.append(&c, &state, &data).map(|_| 0)),
            );
            ctx.clock.end();
            for t in r {
                let t = t.map_err(ctx.err(&what))?;
                total.add(&t.counts);
                time += t.time;
            }
            started.push(c);
            if !wanted.contains(&k) {
                continue;
            }
            // Space and cache figures, outside the measured part.
            let mut exclusive = d.usage(&img).map_err(ctx.err(&what))?.bytes;
            let mut cache: BTreeSet<(Option<&LayerId>, &LayerPath)> = BTreeSet::new();
            let mut cache_bytes = 0;
            for c in &started {
                exclusive += d.usage(c).map_err(ctx.err(&what))?.bytes;
                let own: BTreeSet<LayerPath> = if shared {
                    d.changes(c)
                        .map_err(ctx.err(&what))?
                        .into_iter()
                        .map(|ch| ch.path)
                        .collect()
                } else {
                    BTreeSet::new()
                };
                for (p, size) in reads {
                    let key = if shared && !own.contains(p) {
                        (None, p)
                    } else {
                        (Some(c), p)
                    };
                    if cache.insert(key) {
                        cache_bytes += pages(*size);
                    }
                }
            }
            let disk = space::disk_bytes(&ctx.root)?.saturating_sub(empty);
            // every container sees the image (its files and the state file) and its write
            let logical = u64::from(k) * (self.bytes.0 + STATE_BYTES + self.write.0);
            out.push(
                Sample::new(containers(k), f64::from(k), "", total, time)
                    .measured("disk_bytes", "bytes", disk as f64)
                    .derived("exclusive_bytes", "bytes", exclusive as f64)
                    .derived("logical_bytes", "bytes", logical as f64)
                    .measured(
                        "shared_bytes",
                        "bytes",
                        disk.saturating_sub(exclusive) as f64,
                    )
                    .derived("page_cache_bytes", "bytes", cache_bytes as f64),
            );
        }
        Ok(out)
    }
}

/// `1 container`, `8 containers`.
fn containers(k: u32) -> String {
    if k == 1 {
        "1 container".into()
    } else {
        format!("{k} containers")
    }
}
