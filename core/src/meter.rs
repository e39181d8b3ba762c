//! The Meter: what each operation did, counted, plus an optional trace of its steps.
//!
//! Counts are deterministic: they depend only on the sequence of operations, never on time,
//! the host's actual caches or the machine (what a driver counts as cached is what it
//! touched since it was opened). A device profile turns them into modelled time.

use serde::{Deserialize, Serialize};

macro_rules! counts {
    ($($(#[doc = $doc:literal])* $field:ident),* $(,)?) => {
        /// Counters of the work a driver did.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Counts {
            $($(#[doc = $doc])* pub $field: u64,)*
        }

        impl Counts {
            /// Every counter's name, in a fixed order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            /// `(name, value)` for every counter, in the order of `NAMES`.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field)),*]
            }

            /// Sets the counter called `name`; false when there is none.
            pub fn set(&mut self, name: &str, value: u64) -> bool {
                match name {
                    $(stringify!($field) => self.$field = value,)*
                    _ => return false,
                }
                true
            }

            /// Adds another set of counts to this one.
            pub fn add(&mut self, other: &Counts) {
                $(self.$field += other.$field;)*
            }

            /// The counts accumulated since `earlier` (saturating).
            pub fn since(&self, earlier: &Counts) -> Counts {
                Counts { $($field: self.$field.saturating_sub(earlier.$field),)* }
            }
        }
    };
}

counts! {
    /// Layers consulted by lookups (one per layer a lookup looked into) in a directory the
    /// host had not cached: a cold probe.
    probes,
    /// Layers consulted in a directory the host had cached (this driver created, listed
    /// or probed it since it was opened): a warm probe.
    warm_probes,
    /// Lookups answered by a cache without consulting the layers.
    cache_hits,
    /// Directory entries read while listing or merging directories.
    entries_scanned,
    /// Bytes returned by reads.
    bytes_read,
    /// Bytes written by the caller's operations.
    bytes_written,
    /// Copy-ups: copies made before a first change of something shared with a lower layer
    /// (union drivers: an entry copied up; devicemapper: a shared block; btrfs and zfs: a
    /// shared, partly written sector or record). `bytes_copied` says how much they moved.
    copy_ups,
    /// Bytes copied on behalf of copy-on-write (copy-up, block or extent CoW, layer copies).
    bytes_copied,
    /// Blocks or extents newly allocated.
    blocks_allocated,
    /// Extents (contiguous runs) read: fragmentation shows here.
    extents_read,
    /// Metadata updates (inode, directory entry, xattr, whiteout, map entry).
    metadata_writes,
    /// fsync calls that make a file's data durable (a staged copy, a replaced file, a log
    /// record appended).
    fsyncs,
    /// fsync calls that make new entries durable: a directory's after entries were made,
    /// renamed or removed in it, and the first of a file made with them (a layer's staged
    /// directories and files, the renames that publish them, the layer table's
    /// replacement). Each commits the new inodes and directory blocks with it, which an
    /// fsync of a file's data does not.
    entry_fsyncs,
    /// Read calls (each an open, a read and a close of the file for a caller outside the
    /// driver): their fixed cost, beside the bytes they return.
    reads,
    /// Read calls served by a copy-on-write filesystem (the btrfs and zfs models), counted
    /// instead of `reads`: the same open, read and close, there (btrfs's inode and path
    /// operations cost more than the host filesystem's).
    cow_reads,
    /// Log commits of a copy-on-write filesystem: an operation's commit point, the fsync
    /// that makes a change durable without a transaction commit (btrfs: the file's data
    /// written, then its log tree and a superblock, with cache flushes between; zfs: the
    /// ZIL's blocks). One per operation (or batch): the data written before it is part of
    /// it, not an fsync of its own.
    log_commits,
    /// Transaction commits of a copy-on-write filesystem: the changed tree nodes written
    /// copy-on-write up to new roots, then the superblock, with cache flushes between (a
    /// btrfs transaction commit, a zfs txg sync). A snapshot or clone is made in one.
    commits,
    /// Layers entered cold: the first look into a lower layer's own directory (a union
    /// branch) or subvolume since the host dropped its caches, which resolves the layer's
    /// place in the store before any name in it can be probed (a kernel overlay mount
    /// resolves every lowerdir so; btrfs reads a subvolume's root node, and the root-tree
    /// leaves it needs apart: `tree_leaf_reads`).
    layer_opens,
    /// Leaves of a filesystem's own tree of trees read from the device on entering a layer
    /// cold (btrfs: the root-tree leaves holding a subvolume's root item and root ref,
    /// unless the mount, a change or an earlier entry since the cache drop read them).
    tree_leaf_reads,
    /// Device reads of a storage pool kept in a file of the host (the btrfs and zfs models),
    /// counted beside their `layer_opens`, `extents_read` and `tree_leaf_reads`: a
    /// filesystem whose device is a loop device over a file (as the kernel-btrfs reference's
    /// is) passes each device read through the loop device's queue and worker before the
    /// host reads the file.
    pool_reads,
    /// Backing files opened: a read call through a stacked view (a layer with a parent,
    /// which the kernel serves through an overlay mount) opens the branch's own file
    /// beside the overlay's (overlayfs opens the real file of every file it opens).
    backing_opens,
}

impl Counts {
    /// The counts that are not zero, as `name=value` words.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .fields()
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if parts.is_empty() {
            "nothing counted".to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// Counters plus, when tracing, the driver's steps in words.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    /// The counters; drivers add to them directly.
    pub counts: Counts,
    trace: Option<Vec<String>>,
}

impl Meter {
    /// A meter that counts but keeps no trace.
    pub fn new() -> Self {
        Meter::default()
    }

    /// Turns the step trace on or off.
    pub fn set_tracing(&mut self, on: bool) {
        self.trace = if on { Some(Vec::new()) } else { None };
    }

    /// True while steps are being recorded.
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Records a step; the message is only formatted when tracing.
    #[inline]
    pub fn step(&mut self, message: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(message());
        }
    }

    /// Takes the steps recorded so far, leaving tracing on if it was.
    pub fn take_steps(&mut self) -> Vec<String> {
        match &mut self.trace {
            Some(t) => std::mem::take(t),
            None => Vec::new(),
        }
    }

    /// Resets the counters (the trace setting is kept).
    pub fn reset(&mut self) {
        self.counts = Counts::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_and_since() {
        let mut a = Counts {
            probes: 3,
            fsyncs: 1,
            ..Counts::default()
        };
        let b = a;
        a.add(&Counts {
            probes: 2,
            ..Counts::default()
        });
        assert_eq!(a.probes, 5);
        assert_eq!(a.since(&b).probes, 2);
        assert_eq!(a.since(&b).fsyncs, 0);
        assert_eq!(Counts::NAMES.len(), a.fields().len());
        assert_eq!(Counts::default().summary(), "nothing counted");
        assert_eq!(a.summary(), "probes=5 fsyncs=1");
    }

    #[test]
    fn steps_only_when_tracing() {
        let mut m = Meter::new();
        m.step(|| "ignored".into());
        assert!(m.take_steps().is_empty());
        m.set_tracing(true);
        m.step(|| "probe layer a".into());
        assert_eq!(m.take_steps(), vec!["probe layer a".to_string()]);
        assert!(m.take_steps().is_empty());
    }
}
