//! What the kernel's caches would hold for a driver that has no layer stack to walk (vfs,
//! devicemapper, btrfs, zfs), so that the Meter tells a warm read from a cold one as it
//! does for the union drivers' lookup cache.
//!
//! - Names: a lookup of a path already found in the same layer since the driver was
//!   opened is a dentry-cache hit (`cache_hits`), any other a probe (`probes`). A name
//!   removed or renamed is forgotten with everything under it. The first lookup in a layer
//!   since open also enters the layer (`layer_opens`).
//! - Blocks: a unit of file data read since the driver was opened is in the page cache;
//!   a driver counts `extents_read` only for runs of units that were not. Keys are the
//!   driver's: btrfs keeps a page cache per subvolume inode, zfs's ARC caches by pool
//!   block, whichever dataset reads it.
//!
//! The caches only count: every lookup and read still goes to the driver's files. They
//! start empty when a driver is opened, so counts depend on the operations since `open`
//! only (the harness reopens a store for a cold read).

use layerlab_core::{LayerId, LayerPath, Meter};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A cached block of file data: `(cache domain, object, unit)`.
pub type BlockKey = (u64, u64, u64);

/// The names and blocks cached since the driver was opened.
#[derive(Debug, Default)]
pub struct WarmCache {
    names: BTreeSet<(LayerId, String)>,
    /// The layers looked into since open (their subvolume's root item and root node read).
    layers: HashSet<LayerId>,
    blocks: HashSet<BlockKey>,
    domains: HashMap<String, u64>,
}

impl WarmCache {
    /// Counts one lookup of `path` in `layer`: a cache hit when it was looked up before
    /// (found or not: the kernel caches negative dentries too), else a probe; from now on
    /// it is cached.
    pub fn lookup(&mut self, layer: &LayerId, path: &LayerPath, meter: &mut Meter) {
        self.lookup_unless_held(layer, path, meter, || false);
    }

    /// [`WarmCache::lookup`], where a name not looked up before costs no probe when
    /// `held()` says the layer's metadata read on entering it holds every name (a btrfs
    /// subvolume whose tree is one leaf: its root node): a cache hit then.
    pub fn lookup_unless_held(
        &mut self,
        layer: &LayerId,
        path: &LayerPath,
        meter: &mut Meter,
        held: impl FnOnce() -> bool,
    ) {
        if !self.layers.contains(layer) {
            // the first look into the layer since open finds its subvolume, dataset or thin
            // device first
            self.layers.insert(layer.clone());
            meter.counts.layer_opens += 1;
        }
        if self.names.insert((layer.clone(), path.to_string())) && !held() {
            meter.counts.probes += 1;
        } else {
            meter.counts.cache_hits += 1;
        }
    }

    /// Forgets `path` in `layer` and every name under it (a range of the ordered set, not
    /// a scan of every name cached).
    pub fn forget(&mut self, layer: &LayerId, path: &LayerPath) {
        let top = path.to_string();
        let under = if top == "/" {
            "/".to_string()
        } else {
            format!("{top}/")
        };
        self.names.remove(&(layer.clone(), top));
        let doomed: Vec<(LayerId, String)> = self
            .names
            .range((layer.clone(), under.clone())..)
            .take_while(|(l, p)| l == layer && p.starts_with(&under))
            .cloned()
            .collect();
        for k in doomed {
            self.names.remove(&k);
        }
    }

    /// True when `layer` was looked into or made since open.
    pub fn entered(&self, layer: &LayerId) -> bool {
        self.layers.contains(layer)
    }

    /// Notes a layer made since open: the host has its root cached.
    pub fn made_layer(&mut self, layer: &LayerId) {
        self.layers.insert(layer.clone());
    }

    /// Forgets everything cached for `layer` (removed).
    pub fn forget_layer(&mut self, layer: &LayerId) {
        self.names.retain(|(l, _)| l != layer);
        self.layers.remove(layer);
    }

    /// A small number for a cache domain (a subvolume's name), stable while open.
    pub fn domain(&mut self, name: &str) -> u64 {
        let next = self.domains.len() as u64 + 1;
        *self.domains.entry(name.to_string()).or_insert(next)
    }

    /// True when the block was cached; it is cached from now on.
    pub fn read_block(&mut self, key: BlockKey) -> bool {
        !self.blocks.insert(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_name_looked_up_is_a_hit_until_forgotten() {
        let (l, m) = (LayerId::new("l").unwrap(), LayerId::new("m").unwrap());
        let p = |s: &str| LayerPath::parse(s).unwrap();
        let mut w = WarmCache::default();
        let mut meter = Meter::new();
        for x in ["/a/b", "/a", "/ab"] {
            w.lookup(&l, &p(x), &mut meter);
        }
        w.lookup(&l, &p("/a/b"), &mut meter);
        w.lookup(&m, &p("/a/b"), &mut meter);
        assert_eq!((meter.counts.probes, meter.counts.cache_hits), (4, 1));
        assert_eq!(meter.counts.layer_opens, 2, "each layer entered once");
        let n = LayerId::new("n").unwrap();
        w.made_layer(&n);
        w.lookup(&n, &p("/a"), &mut meter);
        assert_eq!(
            meter.counts.layer_opens, 2,
            "a layer made since open is cached"
        );
        w.forget(&l, &p("/a"));
        meter.reset();
        for x in ["/a", "/a/b", "/ab"] {
            w.lookup(&l, &p(x), &mut meter);
        }
        assert_eq!((meter.counts.probes, meter.counts.cache_hits), (2, 1));
        w.forget_layer(&l);
        meter.reset();
        w.lookup(&l, &p("/ab"), &mut meter);
        assert_eq!(meter.counts.probes, 1);
    }

    #[test]
    fn a_block_is_cold_once() {
        let mut w = WarmCache::default();
        let d = w.domain("base");
        assert_eq!(w.domain("base"), d);
        assert_ne!(w.domain("child"), d);
        assert!(!w.read_block((d, 5, 0)));
        assert!(w.read_block((d, 5, 0)));
        assert!(!w.read_block((d, 5, 1)));
    }
}
