//! The cost model: Meter counts through a device profile give modelled time. A pure
//! function: the same counts and profile give the same microseconds on any machine.

use super::profile::Profile;
use layerlab_core::Counts;

/// Modelled microseconds of the work in `c` on the device `p`: cold probes at the cold
/// latency, warm probes and cache hits at the warm one, bytes at the bandwidths, and so on.
pub fn modelled_us(c: &Counts, p: &Profile) -> f64 {
    let per_byte = |bw: u64| 1e6 / bw.max(1) as f64;
    c.probes as f64 * p.probe_cold_us
        + (c.cache_hits + c.warm_probes) as f64 * p.probe_warm_us
        + c.entries_scanned as f64 * p.entry_scan_us
        + c.bytes_read as f64 * per_byte(p.read_bandwidth.0)
        + c.bytes_written as f64 * per_byte(p.write_bandwidth.0)
        + c.bytes_copied as f64 * per_byte(p.copy_bandwidth.0)
        + c.blocks_allocated as f64 * p.block_alloc_us
        + c.extents_read as f64 * p.extent_us
        + c.metadata_writes as f64 * p.metadata_write_us
        + c.fsyncs as f64 * p.fsync_us
        + c.entry_fsyncs as f64 * p.entry_fsync_us
        + c.reads as f64 * p.read_call_us
        + c.cow_reads as f64 * p.cow_read_call_us
        + c.log_commits as f64 * p.log_commit_us
        + c.commits as f64 * p.commit_us
        + c.layer_opens as f64 * p.layer_open_us
        + c.backing_opens as f64 * p.backing_open_us
        + c.tree_leaf_reads as f64 * p.tree_leaf_us
        + c.pool_reads as f64 * p.pool_read_us
}

#[cfg(test)]
mod tests {
    use super::*;
    use layerlab_core::size::Size;

    #[test]
    fn counts_through_a_profile() {
        let p = Profile {
            name: "t".into(),
            description: String::new(),
            fingerprint: String::new(),
            probe_cold_us: 10.0,
            probe_warm_us: 1.0,
            entry_scan_us: 0.0,
            read_bandwidth: Size(1_000_000),
            write_bandwidth: Size(1_000_000),
            copy_bandwidth: Size(500_000),
            metadata_write_us: 5.0,
            fsync_us: 100.0,
            entry_fsync_us: 150.0,
            extent_us: 0.0,
            block_alloc_us: 0.0,
            read_call_us: 0.0,
            cow_read_call_us: 0.0,
            pool_read_us: 0.0,
            log_commit_us: 300.0,
            commit_us: 1000.0,
            layer_open_us: 50.0,
            backing_open_us: 0.5,
            tree_leaf_us: 40.0,
        };
        let c = Counts {
            probes: 2,
            cache_hits: 3,
            bytes_copied: 1000,
            fsyncs: 1,
            entry_fsyncs: 2,
            metadata_writes: 2,
            log_commits: 1,
            commits: 1,
            layer_opens: 2,
            backing_opens: 2,
            tree_leaf_reads: 1,
            ..Counts::default()
        };
        assert_eq!(
            modelled_us(&c, &p),
            20.0 + 3.0 + 2000.0 + 100.0 + 300.0 + 10.0 + 300.0 + 1000.0 + 100.0 + 1.0 + 40.0
        );
        assert_eq!(modelled_us(&Counts::default(), &p), 0.0);
    }
}
