//! What every driver's store shares: the store's identity file, its lock, the layer table,
//! and atomic replacement of metadata files.
//!
//! On-disk layout common to all drivers (the driver's own data lives beside these):
//!
//! ```text
//! <root>/store.json    {"format":1,"driver":"overlay2","options":{...}}   written once by init
//! <root>/layers.json   the layer table: id -> parent, state                 replaced atomically
//! <root>/lock          flock()ed while a process uses the store (shared: readers)
//! <root>/lock.turnstile flock()ed by a waiting writer, so readers cannot starve it (`lock`)
//! <root>/mounts/       one record per layer served by `layerlab mount` (see `mounts`)
//! ```
//!
//! `layers.json` format (version 1):
//!
//! ```text
//! {"format": 1,
//!  "layers": {"<id>": {"parent": "<id>"|null, "state": "active"|"committed", "depth": N}, ...},
//!  "checksum": "<16 hex digits>"}
//! ```
//!
//! `checksum` is FNV-1a 64 ([`crate::codec::checksum`], the store formats' one checksum)
//! of the compact JSON of `layers` (a sorted map, so its bytes are canonical). Unknown
//! fields are refused, so a flip inside a key is caught too; a flip that breaks the JSON
//! fails the parse; a flip inside a value (a digit of a depth, a letter of an id or a
//! state) fails the checksum. A table without `checksum` (written before it existed) is
//! read as it is and gains one on its next save. Load refuses, with a message pointing at
//! `layerlab fsck`: an unknown format version (named), a checksum mismatch, a parent the
//! table does not hold, a parent cycle, a depth that is not its chain's length.
//!
//! Crash safety: `layers.json` is the commit point of every lifecycle change. It is replaced
//! by write-new, fsync, rename, fsync-directory, so a reader sees the old table or the new
//! one, and the checksum is inside the one file, so it is always the one of the rows beside
//! it. A layer's data is made complete and durable before the table names it, and dropped
//! from the table before its data is deleted; anything a crash leaves behind that the table
//! does not name is ignored and swept by the next writer. When the directory fsync after
//! the rename fails (EIO), the new table is in place but not known durable:
//! [`Store::update_table`] writes the old table back and reports the error (nothing
//! changed; the caller undoes its data); if that fails too, the table on disk decides, and a
//! change it names is reported as done. So a table never names a layer whose data the
//! caller dropped (a ghost), whatever fails. `store.json` is written once, by `init`, the
//! same way.

pub(crate) mod fsutil;
mod lock;
mod mounts;
mod table;

#[cfg(test)]
pub(crate) use fsutil::faults;
pub use fsutil::{fsync_dir, replace_file, write_atomic, Replace};
pub use lock::{Access, StoreLock};
pub use mounts::MountRecord;
pub(crate) use table::FSCK_HINT;
pub use table::{LayerEntry, LayerTable, TableProblem};

use layerlab_core::{Error, IoContext, LayerId, LayerInfo, LayerPath, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Driver options, `key=value` as given to `layerlab init --opt`.
pub type Options = BTreeMap<String, String>;

/// The format version of `store.json` and `layers.json`.
pub const FORMAT: u32 = 1;

/// The identity of a store: which driver, with which options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreConfig {
    /// Format version.
    pub format: u32,
    /// The driver's registry name.
    pub driver: String,
    /// The options the store was created with.
    pub options: Options,
}

impl StoreConfig {
    /// Reads `<root>/store.json`.
    pub fn read(root: &Path) -> Result<StoreConfig> {
        let path = root.join("store.json");
        let bytes = std::fs::read(&path).map_err(|e| store_file_error(root, &path, e))?;
        let cfg: StoreConfig = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        if cfg.format != FORMAT {
            return Err(Error::Corrupt {
                path,
                detail: format!("format {} (this layerlab reads {FORMAT})", cfg.format),
            });
        }
        Ok(cfg)
    }
}

/// The error for a store file that cannot be opened: a missing one means `root` is no
/// store (`Error::NotAStore`), any other failure is the file's I/O error.
pub(crate) fn store_file_error(root: &Path, path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NotAStore {
            root: root.to_path_buf(),
        }
    } else {
        Error::io(path, e)
    }
}

/// An open store: root, lock, config and layer table. Drivers own one.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    config: StoreConfig,
    table: LayerTable,
    access: Access,
    /// A layer this process serves (its mount record names this pid), once a change has
    /// read that record: the record stays this process's while the store is open (a
    /// server closes its store before it removes its record, and no other mount of a
    /// served layer starts), so later changes need not read it again.
    served_here: std::sync::OnceLock<LayerId>,
    _lock: StoreLock,
}

impl Store {
    /// Creates a new store at `root` (the directory may exist but must be empty) and opens it
    /// for writing.
    pub fn init(root: &Path, driver: &str, options: Options) -> Result<Store> {
        std::fs::create_dir_all(root).at(root)?;
        let lock = StoreLock::acquire(root, Access::Write)?;
        if root.join("store.json").exists() {
            return Err(Error::StoreExists {
                root: root.to_path_buf(),
                detail: "a store exists here already".into(),
            });
        }
        let mut entries = std::fs::read_dir(root).at(root)?;
        if entries
            .any(|e| e.is_ok_and(|e| e.file_name() != "lock" && e.file_name() != lock::TURNSTILE))
        {
            return Err(Error::StoreExists {
                root: root.to_path_buf(),
                detail: "the directory is not empty; a store needs an empty directory".into(),
            });
        }
        let config = StoreConfig {
            format: FORMAT,
            driver: driver.to_string(),
            options,
        };
        let table = LayerTable::default();
        table.save(root)?;
        let json = serde_json::to_vec_pretty(&config).map_err(|e| Error::Corrupt {
            path: root.join("store.json"),
            detail: e.to_string(),
        })?;
        // store.json last: a store without it is not a store yet.
        write_atomic(&root.join("store.json"), &json)?;
        Ok(Store {
            root: root.to_path_buf(),
            config,
            table,
            access: Access::Write,
            served_here: std::sync::OnceLock::new(),
            _lock: lock,
        })
    }

    /// Opens an existing store of `driver`.
    pub fn open(root: &Path, driver: &str, access: Access) -> Result<Store> {
        Store::open_with(root, driver, access, LayerTable::load)
    }

    /// Takes the lock, reads `store.json` (which must name `driver`), then the layer table
    /// with `load`.
    fn open_with(
        root: &Path,
        driver: &str,
        access: Access,
        load: fn(&Path) -> Result<LayerTable>,
    ) -> Result<Store> {
        let lock = StoreLock::acquire(root, access)?;
        let config = StoreConfig::read(root)?;
        if config.driver != driver {
            return Err(Error::Corrupt {
                path: root.join("store.json"),
                detail: format!("store belongs to driver {}, not {driver}", config.driver),
            });
        }
        let table = load(root)?;
        Ok(Store {
            root: root.to_path_buf(),
            config,
            table,
            access,
            served_here: std::sync::OnceLock::new(),
            _lock: lock,
        })
    }

    /// Opens a store for `fsck`: the lock and `store.json` as [`Store::open`] takes them,
    /// the layer table read leniently ([`LayerTable::read_lenient`]) with the problems
    /// [`Store::open`] would refuse it for, so that they can be reported and repaired.
    pub fn open_for_check(
        root: &Path,
        driver: &str,
        access: Access,
    ) -> Result<(Store, Vec<TableProblem>)> {
        let store = Store::open_with(root, driver, access, LayerTable::read_lenient)?;
        let problems = store.table.problems()?;
        Ok((store, problems))
    }

    /// Replaces the table in memory only (fsck: the layers it can check, while the table
    /// on disk is left as it is).
    pub(crate) fn set_table_in_memory(&mut self, table: LayerTable) {
        self.table = table;
    }

    /// Uses the store read-only from here (fsck, when the table cannot be trusted); the lock
    /// taken stays as it is.
    pub(crate) fn set_read_only(&mut self) {
        self.access = Access::Read;
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options the store was created with.
    pub fn options(&self) -> &Options {
        &self.config.options
    }

    /// The layer table.
    pub fn table(&self) -> &LayerTable {
        &self.table
    }

    /// A layer's facts, for a read.
    pub fn info(&self, id: &LayerId) -> Result<LayerInfo> {
        self.table.info(id)
    }

    /// A layer's facts, for a change of `path`: the store must be open for writing, the
    /// layer active and served by no mount of another process.
    pub fn info_for_change(&self, id: &LayerId, path: &LayerPath) -> Result<LayerInfo> {
        let info = self.table.info(id)?;
        self.writable()?;
        layerlab_core::rules::ensure_active(&info, path)?;
        if self.served_here.get() != Some(id) && MountRecord::check_unmounted(&self.root, id)? {
            let _ = self.served_here.set(id.clone());
        }
        Ok(info)
    }

    /// The checks before a layer is removed: the store writable, the layer there, no
    /// children (`LayerTable::check_remove`).
    pub fn check_remove(&self, id: &LayerId) -> Result<()> {
        self.writable()?;
        self.table.check_remove(id)?;
        MountRecord::check_unmounted(&self.root, id).map(drop)
    }

    /// The checks before a layer is committed: the store writable, the layer there and
    /// served by no mount.
    pub fn check_commit(&self, id: &LayerId) -> Result<LayerInfo> {
        self.writable()?;
        let info = self.table.info(id)?;
        MountRecord::check_unmounted(&self.root, id)?;
        Ok(info)
    }

    /// Fails unless the store was opened for writing.
    pub fn writable(&self) -> Result<()> {
        match self.access {
            Access::Write => Ok(()),
            Access::Read => Err(Error::Locked {
                store: self.root.clone(),
                detail: "opened read-only".into(),
            }),
        }
    }

    /// Changes the table and makes the change durable (the commit point). On failure the
    /// in-memory table is left as it was.
    pub fn update_table(&mut self, f: impl FnOnce(&mut LayerTable) -> Result<()>) -> Result<()> {
        self.writable()?;
        let mut next = self.table.clone();
        f(&mut next)?;
        match next.save_staged(&self.root) {
            Ok(()) => {
                self.table = next;
                Ok(())
            }
            Err(Replace::NotDone(e)) => Err(e),
            Err(Replace::Unsynced(e)) => {
                // The new table is in place but its durability is unknown: put the old one
                // back so that the error is true (nothing changed). If that fails too, the
                // table on disk says what happened, and that is what is reported.
                if self.table.save(&self.root).is_ok() {
                    return Err(e);
                }
                match LayerTable::read_lenient(&self.root) {
                    Ok(on_disk) if on_disk.same_rows(&next) => {
                        self.table = next;
                        Ok(())
                    }
                    _ => Err(e),
                }
            }
        }
    }
}
