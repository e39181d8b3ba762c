//! A bounded stress loop over randomly mutated archives (the apply path without a
//! fuzzer): every mutated archive is applied or refused, never a panic, and a refused one
//! leaves the layer's view unchanged. Runs on vfs and overlay2 (the copy and the union
//! kinds); the cargo-fuzz target in `fuzz/` does the same, unbounded.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use layerlab_core::LayerDriver;
use layerlab_drivers::{registry, Options};
use layerlab_oci::{apply_archive, Limits};
use proptest::prelude::*;
use std::cell::RefCell;

fn seeds() -> Vec<Vec<u8>> {
    vec![
        Raw::new()
            .dir("etc/")
            .file("etc/hosts", b"10.0.0.1\n")
            .file("etc/.wh.passwd", b"")
            .file("opt/x/.wh..wh..opq", b"")
            .file("opt/x/n", b"n")
            .symlink("s", "../etc")
            .hardlink("h", "etc/hosts")
            .bytes(),
        Raw::new()
            .dir("link/")
            .file("usr/share/doc/b/x", b"x")
            .file("keep/x", b"")
            .bytes(),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(i, v)| Mutation::Splice(i, v)),
    ]
}

struct World {
    _tmp: tempfile::TempDir,
    stores: Vec<layerlab_drivers::AnyDriver>,
    n: usize,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let mut stores = Vec::new();
    for name in ["vfs", "overlay2"] {
        let mut d = registry::init(name, &tmp.path().join(name), Options::new()).unwrap();
        base(&mut d);
        stores.push(d);
    }
    World {
        _tmp: tmp,
        stores,
        n: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn mutated_archives_are_applied_or_refused_cleanly(
        seed in 0usize..2,
        muts in proptest::collection::vec(mutation(), 1..6),
        header_only in any::<bool>(),
    ) {
        let mut bytes = seeds()[seed].clone();
        for m in muts {
            let len = bytes.len().max(1);
            match m {
                Mutation::Flip(i, b) => {
                    // mostly inside headers, where the interesting fields are
                    let i = if header_only { (i % (len / 512).max(1)) * 512 + i % 512 } else { i };
                    if let Some(x) = bytes.get_mut(i % len) { *x ^= b.max(1); }
                }
                Mutation::Truncate(i) => bytes.truncate(i % len),
                Mutation::Splice(i, v) => {
                    let at = i % len;
                    let end = (at + v.len()).min(bytes.len());
                    bytes.splice(at..end, v);
                }
            }
        }
        WORLD.with(|w| {
            let mut w = w.borrow_mut();
            let w = w.get_or_insert_with(world);
            w.n += 1;
            let which = w.n % w.stores.len();
            let t = id(&format!("t{}", w.n));
            let d = &mut w.stores[which];
            d.create_layer(&t, Some(&id("base"))).unwrap();
            let before = view(d, &t);
            let limits = Limits { max_size: 1 << 20, max_entries: 256 };
            if let Err(e) = apply_archive(d, &t, "mutated", &bytes[..], &limits) {
                assert_eq!(view(d, &t), before, "{}: refused ({e}) but changed", d.name());
            }
            d.remove_layer(&t).unwrap();
        });
    }
}
