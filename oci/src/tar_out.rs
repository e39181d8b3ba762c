//! A layer's changeset as an OCI layer tar (`layerlab diff ID --tar FILE`, [`write_diff`]),
//! and a layer's whole merged view as one tar (`layerlab export ID --tar FILE`, as
//! `docker export` writes it, [`write_view`]): one writer of entries for both.
//!
//! What the changeset tar holds, derived from the two views (the layer's and its parent's)
//! through [`LayerDriver::changes`]:
//! - every added or modified entry, with its mode (setuid/setgid/sticky included), numeric
//!   owner, symlink target and content; directories end in `/`, a changed root is `./`;
//!   a directory where an entry was added or deleted is a modified entry (Docker's
//!   changesets, `layerlab_core::changes`), so its entry is in the tar as in Docker's;
//! - every deleted path as an empty regular file `.wh.<name>` in its directory;
//! - **opaque directories**: a directory present in both views whose parent-view entries
//!   are *all* gone from the layer's view (at least one existed) is written as the
//!   directory itself followed by `.wh..wh..opq`, instead of one whiteout per lost entry.
//!   This is the OCI-faithful reading of "a directory that replaced a lower one": after
//!   `rm -r d; mkdir d` nothing of the lower `d` shows, which is what the marker says. When
//!   some lower entries survive, per-entry whiteouts are written (an opaque marker would
//!   hide the survivors). Both spellings give the same view when applied.
//! - **hardlinks**: the trait exposes link counts but no inode identity, so links are
//!   inferred among the tar's files by `layerlab_core::links` (same size, mode, owner,
//!   link count, mtime, layer and content); the first of a group (in tar order) is
//!   written as a file, the others as hardlinks to it.
//! - **xattrs**: none. The `LayerDriver` trait exposes no extended attributes, so none are
//!   written (and none can be applied).
//!
//! - **holes**: a file whose all-zero 4 KiB blocks add up to at least [`SPARSE_MIN`] is
//!   written in the PAX sparse format 1.0 (GNU tar's `--sparse-format=posix`: PAX records
//!   name the file and its size, its data is a map of its data regions, then only their
//!   bytes), which GNU tar and Go's archive/tar (so Docker's and podman's `load`/`import`)
//!   read as the same file, and `apply` too ([`crate::tar_in`]); GNU's older type `S`
//!   is refused by containers/storage, hence this format. The trait has no notion of a hole, so a run of
//!   written zeros is a hole too (as `cp --sparse=always`); smaller files are written whole,
//!   byte for byte as Docker writes them.
//!
//! The view tar holds every entry of the merged view but `/` itself (as `docker export`),
//! hardlinks inferred the same way, no whiteouts.
//!
//! With `reproducible` (the default for reports and the CLI), entries are sorted by path
//! component, every timestamp is 0, owner *names* are empty (numeric owners are kept: they
//! are part of the changeset), the gzip header carries no name and mtime 0: the same
//! changeset gives the same bytes on every driver. Without it, entries carry the files'
//! mtimes.

use crate::digest::HashingWriter;
use crate::error::{OciError, Result};
use layerlab_core::{Change, ChangeKind, FileKind, LayerDriver, LayerId, LayerPath, Metadata};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

const CHUNK: u64 = 1 << 20;
/// The block a run of zeros must fill to be left as a hole.
const HOLE_BLOCK: u64 = 4096;
/// The zero bytes (in whole [`HOLE_BLOCK`]s) from which a file is written as a sparse entry.
pub const SPARSE_MIN: u64 = 1 << 20;
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

/// Reads a file of a layer's view through the trait, as `io::Read`, from its start, at
/// most a chunk per driver call.
pub struct LayerReader<'a, D: ?Sized> {
    d: &'a mut D,
    layer: &'a LayerId,
    path: &'a LayerPath,
    off: u64,
}

impl<'a, D: LayerDriver + ?Sized> LayerReader<'a, D> {
    /// A reader of `path` as `layer` shows it.
    pub fn new(d: &'a mut D, layer: &'a LayerId, path: &'a LayerPath) -> Self {
        LayerReader {
            d,
            layer,
            path,
            off: 0,
        }
    }
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

    link_groups(d, layer, &mut items)?;
    Ok(items.into_iter().collect())
}

/// Hardlinks, inferred among the items' files (see the module doc).
fn link_groups<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    items: &mut BTreeMap<Key, Item>,
) -> Result<()> {
    let mut files = Vec::new();
    for (key, item) in items.iter() {
        if let Item::Entry(md) = item {
            files.push((key_path(key)?, md.clone()));
        }
    }
    for group in layerlab_core::links::groups(d, layer, &files)? {
        if let Some((first, rest)) = group.split_first() {
            for path in rest {
                items.insert(key_of(path), Item::Link(first.clone()));
            }
        }
    }
    Ok(())
}

/// The entries of the view tar: every entry of the merged view but `/`, parents first.
fn plan_view<D: LayerDriver + ?Sized>(d: &mut D, layer: &LayerId) -> Result<Vec<(Key, Item)>> {
    let mut items: BTreeMap<Key, Item> = BTreeMap::new();
    for (path, _) in layerlab_core::ops::walk(d, layer, &LayerPath::root())? {
        if !path.is_root() {
            let md = d.stat(layer, &path)?;
            items.insert(key_of(&path), Item::Entry(md));
        }
    }
    link_groups(d, layer, &mut items)?;
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
    write_items(d, layer, &items, out, opts)
}

/// Writes `layer`'s whole merged view to `out` as one tar, as `docker export` does (see
/// the module doc); `opts.reproducible` zeroes the timestamps.
pub fn write_view<D: LayerDriver + ?Sized, W: Write>(
    d: &mut D,
    layer: &LayerId,
    out: W,
    opts: &DiffOptions,
) -> Result<(W, DiffSummary)> {
    let items = plan_view(d, layer)?;
    write_items(d, layer, &items, out, opts)
}

/// Writes planned entries as a tar (gzip when asked), hashing what is written.
fn write_items<D: LayerDriver + ?Sized, W: Write>(
    d: &mut D,
    layer: &LayerId,
    items: &[(Key, Item)],
    out: W,
    opts: &DiffOptions,
) -> Result<(W, DiffSummary)> {
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
    for (key, item) in items {
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
                let mut records = pax_records(d, layer, key, md, opts)?;
                let regions = match md.kind {
                    FileKind::File => data_regions(d, layer, &key_path(key)?, md.size)?,
                    _ => None,
                };
                if let Some(regions) = &regions {
                    records.extend(sparse_records(key, md.size));
                    let path = key_path(key)?;
                    let sparse = Sparse {
                        key,
                        md,
                        mtime,
                        regions,
                    };
                    if !records.is_empty() {
                        b.append_pax_extensions(
                            records.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
                        )
                        .map_err(wrap)?;
                    }
                    append_sparse(&mut b, d, layer, &path, &sparse).map_err(wrap)?;
                    continue;
                }
                if !records.is_empty() {
                    b.append_pax_extensions(
                        records.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
                    )
                    .map_err(wrap)?;
                }
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
                        let r = LayerReader::new(&mut *d, layer, &path);
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

/// Reads exactly `buf.len()` bytes of a file from `off` (fewer only at its end).
fn read_full<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    off: u64,
    len: u64,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while (out.len() as u64) < len {
        let got = d.read(layer, path, off + out.len() as u64, len - out.len() as u64)?;
        if got.is_empty() {
            break;
        }
        out.extend_from_slice(&got);
    }
    Ok(out)
}

/// The data regions of a file (offset, length; its all-zero [`HOLE_BLOCK`]s left out), when
/// they leave out at least [`SPARSE_MIN`] bytes; `None` when the file is written whole.
/// Every region but the last is a whole number of blocks, as GNU sparse entries need.
fn data_regions<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    size: u64,
) -> Result<Option<Vec<(u64, u64)>>> {
    if size < SPARSE_MIN {
        return Ok(None);
    }
    let mut regions: Vec<(u64, u64)> = Vec::new();
    let mut off = 0;
    while off < size {
        let chunk = read_full(d, layer, path, off, CHUNK.min(size - off))?;
        if chunk.is_empty() {
            break;
        }
        for (i, block) in chunk.chunks(HOLE_BLOCK as usize).enumerate() {
            if block.iter().all(|b| *b == 0) {
                continue;
            }
            let start = off + i as u64 * HOLE_BLOCK;
            let len = block.len() as u64;
            match regions.last_mut() {
                Some((s, l)) if *s + *l == start => *l += len,
                _ => regions.push((start, len)),
            }
        }
        off += chunk.len() as u64;
    }
    let data: u64 = regions.iter().map(|r| r.1).sum();
    Ok((size - data >= SPARSE_MIN).then_some(regions))
}

/// Reads the data regions of a file one after the other: the body of a sparse entry.
struct RegionReader<'a, D: ?Sized> {
    d: &'a mut D,
    layer: &'a LayerId,
    path: &'a LayerPath,
    regions: std::collections::VecDeque<(u64, u64)>,
}

impl<D: LayerDriver + ?Sized> Read for RegionReader<'_, D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some((off, len)) = self.regions.front().copied() else {
            return Ok(0);
        };
        let want = len.min(buf.len() as u64).min(CHUNK);
        let data = self
            .d
            .read(self.layer, self.path, off, want)
            .map_err(io::Error::other)?;
        if data.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: the file ended inside a data region", self.path),
            ));
        }
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        let n64 = n as u64;
        if n64 == len {
            self.regions.pop_front();
        } else if let Some(front) = self.regions.front_mut() {
            *front = (off + n64, len - n64);
        }
        Ok(n)
    }
}

/// A file written as a sparse entry.
struct Sparse<'a> {
    key: &'a Key,
    md: &'a Metadata,
    mtime: u64,
    regions: &'a [(u64, u64)],
}

/// The PAX records of the sparse format 1.0: the real name and size (the entry's own name
/// is the format's stand-in, `GNUSparseFile.0/NAME`; its data the map and the regions).
fn sparse_records(key: &Key, size: u64) -> Vec<(String, Vec<u8>)> {
    vec![
        ("GNU.sparse.major".into(), b"1".to_vec()),
        ("GNU.sparse.minor".into(), b"0".to_vec()),
        ("GNU.sparse.name".into(), tar_name(key, false).into_bytes()),
        ("GNU.sparse.realsize".into(), size.to_string().into_bytes()),
    ]
}

/// Writes a file as a PAX 1.0 sparse entry (after its PAX header, which names it): a
/// regular entry named `DIR/GNUSparseFile.0/NAME` whose data is the map (the number of
/// regions, then each region's offset and length, one decimal a line, the last region
/// ending at the file's size, zero-padded to 512 bytes), then the regions' bytes.
fn append_sparse<D: LayerDriver + ?Sized, W: Write>(
    b: &mut tar::Builder<W>,
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    sparse: &Sparse<'_>,
) -> io::Result<()> {
    let md = sparse.md;
    let mut map_entries = sparse.regions.to_vec();
    map_entries.push((md.size, 0));
    let mut map = format!("{}\n", map_entries.len());
    for (off, len) in &map_entries {
        map.push_str(&format!("{off}\n{len}\n"));
    }
    let mut map = map.into_bytes();
    map.resize(map.len().div_ceil(512) * 512, 0);
    let stored: u64 = sparse.regions.iter().map(|r| r.1).sum();
    // a POSIX header: GNU tar reads the PAX sparse records only beside one
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(md.mode);
    h.set_uid(u64::from(md.uid));
    h.set_gid(u64::from(md.gid));
    h.set_mtime(sparse.mtime);
    h.set_size(map.len() as u64 + stored);
    let name = match sparse.key.split_last() {
        Some((last, dir)) if !dir.is_empty() => format!("{}/GNUSparseFile.0/{last}", dir.join("/")),
        Some((last, _)) => format!("GNUSparseFile.0/{last}"),
        None => "GNUSparseFile.0/-".to_string(),
    };
    let body = RegionReader {
        d,
        layer,
        path,
        regions: sparse.regions.iter().copied().collect(),
    };
    b.append_data(&mut h, name, io::Cursor::new(map).chain(body))
}

/// The PAX records an entry needs: its extended attributes (`SCHILY.xattr.NAME`, as GNU
/// tar, Docker and containerd write them) and, outside reproducible mode, an mtime with
/// nanoseconds when it has them.
fn pax_records<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    key: &Key,
    md: &Metadata,
    opts: &DiffOptions,
) -> Result<Vec<(String, Vec<u8>)>> {
    let path = key_path(key)?;
    let mut out: Vec<(String, Vec<u8>)> = layerlab_core::ops::xattrs(d, layer, &path)?
        .into_iter()
        .map(|(name, value)| (format!("SCHILY.xattr.{name}"), value))
        .collect();
    if !opts.reproducible && (md.mtime_nsec != 0 || md.mtime < 0) {
        let text = layerlab_core::time::format(md.mtime, md.mtime_nsec);
        out.push(("mtime".to_string(), text.into_bytes()));
    }
    Ok(out)
}

fn mtime(md: &Metadata, opts: &DiffOptions) -> u64 {
    if opts.reproducible {
        0
    } else {
        u64::try_from(md.mtime).unwrap_or(0)
    }
}
