//! The README's build lab, verbatim (skips visibly where RUN cannot run here), in a
//! temporary directory that sees the repository's `examples/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{readme, skip};
use std::path::Path;

#[test]
fn readme_build_lab_runs_verbatim() {
    if let Err(why) = layerlab_build::run::run_available() {
        skip(
            "readme_build_lab_runs_verbatim",
            &format!("RUN unavailable: {why}"),
        );
        return;
    }
    if !Path::new("/bin/busybox").exists() {
        skip(
            "readme_build_lab_runs_verbatim",
            "/bin/busybox (busybox-static) missing",
        );
        return;
    }
    let steps = readme::console_block(
        "## Lab: building images, the layer cache, and what each step cost the driver",
    );
    assert!(steps.iter().any(|(c, _)| c.contains("Containerfile.multi")));
    let tmp = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    std::os::unix::fs::symlink(examples, tmp.path().join("examples")).unwrap();
    readme::run_steps(tmp.path(), &steps);
}
