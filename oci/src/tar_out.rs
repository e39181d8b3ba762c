//! A layer's changeset as an OCI layer tar (`layerlab diff ID --tar FILE`).
//!
//! What the tar holds, derived from the two views (the layer's and its parent's) through
//! [`LayerDriver::changes`]:
//! - every added or modified entry, with its mode (setuid/setgid/sticky included), numeric
//!   owner, symlink target and content; directories end in `/`, a changed root is `./`;
//! - every deleted path as an empty regular file `.wh.<name>` in its directory;
//! - **opaque directories**: a directory present in both views whose parent-view entries
//!   are *all* gone from the layer's view (at least one existed) is written as the
//!   directory itself followed by `.wh..wh..opq`, instead of one whiteout per lost entry.
//!   This is the OCI-faithful reading of "a directory that replaced a lower one": after
//!   `rm -r d; mkdir d` nothing of the lower `d` shows, which is what the marker says. When
//!   some lower entries survive, per-entry whiteouts are written (an opaque marker would
//!   hide the survivors). Both spellings give the same view when applied.
//! - **hardlinks**: the trait exposes link counts but no inode identity, so links are
//!   inferred: regular files of the tar with `nlink > 1` and the same size, mode, owner
//!   and content form one group; the first (in tar order) is written as a file, the others
//!   as hardlinks to it. Two unrelated linked files with identical content would be merged
//!   (their views stay equal; only link counts differ).
//! - **xattrs**: none. The `LayerDriver` trait exposes no extended attributes, so none are
//!   written (and none can be applied).
//!
//! With `reproducible` (the default for reports and the CLI), entries are sorted by path
//! component, every timestamp is 0, owner *names* are empty (numeric owners are kept: they
//! are part of the changeset), the gzip header carries no name and mtime 0: the same
//! changeset gives the same bytes on every driver. Without it, entries carry the files'
//! mtimes.

use crate::digest::HashingWriter;
use crate::error::{OciError, Result};
use layerlab_core::{Change, ChangeKind, FileKind, LayerDriver, LayerId, LayerPath, Metadata};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

const CHUNK: u64 = 1 << 20;
/// The opaque-directory marker name.
pub const OPAQUE: &str = ".wh..wh..opq";
/// The whiteout prefix.
pub const WHITEOUT: &str = ".wh.";

/// How to write the tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffOptions {
    /// Sort, zero timestamps, empty owner names: same changes, same bytes.
    pub reproducible: bool,
    /// gzip the tar (`.tar.gz`).
    pub gzip: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            reproducible: true,
            gzip: false,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffSummary {
    /// `sha256:` of the uncompressed tar (the OCI diff id).
    pub diff_id: String,
    /// `sha256:` of the bytes written (equal to `diff_id` without gzip).
    pub digest: String,
    /// Bytes written.
    pub size: u64,
    /// Entries written (whiteouts and opaque markers included).
    pub entries: usize,
    /// Whiteout entries.
    pub whiteouts: usize,
    /// Opaque markers.
    pub opaque: usize,
    /// Hardlink entries.
    pub hardlinks: usize,
}

#[derive(Debug)]
enum Item {
    Entry(Metadata),
    Link(LayerPath),
    Whiteout,
    Opaque,
}

/// The sort key: path components, so that a directory comes right before its contents.
type Key = Vec<String>;

fn key_of(path: &LayerPath) -> Key {
    path.relative()
        .split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn tar_name(key: &Key, dir: bool) -> String {
    if key.is_empty() {
        return "./".to_string();
    }
    let mut s = key.join("/");
    if dir {
        s.push('/');
    }
    s
}

enum Sink<W: Write> {
    Plain(HashingWriter<W>),
    Gz(flate2::write::GzEncoder<HashingWriter<W>>),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gz(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gz(w) => w.flush(),
        }
    }
}

/// Reads a file of a layer's view through the trait, as `io::Read`.
struct LayerReader<'a, D: ?Sized> {
    d: &'a mut D,
    layer: &'a LayerId,
    path: &'a LayerPath,
    off: u64,
}

impl<D: LayerDriver + ?Sized> Read for LayerReader<'_, D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(CHUNK);
        let data = self
            .d
            .read(self.layer, self.path, self.off, want)
            .map_err(io::Error::other)?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.off += n as u64;
        Ok(n)
    }
}

fn content_hash<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<String> {
    let mut h = Sha256::new();
    let mut off = 0u64;
    loop {
        let chunk = d.read(layer, path, off, CHUNK)?;
        if chunk.is_empty() {
            break;
        }
        off += chunk.len() as u64;
        h.update(&chunk);
    }
    Ok(hex::encode(h.finalize()))
}

/// The entries of the tar, in order, before anything is written.
fn plan<D: LayerDriver + ?Sized>(d: &mut D, layer: &LayerId) -> Result<Vec<(Key, Item)>> {
    let parent = d.layer(layer)?.parent;
    let changes: Vec<Change> = d.changes(layer)?;
    let mut items: BTreeMap<Key, Item> = BTreeMap::new();

    // Deleted paths by directory, to find opaque directories.
    let mut deleted_in: BTreeMap<LayerPath, usize> = BTreeMap::new();
    for c in &changes {
        if c.kind == ChangeKind::Deleted {
            if let Some(dir) = c.path.parent() {
                *deleted_in.entry(dir).or_default() += 1;
            }
        }
    }
    let mut opaque: BTreeSet<LayerPath> = BTreeSet::new();
    if let Some(p) = &parent {
        for (dir, n) in &deleted_in {
            let mine = d.stat(layer, dir)?;
            let theirs = d.stat(p, dir)?;
            if mine.kind == FileKind::Dir
                && theirs.kind == FileKind::Dir
                && d.readdir(p, dir)?.len() == *n
            {
                opaque.insert(dir.clone());
            }
        }
    }

    for c in &changes {
        let key = key_of(&c.path);
        match c.kind {
            ChangeKind::Added | ChangeKind::Modified => {
                let md = d.stat(layer, &c.path)?;
                items.insert(key, Item::Entry(md));
            }
            ChangeKind::Deleted => {
                let dir = c.path.parent().unwrap_or_else(LayerPath::root);
                if opaque.contains(&dir) {
                    continue;
                }
                let Some(name) = c.path.file_name() else {
                    continue;
                };
                let mut k = key_of(&dir);
                k.push(format!("{WHITEOUT}{name}"));
                items.insert(k, Item::Whiteout);
            }
        }
    }
    for dir in &opaque {
        let key = key_of(dir);
        if !items.contains_key(&key) {
            let md = d.stat(layer, dir)?;
            items.insert(key.clone(), Item::Entry(md));
        }
        let mut k = key;
        k.push(OPAQUE.to_string());
        items.insert(k, Item::Opaque);
    }

    // Hardlinks, inferred (see the module doc).
    let mut groups: BTreeMap<(u64, u32, u32, u32, String), Vec<Key>> = BTreeMap::new();
    for (key, item) in &items {
        if let Item::Entry(md) = item {
            if md.kind == FileKind::File && md.nlink > 1 {
                let path = key_path(key)?;
                let h = content_hash(d, layer, &path)?;
                groups
                    .entry((md.size, md.mode, md.uid, md.gid, h))
                    .or_default()
                    .push(key.clone());
            }
        }
    }
    for members in groups.values() {
        if let Some((first, rest)) = members.split_first() {
            let target = key_path(first)?;
            for k in rest {
                items.insert(k.clone(), Item::Link(target.clone()));
            }
        }
    }
    Ok(items.into_iter().collect())
}

fn key_path(key: &Key) -> Result<LayerPath> {
    let raw = format!("/{}", key.join("/"));
    LayerPath::parse(&raw).map_err(|e| {
        OciError::from(layerlab_core::Error::InvalidPath {
            path: raw,
            reason: e.to_string(),
        })
    })
}

fn header(kind: tar::EntryType, mode: u32, uid: u32, gid: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

/// Sets a link name verbatim (no path normalisation) when it fits the header; longer names
/// go through the tar crate's GNU long-link record.
fn append_link<W: Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    target: &str,
) -> io::Result<()> {
    let raw = target.as_bytes();
    if raw.len() <= 100 {
        let field = &mut h.as_old_mut().linkname;
        field.fill(0);
        field[..raw.len()].copy_from_slice(raw);
        b.append_data(h, name, io::empty())
    } else {
        b.append_link(h, name, target)
    }
}

/// Writes `layer`'s changeset to `out` as an OCI layer tar (see the module doc).
pub fn write_diff<D: LayerDriver + ?Sized, W: Write>(
    d: &mut D,
    layer: &LayerId,
    out: W,
    opts: &DiffOptions,
) -> Result<(W, DiffSummary)> {
    let items = plan(d, layer)?;
    let outer = HashingWriter::new(out);
    let sink = if opts.gzip {
        Sink::Gz(
            flate2::GzBuilder::new()
                .mtime(0)
                .write(outer, flate2::Compression::default()),
        )
    } else {
        Sink::Plain(outer)
    };
    let mut b = tar::Builder::new(HashingWriter::new(sink));
    b.mode(tar::HeaderMode::Complete);
    let mut s = DiffSummary {
        diff_id: String::new(),
        digest: String::new(),
        size: 0,
        entries: items.len(),
        whiteouts: 0,
        opaque: 0,
        hardlinks: 0,
    };
    let wrap = |e: io::Error| OciError::Io {
        path: format!("<tar of layer {layer}>").into(),
        source: e,
    };
    for (key, item) in &items {
        match item {
            Item::Whiteout | Item::Opaque => {
                let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 0);
                b.append_data(&mut h, tar_name(key, false), io::empty())
                    .map_err(wrap)?;
                if matches!(item, Item::Whiteout) {
                    s.whiteouts += 1;
                } else {
                    s.opaque += 1;
                }
            }
            Item::Link(target) => {
                let md = d.stat(layer, target)?;
                let mtime = mtime(&md, opts);
                let mut h = header(tar::EntryType::Link, md.mode, md.uid, md.gid, mtime);
                append_link(&mut b, &mut h, &tar_name(key, false), target.relative())
                    .map_err(wrap)?;
                s.hardlinks += 1;
            }
            Item::Entry(md) => {
                let mtime = mtime(md, opts);
                match md.kind {
                    FileKind::Dir => {
                        let mut h =
                            header(tar::EntryType::Directory, md.mode, md.uid, md.gid, mtime);
                        b.append_data(&mut h, tar_name(key, true), io::empty())
                            .map_err(wrap)?;
                    }
                    FileKind::Symlink => {
                        let mut h = header(tar::EntryType::Symlink, md.mode, md.uid, md.gid, mtime);
                        let target = md.target.clone().unwrap_or_default();
                        append_link(&mut b, &mut h, &tar_name(key, false), &target)
                            .map_err(wrap)?;
                    }
                    FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo => {
                        let kind = match md.kind {
                            FileKind::CharDevice => tar::EntryType::Char,
                            FileKind::BlockDevice => tar::EntryType::Block,
                            _ => tar::EntryType::Fifo,
                        };
                        let mut h = header(kind, md.mode, md.uid, md.gid, mtime);
                        let (major, minor) = layerlab_core::dev_parts(md.rdev);
                        h.set_device_major(major).map_err(wrap)?;
                        h.set_device_minor(minor).map_err(wrap)?;
                        b.append_data(&mut h, tar_name(key, false), io::empty())
                            .map_err(wrap)?;
                    }
                    FileKind::File => {
                        let path = key_path(key)?;
                        let mut h = header(tar::EntryType::Regular, md.mode, md.uid, md.gid, mtime);
                        h.set_size(md.size);
                        let r = LayerReader {
                            d: &mut *d,
                            layer,
                            path: &path,
                            off: 0,
                        };
                        b.append_data(&mut h, tar_name(key, false), r.take(md.size))
                            .map_err(wrap)?;
                    }
                }
            }
        }
    }
    let inner = b.into_inner().map_err(wrap)?;
    let (sink, diff_id, _) = inner.finish();
    let outer = match sink {
        Sink::Plain(w) => w,
        Sink::Gz(gz) => gz.finish().map_err(wrap)?,
    };
    let (w, digest, size) = outer.finish();
    s.diff_id = diff_id;
    s.digest = digest;
    s.size = size;
    Ok((w, s))
}

fn mtime(md: &Metadata, opts: &DiffOptions) -> u64 {
    if opts.reproducible {
        0
    } else {
        u64::try_from(md.mtime).unwrap_or(0)
    }
}
