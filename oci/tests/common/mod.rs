//! Helpers shared by the OCI tests: a store per registered driver, views, scenarios and
//! raw tar building.
#![allow(dead_code)]

use layerlab_core::{ops, LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, AnyDriver, Options, DRIVERS};
use std::collections::BTreeMap;

pub fn p(s: &str) -> LayerPath {
    LayerPath::parse(s).unwrap()
}

pub fn id(s: &str) -> LayerId {
    LayerId::new(s).unwrap()
}

/// A fresh store for every registered driver.
pub fn stores() -> Vec<(tempfile::TempDir, AnyDriver)> {
    DRIVERS
        .iter()
        .map(|info| {
            let tmp = tempfile::tempdir().unwrap();
            let d = registry::init(info.name, &tmp.path().join("store"), Options::new())
                .unwrap_or_else(|e| panic!("init {}: {e}", info.name));
            (tmp, d)
        })
        .collect()
}

pub use layerlab_testkit::Seen;

/// A layer's whole merged view.
pub fn view<D: LayerDriver + ?Sized>(d: &mut D, layer: &LayerId) -> BTreeMap<String, Seen> {
    layerlab_testkit::view(d, layer).unwrap()
}

pub fn write<D: LayerDriver + ?Sized>(d: &mut D, l: &LayerId, path: &str, data: &[u8]) {
    let path = p(path);
    if let Some(parent) = path.parent() {
        ops::mkdir_p(d, l, &parent, 0o755).unwrap();
    }
    ops::write_file(d, l, &path, data, 0o644).unwrap();
}

/// A committed base layer `base` with a small tree.
pub fn base<D: LayerDriver + ?Sized>(d: &mut D) -> LayerId {
    let b = id("base");
    d.create_layer(&b, None).unwrap();
    write(d, &b, "/etc/hosts", b"127.0.0.1 localhost\n");
    write(d, &b, "/etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    write(d, &b, "/bin/sh", &[0x7f, b'E', b'L', b'F', 0, 1, 2, 3]);
    d.chmod(&b, &p("/bin/sh"), 0o755).unwrap();
    write(d, &b, "/usr/share/doc/a/README", b"doc a\n");
    write(d, &b, "/usr/share/doc/b/README", b"doc b\n");
    write(d, &b, "/opt/x/1", b"one");
    write(d, &b, "/opt/x/2", b"two");
    write(d, &b, "/keep", b"keep me");
    write(d, &b, "/data", &vec![7u8; 200_000]);
    d.symlink(&b, "/etc/hosts", &p("/link")).unwrap();
    d.symlink(&b, "/tmp", &p("/lowlink")).unwrap();
    ops::mkdir_p(d, &b, &p("/var/log"), 0o755).unwrap();
    d.commit(&b).unwrap();
    b
}

/// `base`, and an active child of it named `name`.
pub fn child_of_base<D: LayerDriver + ?Sized>(d: &mut D, name: &str) -> LayerId {
    let b = base(d);
    let t = id(name);
    d.create_layer(&t, Some(&b)).unwrap();
    t
}

/// A child of `base` with every kind of change, left active.
pub fn changed<D: LayerDriver + ?Sized>(d: &mut D, parent: &LayerId, name: &str) -> LayerId {
    let c = id(name);
    d.create_layer(&c, Some(parent)).unwrap();
    write(d, &c, "/etc/hosts", b"10.0.0.1 db\n");
    d.unlink(&c, &p("/etc/passwd")).unwrap();
    ops::remove_all(d, &c, &p("/usr/share/doc/a")).unwrap();
    ops::remove_all(d, &c, &p("/usr/share/doc/b")).unwrap();
    write(d, &c, "/usr/share/doc/b", b"now a file");
    ops::remove_all(d, &c, &p("/opt/x")).unwrap();
    d.mkdir(&c, &p("/opt/x"), 0o750).unwrap();
    write(d, &c, "/opt/x/3", b"three");
    d.chmod(&c, &p("/bin/sh"), 0o4755).unwrap();
    d.chown(&c, &p("/data"), 1000, 1000).unwrap();
    d.symlink(&c, "../etc/hosts", &p("/new-link")).unwrap();
    d.mkdir(&c, &p("/hl"), 0o755).unwrap();
    write(d, &c, "/hl/a", b"linked content");
    d.hardlink(&c, &p("/hl/a"), &p("/hl/b")).unwrap();
    let long = "n".repeat(120);
    write(
        d,
        &c,
        &format!("/deep/{long}/file-with-a-long-path"),
        b"long",
    );
    d.symlink(&c, &format!("/target/{}", "t".repeat(150)), &p("/longlink"))
        .unwrap();
    d.unlink(&c, &p("/link")).unwrap();
    d.mkdir(&c, &p("/link"), 0o755).unwrap();
    d.mkdir(&c, &p("/shared"), 0o2775).unwrap();
    d.chown(&c, &p("/shared"), 0, 50).unwrap();
    write(d, &c, "/empty", b"");
    d.chmod(&c, &p("/var/log"), 0o1777).unwrap();
    c
}

/// Tar bytes from raw entries: (name bytes, type, data, link name), written with raw
/// header manipulation so that `..`, absolute names and other hostile shapes survive.
pub struct Raw {
    b: tar::Builder<Vec<u8>>,
}

impl Raw {
    pub fn new() -> Self {
        Raw {
            b: tar::Builder::new(Vec::new()),
        }
    }

    pub fn entry(mut self, name: &str, kind: tar::EntryType, data: &[u8], link: &str) -> Self {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name.fill(0);
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname.fill(0);
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(0).unwrap();
            h.set_device_minor(0).unwrap();
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, tar::EntryType::Regular, data, "")
    }

    pub fn dir(self, name: &str) -> Self {
        self.entry(name, tar::EntryType::Directory, b"", "")
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Symlink, b"", target)
    }

    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Link, b"", target)
    }

    pub fn bytes(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 1).unwrap()
}
