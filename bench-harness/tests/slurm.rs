//! A real sweep on a single-node Slurm cluster that this test starts (munge, slurmctld,
//! slurmd from Debian's packages, as docs/DESIGN.md section 8 describes): `layerlab slurm
//! --submit` submits the job array of shards and the merge job after it; the merged
//! report's counted and modelled rows equal an unsharded run. Where the daemons cannot
//! start (no packages, not root), the test says SKIP on stderr and passes. It stops the
//! daemons it started (by the pids in their pid files).

// A test fails by panicking.
#![allow(clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_layerlab");

fn skip(why: &str) {
    let _ = std::io::stderr().write_all(format!("SKIP slurm sweep: {why}\n").as_bytes());
}

fn sh(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The daemons this test started: stopped (TERM, by pid) when dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    pid_files: Vec<PathBuf>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for f in self.pid_files.iter().rev() {
            let Some(pid) = fs::read_to_string(f)
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
            else {
                continue;
            };
            let _ = Command::new("kill").arg(pid.to_string()).status();
            // wait (up to 10 s) until it is gone, so that the next run starts afresh
            let proc = PathBuf::from(format!("/proc/{pid}/stat"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline
                && fs::read_to_string(&proc).is_ok_and(|s| !s.contains(") Z "))
            {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Cluster {
    fn client(&self, cmd: &str) -> Command {
        let mut c = Command::new(cmd);
        c.env("SLURM_CONF", &self.conf).stdin(Stdio::null());
        c
    }

    /// What a Slurm client command prints, trimmed (empty where it cannot run).
    fn said(&self, cmd: &str, args: &[&str]) -> String {
        self.client(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

fn munge(pid_files: &mut Vec<PathBuf>) -> Result<(), String> {
    let socket = Path::new("/run/munge/munge.socket.2");
    if socket.exists() && sh("munge", &["-n"]).is_some() {
        return Ok(()); // a munged is already running: use it, leave it alone
    }
    let uid = sh("id", &["-u", "munge"]).ok_or("no munge user (munge not installed)")?;
    let gid = sh("id", &["-g", "munge"]).ok_or("no munge group")?;
    fs::create_dir_all("/run/munge").map_err(|e| format!("/run/munge: {e}"))?;
    sh("chown", &[&format!("{uid}:{gid}"), "/run/munge"]).ok_or("cannot chown /run/munge")?;
    sh("runuser", &["-u", "munge", "--", "munged"]).ok_or("munged did not start")?;
    pid_files.push(PathBuf::from("/run/munge/munged.pid"));
    Ok(())
}

fn slurm_conf(dir: &Path) -> Result<String, String> {
    let host = sh("hostname", &["-s"]).ok_or("no hostname")?;
    let cpus = sh("nproc", &[]).ok_or("no nproc")?;
    let free = sh("free", &["-m"]).ok_or("no free")?;
    let total: u64 = free
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|m| m.parse().ok())
        .ok_or("cannot read free -m")?;
    let d = dir.display();
    Ok(format!(
        "ClusterName=layerlab\nSlurmctldHost={host}\nSlurmUser=root\nAuthType=auth/munge\n\
         MailProg=/bin/true\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
         SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
         SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
         ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
         JobAcctGatherType=jobacct_gather/none\nSelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\nReturnToService=2\n\
         NodeName={host} CPUs={cpus} RealMemory={} State=UNKNOWN\n\
         PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
        total.saturating_sub(1024).max(256)
    ))
}

/// Starts munge (unless running), slurmctld and slurmd with a private configuration and
/// waits for the node to be idle.
fn start(dir: &Path) -> Result<Cluster, String> {
    for tool in ["slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "munged"] {
        if sh("sh", &["-c", &format!("command -v {tool}")]).is_none() {
            return Err(format!(
                "{tool} not installed (apt-get install slurmctld slurmd slurm-client munge)"
            ));
        }
    }
    if sh("id", &["-u"]).as_deref() != Some("0") {
        return Err("not root".into());
    }
    for sub in ["state", "spool"] {
        fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
    }
    let conf = dir.join("slurm.conf");
    fs::write(&conf, slurm_conf(dir)?).map_err(|e| e.to_string())?;
    let mut cluster = Cluster {
        dir: dir.to_path_buf(),
        conf,
        pid_files: Vec::new(),
    };
    munge(&mut cluster.pid_files)?;
    for daemon in ["slurmctld", "slurmd"] {
        let ok = cluster
            .client(daemon)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        cluster.pid_files.push(dir.join(format!("{daemon}.pid")));
        if !ok {
            return Err(format!(
                "{daemon} did not start: {}",
                cluster.log(&format!("{daemon}.log"))
            ));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = cluster.said("sinfo", &["-h", "-o", "%T"]);
        if state == "idle" {
            return Ok(cluster);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the node is '{state}', not idle, after 30 s: {}",
                cluster.log("slurmd.log")
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn a_sweep_runs_on_slurm_and_merges_to_the_unsharded_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = match start(&dir.path().join("slurm")) {
        Ok(c) => c,
        Err(why) => return skip(&why),
    };
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/sweep.toml");

    let t = Instant::now();
    let one = dir.path().join("one");
    // `run`, as every shard does: `report` would also calibrate this machine and model the
    // points for that profile, which the shards (on any machine) do not
    let o = Command::new(BIN)
        .args(["run", s(&config), "--out", s(&one), "--no-progress"])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let unsharded = t.elapsed();

    let t = Instant::now();
    let sweep = dir.path().join("sweep");
    let o = cluster
        .client(BIN)
        .args([
            "slurm",
            s(&config),
            "--shards",
            "3",
            "--out",
            s(&sweep),
            "--submit",
        ])
        .output()
        .expect("layerlab slurm");
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "layerlab slurm --submit: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(said.contains("submitted: array job"), "{said}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let queue = cluster.said("squeue", &["-h", "-o", "%i %T"]);
        if queue.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs still queued after 120 s: {queue}\n{}",
            cluster.log("slurmctld.log")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let sharded = t.elapsed();

    let report = sweep.join("report");
    let logs = || {
        let mut all = String::new();
        for f in fs::read_dir(sweep.join("logs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            all.push_str(&format!("== {}\n", f.path().display()));
            all.push_str(&fs::read_to_string(f.path()).unwrap_or_default());
        }
        all
    };
    assert!(
        report.join("report.md").is_file(),
        "no merged report: {}",
        logs()
    );
    let merged = fs::read_to_string(report.join("modelled.csv")).expect("merged modelled.csv");
    let single = fs::read_to_string(one.join("modelled.csv")).expect("modelled.csv");
    assert!(merged.lines().count() > 100);
    assert_eq!(
        merged, single,
        "counted and modelled rows of the Slurm sweep"
    );
    let shards = fs::read_to_string(report.join("shards.csv")).expect("shards.csv");
    assert_eq!(shards.lines().count(), 4, "{shards}");
    let _ = std::io::stderr().write_all(
        format!(
            "slurm sweep of configs/sweep.toml, results: unsharded (layerlab run) {:.1} s; 3 shards on the local Slurm, from submission to the merged report, {:.1} s\n",
            unsharded.as_secs_f64(),
            sharded.as_secs_f64()
        )
        .as_bytes(),
    );
    drop(cluster);
}
