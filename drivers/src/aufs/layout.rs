//! Where aufs keeps things on the host, Docker's aufs layout:
//!
//! ```text
//! <root>/aufs/diff/<dir>/              the layer's branch (its own entries and markers)
//! <root>/aufs/diff/<dir>/.wh..wh.orph/ aufs's orphan directory: staging for changes
//! <root>/aufs/layers/<dir>             its parent chain, one layer id a line, parent
//!                                      first (empty for a base layer), as Docker writes it
//! <root>/aufs/mnt/<dir>/               the mount point (made, never mounted)
//! <root>/aufs/.staging/<dir>/          a layer being created, until renamed into place
//! ```
//!
//! `<dir>` is [`LayerId::dir_name`]; ids start with a letter or digit, so no layer's
//! directory can be `.staging`.

use super::format::{META_PREFIX, OPAQUE, ORPH, WH_PREFIX};
use crate::backend::Cx;
use crate::fsck::{check_scratch_dir, staging_then_layers, CheckReport, LayerData};
use crate::hostfs;
use crate::store::{fsync_dir, LayerTable, Store};
use crate::union::{BranchUsage, Layout};
use layerlab_core::{IoContext, LayerId, Result};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The branch directories.
pub const DIFF: &str = "diff";
/// The parent-chain files.
pub const LAYERS: &str = "layers";
/// The (unused) mount points.
pub const MNT: &str = "mnt";
/// Where layers are assembled before they are renamed into place.
pub const STAGING: &str = ".staging";

/// Docker's aufs layout, as a union [`Layout`].
#[derive(Debug)]
pub struct AufsLayout;

impl Layout for AufsLayout {
    /// The driver's directory in a store.
    fn base(root: &Path) -> PathBuf {
        root.join("aufs")
    }

    /// `<root>/aufs/diff/<dir>`: a layer's branch.
    fn branch_dir(root: &Path, id: &LayerId) -> PathBuf {
        Self::base(root).join(DIFF).join(id.dir_name())
    }

    /// `<root>/aufs/diff/<dir>/.wh..wh.orph`: where a layer's changes are staged.
    fn stage_dir(root: &Path, id: &LayerId) -> PathBuf {
        Self::branch_dir(root, id).join(ORPH)
    }

    /// Makes the driver's directories in a new store.
    fn init_dirs(root: &Path) -> Result<()> {
        let base = Self::base(root);
        for d in [DIFF, LAYERS, MNT, STAGING] {
            fs::create_dir_all(base.join(d)).at(base.join(d))?;
        }
        fsync_dir(&base)
    }

    /// Makes a layer's branch (with its orphan directory) and its `layers` file in
    /// `.staging/<dir>`, fsyncs them, renames them into `diff/` and `layers/`, then makes its
    /// `mnt/` directory. The layer table, written afterwards by the caller, is the commit
    /// point.
    fn create_layer_dirs(cx: &mut Cx<'_>, id: &LayerId, parent: Option<&LayerId>) -> Result<()> {
        let root = cx.store.root();
        let base = Self::base(root);
        let staging = base.join(STAGING).join(id.dir_name());
        hostfs::remove_tree(&staging)?;
        fs::create_dir(&staging).at(&staging)?;
        let branch = staging.join(DIFF);
        fs::create_dir(&branch).at(&branch)?;
        let orph = branch.join(ORPH);
        fs::create_dir(&orph).at(&orph)?;
        hostfs::set_mode(&orph, 0o700)?;
        match parent {
            // the view of a new layer starts as its parent's: the root's attributes too
            Some(p) => {
                let proot = Self::branch_dir(root, p);
                let md = fs::symlink_metadata(&proot).at(&proot)?;
                hostfs::copy_attrs(&proot, &md, &branch)?;
            }
            None => {
                hostfs::set_new_owner(&branch)?;
                hostfs::set_mode(&branch, 0o755)?;
            }
        }
        // Docker: the parent, then the parent's own chain, one per line
        let mut chain = String::new();
        if let Some(p) = parent {
            chain.push_str(p.as_str());
            chain.push('\n');
            for l in read_layers(root, p)? {
                chain.push_str(&l);
                chain.push('\n');
            }
        }
        let layers = staging.join(LAYERS);
        write_synced(&layers, &chain)?;
        fsync_dir(&staging)?;
        // leftovers of a crash under this (unknown) id are garbage: the table names no such layer
        let (dst_branch, dst_layers, dst_mnt) = (
            Self::branch_dir(root, id),
            layers_file(root, id),
            mnt_dir(root, id),
        );
        for p in [&dst_branch, &dst_layers, &dst_mnt] {
            remove_any(p)?;
        }
        hostfs::rename(&layers, &dst_layers)?;
        hostfs::rename(&branch, &dst_branch)?;
        fs::create_dir(&dst_mnt).at(&dst_mnt)?;
        fs::remove_dir(&staging).at(&staging)?;
        for d in [DIFF, LAYERS, MNT] {
            fsync_dir(&base.join(d))?;
        }
        cx.meter.counts.metadata_writes += 6;
        cx.meter.counts.entry_fsyncs += 5;
        Ok(())
    }

    /// Cleans up after a failed `create_layer_dirs` (the table never named the layer).
    fn discard_layer(root: &Path, id: &LayerId) {
        let _ = hostfs::remove_tree(&Self::base(root).join(STAGING).join(id.dir_name()));
        let _ = Self::remove_layer_dirs(root, id);
    }

    /// Removes a layer's mount point, chain file and branch (after the table dropped it).
    fn remove_layer_dirs(root: &Path, id: &LayerId) -> Result<()> {
        remove_any(&mnt_dir(root, id))?;
        remove_any(&layers_file(root, id))?;
        hostfs::remove_tree(&Self::branch_dir(root, id))
    }

    /// Sweeps what a crash can leave: staged layers; branches, chain files and mount points
    /// the table does not name; staged entries in the orphan directories of the layers it
    /// names.
    fn sweep(root: &Path, known: &[LayerId]) -> Result<()> {
        let base = Self::base(root);
        hostfs::reset_dir(&base.join(STAGING))?;
        let names: BTreeSet<String> = known.iter().map(LayerId::dir_name).collect();
        for d in [DIFF, LAYERS, MNT] {
            let dir = base.join(d);
            for name in hostfs::list_names(&dir)? {
                if !names.contains(&name) {
                    remove_any(&dir.join(name))?;
                }
            }
        }
        for id in known {
            if !Self::branch_dir(root, id).is_dir() {
                // a ghost layer (named, its branch gone): `fsck` reports and drops it; a writer
                // must not stop on it
                continue;
            }
            hostfs::clear_scratch_dir(&Self::stage_dir(root, id), 0o700)?;
        }
        Ok(())
    }

    /// `fsck`: the table's layers whose branch is there; branches, chain files and mount points
    /// no layer of the table names.
    fn layer_data(root: &Path, table: &LayerTable) -> Result<LayerData> {
        let base = Self::base(root);
        let mut d = LayerData::default();
        d.scan(&base.join(DIFF), table, LayerId::dir_name, &[], true)?;
        d.scan(&base.join(LAYERS), table, LayerId::dir_name, &[], false)?;
        d.scan(&base.join(MNT), table, LayerId::dir_name, &[], false)?;
        Ok(d)
    }

    /// `fsck`: the staging directory, each layer's orphan directory and mount point there and
    /// empty; each layer's chain file as the table says (written again on `repair`).
    fn check_layout(store: &Store, repair: bool, report: &mut CheckReport) -> Result<()> {
        let (root, table) = (store.root(), store.table());
        let staging = Self::base(root).join(STAGING);
        for id in staging_then_layers(report, root, &staging, table, repair, Self::branch_dir)? {
            check_scratch_dir(
                report,
                root,
                Some(id),
                &Self::stage_dir(root, id),
                0o700,
                repair,
            )?;
            check_scratch_dir(report, root, Some(id), &mnt_dir(root, id), 0o755, repair)?;
            let Ok(chain) = table.chain(id) else {
                continue; // a broken chain: the front reports it
            };
            let want: Vec<String> = chain[1..].iter().map(|l| l.as_str().to_string()).collect();
            if read_layers(root, id).ok().as_ref() == Some(&want) {
                continue;
            }
            let place = format!("aufs/{LAYERS}/{}", id.dir_name());
            if repair {
                let text: String = want.iter().map(|l| format!("{l}\n")).collect();
                write_synced(&layers_file(root, id), &text)?;
                fsync_dir(&Self::base(root).join(LAYERS))?;
                report.repaired(
                    Some(id),
                    place,
                    "chain file missing or not the table's chain: written again",
                    None,
                );
            } else {
                report.uncorrected(
                    Some(id),
                    place,
                    "chain file missing or not the table's chain",
                );
            }
        }
        Ok(())
    }
}

/// `<root>/aufs/layers/<dir>`: a layer's parent chain.
pub fn layers_file(root: &Path, id: &LayerId) -> PathBuf {
    AufsLayout::base(root).join(LAYERS).join(id.dir_name())
}

/// `<root>/aufs/mnt/<dir>`.
pub fn mnt_dir(root: &Path, id: &LayerId) -> PathBuf {
    AufsLayout::base(root).join(MNT).join(id.dir_name())
}

/// Reads a layer's parent chain (parent first; empty for a base layer).
pub fn read_layers(root: &Path, id: &LayerId) -> Result<Vec<String>> {
    let p = layers_file(root, id);
    let text = fs::read_to_string(&p).at(&p)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

fn write_synced(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path).at(path)?;
    f.write_all(text.as_bytes()).at(path)?;
    f.sync_all().at(path)
}

/// Removes a path of any kind, if it exists.
fn remove_any(path: &Path) -> Result<()> {
    match hostfs::lstat(path)? {
        None => Ok(()),
        Some(md) if md.is_dir() => hostfs::remove_tree(path),
        Some(_) => fs::remove_file(path).at(path),
    }
}

/// Walks a branch, skipping aufs's housekeeping directories.
pub fn branch_usage(branch: &Path) -> Result<BranchUsage> {
    let mut u = BranchUsage::default();
    let mut stack = vec![branch.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).at(&d)? {
            let e = e.at(&d)?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            let p = e.path();
            if name == OPAQUE {
                u.opaque_dirs += 1;
            } else if name.starts_with(META_PREFIX) {
                continue;
            }
            let md = fs::symlink_metadata(&p).at(&p)?;
            if !seen.insert((md.dev(), md.ino())) {
                continue;
            }
            u.inodes += 1;
            u.disk += md.blocks() * 512;
            if name.starts_with(WH_PREFIX) {
                if name != OPAQUE {
                    u.whiteouts += 1;
                }
            } else if md.is_dir() {
                stack.push(p);
            } else {
                u.bytes += md.size();
            }
        }
    }
    Ok(u)
}
