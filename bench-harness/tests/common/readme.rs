//! The README's console blocks, run verbatim: each `$ ` line is a command run by `sh -c` in
//! a temporary directory with the `layerlab` under test first on `PATH`; the lines after it
//! are what it must print (stdout and stderr), where `...` stands for what changes from
//! run to run.

use std::path::Path;
use std::process::Command;

/// A line shown in the README against a line printed: equal, or, where the README writes
/// `...`, the parts around it in order (the first at the start, the last at the end).
pub fn line_matches(shown: &str, got: &str) -> bool {
    if !shown.contains("...") {
        return shown == got;
    }
    let parts: Vec<&str> = shown.split("...").collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !got.starts_with(first) || !got.ends_with(last) || got.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &got[first.len()..got.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// The commands of the first console block after the README heading `heading`, each
/// with the lines it prints.
pub fn console_block(heading: &str) -> Vec<(String, Vec<String>)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split(&format!("\n{heading}"))
        .nth(1)
        .unwrap_or_else(|| panic!("README has {heading}"));
    let block = section
        .split("```console\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .unwrap_or_else(|| panic!("{heading} has a console block"));
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("$ ") {
            Some(cmd) => steps.push((cmd.to_string(), Vec::new())),
            None => steps
                .last_mut()
                .expect("output after a command")
                .1
                .push(line.into()),
        }
    }
    steps
}

/// Runs the steps in `dir`; a step whose first line shown starts with `error: ` must fail.
pub fn run_steps(dir: &Path, steps: &[(String, Vec<String>)]) {
    let bin_dir = Path::new(super::BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (command, shown) in steps {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{command} 2>&1"))
            .env("PATH", &path)
            .env_remove("LAYERLAB_ROOT")
            .current_dir(dir)
            .output()
            .unwrap();
        let got = String::from_utf8_lossy(&out.stdout).into_owned();
        let fails = shown.first().is_some_and(|l| l.starts_with("error: "));
        assert_eq!(out.status.success(), !fails, "`{command}`: {got}");
        let got: Vec<&str> = got.lines().collect();
        assert_eq!(
            got.len(),
            shown.len(),
            "`{command}` printed {got:#?}, README {shown:#?}"
        );
        for (g, s) in got.iter().zip(shown) {
            assert!(
                line_matches(s, g),
                "`{command}` printed {g:?}, README shows {s:?}"
            );
        }
    }
}
