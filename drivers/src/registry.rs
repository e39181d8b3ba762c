//! The registry: every driver by name, and `AnyDriver`, which picks one driver once, at the
//! boundary, and dispatches statically behind it.
//!
//! Registering a driver is one line in the `drivers!` invocation below: it then appears in
//! `layerlab drivers`, `init --driver`, and the conformance and property suites.
//!
//! `enum_dispatch` cannot be used here (the trait lives in `layerlab-core`; see
//! docs/DESIGN.md section 7), so a small macro generates the enum, the `From` impls and the
//! `match` that core's [`layerlab_core::forward_layer_driver`] forwards every trait method
//! through.

use crate::backend::{Backend, Lifecycle};
use crate::front::Layers;
use crate::fsck::CheckReport;
use crate::options::OptionSpec;
use crate::store::{Access, Options, StoreConfig};
use layerlab_core::{Error, Meter, Result};
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
                name: <$ty as Lifecycle>::NAME,
                description: <$ty as Lifecycle>::DESCRIPTION,
                options: <$ty as Lifecycle>::OPTIONS,
                available: <$ty as Lifecycle>::availability,
                metered: <$ty as Backend>::METERED,
            }),*
        ];

        /// Creates a new store for the driver called `name`.
        pub fn init(name: &str, root: &Path, options: Options) -> Result<AnyDriver> {
            $(
                if name == <$ty as Lifecycle>::NAME {
                    <$ty as Lifecycle>::availability().map_err(|why| unavailable(name, why))?;
                    return Ok(AnyDriver::$variant(Layers::<$ty>::init(root, options)?));
                }
            )*
            Err(unknown(name))
        }

        /// Opens the store at `root` with the driver it was created for.
        pub fn open(root: &Path, access: Access) -> Result<AnyDriver> {
            let name = StoreConfig::read(root)?.driver;
            $(
                if name == <$ty as Lifecycle>::NAME {
                    <$ty as Lifecycle>::availability().map_err(|why| unavailable(&name, why))?;
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
                if name == <$ty as Lifecycle>::NAME {
                    <$ty as Lifecycle>::availability().map_err(|why| unavailable(&name, why))?;
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

layerlab_core::forward_layer_driver!(AnyDriver, dispatch, dispatch, dispatch, {
    fn meter(&self) -> &Meter {
        dispatch!(self, d => d.meter())
    }
    fn meter_mut(&mut self) -> &mut Meter {
        dispatch!(self, d => d.meter_mut())
    }
});
