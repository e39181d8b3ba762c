//! `mount` and `umount`: a layer as a live filesystem (FUSE, through `layerlab-mount`).
//!
//! Serving in the background: `mount` re-executes this binary with the hidden `--serve`
//! flag, in its own process group, stdin closed, stdout a pipe and stderr the log
//! `<store>/mounts/<layer>.log` (trace lines of a background `--trace` go there). The server
//! prints `ready` on the pipe once the mount answers, and `mount` returns then; if the
//! server fails first, `mount` prints its error. Re-executing rather than forking: this
//! process may have threads, and fork in a threaded process (and any fork at all here:
//! the workspace forbids unsafe code) is not safe. `umount` unmounts, waits for the server
//! to remove its mount record (its last act, after writing the mount's totals) and prints
//! the totals.

use super::args::Global;
use super::{output, values};
use anyhow::{anyhow, bail, Context};
use layerlab_core::Counts;
use layerlab_mount::{MountError, MountRecord, MountRequest, Totals};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How `mount` runs.
#[derive(Debug, Clone, Copy)]
pub struct How {
    /// Stay attached.
    pub foreground: bool,
    /// Serve an active layer read-only.
    pub read_only: bool,
    /// This process is the background server.
    pub serve: bool,
}

/// How long `umount` waits for the server to finish writing.
const FINISH_WITHIN: Duration = Duration::from_secs(120);

/// `layerlab mount ID DIR [--foreground] [--read-only]`.
pub fn mount(
    out: &mut impl Write,
    g: &Global,
    id: &str,
    dir: &Path,
    how: How,
) -> anyhow::Result<()> {
    layerlab_mount::fuse_available().map_err(|why| anyhow!("cannot mount here: {why}"))?;
    let store = std::path::absolute(g.store_root()).context("store directory")?;
    let req = MountRequest {
        store,
        layer: values::id(id)?,
        dir: dir.to_path_buf(),
        read_only: how.read_only,
    };
    let (abs_dir, _) = layerlab_mount::preflight(&req)?;
    if how.serve {
        return serve(&req, g.trace, |_| {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "ready");
            let _ = o.flush();
        })
        .map(|_| ());
    }
    if how.foreground {
        let dir2 = abs_dir.clone();
        spawn_signal_thread(dir2)?;
        let totals = serve(&req, g.trace, |r| {
            let _ = writeln!(
                std::io::stderr(),
                "mounted layer {} at {} (pid {}); Ctrl-C or `layerlab umount {}` to finish",
                r.layer,
                r.dir.display(),
                r.pid,
                r.dir.display()
            );
        })?;
        let _ = layerlab_mount::take_totals(&req.store, &req.layer);
        return print_totals(out, req.layer.as_str(), dir, &totals);
    }
    start_background(out, g, &req, &abs_dir)
}

/// Serves until unmounted, tracing through the CLI's trace lines.
fn serve(
    req: &MountRequest,
    trace: bool,
    ready: impl FnOnce(&MountRecord),
) -> anyhow::Result<Totals> {
    let tracer: Option<layerlab_mount::Tracer> = if trace {
        Some(Box::new(
            |label: &str, steps: &[String], counts: &Counts, failed: bool| {
                output::trace_op(label, steps, counts, failed)
            },
        ))
    } else {
        None
    };
    Ok(layerlab_mount::serve(req, tracer, ready)?)
}

/// SIGINT or SIGTERM unmounts, so that `serve` returns and the totals are printed.
fn spawn_signal_thread(dir: PathBuf) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("signal handlers")?;
    std::thread::Builder::new()
        .name("layerlab-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                match layerlab_mount::unmount(&dir, false) {
                    Ok(()) => break,
                    Err(e) => eprintln!("error: {e} (still serving; close what uses it)"),
                }
            }
        })
        .context("signal thread")?;
    Ok(())
}

fn start_background(
    out: &mut impl Write,
    g: &Global,
    req: &MountRequest,
    dir: &Path,
) -> anyhow::Result<()> {
    let log_path = MountRecord::dir_of(&req.store).join(format!("{}.log", req.layer.dir_name()));
    std::fs::create_dir_all(MountRecord::dir_of(&req.store))
        .with_context(|| format!("{}", req.store.display()))?;
    let log =
        std::fs::File::create(&log_path).with_context(|| format!("{}", log_path.display()))?;
    let exe = std::env::current_exe().context("this program's path")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&req.store)
        .arg("mount")
        .arg(req.layer.as_str())
        .arg(dir)
        .arg("--serve");
    if g.trace {
        cmd.arg("--trace");
    }
    if req.read_only {
        cmd.arg("--read-only");
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("starting the mount server")?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        std::io::BufReader::new(stdout).read_line(&mut line)?;
    }
    if line.trim() != "ready" {
        let _ = child.wait();
        let logged = std::fs::read_to_string(&log_path).unwrap_or_default();
        let why = logged
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or("the server exited before the mount was ready");
        bail!("{why}");
    }
    writeln!(
        out,
        "mounted layer {} at {} (serving in the background; `layerlab umount {}` to finish)",
        req.layer,
        req.dir.display(),
        req.dir.display()
    )?;
    Ok(())
}

/// `layerlab umount DIR`.
pub fn umount(out: &mut impl Write, g: &Global, dir: &Path) -> anyhow::Result<()> {
    let store = std::path::absolute(g.store_root()).context("store directory")?;
    let rec = layerlab_mount::record_at(&store, dir)?;
    if !rec.alive() {
        match layerlab_mount::unmount(&rec.dir, true) {
            Ok(()) | Err(MountError::Fuse { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        MountRecord::remove(&store, &rec.layer)?;
        writeln!(
            out,
            "{}: its server (pid {}) was gone (killed); cleared the stale mount of layer {}; \
             no counts (they died with the server)",
            rec.dir.display(),
            rec.pid,
            rec.layer
        )?;
        return Ok(());
    }
    layerlab_mount::unmount(&rec.dir, false)?;
    let start = Instant::now();
    while MountRecord::load(&store, &rec.layer)?.is_some_and(|r| r.pid == rec.pid && r.alive()) {
        if start.elapsed() > FINISH_WITHIN {
            bail!(
                "{}: unmounted, but server pid {} has not finished after {}s",
                rec.dir.display(),
                rec.pid,
                FINISH_WITHIN.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let totals = layerlab_mount::take_totals(&store, &rec.layer)?
        .ok_or_else(|| anyhow!("{}: the server left no counts", rec.dir.display()))?;
    print_totals(out, rec.layer.as_str(), dir, &totals)
}

fn print_totals(
    out: &mut impl Write,
    layer: &str,
    dir: &Path,
    totals: &Totals,
) -> anyhow::Result<()> {
    let times = if totals.opens == 1 { "time" } else { "times" };
    writeln!(
        out,
        "unmounted layer {layer} from {}: {} driver operations (store opened {} {times})\n  counts: {}",
        dir.display(),
        totals.ops,
        totals.opens,
        totals.counts.summary()
    )?;
    Ok(())
}
