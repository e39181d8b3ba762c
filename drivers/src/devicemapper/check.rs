//! `fsck` of a devicemapper store, as `thin_check` does for dm-thin: the metadata file's
//! checksums (superblock slots, checkpoint, every log record) and how its log ends, the
//! maps (every mapping inside its device and the pool), the reference counts recounted
//! from the maps, the free-space map against the data file (leaked blocks), and then,
//! as `e2fsck` would inside each thin device, the llfs tree of every layer.
//!
//! Repairs that lose nothing committed: a torn tail discarded, an older superblock slot
//! rewritten, reference counts rebuilt from the maps (a new checkpoint), leaked blocks
//! punched. Damage followed by committed records is left uncorrected, saying what a
//! repair would lose.

use super::fs::Fs;
use super::pool::{Pool, FORMAT};
use super::thin::Txn;
use crate::backend::Cx;
use crate::blockpool::examine_and_load;
use crate::fsck::CheckReport;
use layerlab_core::{LayerPath, Meter, Result};
use std::path::Path;

/// Checks the pool under `dir` (`<root>/devicemapper`) and the filesystem of every layer's
/// device, into `report`.
pub fn check(cx: &mut Cx<'_>, dir: &Path, repair: bool, report: &mut CheckReport) -> Result<()> {
    let repair = repair && cx.store.writable().is_ok();
    let Some(checked) = examine_and_load(dir, FORMAT, repair, report, |opened, repair| {
        Pool::load(dir, opened, repair)
    })?
    else {
        return Ok(());
    };
    let mut pool = checked.pool;
    let place = format!("{}: checkpoint", checked.meta);
    if !checked.refs_agree && !checked.partial {
        report.repair_with(
            place,
            "reference counts (the free-space map) disagree with the maps",
            "rebuilt from the maps into a new checkpoint",
            checked.repair,
            || pool.compact(&mut Meter::new()),
        )?;
    }
    let leaked = if checked.partial {
        Vec::new()
    } else {
        pool.leaked_blocks()
    };
    if !leaked.is_empty() {
        let place = format!("{}: pool blocks {:?}", pool.data_path().display(), leaked);
        let what = format!(
            "{} free pool block(s) still hold bytes on the host (leaked)",
            leaked.len()
        );
        report.repair_with(place, what, "punched out", checked.repair, || {
            pool.punch_blocks(&leaked)?;
            Ok(true)
        })?;
    }
    for info in cx.store.table().infos() {
        let dev = info.id.dir_name();
        if !pool.devices.contains_key(&dev) {
            report.uncorrected(
                Some(&info.id),
                checked.meta.clone(),
                format!("no thin device {dev} for the layer"),
            );
            continue;
        }
        let root = LayerPath::root();
        let fs = Fs::new(Txn::new(&mut pool, dev, &info.id, &root, None));
        for (path, what) in fs.check_tree() {
            report.uncorrected(Some(&info.id), path, what);
        }
    }
    Ok(())
}
