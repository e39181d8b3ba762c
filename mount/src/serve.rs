//! Mounting one layer of a store and serving it until it is unmounted.

use crate::conn::{Conn, Totals, Tracer, IDLE};
use crate::fs::{Caching, LayerFs};
use crate::MountError;
use fuser::{Config, MountOption, SessionACL};
use layerlab_core::{Error, LayerDriver, LayerId, LayerState};
use layerlab_drivers::{registry, Access, MountRecord};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What to mount.
#[derive(Debug, Clone)]
pub struct MountRequest {
    /// The store.
    pub store: PathBuf,
    /// The layer.
    pub layer: LayerId,
    /// The mount directory.
    pub dir: PathBuf,
    /// Serve an active layer read-only.
    pub read_only: bool,
}

/// Whether this machine can serve FUSE mounts (`Err` says why not).
pub fn fuse_available() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse is missing".into());
    }
    if !rustix::process::geteuid().is_root() {
        return Err("mounting without libfuse needs root".into());
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map(|_| ())
        .map_err(|e| format!("/dev/fuse: {e}"))
}

fn fuse_err(dir: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> MountError {
    let dir = dir.to_path_buf();
    move |source| MountError::Fuse { dir, what, source }
}

/// The mount directory, absolute; a stale FUSE mount there is reported as such.
fn check_dir(dir: &Path) -> Result<PathBuf, MountError> {
    match std::fs::metadata(dir) {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTCONN.raw_os_error()) => {
            Err(MountError::Stale {
                dir: dir.to_path_buf(),
            })
        }
        Err(e) => Err(fuse_err(dir, "mount directory")(e)),
        Ok(m) if !m.is_dir() => Err(fuse_err(dir, "mount directory")(std::io::Error::from(
            std::io::ErrorKind::NotADirectory,
        ))),
        Ok(_) => std::fs::canonicalize(dir).map_err(fuse_err(dir, "mount directory")),
    }
}

/// Mounts the layer, calls `ready` once the mount answers, and serves until the directory
/// is unmounted (by [`unmount`], `umount`, or a signal handler calling it). Returns what
/// the whole mount did. The mount record is written before `ready` and removed last.
pub fn serve(
    req: &MountRequest,
    tracer: Option<Tracer>,
    ready: impl FnOnce(&MountRecord),
) -> Result<Totals, MountError> {
    let (dir, writable) = preflight(req)?;
    let access = if writable {
        Access::Write
    } else {
        Access::Read
    };
    let root = req.store.clone();
    let conn = Arc::new(Conn::new(
        Box::new(move || registry::open(&root, access)),
        tracer,
    ));
    let caching = if writable {
        Caching::READ_WRITE
    } else {
        Caching::READ_ONLY
    };
    let fs = LayerFs::new(
        conn.clone(),
        req.layer.clone(),
        writable,
        caching,
        req.store.clone(),
    );
    let session =
        fuser::Session::new(fs, &dir, &config(req, writable)).map_err(fuse_err(&dir, "mount"))?;
    let record = MountRecord {
        layer: req.layer.clone(),
        dir: dir.clone(),
        pid: std::process::id(),
    };
    record.save(&req.store)?;
    let stop = Arc::new(AtomicBool::new(false));
    let releaser = spawn_releaser(conn.clone(), stop.clone());
    ready(&record);
    // the kernel ends a session by failing the device read: ENODEV after a clean unmount
    // (fuser returns Ok), ECONNABORTED when the connection was aborted (an unmount with
    // requests still queued, or `/sys/fs/fuse/connections/N/abort`): both are the end
    let served = match session.run() {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::CONNABORTED.raw_os_error()) => Ok(()),
        other => other.map_err(fuse_err(&dir, "serve")),
    };
    stop.store(true, Ordering::Relaxed);
    let _ = releaser.map(|h| h.join());
    let totals = conn.close();
    save_totals(&req.store, &req.layer, &totals)?;
    MountRecord::remove(&req.store, &req.layer)?;
    served.map(|()| totals)
}

/// Where a finished server leaves its totals for `layerlab umount`.
pub fn totals_path(store: &Path, layer: &LayerId) -> PathBuf {
    MountRecord::dir_of(store).join(format!("{}.totals.json", layer.dir_name()))
}

fn save_totals(store: &Path, layer: &LayerId, totals: &Totals) -> Result<(), MountError> {
    let path = totals_path(store, layer);
    let json = serde_json::to_vec(totals).map_err(|e| Error::Corrupt {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    layerlab_drivers::store::write_atomic(&path, &json)?;
    Ok(())
}

/// Takes (reads and removes) the totals a finished server left.
pub fn take_totals(store: &Path, layer: &LayerId) -> Result<Option<Totals>, MountError> {
    let path = totals_path(store, layer);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e).into()),
    };
    let _ = std::fs::remove_file(&path);
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        MountError::Store(Error::Corrupt {
            path,
            detail: e.to_string(),
        })
    })
}

/// The checks before mounting, made before anything is changed: the directory (absolute,
/// not a stale mount), the layer not served already, the layer there. Returns the
/// directory and whether the mount is writable.
pub fn preflight(req: &MountRequest) -> Result<(PathBuf, bool), MountError> {
    let dir = check_dir(&req.dir)?;
    if let Some(r) = MountRecord::load(&req.store, &req.layer)? {
        if r.alive() {
            return Err(MountError::AlreadyMounted {
                layer: r.layer,
                dir: r.dir,
                pid: r.pid,
            });
        }
    }
    let state = registry::open(&req.store, Access::Read)?
        .layer(&req.layer)?
        .state;
    Ok((dir, state == LayerState::Active && !req.read_only))
}

fn config(req: &MountRequest, writable: bool) -> Config {
    let mut c = Config::default();
    c.mount_options = vec![
        MountOption::FSName(format!("layerlab:{}", req.layer)),
        MountOption::Subtype("layerlab".into()),
        MountOption::DefaultPermissions,
        MountOption::Dev,
        MountOption::Suid,
        if writable {
            MountOption::RW
        } else {
            MountOption::RO
        },
    ];
    if rustix::process::geteuid().is_root() {
        c.acl = SessionACL::All;
    }
    c
}

fn spawn_releaser<D: LayerDriver + Send + 'static>(
    conn: Arc<Conn<D>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("layerlab-idle".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(IDLE / 2);
                conn.release_idle(IDLE);
            }
        })
}

/// Unmounts `dir` (the server then finishes and exits). `lazy` detaches a busy or stale
/// mount instead of failing with EBUSY.
pub fn unmount(dir: &Path, lazy: bool) -> Result<(), MountError> {
    let flags = if lazy {
        rustix::mount::UnmountFlags::DETACH
    } else {
        rustix::mount::UnmountFlags::empty()
    };
    rustix::mount::unmount(dir, flags).map_err(|e| MountError::Fuse {
        dir: dir.to_path_buf(),
        what: "unmount",
        source: e.into(),
    })
}

/// The live or stale record of the mount at `dir` in the store at `store`.
pub fn record_at(store: &Path, dir: &Path) -> Result<MountRecord, MountError> {
    let want = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    MountRecord::all(store)?
        .into_iter()
        .find(|r| r.dir == want || r.dir == dir)
        .ok_or_else(|| MountError::NotMounted {
            dir: dir.to_path_buf(),
        })
}
