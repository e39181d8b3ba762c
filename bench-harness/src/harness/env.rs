//! The environment of a run: CPU, kernel, the store directory's filesystem, versions,
//! the config hash, the seed.

use super::config::Experiment;
use super::results::Environment;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::SystemTime;

/// The SHA-256 of the experiment's configuration text, in hex.
pub fn config_hash(exp: &Experiment) -> String {
    let mut h = Sha256::new();
    h.update(exp.text.as_bytes());
    hex::encode(h.finalize())
}

/// CPU model and count (`model x N`).
pub fn cpu() -> String {
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

/// The kernel release.
pub fn kernel() -> String {
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
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
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

/// Total memory (`MemTotal` of `/proc/meminfo`), for people.
pub fn memory() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let kib: u64 = t
                .lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(format!("{:.1} GiB", kib as f64 / (1u64 << 20) as f64))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A mount's options and its superblock's, each once, in order.
fn mount_options(mount: &str, superblock: &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for o in mount.split(',').chain(superblock.split(',')) {
        if !o.is_empty() && !seen.contains(&o) {
            seen.push(o);
        }
    }
    seen.join(",")
}

/// The mount that holds `dir` (`/proc/self/mountinfo`, matched by device number): its
/// source, filesystem type and options (mount and superblock).
fn mount_of(dir: &Path) -> Option<(String, String, String)> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let want = format!("{major}:{minor}");
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().rev().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let f: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        (f.get(2) == Some(&want.as_str())).then(|| {
            (
                r.get(1).unwrap_or(&"").to_string(),
                r.first().unwrap_or(&"").to_string(),
                mount_options(f.get(5).unwrap_or(&""), r.get(2).unwrap_or(&"")),
            )
        })
    })
}

/// The disk under `dir`, for people: device, kernel driver, vendor, size, and whether the
/// kernel calls it rotational (as `/sys/block` says; a virtual disk's word only).
fn disk(dir: &Path) -> String {
    let Some((source, _, _)) = mount_of(dir) else {
        return "unknown".into();
    };
    let name = source.trim_start_matches("/dev/");
    let sys = Path::new("/sys/block").join(name);
    let read = |p: &str| {
        std::fs::read_to_string(sys.join(p))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let driver = std::fs::read_link(sys.join("device/driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let model = [read("device/model"), read("device/vendor"), driver]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let size = read("size")
        .parse::<u64>()
        .map(|sectors| format!("{:.0} GiB", (sectors * 512) as f64 / (1u64 << 30) as f64))
        .unwrap_or_default();
    let kind = match read("queue/rotational").as_str() {
        "1" => "rotational (as the kernel reports it)",
        "0" => "solid-state (as the kernel reports it)",
        _ => "",
    };
    [source.clone(), model, size, kind.to_string()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The environment of a run whose stores are made under `store_dir`.
pub fn environment(exp: &Experiment, store_dir: &Path) -> Environment {
    Environment {
        cpu: cpu(),
        kernel: kernel(),
        store_filesystem: layerlab_drivers::hostfs::fs_type_name(store_dir),
        store_mount_options: mount_of(store_dir).map(|m| m.2).unwrap_or_default(),
        memory: memory(),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        disk: disk(store_dir),
        layerlab_version: env!("CARGO_PKG_VERSION").to_string(),
        rustc: rustc(),
        config_hash: config_hash(exp),
        seed: exp.seed,
        quick: exp.quick,
        started: utc_now(),
        drop_caches: can_drop_caches(),
        calibration: String::new(),
        calibration_hash: String::new(),
        wall_seconds: Vec::new(),
        driver_seconds: Vec::new(),
    }
}
