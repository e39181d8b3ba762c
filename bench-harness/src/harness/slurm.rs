//! Batch scripts for Slurm (`layerlab slurm CONFIG --shards N`): a job array whose task
//! `$SLURM_ARRAY_TASK_ID` runs that shard, and a merge job, submitted after the array with
//! `--dependency=afterok:JOBID` (by `submit.sh`, or by `layerlab slurm --submit`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the scripts run, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmJob {
    /// The experiment's name (names the jobs).
    pub name: String,
    /// The `layerlab` binary as the compute nodes reach it.
    pub exe: PathBuf,
    /// The experiment file.
    pub config: PathBuf,
    /// The sweep directory: `shard-K/`, `report/`, `logs/`, the scripts.
    pub out: PathBuf,
    /// The number of shards (array tasks).
    pub shards: usize,
    /// `--partition`, if any.
    pub partition: Option<String>,
    /// `--time`, if any.
    pub time: Option<String>,
    /// Run with `--quick`.
    pub quick: bool,
}

/// The array script's file name in the sweep directory.
pub const ARRAY_SCRIPT: &str = "sweep.sbatch";
/// The merge script's file name.
pub const MERGE_SCRIPT: &str = "merge.sbatch";
/// The script that submits both.
pub const SUBMIT_SCRIPT: &str = "submit.sh";

/// A word quoted for sh: as it is when it is plain, else in single quotes.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn q(p: &Path) -> String {
    sh_quote(&p.display().to_string())
}

/// Checks a `--partition` or `--time` value (it goes into a `#SBATCH` line): `Err` says why.
pub fn check_value(what: &str, v: &str) -> Result<(), String> {
    let ok = match what {
        "--time" => v
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '-'),
        _ => v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-,".contains(c)),
    };
    if v.is_empty() || !ok {
        return Err(format!(
            "{what} '{v}': {}",
            if what == "--time" {
                "a Slurm time such as 30, 1:30:00 or 2-00:00:00"
            } else {
                "partition names of letters, digits, '_', '.', '-', separated by ','"
            }
        ));
    }
    Ok(())
}

/// A script's first lines: the shell, the job's name (`layerlab-NAME` and `suffix`), its
/// log under `logs/`, the partition and the time limit.
fn header(job: &SlurmJob, suffix: &str, log: &str) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name=layerlab-{}{suffix}", job.name);
    let _ = writeln!(s, "#SBATCH --output={}", q(&job.out.join("logs").join(log)));
    if let Some(p) = &job.partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    if let Some(t) = &job.time {
        let _ = writeln!(s, "#SBATCH --time={t}");
    }
    s
}

/// The job array: task K runs `layerlab run CONFIG --shard K/N --out OUT/shard-K`.
pub fn array_script(job: &SlurmJob) -> String {
    let mut s = header(job, "", "shard-%a.out");
    let _ = writeln!(s, "#SBATCH --array=0-{}", job.shards.saturating_sub(1));
    s.push_str("#SBATCH --ntasks=1\n");
    s.push_str("set -euo pipefail\n");
    let _ = writeln!(
        s,
        "exec {} run {} --shard \"$SLURM_ARRAY_TASK_ID/{}\" --out {}\"/shard-$SLURM_ARRAY_TASK_ID\" --no-progress{}",
        q(&job.exe),
        q(&job.config),
        job.shards,
        q(&job.out),
        if job.quick { " --quick" } else { "" }
    );
    s
}

/// The merge job: every shard directory named, so that a missing one is named too.
pub fn merge_script(job: &SlurmJob) -> String {
    let mut s = header(job, "-merge", "merge.out");
    s.push_str("#SBATCH --ntasks=1\n");
    s.push_str("set -euo pipefail\n");
    let _ = write!(s, "exec {} merge", q(&job.exe));
    for k in 0..job.shards {
        let _ = write!(s, " \\\n    {}", q(&job.out.join(format!("shard-{k}"))));
    }
    let _ = writeln!(s, " \\\n    --out {}", q(&job.out.join("report")));
    s
}

/// Submits the array, then the merge job after it: what `layerlab slurm --submit` does.
pub fn submit_script(job: &SlurmJob) -> String {
    format!(
        "#!/bin/sh\n# Submits the shards of {} as a job array, then the merge job after them.\nset -eu\narray=$(sbatch --parsable {})\nmerge=$(sbatch --parsable --dependency=afterok:\"${{array%%;*}}\" {})\necho \"array job $array, merge job $merge\"\n",
        job.name,
        q(&job.out.join(ARRAY_SCRIPT)),
        q(&job.out.join(MERGE_SCRIPT)),
    )
}
