//! The OCI commands through the built binary, for every registered driver: `diff --tar`,
//! `apply`, `import`, `images`, one-line errors for hostile archives, and a real image
//! built with podman (skipped, with a visible `SKIP` line, where podman cannot run).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use layerlab_core::{FileKind, LayerId};
use layerlab_drivers::{registry, Access, DRIVERS};
use layerlab_testkit::{host_tree, sha256, Seen};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

mod common;
use common::{podman_or_skip, skip, Lab, Podman};

fn store_view(root: &Path, layer: &str) -> BTreeMap<String, Seen> {
    let mut d = registry::open(root, Access::Read).unwrap();
    layerlab_testkit::view(&mut d, &LayerId::new(layer).unwrap()).unwrap()
}

/// A host directory as a layer's view: `/` and every entry below it.
fn host_view(dir: &Path) -> BTreeMap<String, Seen> {
    let seen = |path: &Path, md: &fs::Metadata| {
        let ft = md.file_type();
        let (kind, target, content) = if ft.is_symlink() {
            let t = fs::read_link(path).unwrap().display().to_string();
            (FileKind::Symlink, Some(t), None)
        } else if ft.is_dir() {
            (FileKind::Dir, None, None)
        } else {
            (FileKind::File, None, Some(sha256(&fs::read(path).unwrap())))
        };
        let mode = if ft.is_symlink() {
            0o777
        } else {
            md.permissions().mode() & 0o7777
        };
        Seen {
            kind,
            mode,
            owner: (md.uid(), md.gid()),
            target,
            content,
        }
    };
    let mut out = BTreeMap::new();
    out.insert(
        "/".to_string(),
        seen(dir, &fs::symlink_metadata(dir).unwrap()),
    );
    for e in host_tree(dir).unwrap() {
        out.insert(format!("/{}", e.rel), seen(&e.path, &e.meta));
    }
    out
}

/// A base layer and a changed child, made through the CLI.
fn scenario(lab: &Lab) {
    let host = lab.tmp.path().join("tree");
    fs::create_dir_all(host.join("etc")).unwrap();
    fs::write(host.join("etc/hosts"), "127.0.0.1\n").unwrap();
    fs::write(host.join("etc/passwd"), "root\n").unwrap();
    fs::create_dir_all(host.join("opt/x")).unwrap();
    fs::write(host.join("opt/x/1"), "1").unwrap();
    lab.ok(&["layer", "create", "base"]);
    lab.ok(&["copy", "base", host.to_str().unwrap(), "/"]);
    lab.ok(&["layer", "commit", "base"]);
    lab.ok(&["layer", "create", "c", "--parent", "base"]);
    lab.ok(&["write", "c", "/etc/hosts", "--data", "10.0.0.1\n"]);
    lab.ok(&["rm", "c", "/etc/passwd"]);
    lab.ok(&["rm", "-r", "c", "/opt/x"]);
    lab.ok(&["mkdir", "c", "/opt/x"]);
    lab.ok(&["write", "c", "/opt/x/2", "--data", "2"]);
    lab.ok(&["chmod", "c", "4755", "/opt/x/2"]);
    lab.ok(&["chown", "c", "1000:100", "/opt/x/2"]);
    lab.ok(&["ln", "-s", "c", "/etc/hosts", "/hosts"]);
}

#[test]
fn diff_tar_apply_and_images_through_the_cli_on_every_driver() {
    let mut digests = BTreeMap::new();
    for info in DRIVERS {
        let lab = Lab::new(info.name);
        scenario(&lab);
        let tar = lab.file("c.tar");
        let out = lab.ok(&["diff", "c", "--tar", &tar, "--json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["opaque"], 1, "{out}");
        assert_eq!(v["whiteouts"], 1, "{out}");
        assert!(!Path::new(&format!("{tar}.partial")).exists());
        let bytes = fs::read(&tar).unwrap();
        digests.insert(info.name, layerlab_oci::digest::sha256(&bytes));
        assert_eq!(v["diff_id"], layerlab_oci::digest::sha256(&bytes));
        let gz = lab.file("c.tar.gz");
        lab.ok(&["diff", "c", "--tar", &gz]);
        assert_eq!(&fs::read(&gz).unwrap()[..2], &[0x1f, 0x8b]);
        // plain `diff` is unchanged
        let text = lab.ok(&["diff", "c"]);
        assert!(text.contains("D /etc/passwd"), "{text}");
        // apply onto the parent gives the same view
        lab.ok(&["layer", "create", "again", "--parent", "base"]);
        let out = lab.ok(&["apply", "again", &gz]);
        assert!(out.contains("applied") && out.contains("gzip"), "{out}");
        assert_eq!(
            store_view(&lab.root, "again"),
            store_view(&lab.root, "c"),
            "{}",
            info.name
        );
        // a hostile archive: one line naming the entry; nothing applied
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let bad = lab.file("bad.tar");
        fs::write(&bad, b.into_inner().unwrap()).unwrap();
        lab.ok(&["layer", "create", "victim", "--parent", "base"]);
        let before = store_view(&lab.root, "victim");
        let err = lab.fails(&["apply", "victim", &bad]);
        assert!(err.contains("../escape"), "{err}");
        assert_eq!(store_view(&lab.root, "victim"), before);
        let err = lab.fails(&["apply", "victim", &tar, "--max-size", "1KiB"]);
        assert!(err.contains("--max-size"), "{err}");
        // images: none yet
        let out = lab.ok(&["images", "--json"]);
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            serde_json::json!([])
        );
    }
    let first = digests.values().next().unwrap().clone();
    assert!(digests.values().all(|d| *d == first), "{digests:#?}");
}

// ----- a real image, built with podman ------------------------------------------------------

/// Builds a small image: a busybox base imported from a local rootfs, files added,
/// overwritten and deleted across layers, a directory removed and recreated.
fn build_image(work: &Path, pm: &Podman) -> Result<(), String> {
    pm.busybox_base(work, "localhost/ll-bb:base")?;
    let ctx = work.join("ctx");
    fs::create_dir_all(ctx.join("dir1/sub")).map_err(|e| e.to_string())?;
    fs::write(ctx.join("a.txt"), "a\n").map_err(|e| e.to_string())?;
    fs::write(ctx.join("over.txt"), "first\n").map_err(|e| e.to_string())?;
    fs::write(ctx.join("over2.txt"), "second version\n").map_err(|e| e.to_string())?;
    fs::write(ctx.join("dir1/one"), "one\n").map_err(|e| e.to_string())?;
    fs::write(ctx.join("dir1/sub/two"), "two\n").map_err(|e| e.to_string())?;
    fs::write(
        ctx.join("Containerfile"),
        "FROM localhost/ll-bb:base\n\
         COPY a.txt /app/a.txt\n\
         COPY over.txt /app/over.txt\n\
         COPY dir1 /app/dir1\n\
         RUN rm /app/a.txt && rm -r /app/dir1 && mkdir /app/dir1 && echo new > /app/dir1/n && chmod 4755 /app/dir1/n && ln -s /app/dir1/n /app/link && chown 1000:1000 /app/dir1 && mkdir -p /var/empty && chmod 1777 /var/empty\n\
         COPY over2.txt /app/over.txt\n",
    )
    .map_err(|e| e.to_string())?;
    pm.build(&ctx, "localhost/ll-test:1")
}

#[test]
fn a_podman_built_image_imports_on_every_driver() {
    let Some((work, pm)) = podman_or_skip("podman image test") else {
        return;
    };
    if let Err(e) = build_image(work.path(), &pm) {
        skip(
            "podman image test",
            &format!("podman cannot build here: {e}"),
        );
        return;
    }
    let docker_archive = work.path().join("img.tar");
    let oci_archive = work.path().join("img-oci.tar");
    pm.cmd(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        docker_archive.to_str().unwrap(),
        "localhost/ll-test:1",
    ])
    .unwrap();
    pm.cmd(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci_archive.to_str().unwrap(),
        "localhost/ll-test:1",
    ])
    .unwrap();
    let mount = pm.cmd(&["image", "mount", "localhost/ll-test:1"]).unwrap();
    let want = host_view(Path::new(mount.trim()));
    let _ = pm.cmd(&["image", "unmount", "localhost/ll-test:1"]);
    assert!(
        want.contains_key("/app/dir1/n") && !want.contains_key("/app/a.txt"),
        "{want:#?}"
    );
    for info in DRIVERS {
        let lab = Lab::new(info.name);
        let out = lab.ok(&["import", docker_archive.to_str().unwrap(), "--json"]);
        let rec: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(rec["name"], "localhost/ll-test:1");
        let top = rec["top_layer"].as_str().unwrap().to_string();
        let got = store_view(&lab.root, &top);
        assert_eq!(
            got, want,
            "{}: the imported view differs from podman's",
            info.name
        );
        // the OCI archive of the same image shares every layer
        let out = lab.ok(&[
            "import",
            oci_archive.to_str().unwrap(),
            "--name",
            "oci",
            "--json",
        ]);
        let rec2: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(rec2["top_layer"], rec["top_layer"], "{}", info.name);
        let list: Value = serde_json::from_str(&lab.ok(&["images", "--json"])).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 2);
        assert!(lab.ok(&["images"]).contains("localhost/ll-test:1"));
        // a container layer on the image
        lab.ok(&["layer", "create", "ctr", "--parent", &top]);
        lab.ok(&["write", "ctr", "/app/over.txt", "--data", "mine"]);
        assert_eq!(lab.ok(&["cat", &top, "/app/over.txt"]), "second version\n");
        println!(
            "{}: podman image imported, {} entries match",
            info.name,
            want.len()
        );
    }
}

// ----- the harness: an imported image under copy-up, read-depth and mixed -----------------

/// A one-layer `docker save` archive with a few files.
fn small_image(path: &Path) {
    fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], kind: tar::EntryType) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_entry_type(kind);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    let mut l = tar::Builder::new(Vec::new());
    add(&mut l, "etc/", b"", tar::EntryType::Directory);
    add(
        &mut l,
        "etc/os-release",
        b"ID=image\n",
        tar::EntryType::Regular,
    );
    add(
        &mut l,
        "usr/lib/libbig.so",
        &vec![3u8; 300_000],
        tar::EntryType::Regular,
    );
    let layer = l.into_inner().unwrap();
    let diff_id = layerlab_oci::digest::sha256(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "test"}]
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "config.json", "RepoTags": ["localhost/harness:1"], "Layers": ["l0/layer.tar"]}
    ]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "manifest.json", &manifest, tar::EntryType::Regular);
    add(&mut b, "config.json", &config, tar::EntryType::Regular);
    add(&mut b, "l0/layer.tar", &layer, tar::EntryType::Regular);
    fs::write(path, b.into_inner().unwrap()).unwrap();
}

#[test]
fn harness_workloads_run_on_an_imported_image() {
    use layerlab::harness::config::Experiment;
    use layerlab::harness::runner::{self, RunOptions};
    let dir = tempfile::tempdir().unwrap();
    small_image(&dir.path().join("img.tar"));
    let text = r#"
name = "image-test"
drivers = ["vfs", "overlay2"]
repetitions = 1

[[workload.copy-up]]
sizes = ["4KiB"]
image = { archive = "img.tar" }

[[workload.read-depth]]
depths = [1, 2]
warm_reads = 1
image = { archive = "img.tar" }

[[workload.mixed]]
layers = 2
files = 20
dirs = 2
operations = 50
image = { archive = "img.tar" }
"#;
    let cfg = dir.path().join("exp.toml");
    fs::write(&cfg, text).unwrap();
    let exp = Experiment::load(&cfg).unwrap();
    let mut opts = RunOptions::new(dir.path().join("out"));
    opts.progress = false;
    let r = runner::run(&exp, &opts).unwrap();
    for kind in ["copy-up", "read-depth", "mixed"] {
        for d in ["vfs", "overlay2"] {
            assert!(
                r.rows
                    .iter()
                    .any(|row| row.workload == kind && row.driver == d),
                "no rows for {kind} on {d}"
            );
        }
    }
    // a missing archive is a configuration error naming the key
    fs::write(&cfg, text.replace("img.tar", "missing.tar")).unwrap();
    let err = Experiment::load(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("image") && err.contains("missing.tar"),
        "{err}"
    );
}
