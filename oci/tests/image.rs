//! Image import: docker-save archives and OCI layouts (directory and tar, gzip and zstd
//! layers), built here, imported into every registered driver; diff_id checks; images.json.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use layerlab_core::{ops, LayerDriver};
use layerlab_oci::digest::{chain_id, sha256};
use layerlab_oci::{image, import, ImportOptions, OciError};
use serde_json::json;
use std::path::Path;

fn layers() -> Vec<Vec<u8>> {
    vec![
        Raw::new()
            .dir("etc/")
            .file("etc/os-release", b"ID=test\n")
            .file("etc/passwd", b"root:x:0:0\n")
            .dir("app/")
            .file("app/old", b"old")
            .file("app/keep", b"keep")
            .symlink("bin", "usr/bin")
            .bytes(),
        Raw::new()
            .file("etc/.wh.passwd", b"")
            .file("etc/os-release", b"ID=test2\n")
            .dir("app/")
            .file("app/.wh..wh..opq", b"")
            .file("app/new", b"new")
            .bytes(),
        Raw::new()
            .file("data/a", b"A")
            .hardlink("data/b", "data/a")
            .bytes(),
    ]
}

fn config(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created_by": "COPY etc app /"},
            {"created_by": "RUN rm /etc/passwd"},
            {"created_by": "COPY data /data"}
        ]
    }))
    .unwrap()
}

fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
}

fn docker_save(layers: &[Vec<u8>], diff_ids: &[String]) -> Vec<u8> {
    let cfg = config(diff_ids);
    let cfg_name = format!("{}.json", &sha256(&cfg)[7..]);
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let manifest = json!([{"Config": cfg_name, "RepoTags": ["localhost/test:1"], "Layers": names}]);
    let mut b = tar::Builder::new(Vec::new());
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    add(&mut b, &cfg_name, &cfg);
    for (n, l) in names.iter().zip(layers) {
        add(&mut b, n, l);
    }
    b.into_inner().unwrap()
}

fn oci_layout(dir: &Path, layers: &[Vec<u8>], diff_ids: &[String]) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = sha256(data);
        std::fs::write(blobs.join(&d[7..]), data).unwrap();
        (d, data.len())
    };
    let cfg = put(&config(diff_ids));
    let mut descs = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let (data, mt) = match i {
            0 => (gzip(l), "application/vnd.oci.image.layer.v1.tar+gzip"),
            1 => (zstd(l), "application/vnd.oci.image.layer.v1.tar+zstd"),
            _ => (l.clone(), "application/vnd.oci.image.layer.v1.tar"),
        };
        let (d, n) = put(&data);
        descs.push(json!({"mediaType": mt, "digest": d, "size": n}));
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg.0, "size": cfg.1},
        "layers": descs
    }))
    .unwrap();
    let m = put(&manifest);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m.0, "size": m.1,
            "annotations": {"org.opencontainers.image.ref.name": "oci-test"}
        }]}))
        .unwrap(),
    )
    .unwrap();
}

fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

fn diff_ids(layers: &[Vec<u8>]) -> Vec<String> {
    layers.iter().map(|l| sha256(l)).collect()
}

fn check_top<D: LayerDriver + ?Sized>(d: &mut D, rec: &image::ImageRecord) {
    let top = id(&rec.top_layer);
    let v = view(d, &top);
    let name = d.name();
    assert!(!v.contains_key("/etc/passwd"), "{name}: {v:?}");
    assert_eq!(
        ops::read_all(d, &top, &p("/etc/os-release")).unwrap(),
        b"ID=test2\n"
    );
    assert!(
        !v.contains_key("/app/old") && !v.contains_key("/app/keep"),
        "{name}: {v:?}"
    );
    assert!(v.contains_key("/app/new"), "{name}");
    assert_eq!(v["/bin"].target.as_deref(), Some("usr/bin"));
    assert_eq!(d.stat(&top, &p("/data/b")).unwrap().nlink, 2, "{name}");
    // a container layer on the image
    let c = id("container");
    d.create_layer(&c, Some(&top)).unwrap();
    write(d, &c, "/app/new", b"changed in the container");
    assert_eq!(view(d, &top)["/app/new"], v["/app/new"]);
    d.remove_layer(&c).unwrap();
}

#[test]
fn docker_save_and_oci_layouts_import_on_every_driver() {
    let ls = layers();
    let ids = diff_ids(&ls);
    let mut chain = None::<String>;
    let mut chains = Vec::new();
    for d in &ids {
        let c = chain_id(chain.as_deref(), d);
        chains.push(c.clone());
        chain = Some(c);
    }
    let work = tempfile::tempdir().unwrap();
    let save = work.path().join("save.tar");
    std::fs::write(&save, docker_save(&ls, &ids)).unwrap();
    let layout = work.path().join("layout");
    oci_layout(&layout, &ls, &ids);
    let layout_tar = work.path().join("layout.tar.gz");
    std::fs::write(&layout_tar, gzip(&tar_dir(&layout))).unwrap();
    for (tmp, mut d) in stores() {
        let root = tmp.path().join("store");
        let rec = import(&mut d, &save, &ImportOptions::default()).unwrap();
        assert_eq!(rec.name, "localhost/test:1");
        assert_eq!(rec.format, "docker-save");
        assert_eq!(
            rec.layers
                .iter()
                .map(|l| l.chain_id.clone())
                .collect::<Vec<_>>(),
            chains
        );
        assert_eq!(rec.history.len(), 3);
        check_top(&mut d, &rec);
        image::save_image(&root, &rec).unwrap();
        // the same image as an OCI layout shares every layer
        for src in [&layout, &layout_tar] {
            let rec2 = import(&mut d, src, &ImportOptions::default()).unwrap();
            assert_eq!(rec2.name, "oci-test");
            assert_eq!(rec2.format, "oci-layout");
            assert_eq!(rec2.top_layer, rec.top_layer);
            assert!(rec2.layers.iter().all(|l| l.shared));
            image::save_image(&root, &rec2).unwrap();
        }
        let named = import(
            &mut d,
            &layout,
            &ImportOptions {
                name: Some("renamed".into()),
                ..Default::default()
            },
        )
        .unwrap();
        image::save_image(&root, &named).unwrap();
        let all = image::load_images(&root).unwrap();
        let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["localhost/test:1", "oci-test", "renamed"]);
    }
}

#[test]
fn a_diff_id_mismatch_names_the_layer_and_leaves_nothing() {
    let ls = layers();
    let mut ids = diff_ids(&ls);
    ids[1] = sha256(b"not this layer");
    let work = tempfile::tempdir().unwrap();
    let save = work.path().join("save.tar");
    std::fs::write(&save, docker_save(&ls, &ids)).unwrap();
    for (_tmp, mut d) in stores() {
        let err = import(&mut d, &save, &ImportOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, OciError::DiffIdMismatch { index: 1, .. }),
            "{msg}"
        );
        assert!(
            msg.contains("l1/layer.tar") && msg.contains("diff_id mismatch"),
            "{msg}"
        );
        assert!(
            d.layers().unwrap().is_empty(),
            "{}: layers left: {:?}",
            d.name(),
            d.layers()
        );
    }
}

#[test]
fn a_hostile_layer_in_an_image_leaves_nothing() {
    let mut ls = layers();
    ls[2] = Raw::new()
        .file("ok", b"x")
        .file("../../escape", b"x")
        .bytes();
    let ids = diff_ids(&ls);
    let work = tempfile::tempdir().unwrap();
    let save = work.path().join("save.tar");
    std::fs::write(&save, docker_save(&ls, &ids)).unwrap();
    for (_tmp, mut d) in stores() {
        let msg = import(&mut d, &save, &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("../../escape") && msg.contains("l2/layer.tar"),
            "{msg}"
        );
        assert!(d.layers().unwrap().is_empty(), "{}", d.name());
    }
}

#[test]
fn an_outer_archive_with_dotdot_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("bad.tar");
    std::fs::write(&f, Raw::new().file("../manifest.j", b"").bytes()).unwrap();
    let (_tmp, mut d) = stores().into_iter().next().unwrap();
    let msg = import(&mut d, &f, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("../manifest.j"), "{msg}");
}

#[test]
fn import_records_each_layers_tar_and_gzip_sizes() {
    use std::io::Write;
    let ls = layers();
    let ids = diff_ids(&ls);
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    oci_layout(&layout, &ls, &ids);
    let default_gzip = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap().len() as u64
    };
    let (_tmp, mut d) = stores().remove(0);
    let rec = import(&mut d, &layout, &ImportOptions::default()).unwrap();
    for (i, (l, raw)) in rec.layers.iter().zip(&ls).enumerate() {
        assert_eq!(l.tar_size, Some(raw.len() as u64), "layer {i}");
        // layer 0 is stored gzip-compressed: its own blob; the zstd and plain layers are
        // gzipped at the default level
        let want = if i == 0 {
            gzip(raw).len() as u64
        } else {
            default_gzip(raw)
        };
        assert_eq!(l.gzip_size, Some(want), "layer {i}");
    }
    // records written before the sizes were kept still load
    let old = serde_json::json!({"images": [{
        "name": "old", "id": "sha256:00", "top_layer": "x", "format": "docker-save",
        "source": "old.tar",
        "layers": [{"chain_id": "x", "diff_id": "sha256:00", "size": 1, "shared": false}]
    }]});
    std::fs::write(work.path().join("images.json"), old.to_string()).unwrap();
    let loaded = image::load_images(work.path()).unwrap();
    assert_eq!(loaded[0].layers[0].tar_size, None);
    assert_eq!(loaded[0].layers[0].gzip_size, None);
}
