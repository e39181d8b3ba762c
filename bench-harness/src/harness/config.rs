//! Experiments: TOML files in `configs/` (keys documented in configs/README.md). A mistake
//! is reported with the file, line, column and key before anything runs.

pub use super::driver_spec::DriverSpec;
use super::driver_spec::{DriverEntry, DriverList};
use super::error::{HarnessError, Result};
use super::profile::Profile;
use super::toml_errors::{error_at_key, find_key, qualify, spanned_error, toml_error};
use super::workloads::{
    replay, CopyUp, MetadataOps, Mixed, ReadDepth, Replay, Sharing, Snapshot, Workload,
    WorkloadSpec,
};
use layerlab_drivers::{registry, Options};
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

/// The standard experiment, embedded (`configs/standard.toml`).
pub const STANDARD: &str = include_str!("../../../configs/standard.toml");
/// The quick experiment, embedded (`configs/quick.toml`).
pub const QUICK: &str = include_str!("../../../configs/quick.toml");
/// Trace files the embedded experiments use: (path relative to `configs/`, text).
pub const EMBEDDED_TRACES: &[(&str, &str)] = &[(
    "traces/web-app.jsonl",
    include_str!("../../../configs/traces/web-app.jsonl"),
)];

/// A loaded, checked experiment.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The experiment's name (also the default output directory `reports/<name>/`).
    pub name: String,
    /// One line for people.
    pub description: String,
    /// The seed every generated workload derives from.
    pub seed: u64,
    /// Repetitions of each workload (a workload may override it).
    pub repetitions: u32,
    /// The drivers, in order.
    pub drivers: Vec<DriverSpec>,
    /// The device profiles modelled.
    pub profiles: Vec<Profile>,
    /// The workloads, in the file's order.
    pub workloads: Vec<WorkloadSpec>,
    /// Where it was read from (a path, or `<embedded standard.toml>`).
    pub source: String,
    /// The configuration text (hashed into environment.json).
    pub text: String,
    /// True once shrunk by [`Experiment::quick`].
    pub quick: bool,
}

// ----- the file as written ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExperiment {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "default_seed")]
    seed: u64,
    #[serde(default)]
    repetitions: Option<Spanned<u32>>,
    #[serde(default)]
    drivers: Option<Spanned<DriverList>>,
    #[serde(default)]
    profiles: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    workload: RawWorkloads,
    /// `[sweep]`: read and checked by `harness::sweep` (which expands the workloads).
    #[serde(default)]
    #[allow(dead_code)]
    sweep: Option<serde::de::IgnoredAny>,
}

fn default_seed() -> u64 {
    42
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkloads {
    #[serde(rename = "copy-up", default)]
    copy_up: Vec<Spanned<CopyUp>>,
    #[serde(rename = "read-depth", default)]
    read_depth: Vec<Spanned<ReadDepth>>,
    #[serde(default)]
    metadata: Vec<Spanned<MetadataOps>>,
    #[serde(default)]
    snapshot: Vec<Spanned<Snapshot>>,
    #[serde(default)]
    sharing: Vec<Spanned<Sharing>>,
    #[serde(default)]
    mixed: Vec<Spanned<Mixed>>,
    #[serde(default)]
    replay: Vec<Spanned<Replay>>,
}

// ----- loading ----------------------------------------------------------------------------------

impl Experiment {
    /// Reads and checks an experiment file. Profiles are taken from `profiles/NAME.toml`
    /// beside the file when there, else from the embedded ones; trace paths are relative to
    /// the file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Experiment> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| HarnessError::io(path, e))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Experiment::parse(&text, &path.display().to_string(), Some(&dir))
    }

    /// Parses an experiment from text; `base` is the directory files are relative to
    /// (`None`: only embedded profiles and traces).
    pub fn parse(text: &str, file: &str, base: Option<&Path>) -> Result<Experiment> {
        let src = Src { file, text, base };
        let raw: RawExperiment = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        let name = src.name(&raw.name)?;
        let repetitions = match &raw.repetitions {
            None => 1,
            Some(r) if *r.get_ref() == 0 || *r.get_ref() > 1000 => {
                return Err(src.at(r.span(), "repetitions", "1 to 1000 repetitions".into()))
            }
            Some(r) => *r.get_ref(),
        };
        let drivers = src.drivers(raw.drivers)?;
        let profiles = src.profiles(raw.profiles)?;
        let workloads = src.workloads(raw.workload)?;
        Ok(Experiment {
            name,
            description: raw.description,
            seed: raw.seed,
            repetitions,
            drivers,
            profiles,
            workloads,
            source: file.to_string(),
            text: text.to_string(),
            quick: false,
        })
    }

    /// The embedded standard experiment (`configs/standard.toml`), checked.
    pub fn try_standard() -> Result<Experiment> {
        Experiment::parse(STANDARD, "<embedded configs/standard.toml>", None)
    }

    /// The embedded standard experiment. The embedded text is checked by the tests; should
    /// it ever fail to load, this is a one-workload copy-up experiment on every driver.
    pub fn standard() -> Experiment {
        Experiment::try_standard().unwrap_or_else(|_| Experiment::fallback())
    }

    /// The embedded quick experiment (`configs/quick.toml`), checked.
    pub fn try_quick_config() -> Result<Experiment> {
        Experiment::parse(QUICK, "<embedded configs/quick.toml>", None)
    }

    fn fallback() -> Experiment {
        Experiment {
            name: "standard".into(),
            description: String::new(),
            seed: 42,
            repetitions: 1,
            drivers: DriverSpec::all_available(),
            profiles: Profile::all_embedded().unwrap_or_default(),
            workloads: vec![CopyUp {
                sizes: vec![layerlab_core::size::Size(4096)],
                write: layerlab_core::size::Size(1),
                repetitions: None,
                image: None,
                rounds: None,
            }
            .into()],
            source: "<fallback>".into(),
            text: String::new(),
            quick: false,
        }
    }

    /// The same experiment shrunk for `--quick`: sizes at most 1 MiB, depths at most 16,
    /// one repetition, small images; a whole run takes seconds.
    pub fn quick(mut self) -> Experiment {
        for w in &mut self.workloads {
            w.shrink();
        }
        self.repetitions = 1;
        self.quick = true;
        self
    }

    /// The repetitions of a workload.
    pub fn repetitions_of(&self, w: &WorkloadSpec) -> u32 {
        if self.quick {
            1
        } else {
            w.repetitions().unwrap_or(self.repetitions)
        }
    }
}

/// An experiment file being read: its name (for errors), text and directory.
struct Src<'a> {
    file: &'a str,
    text: &'a str,
    base: Option<&'a Path>,
}

impl Src<'_> {
    /// A config error at `span`, naming `key`.
    fn at(&self, span: Range<usize>, key: &str, msg: String) -> HarnessError {
        spanned_error(
            self.file,
            self.text,
            &span,
            qualify(self.text, span.start, Some(key.to_string())),
            msg,
        )
    }

    /// A config error at the key `key` within the table at `span`.
    fn at_key(&self, span: Range<usize>, key: &str, msg: String) -> HarnessError {
        let s = find_key(self.text, span, key);
        self.at(s, key, msg)
    }

    /// A config error at the line of `key`, found by its name (no span to point at).
    fn at_named_key(&self, key: &str, msg: &str) -> HarnessError {
        error_at_key(self.file, self.text, key, msg)
    }

    /// The experiment's name: letters, digits, `-`, `_`, `.` (it names a directory).
    fn name(&self, raw: &Spanned<String>) -> Result<String> {
        let name = raw.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            || name.starts_with('.')
        {
            return Err(self.at(
                raw.span(),
                "name",
                "a name of letters, digits, '-', '_' and '.' (it names the output directory)"
                    .into(),
            ));
        }
        Ok(name)
    }

    /// The drivers: every available one by default or for `"all"`, each label once, every
    /// driver's options checked by creating a scratch store.
    fn drivers(&self, raw: Option<Spanned<DriverList>>) -> Result<Vec<DriverSpec>> {
        let all = DriverSpec::all_available;
        let mut drivers: Vec<(Range<usize>, DriverSpec)> = Vec::new();
        let whole = raw.as_ref().map(|d| d.span()).unwrap_or(0..0);
        match raw.map(Spanned::into_inner) {
            None | Some(DriverList::All) => {
                drivers.extend(all().into_iter().map(|d| (whole.clone(), d)));
            }
            Some(DriverList::List(list)) => {
                if list.is_empty() {
                    return Err(self.at(
                        whole,
                        "drivers",
                        "name at least one driver, or \"all\"".into(),
                    ));
                }
                for e in list {
                    let span = e.span();
                    match e.into_inner() {
                        DriverEntry::All => {
                            drivers.extend(all().into_iter().map(|d| (span.clone(), d)))
                        }
                        DriverEntry::One(d) => drivers.push((span, d)),
                    }
                }
            }
        }
        let mut seen: Vec<(String, Options)> = Vec::new();
        let mut unique = Vec::new();
        for (span, d) in drivers {
            if let Some((_, o)) = seen.iter().find(|(l, _)| *l == d.label) {
                if *o == d.options {
                    continue; // "all" plus a plain name: the same driver twice.
                }
                return Err(self.at(
                    span,
                    "drivers",
                    format!("two drivers are labelled '{}'", d.label),
                ));
            }
            seen.push((d.label.clone(), d.options.clone()));
            unique.push((span, d));
        }
        check_driver_options(&unique).map_err(|(span, msg)| self.at(span, "drivers", msg))?;
        Ok(unique.into_iter().map(|(_, d)| d).collect())
    }

    /// The device profiles: every embedded one by default, else each named one from
    /// `profiles/NAME.toml` beside the file or embedded, each once.
    fn profiles(&self, raw: Option<Vec<Spanned<String>>>) -> Result<Vec<Profile>> {
        let Some(list) = raw else {
            return Profile::all_embedded();
        };
        if list.is_empty() {
            return Err(self.at_named_key("profiles", "name at least one profile"));
        }
        let mut out: Vec<Profile> = Vec::new();
        for p in list {
            let prof = load_profile(p.get_ref(), self.base)?.ok_or_else(|| {
                let names: Vec<&str> = super::profile::EMBEDDED.iter().map(|(n, _)| *n).collect();
                self.at(
                    p.span(),
                    "profiles",
                    format!(
                        "no profile '{}' (profiles/{}.toml or embedded: {})",
                        p.get_ref(),
                        p.get_ref(),
                        names.join(", ")
                    ),
                )
            })?;
            if out.iter().any(|q| q.name == prof.name) {
                return Err(self.at(
                    p.span(),
                    "profiles",
                    format!("profile '{}' is listed twice", prof.name),
                ));
            }
            out.push(prof);
        }
        Ok(out)
    }

    /// Image archives resolved from the file's directory; a missing one is an error on
    /// the `image` key.
    fn resolve_images(&self, w: &mut RawWorkloads) -> Result<()> {
        let images = w
            .copy_up
            .iter_mut()
            .map(|s| (s.span(), &mut s.get_mut().image))
            .chain(
                w.read_depth
                    .iter_mut()
                    .map(|s| (s.span(), &mut s.get_mut().image)),
            )
            .chain(
                w.mixed
                    .iter_mut()
                    .map(|s| (s.span(), &mut s.get_mut().image)),
            );
        for (span, image) in images {
            let Some(image) = image else { continue };
            if image.archive.is_relative() {
                if let Some(dir) = self.base {
                    image.archive = dir.join(&image.archive);
                }
            }
            if !image.archive.exists() {
                return Err(self.at_key(
                    span,
                    "image",
                    format!("no image archive at '{}'", image.archive.display()),
                ));
            }
        }
        Ok(())
    }

    /// The workloads in the file's order, images resolved, traces read, every one checked.
    fn workloads(&self, mut w: RawWorkloads) -> Result<Vec<WorkloadSpec>> {
        self.resolve_images(&mut w)?;
        fn take<T: Into<WorkloadSpec>>(
            v: Vec<Spanned<T>>,
            out: &mut Vec<(Range<usize>, WorkloadSpec)>,
        ) {
            for s in v {
                let span = s.span();
                out.push((span, s.into_inner().into()));
            }
        }
        let mut workloads: Vec<(Range<usize>, WorkloadSpec)> = Vec::new();
        take(w.copy_up, &mut workloads);
        take(w.read_depth, &mut workloads);
        take(w.metadata, &mut workloads);
        take(w.snapshot, &mut workloads);
        take(w.sharing, &mut workloads);
        take(w.mixed, &mut workloads);
        for s in w.replay {
            let span = s.span();
            let mut r = s.into_inner();
            let (trace_text, trace_file) = read_trace(&r.trace, self.base).ok_or_else(|| {
                self.at_key(
                    span.clone(),
                    "trace",
                    format!("cannot read trace file '{}'", r.trace),
                )
            })?;
            r.steps = Arc::new(replay::parse_trace(&trace_text, &trace_file)?);
            workloads.push((span, r.into()));
        }
        workloads.sort_by_key(|(s, _)| s.start);
        for (span, wl) in &workloads {
            if let Err((key, msg)) = wl.check() {
                return Err(self.at_key(span.clone(), &key, msg));
            }
            if wl.repetitions() == Some(0) {
                return Err(self.at_key(
                    span.clone(),
                    "repetitions",
                    "at least 1 repetition".into(),
                ));
            }
        }
        if workloads.is_empty() {
            return Err(self.at_named_key("name", "the experiment has no [[workload.KIND]] tables"));
        }
        Ok(workloads.into_iter().map(|(_, w)| w).collect())
    }
}

/// Creates each driver's store once in a scratch directory, so that a bad option value is
/// a config error before anything runs.
fn check_driver_options(
    drivers: &[(Range<usize>, DriverSpec)],
) -> std::result::Result<(), (Range<usize>, String)> {
    let scratch = tempfile::Builder::new()
        .prefix(".layerlab-check-")
        .tempdir()
        .map_err(|e| (0..0, format!("cannot make a scratch directory: {e}")))?;
    for (i, (span, d)) in drivers.iter().enumerate() {
        if d.options.is_empty() {
            continue;
        }
        let root = scratch.path().join(i.to_string());
        if let Err(e) = registry::init(&d.name, &root, d.options.clone()) {
            return Err((span.clone(), format!("driver '{}': {e}", d.label)));
        }
    }
    Ok(())
}

fn load_profile(name: &str, base: Option<&Path>) -> Result<Option<Profile>> {
    if let Some(dir) = base {
        let p: PathBuf = dir.join("profiles").join(format!("{name}.toml"));
        if p.is_file() {
            let text = std::fs::read_to_string(&p).map_err(|e| HarnessError::io(&p, e))?;
            return Profile::parse(&text, &p.display().to_string()).map(Some);
        }
    }
    Profile::embedded(name).transpose()
}

fn read_trace(rel: &str, base: Option<&Path>) -> Option<(String, String)> {
    if let Some(dir) = base {
        let p = dir.join(rel);
        if let Ok(t) = std::fs::read_to_string(&p) {
            return Some((t, p.display().to_string()));
        }
    }
    let norm = rel.trim_start_matches("./");
    EMBEDDED_TRACES
        .iter()
        .find(|(n, _)| *n == norm)
        .map(|(n, t)| (t.to_string(), format!("<embedded configs/{n}>")))
}
