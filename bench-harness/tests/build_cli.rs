//! `layerlab build` through the command line, each build a new process reopening the
//! store: the cache's hit/miss pattern after edits (content, mtime only, ignored files,
//! build args, removed layers, --no-cache) on every driver, multi-stage targets, failures
//! that build nothing; RUN steps with busybox where RUN can run here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use layerlab_testkit::{drivers, write_files};
use serde_json::Value;
use std::fs;
use std::path::Path;

mod common;
use common::{skip, Lab};

const APP: &str = "\
# syntax=docker/dockerfile:1
FROM scratch
ARG FLAVOR=plain
COPY package.json /app/
ENV FLAVOR=$FLAVOR
COPY src/ /app/src/
LABEL built=yes
";

const MULTI: &str = "\
FROM scratch AS build
COPY src /out/src
RUN-LESS-PLACEHOLDER
FROM scratch AS unused
COPY package.json /never/
FROM scratch
COPY --from=build /out/src /app/
CMD [\"/app/main.js\"]
";

fn context(dir: &Path) {
    write_files(
        dir,
        &[
            ("package.json", "{\"deps\": [\"left-pad\"]}\n"),
            ("src/main.js", "console.log('v1')\n"),
            ("src/util.js", "module.exports = 1\n"),
            ("node_modules/dep/index.js", "x\n"),
            (".dockerignore", "node_modules\n*.log\n"),
            ("Containerfile", APP),
        ],
    )
    .unwrap();
    fs::write(
        dir.join("Containerfile.multi"),
        MULTI.replace("RUN-LESS-PLACEHOLDER\n", "LABEL stage=build\n"),
    )
    .unwrap();
}

/// `H` for a cached step, `M` for a built one, FROM lines left out.
fn pattern(v: &Value) -> String {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["instruction"].as_str().unwrap().starts_with("FROM"))
        .map(|s| {
            if s["cached"].as_bool().unwrap() {
                'H'
            } else {
                'M'
            }
        })
        .collect()
}

fn build(lab: &Lab, ctx: &str, extra: &[&str]) -> Value {
    let mut args = vec!["build", "--json", "-t", "app:1"];
    args.extend_from_slice(extra);
    args.push(ctx);
    lab.json(&args)
}

fn layer_ids(lab: &Lab) -> Vec<String> {
    let v = lab.json(&["layer", "ls", "--json"]);
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

fn scenario(driver: &str) {
    let lab = Lab::new(driver);
    let ctx = lab.file("ctx");
    let c = Path::new(&ctx);
    context(c);
    let first = build(&lab, &ctx, &[]);
    assert_eq!(pattern(&first), "MMMMM", "{driver}: first build");
    let image = first["image"]["id"].as_str().unwrap().to_string();
    // each built layer step reports its layer, size and counts
    let copy = &first["steps"][2];
    assert_eq!(copy["instruction"], "COPY package.json /app/");
    assert!(copy["size"].as_u64().unwrap() > 0, "{copy}");
    assert!(
        copy["counts"]["bytes_written"].as_u64().unwrap() > 0,
        "{copy}"
    );
    assert!(first["steps"][1]["layer"].is_null(), "ARG makes no layer");

    let again = build(&lab, &ctx, &[]);
    assert_eq!(pattern(&again), "HHHHH", "{driver}: unchanged rebuild");
    assert_eq!(again["image"]["id"], image.as_str(), "{driver}: same image");

    // mtime only and ignored files: still all hits
    layerlab_testkit::set_mtime(&c.join("src/main.js"), 86_400).unwrap();
    fs::write(c.join("node_modules/dep/index.js"), "changed\n").unwrap();
    fs::write(c.join("debug.log"), "ignored\n").unwrap();
    assert_eq!(
        pattern(&build(&lab, &ctx, &[])),
        "HHHHH",
        "{driver}: mtime/ignored"
    );

    // a source edit: its COPY and every later step rebuild
    fs::write(c.join("src/main.js"), "console.log('v2')\n").unwrap();
    let edited = build(&lab, &ctx, &[]);
    assert_eq!(pattern(&edited), "HHHMM", "{driver}: source edit");
    let top = edited["image"]["top_layer"].as_str().unwrap().to_string();
    assert_eq!(
        lab.ok(&["cat", &top, "/app/src/main.js"]),
        "console.log('v2')\n"
    );
    assert!(lab
        .fails(&["cat", &top, "/app/node_modules"])
        .contains("node_modules"));
    // the manifest edit: everything from its COPY on
    fs::write(c.join("package.json"), "{\"deps\": []}\n").unwrap();
    assert_eq!(
        pattern(&build(&lab, &ctx, &[])),
        "HMMMM",
        "{driver}: manifest edit"
    );
    // a build arg: the ARG is a hit, its first use a miss
    let o = lab.run(&["build", "-t", "app:1", "--build-arg", "NOPE=1", &ctx]);
    assert!(o.status.success());
    let warn = String::from_utf8_lossy(&o.stderr);
    assert!(warn.contains("not consumed: [NOPE]"), "{warn}");
    let arg = build(&lab, &ctx, &["--build-arg", "FLAVOR=fancy"]);
    assert_eq!(pattern(&arg), "HHMMM", "{driver}: build arg");
    let cfg = &arg["image"]["config"];
    assert!(
        cfg["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "FLAVOR=fancy"),
        "{cfg}"
    );
    assert_eq!(cfg["Labels"]["built"], "yes");
    // --no-cache builds everything
    assert_eq!(
        pattern(&build(&lab, &ctx, &["--no-cache"])),
        "MMMMM",
        "{driver}: --no-cache"
    );
    // a cached layer removed: the cache no longer offers it
    let latest = build(&lab, &ctx, &[]);
    assert_eq!(pattern(&latest), "HHHHH");
    let top = latest["image"]["top_layer"].as_str().unwrap().to_string();
    lab.ok(&["layer", "rm", &top]);
    assert_eq!(
        pattern(&build(&lab, &ctx, &[])),
        "HHHMM",
        "{driver}: removed layer"
    );
    let cache = fs::read_to_string(lab.root.join("build-cache.json")).unwrap();
    assert!(
        !cache.contains(&top),
        "{driver}: the cache names a removed layer"
    );

    // images and history as for an imported image
    let images = lab.json(&["images", "--json"]);
    assert_eq!(images[0]["name"], "app:1");
    assert_eq!(images[0]["layers"].as_array().unwrap().len(), 2);
    let history = lab.json(&["history", "app:1", "--json"]);
    let empty = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] == true)
        .count();
    assert_eq!(
        empty, 3,
        "{driver}: ARG, ENV, LABEL are empty layers: {history}"
    );

    // multi-stage: the unused stage is skipped, only the target's layers are in the image
    let multi = lab.json(&[
        "build",
        "--json",
        "-f",
        &format!("{ctx}/Containerfile.multi"),
        "-t",
        "multi",
        &ctx,
    ]);
    let steps: Vec<&str> = multi["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["instruction"].as_str().unwrap())
        .collect();
    assert!(!steps.iter().any(|s| s.contains("/never/")), "{steps:?}");
    assert_eq!(steps.len(), 6, "{steps:?}");
    assert_eq!(multi["image"]["layers"].as_array().unwrap().len(), 1);
    let mtop = multi["image"]["top_layer"].as_str().unwrap();
    assert_eq!(
        lab.ok(&["cat", mtop, "/app/main.js"]),
        "console.log('v2')\n"
    );
    assert!(lab
        .fails(&["cat", mtop, "/out/src/main.js"])
        .contains("/out"));
    let target = lab.json(&[
        "build",
        "--json",
        "-f",
        &format!("{ctx}/Containerfile.multi"),
        "--target",
        "unused",
        "-t",
        "u",
        &ctx,
    ]);
    assert_eq!(
        pattern(&target),
        "M",
        "{driver}: --target builds only its stage"
    );

    failures(&lab, &ctx, driver);
}

/// Builds `text` as `Containerfile.bad`; it must fail: the error line.
fn bad(lab: &Lab, ctx: &str, text: &str) -> String {
    fs::write(format!("{ctx}/Containerfile.bad"), text).unwrap();
    let file = format!("{ctx}/Containerfile.bad");
    lab.fails(&["build", "-f", &file, "-t", "bad", ctx])
}

/// Failures: one error line naming file, line and instruction; refused before anything
/// is built (layers, images and cache unchanged), or, failing mid-way, no active layer
/// left and no image recorded.
fn failures(lab: &Lab, ctx: &str, driver: &str) {
    let layers = layer_ids(lab);
    let images = lab.ok(&["images", "--json"]);
    let cache = fs::read(lab.root.join("build-cache.json")).unwrap();
    let refused = [
        (
            "FROM scratch\nCOPY src /s\nHEALTHCHECK NONE\n",
            "Containerfile.bad:3: HEALTHCHECK",
        ),
        (
            "FROM scratch\nCOPY src /s\nONBUILD RUN x\n",
            "Containerfile.bad:3: ONBUILD",
        ),
        (
            "FROM scratch AS a\nCOPY src /s\nFROM nosuchimage\n",
            "Containerfile.bad:3: FROM",
        ),
        (
            "FROM scratch\nCOPY src /s\nCOPY --from=nostage /x /y\n",
            "Containerfile.bad:3: COPY: --from=nostage",
        ),
        (
            "FROM scratch\nCOPY --link src /s\n",
            "Containerfile.bad:2: COPY: the flag --link",
        ),
        ("FROM scratch\nENV A=\"x\n", "Containerfile.bad:2: ENV"),
    ];
    for (text, want) in refused {
        let err = bad(lab, ctx, text);
        assert!(err.contains(want), "{driver}: {err}");
        assert_eq!(layer_ids(lab), layers, "{driver}: {text}");
        assert_eq!(fs::read(lab.root.join("build-cache.json")).unwrap(), cache);
    }
    let err = bad(lab, ctx, "FROM scratch\nADD https://example.org/x.tar /x\n");
    assert!(err.contains("no network"), "{err}");
    let err = bad(lab, ctx, "FROM scratch\nCOPY src /s\nCOPY missing.txt /m\n");
    assert!(
        err.contains("step 3/3") && err.contains("missing.txt"),
        "{err}"
    );
    // the step before the failure is kept, committed and cached, as builders keep it
    let after = lab.json(&["layer", "ls", "--json"]);
    let new: Vec<&Value> = after
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !layers.contains(&l["id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(new.len(), 1, "{driver}: {new:?}");
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["state"] == "committed"),
        "{after}"
    );
    assert_eq!(
        lab.ok(&["images", "--json"]),
        images,
        "{driver}: no image from a failed build"
    );
}

#[test]
fn build_cache_hits_and_misses_through_separate_processes_on_every_driver() {
    for d in drivers("build cache") {
        scenario(d);
    }
}

#[test]
fn add_extracts_local_tars_and_copies_keep_modes_and_owners() {
    let lab = Lab::new("overlay2");
    let ctx = lab.file("ctx");
    let c = Path::new(&ctx);
    fs::create_dir_all(c.join("d")).unwrap();
    fs::write(c.join("d/run.sh"), "#!/bin/sh\n").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o640);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, "inner/file.txt", &b"abc"[..])
        .unwrap();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, &b.into_inner().unwrap()).unwrap();
        e.finish().unwrap()
    };
    fs::write(c.join("bundle.tar.gz"), gz).unwrap();
    fs::write(
        c.join("Containerfile"),
        "FROM scratch\nWORKDIR /opt\nADD bundle.tar.gz x/\nCOPY --chown=7:8 --chmod=0750 d/ tools/\nCOPY d/*.sh /bin/\n",
    )
    .unwrap();
    let v = lab.json(&["build", "--json", "-t", "t", &ctx]);
    let top = v["image"]["top_layer"].as_str().unwrap();
    assert_eq!(lab.ok(&["cat", top, "/opt/x/inner/file.txt"]), "abc");
    let st = lab.json(&["stat", top, "/opt/tools/run.sh", "--json"]);
    assert_eq!(
        (st["uid"].as_u64(), st["gid"].as_u64()),
        (Some(7), Some(8)),
        "{st}"
    );
    assert!(st.to_string().contains("750"), "{st}");
    let sh = lab.json(&["stat", top, "/bin/run.sh", "--json"]);
    assert_eq!(
        (sh["uid"].as_u64(), sh["gid"].as_u64()),
        (Some(0), Some(0)),
        "{sh}"
    );
    assert_eq!(v["image"]["config"]["WorkingDir"], "/opt");
}

const RUN_APP: &str = "\
FROM bb
WORKDIR /app
COPY requirements.txt .
RUN mkdir -p /deps && cp requirements.txt /deps/ && echo \"installed $(cat requirements.txt)\"
COPY src/ src/
RUN cat src/main.txt > /app/built && rm -f /deps/tmp
";

/// RUN steps (busybox): output streamed, the cache around them, a failing command.
fn run_scenario(driver: &str) {
    let lab = Lab::new(driver);
    let base = lab.file("bb");
    fs::create_dir_all(&base).unwrap();
    fs::copy("/bin/busybox", format!("{base}/busybox")).unwrap();
    fs::write(
        format!("{base}/Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/bin\n",
    )
    .unwrap();
    lab.ok(&["build", "-t", "bb", &base]);
    let ctx = lab.file("app");
    let c = Path::new(&ctx);
    fs::create_dir_all(c.join("src")).unwrap();
    fs::write(c.join("requirements.txt"), "flask\n").unwrap();
    fs::write(c.join("src/main.txt"), "v1\n").unwrap();
    fs::write(c.join("Containerfile"), RUN_APP).unwrap();
    let out = lab.ok(&["build", "-t", "app", &ctx]);
    assert!(out.contains("STEP 4/6: RUN mkdir -p /deps"), "{out}");
    assert!(
        out.contains("installed flask\n"),
        "{driver}: the command's output: {out}"
    );
    let again = lab.ok(&["build", "-t", "app", &ctx]);
    assert_eq!(
        again.matches("--> Using cache").count(),
        5,
        "{driver}: {again}"
    );
    assert!(!again.contains("installed flask"), "{again}");
    fs::write(c.join("src/main.txt"), "v2\n").unwrap();
    let v = lab.json(&["build", "--json", "-t", "app", &ctx]);
    assert_eq!(
        pattern(&v),
        "HHHMM",
        "{driver}: a source edit keeps the install cached"
    );
    let top = v["image"]["top_layer"].as_str().unwrap();
    assert_eq!(lab.ok(&["cat", top, "/app/built"]), "v2\n");
    assert_eq!(lab.ok(&["cat", top, "/deps/requirements.txt"]), "flask\n");
    fs::write(c.join("requirements.txt"), "flask\nrequests\n").unwrap();
    let v = lab.json(&["build", "--json", "-t", "app", &ctx]);
    assert_eq!(pattern(&v), "HMMMM", "{driver}: a manifest edit reinstalls");
    let run = &v["steps"][3];
    assert!(
        run["counts"]["bytes_written"].as_u64().unwrap() > 0,
        "{run}"
    );

    // a failing command: its status, no layer left, no image recorded
    let layers = layer_ids(&lab);
    let images = lab.ok(&["images", "--json"]);
    fs::write(
        c.join("Containerfile.fail"),
        "FROM bb\nRUN touch /half && exit 3\n",
    )
    .unwrap();
    let err = lab.fails(&[
        "build",
        "-f",
        &format!("{ctx}/Containerfile.fail"),
        "-t",
        "fail",
        &ctx,
    ]);
    assert!(err.contains("status 3"), "{err}");
    assert_eq!(layer_ids(&lab), layers, "{driver}: no half-made layer");
    assert_eq!(lab.ok(&["images", "--json"]), images);
}

#[test]
fn run_steps_with_busybox_through_separate_processes() {
    if let Err(why) = layerlab_build::run::run_available() {
        skip("build RUN steps", &why);
        return;
    }
    if !Path::new("/bin/busybox").exists() {
        skip("build RUN steps", "/bin/busybox (busybox-static) missing");
        return;
    }
    for d in drivers("build RUN steps") {
        run_scenario(d);
    }
}
