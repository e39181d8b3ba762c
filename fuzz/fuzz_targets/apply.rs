//! Fuzzes `layerlab_oci::apply_archive` on real stores (vfs and overlay2): any input is
//! either applied or refused, never a panic, and a refused archive leaves the layer's
//! view exactly as it was.
//!
//!     cd fuzz && cargo +nightly fuzz run apply -- -max_total_time=600
#![no_main]

use layerlab_core::{ops, FileKind, LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, AnyDriver, Options};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::Mutex;

struct World {
    _tmp: tempfile::TempDir,
    stores: Vec<AnyDriver>,
    base: LayerId,
    n: u64,
}

static WORLD: Mutex<Option<World>> = Mutex::new(None);

fn p(s: &str) -> LayerPath {
    LayerPath::parse(s).expect("path")
}

fn setup() -> World {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = LayerId::new("base").expect("id");
    let mut stores = Vec::new();
    for name in ["vfs", "overlay2"] {
        let mut d = registry::init(name, &tmp.path().join(name), Options::new()).expect("init");
        d.create_layer(&base, None).expect("base");
        ops::mkdir_p(&mut d, &base, &p("/etc/sub"), 0o755).expect("mkdir");
        ops::write_file(&mut d, &base, &p("/etc/hosts"), b"127.0.0.1\n", 0o644).expect("w");
        ops::write_file(&mut d, &base, &p("/etc/sub/x"), b"x", 0o600).expect("w");
        d.symlink(&base, "/etc", &p("/link")).expect("ln");
        d.commit(&base).expect("commit");
        stores.push(d);
    }
    World {
        _tmp: tmp,
        stores,
        base,
        n: 0,
    }
}

type View = BTreeMap<String, (FileKind, u32, u32, u32, Option<String>, Vec<u8>)>;

fn view(d: &mut AnyDriver, l: &LayerId) -> View {
    let mut out = BTreeMap::new();
    for (path, kind) in ops::walk(d, l, &LayerPath::root()).expect("walk") {
        let md = d.stat(l, &path).expect("stat");
        let data = if kind == FileKind::File {
            ops::read_all(d, l, &path).expect("read")
        } else {
            Vec::new()
        };
        out.insert(
            path.to_string(),
            (kind, md.mode, md.uid, md.gid, md.target, data),
        );
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut guard = WORLD.lock().expect("lock");
    let w = guard.get_or_insert_with(setup);
    w.n += 1;
    let which = (w.n as usize) % w.stores.len();
    let id = LayerId::new(&format!("t{}", w.n)).expect("id");
    let base = w.base.clone();
    let d = &mut w.stores[which];
    d.create_layer(&id, Some(&base)).expect("create");
    let before = view(d, &id);
    let limits = layerlab_oci::Limits {
        max_size: 1 << 20,
        max_entries: 256,
    };
    if layerlab_oci::apply_archive(d, &id, "fuzz", data, &limits).is_err() {
        assert_eq!(view(d, &id), before, "a refused archive changed the layer");
    }
    d.remove_layer(&id).expect("remove");
});
