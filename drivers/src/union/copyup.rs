//! Copy-up: bringing a lower entry (and its parent directories) into the layer's own
//! branch before it is changed, as overlayfs and aufs do on the first write; and the
//! marker steps (whiteouts, placing an entry over one) every change uses.
//!
//! Every copy is staged in the layer's staging directory ([`Flavor::stage_dir`]: overlay2's
//! `work/`, aufs's `.wh..wh.orph/`, on the branch's filesystem), completed there (data,
//! owner, mode, xattrs, times; a file's data fsynced), and only then renamed into the
//! branch (the parent keeping its mtime, as the kernel's copy-up keeps it): a
//! crash leaves either the lower entry visible or the complete copy, never a partial
//! one; leftovers are swept on the next open. Parents are copied first, top down: a crash
//! in between leaves extra merged directories with the same attributes as below, so the
//! view is unchanged.
//!
//! Where a format keeps whiteouts beside entries (aufs), an entry and its whiteout may
//! exist together for a moment; the lookup reads that as the entry hiding everything
//! below (an opaque directory), so each step is ordered to keep the view valid: a
//! whiteout is made before the entry it replaces is removed, an entry is placed before
//! the whiteout it replaces is removed.

use super::format::BranchFormat;
use super::lookup::Found;
use super::{Flavor, Layout, Union};
use crate::backend::{At, Cx};
use crate::hostfs;
use layerlab_core::{FileKind, IoContext, LayerId, LayerPath, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// How much of a file a copy-up brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyUp {
    /// Data and metadata (write, append, truncate, rename, hardlink; chmod/chown without
    /// metacopy).
    Full,
    /// Metadata only when the `metacopy` option is on (chmod, chown).
    Meta,
}

/// Copies one entry into `stage` (a new name in the staging directory) and renames it to
/// `dst`: a file's data comes from `data_src`, its attributes from `attr_src`; a directory
/// is made empty with the attributes; a symlink keeps its target. A file is fsynced
/// before the rename. Returns the data bytes copied.
pub fn stage_copy(
    kind: FileKind,
    attr_src: &Path,
    data_src: &Path,
    stage: &Path,
    dst: &Path,
) -> Result<u64> {
    let md = fs::symlink_metadata(attr_src).at(attr_src)?;
    let bytes = match kind {
        FileKind::File => {
            let n = hostfs::copy_data(data_src, stage)?;
            hostfs::copy_attrs(attr_src, &md, stage)?;
            hostfs::fsync_file(stage)?;
            n
        }
        _ => hostfs::copy_entry(attr_src, &md, stage)?,
    };
    hostfs::keeping_parent_mtime(dst, || hostfs::rename(stage, dst))?;
    Ok(bytes)
}

/// Counts a whiteout made for `path` (the entry a layer deletes or moves away): one
/// metadata write, and the step `whiteout PATH` in the trace.
pub(super) fn count_whiteout(cx: &mut Cx<'_>, path: &LayerPath) {
    cx.meter.counts.metadata_writes += 1;
    cx.meter.step(|| format!("whiteout {path}"));
}

impl<F: Flavor> Union<F> {
    /// A fresh name in the layer's work directory.
    pub(super) fn stage(&mut self, layer: &LayerId) -> PathBuf {
        self.seq += 1;
        F::Layout::stage_dir(&self.root, layer).join(format!("stage.{}", self.seq))
    }

    /// Copies up every ancestor of `path` (the root excluded: a layer's diff is its root)
    /// that the layer's branch lacks, top down, attributes preserved.
    pub(super) fn copy_up_parents(
        &mut self,
        cx: &mut Cx<'_>,
        layer: &LayerId,
        path: &LayerPath,
    ) -> Result<()> {
        let stack = self.stack(cx, layer)?;
        for a in path.ancestors().iter().filter(|a| !a.is_root()) {
            let f = self.walk(cx, &stack).entry(a)?;
            if f.top == 0 {
                continue;
            }
            let src = stack.host(f.top, a);
            let stage = self.stage(layer);
            stage_copy(FileKind::Dir, &src, &src, &stage, &stack.host(0, a))?;
            cx.meter.counts.metadata_writes += 1;
            cx.meter.counts.copy_ups += 1;
            let from = &stack.ids[f.top];
            cx.meter
                .step(|| format!("copy-up dir {a} from layer {from} (attributes only)"));
            self.cache.host_dir(layer, a);
            // now merged: this branch first, then the same lower branches as before
            let mut layers = vec![0];
            layers.extend(f.layers.iter().copied());
            self.cache.update(
                layer,
                a,
                Found {
                    kind: FileKind::Dir,
                    top: 0,
                    layers,
                    data: None,
                },
            );
        }
        Ok(())
    }

    /// Makes the entry at `path` (which must exist) live in the layer's own branch, with
    /// its parents; returns its host path there. Metacopy files get their data on a
    /// `Full` copy-up.
    pub(super) fn copy_up(
        &mut self,
        cx: &mut Cx<'_>,
        layer: &LayerId,
        path: &LayerPath,
        how: CopyUp,
    ) -> Result<PathBuf> {
        let stack = self.stack(cx, layer)?;
        let f = self.walk(cx, &stack).entry(path)?;
        let dst = stack.host(0, path);
        if f.top == 0 && (f.data.is_none() || how == CopyUp::Meta) {
            return Ok(dst);
        }
        self.copy_up_parents(cx, layer, path)?;
        let attr_src = stack.host(f.top, path);
        let from = stack.ids[f.top].clone();
        let stage = self.stage(layer);
        let meta_only = how == CopyUp::Meta && self.format().metacopy() && f.kind == FileKind::File;
        let updated = if meta_only {
            let md = fs::symlink_metadata(&attr_src).at(&attr_src)?;
            {
                let file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&stage)
                    .at(&stage)?;
                file.set_len(std::os::unix::fs::MetadataExt::size(&md))
                    .at(&stage)?;
            }
            self.flavor.format().set_metacopy(&stage)?;
            hostfs::copy_attrs(&attr_src, &md, &stage)?;
            hostfs::fsync_file(&stage)?;
            hostfs::keeping_parent_mtime(&dst, || hostfs::rename(&stage, &dst))?;
            cx.meter.counts.metadata_writes += 2;
            // the first fsync of a file made in the staging directory: its inode and entry
            // are committed with it
            cx.meter.counts.entry_fsyncs += 1;
            cx.meter.counts.copy_ups += 1;
            cx.meter
                .step(|| format!("metacopy-up {path} from layer {from} (metadata only, 0 bytes)"));
            Found {
                kind: FileKind::File,
                top: 0,
                layers: Vec::new(),
                data: Some(f.data_branch()),
            }
        } else {
            let data_src = stack.host(f.data_branch(), path);
            let bytes = stage_copy(f.kind, &attr_src, &data_src, &stage, &dst)
                .map_err(|e| hostfs::no_space(e, layer, path))?;
            cx.meter.counts.bytes_copied += bytes;
            cx.meter.counts.copy_ups += 1;
            cx.meter.counts.blocks_allocated += bytes.div_ceil(4096);
            cx.meter.counts.metadata_writes += 1;
            if f.kind == FileKind::File {
                // a new staged file's first fsync (overlayfs too fsyncs the file it copied
                // up in its work directory before the rename)
                cx.meter.counts.entry_fsyncs += 1;
            }
            let data_from = stack.ids[f.data_branch()].clone();
            cx.meter.step(|| {
                if f.top == 0 {
                    format!(
                        "copy-up data of metacopy {path} from layer {data_from} ({bytes} bytes)"
                    )
                } else {
                    format!("copy-up {path} from layer {from} ({bytes} bytes)")
                }
            });
            Found {
                kind: f.kind,
                top: 0,
                layers: if f.kind == FileKind::Dir {
                    let mut l = vec![0];
                    l.extend(f.layers.iter().copied());
                    l
                } else {
                    Vec::new()
                },
                data: None,
            }
        };
        self.cache.update(layer, path, updated);
        Ok(dst)
    }

    /// Replaces the content of the file at `path` with `data`: a staged file with the
    /// current entry's attributes, renamed into the layer's branch (its parents copied up
    /// first), so the old content stays whole until the rename; an inherited file needs no
    /// copy of its old data. A file with other hard links in the branch is written in
    /// place (a staged file would part it from them).
    pub(super) fn replace_file(
        &mut self,
        cx: &mut Cx<'_>,
        layer: &LayerId,
        path: &LayerPath,
        data: &[u8],
    ) -> Result<bool> {
        let stack = self.stack(cx, layer)?;
        let f = self.walk(cx, &stack).entry(path)?;
        let attr_src = stack.host(f.top, path);
        let dst = stack.host(0, path);
        if f.top == 0
            && hostfs::lstat(&dst)?.is_some_and(|md| std::os::unix::fs::MetadataExt::nlink(&md) > 1)
        {
            return Ok(false);
        }
        self.copy_up_parents(cx, layer, path)?;
        let stage = self.stage(layer);
        hostfs::replace_staged(&attr_src, &stage, &dst, data)
            .map_err(|e| hostfs::no_space(e, layer, path))?;
        cx.meter.counts.bytes_written += data.len() as u64;
        cx.meter.counts.blocks_allocated += (data.len() as u64).div_ceil(4096);
        cx.meter.counts.metadata_writes += 1;
        // a new staged file's first fsync
        cx.meter.counts.entry_fsyncs += 1;
        cx.meter
            .step(|| format!("replace {path} through a staged file"));
        self.cache.update(
            layer,
            path,
            Found {
                kind: FileKind::File,
                top: 0,
                layers: Vec::new(),
                data: None,
            },
        );
        Ok(true)
    }

    /// Puts a staged entry at `dst` in the layer's branch, replacing a whiteout there. In
    /// place (overlayfs), a directory cannot be renamed over a whiteout: it is exchanged
    /// with it, and the whiteout then removed from the staging name. Beside (aufs), the
    /// entry is renamed in, then its whiteout removed.
    pub(super) fn place(
        &mut self,
        cx: &mut Cx<'_>,
        stage: &Path,
        dst: &Path,
        is_dir: bool,
    ) -> Result<()> {
        let wh = self.format().whiteout_path(dst);
        let over_whiteout = self.format().is_whiteout_at(&wh)?;
        if !F::Format::WHITEOUT_IN_PLACE {
            hostfs::rename(stage, dst)?;
            if over_whiteout {
                fs::remove_file(&wh).at(&wh)?;
                cx.meter.counts.metadata_writes += 1;
            }
            Ok(())
        } else if is_dir && over_whiteout {
            hostfs::rename_exchange(stage, dst)?;
            fs::remove_file(stage).at(stage)
        } else {
            hostfs::rename(stage, dst)
        }
    }

    /// Makes a whiteout (in the staging directory) and renames it to `at`.
    pub(super) fn put_whiteout(&mut self, layer: &LayerId, at: &Path) -> Result<()> {
        let stage = self.stage(layer);
        self.format().make_whiteout(&stage)?;
        hostfs::rename(&stage, at)
    }

    /// Deletes the entry `at` names from the view, at `dst` in the layer's branch, where
    /// nothing or a non-directory is: in place, the whiteout is renamed over it; beside,
    /// the whiteout is made first, then the entry removed.
    pub(super) fn whiteout(&mut self, cx: &mut Cx<'_>, at: At<'_>, dst: &Path) -> Result<()> {
        let wh = self.format().whiteout_path(dst);
        self.put_whiteout(at.layer, &wh)?;
        if !F::Format::WHITEOUT_IN_PLACE && hostfs::lstat(dst)?.is_some() {
            fs::remove_file(dst).at(dst)?;
        }
        count_whiteout(cx, at.path);
        Ok(())
    }

    /// Replaces the directory at `dst` in the layer's branch with a whiteout: in place, in
    /// one step (exchange), then the old directory (and any whiteouts in it) is removed
    /// from the staging directory; beside, the whiteout is made, then the directory moved
    /// to the staging directory and removed.
    pub(super) fn whiteout_dir(&mut self, cx: &mut Cx<'_>, at: At<'_>, dst: &Path) -> Result<()> {
        let stage = self.stage(at.layer);
        if F::Format::WHITEOUT_IN_PLACE {
            self.format().make_whiteout(&stage)?;
            hostfs::rename_exchange(&stage, dst)?;
        } else {
            let wh = self.format().whiteout_path(dst);
            self.put_whiteout(at.layer, &wh)?;
            hostfs::rename(dst, &stage)?;
        }
        hostfs::remove_tree(&stage)?;
        cx.meter.counts.metadata_writes += 1;
        cx.meter.step(|| format!("whiteout dir {}", at.path));
        Ok(())
    }

    /// Empties the directory at `dst` in the layer's branch, which shows no entries but
    /// may hold whiteouts, so that a directory can be renamed over it: an empty opaque
    /// copy is exchanged with it, then the old one removed. The view at `at` stays an
    /// empty directory throughout. (In-place formats only: an opaque directory of a
    /// format that marks it with an entry is never empty on the host.)
    pub(super) fn clear_dir(&mut self, cx: &mut Cx<'_>, at: At<'_>, dst: &Path) -> Result<()> {
        if hostfs::list_names(dst)?.is_empty() {
            return Ok(());
        }
        let md = fs::symlink_metadata(dst).at(dst)?;
        let stage = self.stage(at.layer);
        fs::create_dir(&stage).at(&stage)?;
        self.format().set_opaque(&stage)?;
        hostfs::copy_attrs(dst, &md, &stage)?;
        hostfs::rename_exchange(&stage, dst)?;
        hostfs::remove_tree(&stage)?;
        cx.meter.counts.metadata_writes += 1;
        cx.meter.step(|| format!("clear whiteouts of {}", at.path));
        Ok(())
    }
}
