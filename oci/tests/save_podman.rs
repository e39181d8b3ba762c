//! `save_archive` in both formats, loaded by `podman load`: the name, the image id (the
//! config's digest), the history and the file view (`podman image mount`) must be the
//! store's. Skips visibly without podman or root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use layerlab_core::{LayerDriver, LayerId, LayerPath};
use layerlab_drivers::{registry, Options};
use layerlab_oci::image::ImageLayer;
use layerlab_oci::{save_archive, write_view, ArchiveFormat, DiffOptions, ImageRecord};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn p(s: &str) -> LayerPath {
    LayerPath::parse(s).unwrap()
}

fn podman(args: &[&str]) -> Result<String, String> {
    layerlab_testkit::output(Command::new("podman").args(args))
}

/// Each path of a view: its kind, mode, owner and content digest or link target.
type View = BTreeMap<String, String>;

fn view_of_tar(bytes: &[u8]) -> View {
    let mut out = View::new();
    let mut contents: BTreeMap<String, String> = BTreeMap::new();
    for e in layerlab_testkit::tar_entries(bytes).unwrap() {
        let path = format!("/{}", e.name)
            .trim_end_matches('/')
            .replace("/./", "/")
            .to_string();
        let path = path.strip_prefix("/.").map(str::to_string).unwrap_or(path);
        if path.is_empty() {
            continue;
        }
        let own = format!("{:o} {}:{}", e.mode, e.owner.0, e.owner.1);
        let what = match tar::EntryType::new(e.kind) {
            tar::EntryType::Directory => format!("dir {own}"),
            tar::EntryType::Symlink => format!("symlink {}", e.link),
            tar::EntryType::Link => contents[&format!("/{}", e.link)].clone(),
            _ => {
                let s = format!("file {own} {}", layerlab_testkit::sha256(&e.data));
                contents.insert(path.clone(), s.clone());
                s
            }
        };
        out.insert(path, what);
    }
    out
}

#[test]
fn podman_loads_both_formats_with_the_same_view() {
    if !rustix::process::geteuid().is_root() || podman(&["version"]).is_err() {
        layerlab_testkit::skip(
            "podman_loads_both_formats_with_the_same_view: needs root and podman",
        );
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let mut d = registry::init("overlay2", &root, Options::new()).unwrap();
    let (base, top) = (LayerId::new("base").unwrap(), LayerId::new("top").unwrap());
    d.create_layer(&base, None).unwrap();
    for dir in ["/etc", "/app", "/app/lib", "/gone"] {
        d.mkdir(&base, &p(dir), 0o755).unwrap();
    }
    layerlab_core::ops::write_file(&mut d, &base, &p("/etc/motd"), b"hello\n", 0o644).unwrap();
    layerlab_core::ops::write_file(&mut d, &base, &p("/app/run"), b"#!/bin/sh\n", 0o755).unwrap();
    layerlab_core::ops::write_file(&mut d, &base, &p("/gone/x"), b"x", 0o600).unwrap();
    d.symlink(&base, "../etc/motd", &p("/app/motd")).unwrap();
    d.commit(&base).unwrap();
    d.create_layer(&top, Some(&base)).unwrap();
    layerlab_core::ops::write_file(&mut d, &top, &p("/etc/motd"), b"changed\n", 0o640).unwrap();
    d.chown(&top, &p("/app/lib"), 1000, 50).unwrap();
    d.hardlink(&top, &p("/app/run"), &p("/app/run2")).unwrap();
    layerlab_core::ops::remove_all(&mut d, &top, &p("/gone")).unwrap();
    d.commit(&top).unwrap();
    let (tar, _) = write_view(&mut d, &top, Vec::new(), &DiffOptions::default()).unwrap();
    let want = view_of_tar(&tar);
    let layer = |id: &str| ImageLayer {
        chain_id: id.into(),
        diff_id: String::new(),
        size: 0,
        shared: false,
        tar_size: None,
        gzip_size: None,
    };
    let record = ImageRecord {
        name: "llsave-test".into(),
        id: String::new(),
        top_layer: "top".into(),
        layers: vec![layer("base"), layer("top")],
        format: "layerlab-build".into(),
        source: String::new(),
        created: None,
        platform: Some("linux/amd64".into()),
        history: vec![],
        config: None,
    };
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Cmd":["/app/run"]},"history":[{"created_by":"COPY base"},{"created_by":"RUN top"}]}"#;
    for format in [ArchiveFormat::DockerArchive, ArchiveFormat::OciArchive] {
        let file = t.path().join(format!("{}.tar", format.name()));
        let s = save_archive(&mut d, &record, config, &file, format).unwrap();
        assert_eq!(s.tag, "llsave-test:latest");
        let loaded = podman(&["load", "-q", "-i", file.to_str().unwrap()]).unwrap();
        assert!(
            loaded.contains("llsave-test:latest"),
            "{}: {loaded}",
            format.name()
        );
        let name = "localhost/llsave-test:latest";
        let id = podman(&["image", "inspect", "--format", "{{.Id}}", name]).unwrap();
        assert_eq!(
            format!("sha256:{}", id.trim()),
            s.image_id,
            "{}",
            format.name()
        );
        let history = podman(&["history", "--format", "{{.CreatedBy}}", name]).unwrap();
        assert_eq!(
            history.lines().collect::<Vec<_>>(),
            ["RUN top", "COPY base"]
        );
        let env = podman(&["image", "inspect", "--format", "{{.Config.Env}}", name]).unwrap();
        assert_eq!(env.trim(), "[A=1]");
        let dir = podman(&["image", "mount", name]).unwrap();
        let got = layerlab_testkit::host_view(Path::new(dir.trim())).unwrap();
        let _ = podman(&["image", "unmount", name]);
        let _ = podman(&["rmi", "-f", name]);
        assert_eq!(got, want, "{}", format.name());
    }
}
