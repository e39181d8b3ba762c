//! The `layerlab` command line, tested by running the built binary: the README walkthrough
//! verbatim, JSON shapes, one-line errors, `--trace`, a 128-layer store read back by another
//! process, copy/export round trips. Every test runs for every registered driver.

use anyhow::{anyhow, bail, ensure, Context, Result};
use layerlab_core::LayerDriver;
use layerlab_drivers::{registry, Access, DRIVERS};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_layerlab");

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A temporary working directory with a store in it.
struct Lab {
    tmp: tempfile::TempDir,
    root: PathBuf,
    driver: String,
}

impl Lab {
    /// A new, initialized store for `driver`.
    fn new(driver: &str) -> Result<Lab> {
        let lab = Lab::empty(driver)?;
        lab.ok(&["init", "--driver", driver])?;
        Ok(lab)
    }

    /// A working directory with no store yet.
    fn empty(driver: &str) -> Result<Lab> {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join("store");
        Ok(Lab {
            tmp,
            root,
            driver: driver.to_string(),
        })
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        Command::new(BIN)
            .args(args)
            .env("LAYERLAB_ROOT", &self.root)
            .current_dir(self.dir())
            .output()
            .with_context(|| format!("running layerlab {args:?}"))
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        ensure!(
            out.status.success(),
            "[{}] layerlab {args:?} failed: {}",
            self.driver,
            text(&out.stderr)
        );
        Ok(text(&out.stdout))
    }

    /// Runs a command that must fail with exit 1 and exactly one `error: ` line; returns it.
    fn fail(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        let err = text(&out.stderr);
        ensure!(
            out.status.code() == Some(1),
            "[{}] layerlab {args:?}: expected exit 1, got {:?} (stderr {err:?})",
            self.driver,
            out.status.code()
        );
        let lines: Vec<&str> = err.lines().collect();
        ensure!(
            lines.len() == 1 && lines[0].starts_with("error: "),
            "[{}] layerlab {args:?}: expected one error line, got {err:?}",
            self.driver
        );
        ensure!(
            out.stdout.is_empty(),
            "layerlab {args:?} printed to stdout on error"
        );
        Ok(lines[0].to_string())
    }

    /// Runs a command that must fail, checking that the error line names every word.
    fn fail_naming(&self, args: &[&str], words: &[&str]) -> Result<()> {
        let line = self.fail(args)?;
        for w in words {
            ensure!(
                line.contains(w),
                "[{}] layerlab {args:?}: error {line:?} does not name {w:?}",
                self.driver
            );
        }
        Ok(())
    }

    fn json(&self, args: &[&str]) -> Result<Value> {
        let out = self.ok(args)?;
        serde_json::from_str(&out).with_context(|| format!("layerlab {args:?}: not JSON: {out}"))
    }

    /// A committed `base` (with /etc/motd, /etc/hostname) and an active `app` on it.
    fn two_layers(&self) -> Result<()> {
        self.ok(&["layer", "create", "base"])?;
        self.ok(&["mkdir", "base", "/etc"])?;
        self.ok(&["write", "base", "/etc/motd", "--data", "hello"])?;
        self.ok(&["write", "base", "/etc/hostname", "--data", "lab"])?;
        self.ok(&["layer", "commit", "base"])?;
        self.ok(&["layer", "create", "app", "--parent", "base"])?;
        Ok(())
    }
}

fn driver_names() -> Vec<&'static str> {
    DRIVERS.iter().map(|d| d.name).collect()
}

fn for_each_driver(f: impl Fn(&str) -> Result<()>) -> Result<()> {
    ensure!(!DRIVERS.is_empty(), "no driver registered");
    for name in driver_names() {
        f(name).with_context(|| format!("driver {name}"))?;
    }
    Ok(())
}

/// `f` on a new lab of each registered driver, made ready by `setup`.
fn for_each_lab(
    setup: impl Fn(&Lab) -> Result<()>,
    f: impl Fn(&Lab, &str) -> Result<()>,
) -> Result<()> {
    for_each_driver(|driver| {
        let lab = Lab::new(driver)?;
        setup(&lab)?;
        f(&lab, driver)
    })
}

fn has_fields(v: &Value, fields: &[&str]) -> Result<()> {
    let obj = v.as_object().ok_or_else(|| anyhow!("not an object: {v}"))?;
    for f in fields {
        ensure!(obj.contains_key(*f), "{v} lacks field {f:?}");
    }
    Ok(())
}

fn array(v: &Value) -> Result<&Vec<Value>> {
    v.as_array().ok_or_else(|| anyhow!("not an array: {v}"))
}

// ----- the README walkthrough, verbatim ------------------------------------------------------

/// One `$ command` of the walkthrough and the output shown under it.
struct Step {
    command: String,
    shown: Vec<String>,
}

fn walkthrough() -> Result<Vec<Step>> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))?;
    let section = readme
        .split("\n## Lab walkthrough")
        .nth(1)
        .ok_or_else(|| anyhow!("README.md has no '## Lab walkthrough' section"))?;
    let section = section.split("\n## ").next().unwrap_or(section);
    let block = section
        .split("```console\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .ok_or_else(|| anyhow!("the walkthrough has no ```console block"))?;
    let mut steps: Vec<Step> = Vec::new();
    for line in block.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: cmd.to_string(),
                shown: Vec::new(),
            });
        } else if let Some(last) = steps.last_mut() {
            last.shown.push(line.trim_end().to_string());
        } else {
            bail!("walkthrough output before any command: {line:?}");
        }
    }
    ensure!(steps.len() > 10, "the walkthrough is too short");
    Ok(steps)
}

/// The driver the README's `init --driver NAME` names.
fn readme_driver(steps: &[Step]) -> Result<String> {
    steps
        .iter()
        .find_map(|s| {
            let mut words = s.command.split_whitespace();
            words.position(|w| w == "--driver")?;
            words.next().map(str::to_string)
        })
        .ok_or_else(|| anyhow!("the walkthrough never runs init --driver"))
}

#[test]
fn readme_walkthrough_runs_verbatim() -> Result<()> {
    let steps = walkthrough()?;
    let readme_driver = readme_driver(&steps)?;
    let bin_dir = Path::new(BIN)
        .parent()
        .ok_or_else(|| anyhow!("binary has no directory"))?;
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for_each_driver(|driver| {
        let tmp = tempfile::tempdir()?;
        let exact_everywhere = driver == readme_driver;
        for step in &steps {
            let command = step.command.replace(
                &format!("--driver {readme_driver}"),
                &format!("--driver {driver}"),
            );
            ensure!(
                command.starts_with("layerlab "),
                "not a layerlab command: {command}"
            );
            let out = Command::new("sh")
                .arg("-c")
                .arg(&command)
                .env("PATH", &path)
                .env_remove("LAYERLAB_ROOT")
                .current_dir(tmp.path())
                .output()?;
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            ensure!(out.status.success(), "`{command}` failed: {stderr}");
            let got: Vec<&str> = stdout.lines().map(str::trim_end).collect();

            // Output shown in the README must be what layerlab prints: always for the
            // driver-independent commands, and for everything but traces with the README's
            // own driver.
            let stable = [
                "layerlab cat ",
                "layerlab diff ",
                "layerlab layer ls",
                "layerlab getfattr ",
            ]
            .iter()
            .any(|p| command.starts_with(p));
            let traced = command.contains("--trace");
            if !step.shown.is_empty() && !traced && (stable || exact_everywhere) {
                ensure!(
                    got == step.shown,
                    "`{command}` printed {got:?}, README shows {:?}",
                    step.shown
                );
            }
            if traced {
                ensure!(
                    stderr.contains("trace: "),
                    "`{command}`: no trace in {stderr}"
                );
                ensure!(
                    stderr.contains("  counts: "),
                    "`{command}`: no counts in {stderr}"
                );
                if exact_everywhere {
                    // counters the README names with a number must be the real ones
                    for shown in step.shown.iter().filter(|l| l.contains("counts:")) {
                        for word in shown.split_whitespace().filter(|w| {
                            w.contains('=') && w.bytes().last().is_some_and(|b| b.is_ascii_digit())
                        }) {
                            ensure!(
                                stderr.split_whitespace().any(|w| w == word),
                                "`{command}`: README shows {word}, trace is {stderr}"
                            );
                        }
                    }
                }
            }
            if command.contains("--json") {
                let v: Value = serde_json::from_str(&stdout)
                    .with_context(|| format!("`{command}`: not JSON: {stdout}"))?;
                if command.starts_with("layerlab stat app /etc/motd") {
                    ensure!(
                        v["layer"] == "app",
                        "after the copy-up, /etc/motd is in app: {v}"
                    );
                }
            }
        }
        ensure!(
            tmp.path()
                .join("layerlab-store")
                .join("store.json")
                .is_file(),
            "the walkthrough did not use ./layerlab-store"
        );
        Ok(())
    })
}

// ----- JSON ----------------------------------------------------------------------------------

#[test]
fn json_outputs_parse_with_documented_fields() -> Result<()> {
    let drivers: Value = serde_json::from_str(&Lab::empty("-")?.ok(&["drivers", "--json"])?)?;
    let list = array(&drivers)?;
    ensure!(list.len() == DRIVERS.len());
    for d in list {
        has_fields(d, &["name", "description", "options"])?;
        for o in array(&d["options"])? {
            has_fields(o, &["key", "default", "help"])?;
        }
    }
    for_each_lab(Lab::two_layers, |lab, driver| {
        lab.ok(&["write", "app", "/etc/motd", "--data", "changed"])?;
        lab.ok(&["rm", "app", "/etc/hostname"])?;
        lab.ok(&["write", "app", "/new", "--data", "n"])?;
        lab.ok(&["ln", "app", "/new", "/link", "-s"])?;

        let layers = lab.json(&["layer", "ls", "--json"])?;
        let layers = array(&layers)?;
        ensure!(layers.len() == 2);
        for l in layers {
            has_fields(l, &["id", "parent", "state", "depth"])?;
        }
        ensure!(layers[0]["id"] == "app" && layers[0]["parent"] == "base");
        ensure!(layers[0]["state"] == "active" && layers[0]["depth"] == 2);
        ensure!(layers[1]["parent"].is_null() && layers[1]["state"] == "committed");

        let entries = lab.json(&["ls", "app", "/", "--json"])?;
        let names: Vec<&str> = array(&entries)?
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        ensure!(names == ["etc", "link", "new"], "ls / gave {names:?}");
        let fields = [
            "name",
            "path",
            "kind",
            "mode",
            "mode_octal",
            "uid",
            "gid",
            "size",
            "nlink",
            "target",
            "mtime",
            "layer",
        ];
        for e in array(&entries)? {
            has_fields(e, &fields)?;
        }
        ensure!(entries[1]["kind"] == "symlink" && entries[1]["target"] == "/new");

        let st = lab.json(&["stat", "app", "/etc/motd", "--json"])?;
        has_fields(&st, &fields)?;
        ensure!(
            st["kind"] == "file" && st["size"] == 7 && st["layer"] == "app",
            "{st}"
        );
        ensure!(st["mode"] == 0o644 && st["mode_octal"] == "0644", "{st}");
        let st = lab.json(&["stat", "base", "/etc/hostname", "--json"])?;
        ensure!(st["layer"] == "base", "{st}");

        let diff = lab.json(&["diff", "app", "--json"])?;
        let got: Vec<(String, String)> = array(&diff)?
            .iter()
            .map(|c| {
                has_fields(c, &["path", "kind"])?;
                Ok((
                    c["path"].as_str().unwrap_or_default().to_string(),
                    c["kind"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect::<Result<_>>()?;
        let want = [
            ("/etc", "modified"),
            ("/etc/hostname", "deleted"),
            ("/etc/motd", "modified"),
            ("/link", "added"),
            ("/new", "added"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(p, k)| (p.to_string(), k.to_string()))
            .collect();
        ensure!(got == want, "diff --json gave {got:?}");
        let human = lab.ok(&["diff", "app"])?;
        ensure!(
            human == "C /etc\nD /etc/hostname\nC /etc/motd\nA /link\nA /new\n",
            "{human}"
        );

        let usage = lab.json(&["usage", "app", "--json"])?;
        has_fields(&usage, &["layer", "bytes", "inodes", "details"])?;
        ensure!(usage["layer"] == "app" && usage["bytes"].is_u64() && usage["details"].is_object());

        let status = lab.json(&["status", "--json"])?;
        has_fields(&status, &["driver", "store", "root", "options", "facts"])?;
        ensure!(status["driver"] == driver, "{status}");
        let root = status["root"].as_str().unwrap_or_default();
        ensure!(
            Path::new(root).starts_with(&lab.root),
            "files at {root}, store {:?}",
            lab.root
        );
        Ok(())
    })
}

// ----- errors --------------------------------------------------------------------------------

#[test]
fn errors_are_one_line_naming_layer_and_path() -> Result<()> {
    for_each_lab(Lab::two_layers, |lab, driver| {
        lab.fail_naming(&["cat", "nope", "/etc/motd"], &["nope"])?;
        lab.fail_naming(&["layer", "create", "x", "--parent", "nope"], &["nope"])?;
        lab.fail_naming(&["cat", "app", "/etc/nope"], &["app", "/etc/nope"])?;
        lab.fail_naming(&["ls", "app", "/nope"], &["app", "/nope"])?;
        lab.fail_naming(&["stat", "app", "/etc/nope/deeper"], &["app", "/etc/nope"])?;
        lab.fail_naming(
            &["write", "base", "/etc/motd", "--data", "x"],
            &["base", "/etc/motd", "committed"],
        )?;
        ensure!(
            lab.ok(&["cat", "base", "/etc/motd"])? == "hello",
            "committed layer changed"
        );
        lab.fail_naming(&["rm", "base", "/etc/motd"], &["base", "/etc/motd"])?;
        lab.fail_naming(&["layer", "create", "c", "--parent", "app"], &["c", "app"])?;
        lab.fail_naming(&["layer", "rm", "base"], &["base", "app"])?;
        lab.fail_naming(&["layer", "create", "app"], &["app"])?;
        lab.fail_naming(&["cat", "app", "../x"], &["app", "../x"])?;
        lab.fail_naming(
            &["write", "app", "/a/../../x", "--data", "x"],
            &["app", "../"],
        )?;
        lab.fail_naming(&["cat", "a/b", "/x"], &["a/b"])?;
        lab.fail_naming(&["layer", "create", ".hidden"], &[".hidden"])?;
        lab.fail_naming(
            &["chmod", "app", "9z", "/etc/motd"],
            &["app", "/etc/motd", "9z"],
        )?;
        lab.fail_naming(&["chmod", "app", "17777", "/etc/motd"], &["17777", "07777"])?;
        lab.fail_naming(
            &["chmod", "app", "010000", "/etc/motd"],
            &["010000", "07777"],
        )?;
        lab.fail_naming(&["chmod", "app", "u+x", "/etc/motd"], &["u+x", "octal"])?;
        // a size is a value, read like a mode: one error line, exit 1 (not a usage error)
        lab.fail_naming(&["truncate", "app", "/etc/motd", "big"], &["app", "'big'"])?;
        lab.fail_naming(
            &["truncate", "app", "/etc/motd", "10G"],
            &["app", "/etc/motd", "10G", "GiB", "GB"],
        )?;
        lab.fail_naming(
            &["truncate", "app", "/etc/motd", "99999999TiB"],
            &["/etc/motd", "too large"],
        )?;
        lab.fail_naming(
            &["chown", "app", "root:root", "/etc/motd"],
            &["app", "root:root"],
        )?;
        lab.fail_naming(&["chown", "app", "1000", "/etc/motd"], &["/etc/motd"])?;
        lab.fail_naming(
            &["write", "app", "/missing", "--data", "x", "--offset", "0"],
            &["app", "/missing"],
        )?;
        lab.fail_naming(
            &["write", "app", "/missing", "--data", "x", "--append"],
            &["/missing"],
        )?;
        lab.fail_naming(&["mkdir", "app", "/a/b"], &["app", "/a/b"])?;
        lab.fail_naming(&["rm", "app", "/etc"], &["app", "/etc"])?;
        lab.fail_naming(&["cat", "app", "/etc"], &["app", "/etc"])?;
        lab.fail_naming(
            &["write", "app", "/w", "--from", "/no/such/host/file"],
            &["/no/such"],
        )?;
        // nothing half-written by any of the failures
        ensure!(
            lab.ok(&["diff", "app"])?.is_empty(),
            "failed commands changed app"
        );
        lab.fail_naming(&["init", "--driver", driver], &["store"])?;
        let other = Lab::empty(driver)?;
        other.fail_naming(&["status"], &["store"])?;
        other.fail_naming(&["init", "--driver", "no-such-driver"], &["no-such-driver"])?;
        other.fail_naming(
            &["init", "--driver", driver, "--opt", "no_such_option=1"],
            &["no_such_option"],
        )?;
        other.fail_naming(
            &["init", "--driver", driver, "--opt", "novalue"],
            &["novalue"],
        )?;
        Ok(())
    })
}

#[test]
fn usage_errors_exit_2() -> Result<()> {
    let lab = Lab::empty("-")?;
    for args in [
        &["frobnicate"][..],
        &["write", "a", "/x"],
        &["write", "a", "/x", "--data", "1", "--from", "f"],
        &[
            "write", "a", "/x", "--data", "1", "--offset", "1", "--append",
        ],
    ] {
        let out = lab.run(args)?;
        ensure!(
            out.status.code() == Some(2),
            "{args:?} gave {:?}",
            out.status.code()
        );
    }
    Ok(())
}

#[test]
fn a_second_writer_gets_locked() -> Result<()> {
    for_each_lab(Lab::two_layers, |lab, _| {
        let held = registry::open(&lab.root, Access::Write)?;
        lab.fail_naming(&["write", "app", "/x", "--data", "x"], &["locked"])?;
        lab.fail_naming(&["cat", "app", "/etc/motd"], &["locked"])?;
        drop(held);
        let reader = registry::open(&lab.root, Access::Read)?;
        ensure!(
            lab.ok(&["cat", "app", "/etc/motd"])? == "hello",
            "readers share the store"
        );
        lab.fail_naming(&["layer", "commit", "app"], &["locked"])?;
        drop(reader);
        lab.ok(&["layer", "commit", "app"])?;
        Ok(())
    })
}

// ----- --trace --------------------------------------------------------------------------------

#[test]
fn trace_shows_steps_and_counts() -> Result<()> {
    for_each_lab(Lab::two_layers, |lab, driver| {
        lab.ok(&["layer", "rm", "app"])?;
        let mut all = String::new();
        for args in [
            &["--trace", "layer", "create", "app", "--parent", "base"][..],
            &["write", "app", "/etc/motd", "--data", "abc", "--trace"],
            &["--trace", "rm", "app", "/etc/hostname"],
            &["--trace", "cat", "app", "/etc/motd"],
        ] {
            let out = lab.run(args)?;
            let err = text(&out.stderr);
            ensure!(out.status.success(), "{args:?}: {err}");
            let lines: Vec<&str> = err.lines().collect();
            ensure!(
                lines.first().is_some_and(|l| l.starts_with("trace: ")),
                "{args:?}: trace does not start with 'trace: ': {err}"
            );
            ensure!(
                lines.iter().all(|l| l.starts_with("trace: ")
                    || l.starts_with("  step: ")
                    || l.starts_with("  counts: ")),
                "{args:?}: unexpected trace line in {err}"
            );
            ensure!(err.contains("  counts: "), "{args:?}: no counts: {err}");
            all.push_str(&err);
        }
        ensure!(all.contains("trace: write app /etc/motd"), "{all}");
        ensure!(
            all.contains("bytes_written=3"),
            "the write's counts lack its bytes: {all}"
        );
        ensure!(
            all.contains("bytes_read=3"),
            "the cat's counts lack its bytes: {all}"
        );
        ensure!(
            all.contains("  step: "),
            "{driver} traced no steps at all: {all}"
        );
        // without --trace, nothing on stderr
        let quiet = lab.run(&["cat", "app", "/etc/motd"])?;
        ensure!(quiet.stderr.is_empty());
        // a failed traced operation: trace, then the one error line last
        let out = lab.run(&["--trace", "write", "base", "/x", "--data", "1"])?;
        let err = text(&out.stderr);
        ensure!(out.status.code() == Some(1));
        ensure!(
            err.starts_with("trace: ")
                && err.lines().last().is_some_and(|l| l.starts_with("error: "))
        );
        ensure!(
            err.lines().filter(|l| l.starts_with("error: ")).count() == 1,
            "{err}"
        );
        Ok(())
    })
}

// ----- a deep store, written by one process and read by another -----------------------------

#[test]
fn deep_store_is_read_back_intact_by_another_process() -> Result<()> {
    const LAYERS: usize = 128;
    for_each_driver(|driver| {
        let lab = Lab::new(driver)?;
        let max = registry::open(&lab.root, Access::Read)?
            .semantics()
            .max_depth;
        let chain = max.map_or(LAYERS, |m| m.min(LAYERS));
        let id = |i: usize| format!("l{i:03}");
        // built by one process: a shell loop of layerlab invocations
        let mut script =
            String::from("set -e\nlayerlab layer create l000\nlayerlab mkdir l000 /layers\n");
        for i in 0..LAYERS {
            let parent = match i {
                0 => None,
                i if i < chain => Some(id(i - 1)),
                _ => Some(id(0)), // beyond the driver's depth limit: siblings
            };
            if let Some(p) = parent {
                script.push_str(&format!("layerlab layer create {} --parent {p}\n", id(i)));
            }
            script.push_str(&format!(
                "layerlab write {0} /layers/f{i:03} --data 'layer {i:03}'\n\
                 layerlab write {0} /top --data '{i}'\n\
                 layerlab layer commit {0}\n",
                id(i)
            ));
        }
        let bin_dir = Path::new(BIN)
            .parent()
            .ok_or_else(|| anyhow!("no bin dir"))?;
        let out = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin_dir.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("LAYERLAB_ROOT", &lab.root)
            .output()?;
        ensure!(
            out.status.success(),
            "building the store failed: {}",
            text(&out.stderr)
        );

        // read back by other processes
        let top = id(chain - 1);
        let layers = lab.json(&["layer", "ls", "--json"])?;
        let layers = array(&layers)?;
        ensure!(layers.len() == LAYERS, "{} layers", layers.len());
        ensure!(layers.iter().all(|l| l["state"] == "committed"));
        let top_info = layers.iter().find(|l| l["id"] == top.as_str());
        ensure!(
            top_info.is_some_and(|l| l["depth"] == chain),
            "top layer depth"
        );
        let listing = lab.json(&["ls", &top, "/layers", "--json"])?;
        let names: Vec<&str> = array(&listing)?
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        let want: Vec<String> = (0..chain).map(|i| format!("f{i:03}")).collect();
        ensure!(names == want, "ls /layers of {top}: {names:?}");
        ensure!(lab.ok(&["cat", &top, "/top"])? == (chain - 1).to_string());
        ensure!(lab.ok(&["cat", &top, "/layers/f000"])? == "layer 000");
        ensure!(lab.ok(&["cat", &id(0), "/top"])? == "0");
        let out_dir = lab.dir().join("export");
        lab.ok(&["export", &top, out_dir.to_str().unwrap_or_default()])?;
        for i in 0..chain {
            let got = fs::read_to_string(out_dir.join(format!("layers/f{i:03}")))?;
            ensure!(got == format!("layer {i:03}"), "f{i:03} reads {got:?}");
        }
        for i in chain..LAYERS {
            ensure!(
                lab.ok(&["cat", &id(i), &format!("/layers/f{i:03}")])? == format!("layer {i:03}")
            );
        }
        Ok(())
    })
}

// ----- files ---------------------------------------------------------------------------------

#[test]
fn file_commands_do_what_they_say() -> Result<()> {
    for_each_lab(Lab::two_layers, |lab, driver| {
        lab.ok(&["write", "app", "/etc/motd", "--data", "XY", "--offset", "1"])?;
        ensure!(lab.ok(&["cat", "app", "/etc/motd"])? == "hXYlo");
        lab.ok(&["write", "app", "/etc/motd", "--data", "!", "--append"])?;
        ensure!(lab.ok(&["cat", "app", "/etc/motd"])? == "hXYlo!");
        lab.ok(&["write", "app", "/etc/motd", "--data", "-dash"])?;
        ensure!(lab.ok(&["cat", "app", "/etc/motd"])? == "-dash");
        ensure!(lab.ok(&["cat", "base", "/etc/motd"])? == "hello");

        // a big file from the host, streamed back by cat
        let big: Vec<u8> = (0..3 * 1024 * 1024 + 17)
            .map(|i: u32| (i % 251) as u8)
            .collect();
        let host = lab.dir().join("big.bin");
        fs::write(&host, &big)?;
        lab.ok(&[
            "write",
            "app",
            "/big",
            "--from",
            host.to_str().unwrap_or_default(),
        ])?;
        let out = lab.run(&["cat", "app", "/big"])?;
        ensure!(
            out.status.success() && out.stdout == big,
            "cat of a 3 MiB file"
        );
        // a reader that stops early (`| head`) is no error
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("'{BIN}' cat app /big | head -c 1 >/dev/null"))
            .env("LAYERLAB_ROOT", &lab.root)
            .output()?;
        ensure!(out.stderr.is_empty(), "cat | head: {}", text(&out.stderr));

        lab.ok(&["truncate", "app", "/big", "1.5KiB"])?;
        ensure!(lab.json(&["stat", "app", "/big", "--json"])?["size"] == 1536);
        lab.ok(&["truncate", "app", "/big", "4"])?;
        ensure!(lab.json(&["stat", "app", "/big", "--json"])?["size"] == 4);
        lab.ok(&["mkdir", "app", "/a/b/c", "-p"])?;
        lab.ok(&["mkdir", "app", "/a/b/c", "-p"])?;
        lab.ok(&["mkdir", "app", "/a/d"])?;
        ensure!(lab.json(&["stat", "app", "/a/d", "--json"])?["mode_octal"] == "0755");
        lab.ok(&["mv", "app", "/big", "/a/small"])?;
        lab.fail_naming(&["stat", "app", "/big"], &["/big"])?;
        lab.ok(&["ln", "app", "/a/small", "/a/hard"])?;
        ensure!(lab.json(&["stat", "app", "/a/hard", "--json"])?["nlink"] == 2);
        lab.ok(&["ln", "-s", "app", "../etc/motd", "/a/soft"])?;
        let st = lab.json(&["stat", "app", "/a/soft", "--json"])?;
        ensure!(
            st["kind"] == "symlink" && st["target"] == "../etc/motd",
            "{st}"
        );
        // numeric modes as chmod(1) takes them: five digits with a leading zero, four, three
        for (given, shown) in [("01705", "1705"), ("0640", "0640"), ("751", "0751")] {
            lab.ok(&["chmod", "app", given, "/a/small"])?;
            let st = lab.json(&["stat", "app", "/a/small", "--json"])?;
            ensure!(st["mode_octal"] == shown, "chmod {given}: {st}");
        }
        lab.ok(&["chmod", "app", "4755", "/a/small"])?;
        lab.ok(&["chown", "app", "1000:100", "/a/small"])?;
        let st = lab.json(&["stat", "app", "/a/small", "--json"])?;
        ensure!(
            st["mode_octal"] == "4755" && st["uid"] == 1000 && st["gid"] == 100,
            "{st}"
        );
        let human = lab.ok(&["stat", "app", "/a/small"])?;
        ensure!(
            human.contains("4755 (-rwsr-xr-x)") && human.contains("1000:100"),
            "{human}"
        );
        let ls = lab.ok(&["ls", "app", "/a"])?;
        ensure!(
            ls.starts_with("MODE") && ls.contains("soft -> ../etc/motd"),
            "{ls}"
        );
        ensure!(
            lab.ok(&["ls", "app", "/a/small"])?.contains("small"),
            "ls of a file"
        );
        lab.ok(&["rm", "-r", "app", "/a"])?;
        lab.fail_naming(&["ls", "app", "/a"], &["/a"])?;
        lab.ok(&["rm", "app", "/etc/hostname"])?;
        ensure!(lab.ok(&["diff", "app"])? == "C /etc\nD /etc/hostname\nC /etc/motd\n");
        let layers = lab.ok(&["layer", "ls"])?;
        ensure!(
            layers.lines().next().is_some_and(|h| h.starts_with("ID")),
            "{layers}"
        );
        ensure!(lab.ok(&["drivers"])?.contains(driver));
        ensure!(lab.ok(&["status"])?.contains(driver));
        Ok(())
    })
}

#[test]
fn the_store_is_found_by_root_env_or_default() -> Result<()> {
    let driver = driver_names()
        .first()
        .copied()
        .ok_or_else(|| anyhow!("no driver"))?;
    let tmp = tempfile::tempdir()?;
    let run = |args: &[&str], env: Option<&Path>| -> Result<Output> {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(tmp.path())
            .env_remove("LAYERLAB_ROOT");
        if let Some(e) = env {
            c.env("LAYERLAB_ROOT", e);
        }
        Ok(c.output()?)
    };
    ensure!(run(&["init", "--driver", driver], None)?.status.success());
    ensure!(
        tmp.path().join("layerlab-store/store.json").is_file(),
        "default ./layerlab-store"
    );
    ensure!(run(&["layer", "create", "d"], None)?.status.success());
    let env_store = tmp.path().join("env-store");
    ensure!(run(&["init", "--driver", driver], Some(&env_store))?
        .status
        .success());
    ensure!(run(&["layer", "create", "e"], Some(&env_store))?
        .status
        .success());
    let flag_store = tmp.path().join("flag-store");
    let flag = flag_store.to_str().unwrap_or_default();
    ensure!(run(
        &["--root", flag, "init", "--driver", driver],
        Some(&env_store)
    )?
    .status
    .success());
    ensure!(
        run(&["layer", "create", "f", "--root", flag], Some(&env_store))?
            .status
            .success()
    );
    let ids = |out: Output| -> Result<Vec<String>> {
        let v: Value = serde_json::from_slice(&out.stdout)?;
        Ok(array(&v)?
            .iter()
            .filter_map(|l| l["id"].as_str().map(String::from))
            .collect())
    };
    ensure!(ids(run(&["layer", "ls", "--json"], None)?)? == ["d"]);
    ensure!(ids(run(&["layer", "ls", "--json"], Some(&env_store))?)? == ["e"]);
    ensure!(
        ids(run(
            &["--root", flag, "layer", "ls", "--json"],
            Some(&env_store)
        )?)? == ["f"]
    );
    Ok(())
}

// ----- copy and export -----------------------------------------------------------------------

/// A host tree with modes, nested and empty directories, empty files and symlinks.
fn host_tree(dir: &Path) -> Result<()> {
    let file = |rel: &str, data: &str, mode: u32| -> Result<()> {
        let p = dir.join(rel);
        fs::write(&p, data)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    fs::create_dir_all(dir.join("bin"))?;
    fs::create_dir_all(dir.join("sub/deeper"))?;
    fs::create_dir_all(dir.join("emptydir"))?;
    file("bin/run.sh", "#!/bin/sh\necho hi\n", 0o755)?;
    file("secret", "s3cret", 0o600)?;
    file("suid", "elevated", 0o4755)?;
    file("empty", "", 0o644)?;
    file("sub/deeper/file.txt", "deep", 0o640)?;
    fs::set_permissions(dir.join("emptydir"), fs::Permissions::from_mode(0o700))?;
    fs::set_permissions(dir.join("sub"), fs::Permissions::from_mode(0o750))?;
    std::os::unix::fs::symlink("bin/run.sh", dir.join("link"))?;
    std::os::unix::fs::symlink("/etc/passwd", dir.join("abs"))?;
    std::os::unix::fs::symlink("../nowhere", dir.join("dangling"))?;
    if running_as_root() {
        std::os::unix::fs::lchown(dir.join("secret"), Some(1234), Some(5678))?;
        std::os::unix::fs::lchown(dir.join("link"), Some(42), Some(43))?;
    }
    Ok(())
}

/// Every entry under `dir`: relative path, kind, mode, owner, content or target.
fn snapshot(dir: &Path) -> Result<Vec<String>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for name in names {
            let p = dir.join(&name);
            let md = fs::symlink_metadata(&p)?;
            let rel = p.strip_prefix(base)?.display().to_string();
            let owner = if running_as_root() {
                format!("{}:{}", md.uid(), md.gid())
            } else {
                String::new()
            };
            if md.file_type().is_symlink() {
                out.push(format!(
                    "{rel} symlink {owner} -> {}",
                    fs::read_link(&p)?.display()
                ));
            } else if md.is_dir() {
                out.push(format!("{rel} dir {:o} {owner}", md.mode() & 0o7777));
                walk(base, &p, out)?;
            } else {
                out.push(format!(
                    "{rel} file {:o} {owner} {:?}",
                    md.mode() & 0o7777,
                    fs::read(&p)?
                ));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

#[test]
fn copy_then_export_round_trips() -> Result<()> {
    for_each_driver(|driver| {
        let lab = Lab::new(driver)?;
        let src = lab.dir().join("src");
        fs::create_dir(&src)?;
        fs::set_permissions(&src, fs::Permissions::from_mode(0o755))?;
        host_tree(&src)?;
        let s = |p: &Path| p.to_str().unwrap_or_default().to_string();
        lab.ok(&["layer", "create", "base"])?;
        lab.ok(&["copy", "base", &s(&src), "/app"])?;
        // a file into an existing directory keeps its name; to a new path takes that name
        lab.ok(&["copy", "base", &s(&src.join("secret")), "/app/sub"])?;
        lab.ok(&["copy", "base", &s(&src.join("empty")), "/renamed"])?;
        lab.ok(&["layer", "commit", "base"])?;
        lab.ok(&["layer", "create", "top", "--parent", "base"])?;
        ensure!(lab.ok(&["cat", "top", "/app/sub/secret"])? == "s3cret");
        ensure!(lab.json(&["stat", "top", "/app/abs", "--json"])?["target"] == "/etc/passwd");
        ensure!(lab.json(&["stat", "top", "/app/suid", "--json"])?["mode_octal"] == "4755");

        // export the merged view of the child and compare with the host tree
        let out = lab.dir().join("out/nested");
        lab.ok(&["export", "top", &s(&out)])?;
        let mut want = snapshot(&src)?;
        // the two extra copies
        want.retain(|l| !l.starts_with("sub ") && !l.starts_with("sub/"));
        let got = snapshot(&out.join("app"))?;
        let mut got_main = got.clone();
        got_main.retain(|l| !l.starts_with("sub ") && !l.starts_with("sub/"));
        ensure!(
            got_main == want,
            "round trip differs:\n got {got_main:#?}\nwant {want:#?}"
        );
        ensure!(
            got.iter().any(|l| l.starts_with("sub/secret file 600")),
            "{got:#?}"
        );
        ensure!(got.iter().any(|l| l.starts_with("sub dir 750")), "{got:#?}");
        ensure!(fs::read(out.join("renamed"))?.is_empty());
        ensure!(
            fs::symlink_metadata(out.join("app/abs"))?
                .file_type()
                .is_symlink(),
            "a symlink was followed"
        );

        // export refuses a non-empty directory and writes nothing into it
        lab.fail_naming(&["export", "top", &s(&out)], &["not empty"])?;
        // a missing layer: no directory is created
        let never = lab.dir().join("never");
        lab.fail_naming(&["export", "nope", &s(&never)], &["nope"])?;
        ensure!(
            !never.exists(),
            "export of a missing layer created its directory"
        );

        // copy refuses what it cannot represent, before writing anything
        let bad = lab.dir().join("bad");
        fs::create_dir(&bad)?;
        fs::write(bad.join("a"), "a")?;
        fs::write(bad.join(".wh.b"), "b")?;
        lab.fail_naming(&["copy", "top", &s(&bad), "/bad"], &[".wh.b"])?;
        lab.fail_naming(
            &["copy", "top", &s(&src), "/app/secret"],
            &["top", "/app/secret"],
        )?;
        lab.fail_naming(
            &["copy", "top", &s(&lab.dir().join("missing")), "/x"],
            &["missing"],
        )?;
        ensure!(
            lab.ok(&["diff", "top"])?.is_empty(),
            "a failed copy wrote into top"
        );

        // --trace on copy prints every operation and a total
        let out = lab.run(&["--trace", "copy", "top", &s(&src.join("sub")), "/again"])?;
        let err = text(&out.stderr);
        ensure!(
            out.status.success() && err.contains("trace: total of "),
            "{err}"
        );
        ensure!(lab.ok(&["cat", "top", "/again/deeper/file.txt"])? == "deep");
        Ok(())
    })
}

/// Whether files under `dir` can have holes (a file extended by set_len allocates nothing).
fn holes_supported(dir: &Path) -> Result<bool> {
    let probe = dir.join("hole-probe");
    fs::File::create(&probe)?.set_len(1 << 20)?;
    let sparse = fs::metadata(&probe)?.blocks() == 0;
    fs::remove_file(&probe)?;
    Ok(sparse)
}

/// A committed `base` with a hard-link group of three names in two directories, a file
/// alike but not linked, a sparse file and an all-hole file, and an active `top` on it.
fn linked_and_sparse(lab: &Lab) -> Result<()> {
    lab.ok(&["layer", "create", "base"])?;
    lab.ok(&["mkdir", "base", "/data/sub", "-p"])?;
    lab.ok(&["write", "base", "/data/a", "--data", "linked"])?;
    lab.ok(&["chmod", "base", "0640", "/data/a"])?;
    lab.ok(&["ln", "base", "/data/a", "/data/b"])?;
    lab.ok(&["ln", "base", "/data/a", "/data/sub/c"])?;
    lab.ok(&["write", "base", "/data/alike", "--data", "linked"])?;
    lab.ok(&["chmod", "base", "0640", "/data/alike"])?;
    lab.ok(&["write", "base", "/sparse", "--data", "x"])?;
    lab.ok(&["truncate", "base", "/sparse", "4MiB"])?;
    lab.ok(&[
        "write", "base", "/sparse", "--data", "y", "--offset", "3145728",
    ])?;
    lab.ok(&["write", "base", "/zeros", "--data", ""])?;
    lab.ok(&["truncate", "base", "/zeros", "1MiB"])?;
    lab.ok(&["ln", "-s", "base", "data/a", "/link"])?;
    lab.ok(&["layer", "commit", "base"])?;
    lab.ok(&["layer", "create", "top", "--parent", "base"])?;
    Ok(())
}

#[test]
fn export_keeps_hard_links_holes_modes_and_mtimes() -> Result<()> {
    for_each_lab(linked_and_sparse, |lab, _| {
        let out = lab.dir().join("out");
        lab.ok(&["export", "top", out.to_str().unwrap_or_default()])?;
        let md = |p: &str| fs::symlink_metadata(out.join(p));
        // one host inode per link group; the look-alike is its own file
        let (a, b, c, alike) = (
            md("data/a")?,
            md("data/b")?,
            md("data/sub/c")?,
            md("data/alike")?,
        );
        ensure!(
            a.ino() == b.ino() && a.ino() == c.ino(),
            "links became copies"
        );
        ensure!(a.nlink() == 3, "nlink {}", a.nlink());
        ensure!(
            alike.ino() != a.ino() && alike.nlink() == 1,
            "an unlinked file was linked"
        );
        ensure!(fs::read(out.join("data/sub/c"))? == b"linked");
        ensure!(a.mode() & 0o7777 == 0o640, "mode {:o}", a.mode());
        // holes: the length and the bytes are the view's, the zeros are not written
        let sparse = fs::read(out.join("sparse"))?;
        ensure!(sparse.len() == 4 << 20 && sparse[0] == b'x' && sparse[3 << 20] == b'y');
        ensure!(sparse.iter().filter(|b| **b != 0).count() == 2);
        ensure!(md("zeros")?.len() == 1 << 20);
        if holes_supported(lab.dir())? {
            ensure!(
                md("sparse")?.blocks() * 512 <= 64 << 10,
                "sparse file filled in"
            );
            ensure!(md("zeros")?.blocks() == 0, "an all-zero file was written");
        } else {
            use std::io::Write as _;
            std::io::stderr()
                .write_all(b"SKIP export hole checks: the test directory has no holes\n")?;
        }
        // mtimes (files, directories, symlinks) are the layer's
        for p in ["/data/a", "/data", "/data/sub", "/link", "/sparse"] {
            let st = lab.json(&["stat", "top", p, "--json"])?;
            let host = md(p.trim_start_matches('/'))?;
            ensure!(
                st["mtime"] == host.mtime(),
                "{p}: layer mtime {}, host {}",
                st["mtime"],
                host.mtime()
            );
        }
        Ok(())
    })
}

#[test]
fn export_tar_writes_the_merged_view_as_docker_export() -> Result<()> {
    for_each_lab(linked_and_sparse, |lab, _| {
        lab.ok(&["rm", "top", "/data/alike"])?;
        let file = lab.dir().join("view.tar");
        let s = |p: &Path| p.to_str().unwrap_or_default().to_string();
        let said = lab.ok(&["export", "top", "--tar", &s(&file)])?;
        ensure!(said.contains("2 hardlinks"), "{said}");
        let bytes = fs::read(&file)?;
        // to stdout: the same bytes, nothing else
        let out = lab.run(&["export", "top", "--tar", "-"])?;
        ensure!(
            out.status.success() && out.stdout == bytes,
            "--tar - differs"
        );

        let mut seen = Vec::new();
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut sparse_names = Vec::new();
        for e in ar.entries()? {
            let mut e = e?;
            // a file with holes is a PAX 1.0 sparse entry: its name is in a PAX record
            let mut name = e.path()?.display().to_string();
            if let Some(exts) = e.pax_extensions()? {
                for x in exts {
                    let x = x?;
                    if x.key().ok() == Some("GNU.sparse.name") {
                        name = x.value().unwrap_or_default().to_string();
                        sparse_names.push(name.clone());
                    }
                }
            }
            let h = e.header();
            let link = e.link_name()?.map(|l| l.display().to_string());
            seen.push((name, h.entry_type(), link, h.mode()? & 0o7777, h.mtime()?));
        }
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        ensure!(
            names
                == [
                    "data/",
                    "data/a",
                    "data/b",
                    "data/sub/",
                    "data/sub/c",
                    "link",
                    "sparse",
                    "zeros"
                ],
            "{names:?}"
        );
        ensure!(
            sparse_names == ["sparse", "zeros"],
            "files with holes not written sparse: {sparse_names:?}"
        );
        for (name, kind, link, _, _) in &seen {
            if name == "data/b" || name == "data/sub/c" {
                ensure!(
                    kind.is_hard_link() && link.as_deref() == Some("data/a"),
                    "{name}: {kind:?} {link:?}"
                );
            }
        }
        let st = lab.json(&["stat", "top", "/data/a", "--json"])?;
        ensure!(
            seen[1].3 == 0o640 && st["mtime"] == seen[1].4,
            "{:?} {st}",
            seen[1]
        );

        // the tar applied to an empty layer gives the same view
        lab.ok(&["layer", "create", "again"])?;
        lab.ok(&["apply", "again", &s(&file)])?;
        let (x, y) = (lab.dir().join("x"), lab.dir().join("y"));
        lab.ok(&["export", "top", &s(&x)])?;
        lab.ok(&["export", "again", &s(&y)])?;
        ensure!(
            snapshot(&x)? == snapshot(&y)?,
            "view tar round trip differs"
        );
        ensure!(fs::metadata(y.join("data/b"))?.nlink() == 3);

        // HOSTDIR and --tar exclude each other; one of them is needed
        for args in [
            &["export", "top"][..],
            &["export", "top", &s(&lab.dir().join("z")), "--tar", "-"],
        ] {
            ensure!(lab.run(args)?.status.code() == Some(2), "{args:?}");
        }
        ensure!(!file.with_extension("tar.partial").exists());
        Ok(())
    })
}

/// `setfattr`, `getfattr`, `touch`, `mknod` and `stat`, each a new process on the store, on
/// every driver: what one command sets, the next reads back; bad input is one error line
/// and changes nothing.
#[test]
fn attribute_commands_set_what_the_next_command_reads() -> Result<()> {
    for_each_lab(Lab::two_layers, |lab, driver| {
        lab.ok(&[
            "setfattr",
            "app",
            "/etc/motd",
            "-n",
            "user.note",
            "-v",
            "hi there",
        ])?;
        lab.ok(&[
            "setfattr",
            "app",
            "/etc/motd",
            "-n",
            "user.bin",
            "-v",
            "0x00ff",
        ])?;
        let shown = lab.ok(&["getfattr", "app", "/etc/motd"])?;
        ensure!(
            shown == "# file: /etc/motd\nuser.bin=0x00ff\nuser.note=\"hi there\"\n",
            "[{driver}] getfattr printed {shown:?}"
        );
        let one = lab.json(&["getfattr", "app", "/etc/motd", "-n", "user.note", "--json"])?;
        ensure!(one["user.note"] == "\"hi there\"", "[{driver}] {one}");
        lab.ok(&["setfattr", "app", "/etc/motd", "-x", "user.bin"])?;
        lab.ok(&["touch", "app", "/etc/motd", "--mtime", "1700000000.25"])?;
        lab.ok(&["touch", "app", "/etc/new"])?;
        lab.ok(&["touch", "app", "/etc/absent", "-c"])?;
        let st = lab.json(&["stat", "app", "/etc/motd", "--json"])?;
        ensure!(
            st["mtime"] == 1_700_000_000 && st["mtime_nsec"] == 250_000_000,
            "[{driver}] {st}"
        );
        ensure!(
            st["xattrs"]["user.note"] == "\"hi there\"",
            "[{driver}] {st}"
        );
        ensure!(st["xattrs"].get("user.bin").is_none(), "[{driver}] {st}");
        ensure!(
            lab.json(&["stat", "app", "/etc/new", "--json"])?["kind"] == "file",
            "[{driver}] touch made no file"
        );
        lab.fail_naming(&["stat", "app", "/etc/absent"], &["/etc/absent"])?;
        lab.ok(&["mknod", "app", "/etc/fifo", "p", "-m", "0600"])?;
        let st = lab.json(&["stat", "app", "/etc/fifo", "--json"])?;
        ensure!(
            st["kind"] == "fifo" && st["mode"] == 0o600,
            "[{driver}] {st}"
        );
        if running_as_root() {
            lab.ok(&["mknod", "app", "/etc/null", "c", "1", "3", "-m", "0666"])?;
            let st = lab.ok(&["stat", "app", "/etc/null"])?;
            ensure!(
                st.contains("device") && st.contains("1:3"),
                "[{driver}] {st}"
            );
        }
        // base is committed: nothing changed there
        ensure!(
            lab.ok(&["getfattr", "base", "/etc/motd"])? == "# file: /etc/motd\n",
            "[{driver}] the committed base changed"
        );
        // bad input: one error line naming what and where; the layer unchanged
        let before = lab.ok(&["getfattr", "app", "/etc/motd"])?;
        lab.fail_naming(
            &["setfattr", "app", "/etc/motd", "-n", "user.x", "-v", "0xZZ"],
            &["/etc/motd", "0xZZ"],
        )?;
        lab.fail_naming(
            &[
                "setfattr",
                "app",
                "/etc/motd",
                "-n",
                "trusted.overlay.opaque",
                "-v",
                "y",
            ],
            &["/etc/motd", "reserved"],
        )?;
        lab.fail_naming(
            &["setfattr", "app", "/etc/motd", "-x", "user.none"],
            &["/etc/motd", "user.none"],
        )?;
        lab.fail_naming(
            &["setfattr", "base", "/etc/motd", "-n", "user.x"],
            &["base", "read-only"],
        )?;
        lab.fail_naming(
            &["touch", "app", "/etc/motd", "--mtime", "soon"],
            &["/etc/motd", "soon"],
        )?;
        lab.fail_naming(&["mknod", "app", "/etc/x", "q"], &["/etc/x", "\"q\""])?;
        lab.fail_naming(
            &["mknod", "app", "/etc/y", "c", "0", "0"],
            &["/etc/y", "whiteout"],
        )?;
        lab.fail_naming(
            &["mknod", "app", "/etc/z", "p", "1", "2"],
            &["/etc/z", "fifo"],
        )?;
        ensure!(
            lab.ok(&["getfattr", "app", "/etc/motd"])? == before,
            "[{driver}] a refused command changed the layer"
        );
        for p in ["/etc/x", "/etc/y", "/etc/z"] {
            lab.fail_naming(&["stat", "app", p], &[p])?;
        }
        Ok(())
    })
}
