//! Commands on the files of one layer: `write`, `cat`, `ls`, `stat`, `rm`, `mkdir`, `mv`,
//! `truncate`, `chmod`, `chown`, `ln`.
//!
//! Each command validates everything it was given first, then opens the store (for reading
//! or writing), then makes its driver calls through [`Session::op`] so that `--trace` shows
//! them.

use super::args::Global;
use super::output::{self, Columns};
use super::session::Session;
use super::values;
use anyhow::{anyhow, Context, Result};
use layerlab_core::{ops, FileKind, LayerDriver, LayerId, LayerPath, Metadata};
use layerlab_drivers::journal::{self, Intent};
use layerlab_drivers::Access;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bytes asked of the driver per read by `cat` and `export`.
pub const CHUNK: u64 = 1 << 20;

/// The mode of files made by `write` and of directories made by `mkdir`.
pub const FILE_MODE: u32 = 0o644;
/// The mode of directories made by `mkdir`.
pub const DIR_MODE: u32 = 0o755;

/// Where `write` puts its bytes.
#[derive(Debug, Clone, Copy)]
pub enum Position {
    /// Replace the whole content (creating the file if needed).
    Replace,
    /// At this offset of the existing file.
    Offset(u64),
    /// At the end of the existing file.
    Append,
}

/// `write ID PATH (--data TEXT | --from FILE) [--offset N | --append]`
pub fn write(
    g: &Global,
    id: &str,
    path: &str,
    data: Option<String>,
    from: Option<PathBuf>,
    pos: Position,
) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    let bytes = match (data, from) {
        (Some(text), _) => text.into_bytes(),
        (None, Some(file)) => std::fs::read(&file)
            .with_context(|| format!("layer {id}: {path}: reading --from {}", file.display()))?,
        (None, None) => {
            return Err(anyhow!(
                "layer {id}: {path}: give --data TEXT or --from FILE"
            ))
        }
    };
    let mut s = Session::open(g, Access::Write)?;
    let root = s.root().to_path_buf();
    let how = match pos {
        Position::Replace => String::new(),
        Position::Offset(n) => format!(" at offset {n}"),
        Position::Append => " (append)".to_string(),
    };
    let n = match bytes.len() {
        1 => "1 byte".to_string(),
        n => format!("{n} bytes"),
    };
    s.op(
        || format!("write {id} {path}{how}: {n}"),
        |d| match pos {
            Position::Replace => replace_file(d, &root, &id, &path, &bytes),
            Position::Offset(off) => d.write(&id, &path, off, &bytes),
            Position::Append => d.append(&id, &path, &bytes),
        },
    )?;
    s.finish();
    Ok(())
}

/// `write` without an offset: an existing file's content is replaced all or nothing
/// ([`LayerDriver::replace`]); a new file is created and written under the journal
/// (`layerlab_drivers::journal`), so that it is whole or absent.
fn replace_file<D: LayerDriver>(
    d: &mut D,
    root: &Path,
    id: &LayerId,
    path: &LayerPath,
    bytes: &[u8],
) -> layerlab_core::Result<()> {
    match d.stat(id, path) {
        // a shorter content: the replace is journalled, so that a kill between a driver's
        // write and its cut is completed by the next writer (a staged replace is whole
        // on its own; the intent then finds nothing to do)
        Ok(m) if m.kind == FileKind::File && m.size > bytes.len() as u64 => {
            let intent = Intent::Cut {
                layer: id.clone(),
                path: path.clone(),
                len: bytes.len() as u64,
                crc: journal::cut::checksum(bytes),
            };
            return journal::run(d, root, &intent, |d| d.replace(id, path, bytes));
        }
        Ok(_) => return d.replace(id, path, bytes),
        Err(layerlab_core::Error::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let intent = Intent::Undo {
        layer: id.clone(),
        remove: vec![path.clone()],
    };
    journal::run(d, root, &intent, |d| {
        d.create(id, path, FILE_MODE)?;
        if bytes.is_empty() {
            return Ok(());
        }
        d.write(id, path, 0, bytes)
    })
}

/// `cat ID PATH`: streams the file to `out` chunk by chunk.
pub fn cat<W: Write>(out: &mut W, g: &Global, id: &str, path: &str) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    let mut s = Session::open(g, Access::Read)?;
    s.op(
        || format!("cat {id} {path}"),
        |d| -> Result<()> {
            let mut offset = 0u64;
            loop {
                let chunk = d.read(&id, &path, offset, CHUNK)?;
                if chunk.is_empty() {
                    break;
                }
                out.write_all(&chunk)?;
                offset += chunk.len() as u64;
            }
            out.flush()?;
            Ok(())
        },
    )?;
    s.finish();
    Ok(())
}

/// One entry as `ls --json` and `stat --json` print it.
#[derive(Debug, Serialize)]
pub struct EntryJson {
    /// The entry's name (`/` for the root).
    pub name: String,
    /// Its full path in the layer.
    pub path: LayerPath,
    /// `file`, `dir` or `symlink`.
    pub kind: FileKind,
    /// Permission bits as a number.
    pub mode: u32,
    /// Permission bits as four octal digits.
    pub mode_octal: String,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Length (files), target length (symlinks), 0 (directories).
    pub size: u64,
    /// Hard links within the layer.
    pub nlink: u32,
    /// A symlink's target.
    pub target: Option<String>,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: u32,
    /// Major and minor of a device node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<(u32, u32)>,
    /// Extended attributes (`stat` only), values as getfattr prints them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
    /// The layer whose storage provides the entry.
    pub layer: String,
}

impl EntryJson {
    fn new(path: &LayerPath, md: &Metadata) -> EntryJson {
        EntryJson {
            name: path.file_name().unwrap_or("/").to_string(),
            path: path.clone(),
            kind: md.kind,
            mode: md.mode,
            mode_octal: output::octal(md.mode),
            uid: md.uid,
            gid: md.gid,
            size: md.size,
            nlink: md.nlink,
            target: md.target.clone(),
            mtime: md.mtime,
            mtime_nsec: md.mtime_nsec,
            device: matches!(md.kind, FileKind::CharDevice | FileKind::BlockDevice)
                .then(|| layerlab_core::dev_parts(md.rdev)),
            xattrs: BTreeMap::new(),
            layer: md.layer.to_string(),
        }
    }
}

/// `ls ID [PATH] [--json]`: a directory's merged entries (or one file), each with the
/// layer that provides it.
pub fn ls<W: Write>(
    out: &mut W,
    g: &Global,
    id: &str,
    path: Option<&str>,
    json: bool,
) -> Result<()> {
    let (id, path) = values::id_path(id, path.unwrap_or("/"))?;
    let mut s = Session::open(g, Access::Read)?;
    let entries = s.op(|| format!("ls {id} {path}"), |d| list(d, &id, &path))?;
    s.finish();
    if json {
        let list: Vec<EntryJson> = entries
            .iter()
            .map(|(p, md)| EntryJson::new(p, md))
            .collect();
        return output::json(out, &list);
    }
    Columns::of(&entries)
        .left("MODE", |(_, md)| output::mode_string(md.kind, md.mode))
        .left("OWNER", |(_, md)| format!("{}:{}", md.uid, md.gid))
        .right("SIZE", |(_, md)| md.size.to_string())
        .left("LAYER", |(_, md)| md.layer.to_string())
        .left("NAME", |(p, md)| {
            let name = p.file_name().unwrap_or("/");
            match &md.target {
                Some(target) => format!("{name} -> {target}"),
                None => name.to_string(),
            }
        })
        .print(out)?;
    Ok(())
}

fn list<D: LayerDriver>(
    d: &mut D,
    id: &LayerId,
    path: &LayerPath,
) -> layerlab_core::Result<Vec<(LayerPath, Metadata)>> {
    let md = d.stat(id, path)?;
    if md.kind != FileKind::Dir {
        return Ok(vec![(path.clone(), md)]);
    }
    let mut out = Vec::new();
    for e in d.readdir(id, path)? {
        let child = ops::child(path, &e.name)?;
        let md = d.stat(id, &child)?;
        out.push((child, md));
    }
    Ok(out)
}

/// `stat ID PATH [--json]`
pub fn stat<W: Write>(out: &mut W, g: &Global, id: &str, path: &str, json: bool) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    let mut s = Session::open(g, Access::Read)?;
    let (md, xattrs) = s.op(
        || format!("stat {id} {path}"),
        |d| Ok::<_, layerlab_core::Error>((d.stat(&id, &path)?, ops::xattrs(d, &id, &path)?)),
    )?;
    s.finish();
    if json {
        let mut e = EntryJson::new(&path, &md);
        e.xattrs = xattrs
            .iter()
            .map(|(n, v)| (n.clone(), super::attr_cmds::value_text(v)))
            .collect();
        return output::json(out, &e);
    }
    let mut pairs = vec![
        ("path".to_string(), path.to_string()),
        ("kind".to_string(), md.kind.as_str().to_string()),
        (
            "mode".to_string(),
            format!(
                "{} ({})",
                output::octal(md.mode),
                output::mode_string(md.kind, md.mode)
            ),
        ),
        ("owner".to_string(), format!("{}:{}", md.uid, md.gid)),
        ("size".to_string(), md.size.to_string()),
        ("nlink".to_string(), md.nlink.to_string()),
    ];
    if let Some(t) = &md.target {
        pairs.push(("target".to_string(), t.clone()));
    }
    if matches!(md.kind, FileKind::CharDevice | FileKind::BlockDevice) {
        let (major, minor) = layerlab_core::dev_parts(md.rdev);
        pairs.push(("device".to_string(), format!("{major}:{minor}")));
    }
    pairs.push((
        "mtime".to_string(),
        layerlab_core::time::format(md.mtime, md.mtime_nsec),
    ));
    for (n, v) in &xattrs {
        pairs.push((format!("xattr {n}"), super::attr_cmds::value_text(v)));
    }
    pairs.push(("layer".to_string(), md.layer.to_string()));
    output::key_values(out, &pairs)?;
    Ok(())
}

/// A change of one path in one layer, run as one traced operation on a store opened for
/// writing.
pub(crate) fn change<T>(
    g: &Global,
    label: impl FnOnce() -> String,
    f: impl FnOnce(&mut layerlab_drivers::AnyDriver) -> layerlab_core::Result<T>,
) -> Result<T> {
    let mut s = Session::open(g, Access::Write)?;
    let r = s.op(label, f)?;
    s.finish();
    Ok(r)
}

/// `rm ID PATH [-r]`
pub fn rm(g: &Global, id: &str, path: &str, recursive: bool) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    if recursive {
        // under the journal: an interrupted rm -r is completed by the next writer
        let mut s = Session::open(g, Access::Write)?;
        let root = s.root().to_path_buf();
        let intent = Intent::Redo {
            layer: id.clone(),
            remove_all: path.clone(),
        };
        s.op(
            || format!("rm -r {id} {path}"),
            |d| journal::run(d, &root, &intent, |d| ops::remove_all(d, &id, &path)),
        )?;
        s.finish();
        Ok(())
    } else {
        change(g, || format!("rm {id} {path}"), |d| d.unlink(&id, &path))
    }
}

/// `mkdir ID PATH [-p]`
pub fn mkdir(g: &Global, id: &str, path: &str, parents: bool) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    if parents {
        // under the journal: the topmost directory made is removed again if interrupted
        let mut s = Session::open(g, Access::Write)?;
        let root = s.root().to_path_buf();
        s.op(
            || format!("mkdir -p {id} {path}"),
            |d| {
                let Some(top) = first_absent(d, &id, &path)? else {
                    return ops::mkdir_p(d, &id, &path, DIR_MODE);
                };
                let intent = Intent::Undo {
                    layer: id.clone(),
                    remove: vec![top],
                };
                journal::run(d, &root, &intent, |d| ops::mkdir_p(d, &id, &path, DIR_MODE))
            },
        )?;
        s.finish();
        Ok(())
    } else {
        change(
            g,
            || format!("mkdir {id} {path}"),
            |d| d.mkdir(&id, &path, DIR_MODE),
        )
    }
}

/// The first of `path`'s ancestors (and itself) absent from the view, top down.
pub(crate) fn first_absent<D: LayerDriver>(
    d: &mut D,
    id: &LayerId,
    path: &LayerPath,
) -> layerlab_core::Result<Option<LayerPath>> {
    let mut all = path.ancestors();
    all.push(path.clone());
    for p in all.into_iter().filter(|p| !p.is_root()) {
        match d.stat(id, &p) {
            Ok(_) => {}
            Err(layerlab_core::Error::NotFound { .. }) => return Ok(Some(p)),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// `mv ID SRC DST`
pub fn mv(g: &Global, id: &str, src: &str, dst: &str) -> Result<()> {
    let id = values::id(id)?;
    let src = values::path(&id, src)?;
    let dst = values::path(&id, dst)?;
    change(
        g,
        || format!("mv {id} {src} {dst}"),
        |d| d.rename(&id, &src, &dst),
    )
}

/// `truncate ID PATH SIZE`
pub fn truncate(g: &Global, id: &str, path: &str, size: &str) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    let size = layerlab_core::size::parse(size).map_err(|e| anyhow!("layer {id}: {path}: {e}"))?;
    change(
        g,
        || format!("truncate {id} {path} {size}"),
        |d| d.truncate(&id, &path, size),
    )
}

/// `chmod ID MODE PATH`
pub fn chmod(g: &Global, id: &str, mode: &str, path: &str) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    let mode = layerlab_core::mode::parse(mode).map_err(|e| anyhow!("layer {id}: {path}: {e}"))?;
    change(
        g,
        || format!("chmod {id} {} {path}", output::octal(mode)),
        |d| d.chmod(&id, &path, mode),
    )
}

/// `chown ID UID:GID PATH`
pub fn chown(g: &Global, id: &str, owner: &str, path: &str) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    let (uid, gid) = values::owner(owner).map_err(|e| anyhow!("layer {id}: {path}: {e}"))?;
    change(
        g,
        || format!("chown {id} {uid}:{gid} {path}"),
        |d| d.chown(&id, &path, uid, gid),
    )
}

/// `ln ID TARGET LINKPATH [-s]`
pub fn ln(g: &Global, id: &str, target: &str, link: &str, symbolic: bool) -> Result<()> {
    let id = values::id(id)?;
    let link = values::path(&id, link)?;
    if symbolic {
        change(
            g,
            || format!("ln -s {id} {target} {link}"),
            |d| d.symlink(&id, target, &link),
        )
    } else {
        let existing = values::path(&id, target)?;
        change(
            g,
            || format!("ln {id} {existing} {link}"),
            |d| d.hardlink(&id, &existing, &link),
        )
    }
}
