//! RUN: a command executed on a mounted layer.
//!
//! [`run_step`] mounts the active layer the builder made on the step's parent (through
//! `layerlab-mount`, served by a thread of this process), and runs the command chrooted
//! into the mount with the image's environment, working directory and user, in private
//! mount, PID, IPC, UTS and network namespaces (the network namespace has only `lo`, down:
//! there is no network). The command is PID 1 of its namespace; `/proc` is mounted in it
//! when the image has a `/proc` directory. Its stdout and stderr go to the caller's sink
//! (one pipe for both, so their order is kept) or to this process's own. When it ends the
//! layer is unmounted and the server's totals (the driver operations the command caused,
//! with their Meter counts) are returned with the exit status.
//!
//! The namespaces are entered by util-linux `unshare(1)` (`--root`, `--wd`, `--setuid`,
//! `--setgid`, `--mount-proc`, `--kill-child`), run as a child process: the workspace
//! forbids unsafe code, and `fork` (or `unshare(2)` in a process that has threads) cannot
//! be done safely here. `unshare(1)` forks after entering the PID namespace, so the command
//! is PID 1, and `--kill-child` ends it if `unshare` is killed. Entering the namespaces
//! needs root, as FUSE mounts do here (`layerlab-mount` mounts without libfuse), so no user
//! namespace is used.
//!
//! The caller must not hold the store open for writing while a step runs: the mount opens
//! the store for each burst of requests.

mod root;
mod user;

pub use user::{resolve_user, Ident};

use layerlab_core::LayerId;
use layerlab_mount::{MountError, MountRequest, Totals};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// `PATH` when the image sets none, as Docker and buildah give it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The namespace flags of `unshare(1)`: mount, PID (with a fork, so the command is PID 1),
/// IPC, UTS and network; mount propagation private.
const UNSHARE_FLAGS: &[&str] = &[
    "--mount",
    "--pid",
    "--ipc",
    "--uts",
    "--net",
    "--fork",
    "--kill-child",
    "--propagation",
    "private",
];

/// How long the mount may take to answer.
const MOUNT_WITHIN: Duration = Duration::from_secs(60);

/// Where the command's output goes.
pub enum RunOutput {
    /// This process's own stdout and stderr.
    Inherit,
    /// One sink for both (in the order they were written).
    Sink(Box<dyn Write + Send>),
}

impl std::fmt::Debug for RunOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunOutput::Inherit => "Inherit",
            RunOutput::Sink(_) => "Sink",
        })
    }
}

/// One RUN step.
#[derive(Debug)]
pub struct RunSpec {
    /// The store.
    pub store: PathBuf,
    /// The active layer the command changes (made by the builder on the step's parent).
    pub layer: LayerId,
    /// The command: the exec form as given, or the SHELL followed by the command text.
    pub argv: Vec<String>,
    /// The environment, `(name, value)` in order (ENV, then the build args in effect).
    /// `PATH` is [`DEFAULT_PATH`] when absent; `HOME` the user's home when absent.
    pub env: Vec<(String, String)>,
    /// The working directory inside the image (made if missing, as WORKDIR does).
    pub workdir: String,
    /// USER: a name or uid, optionally `:group` or `:gid`; empty is root.
    pub user: String,
    /// Where the output goes.
    pub output: RunOutput,
}

/// What a RUN step did.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The command's exit status (the signal's 128+n when it was killed).
    pub status: i32,
    /// What the mount did while the command ran.
    pub totals: Totals,
}

impl RunOutcome {
    /// Whether the command succeeded.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// What can go wrong running a step (the command failing is not an error: see
/// [`RunOutcome::status`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// RUN cannot run on this machine.
    #[error("RUN cannot run here: {0}")]
    Unavailable(String),
    /// An empty command.
    #[error("RUN: empty command")]
    EmptyCommand,
    /// Mounting or unmounting the layer failed.
    #[error("layer {layer}: {source}")]
    Mount {
        /// The layer.
        layer: LayerId,
        /// Why.
        #[source]
        source: MountError,
    },
    /// A path inside the image could not be used.
    #[error("layer {layer}: {path}: {detail}")]
    Image {
        /// The layer.
        layer: LayerId,
        /// The path inside the image.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// USER names no user or group of the image.
    #[error("layer {layer}: USER {user}: {detail}")]
    User {
        /// The layer.
        layer: LayerId,
        /// The USER value.
        user: String,
        /// What was not found.
        detail: String,
    },
    /// Starting or waiting for the command.
    #[error("layer {layer}: {what}: {source}")]
    Io {
        /// The layer.
        layer: LayerId,
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Whether RUN can run here (`Err` says why not): FUSE mounts, and `unshare(1)` entering
/// the mount, PID, IPC, UTS and network namespaces (tried once with `true`).
pub fn run_available() -> Result<(), String> {
    layerlab_mount::fuse_available()?;
    let out = Command::new("unshare")
        .args(UNSHARE_FLAGS)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("unshare(1) (util-linux): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "unshare(1) cannot enter new namespaces: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs one RUN step on its layer (see the module doc).
pub fn run_step(spec: RunSpec) -> Result<RunOutcome, RunError> {
    if spec.argv.is_empty() {
        return Err(RunError::EmptyCommand);
    }
    let layer = spec.layer.clone();
    let mount = Mount::start(&spec.store, &layer)?;
    let ran = prepare(&spec, mount.path()).and_then(|cmd| execute(cmd, spec.output, &layer));
    let totals = mount.finish();
    let status = ran?;
    Ok(RunOutcome {
        status,
        totals: totals?,
    })
}

/// The `unshare(1)` command line for the step, with its environment; makes the working
/// directory.
fn prepare(spec: &RunSpec, root: &Path) -> Result<Command, RunError> {
    let image_err = |path: &str| {
        let layer = spec.layer.clone();
        let path = path.to_string();
        move |detail: String| RunError::Image {
            layer,
            path,
            detail,
        }
    };
    let workdir = if spec.workdir.is_empty() {
        "/"
    } else {
        &spec.workdir
    };
    root::make_dirs(root, workdir).map_err(image_err(workdir))?;
    let ident = resolve_user(root, &spec.user).map_err(|detail| RunError::User {
        layer: spec.layer.clone(),
        user: spec.user.clone(),
        detail,
    })?;
    let mut cmd = Command::new("unshare");
    cmd.args(UNSHARE_FLAGS)
        .arg("--root")
        .arg(root)
        .arg("--wd")
        .arg(workdir);
    if root::is_dir(root, "/proc") {
        cmd.arg("--mount-proc=/proc");
    }
    if ident.uid != 0 || ident.gid != 0 {
        cmd.arg("--setgid")
            .arg(ident.gid.to_string())
            .arg("--setuid")
            .arg(ident.uid.to_string());
    }
    cmd.arg("--").args(&spec.argv);
    cmd.env_clear();
    let has = |k: &str| spec.env.iter().any(|(n, _)| n == k);
    if !has("PATH") {
        cmd.env("PATH", DEFAULT_PATH);
    }
    if !has("HOME") {
        cmd.env("HOME", &ident.home);
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    Ok(cmd)
}

/// Starts the command, streams its output, and returns its exit status.
fn execute(mut cmd: Command, output: RunOutput, layer: &LayerId) -> Result<i32, RunError> {
    let io = |what: &'static str| {
        let layer = layer.clone();
        move |source| RunError::Io {
            layer,
            what,
            source,
        }
    };
    cmd.stdin(Stdio::null());
    let status: ExitStatus = match output {
        RunOutput::Inherit => cmd.status().map_err(io("running unshare(1)"))?,
        RunOutput::Sink(mut sink) => {
            let (mut reader, writer) = std::io::pipe().map_err(io("output pipe"))?;
            cmd.stdout(writer.try_clone().map_err(io("output pipe"))?)
                .stderr(writer);
            let mut child = cmd.spawn().map_err(io("running unshare(1)"))?;
            // the parent's copies of the write end are gone with `cmd`: the read ends at
            // the command's (and its children's) last close
            drop(cmd);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let _ = sink.write_all(&buf[..n]).and_then(|()| sink.flush());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = child.wait();
                        return Err(io("reading the output")(e));
                    }
                }
            }
            child.wait().map_err(io("waiting for the command"))?
        }
    };
    Ok(exit_code(status))
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// The layer served by a thread of this process at a temporary directory.
struct Mount {
    dir: tempfile::TempDir,
    store: PathBuf,
    layer: LayerId,
    server: JoinHandle<Result<Totals, MountError>>,
}

impl Mount {
    fn start(store: &Path, layer: &LayerId) -> Result<Mount, RunError> {
        let io_err = |what| {
            let layer = layer.clone();
            move |source| RunError::Io {
                layer,
                what,
                source,
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("layerlab-run-")
            .tempdir()
            .map_err(io_err("mount directory"))?;
        let store = std::path::absolute(store).map_err(io_err("store directory"))?;
        let req = MountRequest {
            store: store.clone(),
            layer: layer.clone(),
            dir: dir.path().to_path_buf(),
            read_only: false,
        };
        let (tx, rx) = mpsc::channel();
        let server = std::thread::Builder::new()
            .name("layerlab-run-mount".into())
            .spawn(move || {
                layerlab_mount::serve(&req, None, move |_| {
                    let _ = tx.send(());
                })
            })
            .map_err(io_err("mount server thread"))?;
        if rx.recv_timeout(MOUNT_WITHIN).is_err() {
            // the server ended (its error) or never answered
            let source = match server.join() {
                Ok(Err(e)) => e,
                _ => MountError::Fuse {
                    dir: dir.path().to_path_buf(),
                    what: "mount",
                    source: std::io::Error::from(std::io::ErrorKind::TimedOut),
                },
            };
            let _ = layerlab_mount::unmount(dir.path(), true);
            return Err(RunError::Mount {
                layer: layer.clone(),
                source,
            });
        }
        Ok(Mount {
            dir,
            store,
            layer: layer.clone(),
            server,
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Unmounts and waits for the server to write everything; its totals.
    fn finish(self) -> Result<Totals, RunError> {
        let mount_err = |source| RunError::Mount {
            layer: self.layer.clone(),
            source,
        };
        // a file the command's children left open (they are killed with PID 1, but the
        // kernel releases their files a moment later) makes the first unmount EBUSY
        let mut tries = 0;
        while let Err(e) = layerlab_mount::unmount(self.dir.path(), false) {
            tries += 1;
            if tries > 100 {
                let _ = layerlab_mount::unmount(self.dir.path(), true);
                return Err(mount_err(e));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let totals = match self.server.join() {
            Ok(r) => r.map_err(mount_err)?,
            Err(_) => {
                return Err(RunError::Io {
                    layer: self.layer.clone(),
                    what: "mount server",
                    source: std::io::Error::other("the server thread panicked"),
                })
            }
        };
        // the server also left them for `layerlab umount`: nobody else will take them
        let _ = layerlab_mount::take_totals(&self.store, &self.layer);
        Ok(totals)
    }
}
