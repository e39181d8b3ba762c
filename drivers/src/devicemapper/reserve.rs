//! Space held back on the host for removals, as `dm.min_free_space` and btrfs's global
//! reserve do: a file `<root>/devicemapper/reserve` whose bytes are allocated on the host
//! (`fallocate`), sized for the pool's shadowing reserve and a metadata record. When the
//! host filesystem is full, an operation that takes no new pool block (an unlink, a rmdir,
//! a truncate, a chmod: only shadows of blocks it owns, or a device deleted) releases the
//! reserve and retries, so removing files and layers works on a full host; the reserve is
//! taken back after the next commit that finds the space.

use layerlab_core::Error;
use std::path::PathBuf;

/// The host reserve of one pool.
#[derive(Debug)]
pub struct HostReserve {
    path: PathBuf,
    bytes: u64,
    /// The file is smaller than `bytes` (released, or never filled).
    short: bool,
}

/// True when `e` is the host filesystem out of space (or quota).
pub fn host_full(e: &Error) -> bool {
    let full = [
        rustix::io::Errno::NOSPC.raw_os_error(),
        rustix::io::Errno::DQUOT.raw_os_error(),
    ];
    matches!(e, Error::Io { source, .. } if source.raw_os_error().is_some_and(|c| full.contains(&c)))
}

impl HostReserve {
    /// The reserve file under `dir`, of `bytes`; filled now when `writable`.
    pub fn new(dir: &std::path::Path, bytes: u64, writable: bool) -> Self {
        let mut r = HostReserve {
            path: dir.join("reserve"),
            bytes,
            short: true,
        };
        if writable {
            r.fill();
        }
        r
    }

    /// Allocates the reserve on the host if it is not (best effort: on a full host it
    /// stays released and is tried again after the next commit).
    pub fn fill(&mut self) {
        if !self.short {
            return;
        }
        let Ok(f) = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
        else {
            return;
        };
        use std::os::unix::fs::MetadataExt;
        if f.metadata().is_ok_and(|m| m.blocks() * 512 >= self.bytes) {
            self.short = false;
            return;
        }
        // the whole reserve, or as much of it as the host has (halving down to 64 KiB):
        // a reserve that could not be taken whole soaks up the space later commits free
        let mut want = self.bytes;
        while want >= 64 << 10 {
            let done = rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, want);
            if done.is_ok() && f.sync_all().is_ok() {
                self.short = want < self.bytes;
                return;
            }
            want /= 2;
        }
    }

    /// Runs `f`; when the host is full and `releasing` (the operation takes no new pool
    /// block), gives the reserve back and runs it once more.
    pub fn retry<T>(
        &mut self,
        releasing: bool,
        mut f: impl FnMut() -> layerlab_core::Result<T>,
    ) -> layerlab_core::Result<T> {
        match f() {
            Err(e) if releasing && host_full(&e) && self.release() => f(),
            r => r,
        }
    }

    /// Gives the reserve back to the host; false when there was none to give.
    pub fn release(&mut self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(f) = std::fs::OpenOptions::new().write(true).open(&self.path) else {
            return false;
        };
        if f.metadata().map_or(true, |m| m.blocks() == 0) {
            return false;
        }
        self.short = true;
        f.set_len(0).is_ok()
    }
}
