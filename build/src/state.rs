//! The state of a stage while it builds (its top layer, image layers, history, config,
//! cache key, build arguments), and what each metadata-only instruction does to the config.

use crate::parse::{Command, Kind};
use crate::words;
use layerlab_core::LayerId;
use layerlab_oci::{ImageConfig, ImageLayer};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The state of a stage after some steps.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) top: Option<LayerId>,
    pub(crate) layers: Vec<ImageLayer>,
    pub(crate) history: Vec<Value>,
    pub(crate) config: ImageConfig,
    pub(crate) platform: Option<String>,
    pub(crate) key: String,
    pub(crate) missed: bool,
    /// Build arguments declared in the stage, with their values.
    pub(crate) args: Vec<(String, String)>,
    pub(crate) cmd_here: bool,
}

impl State {
    pub(crate) fn env(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.config
            .env
            .iter()
            .flatten()
            .find_map(|e| e.strip_prefix(&prefix).map(str::to_string))
            .or_else(|| {
                self.args
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
    }

    pub(crate) fn workdir(&self) -> String {
        self.config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    pub(crate) fn shell(&self) -> Vec<String> {
        self.config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }
}

/// The argv of RUN, CMD or ENTRYPOINT: the exec form as given, or the SHELL and the text.
pub(crate) fn argv_of(state: &State, c: &Command) -> Vec<String> {
    match c {
        Command::Exec(a) => a.clone(),
        Command::Shell(t) => {
            let mut v = state.shell();
            v.push(t.clone());
            v
        }
    }
}

/// Sets a one-word config field (`WorkingDir`, `User`, `StopSignal`) to `value`; returns the
/// instruction's canonical text, `keyword value`.
fn set_word(field: &mut Option<String>, keyword: &str, value: String) -> String {
    let canonical = format!("{keyword} {value}");
    *field = Some(value);
    canonical
}

/// An exposed port with its protocol: `80` is `80/tcp`.
fn with_protocol(port: String) -> String {
    if port.contains('/') {
        port
    } else {
        format!("{port}/tcp")
    }
}

/// Adds each of `keys` to one of the config's sets (`ExposedPorts`, `Volumes`: names that
/// map to `{}`).
fn add_keys(set: &mut Option<BTreeMap<String, Value>>, keys: &[String]) {
    let set = set.get_or_insert_with(BTreeMap::new);
    for k in keys {
        set.insert(k.clone(), json!({}));
    }
}

/// Applies a metadata-only instruction (ARG, ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME,
/// STOPSIGNAL, SHELL, CMD, ENTRYPOINT) to the stage's config, its variables substituted
/// against the environment before it; returns its canonical text (for the cache key and the
/// history). `build_arg` gives `--build-arg` values, `globals` the global ARGs.
pub(crate) fn apply_metadata(
    state: &mut State,
    kind: &Kind,
    esc: char,
    build_arg: &dyn Fn(&str) -> Option<String>,
    globals: &BTreeMap<String, String>,
) -> Result<String, String> {
    let x = |s: &State, w: &str| -> Result<String, String> {
        let look = |n: &str| s.env(n);
        words::expand(w, &look, esc)
    };
    let canonical: String;
    match kind {
        Kind::Copy { .. } | Kind::Run(_) => return Err("not a metadata instruction".into()),
        Kind::Arg(args) => {
            for (name, default) in args {
                let value = match build_arg(name) {
                    Some(v) => v,
                    None => match default {
                        Some(d) => x(state, d)?,
                        None => globals.get(name).cloned().unwrap_or_default(),
                    },
                };
                state.args.retain(|(k, _)| k != name);
                state.args.push((name.clone(), value));
            }
            canonical = format!(
                "ARG {}",
                args.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        Kind::Env(pairs) => {
            let before = state.clone();
            let mut shown = Vec::new();
            for (k, v) in pairs {
                let k = x(&before, k)?;
                let v = x(&before, v)?;
                let env = state.config.env.get_or_insert_with(Vec::new);
                let prefix = format!("{k}=");
                env.retain(|x| !x.starts_with(&prefix));
                env.push(format!("{k}={v}"));
                shown.push(format!("{k}={v}"));
            }
            canonical = format!("ENV {}", shown.join(" "));
        }
        Kind::Label(pairs) => {
            let mut shown = Vec::new();
            for (k, v) in pairs {
                let k = x(state, k)?;
                let v = x(state, v)?;
                shown.push(format!("{k}={v:?}"));
                state
                    .config
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(k, v);
            }
            canonical = format!("LABEL {}", shown.join(" "));
        }
        Kind::Workdir(w) => {
            let w = x(state, w)?;
            let path = if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", state.workdir().trim_end_matches('/'))
            };
            let clean = format!(
                "/{}",
                crate::ignore::clean(&path).unwrap_or_default().join("/")
            );
            canonical = set_word(&mut state.config.working_dir, "WORKDIR", clean);
        }
        Kind::User(u) => {
            let u = x(state, u)?;
            canonical = set_word(&mut state.config.user, "USER", u);
        }
        Kind::Expose(ports) => {
            let shown: Vec<String> = ports
                .iter()
                .map(|p| x(state, p).map(with_protocol))
                .collect::<Result<_, _>>()?;
            add_keys(&mut state.config.exposed_ports, &shown);
            canonical = format!("EXPOSE {}", shown.join(" "));
        }
        Kind::Volume(vols) => {
            let shown: Vec<String> = vols.iter().map(|v| x(state, v)).collect::<Result<_, _>>()?;
            add_keys(&mut state.config.volumes, &shown);
            canonical = format!("VOLUME {shown:?}");
        }
        Kind::StopSignal(s) => {
            let s = x(state, s)?;
            canonical = set_word(&mut state.config.stop_signal, "STOPSIGNAL", s);
        }
        Kind::Shell(argv) => {
            state.config.shell = Some(argv.clone());
            canonical = format!("SHELL {argv:?}");
        }
        Kind::Cmd(c) => {
            let argv = argv_of(state, c);
            canonical = format!("CMD {argv:?}");
            state.config.cmd = Some(argv);
            state.cmd_here = true;
        }
        Kind::Entrypoint(c) => {
            let argv = argv_of(state, c);
            canonical = format!("ENTRYPOINT {argv:?}");
            state.config.entrypoint = Some(argv);
            if !state.cmd_here {
                state.config.cmd = None;
            }
        }
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with_arg(name: &str, value: &str) -> State {
        State {
            top: None,
            layers: Vec::new(),
            history: Vec::new(),
            config: ImageConfig::default(),
            platform: None,
            key: String::new(),
            missed: false,
            args: vec![(name.into(), value.into())],
            cmd_here: false,
        }
    }

    fn apply(state: &mut State, kind: Kind) -> String {
        apply_metadata(state, &kind, '\\', &|_| None, &BTreeMap::new()).unwrap()
    }

    #[test]
    fn expose_and_volume_expand_their_words_into_the_config_sets() {
        let mut s = with_arg("P", "8080");
        let ports = Kind::Expose(vec!["$P".into(), "53/udp".into()]);
        assert_eq!(apply(&mut s, ports), "EXPOSE 8080/tcp 53/udp");
        let vols = Kind::Volume(vec!["/data".into(), "/v$P".into()]);
        assert_eq!(apply(&mut s, vols), r#"VOLUME ["/data", "/v8080"]"#);
        let keys = |set: &Option<BTreeMap<String, Value>>| -> Vec<String> {
            set.iter().flat_map(|m| m.keys().cloned()).collect()
        };
        assert_eq!(keys(&s.config.exposed_ports), ["53/udp", "8080/tcp"]);
        assert_eq!(keys(&s.config.volumes), ["/data", "/v8080"]);
        assert_eq!(s.config.volumes.unwrap()["/data"], json!({}));
    }

    #[test]
    fn one_word_instructions_set_their_field() {
        let mut s = with_arg("U", "app");
        assert_eq!(apply(&mut s, Kind::User("$U".into())), "USER app");
        assert_eq!(apply(&mut s, Kind::Workdir("srv/".into())), "WORKDIR /srv");
        let stop = Kind::StopSignal("SIGTERM".into());
        assert_eq!(apply(&mut s, stop), "STOPSIGNAL SIGTERM");
        assert_eq!(s.config.user.as_deref(), Some("app"));
        assert_eq!(s.config.working_dir.as_deref(), Some("/srv"));
        assert_eq!(s.config.stop_signal.as_deref(), Some("SIGTERM"));
    }
}
