//! The podman cross-check of `layerlab build` (skips visibly without root or podman): the
//! lab's Containerfiles (examples/build-lab) built by `podman build --isolation chroot` and
//! by layerlab on every driver, through the same sequence of edits. The same steps must
//! hit the cache in both, and each final image, saved by `layerlab save` and loaded into
//! podman, must have the file view (`podman image mount`) of podman's own build.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The builds, in order: the Containerfile of `examples/build-lab/app`, and the edit made
/// to the context (a shell command in it) before the build.
const SEQUENCE: &[(&str, &str)] = &[
    ("Containerfile.slow", ""),
    ("Containerfile.slow", ""),
    // an mtime alone is no change
    ("Containerfile.slow", "touch -d '2001-01-01' src/run.sh"),
    // a file .dockerignore leaves out is no change
    ("Containerfile.slow", "echo notes > NOTES.md"),
    // a mode is
    ("Containerfile.slow", "chmod 0755 build.sh"),
    ("Containerfile.fast", ""),
    ("Containerfile.fast", "echo 'echo edited' >> src/run.sh"),
    ("Containerfile.fast", "echo 'left 1.0' >> deps.txt"),
    ("Containerfile.multi", ""),
    ("Containerfile.multi", "echo 'echo again' >> src/run.sh"),
];

/// The images compared at the end: the last image of each Containerfile.
const IMAGES: &[(&str, &str)] = &[
    ("Containerfile.slow", "app:slow"),
    ("Containerfile.fast", "app:fast"),
    ("Containerfile.multi", "app:multi"),
];

fn tag_of(file: &str) -> &'static str {
    IMAGES.iter().find(|(f, _)| *f == file).unwrap().1
}

/// A fresh copy of the lab with its base root filesystem tar made.
fn lab_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/build-lab");
    let lab = dir.join("lab");
    sh(dir, &format!("cp -r {} {}", src.display(), lab.display()));
    sh(&lab, "sh make-rootfs.sh base");
    lab
}

fn sh(dir: &Path, script: &str) {
    if script.is_empty() {
        return;
    }
    let st = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "{script}");
}

/// (instruction, cached) of every step but FROM, from podman's output.
fn podman_pattern(out: &str) -> Vec<(String, bool)> {
    let mut steps: Vec<(String, bool)> = Vec::new();
    for line in out.lines() {
        if let Some(at) = line.find("STEP ") {
            let text = line[at..].split_once(": ").map(|x| x.1).unwrap_or("");
            steps.push((text.to_string(), false));
        } else if line.starts_with("--> Using cache") {
            if let Some(last) = steps.last_mut() {
                last.1 = true;
            }
        }
    }
    steps.retain(|(t, _)| !t.starts_with("FROM "));
    steps
}

/// The same from `layerlab build --json`.
fn layerlab_pattern(doc: &serde_json::Value) -> Vec<(String, bool)> {
    doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["instruction"].as_str().unwrap().to_string(),
                s["cached"].as_bool().unwrap(),
            )
        })
        .filter(|(t, _)| !t.starts_with("FROM "))
        .collect()
}

/// What buildah leaves in an image made by RUN (the mount points of its RUN sandbox:
/// empty directories and files), which layerlab's RUN does not make.
const BUILDAH_RUN_MOUNTS: &[&str] = &[
    "/dev",
    "/sys",
    "/run",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
];

/// Every path of a mounted image (kind, mode, owner, content digest or link target) but
/// buildah's empty RUN mount points.
fn view(root: &Path) -> BTreeMap<String, String> {
    let mut out = layerlab_testkit::host_view(root).unwrap();
    out.retain(|rel, _| {
        let path = root.join(rel.trim_start_matches('/'));
        let m = std::fs::symlink_metadata(&path).unwrap();
        let placeholder = BUILDAH_RUN_MOUNTS.contains(&rel.as_str())
            && (m.is_dir() && std::fs::read_dir(&path).unwrap().next().is_none()
                || m.is_file() && m.len() == 0);
        !placeholder
    });
    out
}

fn podman_view(pm: &Podman, image: &str) -> BTreeMap<String, String> {
    let dir = pm.cmd(&["image", "mount", image]).unwrap();
    let v = view(Path::new(dir.trim()));
    pm.cmd(&["image", "unmount", image]).unwrap();
    v
}

#[test]
fn layerlab_build_agrees_with_podman_build() {
    let Some((work, pm)) = podman_or_skip("layerlab_build_agrees_with_podman_build") else {
        return;
    };
    // podman's builds: the cache pattern of each, and the final images' views
    let lab = lab_copy(work.path());
    let ctx = lab.join("app");
    pm.build(&lab.join("base"), "busybox").unwrap();
    let mut want = Vec::new();
    for (file, edit) in SEQUENCE {
        sh(&ctx, edit);
        want.push(podman_pattern(
            &pm.build_file(&ctx, file, tag_of(file)).unwrap(),
        ));
    }
    let views: Vec<_> = IMAGES
        .iter()
        .map(|(_, tag)| podman_view(&pm, &format!("localhost/{tag}")))
        .collect();
    for (_, tag) in IMAGES {
        pm.cmd(&["rmi", &format!("localhost/{tag}")]).unwrap();
    }
    // the sequence exercises hits and misses; the views hold the images' files
    assert!(views
        .iter()
        .all(|v| v.contains_key("/bin/busybox") && v.len() > 30));
    assert!(want[1].iter().all(|s| s.1) && want[4].iter().any(|s| !s.1));

    for driver in layerlab_testkit::drivers("layerlab_build_agrees_with_podman_build") {
        let l = Lab::new(driver);
        let lab = lab_copy(l.tmp.path());
        let ctx = lab.join("app");
        l.ok(&[
            "build",
            "-t",
            "busybox",
            "-f",
            lab.join("base/Containerfile").to_str().unwrap(),
            lab.join("base").to_str().unwrap(),
        ]);
        for (i, (file, edit)) in SEQUENCE.iter().enumerate() {
            sh(&ctx, edit);
            let doc = l.json(&[
                "build",
                "--json",
                "-t",
                tag_of(file),
                "-f",
                ctx.join(file).to_str().unwrap(),
                ctx.to_str().unwrap(),
            ]);
            assert_eq!(
                layerlab_pattern(&doc),
                want[i],
                "{driver}: build {} ({file} after `{edit}`): cache hits differ from podman's",
                i + 1
            );
        }
        for ((_, tag), want) in IMAGES.iter().zip(&views) {
            let archive = l.file("image.tar");
            l.ok(&["save", tag, "-o", &archive]);
            pm.cmd(&["load", "-q", "-i", &archive]).unwrap();
            let got = podman_view(&pm, &format!("localhost/{tag}"));
            pm.cmd(&["rmi", &format!("localhost/{tag}")]).unwrap();
            let diff: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .map(|(k, v)| format!("{k}: podman {v}, layerlab {:?}", got.get(k)))
                .chain(
                    got.keys()
                        .filter(|k| !want.contains_key(*k))
                        .map(|k| format!("{k}: only in layerlab's")),
                )
                .collect();
            assert!(diff.is_empty(), "{driver}: {tag}: {diff:#?}");
        }
    }
}

/// `save` through the binary: an unknown image, an unwritable target and an unknown format
/// are refused with one line, and nothing is written; a saved archive lists its layers.
#[test]
fn save_refuses_bad_input_and_writes_whole_archives() {
    let l = Lab::new("vfs");
    l.ok(&["layer", "create", "base"]);
    l.ok(&["mkdir", "base", "/etc"]);
    l.ok(&["write", "base", "/etc/motd", "--data", "hi"]);
    l.ok(&["layer", "commit", "base"]);
    let err = l.fails(&["save", "nothing", "-o", &l.file("x.tar")]);
    assert!(err.contains("image nothing"), "{err}");
    assert!(!Path::new(&l.file("x.tar")).exists());
    let err = l.fails(&["save", "nothing", "-o", "/nonexistent/dir/x.tar"]);
    assert!(err.starts_with("error: "), "{err}");
    let o = l.run(&["save", "x", "-o", &l.file("x.tar"), "--format", "zip"]);
    assert_eq!(o.status.code(), Some(2));
    // an image from a build with no RUN (no podman or FUSE needed)
    let ctx = l.tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY hello.txt /\nCMD [\"/hello\"]\n",
    )
    .unwrap();
    l.ok(&["build", "-t", "hello:1", ctx.to_str().unwrap()]);
    for format in ["docker-archive", "oci-archive"] {
        let file = l.file(&format!("{format}.tar"));
        let out = l.ok(&["save", "hello:1", "-o", &file, "--format", format]);
        assert!(
            out.starts_with(&format!("saved image hello:1 as {format} to ")),
            "{out}"
        );
        let names: Vec<String> = tar::Archive::new(std::fs::File::open(&file).unwrap())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        let want = if format == "docker-archive" {
            "manifest.json"
        } else {
            "index.json"
        };
        assert!(names.iter().any(|n| n == want), "{names:?}");
        // read back by this store's own import: the same layer content
        l.ok(&["import", &file, "--name", &format!("back-{format}")]);
        let images = l.json(&["images", "--json"]);
        let top = images
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == format!("back-{format}"))
            .unwrap()["top_layer"]
            .as_str()
            .unwrap()
            .to_string();
        let view = l.ok(&["ls", &top, "/"]);
        assert!(view.contains("hello.txt"), "{view}");
    }
    let left: Vec<_> = std::fs::read_dir(l.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".layerlab-save-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
