//! Real image formats: `diff ID --tar FILE`, `export ID --tar FILE`, `apply ID FILE`,
//! `import ARCHIVE`, `images`.
//! The work is done by `layerlab-oci`; this module opens the store, writes files
//! atomically and prints.

use super::args::{Global, LimitArgs};
use super::output::{self, Columns};
use super::session::Session;
use super::values;
use anyhow::{anyhow, Context, Result};
use layerlab_core::size;
use layerlab_drivers::Access;
use layerlab_oci::{image, DiffOptions, Limits};
use serde::Serialize;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

fn limits(a: &LimitArgs) -> Result<Limits> {
    let mut l = Limits::default();
    if let Some(raw) = &a.max_size {
        l.max_size = size::parse(raw).map_err(|e| anyhow!("--max-size: {e}"))?;
    }
    if let Some(n) = a.max_entries {
        l.max_entries = n;
    }
    Ok(l)
}

#[derive(Serialize)]
struct DiffJson<'a> {
    layer: String,
    file: String,
    compression: &'a str,
    reproducible: bool,
    diff_id: String,
    digest: String,
    size: u64,
    entries: usize,
    whiteouts: usize,
    opaque: usize,
    hardlinks: usize,
}

/// `diff ID --tar FILE [--reproducible | --no-reproducible]`: the changeset as an OCI
/// layer tar, gzip when FILE ends in `.gz`; written to `FILE.partial` then renamed, so a
/// failure leaves no half-written FILE.
pub fn diff_tar<W: Write>(
    out: &mut W,
    g: &Global,
    id: &str,
    file: &Path,
    reproducible: bool,
    json: bool,
) -> Result<()> {
    let id = values::id(id)?;
    super::hostcopy::refuse_inside_store(g, file)?;
    let gzip = is_gzip(file);
    let opts = DiffOptions { reproducible, gzip };
    let mut s = Session::open(g, Access::Read)?;
    let summary = tar_file(file, |f| {
        s.op(
            || format!("diff {id} --tar {}", file.display()),
            |d| layerlab_oci::write_diff(d, &id, f, &opts),
        )
    })?;
    s.finish();
    if json {
        return output::json(
            out,
            &DiffJson {
                layer: id.to_string(),
                file: file.display().to_string(),
                compression: if gzip { "gzip" } else { "plain" },
                reproducible,
                diff_id: summary.diff_id,
                digest: summary.digest,
                size: summary.size,
                entries: summary.entries,
                whiteouts: summary.whiteouts,
                opaque: summary.opaque,
                hardlinks: summary.hardlinks,
            },
        );
    }
    writeln!(
        out,
        "wrote {}: {} entries ({} whiteouts, {} opaque, {} hardlinks), {}",
        file.display(),
        summary.entries,
        summary.whiteouts,
        summary.opaque,
        summary.hardlinks,
        size::format(summary.size)
    )?;
    writeln!(out, "diff_id {}", summary.diff_id)?;
    if summary.digest != summary.diff_id {
        writeln!(out, "digest  {}", summary.digest)?;
    }
    Ok(())
}

fn is_gzip(file: &Path) -> bool {
    file.extension().is_some_and(|e| e == "gz" || e == "tgz")
}

/// Writes a tar through `write` into `FILE.partial`, synced and renamed to `file` when
/// complete; on failure the partial file is removed and `file` is untouched.
fn tar_file<T>(
    file: &Path,
    write: impl FnOnce(BufWriter<File>) -> Result<(BufWriter<File>, T), layerlab_oci::OciError>,
) -> Result<T> {
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let f = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let done = write(BufWriter::new(f))
        .map_err(anyhow::Error::from)
        .and_then(|(w, t)| {
            let f = w
                .into_inner()
                .map_err(|e| anyhow!("writing {}: {}", partial.display(), e.error()))?;
            f.sync_all()
                .with_context(|| format!("writing {}", partial.display()))?;
            std::fs::rename(&partial, file)
                .with_context(|| format!("renaming to {}", file.display()))?;
            Ok(t)
        });
    if done.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    done
}

/// `export ID --tar FILE|-`: the layer's merged view as one tar, as `docker export` writes
/// it (mtimes kept; gzip when FILE ends in `.gz`); `-` writes it to stdout and prints
/// nothing else.
pub fn export_tar<W: Write>(out: &mut W, g: &Global, id: &str, file: &Path) -> Result<()> {
    let id = values::id(id)?;
    super::hostcopy::refuse_inside_store(g, file)?;
    let opts = DiffOptions {
        reproducible: false,
        gzip: file != Path::new("-") && is_gzip(file),
    };
    let mut s = Session::open(g, Access::Read)?;
    let label = || format!("export {id} --tar {}", file.display());
    if file == Path::new("-") {
        let (mut w, _) = s.op(label, |d| {
            layerlab_oci::write_view(d, &id, BufWriter::new(&mut *out), &opts)
        })?;
        w.flush().context("writing the tar to stdout")?;
        s.finish();
        return Ok(());
    }
    let summary = tar_file(file, |f| {
        s.op(label, |d| layerlab_oci::write_view(d, &id, f, &opts))
    })?;
    s.finish();
    writeln!(
        out,
        "wrote {}: {} entries ({} hardlinks), {}",
        file.display(),
        summary.entries,
        summary.hardlinks,
        size::format(summary.size)
    )?;
    Ok(())
}

#[derive(Serialize)]
struct ApplyJson {
    layer: String,
    file: String,
    compression: String,
    diff_id: String,
    tar_size: u64,
    entries: usize,
    bytes: u64,
    removed: usize,
}

/// `apply ID FILE`: applies an OCI layer tar to an active layer.
pub fn apply<W: Write>(
    out: &mut W,
    g: &Global,
    id: &str,
    file: &Path,
    limits: &LimitArgs,
    json: bool,
) -> Result<()> {
    let id = values::id(id)?;
    let limits = self::limits(limits)?;
    let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut s = Session::open(g, Access::Write)?;
    let name = file.display().to_string();
    let root = s.root().to_path_buf();
    let summary = s.op(
        || format!("apply {id} {name}"),
        |d| layerlab_oci::apply_archive_in_store(d, &root, &id, &name, BufReader::new(f), &limits),
    )?;
    s.finish();
    if json {
        return output::json(
            out,
            &ApplyJson {
                layer: id.to_string(),
                file: name,
                compression: summary.compression.to_string(),
                diff_id: summary.diff_id,
                tar_size: summary.tar_size,
                entries: summary.entries,
                bytes: summary.bytes,
                removed: summary.removed,
            },
        );
    }
    writeln!(
        out,
        "applied {name} ({}) to {id}: {} entries, {} of file content, {} removed",
        summary.compression,
        summary.entries,
        size::format(summary.bytes),
        summary.removed
    )?;
    writeln!(out, "diff_id {}", summary.diff_id)?;
    Ok(())
}

/// `import ARCHIVE [--name NAME]`: an image as a chain of committed layers, recorded in
/// the store's `images.json`.
pub fn import<W: Write>(
    out: &mut W,
    g: &Global,
    archive: &Path,
    name: Option<String>,
    limits: &LimitArgs,
    json: bool,
) -> Result<()> {
    let opts = image::ImportOptions {
        name,
        limits: self::limits(limits)?,
    };
    let mut s = Session::open(g, Access::Write)?;
    let record = s.op(
        || format!("import {}", archive.display()),
        |d| layerlab_oci::import(d, archive, &opts),
    )?;
    image::save_image(s.root(), &record)?;
    s.finish();
    if json {
        return output::json(out, &record);
    }
    writeln!(
        out,
        "imported {} ({}): {} layers, top layer {}",
        record.name,
        record.id,
        record.layers.len(),
        record.top_layer
    )?;
    for l in &record.layers {
        writeln!(
            out,
            "  {} {} {}",
            l.chain_id,
            size::format(l.size),
            if l.shared { "(shared)" } else { "" }
        )?;
    }
    Ok(())
}

/// `images [--json]`: the imported images.
pub fn images<W: Write>(out: &mut W, g: &Global, json: bool) -> Result<()> {
    let (s, list) = Session::open_images(g)?;
    s.finish();
    if json {
        return output::json(out, &list);
    }
    Columns::of(&list)
        .left("NAME", |i| i.name.clone())
        .left("ID", |i| {
            i.id.trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect()
        })
        .right("LAYERS", |i| i.layers.len().to_string())
        .right("SIZE", |i| {
            size::format(i.layers.iter().map(|l| l.size).sum())
        })
        .left("TOP LAYER", |i| i.top_layer.clone())
        .print(out)?;
    Ok(())
}
