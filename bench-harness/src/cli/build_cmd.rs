//! `layerlab build`: an image from a Containerfile (the `layerlab-build` crate), printed
//! as podman prints a build, plus what each built step cost the driver; or one JSON
//! document with `--json`.

use super::args::Global;
use super::output;
use anyhow::{anyhow, Result};
use layerlab_build::run::RunOutput;
use layerlab_build::{Options, Progress, StepReport};
use layerlab_inspect::units::human_size;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `build` was asked.
#[derive(Debug)]
pub struct BuildArgs {
    /// `-f FILE` (default `CONTEXT/Containerfile`, else `CONTEXT/Dockerfile`).
    pub file: Option<PathBuf>,
    /// `-t NAME[:TAG]`.
    pub tag: String,
    /// `--target STAGE`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--build-arg K=V`.
    pub build_args: Vec<String>,
    /// `--json`.
    pub json: bool,
    /// The context directory.
    pub context: PathBuf,
}

/// Prints steps as they go (text), or nothing (JSON: RUN output goes to stderr).
struct Printer<'a, W: Write> {
    out: &'a mut W,
    json: bool,
    failed: Option<std::io::Error>,
}

impl<W: Write> Printer<'_, W> {
    fn line(&mut self, text: &str) {
        if self.json || self.failed.is_some() {
            return;
        }
        if let Err(e) = writeln!(self.out, "{text}").and_then(|()| self.out.flush()) {
            self.failed = Some(e);
        }
    }
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

impl<W: Write> Progress for Printer<'_, W> {
    fn start(&mut self, step: usize, total: usize, text: &str) {
        self.line(&format!("STEP {step}/{total}: {text}"));
    }

    fn done(&mut self, s: &StepReport) {
        if s.instruction.starts_with("FROM") {
            return;
        }
        let line = match (&s.layer, s.cached) {
            (Some(l), true) => format!("--> Using cache {}", short(l)),
            (None, true) => "--> Using cache (metadata only)".to_string(),
            (None, false) => "--> (metadata only, 0 B)".to_string(),
            (Some(l), false) => format!(
                "--> {} {} in {:.3} s; copy-ups {}, bytes copied {}, blocks allocated {}, metadata writes {}",
                short(l),
                human_size(s.size),
                s.seconds,
                s.counts.copy_ups,
                human_size(s.counts.bytes_copied),
                s.counts.blocks_allocated,
                s.counts.metadata_writes
            ),
        };
        self.line(&line);
    }

    fn run_output(&mut self) -> RunOutput {
        if self.json {
            RunOutput::Sink(Box::new(std::io::stderr()))
        } else {
            RunOutput::Inherit
        }
    }
}

fn containerfile(context: &Path, file: Option<PathBuf>) -> PathBuf {
    file.unwrap_or_else(|| {
        let c = context.join("Containerfile");
        if c.exists() {
            c
        } else {
            context.join("Dockerfile")
        }
    })
}

/// `build [-f FILE] -t NAME[:TAG] [--target STAGE] [--no-cache] [--build-arg K=V]...
/// [--json] CONTEXT`.
pub fn build<W: Write>(out: &mut W, g: &Global, a: BuildArgs) -> Result<()> {
    let build_args = a
        .build_args
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(anyhow!("--build-arg {kv:?}: expected KEY=VALUE")),
        })
        .collect::<Result<Vec<_>>>()?;
    if a.tag.is_empty() {
        return Err(anyhow!("-t: an image name is required"));
    }
    let opts = Options {
        root: g.store_root(),
        file: containerfile(&a.context, a.file),
        context: a.context,
        tag: a.tag,
        target: a.target,
        no_cache: a.no_cache,
        build_args,
    };
    let mut p = Printer {
        out,
        json: a.json,
        failed: None,
    };
    let report = layerlab_build::build(&opts, &mut p)?;
    if let Some(e) = p.failed {
        return Err(e.into());
    }
    if !report.unused_args.is_empty() {
        eprintln!(
            "[Warning] one or more build args were not consumed: [{}]",
            report.unused_args.join(" ")
        );
    }
    if a.json {
        let doc = serde_json::json!({"image": report.image, "steps": report.steps});
        return output::json(out, &doc);
    }
    writeln!(out, "COMMIT {}", report.image.name)?;
    writeln!(out, "--> {}", short(&report.image.id))?;
    writeln!(out, "Successfully tagged {}", report.image.name)?;
    writeln!(out, "{}", report.image.id.trim_start_matches("sha256:"))?;
    Ok(())
}
