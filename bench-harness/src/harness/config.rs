//! Experiments: TOML files in `configs/` (keys documented in configs/README.md). A mistake
//! is reported with the file, line, column and key before anything runs.

use super::error::{HarnessError, Result};
use super::profile::Profile;
use super::workloads::{
    replay, CopyUp, MetadataOps, Mixed, ReadDepth, Replay, Sharing, Snapshot, Workload,
    WorkloadSpec,
};
use layerlab_drivers::{registry, Options, DRIVERS};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
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

/// A driver as an experiment runs it: registry name, options, and the label its rows carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverSpec {
    /// The registry name.
    pub name: String,
    /// The label of its rows (`overlay2+metacopy`).
    pub label: String,
    /// The options the store is created with.
    pub options: Options,
}

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
    sweep: Option<de::IgnoredAny>,
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

/// `drivers = "all"` or a list of names, `"all"`, and tables.
#[derive(Debug)]
enum DriverList {
    All,
    List(Vec<Spanned<DriverEntry>>),
}

#[derive(Debug)]
enum DriverEntry {
    All,
    One(DriverSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DriverTable {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    opts: BTreeMap<String, toml::Value>,
}

fn known_drivers() -> String {
    DRIVERS
        .iter()
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn driver_spec(
    name: &str,
    label: Option<String>,
    opts: Options,
) -> std::result::Result<DriverSpec, String> {
    let Some(info) = registry::info(name) else {
        return Err(format!(
            "unknown driver '{name}' (registered: {}, or \"all\")",
            known_drivers()
        ));
    };
    for k in opts.keys() {
        if !info.options.iter().any(|o| o.key == k) {
            let known: Vec<&str> = info.options.iter().map(|o| o.key).collect();
            return Err(if known.is_empty() {
                format!("driver '{name}' takes no options (got '{k}')")
            } else {
                format!(
                    "driver '{name}' has no option '{k}' (known: {})",
                    known.join(", ")
                )
            });
        }
    }
    let label = label.unwrap_or_else(|| default_label(name, &opts));
    if label.is_empty() || label.contains([',', '"', '\n', '/']) {
        return Err(format!(
            "label '{label}' must be non-empty, without , \" / or newlines"
        ));
    }
    Ok(DriverSpec {
        name: name.to_string(),
        label,
        options: opts,
    })
}

/// `overlay2` with `metacopy=on` is `overlay2+metacopy`; other values give `+key=value`.
fn default_label(name: &str, opts: &Options) -> String {
    let mut label = name.to_string();
    for (k, v) in opts {
        match v.as_str() {
            "on" | "true" | "1" | "yes" => label.push_str(&format!("+{k}")),
            _ => label.push_str(&format!("+{k}={v}")),
        }
    }
    label
}

impl<'de> Deserialize<'de> for DriverEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DriverEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a driver name, \"all\", or a table { name, label, opts }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<DriverEntry, E> {
                if v == "all" {
                    return Ok(DriverEntry::All);
                }
                driver_spec(v, None, Options::new())
                    .map(DriverEntry::One)
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<DriverEntry, A::Error> {
                let t = DriverTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let mut opts = Options::new();
                for (k, v) in t.opts {
                    let text = match v {
                        toml::Value::String(s) => s,
                        toml::Value::Boolean(b) => if b { "on" } else { "off" }.to_string(),
                        toml::Value::Integer(i) => i.to_string(),
                        other => {
                            return Err(de::Error::custom(format!(
                                "option '{k}': expected a string, boolean or integer, got {}",
                                other.type_str()
                            )))
                        }
                    };
                    opts.insert(k, text);
                }
                driver_spec(&t.name, t.label, opts)
                    .map(DriverEntry::One)
                    .map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for DriverList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DriverList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\" or a list of drivers")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<DriverList, E> {
                if v == "all" {
                    Ok(DriverList::All)
                } else {
                    Err(E::custom(format!(
                        "expected \"all\" or a list such as [\"{v}\"]"
                    )))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<DriverList, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = seq.next_element::<Spanned<DriverEntry>>()? {
                    out.push(e);
                }
                Ok(DriverList::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

// ----- errors with positions ------------------------------------------------------------------

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '"'
}

/// The table header (`[[workload.copy-up]]` gives `workload.copy-up`) in force at `pos`.
fn header_at(text: &str, pos: usize) -> Option<String> {
    // Include the line `pos` is on, in case the span starts at a header.
    let pos = pos.min(text.len());
    let end = text[pos..]
        .find('\n')
        .map(|i| pos + i)
        .unwrap_or(text.len());
    text.get(..end)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
}

/// The key a span is about: the key itself when the span starts on it, else the key of
/// the nearest `key =` before it; with its table header as a prefix.
fn key_at(text: &str, span: &Range<usize>) -> String {
    let start = span.start.min(text.len());
    let rest = &text[start..];
    let head: String = rest.chars().take_while(|&c| is_key_char(c)).collect();
    let after = rest[head.len()..].trim_start();
    let key = if !head.is_empty() && after.starts_with('=') {
        Some(head.trim_matches('"').to_string())
    } else if rest.starts_with('[') && span.end > start {
        None
    } else {
        text[..start].rfind('=').and_then(|eq| {
            let k: String = text[..eq]
                .trim_end()
                .chars()
                .rev()
                .take_while(|&c| is_key_char(c))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            (!k.is_empty()).then(|| k.trim_matches('"').to_string())
        })
    };
    qualify(text, start, key)
}

fn qualify(text: &str, pos: usize, key: Option<String>) -> String {
    let header = header_at(text, pos);
    match (header, key) {
        (Some(h), Some(k)) if !k.starts_with(&format!("{h}.")) => format!("{h}.{k}"),
        (_, Some(k)) => k,
        (Some(h), None) => h,
        (None, None) => "(top level)".to_string(),
    }
}

/// The key a serde message names (`unknown field `x``, `missing field `x``).
fn key_in_message(msg: &str) -> Option<String> {
    for phrase in [
        "unknown field `",
        "missing field `",
        "duplicate key `",
        "duplicate field `",
    ] {
        if let Some(i) = msg.find(phrase) {
            let rest = &msg[i + phrase.len()..];
            return rest.find('`').map(|j| rest[..j].to_string());
        }
    }
    None
}

/// A config error from a TOML parse or deserialize error.
pub fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> HarnessError {
    let span = e.span().unwrap_or(0..0);
    let message = e.message().trim().to_string();
    let key = match key_in_message(&message) {
        Some(k) => qualify(text, span.start, Some(k)),
        None => key_at(text, &span),
    };
    spanned_error(file, text, &span, key, message)
}

fn spanned_error(
    file: &str,
    text: &str,
    span: &Range<usize>,
    key: String,
    message: String,
) -> HarnessError {
    let (line, column) = line_col(text, span.start);
    HarnessError::Config {
        file: file.to_string(),
        line,
        column,
        key,
        message,
    }
}

/// A config error at the first `key =` of the file (used for checks after parsing).
pub fn error_at_key(file: &str, text: &str, key: &str, message: &str) -> HarnessError {
    let span = find_key(text, 0..text.len(), key);
    spanned_error(
        file,
        text,
        &span,
        qualify(text, span.start, Some(key.to_string())),
        message.to_string(),
    )
}

/// The end of the table that starts at `start`: the next `[` header line, or the end.
fn table_end(text: &str, start: usize) -> usize {
    let from = text[start.min(text.len())..]
        .find('\n')
        .map(|i| start + i + 1)
        .unwrap_or(text.len());
    let mut pos = from;
    for line in text[from..].split_inclusive('\n') {
        if line.trim_start().starts_with('[') {
            return pos;
        }
        pos += line.len();
    }
    text.len()
}

/// The position of `key =` inside the table whose span is `within` (the span of a table of
/// an array of tables may cover its header only, so the search runs to the next header),
/// or the start of `within`.
fn find_key(text: &str, within: Range<usize>, key: &str) -> Range<usize> {
    let within = within.start..within.end.max(table_end(text, within.start));
    let hay = text.get(within.clone()).unwrap_or("");
    let mut from = 0;
    while let Some(i) = hay[from..].find(key) {
        let at = from + i;
        let before_ok = at == 0
            || hay[..at]
                .chars()
                .next_back()
                .is_some_and(|c| !is_key_char(c) || c == '.');
        let after = hay[at + key.len()..].trim_start();
        if before_ok && after.starts_with('=') {
            return within.start + at..within.start + at + key.len();
        }
        from = at + key.len();
    }
    within.start..within.start
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
        let raw: RawExperiment = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        let at = |span: Range<usize>, key: &str, msg: String| {
            spanned_error(
                file,
                text,
                &span,
                qualify(text, span.start, Some(key.to_string())),
                msg,
            )
        };
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            || name.starts_with('.')
        {
            return Err(at(
                raw.name.span(),
                "name",
                "a name of letters, digits, '-', '_' and '.' (it names the output directory)"
                    .into(),
            ));
        }
        let repetitions = match &raw.repetitions {
            None => 1,
            Some(r) if *r.get_ref() == 0 || *r.get_ref() > 1000 => {
                return Err(at(r.span(), "repetitions", "1 to 1000 repetitions".into()))
            }
            Some(r) => *r.get_ref(),
        };
        // Drivers.
        let all = || -> Vec<DriverSpec> {
            DRIVERS
                .iter()
                .filter(|d| d.is_available())
                .map(|d| DriverSpec {
                    name: d.name.to_string(),
                    label: d.name.to_string(),
                    options: Options::new(),
                })
                .collect()
        };
        let mut drivers: Vec<(Range<usize>, DriverSpec)> = Vec::new();
        let whole = raw.drivers.as_ref().map(|d| d.span()).unwrap_or(0..0);
        match raw.drivers.map(Spanned::into_inner) {
            None | Some(DriverList::All) => {
                drivers.extend(all().into_iter().map(|d| (whole.clone(), d)));
            }
            Some(DriverList::List(list)) => {
                if list.is_empty() {
                    return Err(at(
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
                return Err(at(
                    span,
                    "drivers",
                    format!("two drivers are labelled '{}'", d.label),
                ));
            }
            seen.push((d.label.clone(), d.options.clone()));
            unique.push((span, d));
        }
        check_driver_options(&unique).map_err(|(span, msg)| at(span, "drivers", msg))?;
        let drivers: Vec<DriverSpec> = unique.into_iter().map(|(_, d)| d).collect();
        // Profiles.
        let profiles = match raw.profiles {
            None => Profile::all_embedded()?,
            Some(list) => {
                if list.is_empty() {
                    return Err(error_at_key(
                        file,
                        text,
                        "profiles",
                        "name at least one profile",
                    ));
                }
                let mut out: Vec<Profile> = Vec::new();
                for p in list {
                    let prof = load_profile(p.get_ref(), base)?.ok_or_else(|| {
                        let names: Vec<&str> =
                            super::profile::EMBEDDED.iter().map(|(n, _)| *n).collect();
                        at(
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
                        return Err(at(
                            p.span(),
                            "profiles",
                            format!("profile '{}' is listed twice", prof.name),
                        ));
                    }
                    out.push(prof);
                }
                out
            }
        };
        // Workloads, in the file's order.
        let mut workloads: Vec<(Range<usize>, WorkloadSpec)> = Vec::new();
        let mut w = raw.workload;
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
                if let Some(dir) = base {
                    image.archive = dir.join(&image.archive);
                }
            }
            if !image.archive.exists() {
                let s = find_key(text, span, "image");
                return Err(spanned_error(
                    file,
                    text,
                    &s,
                    qualify(text, s.start, Some("image".into())),
                    format!("no image archive at '{}'", image.archive.display()),
                ));
            }
        }
        fn take<T: Into<WorkloadSpec>>(
            v: Vec<Spanned<T>>,
            out: &mut Vec<(Range<usize>, WorkloadSpec)>,
        ) {
            for s in v {
                let span = s.span();
                out.push((span, s.into_inner().into()));
            }
        }
        take(w.copy_up, &mut workloads);
        take(w.read_depth, &mut workloads);
        take(w.metadata, &mut workloads);
        take(w.snapshot, &mut workloads);
        take(w.sharing, &mut workloads);
        take(w.mixed, &mut workloads);
        let replays: Vec<(Range<usize>, Replay)> = w
            .replay
            .into_iter()
            .map(|s| (s.span(), s.into_inner()))
            .collect();
        for (span, mut r) in replays {
            let (trace_text, trace_file) = read_trace(&r.trace, base).ok_or_else(|| {
                let s = find_key(text, span.clone(), "trace");
                spanned_error(
                    file,
                    text,
                    &s,
                    qualify(text, s.start, Some("trace".into())),
                    format!("cannot read trace file '{}'", r.trace),
                )
            })?;
            r.steps = Arc::new(replay::parse_trace(&trace_text, &trace_file)?);
            workloads.push((span, r.into()));
        }
        workloads.sort_by_key(|(s, _)| s.start);
        for (span, wl) in &workloads {
            if let Err((key, msg)) = wl.check() {
                let s = find_key(text, span.clone(), &key);
                return Err(spanned_error(
                    file,
                    text,
                    &s,
                    qualify(text, s.start, Some(key)),
                    msg,
                ));
            }
            if wl.repetitions() == Some(0) {
                let s = find_key(text, span.clone(), "repetitions");
                return Err(spanned_error(
                    file,
                    text,
                    &s,
                    qualify(text, s.start, Some("repetitions".into())),
                    "at least 1 repetition".into(),
                ));
            }
        }
        if workloads.is_empty() {
            return Err(error_at_key(
                file,
                text,
                "name",
                "the experiment has no [[workload.KIND]] tables",
            ));
        }
        Ok(Experiment {
            name,
            description: raw.description,
            seed: raw.seed,
            repetitions,
            drivers,
            profiles,
            workloads: workloads.into_iter().map(|(_, w)| w).collect(),
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
            drivers: DRIVERS
                .iter()
                .filter(|d| d.is_available())
                .map(|d| DriverSpec {
                    name: d.name.into(),
                    label: d.name.into(),
                    options: Options::new(),
                })
                .collect(),
            profiles: Profile::all_embedded().unwrap_or_default(),
            workloads: vec![CopyUp {
                sizes: vec![layerlab_core::size::Size(4096)],
                write: layerlab_core::size::Size(1),
                repetitions: None,
                image: None,
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
