//! `fsck` of a union store: the flavor's housekeeping (staging, work or orphan directories,
//! chain files; [`Flavor::check_layout`]) and the whiteout sanity of every branch: a
//! whiteout of `.`, `..` or the empty name cannot be (it would hide a directory's own
//! entries or its parent), and a whiteout beside an entry of the same name (aufs, a change
//! killed between its two steps) is stale: the entry wins in every lookup and listing, so
//! a repair removes the whiteout and the view is unchanged.

use super::{BranchFormat, Flavor, Layout, Listed};
use crate::fsck::{place_of, remove_any, CheckReport};
use crate::store::Store;
use layerlab_core::{LayerId, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Checks a union store; with `repair`, removes impossible whiteouts (they name nothing a
/// view can hold) and what [`Flavor::check_layout`] repairs.
pub(crate) fn check<F: Flavor>(
    store: &Store,
    repair: bool,
    report: &mut CheckReport,
) -> Result<()> {
    let flavor = match F::from_options(store.options()) {
        Ok(f) => f,
        Err(e) => {
            report.uncorrected(None, "store.json", e.to_string());
            return Ok(());
        }
    };
    let root = store.root();
    F::Layout::check_layout(store, repair, report)?;
    for id in store.table().ids() {
        let branch = F::Layout::branch_dir(root, id);
        if branch.is_dir() {
            check_branch(flavor.format(), root, id, &branch, repair, report)?;
        }
    }
    Ok(())
}

fn check_branch<B: BranchFormat>(
    format: &B,
    root: &Path,
    id: &LayerId,
    branch: &Path,
    repair: bool,
    report: &mut CheckReport,
) -> Result<()> {
    let mut todo: Vec<PathBuf> = vec![branch.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let listed = match format.list(&dir) {
            Ok(l) => l,
            Err(e) => {
                report.uncorrected(Some(id), place_of(root, &dir), format!("unreadable: {e}"));
                continue;
            }
        };
        let entries: BTreeSet<&str> = listed
            .iter()
            .filter_map(|l| match l {
                Listed::Entry(name, _) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        for item in &listed {
            match item {
                Listed::Whiteout(hidden) => {
                    let host = dir.join(format.whiteout_host_name(hidden));
                    let place = place_of(root, &host);
                    if matches!(hidden.as_str(), "" | "." | "..") {
                        let what = format!("whiteout of {hidden:?}, which no entry can be");
                        if repair {
                            remove_any(&host)?;
                            report.repaired(
                                Some(id),
                                place.clone(),
                                format!("{what}: removed"),
                                Some(format!("the impossible whiteout {place}")),
                            );
                        } else {
                            report.uncorrected(Some(id), place, what);
                        }
                    } else if entries.contains(hidden.as_str()) {
                        // a change killed between its two steps (aufs); the entry wins in
                        // every lookup and listing, so the whiteout hides nothing
                        let what = format!(
                            "whiteout beside an entry of the same name {hidden:?} (stale \
                             whiteout: the entry wins, the whiteout hides nothing)"
                        );
                        if repair {
                            remove_any(&host)?;
                            report.repaired(Some(id), place, format!("{what}: removed"), None);
                        } else {
                            report.uncorrected(Some(id), place, what);
                        }
                    }
                }
                Listed::Entry(name, layerlab_core::FileKind::Dir) => todo.push(dir.join(name)),
                _ => {}
            }
        }
    }
    Ok(())
}
