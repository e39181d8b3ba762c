//! Reading images: `history`, `df`, `analyze` (with `--ci`, `--drivers`, `--have`) and
//! `graph`. The work is done by `layerlab-inspect`; this module opens the store, finds
//! the images and prints.

use super::args::{AnalyzeArgs, Global};
use super::output::{self, Align, Columns, Table};
use super::session::Session;
use anyhow::{anyhow, bail, Result};
use layerlab_core::size::Size;
use layerlab_drivers::{registry, DriverInfo, DRIVERS};
use layerlab_inspect::units::{human_size, short_id};
use layerlab_inspect::{analysis, cost, df, find_image, graph, history, pull, Analysis, CiRules};
use layerlab_oci::ImageRecord;
use serde::Serialize;
use std::io::Write;

/// How many files `analyze --drivers` writes to, and how many wasted files it lists.
const LARGEST: usize = 10;

/// `docker history`'s CREATED BY, cut to 45 characters.
fn truncate(text: &str, full: bool) -> String {
    const WIDTH: usize = 45;
    let one_line = text.replace(['\n', '\t'], " ");
    if full || one_line.chars().count() <= WIDTH {
        return one_line;
    }
    let cut: String = one_line.chars().take(WIDTH - 1).collect();
    format!("{cut}…")
}

/// `history IMAGE [--json] [--no-trunc]`.
pub fn history<W: Write>(
    out: &mut W,
    g: &Global,
    name: &str,
    json: bool,
    full: bool,
) -> Result<()> {
    let (s, images) = Session::open_images(g)?;
    let img = find_image(s.root(), &images, name)?;
    s.finish();
    let steps = history::history(&img);
    if json {
        return output::json(out, &steps);
    }
    Columns::of(&steps)
        .left("LAYER", |st| match &st.layer {
            Some(l) if full => l.clone(),
            Some(l) => short_id(l),
            None => "<missing>".into(),
        })
        .left("CREATED", |st| {
            step_time(st.created.clone().unwrap_or_default(), full)
        })
        .left("CREATED BY", |st| truncate(&st.created_by, full))
        .right("SIZE", |st| human_size(st.size))
        .left("COMMENT", |st| st.comment.clone())
        .print(out)?;
    Ok(())
}

/// A history step's creation time; without `full`, to the second:
/// `2026-12-02T11:00:00.123456789Z` -> `2026-12-02T11:00:00Z`.
fn step_time(created: String, full: bool) -> String {
    if full {
        return created;
    }
    match created.split_once('.') {
        Some((secs, rest)) => {
            let zone = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{secs}{zone}")
        }
        None => created,
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

/// `df [-v] [--json]`.
pub fn df<W: Write>(out: &mut W, g: &Global, verbose: bool, json: bool) -> Result<()> {
    let (mut s, images) = Session::open_images(g)?;
    let d = s.op(|| "df".into(), |d| df::df(d, &images))?;
    s.finish();
    if json {
        return output::json(out, &d);
    }
    let sections = [
        ("Images", &d.images),
        ("Containers", &d.containers),
        ("Build Cache", &d.build_cache),
    ];
    Columns::of(sections)
        .left("TYPE", |(name, _)| name.to_string())
        .right("TOTAL", |(_, sec)| sec.total.to_string())
        .right("ACTIVE", |(_, sec)| sec.active.to_string())
        .right("SIZE", |(_, sec)| human_size(sec.size))
        .right("RECLAIMABLE", |(_, sec)| {
            let reclaimable = human_size(sec.reclaimable);
            format!("{reclaimable} ({})", percent(sec.reclaimable, sec.size))
        })
        .print(out)?;
    if !verbose {
        return Ok(());
    }
    writeln!(out, "\nImages space usage:\n")?;
    Columns::of(&d.image_use)
        .left("IMAGE", |i| i.name.clone())
        .right("SIZE", |i| human_size(i.size))
        .right("SHARED SIZE", |i| human_size(i.shared_size))
        .right("UNIQUE SIZE", |i| human_size(i.unique_size))
        .right("CONTAINERS", |i| i.containers.to_string())
        .print(out)?;
    writeln!(out, "\nLayers space usage:\n")?;
    Columns::of(&d.layer_use)
        .left("LAYER", |l| short_id(&l.layer))
        .right("SIZE", |l| human_size(l.size))
        .left("IMAGES", |l| l.images.join(", "))
        .print(out)?;
    Ok(())
}

/// The rules `--ci` checks: dive's defaults, each overridden by its option.
fn ci_rules(a: &AnalyzeArgs) -> Result<CiRules> {
    let mut rules = CiRules::default();
    for (name, v) in [
        ("--lowest-efficiency", a.lowest_efficiency),
        (
            "--highest-user-wasted-percent",
            a.highest_user_wasted_percent,
        ),
    ] {
        if let Some(v) = v {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} {v}: must be between 0 and 1");
            }
        }
    }
    if a.lowest_efficiency.is_some() {
        rules.lowest_efficiency = a.lowest_efficiency;
    }
    if a.highest_user_wasted_percent.is_some() {
        rules.highest_user_wasted_percent = a.highest_user_wasted_percent;
    }
    if let Some(raw) = &a.highest_wasted_bytes {
        let n = Size::parse(raw).map_err(|e| anyhow!("--highest-wasted-bytes: {e}"))?;
        rules.highest_wasted_bytes = Some(n.bytes());
    }
    Ok(rules)
}

/// The drivers `--drivers` names: `all`, or names separated by commas.
fn chosen_drivers(raw: &str) -> Result<Vec<&'static DriverInfo>> {
    if raw == "all" {
        return Ok(DRIVERS.iter().collect());
    }
    raw.split(',')
        .map(|name| {
            registry::info(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = DRIVERS.iter().map(|d| d.name).collect();
                anyhow!(
                    "--drivers: no driver '{name}' (known: all, {})",
                    known.join(", ")
                )
            })
        })
        .collect()
}

#[derive(Serialize)]
struct AnalyzeJson<'a> {
    #[serde(flatten)]
    analysis: &'a Analysis,
    #[serde(skip_serializing_if = "Option::is_none")]
    ci: Option<Vec<analysis::CiResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drivers: Option<Vec<cost::DriverCost>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pull: Option<pull::PullPlan>,
}

/// `analyze IMAGE [--json] [--ci ...] [--drivers D] [--have IMAGE...]`.
pub fn analyze<W: Write>(out: &mut W, g: &Global, a: &AnalyzeArgs) -> Result<()> {
    let rules = a.ci.then(|| ci_rules(a)).transpose()?;
    let drivers = a.drivers.as_deref().map(chosen_drivers).transpose()?;
    let (mut s, images) = Session::open_images(g)?;
    let img = find_image(s.root(), &images, &a.image)?;
    let have = a
        .have
        .iter()
        .map(|h| find_image(s.root(), &images, h))
        .collect::<layerlab_inspect::Result<Vec<_>>>()?;
    let pull = if have.is_empty() {
        None
    } else {
        Some(pull::plan(&img, &have.iter().collect::<Vec<_>>())?)
    };
    let report = s.op(
        || format!("analyze {}", img.name),
        |d| layerlab_inspect::analyze(d, &img),
    )?;
    let costs = match &drivers {
        Some(list) => Some(s.op(
            || format!("analyze {} --drivers", img.name),
            |d| cost::driver_costs(d, &img, list, &std::env::temp_dir(), LARGEST),
        )?),
        None => None,
    };
    s.finish();
    let ci = rules.map(|r| r.evaluate(&report.efficiency));
    if a.json {
        output::json(
            out,
            &AnalyzeJson {
                analysis: &report,
                ci: ci.clone(),
                drivers: costs,
                pull,
            },
        )?;
    } else {
        print_analysis(out, &report)?;
        if let Some(c) = &costs {
            print_costs(out, &img, c)?;
        }
        if let Some(p) = &pull {
            print_pull(out, p)?;
        }
        if let Some(ci) = &ci {
            writeln!(out, "\nCI rules:")?;
            for r in ci {
                let verdict = if r.pass { "PASS" } else { "FAIL" };
                writeln!(out, "  {verdict}: {}: {}", r.rule, r.detail)?;
            }
        }
    }
    if let Some(ci) = ci {
        let failed: Vec<&str> = ci.iter().filter(|r| !r.pass).map(|r| r.rule).collect();
        if !failed.is_empty() {
            out.flush()?;
            bail!(
                "image {}: CI rules failed: {} (efficiency {:.4}, wasted {} bytes)",
                img.name,
                failed.join(", "),
                report.efficiency.score,
                report.efficiency.wasted_bytes
            );
        }
    }
    Ok(())
}

fn print_analysis<W: Write>(out: &mut W, a: &Analysis) -> Result<()> {
    writeln!(
        out,
        "image {} ({}): {} layers, {} of files",
        a.image,
        short_id(&a.id),
        a.layers.len(),
        human_size(a.size)
    )?;
    writeln!(out)?;
    Columns::of(&a.layers)
        .right("LAYER", |l| l.index.to_string())
        .left("ID", |l| short_id(&l.layer))
        .right("ADDED", |l| human_size(l.added))
        .right("CHANGED", |l| human_size(l.changed))
        .right("REMOVED", |l| human_size(l.removed))
        .left("CREATED BY", |l| truncate(&l.created_by, false))
        .print(out)?;
    let e = &a.efficiency;
    writeln!(out)?;
    writeln!(out, "efficiency: {:.4} %", e.score * 100.0)?;
    writeln!(
        out,
        "wasted bytes: {} ({}), user wasted: {:.4} %",
        e.wasted_bytes,
        human_size(e.wasted_bytes),
        e.user_wasted_percent * 100.0
    )?;
    if !e.wasted.is_empty() {
        writeln!(out, "\ntop wasted files:")?;
        Columns::of(e.wasted.iter().take(LARGEST))
            .right("COUNT", |w| w.layers.len().to_string())
            .right("TOTAL SPACE", |w| human_size(w.cumulative))
            .left("PATH", |w| w.path.clone())
            .print(out)?;
    }
    if !a.findings.is_empty() {
        writeln!(out, "\nfindings:")?;
        for f in &a.findings {
            writeln!(
                out,
                "  {:>7}  layer {}: {}",
                human_size(f.bytes),
                f.layer,
                f.message
            )?;
        }
    }
    Ok(())
}

fn ms(micros: u64) -> String {
    format!("{:.1}ms", micros as f64 / 1000.0)
}

fn copied(c: Option<u64>) -> String {
    c.map_or_else(|| "-".into(), human_size)
}

fn print_costs<W: Write>(out: &mut W, img: &ImageRecord, costs: &[cost::DriverCost]) -> Result<()> {
    writeln!(
        out,
        "\nper-driver cost of {} (a scratch store per driver; COPIED: Meter counts, - for a \
         driver that counts nothing; DISK and times: measured on this machine):",
        img.name
    )?;
    let measured: Vec<&cost::DriverCost> = costs.iter().filter(|c| c.skipped.is_none()).collect();
    Columns::of(&measured)
        .left("DRIVER", |c| c.driver.clone())
        .right("IMAGE DISK", |c| human_size(c.image_bytes))
        .right("IMPORT", |c| ms(c.import_micros))
        .right("CREATE COPIED", |c| {
            copied(c.create_counts.map(|k| k.bytes_copied))
        })
        .right("CREATE DISK", |c| human_size(c.container_bytes))
        .right("CREATE", |c| ms(c.create_micros))
        .right("WRITES COPIED", |c| copied(c.copy_up_bytes()))
        .right("WRITES DISK", |c| human_size(c.copy_up_disk_bytes))
        .right("WRITES", |c| ms(c.copy_up_micros()))
        .print(out)?;
    if let Some(first) = measured.first() {
        writeln!(
            out,
            "\nfirst 1-byte write to the {} largest files, bytes copied:",
            first.copy_up.len()
        )?;
        let mut cols: Vec<(&'static str, Align)> =
            vec![("FILE", Align::Left), ("SIZE", Align::Right)];
        let names: Vec<&'static str> = measured
            .iter()
            .filter_map(|c| registry::info(&c.driver).map(|i| i.name))
            .collect();
        cols.extend(names.iter().map(|n| (*n, Align::Right)));
        let mut t = Table::new(&cols);
        for (k, f) in first.copy_up.iter().enumerate() {
            let mut row = vec![f.path.clone(), human_size(f.size)];
            for c in &measured {
                row.push(copied(
                    c.copy_up
                        .get(k)
                        .and_then(|x| x.counts)
                        .map(|k| k.bytes_copied),
                ));
            }
            t.row(row);
        }
        t.print(out)?;
    }
    for c in costs {
        if let Some(why) = &c.skipped {
            writeln!(out, "skipped {}: {why}", c.driver)?;
        }
    }
    Ok(())
}

fn print_pull<W: Write>(out: &mut W, p: &pull::PullPlan) -> Result<()> {
    writeln!(
        out,
        "\npull {} with {} present: {} of {} layers, {} gzip ({} uncompressed) of {} gzip ({})",
        p.image,
        p.have.join(", "),
        p.fetch_layers,
        p.layers.len(),
        human_size(p.fetch_gzip),
        human_size(p.fetch_tar),
        human_size(p.total_gzip),
        human_size(p.total_tar)
    )?;
    Columns::of(&p.layers)
        .right("LAYER", |l| l.index.to_string())
        .left("DIFF ID", |l| short_id(&l.diff_id))
        .right("GZIP", |l| human_size(l.gzip_size))
        .right("UNCOMPRESSED", |l| human_size(l.tar_size))
        .left("PULL", |l| match &l.present_in {
            Some(i) => format!("present ({i})"),
            None => "fetch".into(),
        })
        .print(out)?;
    Ok(())
}

/// `graph [IMAGE...] [--mermaid | --dot]`.
pub fn graph<W: Write>(
    out: &mut W,
    g: &Global,
    names: &[String],
    mermaid: bool,
    dot: bool,
) -> Result<()> {
    let (mut s, images) = Session::open_images(g)?;
    let only = names
        .iter()
        .map(|n| find_image(s.root(), &images, n))
        .collect::<layerlab_inspect::Result<Vec<_>>>()?;
    let refs: Vec<&ImageRecord> = only.iter().collect();
    let picture = s.op(|| "graph".into(), |d| graph::graph(d, &images, &refs))?;
    s.finish();
    if mermaid {
        write!(out, "{}", picture.mermaid())?;
    } else if dot {
        write!(out, "{}", picture.dot())?;
    } else {
        if let [one] = only.as_slice() {
            let steps = history::layer_steps(one);
            write!(out, "{}", graph::stack_text(&picture, one, &steps))?;
            writeln!(out)?;
        }
        write!(out, "{}", picture.text())?;
    }
    Ok(())
}
