//! Importing images: a `docker save` / `podman save` archive (`manifest.json`, a config
//! JSON, one tar per layer) or an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`), as a directory or a tar (plain or compressed), becomes a chain of
//! committed layers, one per image layer, each named by its chain id (`sha256:...`).
//!
//! - Every layer is parsed and checked ([`crate::tar_in`]) and its uncompressed digest
//!   compared with the config's `rootfs.diff_ids` before the layer is created; a mismatch
//!   is an error naming the layer. A layer whose chain id is already in the store (the
//!   same content on the same parents) is shared, not imported again.
//! - If any layer fails, the layers this import created are removed again. Each layer is
//!   committed before the next is made, so a killed import leaves committed layers the
//!   next import of the image shares, and at most one active layer of its chain, which the
//!   next import removes and makes again.
//! - The image (name, config digest, layers, the config's history) is recorded in
//!   `images.json` in the store root, replaced atomically ([`save_image`]).
//! - Only the first image of a multi-image archive is imported; for an OCI index, the
//!   first manifest (nested indexes followed to their first manifest). Config blobs are
//!   checked against their digest; layer blobs are checked through their diff ids.
//! - Entries of the outer archive go through the same path checks as layers (`..` and
//!   absolute names refused, symlinks resolved within the archive only, size limits).

use crate::apply;
use crate::digest::{self, chain_id, HashingReader};
use crate::error::{io_err, OciError, Result};
use crate::tar_in::{self, Compression, Limits};
use layerlab_core::{LayerDriver, LayerId, LayerState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The file in the store root that lists imported images.
pub const IMAGES_FILE: &str = "images.json";

/// One layer of an imported image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayer {
    /// The layer id in the store (the chain id).
    pub chain_id: String,
    /// The uncompressed digest, checked against the config.
    pub diff_id: String,
    /// Bytes of file content.
    pub size: u64,
    /// True when the layer was already in the store and shared.
    pub shared: bool,
    /// Bytes of the uncompressed layer tar (what `podman history` reports); `None` in
    /// records written before it was kept.
    #[serde(default)]
    pub tar_size: Option<u64>,
    /// Bytes of the layer as a gzip blob (what a registry pull transfers): the archive's
    /// own blob when it stored the layer gzip-compressed, else the layer tar compressed
    /// with gzip's default level; `None` in records written before it was kept.
    #[serde(default)]
    pub gzip_size: Option<u64>,
}

/// An imported image, as `images.json` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image name (`--name`, else the archive's tag, else the short config digest).
    pub name: String,
    /// `sha256:` of the config JSON (the image id).
    pub id: String,
    /// The top layer: the parent for container layers.
    pub top_layer: String,
    /// The layers, bottom first.
    pub layers: Vec<ImageLayer>,
    /// `docker-save` or `oci-layout`.
    pub format: String,
    /// The archive it came from.
    pub source: String,
    /// The config's `created`.
    #[serde(default)]
    pub created: Option<String>,
    /// The config's `architecture` and `os`.
    #[serde(default)]
    pub platform: Option<String>,
    /// The config's `history`, verbatim.
    #[serde(default)]
    pub history: Vec<Value>,
    /// The config's `config` (environment, command, working directory, ...); `None` in
    /// records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ImageConfig>,
}

/// The runtime settings of an image (the OCI config's `config` object, with Docker's
/// `Shell`), under their OCI names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// `USER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `EXPOSE`: `"80/tcp": {}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    /// `ENV`: `KEY=VALUE` strings, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `VOLUME`: `"/data": {}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    /// `WORKDIR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `LABEL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `STOPSIGNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `SHELL` (Docker's extension; OCI configs have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

impl ImageRecord {
    /// The image config JSON this record stands for (`created`, `architecture`, `os`,
    /// `config`, `rootfs.diff_ids`, `history`), compact, keys in a fixed order: the bytes
    /// whose sha256 is the id of an image built here, and what an archive of it carries.
    pub fn config_document(&self) -> Vec<u8> {
        let (os, arch) = match self.platform.as_deref().and_then(|p| p.split_once('/')) {
            Some((os, arch)) => (os.to_string(), arch.to_string()),
            None => ("linux".to_string(), "amd64".to_string()),
        };
        let mut doc = serde_json::Map::new();
        if let Some(c) = &self.created {
            doc.insert("created".into(), Value::String(c.clone()));
        }
        doc.insert("architecture".into(), Value::String(arch));
        doc.insert("os".into(), Value::String(os));
        doc.insert(
            "config".into(),
            serde_json::to_value(self.config.clone().unwrap_or_default()).unwrap_or_default(),
        );
        let diff_ids: Vec<Value> = self
            .layers
            .iter()
            .map(|l| Value::String(l.diff_id.clone()))
            .collect();
        doc.insert(
            "rootfs".into(),
            serde_json::json!({"type": "layers", "diff_ids": diff_ids}),
        );
        doc.insert("history".into(), Value::Array(self.history.clone()));
        serde_json::to_vec(&Value::Object(doc)).unwrap_or_default()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ImagesFile {
    images: Vec<ImageRecord>,
}

/// The images recorded in a store (none when `images.json` does not exist).
pub fn load_images(root: &Path) -> Result<Vec<ImageRecord>> {
    let path = root.join(IMAGES_FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let f: ImagesFile = serde_json::from_slice(&text).map_err(|e| OciError::Image {
        archive: path.display().to_string(),
        reason: format!("corrupt images file: {e}"),
    })?;
    Ok(f.images)
}

/// Records an image (replacing one of the same name), atomically.
pub fn save_image(root: &Path, record: &ImageRecord) -> Result<()> {
    let mut images = load_images(root)?;
    images.retain(|i| i.name != record.name);
    images.push(record.clone());
    images.sort_by(|a, b| a.name.cmp(&b.name));
    let json = serde_json::to_vec_pretty(&ImagesFile { images }).map_err(|e| OciError::Image {
        archive: root.join(IMAGES_FILE).display().to_string(),
        reason: e.to_string(),
    })?;
    layerlab_drivers::store::write_atomic(&root.join(IMAGES_FILE), &json)?;
    Ok(())
}

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The image name to record.
    pub name: Option<String>,
    /// Limits for every layer and for the outer archive.
    pub limits: Limits,
}

/// The files of an image archive: a directory, or a tar spooled to a temporary file.
enum Source {
    Dir(PathBuf),
    Tar {
        spool: File,
        files: BTreeMap<String, (u64, u64)>,
        links: BTreeMap<String, String>,
    },
}

struct SpoolReader<'a> {
    file: &'a File,
    off: u64,
    end: u64,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.off;
        if left == 0 {
            return Ok(0);
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = self.file.read_at(&mut buf[..n], self.off)?;
        self.off += got as u64;
        Ok(got)
    }
}

/// `a/./b//c` -> `a/b/c`; `..` and absolute names refused (a leading `/` is stripped).
fn clean(name: &str) -> std::result::Result<String, String> {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(format!("'{name}': '..' in a name")),
            c => out.push(c),
        }
    }
    Ok(out.join("/"))
}

/// Resolves `target` relative to the directory of `link`, within the archive.
fn resolve_rel(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl Source {
    fn open_archive(path: &Path, limits: &Limits) -> Result<Source> {
        let shown = path.display().to_string();
        if path.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        let f = File::open(path).map_err(io_err(path))?;
        let (raw, _) = tar_in::decompress(f).map_err(io_err(path))?;
        let mut ar = tar::Archive::new(raw);
        let spool_file = tempfile::tempfile().map_err(io_err(std::env::temp_dir()))?;
        let mut spool = BufWriter::new(spool_file);
        let mut files = BTreeMap::new();
        let mut links = BTreeMap::new();
        let mut off = 0u64;
        let mut count = 0u64;
        let bad = |reason: String| OciError::Image {
            archive: shown.clone(),
            reason,
        };
        let entries = ar.entries().map_err(|e| bad(format!("not a tar: {e}")))?;
        for e in entries {
            let mut e = e.map_err(|e| bad(format!("not a tar: {e}")))?;
            count += 1;
            let raw_name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            if count > limits.max_entries {
                return Err(OciError::Limit {
                    archive: shown.clone(),
                    entry: raw_name,
                    what: format!("more than {} entries", limits.max_entries),
                });
            }
            let name = clean(&raw_name).map_err(|r| OciError::Entry {
                archive: shown.clone(),
                entry: raw_name.clone(),
                reason: r,
            })?;
            match e.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let len = e.size();
                    if off.saturating_add(len) > limits.max_size {
                        return Err(OciError::Limit {
                            archive: shown.clone(),
                            entry: raw_name,
                            what: format!(
                                "the archive expands past the limit of {} bytes (--max-size)",
                                limits.max_size
                            ),
                        });
                    }
                    let n = io::copy(&mut (&mut e).take(len), &mut spool)
                        .map_err(io_err(std::env::temp_dir()))?;
                    files.insert(name, (off, n));
                    off += n;
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = e
                        .link_name_bytes()
                        .map(|t| String::from_utf8_lossy(&t).into_owned())
                        .unwrap_or_default();
                    let resolved = if e.header().entry_type() == tar::EntryType::Link {
                        clean(&target).ok()
                    } else {
                        resolve_rel(&name, &target)
                    };
                    let Some(resolved) = resolved else {
                        return Err(OciError::Entry {
                            archive: shown.clone(),
                            entry: raw_name,
                            reason: format!("link to '{target}' points outside the archive"),
                        });
                    };
                    links.insert(name, resolved);
                }
                _ => {}
            }
        }
        spool.flush().map_err(io_err(std::env::temp_dir()))?;
        let spool = spool
            .into_inner()
            .map_err(|e| io_err(std::env::temp_dir())(e.into_error()))?;
        Ok(Source::Tar {
            spool,
            files,
            links,
        })
    }

    fn has(&self, name: &str) -> bool {
        match self {
            Source::Dir(d) => d.join(name).is_file(),
            Source::Tar { files, links, .. } => {
                files.contains_key(name) || links.contains_key(name)
            }
        }
    }

    fn open(&self, archive: &str, name: &str) -> Result<Box<dyn Read + '_>> {
        let missing = |why: &str| OciError::Image {
            archive: archive.to_string(),
            reason: format!("'{name}': {why}"),
        };
        let clean_name = clean(name).map_err(|r| missing(&r))?;
        match self {
            Source::Dir(dir) => {
                let p = dir.join(&clean_name);
                let base = dir.canonicalize().map_err(io_err(dir))?;
                let real = p
                    .canonicalize()
                    .map_err(|_| missing("not in the archive"))?;
                if !real.starts_with(&base) {
                    return Err(missing("resolves outside the image directory"));
                }
                let f = File::open(&real).map_err(io_err(&real))?;
                Ok(Box::new(f))
            }
            Source::Tar {
                spool,
                files,
                links,
            } => {
                let mut cur = clean_name;
                for _ in 0..16 {
                    if let Some((off, len)) = files.get(&cur) {
                        return Ok(Box::new(SpoolReader {
                            file: spool,
                            off: *off,
                            end: off + len,
                        }));
                    }
                    match links.get(&cur) {
                        Some(next) => cur = next.clone(),
                        None => return Err(missing("not in the archive")),
                    }
                }
                Err(missing("too many links"))
            }
        }
    }

    fn read_json(&self, archive: &str, name: &str, max: u64) -> Result<(Value, String)> {
        let mut buf = Vec::new();
        self.open(archive, name)?
            .take(max)
            .read_to_end(&mut buf)
            .map_err(io_err(format!("{archive}:{name}")))?;
        let v = serde_json::from_slice(&buf).map_err(|e| OciError::Image {
            archive: archive.to_string(),
            reason: format!("'{name}' is not valid JSON: {e}"),
        })?;
        Ok((v, digest::sha256(&buf)))
    }
}

fn blob_path(digest: &str) -> std::result::Result<String, String> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("'{digest}' is not a digest"))?;
    if alg != "sha256" || !digest::is_sha256(digest) {
        return Err(format!("unsupported digest '{digest}' (sha256 only)"));
    }
    Ok(format!("blobs/{alg}/{hex}"))
}

const JSON_MAX: u64 = 16 << 20;

/// What an archive says the image is, before any layer is read.
struct Described {
    format: &'static str,
    config_name: String,
    config_digest_expected: Option<String>,
    layers: Vec<String>,
    tag: Option<String>,
}

fn describe(src: &Source, archive: &str) -> Result<Described> {
    let bad = |reason: String| OciError::Image {
        archive: archive.to_string(),
        reason,
    };
    let str_of = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    if src.has("manifest.json") {
        let (m, _) = src.read_json(archive, "manifest.json", JSON_MAX)?;
        let first = m
            .as_array()
            .and_then(|a| a.first())
            .ok_or_else(|| bad("manifest.json lists no image".into()))?;
        let config_name =
            str_of(first, "Config").ok_or_else(|| bad("manifest.json: no Config".into()))?;
        let layers = first
            .get("Layers")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("manifest.json: no Layers".into()))?
            .iter()
            .map(|l| {
                l.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad("manifest.json: a layer is not a string".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        let tag = first
            .get("RepoTags")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string);
        return Ok(Described {
            format: "docker-save",
            config_name,
            config_digest_expected: None,
            layers,
            tag,
        });
    }
    if src.has("index.json") {
        if !src.has("oci-layout") {
            return Err(bad("index.json without oci-layout".into()));
        }
        let (index, _) = src.read_json(archive, "index.json", JSON_MAX)?;
        let mut desc = index
            .get("manifests")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .cloned()
            .ok_or_else(|| bad("index.json lists no manifest".into()))?;
        let tag = desc
            .get("annotations")
            .and_then(|a| {
                a.get("io.containerd.image.name")
                    .or_else(|| a.get("org.opencontainers.image.ref.name"))
            })
            .and_then(Value::as_str)
            .map(str::to_string);
        for _ in 0..8 {
            let digest =
                str_of(&desc, "digest").ok_or_else(|| bad("a descriptor has no digest".into()))?;
            let path = blob_path(&digest).map_err(&bad)?;
            let (blob, actual) = src.read_json(archive, &path, JSON_MAX)?;
            if actual != digest {
                return Err(bad(format!("blob {digest} has digest {actual}")));
            }
            if let Some(next) = blob.get("manifests").and_then(Value::as_array) {
                desc = next
                    .first()
                    .cloned()
                    .ok_or_else(|| bad(format!("index {digest} lists no manifest")))?;
                continue;
            }
            let config = blob
                .get("config")
                .and_then(|c| str_of(c, "digest"))
                .ok_or_else(|| bad(format!("manifest {digest} has no config")))?;
            let layers = blob
                .get("layers")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("manifest {digest} has no layers")))?
                .iter()
                .map(|l| {
                    str_of(l, "digest")
                        .ok_or_else(|| bad("a layer has no digest".into()))
                        .and_then(|d| blob_path(&d).map_err(&bad))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(Described {
                format: "oci-layout",
                config_name: blob_path(&config).map_err(&bad)?,
                config_digest_expected: Some(config),
                layers,
                tag,
            });
        }
        return Err(bad("indexes nested too deep".into()));
    }
    Err(bad(
        "neither a docker/podman save archive (manifest.json) nor an OCI layout (index.json)"
            .into(),
    ))
}

/// Imports the image in `archive` into the store (see the module doc) and returns its
/// record; the caller saves it with [`save_image`].
pub fn import<D: LayerDriver + ?Sized>(
    d: &mut D,
    archive: &Path,
    opts: &ImportOptions,
) -> Result<ImageRecord> {
    let shown = archive.display().to_string();
    let bad = |reason: String| OciError::Image {
        archive: shown.clone(),
        reason,
    };
    let src = Source::open_archive(archive, &opts.limits)?;
    let desc = describe(&src, &shown)?;
    let (config, config_digest) = src.read_json(&shown, &desc.config_name, JSON_MAX)?;
    if let Some(expected) = &desc.config_digest_expected {
        if *expected != config_digest {
            return Err(bad(format!("config {expected} has digest {config_digest}")));
        }
    }
    let diff_ids: Vec<String> = config
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the config has no rootfs.diff_ids".into()))?
        .iter()
        .map(|v| v.as_str().map(str::to_string).unwrap_or_default())
        .collect();
    if diff_ids.len() != desc.layers.len() {
        return Err(bad(format!(
            "the manifest lists {} layers, the config's diff_ids {}",
            desc.layers.len(),
            diff_ids.len()
        )));
    }
    if desc.layers.is_empty() {
        return Err(bad("the image has no layers".into()));
    }
    let mut created: Vec<LayerId> = Vec::new();
    let result = import_layers(d, &src, &shown, &desc.layers, &diff_ids, opts, &mut created);
    let layers = match result {
        Ok(l) => l,
        Err(e) => {
            for id in created.iter().rev() {
                let _ = d.remove_layer(id);
            }
            return Err(e);
        }
    };
    let top_layer = layers
        .last()
        .map(|l| l.chain_id.clone())
        .unwrap_or_default();
    let short = config_digest
        .strip_prefix("sha256:")
        .unwrap_or(&config_digest)
        .chars()
        .take(12)
        .collect::<String>();
    let name = opts.name.clone().or(desc.tag).unwrap_or(short);
    let platform = match (
        config.get("os").and_then(Value::as_str),
        config.get("architecture").and_then(Value::as_str),
    ) {
        (Some(os), Some(arch)) => Some(format!("{os}/{arch}")),
        _ => None,
    };
    Ok(ImageRecord {
        name,
        id: config_digest,
        top_layer,
        layers,
        format: desc.format.to_string(),
        source: shown.clone(),
        created: config
            .get("created")
            .and_then(Value::as_str)
            .map(str::to_string),
        platform,
        history: config
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        config: config
            .get("config")
            .and_then(|c| serde_json::from_value(c.clone()).ok()),
    })
}

fn import_layers<D: LayerDriver + ?Sized>(
    d: &mut D,
    src: &Source,
    shown: &str,
    names: &[String],
    diff_ids: &[String],
    opts: &ImportOptions,
    created: &mut Vec<LayerId>,
) -> Result<Vec<ImageLayer>> {
    let mut out = Vec::new();
    let mut parent: Option<LayerId> = None;
    for (i, (name, expected)) in names.iter().zip(diff_ids).enumerate() {
        let label = format!("{shown}:{name}");
        let mut blob = HashingReader::new(src.open(shown, name)?);
        let parsed = tar_in::parse(&label, &mut blob, &opts.limits)?;
        let gzip_size = match parsed.compression {
            Compression::Gzip => blob.count(),
            _ => gzip_size(src.open(shown, name)?).map_err(io_err(&label))?,
        };
        if parsed.diff_id != *expected {
            return Err(OciError::DiffIdMismatch {
                archive: shown.to_string(),
                index: i,
                layer: name.clone(),
                expected: expected.clone(),
                actual: parsed.diff_id.clone(),
            });
        }
        let chain = chain_id(parent.as_ref().map(LayerId::as_str), &parsed.diff_id);
        let id = LayerId::new(&chain).map_err(|e| OciError::Image {
            archive: shown.to_string(),
            reason: e,
        })?;
        // an active layer of this chain id is what an interrupted import of this image
        // left (import commits every layer it makes before it goes on): made again
        if d.exists(&id) {
            let info = d.layer(&id)?;
            if info.parent == parent && info.state == LayerState::Active {
                d.remove_layer(&id)?;
            }
        }
        let shared = d.exists(&id);
        if shared {
            let info = d.layer(&id)?;
            if info.parent != parent || info.state != LayerState::Committed {
                return Err(OciError::Image {
                    archive: shown.to_string(),
                    reason: format!(
                        "layer {id} exists in the store but is not the committed layer this image needs"
                    ),
                });
            }
        } else {
            d.create_layer(&id, parent.as_ref())?;
            created.push(id.clone());
            apply::apply_parsed(d, &id, &parsed)?;
            d.commit(&id)?;
        }
        out.push(ImageLayer {
            chain_id: chain,
            diff_id: parsed.diff_id.clone(),
            size: parsed.content_bytes,
            shared,
            tar_size: Some(parsed.tar_size),
            gzip_size: Some(gzip_size),
        });
        parent = Some(id);
    }
    Ok(out)
}

/// Bytes of a layer blob (any compression) once compressed with gzip's default level.
fn gzip_size(blob: impl Read) -> io::Result<u64> {
    struct Count(u64);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let (mut raw, _) = tar_in::decompress(blob)?;
    let mut gz = flate2::write::GzEncoder::new(Count(0), flate2::Compression::default());
    io::copy(&mut raw, &mut gz)?;
    Ok(gz.finish()?.0)
}
