//! Saving an image of the store as an archive `podman load` and `docker load` accept
//! (`layerlab save`).
//!
//! - `docker-archive` (the format of `docker save` and `podman save`): `manifest.json`
//!   (`Config`, `RepoTags`, `Layers`), the config as `<hex>.json`, one uncompressed layer
//!   tar per layer as `<diff id hex>.tar`.
//! - `oci-archive` (an OCI image layout in a tar): `oci-layout`, `index.json` whose one
//!   manifest carries the name in `org.opencontainers.image.ref.name` (and containerd's
//!   `io.containerd.image.name`), `blobs/sha256/` with the manifest, the config and the
//!   uncompressed layer tars.
//!
//! Each layer's changeset is written as [`crate::tar_out`] writes it (reproducible: the same
//! changes, the same bytes, on every driver), so its diff id is the digest of that tar: the
//! config's `rootfs.diff_ids` are set to the digests written. An image built here keeps
//! its ids; an imported one gets the ids of the tars written here (its layers' timestamps
//! are not kept by the store, so the original tars cannot be reproduced).
//!
//! The archive is written to a temporary file beside the target and renamed over it last:
//! a failed save leaves nothing.

use crate::digest::sha256;
use crate::error::{io_err, OciError, Result};
use crate::image::ImageRecord;
use crate::tar_out::{write_diff, DiffOptions};
use layerlab_core::{LayerDriver, LayerId};
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

/// The archive formats of `layerlab save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `docker save` / `podman save --format docker-archive`.
    DockerArchive,
    /// `podman save --format oci-archive`.
    OciArchive,
}

impl ArchiveFormat {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ArchiveFormat::DockerArchive => "docker-archive",
            ArchiveFormat::OciArchive => "oci-archive",
        }
    }

    /// The format called `name`.
    pub fn parse(name: &str) -> Option<ArchiveFormat> {
        match name {
            "docker-archive" => Some(ArchiveFormat::DockerArchive),
            "oci-archive" => Some(ArchiveFormat::OciArchive),
            _ => None,
        }
    }
}

/// What `save` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveSummary {
    /// The format.
    pub format: ArchiveFormat,
    /// The name the archive gives the image (`RepoTags` / the ref name annotation).
    pub tag: String,
    /// `sha256:` of the config written (the image id `podman load` reports).
    pub image_id: String,
    /// The layers' diff ids, bottom first.
    pub diff_ids: Vec<String>,
    /// Bytes of the archive.
    pub bytes: u64,
}

/// The tag an archive carries for an image name: `:latest` added when there is no tag.
pub fn repo_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// One layer tar spooled to a temporary file, with its digest and size.
struct Spooled {
    file: File,
    diff_id: String,
    size: u64,
}

/// What an archive of either format holds: the config JSON (its `rootfs` naming the
/// layers), the `repo:tag` and the layer tars, bottom first.
struct Contents<'a> {
    config: &'a [u8],
    tag: &'a str,
    layers: Vec<Spooled>,
}

/// Writes the image `record` of the store `d` to `out` (see the module doc). `config` is
/// the image's config JSON; its `rootfs` is replaced by the layers written.
pub fn save_archive<D: LayerDriver + ?Sized>(
    d: &mut D,
    record: &ImageRecord,
    config: &[u8],
    out: &Path,
    format: ArchiveFormat,
) -> Result<SaveSummary> {
    let shown = out.display().to_string();
    let bad = |reason: String| OciError::Image {
        archive: shown.clone(),
        reason,
    };
    let mut config: Value = serde_json::from_slice(config)
        .map_err(|e| bad(format!("image {}: config: {e}", record.name)))?;
    let layers = record
        .layers
        .iter()
        .map(|l| spool(d, &l.chain_id, &shown))
        .collect::<Result<Vec<_>>>()?;
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let obj = config
        .as_object_mut()
        .ok_or_else(|| bad(format!("image {}: config is not an object", record.name)))?;
    obj.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids}),
    );
    let config = serde_json::to_vec(&config).map_err(|e| bad(e.to_string()))?;
    let tag = repo_tag(&record.name);
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".layerlab-save-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let mut b = tar::Builder::new(BufWriter::new(tmp.as_file()));
    b.mode(tar::HeaderMode::Deterministic);
    let contents = Contents {
        config: &config,
        tag: &tag,
        layers,
    };
    match format {
        ArchiveFormat::DockerArchive => docker_archive(&mut b, contents),
        ArchiveFormat::OciArchive => oci_archive(&mut b, contents),
    }
    .and_then(|()| b.into_inner())
    .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
    .and_then(|f| f.sync_all())
    .map_err(io_err(out))?;
    let bytes = tmp.as_file().metadata().map_err(io_err(out))?.len();
    tmp.persist(out).map_err(|e| io_err(out)(e.error))?;
    Ok(SaveSummary {
        format,
        tag,
        image_id: sha256(&config),
        diff_ids,
        bytes,
    })
}

fn spool<D: LayerDriver + ?Sized>(d: &mut D, chain_id: &str, shown: &str) -> Result<Spooled> {
    let id = LayerId::new(chain_id).map_err(|reason| OciError::Image {
        archive: shown.to_string(),
        reason,
    })?;
    let tmp = tempfile::tempfile().map_err(io_err(std::env::temp_dir()))?;
    let (w, summary) = write_diff(d, &id, BufWriter::new(tmp), &DiffOptions::default())?;
    let mut file = w
        .into_inner()
        .map_err(|e| io_err(std::env::temp_dir())(e.into_error()))?;
    file.rewind().map_err(io_err(std::env::temp_dir()))?;
    Ok(Spooled {
        file,
        diff_id: summary.diff_id,
        size: summary.size,
    })
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn add_bytes<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> std::io::Result<()> {
    b.append_data(&mut header(data.len() as u64), name, data)
}

fn add_layer<W: Write>(b: &mut tar::Builder<W>, name: &str, l: Spooled) -> std::io::Result<()> {
    b.append_data(&mut header(l.size), name, l.file)
}

fn docker_archive<W: Write>(
    b: &mut tar::Builder<W>,
    contents: Contents<'_>,
) -> std::io::Result<()> {
    let config_name = format!("{}.json", hex(&sha256(contents.config)));
    let mut names = Vec::new();
    for l in contents.layers {
        let name = format!("{}.tar", hex(&l.diff_id));
        if !names.contains(&name) {
            add_layer(b, &name, l)?;
        }
        names.push(name);
    }
    add_bytes(b, &config_name, contents.config)?;
    let manifest = json!([{"Config": config_name, "RepoTags": [contents.tag], "Layers": names}]);
    add_bytes(b, "manifest.json", manifest.to_string().as_bytes())
}

fn oci_archive<W: Write>(b: &mut tar::Builder<W>, contents: Contents<'_>) -> std::io::Result<()> {
    add_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut descs = Vec::new();
    let mut written: Vec<String> = Vec::new();
    for l in contents.layers {
        descs.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": l.diff_id,
            "size": l.size,
        }));
        if !written.contains(&l.diff_id) {
            written.push(l.diff_id.clone());
            add_layer(b, &format!("blobs/sha256/{}", hex(&l.diff_id)), l)?;
        }
    }
    let config_digest = sha256(contents.config);
    add_bytes(
        b,
        &format!("blobs/sha256/{}", hex(&config_digest)),
        contents.config,
    )?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": contents.config.len(),
        },
        "layers": descs,
    })
    .to_string();
    let manifest_digest = sha256(manifest.as_bytes());
    add_bytes(
        b,
        &format!("blobs/sha256/{}", hex(&manifest_digest)),
        manifest.as_bytes(),
    )?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {
                "org.opencontainers.image.ref.name": contents.tag,
                "io.containerd.image.name": contents.tag,
            },
        }],
    });
    add_bytes(b, "index.json", index.to_string().as_bytes())
}
