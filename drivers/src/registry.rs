//! The registry: every driver by name, and `AnyDriver`, which picks one driver once, at the
//! boundary, and dispatches statically behind it.
//!
//! Registering a driver is one line in the `drivers!` invocation below: it then appears in
//! `layerlab drivers`, `init --driver`, and the conformance and property suites.
//!
//! `enum_dispatch` cannot be used here (the trait lives in `layerlab-core`; see
//! docs/DESIGN.md section 7), so a small macro generates the enum, the `From` impls and the
//! trait impl.

use crate::backend::Backend;
use crate::front::Layers;
use crate::fsck::CheckReport;
use crate::options::OptionSpec;
use crate::store::{Access, Options, StoreConfig};
use layerlab_core::{
    Change, DirEntry, DriverStatus, Error, FileKind, LayerDriver, LayerId, LayerInfo, LayerPath,
    Metadata, Meter, Result, Semantics, Usage,
};
use std::path::Path;

/// What the registry knows about a driver.
#[derive(Debug, Clone, Copy)]
pub struct DriverInfo {
    /// The registry name.
    pub name: &'static str,
    /// One line saying what it models.
    pub description: &'static str,
    /// The options `init` accepts.
    pub options: &'static [OptionSpec],
    /// Whether this machine can run the driver (`Err` says why not).
    pub available: fn() -> std::result::Result<(), String>,
    /// Whether its Meter counts its work (false for the kernel reference drivers).
    pub metered: bool,
}

impl DriverInfo {
    /// Whether this machine can run the driver (`Err` says why not).
    pub fn availability(&self) -> std::result::Result<(), String> {
        (self.available)()
    }

    /// True when this machine can run the driver.
    pub fn is_available(&self) -> bool {
        self.availability().is_ok()
    }
}

macro_rules! drivers {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// One of the registered drivers, chosen at run time; every call dispatches
        /// statically to the concrete driver.
        #[derive(Debug)]
        pub enum AnyDriver {
            $(
                #[allow(missing_docs)]
                $variant(Layers<$ty>),
            )*
        }

        $(
            impl From<Layers<$ty>> for AnyDriver {
                fn from(d: Layers<$ty>) -> Self {
                    AnyDriver::$variant(d)
                }
            }
        )*

        /// Every registered driver, in registry order.
        pub const DRIVERS: &[DriverInfo] = &[
            $(DriverInfo {
                name: <$ty as Backend>::NAME,
                description: <$ty as Backend>::DESCRIPTION,
                options: <$ty as Backend>::OPTIONS,
                available: <$ty as Backend>::availability,
                metered: <$ty as Backend>::METERED,
            }),*
        ];

        /// Creates a new store for the driver called `name`.
        pub fn init(name: &str, root: &Path, options: Options) -> Result<AnyDriver> {
            $(
                if name == <$ty as Backend>::NAME {
                    <$ty as Backend>::availability().map_err(|why| unavailable(name, why))?;
                    return Ok(AnyDriver::$variant(Layers::<$ty>::init(root, options)?));
                }
            )*
            Err(unknown(name))
        }

        /// Opens the store at `root` with the driver it was created for.
        pub fn open(root: &Path, access: Access) -> Result<AnyDriver> {
            let name = StoreConfig::read(root)?.driver;
            $(
                if name == <$ty as Backend>::NAME {
                    <$ty as Backend>::availability().map_err(|why| unavailable(&name, why))?;
                    return Ok(AnyDriver::$variant(Layers::<$ty>::open(root, access)?));
                }
            )*
            Err(unknown(&name))
        }

        /// `layerlab fsck` on the store at `root`, with the driver it was created for
        /// ([`Layers::fsck`]); works where [`open`] refuses. A `store.json` that cannot be
        /// understood is itself the one finding (nothing else can be checked without it).
        pub fn fsck(root: &Path, repair: bool) -> Result<CheckReport> {
            let name = match StoreConfig::read(root) {
                Ok(c) => c.driver,
                Err(Error::Corrupt { detail, .. }) => {
                    let mut report = CheckReport::default();
                    report.uncorrected(None, "store.json", detail);
                    return Ok(report);
                }
                Err(e) => return Err(e),
            };
            $(
                if name == <$ty as Backend>::NAME {
                    <$ty as Backend>::availability().map_err(|why| unavailable(&name, why))?;
                    return Layers::<$ty>::fsck(root, repair);
                }
            )*
            let mut report = CheckReport::default();
            report.uncorrected(None, "store.json", unknown(&name).to_string());
            Ok(report)
        }

        macro_rules! dispatch {
            ($self:ident, $d:ident => $call:expr) => {
                match $self {
                    $(AnyDriver::$variant($d) => $call,)*
                }
            };
        }
    };
}

fn unavailable(name: &str, why: String) -> Error {
    Error::InvalidOption {
        driver: name.to_string(),
        key: "driver".into(),
        reason: format!("not available on this machine: {why}"),
    }
}

fn unknown(name: &str) -> Error {
    let known: Vec<&str> = DRIVERS.iter().map(|d| d.name).collect();
    Error::InvalidOption {
        driver: name.to_string(),
        key: "driver".into(),
        reason: format!("no such driver (known: {})", known.join(", ")),
    }
}

drivers! {
    Vfs(crate::vfs::Vfs),
    Overlay2(crate::overlay2::Overlay2),
    Aufs(crate::aufs::Aufs),
    Devicemapper(crate::devicemapper::Devicemapper),
    Btrfs(crate::btrfs::Btrfs),
    Zfs(crate::zfs::Zfs),
    KernelOverlay(crate::kernel::KernelOverlay),
    KernelBtrfs(crate::kernel::KernelBtrfs),
}

/// The registry entry of a driver.
pub fn info(name: &str) -> Option<&'static DriverInfo> {
    DRIVERS.iter().find(|d| d.name == name)
}

impl LayerDriver for AnyDriver {
    fn name(&self) -> &'static str {
        dispatch!(self, d => d.name())
    }
    fn semantics(&self) -> Semantics {
        dispatch!(self, d => d.semantics())
    }
    fn meter(&self) -> &Meter {
        dispatch!(self, d => d.meter())
    }
    fn meter_mut(&mut self) -> &mut Meter {
        dispatch!(self, d => d.meter_mut())
    }
    fn create_layer(&mut self, id: &LayerId, parent: Option<&LayerId>) -> Result<()> {
        dispatch!(self, d => d.create_layer(id, parent))
    }
    fn commit(&mut self, id: &LayerId) -> Result<()> {
        dispatch!(self, d => d.commit(id))
    }
    fn remove_layer(&mut self, id: &LayerId) -> Result<()> {
        dispatch!(self, d => d.remove_layer(id))
    }
    fn layers(&self) -> Result<Vec<LayerInfo>> {
        dispatch!(self, d => d.layers())
    }
    fn layer(&self, id: &LayerId) -> Result<LayerInfo> {
        dispatch!(self, d => d.layer(id))
    }
    fn exists(&self, id: &LayerId) -> bool {
        dispatch!(self, d => d.exists(id))
    }
    fn stat(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Metadata> {
        dispatch!(self, d => d.stat(layer, path))
    }
    fn read(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        dispatch!(self, d => d.read(layer, path, offset, len))
    }
    fn readdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<DirEntry>> {
        dispatch!(self, d => d.readdir(layer, path))
    }
    fn create(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        dispatch!(self, d => d.create(layer, path, mode))
    }
    fn write(&mut self, layer: &LayerId, path: &LayerPath, offset: u64, data: &[u8]) -> Result<()> {
        dispatch!(self, d => d.write(layer, path, offset, data))
    }
    fn replace(&mut self, layer: &LayerId, path: &LayerPath, data: &[u8]) -> Result<()> {
        dispatch!(self, d => d.replace(layer, path, data))
    }
    fn append(&mut self, layer: &LayerId, path: &LayerPath, data: &[u8]) -> Result<()> {
        dispatch!(self, d => d.append(layer, path, data))
    }
    fn truncate(&mut self, layer: &LayerId, path: &LayerPath, size: u64) -> Result<()> {
        dispatch!(self, d => d.truncate(layer, path, size))
    }
    fn mkdir(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        dispatch!(self, d => d.mkdir(layer, path, mode))
    }
    fn symlink(&mut self, layer: &LayerId, target: &str, link: &LayerPath) -> Result<()> {
        dispatch!(self, d => d.symlink(layer, target, link))
    }
    fn hardlink(&mut self, layer: &LayerId, existing: &LayerPath, link: &LayerPath) -> Result<()> {
        dispatch!(self, d => d.hardlink(layer, existing, link))
    }
    fn unlink(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        dispatch!(self, d => d.unlink(layer, path))
    }
    fn rmdir(&mut self, layer: &LayerId, path: &LayerPath) -> Result<()> {
        dispatch!(self, d => d.rmdir(layer, path))
    }
    fn rename(&mut self, layer: &LayerId, from: &LayerPath, to: &LayerPath) -> Result<()> {
        dispatch!(self, d => d.rename(layer, from, to))
    }
    fn chmod(&mut self, layer: &LayerId, path: &LayerPath, mode: u32) -> Result<()> {
        dispatch!(self, d => d.chmod(layer, path, mode))
    }
    fn chown(&mut self, layer: &LayerId, path: &LayerPath, uid: u32, gid: u32) -> Result<()> {
        dispatch!(self, d => d.chown(layer, path, uid, gid))
    }
    fn set_mtime(&mut self, layer: &LayerId, path: &LayerPath, secs: i64, nsec: u32) -> Result<()> {
        dispatch!(self, d => d.set_mtime(layer, path, secs, nsec))
    }
    fn mknod(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        kind: FileKind,
        mode: u32,
        rdev: u64,
    ) -> Result<()> {
        dispatch!(self, d => d.mknod(layer, path, kind, mode, rdev))
    }
    fn get_xattr(&mut self, layer: &LayerId, path: &LayerPath, name: &str) -> Result<Vec<u8>> {
        dispatch!(self, d => d.get_xattr(layer, path, name))
    }
    fn list_xattrs(&mut self, layer: &LayerId, path: &LayerPath) -> Result<Vec<String>> {
        dispatch!(self, d => d.list_xattrs(layer, path))
    }
    fn set_xattr(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        name: &str,
        value: &[u8],
    ) -> Result<()> {
        dispatch!(self, d => d.set_xattr(layer, path, name, value))
    }
    fn remove_xattr(&mut self, layer: &LayerId, path: &LayerPath, name: &str) -> Result<()> {
        dispatch!(self, d => d.remove_xattr(layer, path, name))
    }
    fn changes(&mut self, layer: &LayerId) -> Result<Vec<Change>> {
        dispatch!(self, d => d.changes(layer))
    }
    fn usage(&mut self, layer: &LayerId) -> Result<Usage> {
        dispatch!(self, d => d.usage(layer))
    }
    fn status(&self) -> Result<DriverStatus> {
        dispatch!(self, d => d.status())
    }
    fn begin_batch(&mut self) {
        dispatch!(self, d => d.begin_batch())
    }
    fn end_batch(&mut self) -> Result<()> {
        dispatch!(self, d => d.end_batch())
    }
}
