//! The kernel drivers' [`Backend`], written once. A kernel driver serves every layer's view
//! as a host directory tree (an overlay mount, a btrfs subvolume); given how to find that
//! tree and how to make and drop a layer ([`HostTree`]), every primitive is the same for
//! every such driver: one call into [`tree`], [`hostfs`] or `std::fs` on the host path, the
//! kernel doing copy-up, whiteouts and copy-on-write. The Meter counts bytes read and
//! written only. Static dispatch: the blanket impl is generic over the driver.

use super::tree;
use crate::backend::{At, Backend, Cx, Lifecycle, Node, Rename};
use crate::hostfs;
use crate::store::Store;
use layerlab_core::{DirEntry, FileKind, LayerId, LayerPath, Metadata, Result};
use std::path::PathBuf;

/// A driver whose layer views are host directory trees the kernel serves: what it must say
/// of itself beyond its [`Lifecycle`]; the file operations follow from
/// [`HostTree::view_root`].
pub trait HostTree: Lifecycle {
    /// Whether a data change is made durable before the call returns.
    const SYNC: tree::DataSync;

    /// The host directory of `layer`'s view (the layer exists; may mount it).
    fn view_root(&mut self, cx: &mut Cx<'_>, layer: &LayerId) -> Result<PathBuf>;

    /// The layer that provides the entry at `path` of `layer`'s view (by default `layer`
    /// itself: its view holds its own copy of everything).
    fn provider(&self, _store: &Store, layer: &LayerId, _path: &LayerPath) -> Result<LayerId> {
        Ok(layer.clone())
    }
}

/// The host path of `at` (not resolved: the front checked the rule).
fn host<D: HostTree>(d: &mut D, cx: &mut Cx<'_>, at: At<'_>) -> Result<PathBuf> {
    Ok(tree::host(&d.view_root(cx, at.layer)?, at.path))
}

/// A host error of a change at `at`, named by layer and path (EPERM as `NotPermitted`).
fn failed(at: At<'_>, host: &std::path::Path, e: layerlab_core::Error) -> layerlab_core::Error {
    match e {
        layerlab_core::Error::Io { source, .. } => hostfs::not_permitted(
            tree::from_io(at.layer, at.path, host, source),
            at.layer,
            at.path,
        ),
        other => other,
    }
}

impl<D: HostTree> Backend for D {
    const METERED: bool = false;

    fn resolve(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Option<FileKind>> {
        tree::resolve(&self.view_root(cx, at.layer)?, at.layer, at.path)
    }

    fn is_empty_dir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<bool> {
        tree::is_empty_dir(&host(self, cx, at)?)
    }

    /// Names the `HostTree::provider`.
    fn stat(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Metadata> {
        let host = host(self, cx, at)?;
        let md = std::fs::symlink_metadata(&host)
            .map_err(|e| tree::from_io(at.layer, at.path, &host, e))?;
        let provider = self.provider(cx.store, at.layer, at.path)?;
        hostfs::metadata(&host, &md, &provider)
    }

    fn read(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, len: u64) -> Result<Vec<u8>> {
        let host = host(self, cx, at)?;
        let buf = tree::read(&host, at.layer, at.path, offset, len)?;
        cx.meter.counts.bytes_read += buf.len() as u64;
        Ok(buf)
    }

    fn readdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<DirEntry>> {
        tree::readdir(&host(self, cx, at)?)
    }

    fn create(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        hostfs::create_file(&host(self, cx, at)?, mode).map(drop)
    }

    /// Synced as `HostTree::SYNC` says.
    fn write(&mut self, cx: &mut Cx<'_>, at: At<'_>, offset: u64, data: &[u8]) -> Result<()> {
        tree::write(
            &host(self, cx, at)?,
            at.layer,
            at.path,
            offset,
            data,
            D::SYNC,
        )?;
        cx.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn append(&mut self, cx: &mut Cx<'_>, at: At<'_>, data: &[u8]) -> Result<()> {
        tree::append(&host(self, cx, at)?, at.layer, at.path, data, D::SYNC)?;
        cx.meter.counts.bytes_written += data.len() as u64;
        Ok(())
    }

    fn truncate(&mut self, cx: &mut Cx<'_>, at: At<'_>, size: u64) -> Result<()> {
        tree::truncate(&host(self, cx, at)?, at.layer, at.path, size, D::SYNC)
    }

    fn mkdir(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        hostfs::create_dir(&host(self, cx, at)?, mode)
    }

    fn symlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, target: &str) -> Result<()> {
        hostfs::create_symlink(target, &host(self, cx, at)?)
    }

    fn hardlink(&mut self, cx: &mut Cx<'_>, at: At<'_>, existing: &LayerPath) -> Result<()> {
        let src = host(self, cx, at.to(existing))?;
        let dst = host(self, cx, at)?;
        std::fs::hard_link(&src, &dst).map_err(|e| tree::from_io(at.layer, at.path, &dst, e))
    }

    fn unlink(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()> {
        let host = host(self, cx, at)?;
        std::fs::remove_file(&host).map_err(|e| tree::from_io(at.layer, at.path, &host, e))
    }

    fn rmdir(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<()> {
        let host = host(self, cx, at)?;
        std::fs::remove_dir(&host).map_err(|e| tree::from_io(at.layer, at.path, &host, e))
    }

    /// A directory over a non-empty directory: the kernel's own answer, whose order of
    /// refusals is the reference (overlayfs: EXDEV for a lower directory before ENOTEMPTY).
    /// rename(2) cannot succeed there, so asking it changes nothing.
    fn check_rename(&mut self, cx: &mut Cx<'_>, mv: Rename<'_>) -> Result<()> {
        if mv.plan.source != FileKind::Dir || mv.plan.replaces != Some(FileKind::Dir) {
            return Ok(());
        }
        let dst = host(self, cx, mv.dest())?;
        if tree::is_empty_dir(&dst)? {
            return Ok(());
        }
        let src = host(self, cx, mv.source())?;
        match std::fs::rename(&src, &dst) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) => {
                Err(tree::from_io(mv.layer, mv.to, &dst, e))
            }
            Err(e) => Err(tree::from_io(mv.layer, mv.from, &src, e)),
            Ok(()) => Err(layerlab_core::Error::Corrupt {
                path: dst,
                detail: "the kernel renamed a directory over a non-empty one".into(),
            }),
        }
    }

    fn rename(&mut self, cx: &mut Cx<'_>, mv: Rename<'_>) -> Result<()> {
        let src = host(self, cx, mv.source())?;
        let dst = host(self, cx, mv.dest())?;
        std::fs::rename(&src, &dst).map_err(|e| tree::from_io(mv.layer, mv.from, &src, e))
    }

    fn chmod(&mut self, cx: &mut Cx<'_>, at: At<'_>, mode: u32) -> Result<()> {
        hostfs::set_mode(&host(self, cx, at)?, mode)
    }

    /// The mode kept, as [`tree::chown`] says.
    fn chown(&mut self, cx: &mut Cx<'_>, at: At<'_>, uid: u32, gid: u32) -> Result<()> {
        tree::chown(&host(self, cx, at)?, uid, gid)
    }

    fn set_mtime(&mut self, cx: &mut Cx<'_>, at: At<'_>, secs: i64, nsec: u32) -> Result<()> {
        let host = host(self, cx, at)?;
        hostfs::set_mtime(&host, secs, nsec).map_err(|e| failed(at, &host, e))
    }

    fn mknod(&mut self, cx: &mut Cx<'_>, at: At<'_>, node: Node) -> Result<()> {
        let host = host(self, cx, at)?;
        hostfs::create_node(&host, node.kind, node.mode, node.rdev)
            .map_err(|e| failed(at, &host, e))
    }

    fn get_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<Option<Vec<u8>>> {
        hostfs::layer_xattr(&host(self, cx, at)?, name)
    }

    fn list_xattrs(&mut self, cx: &mut Cx<'_>, at: At<'_>) -> Result<Vec<String>> {
        hostfs::layer_xattrs(&host(self, cx, at)?)
    }

    fn set_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str, value: &[u8]) -> Result<()> {
        let host = host(self, cx, at)?;
        hostfs::set_layer_xattr(&host, name, value).map_err(|e| failed(at, &host, e))
    }

    fn remove_xattr(&mut self, cx: &mut Cx<'_>, at: At<'_>, name: &str) -> Result<bool> {
        let host = host(self, cx, at)?;
        hostfs::remove_layer_xattr(&host, name).map_err(|e| failed(at, &host, e))
    }
}
