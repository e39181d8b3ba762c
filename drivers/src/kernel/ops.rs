//! The file operations of the kernel drivers, written once. A kernel driver serves every
//! layer's view as a host directory tree (an overlay mount, a btrfs subvolume); given how
//! to find that tree ([`HostTree`]), each operation here is the same for every such driver:
//! check the layer may change (`begin`), check the rule of [`layerlab_core::rules`], then
//! one call into [`tree`], [`hostfs`] or `std::fs` on the host path. The Meter counts bytes
//! read and written only. Static dispatch: every function is generic over the driver.

use super::tree;
use crate::hostfs;
use layerlab_core::rules::{self, Resolve};
use layerlab_core::{DirEntry, FileKind, LayerDriver, LayerId, LayerPath, Metadata, Result};
use std::path::PathBuf;

/// A driver whose layer views are host directory trees the kernel serves.
pub(crate) trait HostTree: LayerDriver + Resolve {
    /// Whether a data change is made durable before the call returns.
    const SYNC: tree::DataSync;

    /// The checks every change starts with: the store writable, the layer active.
    fn begin(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()>;

    /// The host directory of `layer`'s view (the layer must exist; may mount it).
    fn view_root(&mut self, layer: &LayerId) -> Result<PathBuf>;

    /// The layer that provides the entry at `path` of `layer`'s view (by default `layer`
    /// itself: its view holds its own copy of everything).
    fn provider(&self, layer: &LayerId, _path: &LayerPath) -> Result<LayerId> {
        Ok(layer.clone())
    }

    /// The host path of `path` in `layer`'s view (not resolved: call after a rule).
    fn host(&mut self, layer: &LayerId, path: &LayerPath) -> Result<PathBuf> {
        Ok(tree::host(&self.view_root(layer)?, path))
    }
}

/// [`Resolve::resolve`]: an `lstat` per component of the view.
pub(crate) fn resolve<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<Option<FileKind>> {
    tree::resolve(&d.view_root(layer)?, layer, path)
}

/// [`Resolve::is_empty_dir`].
pub(crate) fn is_empty_dir<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<bool> {
    tree::is_empty_dir(&d.host(layer, path)?)
}

/// [`LayerDriver::stat`], naming the [`HostTree::provider`].
pub(crate) fn stat<D: HostTree>(d: &mut D, layer: &LayerId, path: &LayerPath) -> Result<Metadata> {
    rules::need_entry(d, layer, path)?;
    let host = d.host(layer, path)?;
    let md = std::fs::symlink_metadata(&host).map_err(|e| tree::from_io(layer, path, &host, e))?;
    let provider = d.provider(layer, path)?;
    hostfs::metadata(&host, &md, &provider)
}

/// [`LayerDriver::read`], counting the bytes read.
pub(crate) fn read<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>> {
    rules::need_file(d, layer, path)?;
    let host = d.host(layer, path)?;
    let buf = tree::read(&host, layer, path, offset, len)?;
    d.meter_mut().counts.bytes_read += buf.len() as u64;
    Ok(buf)
}

/// [`LayerDriver::readdir`].
pub(crate) fn readdir<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<Vec<DirEntry>> {
    rules::need_dir(d, layer, path)?;
    tree::readdir(&d.host(layer, path)?)
}

/// [`LayerDriver::create`].
pub(crate) fn create<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    mode: u32,
) -> Result<()> {
    d.begin(layer, path)?;
    rules::need_absent(d, layer, path)?;
    hostfs::create_file(&d.host(layer, path)?, mode).map(drop)
}

/// [`LayerDriver::write`] (synced as [`HostTree::SYNC`] says), counting the bytes written.
pub(crate) fn write<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    offset: u64,
    data: &[u8],
) -> Result<()> {
    d.begin(layer, path)?;
    rules::need_file(d, layer, path)?;
    tree::write(&d.host(layer, path)?, layer, path, offset, data, D::SYNC)?;
    d.meter_mut().counts.bytes_written += data.len() as u64;
    Ok(())
}

/// [`LayerDriver::append`] (synced as [`HostTree::SYNC`] says), counting the bytes written.
pub(crate) fn append<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    data: &[u8],
) -> Result<()> {
    d.begin(layer, path)?;
    rules::need_file(d, layer, path)?;
    tree::append(&d.host(layer, path)?, layer, path, data, D::SYNC)?;
    d.meter_mut().counts.bytes_written += data.len() as u64;
    Ok(())
}

/// [`LayerDriver::truncate`] (synced as [`HostTree::SYNC`] says).
pub(crate) fn truncate<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    size: u64,
) -> Result<()> {
    d.begin(layer, path)?;
    rules::need_file(d, layer, path)?;
    tree::truncate(&d.host(layer, path)?, layer, path, size, D::SYNC)
}

/// [`LayerDriver::mkdir`].
pub(crate) fn mkdir<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    mode: u32,
) -> Result<()> {
    d.begin(layer, path)?;
    rules::need_absent(d, layer, path)?;
    hostfs::create_dir(&d.host(layer, path)?, mode)
}

/// [`LayerDriver::symlink`].
pub(crate) fn symlink<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    target: &str,
    link: &LayerPath,
) -> Result<()> {
    d.begin(layer, link)?;
    rules::check_symlink_target(layer, link, target)?;
    rules::need_absent(d, layer, link)?;
    hostfs::create_symlink(target, &d.host(layer, link)?)
}

/// [`LayerDriver::hardlink`].
pub(crate) fn hardlink<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    existing: &LayerPath,
    link: &LayerPath,
) -> Result<()> {
    d.begin(layer, link)?;
    rules::check_hardlink(d, layer, existing, link)?;
    let src = d.host(layer, existing)?;
    let dst = d.host(layer, link)?;
    std::fs::hard_link(&src, &dst).map_err(|e| tree::from_io(layer, link, &dst, e))
}

/// [`LayerDriver::unlink`].
pub(crate) fn unlink<D: HostTree>(d: &mut D, layer: &LayerId, path: &LayerPath) -> Result<()> {
    d.begin(layer, path)?;
    rules::check_unlink(d, layer, path)?;
    let host = d.host(layer, path)?;
    std::fs::remove_file(&host).map_err(|e| tree::from_io(layer, path, &host, e))
}

/// [`LayerDriver::rmdir`].
pub(crate) fn rmdir<D: HostTree>(d: &mut D, layer: &LayerId, path: &LayerPath) -> Result<()> {
    d.begin(layer, path)?;
    rules::check_rmdir(d, layer, path)?;
    let host = d.host(layer, path)?;
    std::fs::remove_dir(&host).map_err(|e| tree::from_io(layer, path, &host, e))
}

/// [`LayerDriver::rename`] (nothing is done when the rules say it changes nothing).
pub(crate) fn rename<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    from: &LayerPath,
    to: &LayerPath,
) -> Result<()> {
    d.begin(layer, from)?;
    let plan = rules::plan_rename(d, layer, from, to)?;
    if plan.noop {
        return Ok(());
    }
    let src = d.host(layer, from)?;
    let dst = d.host(layer, to)?;
    std::fs::rename(&src, &dst).map_err(|e| tree::from_io(layer, from, &src, e))
}

/// [`LayerDriver::chmod`].
pub(crate) fn chmod<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    mode: u32,
) -> Result<()> {
    d.begin(layer, path)?;
    rules::check_chmod(d, layer, path)?;
    hostfs::set_mode(&d.host(layer, path)?, mode)
}

/// [`LayerDriver::chown`] (the mode kept, as [`tree::chown`] says).
pub(crate) fn chown<D: HostTree>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    uid: u32,
    gid: u32,
) -> Result<()> {
    d.begin(layer, path)?;
    rules::need_entry(d, layer, path)?;
    tree::chown(&d.host(layer, path)?, uid, gid)
}

/// The file operations of [`layerlab_core::LayerDriver`], each a call of the function of
/// this module with its name: used inside a kernel driver's `impl LayerDriver`, so that
/// each operation is written once.
macro_rules! file_ops {
    () => {
        fn stat(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
        ) -> layerlab_core::Result<layerlab_core::Metadata> {
            $crate::kernel::ops::stat(self, layer, path)
        }

        fn read(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
            offset: u64,
            len: u64,
        ) -> layerlab_core::Result<Vec<u8>> {
            $crate::kernel::ops::read(self, layer, path, offset, len)
        }

        fn readdir(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
        ) -> layerlab_core::Result<Vec<layerlab_core::DirEntry>> {
            $crate::kernel::ops::readdir(self, layer, path)
        }

        fn create(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
            mode: u32,
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::create(self, layer, path, mode)
        }

        fn write(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
            offset: u64,
            data: &[u8],
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::write(self, layer, path, offset, data)
        }

        fn append(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
            data: &[u8],
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::append(self, layer, path, data)
        }

        fn truncate(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
            size: u64,
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::truncate(self, layer, path, size)
        }

        fn mkdir(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
            mode: u32,
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::mkdir(self, layer, path, mode)
        }

        fn symlink(
            &mut self,
            layer: &layerlab_core::LayerId,
            target: &str,
            link: &layerlab_core::LayerPath,
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::symlink(self, layer, target, link)
        }

        fn hardlink(
            &mut self,
            layer: &layerlab_core::LayerId,
            existing: &layerlab_core::LayerPath,
            link: &layerlab_core::LayerPath,
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::hardlink(self, layer, existing, link)
        }

        fn unlink(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::unlink(self, layer, path)
        }

        fn rmdir(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::rmdir(self, layer, path)
        }

        fn rename(
            &mut self,
            layer: &layerlab_core::LayerId,
            from: &layerlab_core::LayerPath,
            to: &layerlab_core::LayerPath,
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::rename(self, layer, from, to)
        }

        fn chmod(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
            mode: u32,
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::chmod(self, layer, path, mode)
        }

        fn chown(
            &mut self,
            layer: &layerlab_core::LayerId,
            path: &layerlab_core::LayerPath,
            uid: u32,
            gid: u32,
        ) -> layerlab_core::Result<()> {
            $crate::kernel::ops::chown(self, layer, path, uid, gid)
        }
    };
}
pub(crate) use file_ops;
