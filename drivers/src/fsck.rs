//! What `layerlab fsck` found in a store: each finding names where it is (layer, path, pool
//! offset) and whether it was repaired, and what a repair dropped. The exit code follows
//! fsck(8): 0 clean, 1 everything found was repaired, 4 something is left uncorrected.
//!
//! The checks themselves live with what they check: the layer table in [`crate::store`],
//! the union layout in [`crate::union`], each block or extent engine in its own module
//! (through [`crate::backend::Lifecycle::check`]); the front runs them in one order.

use crate::backend::{Backend, Cx};
use crate::front::Layers;
use crate::store::{Access, LayerTable, Store, TableProblem};
use layerlab_core::{Error, FileKind, LayerDriver, LayerId, LayerPath, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Which layers of the table have their data, and the data no layer of the table names:
/// what a driver keeping one host directory (or file) per layer reports to the front
/// ([`crate::backend::Lifecycle::layer_data`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerData {
    /// The table's layers whose data is there.
    pub present: BTreeSet<LayerId>,
    /// Host paths of data no layer of the table names.
    pub orphans: Vec<PathBuf>,
}

impl LayerData {
    /// Scans `dir`, where each layer of `table` keeps an entry named `name_of(id)`: the
    /// layers found go to `present` (when `counts` says so), the other entries (but those
    /// named in `skip`) to `orphans`. A missing `dir` holds nothing.
    pub fn scan(
        &mut self,
        dir: &Path,
        table: &LayerTable,
        name_of: impl Fn(&LayerId) -> String,
        skip: &[&str],
        counts: bool,
    ) -> Result<()> {
        if !dir.exists() {
            return Ok(());
        }
        let mut by_name = std::collections::BTreeMap::new();
        for id in table.ids() {
            by_name.insert(name_of(id), id.clone());
        }
        for name in crate::hostfs::list_names(dir)? {
            if skip.contains(&name.as_str()) {
                continue;
            }
            match by_name.get(&name) {
                Some(id) if counts => {
                    self.present.insert(id.clone());
                }
                Some(_) => {}
                None => self.orphans.push(dir.join(&name)),
            }
        }
        Ok(())
    }
}

/// Whether a finding was repaired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    /// Found and left as it is (no `--repair`, or nothing safe to do).
    Uncorrected,
    /// Repaired; `dropped` names what the repair had to give up, if anything.
    Repaired {
        /// What was lost by the repair (a layer, a file, a log record), if anything.
        dropped: Option<String>,
    },
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The layer it concerns, if one.
    pub layer: Option<LayerId>,
    /// Where: a path in the layer, a store file, a pool offset.
    pub place: String,
    /// What is wrong, in one line.
    pub what: String,
    /// Repaired or not.
    pub state: FindingState,
}

/// Everything one run of fsck found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Findings in the order they were found.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Records a finding left as it is.
    pub fn uncorrected(
        &mut self,
        layer: Option<&LayerId>,
        place: impl Into<String>,
        what: impl Into<String>,
    ) {
        self.findings.push(Finding {
            layer: layer.cloned(),
            place: place.into(),
            what: what.into(),
            state: FindingState::Uncorrected,
        });
    }

    /// Records a finding that was repaired, and what the repair dropped.
    pub fn repaired(
        &mut self,
        layer: Option<&LayerId>,
        place: impl Into<String>,
        what: impl Into<String>,
        dropped: Option<String>,
    ) {
        self.findings.push(Finding {
            layer: layer.cloned(),
            place: place.into(),
            what: what.into(),
            state: FindingState::Repaired { dropped },
        });
    }

    /// Records a finding whose repair drops nothing: repaired when `repair` allows it and
    /// `fix` makes it (returns true), the finding then saying `how` after `what`; else
    /// left as it is.
    pub fn repair_with(
        &mut self,
        place: impl Into<String>,
        what: impl Into<String>,
        how: &str,
        repair: bool,
        fix: impl FnOnce() -> Result<bool>,
    ) -> Result<()> {
        let what = what.into();
        if repair && fix()? {
            self.repaired(None, place, format!("{what}: {how}"), None);
        } else {
            self.uncorrected(None, place, what);
        }
        Ok(())
    }

    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The exit code fsck(8) gives: 0 clean, 1 all repaired, 4 something uncorrected.
    pub fn exit_code(&self) -> i32 {
        if self.findings.is_empty() {
            0
        } else if self
            .findings
            .iter()
            .any(|f| f.state == FindingState::Uncorrected)
        {
            4
        } else {
            1
        }
    }
}

/// A housekeeping directory (staging, a work or orphan directory) that must exist and be
/// empty between commands: a missing one is made again, leftovers of an interrupted change
/// are removed on `repair` (never committed data: a change is published by a rename out of
/// it).
pub fn check_scratch_dir(
    report: &mut CheckReport,
    root: &Path,
    layer: Option<&LayerId>,
    dir: &Path,
    mode: u32,
    repair: bool,
) -> Result<()> {
    let place = place_of(root, dir);
    let names = match crate::hostfs::lstat(dir)? {
        None => {
            if repair {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                crate::hostfs::set_mode(dir, mode)?;
                report.repaired(
                    layer,
                    place,
                    "missing housekeeping directory: made again",
                    None,
                );
            } else {
                report.uncorrected(layer, place, "missing housekeeping directory");
            }
            return Ok(());
        }
        Some(md) if !md.is_dir() => {
            report.uncorrected(layer, place, "housekeeping directory is not a directory");
            return Ok(());
        }
        Some(_) => crate::hostfs::list_names(dir)?,
    };
    if names.is_empty() {
        return Ok(());
    }
    let what = format!(
        "stray entries of an interrupted change: {}",
        names.join(", ")
    );
    if repair {
        for n in &names {
            remove_any(&dir.join(n))?;
        }
        crate::store::fsync_dir(dir)?;
        report.repaired(
            layer,
            place.clone(),
            format!("{what}: removed"),
            Some(format!("{} uncommitted entries in {place}", names.len())),
        );
    } else {
        report.uncorrected(layer, place, what);
    }
    Ok(())
}

/// The start of a layout check: the staging directory `staging` (as
/// [`check_scratch_dir`]), then the layers of `table` whose own directory (`branch(root, id)`) is
/// there, for the caller to check the rest of each (a ghost, without it, is the front's to
/// report).
pub fn staging_then_layers<'t>(
    report: &mut CheckReport,
    root: &Path,
    staging: &Path,
    table: &'t LayerTable,
    repair: bool,
    branch: impl Fn(&Path, &LayerId) -> PathBuf,
) -> Result<Vec<&'t LayerId>> {
    check_scratch_dir(report, root, None, staging, 0o755, repair)?;
    Ok(table.ids().filter(|id| branch(root, id).is_dir()).collect())
}

/// `layerlab fsck` on one store of driver `B`, in one order: the layer table (format,
/// checksum, missing parents, cycles, depths), each layer's data (ghost layers, orphans;
/// [`Lifecycle::layer_data`]), the driver's own structures ([`Lifecycle::check`]), then the
/// driver is opened and every file of every layer read (catching what surfaces only on a
/// read: a checksum error, a broken chain of branches). With `repair`, fixes what can be
/// fixed without losing committed data and records what it dropped.
pub fn check_store<B: Backend>(root: &Path, repair: bool) -> Result<CheckReport> {
    let access = if repair { Access::Write } else { Access::Read };
    let mut report = CheckReport::default();
    let (mut store, problems) = match Store::open_for_check(root, B::NAME, access) {
        Ok(x) => x,
        Err(Error::Corrupt { path, detail }) => {
            report.uncorrected(None, place_of(root, &path), unhinted(&detail));
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    let mut table = store.table().clone();
    let data = B::layer_data(&store)?;
    let ghosts = ghosts_of(&table, data.as_ref());
    let orphans = data.map(|d| d.orphans).unwrap_or_default();
    // A table whose checksum fails is trusted (and rewritten) only when nothing else is
    // wrong and the layers' data is exactly what it names; otherwise a flipped byte could
    // have turned one layer's id into another's, and nothing is changed on its word.
    let checksum_bad = problems
        .iter()
        .any(|p| matches!(p, TableProblem::Checksum { .. }));
    let structural = problems.iter().any(|p| {
        matches!(
            p,
            TableProblem::MissingParent { .. } | TableProblem::Cycle { .. }
        )
    });
    let trusted = !checksum_bad || (!structural && ghosts.is_empty() && orphans.is_empty());
    let fix = repair && trusted;
    let mut dirty = table_findings(&problems, &mut table, fix, &mut report);
    dirty |= ghost_findings(&mut table, &ghosts, fix, &mut report);
    orphan_findings(root, &orphans, fix, &mut report)?;
    if dirty {
        store.update_table(|t| {
            *t = table.clone();
            Ok(())
        })?;
    }
    let mut meter = layerlab_core::Meter::new();
    B::check(
        &mut Cx {
            store: &store,
            meter: &mut meter,
        },
        fix,
        &mut report,
    )?;
    if !trusted {
        // an untrusted table must not guide a writer's sweep of what it does not name
        store.set_read_only();
    }
    let mut layers = match Layers::<B>::over(store) {
        Ok(l) => l,
        Err(e) => {
            report.uncorrected(None, B::NAME, format!("the driver refuses to open: {e}"));
            return Ok(report);
        }
    };
    // read through the layers whose whole chain is there
    let mut readable = table.with_whole_chains().0;
    for id in &ghosts {
        readable.remove(id);
    }
    let readable = readable.with_whole_chains().0;
    let ids: Vec<LayerId> = readable.ids().cloned().collect();
    layers.set_table_in_memory(readable);
    for id in ids {
        read_layer(&mut layers, &id, &mut report);
    }
    Ok(report)
}

/// Reports what is wrong with the table's rows, and the layers left unchecked on a broken
/// chain; with `fix`, recomputes depths and rewrites the checksum. True when `table` changed.
fn table_findings(
    problems: &[TableProblem],
    table: &mut LayerTable,
    fix: bool,
    report: &mut CheckReport,
) -> bool {
    let mut dirty = false;
    for p in problems {
        let layer = problem_layer(p);
        match p {
            TableProblem::Checksum { .. } if fix => {
                dirty = true;
                report.repaired(
                    None,
                    "layers.json",
                    format!("{p}; the rows agree with every layer's data: checksum rewritten"),
                    None,
                );
            }
            TableProblem::Depth {
                layer,
                stored,
                actual,
            } if fix => {
                dirty = true;
                table.fix_depths();
                report.repaired(
                    Some(layer),
                    "layers.json",
                    format!("depth {stored} corrected to {actual}, the length of its chain"),
                    None,
                );
            }
            TableProblem::Cycle { .. } => report.uncorrected(
                layer,
                "layers.json",
                format!("{p}: which parent is wrong cannot be known"),
            ),
            _ => report.uncorrected(layer, "layers.json", p.to_string()),
        }
    }
    for id in &table.with_whole_chains().1 {
        let named = problems.iter().any(|p| match p {
            TableProblem::Cycle { members } => members.contains(id),
            _ => problem_layer(p) == Some(id),
        });
        if !named {
            report.uncorrected(
                Some(id),
                "layers.json",
                "stacked on a broken chain of parents: not checked",
            );
        }
    }
    dirty
}

/// Reports the ghost layers; with `fix`, drops from `table` each one no layer stacks on.
/// True when `table` changed.
fn ghost_findings(
    table: &mut LayerTable,
    ghosts: &[LayerId],
    fix: bool,
    report: &mut CheckReport,
) -> bool {
    let mut dirty = false;
    let whole = table.with_whole_chains().0;
    for id in ghosts_by_depth(&whole, ghosts) {
        let children = table.children(&id);
        if fix && children.is_empty() {
            table.remove(&id);
            dirty = true;
            report.repaired(
                Some(&id),
                "layers.json",
                "ghost layer: the table names it, its data is gone: dropped from the table",
                Some(format!("layer {id} (its data was already gone)")),
            );
        } else {
            let why = if children.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = children.iter().map(LayerId::as_str).collect();
                format!(" (layers {} stack on it)", names.join(", "))
            };
            report.uncorrected(
                Some(&id),
                "layers.json",
                format!("ghost layer: the table names it, its data is gone{why}"),
            );
        }
    }
    dirty
}

/// Reports the orphans; with `fix`, removes them (the table is the commit point: data it
/// does not name was never committed, or was already removed from it).
fn orphan_findings(
    root: &Path,
    orphans: &[PathBuf],
    fix: bool,
    report: &mut CheckReport,
) -> Result<()> {
    for path in orphans {
        let place = place_of(root, path);
        if fix {
            remove_any(path)?;
            report.repaired(
                None,
                place.clone(),
                "orphan: data no layer of the table names: removed",
                Some(format!("{place} (named by no layer)")),
            );
        } else {
            report.uncorrected(None, place, "orphan: data no layer of the table names");
        }
    }
    Ok(())
}

/// The ghost layers: named by the table, their data gone.
fn ghosts_of(table: &LayerTable, data: Option<&LayerData>) -> Vec<LayerId> {
    match data {
        Some(d) => table
            .ids()
            .filter(|id| !d.present.contains(*id))
            .cloned()
            .collect(),
        None => Vec::new(),
    }
}

/// Ghosts deepest first (so a ghost stacked on a ghost is dropped before its parent), those
/// on broken chains last.
fn ghosts_by_depth(whole: &LayerTable, ghosts: &[LayerId]) -> Vec<LayerId> {
    let mut out = ghosts.to_vec();
    out.sort_by_key(|id| std::cmp::Reverse(whole.get(id).map(|e| e.depth).unwrap_or(0)));
    out
}

fn problem_layer(p: &TableProblem) -> Option<&LayerId> {
    match p {
        TableProblem::Checksum { .. } => None,
        TableProblem::MissingParent { layer, .. } | TableProblem::Depth { layer, .. } => {
            Some(layer)
        }
        TableProblem::Cycle { members } => members.first(),
    }
}

/// A store path as fsck names it: relative to the root.
pub(crate) fn place_of(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A refusal's detail without its pointer at fsck (this is fsck).
fn unhinted(detail: &str) -> String {
    detail.replace(crate::store::FSCK_HINT, "")
}

pub(crate) fn remove_any(path: &Path) -> Result<()> {
    match crate::hostfs::lstat(path)? {
        Some(md) if md.is_dir() => crate::hostfs::remove_tree(path),
        Some(_) => std::fs::remove_file(path).map_err(|e| Error::io(path, e)),
        None => Ok(()),
    }
}

/// How much of a file one read takes.
const CHUNK: u64 = 1 << 20;

/// Reads every entry of a layer's view: attributes, extended attributes, every byte of
/// every file. Each failure is a finding naming the layer and the path; the walk goes on.
fn read_layer<B: Backend>(layers: &mut Layers<B>, id: &LayerId, report: &mut CheckReport) {
    let mut todo = vec![LayerPath::root()];
    while let Some(path) = todo.pop() {
        if let Err(e) = read_entry(layers, id, &path, &mut todo) {
            report.uncorrected(Some(id), path.to_string(), format!("unreadable: {e}"));
        }
    }
}

fn read_entry<B: Backend>(
    layers: &mut Layers<B>,
    id: &LayerId,
    path: &LayerPath,
    todo: &mut Vec<LayerPath>,
) -> Result<()> {
    let md = layers.stat(id, path)?;
    for name in layers.list_xattrs(id, path)? {
        layers.get_xattr(id, path, &name)?;
    }
    match md.kind {
        FileKind::Dir => {
            let entries = layers.readdir(id, path)?;
            for e in entries.iter().rev() {
                todo.push(layerlab_core::ops::child(path, &e.name)?);
            }
        }
        FileKind::File => {
            let mut offset = 0;
            while offset < md.size {
                let got = layers.read(id, path, offset, CHUNK.min(md.size - offset))?;
                if got.is_empty() {
                    return Err(Error::Corrupt {
                        path: PathBuf::from(path.to_string()),
                        detail: format!("size {} but reads end at byte {offset}", md.size),
                    });
                }
                offset += got.len() as u64;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_fsck8() {
        let mut report = CheckReport::default();
        assert_eq!(report.exit_code(), 0);
        report.repaired(None, "layers.json", "stray entry", Some("layer x".into()));
        assert_eq!(report.exit_code(), 1);
        report.uncorrected(None, "pool offset 4096", "checksum mismatch");
        assert_eq!(report.exit_code(), 4);
    }
}
