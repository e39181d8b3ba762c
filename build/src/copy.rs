//! COPY and ADD: the sources (from the build context, or from a stage's layer with
//! `--from`), their checksum for the cache, and the layer tar that puts them in place.
//!
//! - Sources are paths relative to the context (or absolute in the stage), cleaned; one
//!   that leaves the context is refused. A glob (`*`, `?`, `[...]`, `**`) matches every
//!   context path of the same depth (the [`crate::ignore`] matcher); excluded paths do not
//!   exist for COPY.
//! - A directory source copies what it holds, recursively, into the destination; a file
//!   goes to `DEST/NAME` when the destination ends in `/`, is an existing directory, or
//!   several sources are copied (then it must end in `/`), else to `DEST` itself.
//! - Copied entries belong to 0:0 unless `--chown` (numbers, or names looked up in the
//!   image's `/etc/passwd` and `/etc/group`); `--chmod` replaces every mode; mtimes are
//!   kept.
//! - `ADD` of a local tar (plain, gzip or zstd) extracts it into the destination; `ADD` of
//!   a URL is refused: builds here have no network.
//! - The checksum covers each entry's destination name, kind, mode, owner and content (or
//!   link target), not its mtime: touching a file does not invalidate the cache.
//! - Entries are written as one tar and applied with the oci crate's checked apply, so a
//!   failed step is undone as `layerlab apply` undoes one.

use crate::error::{BuildError, Result};
use crate::ignore::{self, Ignore};
use layerlab_core::{ops, FileKind, IoContext, LayerDriver, LayerId, LayerPath};
use layerlab_oci::LayerReader;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The build context: its directory, its ignore rules and the paths they leave.
#[derive(Debug)]
pub struct Context {
    /// The directory.
    pub root: PathBuf,
    /// `.containerignore` / `.dockerignore`.
    pub ignore: Ignore,
    /// Every path not excluded, relative, sorted (a directory before what it holds).
    pub paths: Vec<String>,
}

impl Context {
    /// Walks the context once (symlinks not followed).
    pub fn open(root: &Path) -> Result<Context> {
        if !root.is_dir() {
            return Err(BuildError::Context {
                context: root.display().to_string(),
                reason: "not a directory".into(),
            });
        }
        let ignore = Ignore::load(root)?;
        let mut paths = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let dir = root.join(&rel);
            let mut names = Vec::new();
            for e in std::fs::read_dir(&dir).at(&dir)? {
                let e = e.at(&dir)?;
                names.push(e.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            for name in names.into_iter().rev() {
                let child = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let md = std::fs::symlink_metadata(root.join(&child)).at(root.join(&child))?;
                let excluded = ignore.excluded(&child);
                if md.is_dir() && (!excluded || ignore.has_exceptions()) {
                    stack.push(child.clone());
                }
                if !excluded {
                    paths.push(child);
                }
            }
        }
        paths.sort_by(|a, b| a.split('/').cmp(b.split('/')));
        Ok(Context {
            root: root.to_path_buf(),
            ignore,
            paths,
        })
    }

    fn shown(&self) -> String {
        self.root.display().to_string()
    }
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symlink and its target.
    Symlink(String),
    /// A local tar archive ADD extracts into the destination directory.
    Archive,
}

/// Where an entry's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A host file of the context.
    Host(PathBuf),
    /// A path of a stage's layer.
    Layer(LayerPath),
}

/// One entry to put in the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The destination, absolute in the layer (`/app/x`).
    pub dest: String,
    /// Its kind.
    pub kind: ItemKind,
    /// Mode bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Where its content comes from.
    pub origin: Origin,
}

/// How COPY or ADD was asked.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// ADD.
    pub add: bool,
    /// Sources, substituted.
    pub srcs: &'a [String],
    /// Destination, absolute (WORKDIR applied), with its trailing `/` if written.
    pub dest: &'a str,
    /// `--chown`, resolved.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`, parsed.
    pub mode: Option<u32>,
}

fn is_url(s: &str) -> bool {
    ["http://", "https://", "git@", "git://", "ssh://"]
        .iter()
        .any(|p| s.starts_with(p))
}

fn join_dest(dest: &str, name: &str) -> String {
    let base = dest.trim_end_matches('/');
    if name.is_empty() {
        return if base.is_empty() {
            "/".into()
        } else {
            base.into()
        };
    }
    format!("{base}/{name}")
}

/// What one source matched: its path (relative to the context, or absolute in the
/// layer) and whether it is a directory.
struct Matched {
    path: String,
    dir: bool,
}

/// A source resolved, before the destination rule.
fn destination(n_sources: usize, req: &Request<'_>, dest_is_dir: bool) -> Result<bool> {
    let dir = req.dest.ends_with('/') || dest_is_dir;
    if n_sources > 1 && !req.dest.ends_with('/') {
        return Err(BuildError::Context {
            context: req.dest.to_string(),
            reason:
                "with more than one source the destination must be a directory and end with a /"
                    .into(),
        });
    }
    Ok(dir)
}

/// The entries COPY or ADD makes from the build context.
pub fn from_context(ctx: &Context, req: &Request<'_>, dest_is_dir: bool) -> Result<Vec<Item>> {
    let mut matched = Vec::new();
    for src in req.srcs {
        if is_url(src) {
            return Err(BuildError::Context {
                context: ctx.shown(),
                reason: format!(
                    "'{src}': ADD of a URL is refused: builds here have no network (download it into the context and COPY it)"
                ),
            });
        }
        let pat = ignore::source_pattern(src, &ctx.shown())?;
        let found: Vec<&String> = if pat.is_empty() {
            vec![]
        } else {
            ctx.paths
                .iter()
                .filter(|p| {
                    let comps: Vec<&str> = p.split('/').collect();
                    ignore::glob_parts(&pat, &comps)
                })
                .collect()
        };
        if pat.is_empty() {
            matched.push(Matched {
                path: String::new(),
                dir: true,
            });
            continue;
        }
        if found.is_empty() {
            return Err(BuildError::Context {
                context: ctx.shown(),
                reason: if ignore::is_glob(src) {
                    format!("no file matches '{src}'")
                } else {
                    format!(
                        "'{src}': no such file in the build context (or excluded by {})",
                        ctx.ignore.file.as_deref().unwrap_or(".dockerignore")
                    )
                },
            });
        }
        for p in found {
            let dir = ctx
                .root
                .join(p)
                .symlink_metadata()
                .is_ok_and(|m| m.is_dir());
            matched.push(Matched {
                path: p.clone(),
                dir,
            });
        }
    }
    let many = matched.len() > 1;
    let into_dir = destination(matched.len(), req, dest_is_dir)?;
    let mut items = Vec::new();
    for m in &matched {
        if m.dir {
            let prefix = if m.path.is_empty() {
                String::new()
            } else {
                format!("{}/", m.path)
            };
            for p in ctx.paths.iter().filter(|p| p.starts_with(&prefix)) {
                let rel = &p[prefix.len()..];
                items.push(host_item(ctx, p, join_dest(req.dest, rel), req, false)?);
            }
        } else {
            let name = m.path.rsplit('/').next().unwrap_or(&m.path);
            let dest = if into_dir || many {
                join_dest(req.dest, name)
            } else {
                req.dest.to_string()
            };
            items.push(host_item(ctx, &m.path, dest, req, req.add)?);
        }
    }
    Ok(items)
}

fn host_item(ctx: &Context, rel: &str, dest: String, req: &Request<'_>, add: bool) -> Result<Item> {
    let host = ctx.root.join(rel);
    let md = std::fs::symlink_metadata(&host).at(&host)?;
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        ItemKind::Dir
    } else if ft.is_symlink() {
        let t = std::fs::read_link(&host).at(&host)?;
        ItemKind::Symlink(t.to_string_lossy().into_owned())
    } else if ft.is_file() {
        if add && is_archive(&host)? {
            ItemKind::Archive
        } else {
            ItemKind::File
        }
    } else {
        return Err(BuildError::Context {
            context: ctx.shown(),
            reason: format!("'{rel}': only files, directories and symlinks can be copied"),
        });
    };
    let (uid, gid) = req.owner.unwrap_or((0, 0));
    // an archive is unpacked into the destination directory, not under its own name
    let dest = match kind {
        ItemKind::Archive => req.dest.to_string(),
        _ => dest,
    };
    Ok(Item {
        dest,
        mode: req.mode.unwrap_or(md.permissions().mode() & 0o7777),
        uid,
        gid,
        mtime: md.mtime(),
        kind,
        origin: Origin::Host(host),
    })
}

/// Whether a file is a tar (plain, gzip or zstd): `ustar` at byte 257 of its
/// uncompressed start.
fn is_archive(path: &Path) -> Result<bool> {
    let f = File::open(path).at(path)?;
    let Ok((mut r, _)) = layerlab_oci::tar_in::decompress(f) else {
        return Ok(false);
    };
    let mut head = vec![0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    Ok(got == 512 && &head[257..262] == b"ustar")
}

/// The entries `COPY --from=STAGE` makes from the stage's top layer.
pub fn from_layer<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    req: &Request<'_>,
    dest_is_dir: bool,
) -> Result<Vec<Item>> {
    let mut all: Option<Vec<(LayerPath, FileKind)>> = None;
    let mut matched = Vec::new();
    let no_such = |src: &str| BuildError::Context {
        context: format!("layer {layer}"),
        reason: format!("'{src}': no such file"),
    };
    for src in req.srcs {
        let pat = ignore::clean(src).ok_or_else(|| no_such(src))?;
        if ignore::is_glob(src) {
            if all.is_none() {
                all = Some(ops::walk(d, layer, &LayerPath::root())?);
            }
            let mut any = false;
            for (p, kind) in all.iter().flatten() {
                let comps: Vec<&str> = p.components().collect();
                if ignore::glob_parts(&pat, &comps) {
                    matched.push(Matched {
                        path: p.as_str().to_string(),
                        dir: *kind == FileKind::Dir,
                    });
                    any = true;
                }
            }
            if !any {
                return Err(no_such(src));
            }
        } else {
            let p = LayerPath::parse(&format!("/{}", pat.join("/"))).map_err(|_| no_such(src))?;
            let md = d.stat(layer, &p).map_err(|_| no_such(src))?;
            matched.push(Matched {
                path: p.as_str().to_string(),
                dir: md.kind == FileKind::Dir,
            });
        }
    }
    let many = matched.len() > 1;
    let into_dir = destination(matched.len(), req, dest_is_dir)?;
    let mut items = Vec::new();
    for m in &matched {
        let p = LayerPath::parse(&m.path).map_err(|_| no_such(&m.path))?;
        if m.dir {
            for (child, _) in ops::walk(d, layer, &p)? {
                if child == p {
                    continue;
                }
                let rel = child
                    .rebase(&p, &LayerPath::root())
                    .unwrap_or(child.clone());
                let dest = join_dest(req.dest, rel.relative());
                items.push(layer_item(d, layer, &child, dest, req)?);
            }
        } else {
            let name = p.file_name().unwrap_or_default().to_string();
            let dest = if into_dir || many {
                join_dest(req.dest, &name)
            } else {
                req.dest.to_string()
            };
            items.push(layer_item(d, layer, &p, dest, req)?);
        }
    }
    Ok(items)
}

fn layer_item<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    p: &LayerPath,
    dest: String,
    req: &Request<'_>,
) -> Result<Item> {
    let md = d.stat(layer, p)?;
    let kind = match md.kind {
        FileKind::Dir => ItemKind::Dir,
        FileKind::File => ItemKind::File,
        FileKind::Symlink => ItemKind::Symlink(md.target.clone().unwrap_or_default()),
        _ => {
            return Err(BuildError::Context {
                context: format!("layer {layer}"),
                reason: format!("'{p}': only files, directories and symlinks can be copied"),
            })
        }
    };
    let (uid, gid) = req.owner.unwrap_or((0, 0));
    Ok(Item {
        dest,
        kind,
        mode: req.mode.unwrap_or(md.mode),
        uid,
        gid,
        mtime: md.mtime,
        origin: Origin::Layer(p.clone()),
    })
}

/// Opens an entry's content.
fn open<'a, D: LayerDriver + ?Sized>(
    d: &'a mut D,
    src: Option<&'a LayerId>,
    origin: &'a Origin,
) -> Result<Box<dyn Read + 'a>> {
    match (origin, src) {
        (Origin::Host(p), _) => Ok(Box::new(File::open(p).at(p)?)),
        (Origin::Layer(path), Some(layer)) => Ok(Box::new(LayerReader::new(d, layer, path))),
        (Origin::Layer(path), None) => Err(BuildError::Context {
            context: path.to_string(),
            reason: "a layer path without its layer".into(),
        }),
    }
}

/// The checksum of the entries (see the module doc), `sha256:...`.
pub fn checksum<D: LayerDriver + ?Sized>(
    d: &mut D,
    src: Option<&LayerId>,
    items: &[Item],
) -> Result<String> {
    let mut h = Sha256::new();
    for it in items {
        let content = match &it.kind {
            ItemKind::Dir => String::new(),
            ItemKind::Symlink(t) => t.clone(),
            ItemKind::File | ItemKind::Archive => {
                let r = open(d, src, &it.origin)?;
                let (digest, _) = layerlab_oci::digest::HashingReader::new(r)
                    .finish()
                    .at(&it.dest)?;
                digest
            }
        };
        let kind = match it.kind {
            ItemKind::Dir => "dir",
            ItemKind::File => "file",
            ItemKind::Symlink(_) => "symlink",
            ItemKind::Archive => "archive",
        };
        h.update(
            format!(
                "{kind}\0{}\0{:o}\0{}:{}\0{content}\n",
                it.dest, it.mode, it.uid, it.gid
            )
            .as_bytes(),
        );
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

fn header(kind: tar::EntryType, it: &Item, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(it.mode);
    h.set_uid(u64::from(it.uid));
    h.set_gid(u64::from(it.gid));
    h.set_mtime(u64::try_from(it.mtime).unwrap_or(0));
    h.set_size(size);
    h
}

/// Writes the entries as one layer tar in a temporary file, rewound.
pub fn write_tar<D: LayerDriver + ?Sized>(
    d: &mut D,
    src: Option<&LayerId>,
    items: &[Item],
) -> Result<File> {
    let tmp = std::env::temp_dir();
    let file = tempfile::tempfile().at(&tmp)?;
    let mut b = tar::Builder::new(BufWriter::new(file));
    for it in items {
        let name = it.dest.trim_start_matches('/');
        match &it.kind {
            ItemKind::Dir => {
                let mut h = header(tar::EntryType::Directory, it, 0);
                b.append_data(&mut h, format!("{name}/"), io::empty())
                    .at(&it.dest)?;
            }
            ItemKind::Symlink(t) => {
                let mut h = header(tar::EntryType::Symlink, it, 0);
                b.append_link(&mut h, name, t).at(&it.dest)?;
            }
            ItemKind::File => {
                let size = match &it.origin {
                    Origin::Host(p) => std::fs::metadata(p).at(p)?.len(),
                    Origin::Layer(p) => match src {
                        Some(l) => d.stat(l, p)?.size,
                        None => 0,
                    },
                };
                let mut h = header(tar::EntryType::Regular, it, size);
                let r = open(d, src, &it.origin)?;
                b.append_data(&mut h, name, r.take(size)).at(&it.dest)?;
            }
            ItemKind::Archive => {
                let Origin::Host(p) = &it.origin else {
                    continue;
                };
                extract_into(&mut b, p, name)?;
            }
        }
    }
    let w = b.into_inner().at(&tmp)?;
    let mut file = w.into_inner().map_err(|e| e.into_error()).at(&tmp)?;
    file.rewind().at(&tmp)?;
    Ok(file)
}

/// Re-writes a local archive's entries under `dest` (ADD's extraction).
fn extract_into<W: Write>(b: &mut tar::Builder<W>, archive: &Path, dest: &str) -> Result<()> {
    let bad = |reason: String| BuildError::Context {
        context: archive.display().to_string(),
        reason,
    };
    let f = File::open(archive).at(archive)?;
    let (r, _) = layerlab_oci::tar_in::decompress(f).at(archive)?;
    let mut ar = tar::Archive::new(r);
    let entries = ar.entries().map_err(|e| bad(format!("not a tar: {e}")))?;
    let prefix = dest.trim_end_matches('/');
    let under = |name: &str| -> std::result::Result<String, String> {
        let parts = ignore::clean(name).ok_or_else(|| format!("'{name}' leaves the archive"))?;
        let rel = parts.join("/");
        Ok(match (prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel,
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}/{rel}"),
        })
    };
    for e in entries {
        let mut e = e.map_err(|e| bad(format!("not a tar: {e}")))?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let path = under(&name).map_err(&bad)?;
        if path.is_empty() {
            // the archive's own root (`./`) when unpacking into `/`: the image's root stays
            continue;
        }
        let mut h = e.header().clone();
        let kind = h.entry_type();
        if kind == tar::EntryType::Link {
            let target = e
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            let t = under(&target).map_err(&bad)?;
            b.append_link(&mut h, &path, &t).at(archive)?;
        } else if kind == tar::EntryType::Symlink {
            let target = e
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            b.append_link(&mut h, &path, &target).at(archive)?;
        } else if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        } else {
            let path = if kind == tar::EntryType::Directory {
                format!("{path}/")
            } else {
                path
            };
            b.append_data(&mut h, &path, &mut e).at(archive)?;
        }
    }
    Ok(())
}

/// `--chown=USER[:GROUP]`: numbers, or names from the image's `/etc/passwd` and
/// `/etc/group` (given as text); the group defaults to the user's primary group, as
/// Docker does.
pub fn owner(spec: &str, passwd: &str, group: &str) -> std::result::Result<(u32, u32), String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let field = |text: &str, name: &str, idx: usize| -> Option<u32> {
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .and_then(|f| f.get(idx).and_then(|x| x.parse().ok()))
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, field(passwd, u, 3).unwrap_or(n)),
        Err(_) => {
            let uid = field(passwd, u, 2)
                .ok_or_else(|| format!("no user '{u}' in the image's /etc/passwd"))?;
            (uid, field(passwd, u, 3).unwrap_or(uid))
        }
    };
    let gid = match g {
        None => {
            if u.parse::<u32>().is_ok() {
                uid
            } else {
                primary
            }
        }
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => field(group, g, 2)
                .ok_or_else(|| format!("no group '{g}' in the image's /etc/group"))?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_by_number_and_name() {
        let passwd = "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
        let group = "root:x:0:\nstaff:x:50:\n";
        assert_eq!(owner("5", "", ""), Ok((5, 5)));
        assert_eq!(owner("5:7", "", ""), Ok((5, 7)));
        assert_eq!(owner("app", passwd, group), Ok((1000, 1001)));
        assert_eq!(owner("app:staff", passwd, group), Ok((1000, 50)));
        assert!(owner("nobody", passwd, group).is_err());
    }
}
