//! Commands about the store and its layers: `init`, `drivers`, `layer ...`, `diff`,
//! `usage`, `status`.

use super::args::{Global, LayerCmd};
use super::output::{self, Columns};
use super::session::Session;
use super::values;
use anyhow::Result;
use layerlab_core::{ChangeKind, LayerDriver, LayerPath, Usage};
use layerlab_drivers::{Access, DRIVERS};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// `init --driver NAME [--opt KEY=VALUE]...`
pub fn init<W: Write>(out: &mut W, g: &Global, driver: &str, opts: &[String]) -> Result<()> {
    let options = values::options(driver, opts)?;
    let s = Session::init(g, driver, options)?;
    let status = s.driver().status()?;
    writeln!(
        out,
        "initialized store {} for driver {} (options: {})",
        s.root().display(),
        status.driver,
        options_text(&status.options)
    )?;
    s.finish();
    Ok(())
}

fn options_text(options: &BTreeMap<String, String>) -> String {
    if options.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(" ")
}

#[derive(Serialize)]
struct DriverJson {
    name: &'static str,
    description: &'static str,
    options: Vec<OptionJson>,
    available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable_reason: Option<String>,
}

#[derive(Serialize)]
struct OptionJson {
    key: &'static str,
    default: &'static str,
    help: &'static str,
}

/// `drivers [--json]`: every registered driver, one line each.
pub fn drivers<W: Write>(out: &mut W, json: bool) -> Result<()> {
    if json {
        let list: Vec<DriverJson> = DRIVERS
            .iter()
            .map(|d| DriverJson {
                name: d.name,
                description: d.description,
                available: d.is_available(),
                unavailable_reason: d.availability().err(),
                options: d
                    .options
                    .iter()
                    .map(|o| OptionJson {
                        key: o.key,
                        default: o.default,
                        help: o.help,
                    })
                    .collect(),
            })
            .collect();
        return output::json(out, &list);
    }
    Columns::of(DRIVERS)
        .left("NAME", |d| d.name.to_string())
        .left("DESCRIPTION", |d| match d.availability() {
            Ok(()) => d.description.to_string(),
            Err(why) => format!("(unavailable: {why}) {}", d.description),
        })
        .left("OPTIONS (defaults)", |d| {
            let opts: Vec<String> = d
                .options
                .iter()
                .map(|o| format!("{}={}", o.key, o.default))
                .collect();
            if opts.is_empty() {
                "-".to_string()
            } else {
                opts.join(" ")
            }
        })
        .print(out)?;
    Ok(())
}

#[derive(Serialize)]
struct LayerJson {
    id: String,
    parent: Option<String>,
    state: &'static str,
    depth: usize,
}

/// `layer create|commit|rm|ls`
pub fn layer<W: Write>(out: &mut W, g: &Global, cmd: LayerCmd) -> Result<()> {
    match cmd {
        LayerCmd::Create { id, parent } => {
            let id = values::id(&id)?;
            let parent = parent.as_deref().map(values::id).transpose()?;
            let mut s = Session::open(g, Access::Write)?;
            s.op(
                || match &parent {
                    Some(p) => format!("layer create {id} --parent {p}"),
                    None => format!("layer create {id}"),
                },
                |d| d.create_layer(&id, parent.as_ref()),
            )?;
            s.finish();
        }
        LayerCmd::Commit { id } => {
            let id = values::id(&id)?;
            let mut s = Session::open(g, Access::Write)?;
            s.op(|| format!("layer commit {id}"), |d| d.commit(&id))?;
            s.finish();
        }
        LayerCmd::Rm { id } => {
            let id = values::id(&id)?;
            let mut s = Session::open(g, Access::Write)?;
            s.op(|| format!("layer rm {id}"), |d| d.remove_layer(&id))?;
            s.finish();
        }
        LayerCmd::Ls { json } => {
            let mut s = Session::open(g, Access::Read)?;
            let layers = s.op(|| "layer ls".to_string(), |d| d.layers())?;
            s.finish();
            if json {
                let list: Vec<LayerJson> = layers
                    .iter()
                    .map(|l| LayerJson {
                        id: l.id.to_string(),
                        parent: l.parent.as_ref().map(|p| p.to_string()),
                        state: l.state.as_str(),
                        depth: l.depth,
                    })
                    .collect();
                return output::json(out, &list);
            }
            Columns::of(&layers)
                .left("ID", |l| l.id.to_string())
                .left("PARENT", |l| {
                    l.parent
                        .as_ref()
                        .map_or_else(|| "-".to_string(), |p| p.to_string())
                })
                .left("STATE", |l| l.state.as_str().to_string())
                .right("DEPTH", |l| l.depth.to_string())
                .print(out)?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct ChangeJson {
    path: LayerPath,
    kind: &'static str,
}

fn change_kind(k: ChangeKind) -> (&'static str, char) {
    match k {
        ChangeKind::Added => ("added", 'A'),
        ChangeKind::Modified => ("modified", 'C'),
        ChangeKind::Deleted => ("deleted", 'D'),
    }
}

/// `diff ID [--json]`: the layer's changeset against its parent, sorted by path, printed as
/// `docker diff` prints it (`A` added, `C` changed, `D` deleted).
pub fn diff<W: Write>(out: &mut W, g: &Global, id: &str, json: bool) -> Result<()> {
    let id = values::id(id)?;
    let mut s = Session::open(g, Access::Read)?;
    let mut changes = s.op(|| format!("diff {id}"), |d| d.changes(&id))?;
    s.finish();
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    if json {
        let list: Vec<ChangeJson> = changes
            .into_iter()
            .map(|c| ChangeJson {
                path: c.path,
                kind: change_kind(c.kind).0,
            })
            .collect();
        return output::json(out, &list);
    }
    for c in &changes {
        writeln!(out, "{} {}", change_kind(c.kind).1, c.path)?;
    }
    Ok(())
}

/// `usage --json`: the layer and its [`Usage`], one object.
#[derive(Serialize)]
struct UsageJson {
    layer: String,
    #[serde(flatten)]
    usage: Usage,
}

/// `usage ID [--json]`: what the layer holds exclusively.
pub fn usage<W: Write>(out: &mut W, g: &Global, id: &str, json: bool) -> Result<()> {
    let id = values::id(id)?;
    let mut s = Session::open(g, Access::Read)?;
    let u = s.op(|| format!("usage {id}"), |d| d.usage(&id))?;
    s.finish();
    if json {
        let layer = id.to_string();
        return output::json(out, &UsageJson { layer, usage: u });
    }
    let mut pairs = vec![
        ("layer".to_string(), id.to_string()),
        ("bytes".to_string(), u.bytes.to_string()),
        ("inodes".to_string(), u.inodes.to_string()),
    ];
    pairs.extend(u.details.iter().map(|(k, v)| (k.clone(), v.to_string())));
    output::key_values(out, &pairs)?;
    Ok(())
}

#[derive(Serialize)]
struct StatusJson {
    driver: String,
    store: PathBuf,
    root: PathBuf,
    options: BTreeMap<String, String>,
    facts: BTreeMap<String, String>,
}

/// `status [--json]`: the driver's facts.
pub fn status<W: Write>(out: &mut W, g: &Global, json: bool) -> Result<()> {
    let mut s = Session::open(g, Access::Read)?;
    let st = s.op(|| "status".to_string(), |d| d.status())?;
    let store = s.root().to_path_buf();
    s.finish();
    if json {
        return output::json(
            out,
            &StatusJson {
                driver: st.driver,
                store,
                root: st.root,
                options: st.options,
                facts: st.facts.into_iter().collect(),
            },
        );
    }
    let mut pairs = vec![
        ("driver".to_string(), st.driver.clone()),
        ("store".to_string(), store.display().to_string()),
        ("files".to_string(), st.root.display().to_string()),
        ("options".to_string(), options_text(&st.options)),
    ];
    pairs.extend(st.facts);
    output::key_values(out, &pairs)?;
    Ok(())
}
