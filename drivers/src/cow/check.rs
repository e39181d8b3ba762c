//! `fsck` of a btrfs or zfs store, as `btrfs check` and `zpool scrub` do: the metadata
//! file's checksums and how its log ends, the reference count of every sector recounted
//! from the trees (the checkpoint's and the replayed ones), every subvolume's tree
//! (entries naming inodes of their kind, no orphan inode, `nlink` matching the names,
//! extents inside the pool), the checksum of every data sector in use read back from the
//! pool file, and the free sectors against the pool file (leaked space).
//!
//! Repairs that lose nothing committed: a torn tail discarded, an older superblock slot
//! rewritten, reference counts rebuilt from the trees and checksums of free sectors
//! dropped (a new checkpoint), leaked sectors punched. A data sector that fails its
//! checksum has no second copy to repair from: it is left uncorrected, naming the layer,
//! the file and the pool offset (reads of it fail with EIO).

use super::engine::{Engine, SECTOR};
use super::tree::{Inode, ROOT_INO};
use crate::blockpool::{examine_and_load, MetaFormat, RefTable};
use crate::fsck::CheckReport;
use layerlab_core::{FileKind, LayerId, Meter, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Who holds a sector, for the findings: the layer (if a layer's subvolume) and the path.
type Owner = (Option<LayerId>, String);

/// Checks the engine under `dir`; `layers` names the layer of each subvolume.
pub fn check(
    dir: &Path,
    format: MetaFormat,
    layers: &HashMap<String, LayerId>,
    repair: bool,
    report: &mut CheckReport,
) -> Result<()> {
    let Some(checked) = examine_and_load(dir, format, repair, report, |opened, repair| {
        Engine::load(dir, opened, format.label, repair)
    })?
    else {
        return Ok(());
    };
    let (partial, repair, meta) = (checked.partial, checked.repair, checked.meta);
    let mut eng = checked.pool;
    let mut rebuild = Vec::new();
    if !checked.refs_agree {
        rebuild.push("the checkpoint's reference counts disagree with the trees".to_string());
    }
    let counted = recount(&eng);
    if counted.dense() != eng.refs.dense() {
        rebuild.push("reference counts after the log disagree with the trees".to_string());
        eng.refs = counted;
    }
    let owners = check_trees(&eng, layers, report);
    let stale: Vec<u64> = eng
        .sums
        .keys()
        .filter(|s| eng.refs.get(**s) == 0)
        .copied()
        .collect();
    if !stale.is_empty() {
        rebuild.push(format!("{} checksum(s) of free sectors", stale.len()));
        for s in &stale {
            eng.sums.remove(s);
        }
    }
    if partial {
        scrub(&eng, &owners, report)?;
        return Ok(());
    }
    for what in rebuild {
        let place = format!("{meta}: checkpoint");
        report.repair_with(place, what, "rebuilt into a new checkpoint", repair, || {
            eng.checkpoint(&mut Meter::new())
        })?;
    }
    scrub(&eng, &owners, report)?;
    let leaked = leaked_sectors(&eng);
    if !leaked.is_empty() {
        let place = format!(
            "{}: {} sector(s) from {}",
            eng.data_path().display(),
            leaked.len(),
            leaked[0]
        );
        let what = "free sectors still hold bytes on the host (leaked)";
        report.repair_with(place, what, "punched out", repair, || {
            eng.punch(&leaked);
            eng.sync_data()?;
            Ok(true)
        })?;
    }
    Ok(())
}

/// Reference counts recomputed from the trees: each distinct inode object counts once
/// for every sector of every disk extent it names any part of.
fn recount(eng: &Engine) -> RefTable {
    let mut refs = RefTable::new(eng.refs.capacity());
    let mut seen: HashSet<*const Inode> = HashSet::new();
    for t in eng.subvols.values() {
        t.for_each(&mut |_, i| {
            if seen.insert(Arc::as_ptr(i)) {
                for s in i.held_sectors() {
                    refs.inc(s);
                }
            }
        });
    }
    refs
}

/// Walks every subvolume's tree from its root directory; returns who holds each sector.
fn check_trees(
    eng: &Engine,
    layers: &HashMap<String, LayerId>,
    report: &mut CheckReport,
) -> BTreeMap<u64, Owner> {
    let mut owners = BTreeMap::new();
    for (sv, t) in &eng.subvols {
        let layer = layers.get(sv);
        let mut names: HashMap<u64, (u32, String)> = HashMap::new();
        let mut dirs = HashSet::new();
        let mut todo = vec![(ROOT_INO, String::from("/"))];
        while let Some((ino, path)) = todo.pop() {
            let Some(d) = t.get(ino) else {
                report.uncorrected(
                    layer,
                    format!("{sv}:{path}"),
                    format!("directory inode {ino} is missing"),
                );
                continue;
            };
            if d.attr.kind != FileKind::Dir || !dirs.insert(ino) {
                report.uncorrected(
                    layer,
                    format!("{sv}:{path}"),
                    format!("inode {ino} is no directory or is named twice"),
                );
                continue;
            }
            for (name, (child, kind)) in &d.dir {
                let cpath = if path == "/" {
                    format!("/{name}")
                } else {
                    format!("{path}/{name}")
                };
                match t.get(*child) {
                    None => report.uncorrected(
                        layer,
                        format!("{sv}:{cpath}"),
                        format!("the entry names inode {child}, which does not exist"),
                    ),
                    Some(c) if c.attr.kind != *kind => report.uncorrected(
                        layer,
                        format!("{sv}:{cpath}"),
                        format!(
                            "inode {child} is a {:?}, its entry says {kind:?}",
                            c.attr.kind
                        ),
                    ),
                    Some(_) if *kind == FileKind::Dir => todo.push((*child, cpath)),
                    Some(_) => names.entry(*child).or_insert((0, cpath)).0 += 1,
                }
            }
        }
        let mut all = Vec::new();
        t.for_each(&mut |ino, i| all.push((ino, Arc::clone(i))));
        for (ino, i) in all {
            let Some((count, path)) = names
                .get(&ino)
                .cloned()
                .or_else(|| dirs.contains(&ino).then(|| (1, String::new())))
            else {
                report.uncorrected(
                    layer,
                    format!("{sv}: inode {ino}"),
                    "an inode no directory names (orphan)",
                );
                continue;
            };
            if i.attr.kind != FileKind::Dir && i.attr.nlink != count {
                report.uncorrected(
                    layer,
                    format!("{sv}:{path}"),
                    format!("inode {ino} has nlink {} but {count} name(s)", i.attr.nlink),
                );
            }
            for e in i.extents.values() {
                if e.disk + e.dlen > eng.refs.capacity() {
                    report.uncorrected(
                        layer,
                        format!("{sv}:{path}"),
                        format!("an extent at sector {} past the pool", e.disk),
                    );
                    continue;
                }
                for s in e.disk..e.disk + e.dlen {
                    owners
                        .entry(s)
                        .or_insert_with(|| (layer.cloned(), format!("{sv}:{path}")));
                }
            }
        }
    }
    owners
}

/// Reads every sector in use back and checks it against its checksum (a scrub).
fn scrub(eng: &Engine, owners: &BTreeMap<u64, Owner>, report: &mut CheckReport) -> Result<()> {
    let file = eng.data_path();
    let mut buf = vec![0u8; SECTOR as usize];
    for (s, _) in eng.refs.nonzero() {
        let (layer, path) = owners
            .get(&s)
            .cloned()
            .unwrap_or((None, String::from("(no file)")));
        let Some(want) = eng.sums.get(&s) else {
            report.uncorrected(
                layer.as_ref(),
                format!("{} offset {}: {path}", file.display(), s * SECTOR),
                "a data sector in use has no checksum",
            );
            continue;
        };
        eng.read_bytes(s * SECTOR, &mut buf)?;
        if crate::codec::checksum(&buf) != *want {
            report.uncorrected(
                layer.as_ref(),
                format!("{} offset {}: {path}", file.display(), s * SECTOR),
                "data sector fails its checksum (no second copy to repair from; reads of it fail with EIO)",
            );
        }
    }
    Ok(())
}

/// Free sectors that hold bytes in the pool file.
fn leaked_sectors(eng: &Engine) -> Vec<u64> {
    let mut out = Vec::new();
    for (a, b) in eng.data_regions() {
        for s in a / SECTOR..b.div_ceil(SECTOR) {
            if eng.refs.get(s) == 0 && out.last() != Some(&s) {
                out.push(s);
            }
        }
    }
    out
}
