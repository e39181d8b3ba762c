//! [`Batch`]: the deferred fsyncs of a pool's writes and log records between
//! `begin_batch` and `end_batch`, as the cow engine (btrfs, zfs) defers them (devicemapper
//! makes a batch one pool transaction instead: `devicemapper/pool.rs`).

use super::MetaLog;
use layerlab_core::{IoContext, Meter, Result};
use std::fs::File;
use std::path::Path;

/// Whether a pool is in a batch, and whether the batch wrote pool data not yet fsynced.
/// In a batch, data and record fsyncs wait for its end: the data first, then the records
/// (the batch's commit point).
#[derive(Debug, Default)]
pub struct Batch {
    active: bool,
    data_unsynced: bool,
}

impl Batch {
    /// In a batch: fsyncs wait for [`Batch::end`].
    pub fn active(&self) -> bool {
        self.active
    }

    /// Starts a batch: `log` defers its record fsyncs.
    pub fn begin(&mut self, log: &mut MetaLog) {
        self.active = true;
        log.defer_syncs(true);
    }

    /// Notes that pool data was written in the batch and waits for its end.
    pub fn data_written(&mut self) {
        self.data_unsynced = true;
    }

    /// Fsyncs the pool data file `data` (at `path`) if the batch left data unsynced.
    pub fn sync_data(&mut self, data: &File, path: &Path) -> Result<()> {
        if self.data_unsynced {
            data.sync_data().at(path)?;
            self.data_unsynced = false;
        }
        Ok(())
    }

    /// Ends a batch: the pool data fsynced, then `log`'s records. After a failure, a second
    /// call retries the fsyncs that failed.
    pub fn end(
        &mut self,
        log: &mut MetaLog,
        data: &File,
        path: &Path,
        meter: &mut Meter,
    ) -> Result<()> {
        self.active = false;
        log.defer_syncs(false);
        self.sync_data(data, path)?;
        if log.sync()? {
            // the batch's commit point: one log commit, its data part of it
            meter.counts.log_commits += 1;
        }
        Ok(())
    }
}
