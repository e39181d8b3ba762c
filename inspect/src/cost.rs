//! What an image costs on each driver, which no other tool says: the image is imported
//! into a scratch store of every driver (its layers written from the store as layer
//! tars and applied, layer by layer), then, side by side:
//!
//! - the space the image takes there: the disk space (allocated blocks) the store's files
//!   gained by the import, measured on the host, so that every driver is measured the
//!   same way (a vfs layer is a full copy, a union layer only its own files, a pool
//!   driver its blocks and metadata);
//! - creating a container layer on it (Meter counts, measured time, the disk space it
//!   takes at once);
//! - the copy-up a container pays on its first write (one byte at offset 0) to each of
//!   the image's largest files (Meter counts, measured time, and the disk space all the
//!   writes took).
//!
//! Counts come from the drivers' Meters (deterministic); times and disk space are
//! measured here, around the driver calls only, and labelled measured. Drivers this
//! machine cannot run are reported with the reason; the kernel reference drivers count
//! nothing (measured only).

use crate::error::{InspectError, Result};
use layerlab_core::{ops, Counts, FileKind, IoContext, LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, DriverInfo, Options};
use layerlab_oci::{DiffOptions, ImageRecord, Limits};
use serde::Serialize;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The id of the container layer made in each scratch store.
pub const CONTAINER: &str = "container";

/// The first write to one file, in a container layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyUp {
    /// The file.
    pub path: String,
    /// Its size in the image.
    pub size: u64,
    /// What the write counted (`None` for a driver that counts nothing).
    pub counts: Option<Counts>,
    /// Measured time of the write, microseconds.
    pub micros: u64,
}

/// One driver's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverCost {
    /// The driver.
    pub driver: String,
    /// Why it was not measured (not available here).
    pub skipped: Option<String>,
    /// Disk space the import added to the store (allocated blocks, measured).
    pub image_bytes: u64,
    /// Measured time of the import, microseconds.
    pub import_micros: u64,
    /// What creating the container layer counted.
    pub create_counts: Option<Counts>,
    /// Measured time of creating it, microseconds.
    pub create_micros: u64,
    /// Disk space creating the container layer added (measured).
    pub container_bytes: u64,
    /// The first write to each of the largest files, largest first.
    pub copy_up: Vec<CopyUp>,
    /// Disk space all those writes added (measured).
    pub copy_up_disk_bytes: u64,
}

impl DriverCost {
    fn skipped(driver: &str, why: String) -> DriverCost {
        DriverCost {
            driver: driver.to_string(),
            skipped: Some(why),
            image_bytes: 0,
            import_micros: 0,
            create_counts: None,
            create_micros: 0,
            container_bytes: 0,
            copy_up: Vec::new(),
            copy_up_disk_bytes: 0,
        }
    }

    /// Bytes copied by all the first writes (`None` when the driver counts nothing).
    pub fn copy_up_bytes(&self) -> Option<u64> {
        self.copy_up
            .iter()
            .map(|c| c.counts.map(|k| k.bytes_copied))
            .sum()
    }

    /// Measured time of all the first writes, microseconds.
    pub fn copy_up_micros(&self) -> u64 {
        self.copy_up.iter().map(|c| c.micros).sum()
    }
}

fn layer_id(image: &ImageRecord, id: &str) -> Result<LayerId> {
    LayerId::new(id).map_err(|reason| InspectError::Image {
        image: image.name.clone(),
        reason: format!("layer '{id}': {reason}"),
    })
}

fn micros(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The `n` largest files of the image's view, largest first (ties by path).
pub fn largest_files<D: LayerDriver + ?Sized>(
    d: &mut D,
    image: &ImageRecord,
    n: usize,
) -> Result<Vec<(LayerPath, u64)>> {
    let top = layer_id(image, &image.top_layer)?;
    let mut files = Vec::new();
    for (path, kind) in ops::walk(d, &top, &LayerPath::root())? {
        if kind == FileKind::File {
            let size = d.stat(&top, &path)?.size;
            files.push((path, size));
        }
    }
    files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    files.truncate(n);
    Ok(files)
}

/// Writes every layer of the image as a layer tar into `dir`, bottom first.
fn export_layers<D: LayerDriver + ?Sized>(
    d: &mut D,
    image: &ImageRecord,
    dir: &Path,
) -> Result<Vec<(LayerId, PathBuf)>> {
    let opts = DiffOptions {
        gzip: false,
        ..DiffOptions::default()
    };
    let mut out = Vec::new();
    for (i, l) in image.layers.iter().enumerate() {
        let id = layer_id(image, &l.chain_id)?;
        let path = dir.join(format!("layer-{i}.tar"));
        let f = File::create(&path).at(&path)?;
        let (w, _) = layerlab_oci::write_diff(d, &id, BufWriter::new(f), &opts)?;
        w.into_inner()
            .map_err(|e| e.into_error())
            .at(&path)?
            .sync_all()
            .at(&path)?;
        out.push((id, path));
    }
    Ok(out)
}

/// Disk space (allocated blocks) of the files under `dir`, on `dir`'s filesystem only
/// (mounts below it are not entered), symlinks not followed.
pub fn disk_bytes(dir: &Path) -> Result<u64> {
    fn walk(p: &Path, dev: u64, total: &mut u64) -> Result<()> {
        let md = std::fs::symlink_metadata(p).at(p)?;
        if md.dev() != dev {
            return Ok(());
        }
        *total += md.blocks() * 512;
        if md.is_dir() {
            for e in std::fs::read_dir(p).at(p)? {
                walk(&e.at(p)?.path(), dev, total)?;
            }
        }
        Ok(())
    }
    let dev = std::fs::symlink_metadata(dir).at(dir)?.dev();
    let mut total = 0;
    walk(dir, dev, &mut total)?;
    Ok(total)
}

fn measure(
    info: &DriverInfo,
    dir: &Path,
    tars: &[(LayerId, PathBuf)],
    files: &[(LayerPath, u64)],
) -> Result<DriverCost> {
    let mut d = registry::init(info.name, dir, Options::new())?;
    let counted = |c: Counts| info.metered.then_some(c);
    let empty = disk_bytes(dir)?;
    let t = Instant::now();
    let mut parent: Option<&LayerId> = None;
    for (id, tar) in tars {
        d.create_layer(id, parent)?;
        let f = File::open(tar).at(tar)?;
        let name = tar.display().to_string();
        layerlab_oci::apply_archive(&mut d, id, &name, BufReader::new(f), &Limits::default())?;
        d.commit(id)?;
        parent = Some(id);
    }
    let import_micros = micros(t);
    let imported = disk_bytes(dir)?;
    let ctr = LayerId::new(CONTAINER).map_err(|reason| InspectError::Image {
        image: CONTAINER.into(),
        reason,
    })?;
    let before = d.meter().counts;
    let t = Instant::now();
    d.create_layer(&ctr, parent)?;
    let create_micros = micros(t);
    let create_counts = counted(d.meter().counts.since(&before));
    let created = disk_bytes(dir)?;
    let mut copy_up = Vec::new();
    for (path, size) in files {
        let before = d.meter().counts;
        let t = Instant::now();
        d.write(&ctr, path, 0, b"x")?;
        let micros = micros(t);
        copy_up.push(CopyUp {
            path: path.to_string(),
            size: *size,
            counts: counted(d.meter().counts.since(&before)),
            micros,
        });
    }
    Ok(DriverCost {
        driver: info.name.to_string(),
        skipped: None,
        image_bytes: imported.saturating_sub(empty),
        import_micros,
        create_counts,
        create_micros,
        container_bytes: created.saturating_sub(imported),
        copy_up,
        copy_up_disk_bytes: disk_bytes(dir)?.saturating_sub(created),
    })
}

/// The image's cost on each of `drivers`, measured in scratch stores under `scratch`
/// (removed again), with the first write to its `largest` largest files.
pub fn driver_costs<D: LayerDriver + ?Sized>(
    d: &mut D,
    image: &ImageRecord,
    drivers: &[&DriverInfo],
    scratch: &Path,
    largest: usize,
) -> Result<Vec<DriverCost>> {
    let work = tempfile::Builder::new()
        .prefix("layerlab-cost-")
        .tempdir_in(scratch)
        .at(scratch)?;
    let tars = export_layers(d, image, work.path())?;
    let files = largest_files(d, image, largest)?;
    let mut out = Vec::new();
    for info in drivers {
        if let Err(why) = info.availability() {
            out.push(DriverCost::skipped(info.name, why));
            continue;
        }
        let dir = work.path().join(info.name);
        out.push(measure(info, &dir, &tars, &files)?);
    }
    Ok(out)
}
