//! A driver as an experiment runs it ([`DriverSpec`]: registry name, options, label), and
//! the `drivers` key of an experiment file that lists them (names, `"all"`, tables with
//! options), checked against the registry while the file is read.

use layerlab_drivers::{registry, Options, DRIVERS};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;

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

impl DriverSpec {
    /// Every registered driver available on this machine, without options (`drivers = "all"`).
    pub fn all_available() -> Vec<DriverSpec> {
        DRIVERS
            .iter()
            .filter(|d| d.is_available())
            .map(|d| DriverSpec {
                name: d.name.to_string(),
                label: d.name.to_string(),
                options: Options::new(),
            })
            .collect()
    }
}

/// `drivers = "all"` or a list.
#[derive(Debug)]
pub enum DriverList {
    /// `"all"`.
    All,
    /// A list of entries, each with its span.
    List(Vec<Spanned<DriverEntry>>),
}

/// One entry of a driver list.
#[derive(Debug)]
pub enum DriverEntry {
    /// `"all"`: every available driver.
    All,
    /// A named driver (with options and label).
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

/// The registered drivers' names, for error messages.
pub fn known_drivers() -> String {
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
