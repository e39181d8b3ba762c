//! An open store for one command, and the `--trace` machinery: every driver call the
//! command makes goes through [`Session::op`], which prints that operation's steps and
//! Meter counts to stderr when tracing.

use super::args::Global;
use super::output;
use layerlab_core::{Counts, LayerDriver};
use layerlab_drivers::{registry, Access, AnyDriver, Options};
use layerlab_oci::{image, ImageRecord};
use std::path::{Path, PathBuf};

/// A store opened by one command.
#[derive(Debug)]
pub struct Session {
    driver: AnyDriver,
    root: PathBuf,
    trace: bool,
    ops: usize,
    total: Counts,
}

impl Session {
    /// Opens the store named by the global options, for reading or for writing.
    pub fn open(global: &Global, access: Access) -> layerlab_core::Result<Session> {
        let root = global.store_root();
        let driver = registry::open(&root, access)?;
        Ok(Session::wrap(driver, root, global.trace))
    }

    /// Opens the store named by the global options for reading, with the images imported
    /// into it.
    pub fn open_images(global: &Global) -> anyhow::Result<(Session, Vec<ImageRecord>)> {
        let s = Session::open(global, Access::Read)?;
        let images = image::load_images(s.root())?;
        Ok((s, images))
    }

    /// Creates a new store for `driver` and opens it for writing.
    pub fn init(global: &Global, driver: &str, options: Options) -> layerlab_core::Result<Session> {
        let root = global.store_root();
        let driver = registry::init(driver, &root, options)?;
        Ok(Session::wrap(driver, root, global.trace))
    }

    fn wrap(mut driver: AnyDriver, root: PathBuf, trace: bool) -> Session {
        if trace {
            driver.meter_mut().set_tracing(true);
        }
        Session {
            driver,
            root,
            trace,
            ops: 0,
            total: Counts::default(),
        }
    }

    /// The store directory as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The driver, for calls that count nothing (layer table lookups, status).
    pub fn driver(&self) -> &AnyDriver {
        &self.driver
    }

    /// Runs one driver operation. With `--trace`, prints `trace: <label>`, the driver's
    /// steps and the counts of this operation alone (also when it fails).
    pub fn op<T, E>(
        &mut self,
        label: impl FnOnce() -> String,
        f: impl FnOnce(&mut AnyDriver) -> Result<T, E>,
    ) -> Result<T, E> {
        let before = self.driver.meter().counts;
        let result = f(&mut self.driver);
        let counts = self.driver.meter().counts.since(&before);
        self.ops += 1;
        self.total.add(&counts);
        if self.trace {
            let steps = self.driver.meter_mut().take_steps();
            output::trace_op(&label(), &steps, &counts, result.is_err());
        }
        result
    }

    /// Ends the command: with `--trace` and more than one operation, prints the total.
    pub fn finish(self) {
        if self.trace && self.ops > 1 {
            output::trace_total(self.ops, &self.total);
        }
    }
}
