//! `save IMAGE -o FILE [--format docker-archive|oci-archive]`: an image of the store as an
//! archive that `podman load` and `docker load` accept (`layerlab_oci::save`).

use super::args::Global;
use super::session::Session;
use anyhow::{anyhow, Result};
use layerlab_core::size;
use layerlab_inspect::find_image;
use layerlab_oci::{save_archive, ArchiveFormat};
use std::io::Write;
use std::path::Path;

/// `layerlab save IMAGE -o FILE [--format F]`.
pub fn save<W: Write>(
    out: &mut W,
    g: &Global,
    name: &str,
    file: &Path,
    format: &str,
) -> Result<()> {
    let format =
        ArchiveFormat::parse(format).ok_or_else(|| anyhow!("save: unknown format {format}"))?;
    let (mut s, images) = Session::open_images(g)?;
    let record = find_image(s.root(), &images, name)?;
    let config = record.config_document();
    let summary = s.op(
        || format!("save {} {}", record.name, file.display()),
        |d| save_archive(d, &record, &config, file, format),
    )?;
    s.finish();
    writeln!(
        out,
        "saved image {} as {} to {}: {} layers, {}, image id {}",
        summary.tag,
        format.name(),
        file.display(),
        summary.diff_ids.len(),
        size::format(summary.bytes),
        summary.image_id
    )?;
    Ok(())
}
