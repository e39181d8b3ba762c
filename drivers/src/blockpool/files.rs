//! The two files of a block pool under its directory, a data file (named by the driver)
//! and the metadata log ([`META_FILE`]), made and opened the one way both block drivers
//! (devicemapper's thin pool, the cow engine of btrfs and zfs) make and open them: for
//! use, refused when the checkpoint's reference counts disagree with the state they
//! count; for `fsck`, examined, reported, and loaded whatever the counts say.

use super::metalog::{check_examined, MetaFormat, MetaLog, Opened, RUN_FSCK};
use crate::fsck::CheckReport;
use layerlab_core::{Error, IoContext, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The name of a pool's metadata file in its directory.
pub const META_FILE: &str = "metadata";

/// `Error::Corrupt` for the file at `path`.
pub(crate) fn corrupt(path: &Path, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Makes the directory `dir` and a new, empty data file `name` in it.
pub fn create_data(dir: &Path, name: &str) -> Result<(File, PathBuf)> {
    std::fs::create_dir_all(dir).at(dir)?;
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .at(&path)?;
    Ok((file, path))
}

/// Opens the data file `name` in `dir`, for reading (and writing with `writable`).
pub fn open_data(dir: &Path, name: &str, writable: bool) -> Result<(File, PathBuf)> {
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(writable)
        .open(&path)
        .at(&path)?;
    Ok((file, path))
}

/// Opens the metadata log in `dir` (of `format`) and loads the pool from it with `load`, which returns the pool and whether the
/// checkpoint's reference counts agree with those it recounted from `counted_from` ("the
/// trees", "the maps"); a pool whose counts disagree is refused as corrupt.
pub fn open_checked<P>(
    dir: &Path,
    format: MetaFormat,
    writable: bool,
    counted_from: &str,
    load: impl FnOnce(Opened) -> Result<(P, bool)>,
) -> Result<P> {
    let meta = dir.join(META_FILE);
    let opened = MetaLog::open(&meta, format, writable)?;
    let (pool, refs_agree) = load(opened)?;
    if !refs_agree {
        return Err(corrupt(
            &meta,
            format!("checkpoint reference counts disagree with {counted_from}: {RUN_FSCK}"),
        ));
    }
    Ok(pool)
}

/// A pool as `fsck` read it.
#[derive(Debug)]
pub struct Checked<P> {
    /// The pool, in the state replay reached.
    pub pool: P,
    /// The checkpoint's reference counts agree with those recounted.
    pub refs_agree: bool,
    /// The log is damaged before its end: the state read is older than the committed one.
    pub partial: bool,
    /// Repairs may be made: asked for, and the state read is the committed one (nothing
    /// is rebuilt or punched from an older state; it is still walked and checked).
    pub repair: bool,
    /// The metadata file, as findings name it.
    pub meta: String,
}

/// `fsck`'s reading of the pool in `dir`: the metadata file examined and what it shows
/// reported (superblock slots, the log's end; see [`check_examined`]), then the pool
/// loaded with `load` (given the state replay reaches and whether it may write).
/// `None` when the file or the pool cannot be read at all (reported uncorrected).
pub fn examine_and_load<P>(
    dir: &Path,
    format: MetaFormat,
    repair: bool,
    report: &mut CheckReport,
    load: impl FnOnce(Opened, bool) -> Result<(P, bool)>,
) -> Result<Option<Checked<P>>> {
    let meta = dir.join(META_FILE).display().to_string();
    let ex = match MetaLog::examine(&dir.join(META_FILE), format, repair) {
        Ok(ex) => ex,
        Err(e) => {
            report.uncorrected(None, meta, e.to_string());
            return Ok(None);
        }
    };
    check_examined(&ex, repair, report)?;
    let partial = ex.partial();
    let repair = repair && !partial;
    match load(ex.opened, repair) {
        Ok((pool, refs_agree)) => Ok(Some(Checked {
            pool,
            refs_agree,
            partial,
            repair,
            meta,
        })),
        Err(e) => {
            report.uncorrected(None, meta, e.to_string());
            Ok(None)
        }
    }
}
