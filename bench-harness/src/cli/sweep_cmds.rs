//! Sweeps on a cluster: `run CONFIG --plan`, `run CONFIG --shard K/N --out DIR`,
//! `merge DIR... --out DIR [--partial]`, `slurm CONFIG --shards N [--submit]`. The work is
//! done by `harness::{sweep, shard, merge, slurm}`; this module reads arguments and prints.

use super::args::SlurmArgs;
use super::output;
use crate::harness::merge;
use crate::harness::runner::RunOptions;
use crate::harness::shard;
use crate::harness::slurm::{self, SlurmJob};
use crate::harness::sweep::{self, Point, Sweep};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn load(config: &Path, quick: bool) -> Result<(Sweep, Vec<Point>)> {
    let sweep = Sweep::load(config)?;
    let points = sweep.points(quick);
    Ok((sweep, points))
}

/// The largest shard count worth running: one point per shard.
fn check_shards(what: &str, n: usize, points: usize) -> Result<()> {
    if n > points {
        bail!("{what}: the experiment has {points} points: use at most {points} shards");
    }
    Ok(())
}

/// `run CONFIG --plan`: the points and their estimated cost.
pub fn plan<W: Write>(out: &mut W, config: &Path, quick: bool) -> Result<()> {
    let (sweep, points) = load(config, quick)?;
    writeln!(
        out,
        "{:>5}  {:<12} {:<28} {:>4}  {:<20} {:>10}  PROFILES",
        "POINT", "WORKLOAD", "SWEPT", "REP", "DRIVER", "ESTIMATE"
    )?;
    for p in &points {
        writeln!(
            out,
            "{:>5}  {:<12} {:<28} {:>4}  {:<20} {:>9.3}s  {}",
            p.index,
            format!("{}#{}", p.kind, p.workload),
            if p.tag.is_empty() { "-" } else { &p.tag },
            p.repetition,
            p.driver,
            p.estimate_s,
            p.profiles.join(",")
        )?;
    }
    let total: f64 = points.iter().map(|p| p.estimate_s).sum();
    let longest = points.iter().map(|p| p.estimate_s).fold(0.0, f64::max);
    writeln!(
        out,
        "experiment {}: {} points, estimated {total:.1} s on one machine (the longest point {longest:.1} s: no shard count goes below it); an estimate from the parameters, each driver's scaled by its measured time in the committed standard report, not a prediction",
        sweep.exp.name,
        points.len()
    )?;
    Ok(())
}

/// `run CONFIG --shard K/N --out DIR`.
pub fn shard<W: Write>(
    out: &mut W,
    config: &Path,
    text: &str,
    dir: PathBuf,
    quick: bool,
    progress: bool,
) -> Result<()> {
    let (k, n) = sweep::parse_shard(text).map_err(anyhow::Error::msg)?;
    let (sweep, points) = load(config, quick)?;
    check_shards(&format!("--shard {text}"), n, points.len())?;
    let mut opts = RunOptions::new(&dir);
    opts.quick = quick;
    opts.progress = progress;
    let (results, manifest) = shard::run_shard(&sweep, k, n, &opts)?;
    writeln!(
        out,
        "shard {k}/{n} of experiment {}: {} of {} points, {} rows in {:.1} s on {}, written to {} ({})",
        results.experiment,
        manifest.points.len(),
        manifest.points_total,
        results.rows.len(),
        manifest.wall_s,
        manifest.machine,
        dir.display(),
        shard::MANIFEST
    )?;
    Ok(())
}

/// `merge DIR... --out DIR [--partial]`.
pub fn merge<W: Write>(out: &mut W, dirs: &[PathBuf], dir: &Path, partial: bool) -> Result<()> {
    let target = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    for d in dirs {
        if std::path::absolute(d).is_ok_and(|a| a == target) {
            bail!(
                "--out {}: is one of the shard directories; merge into another",
                dir.display()
            );
        }
    }
    let shards = dirs
        .iter()
        .map(|d| merge::read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = merge::merge(shards, partial)?;
    let written = merge::write(&merged, dir)?;
    let (done, total) = merged.points;
    let machines: std::collections::BTreeSet<&str> = merged
        .shards
        .iter()
        .map(|s| s.manifest.machine.as_str())
        .collect();
    writeln!(
        out,
        "merged {} shards of experiment {} ({done} of {total} points, {} rows, machines: {}): {}, results beside them in {}",
        merged.shards.len(),
        merged.results.experiment,
        merged.results.rows.len(),
        machines.into_iter().collect::<Vec<_>>().join(", "),
        written.pages(),
        dir.display()
    )?;
    if !merged.missing.is_empty() {
        let n = merged.shards.first().map_or(0, |s| s.manifest.shards);
        let missing: Vec<String> = merged.missing.iter().map(|k| format!("{k}/{n}")).collect();
        writeln!(
            out,
            "partial: shards missing: {}; {} of {total} points are not in the results",
            missing.join(", "),
            total - done
        )?;
    }
    output::notes(out, &merged.results.notes)?;
    Ok(())
}

/// `slurm CONFIG --shards N [--out DIR] [--partition P] [--time T] [--quick] [--submit]`.
pub fn slurm<W: Write>(out: &mut W, config: &Path, a: &SlurmArgs) -> Result<()> {
    let (sweep, points) = load(config, a.quick)?;
    if a.shards == 0 {
        bail!("--shards 0: at least one shard");
    }
    check_shards(&format!("--shards {}", a.shards), a.shards, points.len())?;
    for (what, v) in [("--partition", &a.partition), ("--time", &a.time)] {
        if let Some(v) = v {
            slurm::check_value(what, v).map_err(anyhow::Error::msg)?;
        }
    }
    let abs = |p: &Path| std::path::absolute(p).with_context(|| p.display().to_string());
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new("reports").join(format!("{}-sweep", sweep.exp.name)));
    let job = SlurmJob {
        name: sweep.exp.name.clone(),
        exe: std::env::current_exe().context("the path of the layerlab binary")?,
        config: abs(config)?,
        out: abs(&dir)?,
        shards: a.shards,
        partition: a.partition.clone(),
        time: a.time.clone(),
        quick: a.quick,
    };
    let logs = job.out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| logs.display().to_string())?;
    for (name, text) in [
        (slurm::ARRAY_SCRIPT, slurm::array_script(&job)),
        (slurm::MERGE_SCRIPT, slurm::merge_script(&job)),
        (slurm::SUBMIT_SCRIPT, slurm::submit_script(&job)),
    ] {
        let path = job.out.join(name);
        std::fs::write(&path, text).with_context(|| path.display().to_string())?;
        if name == slurm::SUBMIT_SCRIPT {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| path.display().to_string())?;
        }
    }
    writeln!(
        out,
        "experiment {}: {} points in {} shards; scripts {}, {} and {} in {}",
        sweep.exp.name,
        points.len(),
        a.shards,
        slurm::ARRAY_SCRIPT,
        slurm::MERGE_SCRIPT,
        slurm::SUBMIT_SCRIPT,
        job.out.display()
    )?;
    if a.submit {
        let array = sbatch(&[job.out.join(slurm::ARRAY_SCRIPT).display().to_string()])?;
        let merge = sbatch(&[
            format!("--dependency=afterok:{array}"),
            job.out.join(slurm::MERGE_SCRIPT).display().to_string(),
        ])?;
        writeln!(
            out,
            "submitted: array job {array} (shards), merge job {merge}; the report goes to {}",
            job.out.join("report").display()
        )?;
    }
    Ok(())
}

/// Runs `sbatch --parsable ARGS` and returns the job id.
fn sbatch(args: &[String]) -> Result<String> {
    let o = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .output()
        .context("running sbatch (is Slurm's client installed?)")?;
    if !o.status.success() {
        bail!(
            "sbatch {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!(
            "sbatch {}: no job id in its answer '{}'",
            args.join(" "),
            text.trim()
        );
    }
    Ok(id)
}
