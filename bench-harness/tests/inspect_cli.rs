//! `history`, `df`, `analyze` and `graph` through the built binary (every command a new
//! process that reopens the store): on the course's anti-pattern image
//! (`examples/images/antipatterns.tar.gz`, written by [`antipatterns`] below) with
//! figures worked out by hand, the README's "Reading images" section verbatim, one-line
//! errors that change nothing, and a podman-built image against `podman history`
//! (skipped, with a `SKIP` line on stderr, where podman cannot run).
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::float_cmp
)]

mod common;

use common::{podman_or_skip, rows, skip, Lab, Podman, BIN};
use serde_json::{json, Value};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

// ----- the course's anti-pattern image, generated ---------------------------------------------

/// One entry of a generated layer.
enum E {
    Dir(&'static str),
    File(&'static str, usize),
    /// A file whose content differs from [`E::File`]'s of the same path.
    Edited(&'static str, usize),
    Whiteout(&'static str),
}

/// Compressible, deterministic content of `n` bytes for `path`.
fn content(path: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut k = 0u64;
    while out.len() < n {
        out.extend_from_slice(format!("{path} line {k}\n").as_bytes());
        k += 1;
    }
    out.truncate(n);
    out
}

fn layer_tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let (name, data, kind, mode) = match e {
            E::Dir(p) => (
                format!("{p}/"),
                Vec::new(),
                tar::EntryType::Directory,
                0o755,
            ),
            E::File(p, n) => (
                p.to_string(),
                content(p, *n),
                tar::EntryType::Regular,
                0o644,
            ),
            E::Edited(p, n) => {
                let data = content(&format!("edited {p}"), *n);
                (p.to_string(), data, tar::EntryType::Regular, 0o644)
            }
            E::Whiteout(p) => {
                let (dir, name) = p.rsplit_once('/').unwrap();
                let name = format!("{dir}/.wh.{name}");
                (name, Vec::new(), tar::EntryType::Regular, 0o644)
            }
        };
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(kind);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A history step: the instruction and, for a step that makes a layer, its entries.
type Step = (&'static str, Option<Vec<E>>);

/// The course's anti-patterns in one image: a package cache left behind, sources copied
/// in one layer and deleted in a later one, build output removed after the fact, a file
/// written twice, a layer with no content, and metadata-only steps.
fn antipattern_steps() -> Vec<Step> {
    use E::{Dir, File, Whiteout};
    vec![
        (
            "/bin/sh -c #(nop) ADD file:rootfs.tar in /",
            Some(vec![
                Dir("bin"),
                File("bin/busybox", 40000),
                Dir("etc"),
                File("etc/os-release", 200),
                Dir("lib"),
                File("lib/ld-musl-x86_64.so.1", 30000),
            ]),
        ),
        (
            "/bin/sh -c apk add --update build-base",
            Some(vec![
                Dir("usr"),
                Dir("usr/bin"),
                File("usr/bin/gcc", 120000),
                Dir("var"),
                Dir("var/cache"),
                Dir("var/cache/apk"),
                File("var/cache/apk/APKINDEX.tar.gz", 20000),
            ]),
        ),
        (
            "/bin/sh -c #(nop) COPY file:app-src.tar.gz in /tmp/",
            Some(vec![Dir("tmp"), File("tmp/app-src.tar.gz", 150000)]),
        ),
        (
            "/bin/sh -c tar -xzf /tmp/app-src.tar.gz -C /app && make -C /app",
            Some(vec![
                Dir("app"),
                File("app/app", 60000),
                File("app/config.json", 500),
                Dir("app/build"),
                File("app/build/main.o", 30000),
            ]),
        ),
        (
            "/bin/sh -c rm -rf /tmp/app-src.tar.gz /app/build",
            Some(vec![
                Dir("app"),
                Whiteout("app/build"),
                Dir("tmp"),
                Whiteout("tmp/app-src.tar.gz"),
            ]),
        ),
        ("/bin/sh -c #(nop)  ENV APP_ENV=production", None),
        (
            "/bin/sh -c sed -i 's/debug/info/' /app/config.json",
            Some(vec![Dir("app"), E::Edited("app/config.json", 500)]),
        ),
        (
            "/bin/sh -c mkdir -p /var/log/app",
            Some(vec![Dir("var"), Dir("var/log"), Dir("var/log/app")]),
        ),
        ("/bin/sh -c #(nop)  CMD [\"/app/app\"]", None),
    ]
}

/// A `docker save` archive of `steps` tagged `tag`, and its layer tars.
fn docker_save(tag: &str, steps: &[Step]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut layers = Vec::new();
    let mut history = Vec::new();
    for (i, (by, entries)) in steps.iter().enumerate() {
        let created = format!("2026-12-01T10:{i:02}:00Z");
        match entries {
            Some(e) => {
                layers.push(layer_tar(e));
                history.push(json!({"created": created, "created_by": by}));
            }
            None => {
                history.push(json!({"created": created, "created_by": by, "empty_layer": true}))
            }
        }
    }
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| layerlab_oci::digest::sha256(l))
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "created": "2026-12-01T10:09:00Z",
        "config": {"Env": ["APP_ENV=production"], "Cmd": ["/app/app"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap();
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let manifest = serde_json::to_vec(&json!([
        {"Config": "config.json", "RepoTags": [tag], "Layers": names}
    ]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("manifest.json", &manifest);
    add("config.json", &config);
    for (n, l) in names.iter().zip(&layers) {
        add(n, l);
    }
    (b.into_inner().unwrap(), layers)
}

const TAG: &str = "localhost/course/antipatterns:1";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/images/antipatterns.tar.gz")
}

#[test]
fn the_fixture_is_what_the_generator_writes() {
    let (want, _) = docker_save(TAG, &antipattern_steps());
    if std::env::var_os("LAYERLAB_BLESS").is_some() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&want).unwrap();
        fs::create_dir_all(fixture().parent().unwrap()).unwrap();
        fs::write(fixture(), gz.finish().unwrap()).unwrap();
    }
    let mut got = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(fixture()).unwrap())
        .read_to_end(&mut got)
        .unwrap();
    assert!(
        got == want,
        "{} is stale: regenerate it with LAYERLAB_BLESS=1 cargo test -p layerlab --test inspect_cli",
        fixture().display()
    );
}

/// A store with the fixture imported.
fn imported(driver: &str) -> Lab {
    let lab = Lab::new(driver);
    lab.ok(&["import", fixture().to_str().unwrap()]);
    lab
}

#[test]
fn history_matches_the_config_step_for_step() {
    let (_, layers) = docker_save(TAG, &antipattern_steps());
    let lab = imported("overlay2");
    let h = lab.json(&["history", TAG, "--json"]);
    let steps = h.as_array().unwrap();
    let want: Vec<&Step> = antipattern_steps_static().iter().rev().collect();
    assert_eq!(steps.len(), want.len());
    let mut sizes = layers.iter().rev().map(Vec::len);
    for (got, (by, entries)) in steps.iter().zip(want) {
        assert_eq!(got["created_by"], *by);
        match entries {
            None => {
                assert_eq!(got["size"], 0, "{got}");
                assert_eq!(got["layer"], Value::Null);
                assert_eq!(got["empty_layer"], true);
            }
            Some(_) => assert_eq!(got["size"], sizes.next().unwrap() as u64, "{got}"),
        }
    }
    let text = lab.ok(&["history", TAG]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("LAYER"), "{text}");
    assert!(
        lines[1].starts_with("<missing>") && lines[1].contains(" 0B"),
        "{text}"
    );
    assert!(lines[1].contains("CMD"), "{text}");
    assert_eq!(lines.len(), 10, "{text}");
    // --no-trunc shows the full instruction
    let full = lab.ok(&["history", TAG, "--no-trunc"]);
    assert!(full.contains("tar -xzf /tmp/app-src.tar.gz -C /app && make -C /app"));
    assert!(!text.contains("make -C /app"), "{text}");
}

/// The steps, kept for comparisons (the generator's are consumed).
fn antipattern_steps_static() -> &'static [Step] {
    static STEPS: std::sync::OnceLock<Vec<Step>> = std::sync::OnceLock::new();
    STEPS.get_or_init(antipattern_steps)
}

#[test]
fn analyze_gives_the_figures_worked_out_by_hand() {
    let lab = imported("aufs");
    let a = lab.json(&["analyze", TAG, "--json"]);
    // Leaves and their sightings (sizes from antipattern_steps):
    //   layer 0: busybox 40000, os-release 200, ld-musl 30000
    //   layer 1: gcc 120000, APKINDEX 20000
    //   layer 2: /tmp/app-src.tar.gz 150000
    //   layer 3: /app/app 60000, /app/config.json 500, /app/build/main.o 30000
    //   layer 4: whiteout /app/build (a directory: weighs 30000), whiteout
    //            /tmp/app-src.tar.gz (a file: weighs 0)
    //   layer 5: /app/config.json 500
    //   layer 6: /var/log/app, an empty directory: 0
    // cumulative = 40000+200+30000+120000+20000+150000+60000+1000+30000+30000 = 481200
    // smallest   = 40000+200+30000+120000+20000+0+60000+500+30000+30000      = 330700
    // wasted     = /tmp/app-src.tar.gz 150000 + /app/config.json 1000         = 151000
    // user       = 140000 + 150000 + 90500 + 0 + 500 + 0                       = 381000
    let e = &a["efficiency"];
    assert_eq!(e["score"].as_f64().unwrap(), 330700.0 / 481200.0);
    assert_eq!(e["wasted_bytes"], 151000);
    assert_eq!(
        e["user_wasted_percent"].as_f64().unwrap(),
        151000.0 / 381000.0
    );
    let wasted: Vec<(&str, u64)> = rows(&e["wasted"], |w| {
        (
            w["path"].as_str().unwrap(),
            w["cumulative"].as_u64().unwrap(),
        )
    });
    assert_eq!(
        wasted,
        [("/tmp/app-src.tar.gz", 150000), ("/app/config.json", 1000)]
    );
    assert_eq!(a["size"], 70200 + 140000 + 150000 + 90500 + 500);
    let per_layer: Vec<(u64, u64, u64)> = rows(&a["layers"], |l| {
        (
            l["added"].as_u64().unwrap(),
            l["changed"].as_u64().unwrap(),
            l["removed"].as_u64().unwrap(),
        )
    });
    assert_eq!(
        per_layer,
        [
            (70200, 0, 0),
            (140000, 0, 0),
            (150000, 0, 0),
            (90500, 0, 0),
            (0, 0, 180000),
            (0, 500, 0),
            (0, 0, 0)
        ]
    );
    let findings: Vec<(&str, u64, Value, u64)> = rows(&a["findings"], |f| {
        (
            f["kind"].as_str().unwrap(),
            f["layer"].as_u64().unwrap(),
            f["path"].clone(),
            f["bytes"].as_u64().unwrap(),
        )
    });
    assert_eq!(
        findings,
        [
            ("package-cache", 1, json!("/var/cache/apk"), 20000),
            ("deleted-later", 4, json!("/app/build"), 30000),
            ("deleted-later", 4, json!("/tmp/app-src.tar.gz"), 150000),
            ("overwritten", 5, json!("/app/config.json"), 500),
            ("metadata-only", 6, Value::Null, 0),
        ]
    );
    // --ci with dive's defaults fails (efficiency 0.687 < 0.9): exit 1, one error line,
    // the report still on stdout
    let o = lab.run(&["analyze", TAG, "--ci"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAIL: lowestEfficiency"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: image localhost/course/antipatterns:1: CI rules failed"),
        "{err}"
    );
    // thresholds it meets pass
    let out = lab.ok(&[
        "analyze",
        TAG,
        "--ci",
        "--lowest-efficiency",
        "0.68",
        "--highest-wasted-bytes",
        "151000",
        "--highest-user-wasted-percent",
        "0.4",
    ]);
    assert!(
        out.contains("PASS: highestWastedBytes") && !out.contains("FAIL"),
        "{out}"
    );
    lab.fails(&["analyze", TAG, "--ci", "--highest-wasted-bytes", "150999"]);
}

#[test]
fn df_graph_and_pull_planning_count_shared_layers_once() {
    let lab = imported("vfs");
    // a second image sharing the base and the apk layer
    let mut slim = antipattern_steps();
    slim.truncate(2);
    slim.push((
        "/bin/sh -c #(nop) COPY file:app in /app/app",
        Some(vec![E::Dir("app"), E::File("app/app", 60000)]),
    ));
    let (archive, _) = docker_save("localhost/course/slim:1", &slim);
    fs::write(lab.file("slim.tar"), archive).unwrap();
    lab.ok(&["import", &lab.file("slim.tar")]);
    // the hand count, from the layer table
    let images = lab.json(&["images", "--json"]);
    let mut sizes = std::collections::BTreeMap::new();
    for i in images.as_array().unwrap() {
        for l in i["layers"].as_array().unwrap() {
            sizes.insert(
                l["chain_id"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            );
        }
    }
    assert_eq!(sizes.len(), 8, "7 + 1 layers, 2 of them shared");
    let total: u64 = sizes.values().sum();
    assert_eq!(total, 451200 + 60000);
    let df = lab.json(&["df", "--json"]);
    assert_eq!(
        df["images"],
        json!({"total": 2, "active": 0, "size": total, "reclaimable": total})
    );
    assert_eq!(df["containers"]["total"], 0);
    // a container on the anti-pattern image: that image is active, its layers are not
    // reclaimable, the slim image's own layer is
    let top = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == TAG)
        .unwrap()["top_layer"]
        .as_str()
        .unwrap()
        .to_string();
    lab.ok(&["layer", "create", "web-1", "--parent", &top]);
    lab.ok(&[
        "write",
        "web-1",
        "/app/config.json",
        "--data",
        "{\"level\":\"info\"}",
    ]);
    let df = lab.json(&["df", "--json"]);
    assert_eq!(
        df["images"],
        json!({"total": 2, "active": 1, "size": total, "reclaimable": 60000})
    );
    assert_eq!(
        df["containers"],
        json!({"total": 1, "active": 1, "size": 16, "reclaimable": 0})
    );
    assert_eq!(df["build_cache"]["total"], 0);
    let shared = 70200 + 140000;
    let uses = df["image_use"].as_array().unwrap();
    assert_eq!(uses[0]["shared_size"], shared);
    assert_eq!(uses[1]["shared_size"], shared);
    let v = lab.ok(&["df", "-v"]);
    assert!(
        v.contains("SHARED SIZE")
            && v.contains("localhost/course/slim:1, localhost/course/antipatterns:1")
            || v.contains("localhost/course/antipatterns:1, localhost/course/slim:1"),
        "{v}"
    );
    // pull planning: the slim image has the two bottom layers already
    let a = lab.json(&[
        "analyze",
        TAG,
        "--have",
        "localhost/course/slim:1",
        "--json",
    ]);
    let p = &a["pull"];
    assert_eq!(p["fetch_layers"], 5);
    let fetched: Vec<bool> = rows(&p["layers"], |l| l["present_in"].is_null());
    assert_eq!(fetched, [false, false, true, true, true, true, true]);
    let (_, tars) = docker_save(TAG, &antipattern_steps());
    let fetch_tar: usize = tars.iter().skip(2).map(Vec::len).sum();
    assert_eq!(p["fetch_tar"], fetch_tar as u64);
    assert!(p["fetch_gzip"].as_u64().unwrap() < p["fetch_tar"].as_u64().unwrap());
    // graph: both images and the container, shared layers drawn once
    let g = lab.ok(&["graph"]);
    assert!(
        g.contains("[localhost/course/slim:1]") && g.contains("web-1"),
        "{g}"
    );
    assert_eq!(
        g.lines().count(),
        9,
        "8 image layers and a container layer:\n{g}"
    );
    let one = lab.ok(&["graph", TAG]);
    assert!(one.starts_with("merged view"), "{one}");
    assert!(one.contains("web-1") && one.contains("read-write"), "{one}");
    assert!(!one.contains("slim"), "{one}");
    let m = lab.ok(&["graph", "--mermaid"]);
    // nine layers, one root: eight edges to parents, two to images
    assert!(
        m.starts_with("flowchart BT") && m.matches(" --> ").count() == 8,
        "{m}"
    );
    assert_eq!(m.matches(" -.- ").count(), 2, "{m}");
    let d = lab.ok(&["graph", "--dot"]);
    let edges = d
        .lines()
        .filter(|l| l.starts_with("  L") && l.contains(" -> "))
        .count();
    assert!(d.starts_with("digraph layers {") && edges == 8, "{d}");
}

#[test]
fn per_driver_cost_counts_copy_up_where_the_driver_pays_it() {
    let lab = imported("overlay2");
    let a = lab.json(&["analyze", TAG, "--drivers", "vfs,overlay2", "--json"]);
    let costs = a["drivers"].as_array().unwrap();
    let by = |name: &str| costs.iter().find(|c| c["driver"] == name).unwrap();
    // the ten largest files: the image has eight files
    let vfs = by("vfs");
    let ov = by("overlay2");
    let files = ov["copy_up"].as_array().unwrap();
    let sizes: Vec<u64> = files.iter().map(|f| f["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [120000, 60000, 40000, 30000, 20000, 500, 200]);
    // overlay2 copies each whole file up on the first write; vfs copied everything when
    // the container layer was made, and copies nothing on a write
    for f in files {
        assert_eq!(f["counts"]["bytes_copied"], f["size"], "{f}");
    }
    for f in vfs["copy_up"].as_array().unwrap() {
        assert_eq!(f["counts"]["bytes_copied"], 0, "{f}");
    }
    assert_eq!(vfs["create_counts"]["bytes_copied"], 270700);
    assert_eq!(ov["create_counts"]["bytes_copied"], 0);
    // a vfs layer is a full copy of its parent: the image and the container take far more
    // disk than on overlay2
    let disk = |c: &Value, key: &str| c[key].as_u64().unwrap();
    assert!(disk(vfs, "container_bytes") >= 270700, "{vfs}");
    assert!(
        disk(vfs, "container_bytes") > disk(ov, "container_bytes"),
        "{vfs}\n{ov}"
    );
    assert!(
        disk(vfs, "image_bytes") > 2 * disk(ov, "image_bytes"),
        "{vfs}\n{ov}"
    );
    // overlay2's copies up take at least the bytes of the files
    assert!(disk(ov, "copy_up_disk_bytes") >= 270700, "{ov}");
    // the scratch stores are gone, the store is as it was
    let layers = lab.json(&["layer", "ls", "--json"]);
    assert_eq!(layers.as_array().unwrap().len(), 7);
}

#[test]
fn bad_input_gets_one_error_line_and_changes_nothing() {
    let lab = imported("overlay2");
    let before = lab.ok(&["layer", "ls", "--json"]);
    let e = lab.fails(&["history", "nope:1"]);
    assert!(
        e.contains("image nope:1") && e.contains("no such image"),
        "{e}"
    );
    lab.fails(&["analyze", "nope:1"]);
    lab.fails(&["graph", "nope:1"]);
    let e = lab.fails(&["analyze", TAG, "--drivers", "ext9"]);
    assert!(e.contains("--drivers") && e.contains("ext9"), "{e}");
    let e = lab.fails(&["analyze", TAG, "--ci", "--lowest-efficiency", "2"]);
    assert!(e.contains("--lowest-efficiency"), "{e}");
    let e = lab.fails(&["analyze", TAG, "--ci", "--highest-wasted-bytes", "lots"]);
    assert!(e.contains("--highest-wasted-bytes"), "{e}");
    let e = lab.fails(&["analyze", TAG, "--have", "nope:2"]);
    assert!(e.contains("nope:2"), "{e}");
    assert_eq!(lab.ok(&["layer", "ls", "--json"]), before);
    // an empty store: df is all zeros, graph draws nothing
    let empty = Lab::new("vfs");
    let df = empty.json(&["df", "--json"]);
    assert_eq!(
        df["images"],
        json!({"total": 0, "active": 0, "size": 0, "reclaimable": 0})
    );
    assert_eq!(empty.ok(&["graph"]), "");
}

// ----- a podman-built image against podman's own history ---------------------------------------

/// Tar headers and the end-of-archive padding: what separates layerlab's size of a layer
/// (the saved layer tar) from podman's.
const TAR_OVERHEAD: u64 = 16 << 10;

/// Builds an image with the course's anti-patterns and saves it as a docker archive.
fn podman_image(work: &Path, pm: &Podman) -> Result<PathBuf, String> {
    pm.busybox_base(work, "localhost/ll-bb:base")?;
    let ctx = work.join("ctx");
    fs::create_dir_all(&ctx).map_err(|e| e.to_string())?;
    fs::write(ctx.join("config.json"), "{\"level\":\"debug\"}\n").map_err(|e| e.to_string())?;
    fs::write(
        ctx.join("Containerfile"),
        "FROM localhost/ll-bb:base\n\
         RUN mkdir -p /var/cache/apk && dd if=/dev/zero of=/var/cache/apk/APKINDEX bs=1k count=20\n\
         COPY config.json /app/config.json\n\
         RUN mkdir -p /tmp && dd if=/dev/zero of=/tmp/src.tar bs=1k count=100\n\
         ENV APP_ENV=production\n\
         RUN rm /tmp/src.tar\n\
         RUN sed -i s/debug/info/ /app/config.json\n\
         RUN mkdir -p /var/log/app\n\
         CMD [\"/bin/sh\"]\n",
    )
    .map_err(|e| e.to_string())?;
    pm.build(&ctx, "localhost/ll-anti:1")?;
    let archive = work.join("anti.tar");
    pm.cmd(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        archive.to_str().unwrap_or_default(),
        "localhost/ll-anti:1",
    ])?;
    Ok(archive)
}

#[test]
fn a_podman_image_history_matches_podman_history_and_df_the_layer_table() {
    let Some((work, pm)) = podman_or_skip("podman inspect test") else {
        return;
    };
    let archive = match podman_image(work.path(), &pm) {
        Ok(a) => a,
        Err(e) => {
            skip(
                "podman inspect test",
                &format!("podman cannot build here: {e}"),
            );
            return;
        }
    };
    let theirs: Value = serde_json::from_str(
        &pm.cmd(&["history", "--format", "json", "localhost/ll-anti:1"])
            .unwrap(),
    )
    .unwrap();
    let theirs = theirs.as_array().unwrap();
    let lab = Lab::new("overlay2");
    lab.ok(&["import", archive.to_str().unwrap()]);
    let ours = lab.json(&["history", "localhost/ll-anti:1", "--json"]);
    let ours = ours.as_array().unwrap();
    assert_eq!(ours.len(), theirs.len(), "{ours:#?}\n{theirs:#?}");
    for (o, t) in ours.iter().zip(theirs) {
        assert_eq!(o["created_by"], t["CreatedBy"], "{o}\n{t}");
        let (mine, podman) = (o["size"].as_u64().unwrap(), t["size"].as_u64().unwrap());
        if podman == 0 {
            assert_eq!(mine, 0, "{o}\n{t}");
        } else {
            assert!(mine.abs_diff(podman) <= TAR_OVERHEAD, "{o}\n{t}");
        }
    }
    // df: a hand count from the layer table
    let images = lab.json(&["images", "--json"]);
    let layers = images[0]["layers"].as_array().unwrap();
    let size: u64 = layers.iter().map(|l| l["size"].as_u64().unwrap()).sum();
    let df = lab.json(&["df", "--json"]);
    assert_eq!(
        df["images"],
        json!({"total": 1, "active": 0, "size": size, "reclaimable": size})
    );
    assert_eq!(df["containers"]["total"], 0);
    assert_eq!(df["build_cache"]["total"], 0);
    // and the analysis names the anti-patterns podman built in
    let a = lab.json(&["analyze", "localhost/ll-anti:1", "--json"]);
    let kinds: Vec<(&str, Option<&str>)> = rows(&a["findings"], |f| {
        (f["kind"].as_str().unwrap(), f["path"].as_str())
    });
    for want in [
        ("package-cache", Some("/var/cache/apk")),
        ("deleted-later", Some("/tmp/src.tar")),
        ("overwritten", Some("/app/config.json")),
        ("metadata-only", None),
    ] {
        assert!(kinds.contains(&want), "{want:?} not in {kinds:?}");
    }
    assert_eq!(a["efficiency"]["wasted"][0]["path"], "/tmp/src.tar", "{a}");
}

// ----- the README's "Reading images" section, verbatim -----------------------------------------

#[test]
fn readme_reading_images_runs_verbatim() {
    let steps = common::readme::console_block("## Reading images");
    for cmd in ["history", "analyze", "df"] {
        let shows = |(c, shown): &(String, Vec<String>)| {
            let c = c.as_str();
            (c == format!("layerlab {cmd}") || c.starts_with(&format!("layerlab {cmd} ")))
                && !shown.is_empty()
        };
        assert!(
            steps.iter().any(shows),
            "the section shows no `{cmd}` output"
        );
    }
    // run from a copy of the repository's root: the example image where the README says
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("examples/images")).unwrap();
    fs::copy(
        fixture(),
        tmp.path().join("examples/images/antipatterns.tar.gz"),
    )
    .unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (command, shown) in &steps {
        assert!(
            command.starts_with("layerlab "),
            "not a layerlab command: {command}"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("PATH", &path)
            .env_remove("LAYERLAB_ROOT")
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "`{command}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<&str> = stdout.lines().map(str::trim_end).collect();
        if !shown.is_empty() {
            assert_eq!(got, *shown, "`{command}`: README differs from the output");
        }
    }
}
