//! `mixed`: a generated image and a seeded mix of operations with skewed access, reporting
//! operations per second (Measured `ops_per_s`) and the Meter totals (Counted).
//!
//! The image: `layers` layers of `files / layers` files each, in `dirs` directories, some
//! files of upper layers replacing lower ones (5%). File sizes follow a log-normal-like
//! distribution (sigma about 2 in natural log units) around `file_size_median`, capped at
//! `file_size_max`; the defaults follow published Docker Hub statistics (a median image
//! has about 8 layers and 1,000 files, the median file a few KiB).
//!
//! The operations are generated before the measured part, from the seed alone, by
//! simulating the namespace (a deleted file is not read again). Which file an operation
//! touches is drawn from a Zipf-like law over a seeded popularity order (`zipf` is the
//! exponent; 0 is uniform).

use super::SeededRng;
use super::{fill_file, layer_with, lid, lpath, mkdirs, pattern, Header, RunCtx, Sample, Workload};
use crate::harness::error::Result;
use layerlab_core::size::Size;
use layerlab_core::{LayerDriver, LayerId, LayerPath};
use layerlab_drivers::AnyDriver;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The weights of the operation mix (relative; 0 leaves an operation out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Read up to 64 KiB from the start of a file.
    pub read: u32,
    /// Write 4 KiB inside a file (copy-up on the first write to an image file).
    pub write: u32,
    /// Append 512 bytes.
    pub append: u32,
    /// Create a new file with some content.
    pub create: u32,
    /// Delete a file (a whiteout for an image file on union drivers).
    pub delete: u32,
    /// stat a file.
    pub stat: u32,
    /// List a directory.
    pub readdir: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            read: 40,
            write: 10,
            append: 5,
            create: 5,
            delete: 3,
            stat: 30,
            readdir: 7,
        }
    }
}

/// `[[workload.mixed]]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mixed {
    /// Image layers (default 8).
    pub layers: u32,
    /// Image files in all (default 1000).
    pub files: u32,
    /// Directories (default 40).
    pub dirs: u32,
    /// The median file size (default 4KiB).
    pub file_size_median: Size,
    /// The largest file (default 4MiB).
    pub file_size_max: Size,
    /// Operations in the measured part (default 2000).
    pub operations: u32,
    /// The skew of the access law (default 1.0; 0 is uniform).
    pub zipf: f64,
    /// The operation mix.
    pub weights: Weights,
    /// Repetitions, overriding the experiment's.
    pub repetitions: Option<u32>,
    /// A real image the workload's layers sit on (`image = { archive = "…" }`).
    pub image: Option<super::ImageSource>,
    /// Rounds per store: each a new container on the same image, running the same
    /// operations (default 1).
    pub rounds: Option<u32>,
}

impl Default for Mixed {
    fn default() -> Self {
        Mixed {
            layers: 8,
            files: 1000,
            dirs: 40,
            file_size_median: Size(4096),
            file_size_max: Size(4 << 20),
            operations: 2000,
            zipf: 1.0,
            weights: Weights::default(),
            repetitions: None,
            image: None,
            rounds: None,
        }
    }
}

/// Size buckets around a median of 4 KiB: (low, high, weight per mille). A factor of 4 per
/// bucket, weights from a normal law of the log size with sigma about 2.1.
const BUCKETS: &[(u64, u64, u32)] = &[
    (1, 128, 50),
    (128, 512, 110),
    (512, 2048, 210),
    (2048, 8192, 260),
    (8192, 32768, 210),
    (32768, 131_072, 110),
    (131_072, 524_288, 40),
    (524_288, 2_097_152, 10),
    (2_097_152, 8_388_608, 2),
];

fn file_size(rng: &mut SeededRng, median: u64, max: u64) -> u64 {
    let total: u32 = BUCKETS.iter().map(|b| b.2).sum();
    let mut pick = rng.random_range(0..total);
    let mut bucket = (2048, 8192);
    for &(lo, hi, w) in BUCKETS {
        if pick < w {
            bucket = (lo, hi);
            break;
        }
        pick -= w;
    }
    let scale = |v: u64| (u128::from(v) * u128::from(median.max(1)) / 4096).max(1) as u64;
    let (lo, hi) = (scale(bucket.0), scale(bucket.1).max(scale(bucket.0) + 1));
    rng.random_range(lo..hi).min(max)
}

/// A Zipf-like sampler over ranks 0..n (cumulative weights 1/(k+1)^s).
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        let cdf = (0..n.max(1))
            .map(|k| {
                let w = if s == 0.0 {
                    1.0
                } else if s == 1.0 {
                    1.0 / (k as f64 + 1.0)
                } else {
                    1.0 / (k as f64 + 1.0).powf(s)
                };
                acc += w;
                acc
            })
            .collect();
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut SeededRng, live: usize) -> usize {
        let total = self.cdf.last().copied().unwrap_or(1.0);
        let u = rng.random::<f64>() * total;
        let rank = self.cdf.partition_point(|&c| c <= u);
        rank % live.max(1)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Read(LayerPath, u64),
    Write(LayerPath, u64),
    Append(LayerPath),
    Create(LayerPath, usize),
    Delete(LayerPath),
    Stat(LayerPath),
    Readdir(LayerPath),
}

const WRITE: usize = 4096;
const APPEND: usize = 512;
const READ: u64 = 64 << 10;
const CREATE_MAX: u64 = 64 << 10;

impl Mixed {
    /// Runs the operations in container `c`, timed: their counts, time and rate.
    fn measure(
        &self,
        ctx: &mut RunCtx<'_>,
        d: &mut AnyDriver,
        c: &LayerId,
        ops: &[Op],
    ) -> Result<Sample> {
        let buf = pattern(CREATE_MAX as usize, 99);
        let mut timed = Vec::with_capacity(ops.len());
        ctx.clock.begin();
        for op in ops {
            let t = ctx.clock.op(d, |d| match op {
                Op::Read(p, len) => d.read(c, p, 0, *len).map(|_| ()),
                Op::Write(p, off) => d.write(c, p, *off, &buf[..WRITE]),
                Op::Append(p) => d.append(c, p, &buf[..APPEND]),
                Op::Create(p, len) => {
                    d.create(c, p, 0o644)?;
                    d.write(c, p, 0, &buf[..*len])
                }
                Op::Delete(p) => d.unlink(c, p),
                Op::Stat(p) => d.stat(c, p).map(|_| ()),
                Op::Readdir(p) => d.readdir(c, p).map(|_| ()),
            });
            timed.push(t.map(|t| (t.counts, t.time)));
        }
        ctx.clock.end();
        let mut total = layerlab_core::Counts::default();
        let mut time = Duration::ZERO;
        for (i, t) in timed.into_iter().enumerate() {
            let (c, dt) = t.map_err(ctx.err(&format!("mixed: operation {i}")))?;
            total.add(&c);
            time += dt;
        }
        let rate = if time.is_zero() {
            0.0
        } else {
            ops.len() as f64 / time.as_secs_f64()
        };
        Ok(Sample::new(self.label(), 0.0, "", total, time).measured("ops_per_s", "ops/s", rate))
    }

    fn label(&self) -> String {
        format!(
            "{} layers, {} files, {} ops",
            self.layers, self.files, self.operations
        )
    }
}

type Image = Vec<(LayerId, Vec<(u32, LayerPath, u64)>)>;

impl Workload for Mixed {
    fn header(&self) -> Header {
        Header::new(super::kind::MIXED, self.repetitions, self.rounds)
    }

    fn check_keys(&self) -> std::result::Result<(), (String, String)> {
        if self.layers == 0 || self.layers > 125 {
            return Err(("layers".into(), "1 to 125 layers".into()));
        }
        if self.files < self.layers || self.files > 1_000_000 {
            return Err((
                "files".into(),
                "at least one file per layer, at most 1000000".into(),
            ));
        }
        if self.dirs == 0 {
            return Err(("dirs".into(), "at least one directory".into()));
        }
        if !(0.0..=4.0).contains(&self.zipf) {
            return Err(("zipf".into(), "an exponent from 0 to 4".into()));
        }
        let w = &self.weights;
        if w.read + w.write + w.append + w.create + w.delete + w.stat + w.readdir == 0 {
            return Err(("weights".into(), "at least one weight above 0".into()));
        }
        Ok(())
    }

    fn shrink(&mut self) {
        self.layers = self.layers.min(4);
        self.files = self.files.clamp(self.layers, 200);
        self.dirs = self.dirs.min(10);
        self.operations = self.operations.min(300);
        self.file_size_max = Size(self.file_size_max.0.min(64 << 10));
        self.repetitions = Some(1);
        self.rounds = Some(1);
    }

    fn run(&self, ctx: &mut RunCtx<'_>) -> Result<Vec<Sample>> {
        let setup = "mixed set-up";
        let mut rng = SeededRng::seed_from_u64(ctx.seed);
        let (image, live, dirs) = self.generate(&mut rng).map_err(ctx.err(setup))?;
        let ops = self
            .operations(&mut rng, live, &dirs)
            .map_err(ctx.err(setup))?;
        let mut d = ctx.init()?;
        let mut parent: Option<LayerId> =
            super::import_image(ctx, &mut d, self.image.as_ref(), setup)?;
        for (n, (id, files)) in image.iter().enumerate() {
            layer_with(&mut d, id, parent.as_ref(), |d, l| {
                if n == 0 {
                    for dir in &dirs {
                        mkdirs(d, l, dir)?;
                    }
                }
                for (salt, p, size) in files {
                    if let Some(dir) = p.parent() {
                        mkdirs(d, l, &dir)?;
                    }
                    match d.stat(l, p) {
                        Ok(_) => {
                            d.truncate(l, p, 0)?;
                            let buf = pattern(*size as usize, u64::from(*salt));
                            if !buf.is_empty() {
                                d.write(l, p, 0, &buf)?;
                            }
                        }
                        Err(_) => fill_file(d, l, p, *size, u64::from(*salt))?,
                    }
                }
                Ok(())
            })
            .map_err(ctx.err(setup))?;
            parent = Some(id.clone());
        }
        let mut out = Vec::new();
        for round in 0..self.rounds() {
            let c = lid(&format!("container{round}")).map_err(ctx.err(setup))?;
            d.create_layer(&c, parent.as_ref())
                .map_err(ctx.err(setup))?;
            out.push(self.measure(ctx, &mut d, &c, &ops)?.in_round(round));
        }
        Ok(out)
    }
}

impl Mixed {
    /// The image (layers of (salt, path, size)), the live files in popularity order, and
    /// the directories.
    #[allow(clippy::type_complexity)]
    fn generate(
        &self,
        rng: &mut SeededRng,
    ) -> layerlab_core::Result<(Image, Vec<(LayerPath, u64)>, Vec<LayerPath>)> {
        let dirs: Vec<LayerPath> = (0..self.dirs)
            .map(|i| lpath(&format!("/d{i}")))
            .collect::<layerlab_core::Result<_>>()?;
        let per_layer = self.files / self.layers;
        let mut live: Vec<(LayerPath, u64)> = Vec::new();
        let mut image = Vec::new();
        let mut salt = 0u32;
        for l in 0..self.layers {
            let id = lid(&format!("layer{l}"))?;
            let mut files = Vec::new();
            for i in 0..per_layer {
                let size = file_size(rng, self.file_size_median.0, self.file_size_max.0);
                salt += 1;
                if l > 0 && !live.is_empty() && rng.random_range(0..100u32) < 5 {
                    let k = rng.random_range(0..live.len());
                    let p = live[k].0.clone();
                    live[k].1 = size;
                    files.push((salt, p, size));
                    continue;
                }
                let dir = rng.random_range(0..self.dirs);
                let p = lpath(&format!("/d{dir}/f{l}_{i}"))?;
                live.push((p.clone(), size));
                files.push((salt, p, size));
            }
            image.push((id, files));
        }
        // A seeded popularity order.
        for i in (1..live.len()).rev() {
            let j = rng.random_range(0..=i);
            live.swap(i, j);
        }
        Ok((image, live, dirs))
    }

    fn operations(
        &self,
        rng: &mut SeededRng,
        mut live: Vec<(LayerPath, u64)>,
        dirs: &[LayerPath],
    ) -> layerlab_core::Result<Vec<Op>> {
        let zipf = Zipf::new(live.len(), self.zipf);
        let w = &self.weights;
        let table = [
            w.read, w.write, w.append, w.create, w.delete, w.stat, w.readdir,
        ];
        let total: u32 = table.iter().sum();
        let mut ops = Vec::with_capacity(self.operations as usize);
        let mut created = 0u32;
        for _ in 0..self.operations {
            let mut pick = rng.random_range(0..total.max(1));
            let mut kind = 0;
            for (k, &wk) in table.iter().enumerate() {
                if pick < wk {
                    kind = k;
                    break;
                }
                pick -= wk;
            }
            if live.is_empty() && kind != 6 {
                kind = 3;
            }
            let i = zipf.sample(rng, live.len());
            let op = match kind {
                0 => Op::Read(live[i].0.clone(), live[i].1.min(READ)),
                1 => {
                    let off = rng.random_range(0..=live[i].1);
                    live[i].1 = live[i].1.max(off + WRITE as u64);
                    Op::Write(live[i].0.clone(), off)
                }
                2 => {
                    live[i].1 += APPEND as u64;
                    Op::Append(live[i].0.clone())
                }
                3 => {
                    let dir = rng.random_range(0..dirs.len());
                    let size = file_size(rng, self.file_size_median.0, CREATE_MAX);
                    let p = lpath(&format!("/d{dir}/new{created}"))?;
                    created += 1;
                    live.push((p.clone(), size));
                    Op::Create(p, size as usize)
                }
                4 => Op::Delete(live.remove(i).0),
                5 => Op::Stat(live[i].0.clone()),
                _ => Op::Readdir(dirs[rng.random_range(0..dirs.len())].clone()),
            };
            ops.push(op);
        }
        Ok(ops)
    }
}
