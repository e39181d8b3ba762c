//! Device profiles: what a probe, a byte, a metadata write and an fsync cost on a kind of
//! device. Read from TOML (`configs/profiles/*.toml`); the standard ones are embedded in
//! the binary so that the standard run needs no files.

use super::error::Result;
use super::toml_errors::{error_at_key, toml_error};
use layerlab_core::size::Size;
use serde::{Deserialize, Serialize};

/// The embedded profiles: (name, TOML text).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("hdd", include_str!("../../../configs/profiles/hdd.toml")),
    (
        "sata-ssd",
        include_str!("../../../configs/profiles/sata-ssd.toml"),
    ),
    ("nvme", include_str!("../../../configs/profiles/nvme.toml")),
    ("ram", include_str!("../../../configs/profiles/ram.toml")),
];

/// What each counted unit of work costs on one kind of device. Bandwidths are bytes per
/// second (written as sizes: `"520MiB"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name (`hdd`, `nvme`, ...).
    pub name: String,
    /// One line for people.
    #[serde(default)]
    pub description: String,
    /// For a calibrated profile: the fingerprint of the machine it was measured on
    /// ([`crate::harness::calibration::fingerprint`]); empty for the others.
    #[serde(default)]
    pub fingerprint: String,
    /// Microseconds per layer probe that misses every cache (Meter `probes`).
    pub probe_cold_us: f64,
    /// Microseconds per lookup answered by a cache or per probe of a directory the host has
    /// cached (Meter `cache_hits`, `warm_probes`).
    pub probe_warm_us: f64,
    /// Microseconds per directory entry scanned.
    pub entry_scan_us: f64,
    /// Bytes per second read (a calibrated profile: from the page cache, since the device
    /// reads of a cold read are counted as extents, `extent_us` each).
    pub read_bandwidth: Size,
    /// Bytes per second written.
    pub write_bandwidth: Size,
    /// Bytes per second copied (copy-up, CoW, layer copies: a read plus a write).
    pub copy_bandwidth: Size,
    /// Microseconds per metadata write.
    pub metadata_write_us: f64,
    /// Microseconds per fsync of a file's data (Meter `fsyncs`).
    pub fsync_us: f64,
    /// Microseconds per fsync that makes new entries durable: new directories and files,
    /// renames (Meter `entry_fsyncs`).
    #[serde(default)]
    pub entry_fsync_us: f64,
    /// Microseconds per extent read (a seek on a disk).
    #[serde(default)]
    pub extent_us: f64,
    /// Microseconds per block or extent allocated.
    #[serde(default)]
    pub block_alloc_us: f64,
    /// Microseconds of a read call's fixed cost: open, read and close of cached data (Meter
    /// `reads`).
    #[serde(default)]
    pub read_call_us: f64,
    /// Microseconds per log commit of a copy-on-write filesystem: an fsync there, the data
    /// then the log tree and a superblock (Meter `log_commits`).
    #[serde(default)]
    pub log_commit_us: f64,
    /// Microseconds of a read call's fixed cost on a copy-on-write filesystem (Meter
    /// `cow_reads`).
    #[serde(default)]
    pub cow_read_call_us: f64,
    /// Microseconds a loop device adds to a device read of a filesystem kept in a file
    /// (Meter `pool_reads`): 0 for a filesystem on its own device.
    #[serde(default)]
    pub pool_read_us: f64,
    /// Microseconds per transaction commit of a copy-on-write filesystem (Meter `commits`).
    #[serde(default)]
    pub commit_us: f64,
    /// Microseconds per layer entered cold: a layer's directory in the store resolved with
    /// nothing of it cached (Meter `layer_opens`).
    #[serde(default)]
    pub layer_open_us: f64,
    /// Microseconds per backing file opened: what a read call through an overlay mount
    /// costs beyond the same call on the branch's own file (Meter `backing_opens`).
    #[serde(default)]
    pub backing_open_us: f64,
    /// Microseconds per leaf of a filesystem's tree of trees read from the device on
    /// entering a layer cold (Meter `tree_leaf_reads`): one metadata block read, the same
    /// device read as an extent's.
    #[serde(default)]
    pub tree_leaf_us: f64,
}

impl Profile {
    /// Parses a profile; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Profile> {
        let p: Profile = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        for (key, bw) in [
            ("read_bandwidth", p.read_bandwidth),
            ("write_bandwidth", p.write_bandwidth),
            ("copy_bandwidth", p.copy_bandwidth),
        ] {
            if bw.0 == 0 {
                return Err(error_at_key(
                    file,
                    text,
                    key,
                    "a bandwidth must be more than 0",
                ));
            }
        }
        Ok(p)
    }

    /// The embedded profile called `name`.
    pub fn embedded(name: &str) -> Option<Result<Profile>> {
        EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Profile::parse(text, &format!("<embedded profiles/{n}.toml>")))
    }

    /// Every embedded profile, in a fixed order.
    pub fn all_embedded() -> Result<Vec<Profile>> {
        EMBEDDED
            .iter()
            .map(|(n, text)| Profile::parse(text, &format!("<embedded profiles/{n}.toml>")))
            .collect()
    }
}
