//! The environment of a run: CPU, kernel, the store directory's filesystem, versions,
//! the config hash, the seed.

use super::config::Experiment;
use super::results::Environment;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The SHA-256 of the experiment's configuration text, in hex.
pub fn config_hash(exp: &Experiment) -> String {
    let mut h = Sha256::new();
    h.update(exp.text.as_bytes());
    hex::encode(h.finalize())
}

fn cpu() -> String {
    let count = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model} x {count}")
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn rustc() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// UTC now as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Drops the page cache, dentries and inodes (after a sync); false where this process may
/// not (not root, or `/proc/sys` read-only).
pub fn drop_caches() -> bool {
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", b"3").is_ok()
}

/// Whether [`drop_caches`] is allowed here (checked without dropping anything).
pub fn can_drop_caches() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .is_ok()
}

/// The environment of a run whose stores are made under `store_dir`.
pub fn environment(exp: &Experiment, store_dir: &Path) -> Environment {
    Environment {
        cpu: cpu(),
        kernel: kernel(),
        store_filesystem: layerlab_drivers::hostfs::fs_type_name(store_dir),
        layerlab_version: env!("CARGO_PKG_VERSION").to_string(),
        rustc: rustc(),
        config_hash: config_hash(exp),
        seed: exp.seed,
        quick: exp.quick,
        started: utc_now(),
        drop_caches: can_drop_caches(),
    }
}
