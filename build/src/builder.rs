//! The build: stages in order, each instruction a step that hits the cache or runs, and
//! the image recorded in the store as `import` records one.
//!
//! - Only the stages the target needs are built (its base, the stages its `COPY --from`
//!   names, and theirs), as BuildKit does; their steps are numbered `k/N` over those stages.
//! - A step hits when the cache has its key on the current top layer (see
//!   [`crate::cache`]); after a stage's first miss every later step of that stage runs.
//!   `--no-cache` runs every step.
//! - COPY, ADD and RUN make one committed layer each; every other instruction changes the
//!   image config only (a history entry with `empty_layer`, 0 B, as Docker's `#(nop)`).
//! - A failing step removes its layer; layers of earlier steps stay, committed and cached
//!   (as in every builder), and no image is recorded.
//! - The store is held open for writing except while a RUN command runs: the mount serving
//!   its layer opens the store itself.

use crate::cache::{self, Cache, Entry};
use crate::copy::{self, Context, Request};
use crate::error::{BuildError, Result};
use crate::parse::{Command, Containerfile, Instr, Kind, Stage};
use crate::plan::{
    check_refs, expand_global, find_image, global_args, needed_stages, stage_ref, target_stage,
    unused_args,
};
use crate::run::{self, RunOutput, RunSpec};
use crate::state::{argv_of, State};
use crate::words;
use layerlab_core::{
    ops, ChangeKind, Counts, FileKind, IoContext, LayerDriver, LayerId, LayerPath,
};
use layerlab_drivers::{registry, Access, AnyDriver};
use layerlab_oci::{image, ImageConfig, ImageLayer, ImageRecord};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// What to build.
#[derive(Debug, Clone)]
pub struct Options {
    /// The store.
    pub root: PathBuf,
    /// The Containerfile.
    pub file: PathBuf,
    /// The context directory.
    pub context: PathBuf,
    /// The image name to record (`NAME[:TAG]`).
    pub tag: String,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--build-arg K=V`, in order.
    pub build_args: Vec<(String, String)>,
}

/// One step as reported.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Its number, 1-based over the stages built.
    pub step: usize,
    /// The instruction as written.
    pub instruction: String,
    /// Whether the cache supplied it (FROM counts as cached: it makes nothing).
    pub cached: bool,
    /// The layer it made or reused (none for metadata-only steps).
    pub layer: Option<String>,
    /// Bytes of the layer tar (0 for metadata-only steps and hits).
    pub size: u64,
    /// Seconds the step took (0 for hits).
    pub seconds: f64,
    /// The driver's counts of the step (zero for hits): layer creation, the copy or the
    /// command's file operations through the mount, the commit.
    pub counts: Counts,
}

/// What a build produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The image recorded.
    pub image: ImageRecord,
    /// Every step, in order.
    pub steps: Vec<StepReport>,
    /// `--build-arg` names no ARG declares.
    pub unused_args: Vec<String>,
}

/// What the caller shows while the build runs.
pub trait Progress {
    /// A step starts: `STEP k/N: TEXT`.
    fn start(&mut self, step: usize, total: usize, text: &str);
    /// A step ended.
    fn done(&mut self, step: &StepReport);
    /// Where a RUN command's output goes.
    fn run_output(&mut self) -> RunOutput;
}

/// The Go name of this machine's architecture, as image configs spell it.
fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Builds an image (see the module doc).
pub fn build<P: Progress>(opts: &Options, progress: &mut P) -> Result<Report> {
    let shown = opts.file.display().to_string();
    let text = std::fs::read_to_string(&opts.file).at(&opts.file)?;
    let cf = crate::parse::parse(&shown, &text)?;
    let ctx = Context::open(&opts.context)?;
    let globals = global_args(&cf, opts)?;
    let target = target_stage(&cf, opts.target.as_deref())?;
    let needed = needed_stages(&cf, target, &globals)?;
    let total = needed.iter().map(|&i| 1 + cf.stages[i].instrs.len()).sum();
    if needed.iter().any(|&i| {
        cf.stages[i]
            .instrs
            .iter()
            .any(|s| matches!(s.kind, Kind::Run(_)))
    }) {
        run::run_available().map_err(run::RunError::Unavailable)?;
    }
    let images = image::load_images(&opts.root)?;
    check_refs(&cf, &needed, &globals, &opts.root, &images)?;
    let mut driver = registry::open(&opts.root, Access::Write)?;
    let mut cache = Cache::load(&opts.root)?;
    cache.sweep(&mut driver)?;
    let mut b = Builder {
        opts,
        cf: &cf,
        ctx: &ctx,
        images,
        driver: Some(driver),
        cache,
        progress,
        globals,
        step: 0,
        total,
        steps: Vec::new(),
        done: BTreeMap::new(),
    };
    for &i in &needed {
        let state = b.stage(&cf.stages[i])?;
        b.done.insert(i, state);
    }
    let state = b.done.remove(&target).ok_or_else(|| BuildError::Parse {
        file: shown.clone(),
        line: cf.stages[target].line,
        instruction: "FROM".into(),
        reason: "the target stage was not built".into(),
    })?;
    let top = state.top.clone().ok_or_else(|| BuildError::Parse {
        file: shown.clone(),
        line: cf.stages[target].line,
        instruction: "FROM".into(),
        reason: "the image has no layers (FROM scratch without COPY, ADD or RUN)".into(),
    })?;
    let mut record = ImageRecord {
        name: opts.tag.clone(),
        id: String::new(),
        top_layer: top.to_string(),
        layers: state.layers,
        format: "build".into(),
        source: shown,
        created: Some(now()),
        platform: state
            .platform
            .or_else(|| Some(format!("linux/{}", goarch()))),
        history: state.history,
        config: Some(state.config),
    };
    record.created = record
        .history
        .last()
        .and_then(|h| h.get("created"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(record.created);
    record.id = layerlab_oci::digest::sha256(&record.config_document());
    let _held = b.driver()?;
    image::save_image(&opts.root, &record)?;
    Ok(Report {
        image: record,
        steps: b.steps,
        unused_args: unused_args(&cf, opts),
    })
}

struct Builder<'a, P> {
    opts: &'a Options,
    cf: &'a Containerfile,
    ctx: &'a Context,
    images: Vec<ImageRecord>,
    driver: Option<AnyDriver>,
    cache: Cache,
    progress: &'a mut P,
    globals: BTreeMap<String, String>,
    step: usize,
    total: usize,
    steps: Vec<StepReport>,
    done: BTreeMap<usize, State>,
}

/// What a layer step does once its key missed.
enum Work {
    Copy {
        items: Vec<copy::Item>,
        src: Option<LayerId>,
        workdir: String,
    },
    Run {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        workdir: String,
        user: String,
    },
}

impl<P: Progress> Builder<'_, P> {
    /// The driver, reopened after a RUN.
    fn driver(&mut self) -> Result<&mut AnyDriver> {
        if self.driver.is_none() {
            self.driver = Some(registry::open(&self.opts.root, Access::Write)?);
        }
        match self.driver.as_mut() {
            Some(d) => Ok(d),
            None => Err(BuildError::Context {
                context: self.opts.root.display().to_string(),
                reason: "the store could not be opened".into(),
            }),
        }
    }

    fn err(&self, ins: &Instr, reason: String) -> BuildError {
        BuildError::Parse {
            file: self.cf.file.clone(),
            line: ins.line,
            instruction: ins.keyword.clone(),
            reason,
        }
    }

    fn report(&mut self, r: StepReport) {
        self.progress.done(&r);
        self.steps.push(r);
    }

    fn stage(&mut self, stage: &Stage) -> Result<State> {
        self.step += 1;
        self.progress.start(self.step, self.total, &stage.text);
        let mut state = self.from(stage)?;
        self.report(StepReport {
            step: self.step,
            instruction: stage.text.clone(),
            cached: true,
            layer: state.top.as_ref().map(ToString::to_string),
            size: 0,
            seconds: 0.0,
            counts: Counts::default(),
        });
        for ins in &stage.instrs {
            self.step += 1;
            self.progress.start(self.step, self.total, &ins.text);
            let label = format!("{}/{}", self.step, self.total);
            self.instruction(&mut state, ins)
                .map_err(|e| BuildError::Step {
                    step: label,
                    instruction: ins.text.clone(),
                    source: Box::new(e),
                })?;
        }
        Ok(state)
    }

    fn from(&mut self, stage: &Stage) -> Result<State> {
        let base = expand_global(self.cf, &self.globals, &stage.base, stage.line)?;
        let empty = |key: String| State {
            top: None,
            layers: Vec::new(),
            history: Vec::new(),
            config: ImageConfig::default(),
            platform: None,
            key,
            missed: false,
            args: Vec::new(),
            cmd_here: false,
        };
        if base.eq_ignore_ascii_case("scratch") {
            return Ok(empty(cache::key(&["FROM", "scratch"])));
        }
        if let Some(j) = stage_ref(self.cf, &base, stage.index) {
            let mut s = self
                .done
                .get(&j)
                .cloned()
                .ok_or_else(|| BuildError::Parse {
                    file: self.cf.file.clone(),
                    line: stage.line,
                    instruction: "FROM".into(),
                    reason: format!("stage '{base}' was not built"),
                })?;
            s.key = cache::key(&["FROM", &s.key]);
            s.missed = false;
            s.args.clear();
            s.cmd_here = false;
            return Ok(s);
        }
        let img = self.image(&base).ok_or_else(|| BuildError::Parse {
            file: self.cf.file.clone(),
            line: stage.line,
            instruction: "FROM".into(),
            reason: format!("'{base}' is neither an earlier stage nor an image in the store (see `layerlab images`)"),
        })?;
        let mut s = empty(cache::key(&["FROM", &img.id, &img.top_layer]));
        s.top = Some(
            LayerId::new(&img.top_layer).map_err(|reason| BuildError::Parse {
                file: self.cf.file.clone(),
                line: stage.line,
                instruction: "FROM".into(),
                reason,
            })?,
        );
        s.layers = img.layers.clone();
        s.history = img.history.clone();
        s.config = img.config.clone().unwrap_or_default();
        s.platform = img.platform.clone();
        Ok(s)
    }

    /// An image of the store by the name `images` lists (`NAME` also finds `NAME:latest`),
    /// or by id.
    fn image(&self, name: &str) -> Option<ImageRecord> {
        find_image(&self.opts.root, &self.images, name)
    }

    fn build_arg(&self, name: &str) -> Option<String> {
        self.opts
            .build_args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn instruction(&mut self, state: &mut State, ins: &Instr) -> Result<()> {
        if matches!(ins.kind, Kind::Copy { .. } | Kind::Run(_)) {
            return self.layer_step(state, ins);
        }
        let build_arg = |name: &str| self.build_arg(name);
        let canonical = crate::state::apply_metadata(
            state,
            &ins.kind,
            self.cf.escape,
            &build_arg,
            &self.globals,
        )
        .map_err(|r| self.err(ins, r))?;
        self.metadata_step(state, ins, &canonical)
    }

    /// A step that changes the config only.
    fn metadata_step(&mut self, state: &mut State, ins: &Instr, canonical: &str) -> Result<()> {
        let key = cache::metadata_key(&state.key, canonical);
        let hit = self.lookup(state, &key)?;
        let cached = hit.is_some();
        let created = match hit {
            Some(e) => e.created,
            None => {
                state.missed = true;
                let entry = Entry {
                    key: key.clone(),
                    parent: state.top.as_ref().map(ToString::to_string),
                    layer: None,
                    instruction: ins.text.clone(),
                    created: now(),
                };
                let created = entry.created.clone();
                self.driver()?;
                self.cache.record(entry)?;
                created
            }
        };
        state.key = key;
        state.history.push(json!({
            "created": created,
            "created_by": format!("/bin/sh -c #(nop) {canonical}"),
            "empty_layer": true,
        }));
        self.report(StepReport {
            step: self.step,
            instruction: ins.text.clone(),
            cached,
            layer: None,
            size: 0,
            seconds: 0.0,
            counts: Counts::default(),
        });
        Ok(())
    }

    fn lookup(&mut self, state: &State, key: &str) -> Result<Option<Entry>> {
        if state.missed || self.opts.no_cache {
            return Ok(None);
        }
        self.driver()?;
        Ok(self
            .driver
            .as_ref()
            .and_then(|d| self.cache.lookup(d, key, state.top.as_ref())))
    }

    /// COPY, ADD or RUN: its key, then the cached layer or a new one.
    fn layer_step(&mut self, state: &mut State, ins: &Instr) -> Result<()> {
        let (key, created_by, work) = self.prepare(state, ins)?;
        if let Some(hit) = self.lookup(state, &key)? {
            if let Some(l) = hit.layer.clone() {
                state.top = LayerId::new(&l.chain_id).ok();
                state.layers.push(ImageLayer {
                    shared: true,
                    ..l.clone()
                });
                state.key = key;
                state
                    .history
                    .push(json!({"created": hit.created, "created_by": created_by}));
                self.report(StepReport {
                    step: self.step,
                    instruction: ins.text.clone(),
                    cached: true,
                    layer: Some(l.chain_id),
                    size: 0,
                    seconds: 0.0,
                    counts: Counts::default(),
                });
                return Ok(());
            }
        }
        state.missed = true;
        let started = Instant::now();
        let id = new_layer_id(&key)?;
        let parent = state.top.clone();
        self.driver()?;
        self.cache.begin(&id)?;
        let made = self.make_layer(&id, parent.as_ref(), work);
        let counts = match made {
            Ok(c) => c,
            Err(e) => {
                let d = self.driver()?;
                if d.exists(&id) {
                    d.remove_layer(&id)?;
                }
                self.cache.abandon(&id)?;
                return Err(e);
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let layer = self.describe_layer(&id)?;
        let created = now();
        self.cache.record(Entry {
            key: key.clone(),
            parent: parent.as_ref().map(ToString::to_string),
            layer: Some(layer.clone()),
            instruction: ins.text.clone(),
            created: created.clone(),
        })?;
        state.top = Some(id.clone());
        state.key = key;
        state
            .history
            .push(json!({"created": created, "created_by": created_by}));
        let size = layer.tar_size.unwrap_or(layer.size);
        state.layers.push(layer);
        self.report(StepReport {
            step: self.step,
            instruction: ins.text.clone(),
            cached: false,
            layer: Some(id.to_string()),
            size,
            seconds,
            counts,
        });
        Ok(())
    }

    /// The key, history text and work of a RUN.
    fn prepare_run(state: &State, c: &Command) -> Result<(String, String, Work)> {
        let argv = argv_of(state, c);
        let mut env: Vec<(String, String)> = state
            .config
            .env
            .iter()
            .flatten()
            .filter_map(|e| {
                e.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        for (k, v) in &state.args {
            if !env.iter().any(|(e, _)| e == k) {
                env.push((k.clone(), v.clone()));
            }
        }
        let workdir = state.workdir();
        let user = state.config.user.clone().unwrap_or_default();
        let key = cache::run_key(&state.key, &argv, &state.args, &env, &workdir, &user);
        let created_by = match c {
            Command::Shell(_) => argv.join(" "),
            Command::Exec(a) => a.join(" "),
        };
        Ok((
            key,
            created_by,
            Work::Run {
                argv,
                env,
                workdir,
                user,
            },
        ))
    }

    /// The key, the history text and the work of a layer step.
    fn prepare(&mut self, state: &State, ins: &Instr) -> Result<(String, String, Work)> {
        let esc = self.cf.escape;
        let look = |n: &str| state.env(n);
        let perr = |reason: String| BuildError::Parse {
            file: self.cf.file.clone(),
            line: ins.line,
            instruction: ins.keyword.clone(),
            reason,
        };
        let x = |w: &str| words::expand(w, &look, esc).map_err(perr);
        match &ins.kind {
            Kind::Run(c) => Self::prepare_run(state, c),
            Kind::Copy {
                add,
                from,
                chown,
                chmod,
                srcs,
                dest,
            } => {
                let srcs = srcs.iter().map(|s| x(s)).collect::<Result<Vec<_>>>()?;
                let dest_raw = x(dest)?;
                let mut dest_abs = if dest_raw.starts_with('/') {
                    dest_raw.clone()
                } else {
                    format!("{}/{dest_raw}", state.workdir().trim_end_matches('/'))
                };
                let cleaned = format!(
                    "/{}",
                    crate::ignore::clean(&dest_abs)
                        .unwrap_or_default()
                        .join("/")
                );
                if dest_raw.ends_with('/') || dest_raw == "." {
                    dest_abs = format!("{}/", cleaned.trim_end_matches('/'));
                } else {
                    dest_abs = cleaned;
                }
                let mode = match chmod {
                    Some(m) => Some(
                        layerlab_core::mode::parse(&x(m)?)
                            .map_err(|er| self.err(ins, format!("--chmod: {er}")))?,
                    ),
                    None => None,
                };
                let owner = match chown {
                    Some(o) => Some(
                        self.owner(state, &x(o)?)
                            .map_err(|r| self.err(ins, format!("--chown: {r}")))?,
                    ),
                    None => None,
                };
                let from = from.as_deref().map(x).transpose()?;
                let src_layer = match &from {
                    None => None,
                    Some(f) => Some(self.source_layer(f, ins)?),
                };
                let dest_is_dir = match &state.top {
                    Some(top) => {
                        let top = top.clone();
                        let d = self.driver()?;
                        LayerPath::parse(dest_abs.trim_end_matches('/'))
                            .ok()
                            .and_then(|p| d.stat(&top, &p).ok())
                            .is_some_and(|m| m.kind == FileKind::Dir)
                    }
                    None => false,
                };
                let req = Request {
                    add: *add,
                    srcs: &srcs,
                    dest: &dest_abs,
                    owner,
                    mode,
                };
                let items = match &src_layer {
                    None => copy::from_context(self.ctx, &req, dest_is_dir)?,
                    Some(l) => {
                        let l = l.clone();
                        copy::from_layer(self.driver()?, &l, &req, dest_is_dir)?
                    }
                };
                let d = self.driver()?;
                let sum = copy::checksum(d, src_layer.as_ref(), &items)?;
                let mut canonical = (if *add { "ADD" } else { "COPY" }).to_string();
                if let Some(f) = &from {
                    canonical.push_str(&format!(" --from={f}"));
                }
                if let Some((u, g)) = owner {
                    canonical.push_str(&format!(" --chown={u}:{g}"));
                }
                if let Some(m) = mode {
                    canonical.push_str(&format!(" --chmod={m:o}"));
                }
                canonical.push_str(&format!(" {} {dest_abs}", srcs.join(" ")));
                let key = cache::copy_key(&state.key, &canonical, &sum);
                let created_by = format!("/bin/sh -c #(nop) {canonical} ({sum})");
                Ok((
                    key,
                    created_by,
                    Work::Copy {
                        items,
                        src: src_layer,
                        workdir: state.workdir(),
                    },
                ))
            }
            _ => Err(self.err(ins, "not a layer step".into())),
        }
    }

    /// The top layer `COPY --from` reads: a stage built before, or an image.
    fn source_layer(&self, from: &str, ins: &Instr) -> Result<LayerId> {
        let here = self.done.keys().max().map_or(0, |m| m + 1);
        if let Some(j) = stage_ref(self.cf, from, self.cf.stages.len()) {
            if let Some(s) = self.done.get(&j) {
                return s
                    .top
                    .clone()
                    .ok_or_else(|| self.err(ins, format!("stage '{from}' has no layers")));
            }
            if j >= here {
                return Err(self.err(
                    ins,
                    format!("--from={from} names this stage or a later one"),
                ));
            }
        }
        let img = self.image(from).ok_or_else(|| {
            self.err(
                ins,
                format!("--from={from}: no stage or image of that name"),
            )
        })?;
        LayerId::new(&img.top_layer).map_err(|r| self.err(ins, r))
    }

    /// `--chown` through the image's `/etc/passwd` and `/etc/group` when names are used.
    fn owner(&mut self, state: &State, spec: &str) -> std::result::Result<(u32, u32), String> {
        let mut read = |path: &str| -> String {
            let Some(top) = state.top.clone() else {
                return String::new();
            };
            let Ok(d) = self.driver() else {
                return String::new();
            };
            LayerPath::parse(path)
                .ok()
                .and_then(|p| ops::read_all(d, &top, &p).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let passwd = read("/etc/passwd");
        let group = read("/etc/group");
        copy::owner(spec, &passwd, &group)
    }

    /// Creates, fills and commits the layer; returns the driver's counts of the step.
    fn make_layer(&mut self, id: &LayerId, parent: Option<&LayerId>, work: Work) -> Result<Counts> {
        let d = self.driver()?;
        let before = d.meter().counts;
        d.create_layer(id, parent)?;
        let mut counts = match work {
            Work::Copy {
                items,
                src,
                workdir,
            } => {
                // WORKDIR's directory appears in the next layer, as buildah makes it
                let wd = LayerPath::parse(&workdir).map_err(|e| BuildError::Context {
                    context: workdir.clone(),
                    reason: e.to_string(),
                })?;
                if d.stat(id, &wd).is_err() {
                    ops::mkdir_p(d, id, &wd, 0o755)?;
                }
                let tar = copy::write_tar(d, src.as_ref(), &items)?;
                let label = format!("COPY into layer {id}");
                let parsed =
                    layerlab_oci::tar_in::parse(&label, tar, &layerlab_oci::Limits::default())?;
                layerlab_oci::apply_parsed(d, id, &parsed)?;
                d.meter().counts.since(&before)
            }
            Work::Run {
                argv,
                env,
                workdir,
                user,
            } => {
                let c = d.meter().counts.since(&before);
                self.driver = None;
                let spec = RunSpec {
                    store: self.opts.root.clone(),
                    layer: id.clone(),
                    argv: argv.clone(),
                    env,
                    workdir,
                    user,
                    output: self.progress.run_output(),
                };
                let outcome = run::run_step(spec)?;
                if !outcome.success() {
                    return Err(BuildError::RunFailed {
                        command: argv.join(" "),
                        status: outcome.status,
                    });
                }
                let mut c = c;
                c.add(&outcome.totals.counts);
                c
            }
        };
        let d = self.driver()?;
        let before_commit = d.meter().counts;
        d.commit(id)?;
        counts.add(&d.meter().counts.since(&before_commit));
        Ok(counts)
    }

    /// The layer as an image layer: its diff id, tar and gzip sizes, content bytes.
    fn describe_layer(&mut self, id: &LayerId) -> Result<ImageLayer> {
        let d = self.driver()?;
        let sink = TarSizes::default();
        let (sink, summary) =
            layerlab_oci::write_diff(d, id, sink, &layerlab_oci::DiffOptions::default())?;
        let gzip = sink.gz.finish().at(id.as_str())?.0;
        let mut content = 0u64;
        for c in d.changes(id)? {
            if c.kind != ChangeKind::Deleted {
                if let Ok(md) = d.stat(id, &c.path) {
                    if md.kind == FileKind::File {
                        content += md.size;
                    }
                }
            }
        }
        Ok(ImageLayer {
            chain_id: id.to_string(),
            diff_id: summary.diff_id,
            size: content,
            shared: false,
            tar_size: Some(summary.size),
            gzip_size: Some(gzip),
        })
    }
}

/// A fresh layer id: 64 hex digits from the step's key, the time and the process.
fn new_layer_id(key: &str) -> Result<LayerId> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let k = cache::key(&[key, &nanos.to_string(), &std::process::id().to_string()]);
    let hex = k.trim_start_matches("sha256:");
    LayerId::new(hex).map_err(|reason| BuildError::Context {
        context: key.to_string(),
        reason,
    })
}

/// Counts the tar's bytes and their gzip size.
struct TarSizes {
    gz: flate2::write::GzEncoder<Count>,
}

impl Default for TarSizes {
    fn default() -> Self {
        TarSizes {
            gz: flate2::write::GzEncoder::new(Count(0), flate2::Compression::default()),
        }
    }
}

struct Count(u64);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Write for TarSizes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.gz.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.gz.flush()
    }
}
