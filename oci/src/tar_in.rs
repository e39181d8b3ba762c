//! Reading an OCI layer tar: parse, check every entry, and plan the changes, before
//! anything is applied.
//!
//! **Design (validate first, then apply).** [`parse`] reads the archive once (plain, gzip
//! or zstd, detected by magic bytes), checks each entry on its own (name, type, limits),
//! spools file contents to an anonymous temporary file and computes the diff id. Then
//! [`plan`] checks the whole archive against a model of the resulting tree (the layer's
//! current view plus everything the archive does, in the order it will be applied), and
//! produces the list of trait calls. Only a plan that passed every check is applied
//! ([`crate::apply`]); a refused archive changes nothing.
//!
//! Rules (OCI image-spec, layer.md), in the order they are applied:
//! 1. opaque markers (`<dir>/.wh..wh..opq`): every entry of the directory in the current
//!    view is removed (entries of the same archive are kept);
//! 2. whiteouts (`<dir>/.wh.<name>`): the entry is removed from the view (a no-op when it
//!    does not exist); whiteouts never appear themselves;
//! 3. every other entry, in archive order: a directory over a directory sets its mode
//!    and owner (its contents stay); anything else at the path is removed (recursively)
//!    and the entry created; missing parent directories are created (0755, 0:0). A later
//!    entry for the same path replaces an earlier one.
//!
//! Refused, with an error naming the entry (nothing applied):
//! - `..` anywhere in a name or a hardlink target (even one that stays inside);
//!   a leading `/` is **normalised** (stripped), as GNU tar and Docker do;
//! - a path whose parent, in the resulting tree, is a symlink (from the layer or written
//!   earlier in the same archive) or a regular file;
//! - a hardlink whose target is missing, not a regular file, reached through a symlink,
//!   or the link itself;
//! - a bare `.wh.` name, a whiteout of `.` or `..` (`.wh..`, `.wh...`, at any depth), and any other name the layer path rules refuse (NUL, too long);
//!   other `.wh..wh.*` names (aufs metadata such as `.wh..wh.plnk`) are skipped, as Docker does;
//! - unknown entry types (GNU sparse entries, type `S`, are read as the files they
//!   describe, their holes as zeros);
//! - non-UTF-8 names and owners above 2^32-1;
//! - archives whose uncompressed stream is larger than [`Limits::max_size`] or that
//!   have more than [`Limits::max_entries`] entries.
//!
//! Timestamps are not applied (the trait has no call to set them); xattrs (PAX
//! `SCHILY.xattr.*`) are ignored: the trait exposes none.

use crate::digest::HashingReader;
use crate::error::{OciError, Result};
use crate::tar_out::{OPAQUE, WHITEOUT};
use layerlab_core::{Error, FileKind, LayerDriver, LayerId, LayerPath};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

/// The default `--max-size`: 8 GiB of uncompressed tar.
pub const DEFAULT_MAX_SIZE: u64 = 8 << 30;
/// The default entry-count limit.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

/// How much an archive may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of uncompressed tar stream.
    pub max_size: u64,
    /// Entries (headers) in the tar.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: DEFAULT_MAX_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// The compression of an archive, by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    /// Looks at the first bytes of a buffered reader without consuming them.
    pub fn detect<R: BufRead>(r: &mut R) -> io::Result<Compression> {
        let head = r.fill_buf()?;
        Ok(if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        })
    }

    /// `plain`, `gzip` or `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// What one archive entry asks for (a path already checked and normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `<dir>/.wh..wh..opq`.
    Opaque(LayerPath),
    /// `<dir>/.wh.<name>`: the path to remove.
    Whiteout(LayerPath),
    /// A directory.
    Dir {
        /// Where.
        path: LayerPath,
        /// Mode bits.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
    /// A regular file; its content is `len` bytes at `offset` in the spool.
    File {
        /// Where.
        path: LayerPath,
        /// Mode bits.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Offset in the spool.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// A symlink.
    Symlink {
        /// Where.
        path: LayerPath,
        /// Its target, verbatim.
        target: String,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
    /// A hardlink to an earlier file.
    Hardlink {
        /// The new name.
        path: LayerPath,
        /// The existing file.
        target: LayerPath,
    },
    /// A device node or fifo.
    Node {
        /// Where.
        path: LayerPath,
        /// Its kind (`CharDevice`, `BlockDevice` or `Fifo`), mode bits and device number.
        node: layerlab_core::Node,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
}

impl Op {
    /// The path an entry makes, `None` for the markers.
    pub fn path(&self) -> Option<&LayerPath> {
        match self {
            Op::Opaque(_) | Op::Whiteout(_) => None,
            Op::Dir { path, .. }
            | Op::File { path, .. }
            | Op::Symlink { path, .. }
            | Op::Hardlink { path, .. }
            | Op::Node { path, .. } => Some(path),
        }
    }
}

/// The times and extended attributes an entry carries (its header's mtime, PAX `mtime`
/// with its fraction, and `SCHILY.xattr.*` records).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Seconds and nanoseconds.
    pub mtime: Option<(i64, u32)>,
    /// Extended attributes, in archive order.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// One entry: its name as written, and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name in the archive.
    pub name: String,
    /// The operation.
    pub op: Op,
    /// Its mtime and extended attributes (none for markers and hardlinks).
    pub attrs: Attrs,
}

impl Entry {
    /// A whiteout or opaque marker named `name` in the archive: no attributes of its own.
    fn marker(name: String, op: Op) -> Entry {
        Entry {
            name,
            op,
            attrs: Attrs::default(),
        }
    }
}

/// A parsed, individually checked archive.
#[derive(Debug)]
pub struct Parsed {
    /// The archive's name (for errors).
    pub archive: String,
    /// The entries, in archive order.
    pub entries: Vec<Entry>,
    /// `sha256:` of the uncompressed tar stream.
    pub diff_id: String,
    /// Length of the uncompressed tar stream.
    pub tar_size: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
    /// The compression found.
    pub compression: Compression,
    pub(crate) spool: File,
}

impl Parsed {
    /// Reads `len` bytes of spooled content at `offset`.
    pub(crate) fn content(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        self.spool.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

#[derive(Debug)]
struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("size limit exceeded")
    }
}

impl std::error::Error for LimitExceeded {}

struct LimitReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for LimitReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Is there more? Then the archive is too large.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(LimitExceeded)),
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn is_limit(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|x| x.is::<LimitExceeded>())
}

/// Opens a decompressing reader over `input`, by magic bytes.
pub fn decompress<'a, R: Read + 'a>(input: R) -> io::Result<(Box<dyn Read + 'a>, Compression)> {
    let mut br = BufReader::with_capacity(64 * 1024, input);
    let c = Compression::detect(&mut br)?;
    let r: Box<dyn Read + 'a> = match c {
        Compression::None => Box::new(br),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(br)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
    };
    Ok((r, c))
}

/// Splits a name into checked components: a leading `/` is stripped, `.` and empty
/// components are dropped, `..` is refused. An empty result is the root.
/// Bytes from an archive as a message shows them: valid UTF-8 as it is, control characters
/// escaped (`\u{1b}`), invalid bytes as `\xNN`.
pub fn escaped(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn components(name: &str) -> std::result::Result<Vec<&str>, String> {
    let mut out = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("'..' in the path (entries must stay inside the layer)".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The target of a symlink or hard link entry (`what`), which must be there and UTF-8.
fn link_target<R: Read>(e: &tar::Entry<'_, R>, what: &str) -> std::result::Result<String, String> {
    let target = e
        .link_name_bytes()
        .ok_or_else(|| format!("a {what} without a target"))?;
    String::from_utf8(target.into_owned()).map_err(|_| format!("the {what} target is not UTF-8"))
}

fn to_path(comps: &[&str]) -> std::result::Result<LayerPath, String> {
    LayerPath::parse(&format!("/{}", comps.join("/"))).map_err(|e| e.to_string())
}

/// What an entry's name says, before its type is considered.
enum Named {
    Opaque(LayerPath),
    Whiteout(LayerPath),
    Skip,
    Path(LayerPath),
}

fn classify(name: &str) -> std::result::Result<Named, String> {
    let comps = components(name)?;
    let Some((last, dir)) = comps.split_last() else {
        return Ok(Named::Path(LayerPath::root()));
    };
    if *last == OPAQUE {
        return Ok(Named::Opaque(to_path(dir)?));
    }
    if last.starts_with(".wh..wh.") {
        // aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): Docker skips these; but the
        // directories above must still be valid names.
        to_path(dir)?;
        return Ok(Named::Skip);
    }
    if let Some(rest) = last.strip_prefix(WHITEOUT) {
        if rest.is_empty() {
            return Err("a bare '.wh.' whiteout names nothing".into());
        }
        if rest == "." || rest == ".." {
            // `a/.wh...` would otherwise name `a/..`, the layer's root once normalized
            return Err(format!(
                "a whiteout of '{rest}' names no entry (it would delete a directory itself or its parent)"
            ));
        }
        let mut all: Vec<&str> = dir.to_vec();
        all.push(rest);
        return Ok(Named::Whiteout(to_path(&all)?));
    }
    Ok(Named::Path(to_path(&comps)?))
}

/// A file in the PAX sparse format 1.0 (GNU tar's `--sparse-format=posix`, which Go's
/// archive/tar, so Docker and podman, read as a plain file): its real name and size; its
/// data starts with the map of its regions.
struct PaxSparse {
    name: String,
    realsize: u64,
}

/// The PAX sparse records of an entry, if it has them (only format 1.0 is read).
fn pax_sparse<R: Read>(
    e: &mut tar::Entry<'_, R>,
) -> std::result::Result<Option<PaxSparse>, String> {
    let Some(pax) = e
        .pax_extensions()
        .map_err(|err| format!("bad PAX header: {err}"))?
    else {
        return Ok(None);
    };
    let (mut major, mut minor, mut name, mut realsize) = (None, None, None, None);
    for ext in pax {
        let ext = ext.map_err(|err| format!("bad PAX record: {err}"))?;
        let value = || {
            ext.value()
                .map(str::to_string)
                .map_err(|_| "a PAX sparse record that is not UTF-8".to_string())
        };
        match ext.key() {
            Ok("GNU.sparse.major") => major = Some(value()?),
            Ok("GNU.sparse.minor") => minor = Some(value()?),
            Ok("GNU.sparse.name") => name = Some(value()?),
            Ok("GNU.sparse.realsize") => realsize = Some(value()?),
            _ => {}
        }
    }
    let Some(major) = major else {
        return Ok(None);
    };
    let minor = minor.unwrap_or_default();
    if major != "1" || minor != "0" {
        return Err(format!(
            "PAX sparse format {major}.{minor} is not supported (1.0 is)"
        ));
    }
    let name = name.ok_or("a PAX sparse file without GNU.sparse.name")?;
    let realsize = realsize
        .and_then(|r| r.parse::<u64>().ok())
        .ok_or("a PAX sparse file without a valid GNU.sparse.realsize")?;
    Ok(Some(PaxSparse { name, realsize }))
}

/// The largest sparse map read (regions).
const MAX_SPARSE_REGIONS: u64 = 1 << 20;

/// Reads one decimal line of a sparse map.
fn map_number<R: Read>(r: &mut R, used: &mut u64) -> io::Result<u64> {
    let mut text = Vec::new();
    loop {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        *used += 1;
        if b[0] == b'\n' {
            break;
        }
        if !b[0].is_ascii_digit() || text.len() >= 20 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad sparse map"));
        }
        text.push(b[0]);
    }
    std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad sparse map"))
}

/// Copies a PAX 1.0 sparse file's data into the spool as the whole file (`realsize`
/// bytes): the map (a count, then offset and length of each region, one decimal a line,
/// padded to 512 bytes), then the regions; holes become holes of the spool file.
fn copy_sparse<R: Read, W: Write + io::Seek>(
    e: &mut R,
    spool: &mut W,
    realsize: u64,
) -> io::Result<u64> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut used = 0;
    let n = map_number(e, &mut used)?;
    if n > MAX_SPARSE_REGIONS {
        return Err(bad("a sparse map of too many regions"));
    }
    let mut regions = Vec::new();
    for _ in 0..n {
        regions.push((map_number(e, &mut used)?, map_number(e, &mut used)?));
    }
    let pad = (512 - used % 512) % 512;
    io::copy(&mut e.by_ref().take(pad), &mut io::sink())?;
    let mut cur = 0u64;
    for (off, len) in regions {
        let end = off
            .checked_add(len)
            .ok_or_else(|| bad("a sparse region past 2^64"))?;
        if off < cur || end > realsize {
            return Err(bad("sparse regions out of order or past the file's size"));
        }
        if len == 0 {
            continue; // an end marker: the hole up to the size is made below
        }
        if off > cur {
            let hole = i64::try_from(off - cur).map_err(|_| bad("a hole too large"))?;
            spool.seek(io::SeekFrom::Current(hole))?;
        }
        let got = io::copy(&mut e.by_ref().take(len), spool)?;
        if got != len {
            return Err(bad("the sparse file ends inside a region"));
        }
        cur = end;
    }
    if realsize > cur {
        // the spool must reach the file's end: a hole, then its last byte written
        let hole = i64::try_from(realsize - cur - 1).map_err(|_| bad("a hole too large"))?;
        spool.seek(io::SeekFrom::Current(hole))?;
        spool.write_all(&[0])?;
    }
    Ok(realsize)
}

/// A numeric header field: an empty field (all NUL or spaces, as some writers leave it)
/// is 0; anything else must parse.
/// A device major or minor number from a header (absent in old formats: 0).
fn numeric_opt(parsed: io::Result<Option<u32>>) -> std::result::Result<u32, String> {
    parsed
        .map(Option::unwrap_or_default)
        .map_err(|e| format!("bad device number: {e}"))
}

/// The mtime (the header's seconds, or PAX `mtime` with its fraction) and the
/// `SCHILY.xattr.*` records of an entry, each name checked as the drivers check it.
fn entry_attrs<R: Read>(e: &mut tar::Entry<'_, R>) -> std::result::Result<Attrs, String> {
    let mut attrs = Attrs {
        mtime: e
            .header()
            .mtime()
            .ok()
            .and_then(|s| i64::try_from(s).ok())
            .map(|s| (s, 0)),
        xattrs: Vec::new(),
    };
    let Some(pax) = e
        .pax_extensions()
        .map_err(|err| format!("bad PAX header: {err}"))?
    else {
        return Ok(attrs);
    };
    for ext in pax {
        let ext = ext.map_err(|err| format!("bad PAX record: {err}"))?;
        let key = ext
            .key()
            .map_err(|_| "a PAX key that is not UTF-8".to_string())?;
        if key == "mtime" {
            let v = ext
                .value()
                .map_err(|_| "a PAX mtime that is not UTF-8".to_string())?;
            attrs.mtime =
                Some(layerlab_core::time::parse(v).ok_or_else(|| format!("bad PAX mtime {v:?}"))?);
        } else if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            if let Some((_, why)) = layerlab_core::rules::xattr_name_refusal(name) {
                return Err(why);
            }
            attrs
                .xattrs
                .push((name.to_string(), ext.value_bytes().to_vec()));
        }
    }
    Ok(attrs)
}

fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> std::result::Result<u64, String> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(format!("bad numeric field: {e}")),
    }
}

/// Reads and checks an archive (see the module doc); file contents go to a spool file.
pub fn parse<R: Read>(archive: &str, input: R, limits: &Limits) -> Result<Parsed> {
    let malformed = |reason: String| OciError::Malformed {
        archive: archive.to_string(),
        reason,
    };
    let (raw, compression) =
        decompress(input).map_err(|e| malformed(format!("cannot read: {e}")))?;
    let limited = LimitReader {
        inner: raw,
        left: limits.max_size,
    };
    let hashing = HashingReader::new(limited);
    let mut ar = tar::Archive::new(hashing);
    let spool_file = tempfile::tempfile().map_err(|e| OciError::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let mut spool = BufWriter::new(spool_file);
    let mut offset = 0u64;
    let mut entries = Vec::new();
    let mut count = 0u64;
    let mut last_name = String::from("<start>");
    let limit_err = |entry: &str, what: String| OciError::Limit {
        archive: archive.to_string(),
        entry: entry.to_string(),
        what,
    };
    let size_what = || {
        format!(
            "the archive expands past the limit of {} bytes (--max-size)",
            limits.max_size
        )
    };
    let read_err = |e: io::Error, after: &str| {
        if is_limit(&e) {
            limit_err(after, size_what())
        } else {
            malformed(format!("not a valid tar (after entry '{after}'): {e}"))
        }
    };
    {
        let iter = ar.entries().map_err(|e| read_err(e, "<start>"))?;
        for item in iter {
            let mut e = item.map_err(|e| read_err(e, &last_name))?;
            count += 1;
            let sparse = pax_sparse(&mut e)
                .map_err(|r| malformed(format!("entry '{}': {r}", escaped(&e.path_bytes()))))?;
            let name_bytes = match &sparse {
                Some(sp) => sp.name.as_bytes().to_vec(),
                None => e.path_bytes().into_owned(),
            };
            let name = String::from_utf8_lossy(&name_bytes).into_owned();
            // what a message shows of the name: the archive's bytes, never a terminal's
            // control sequence
            let shown = escaped(&name_bytes);
            last_name.clone_from(&shown);
            if count > limits.max_entries {
                return Err(limit_err(
                    &shown,
                    format!("more than {} entries", limits.max_entries),
                ));
            }
            let refuse = |reason: String| OciError::Entry {
                archive: archive.to_string(),
                entry: shown.clone(),
                reason,
            };
            let kind = e.header().entry_type();
            if kind == tar::EntryType::XGlobalHeader {
                continue;
            }
            if std::str::from_utf8(&name_bytes).is_err() {
                return Err(refuse("the name is not UTF-8".into()));
            }
            if name.contains('\0') {
                return Err(refuse("the name contains a NUL byte".into()));
            }
            let named = classify(&name).map_err(&refuse)?;
            let path = match named {
                Named::Skip => continue,
                Named::Opaque(dir) => {
                    entries.push(Entry::marker(name, Op::Opaque(dir)));
                    continue;
                }
                Named::Whiteout(p) => {
                    entries.push(Entry::marker(name, Op::Whiteout(p)));
                    continue;
                }
                Named::Path(p) => p,
            };
            let h = e.header();
            let mode =
                u32::try_from(numeric(h.mode().map(u64::from), &h.as_old().mode).map_err(&refuse)?)
                    .map_err(|_| refuse("bad mode".into()))?
                    & 0o7777;
            let uid = u32::try_from(numeric(h.uid(), &h.as_old().uid).map_err(&refuse)?)
                .map_err(|_| refuse("uid above 2^32-1".into()))?;
            let gid = u32::try_from(numeric(h.gid(), &h.as_old().gid).map_err(&refuse)?)
                .map_err(|_| refuse("gid above 2^32-1".into()))?;
            if path.is_root() && kind != tar::EntryType::Directory {
                return Err(refuse("the layer root can only be a directory".into()));
            }
            let mut attrs = entry_attrs(&mut e).map_err(&refuse)?;
            let op = match kind {
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => {
                    let len = sparse.as_ref().map_or(e.size(), |sp| sp.realsize);
                    if offset.saturating_add(len) > limits.max_size {
                        return Err(limit_err(&shown, size_what()));
                    }
                    let n = match &sparse {
                        Some(sp) => copy_sparse(&mut e, &mut spool, sp.realsize)
                            .map_err(|err| read_err(err, &shown))?,
                        None => {
                            io::copy(&mut e, &mut spool).map_err(|err| read_err(err, &shown))?
                        }
                    };
                    if n != len {
                        return Err(malformed(format!(
                            "entry '{shown}' is truncated ({n} of {len} bytes)"
                        )));
                    }
                    let op = Op::File {
                        path,
                        mode,
                        uid,
                        gid,
                        offset,
                        len,
                    };
                    offset += len;
                    op
                }
                tar::EntryType::Directory => Op::Dir {
                    path,
                    mode,
                    uid,
                    gid,
                },
                tar::EntryType::Symlink => {
                    let target = link_target(&e, "symlink").map_err(&refuse)?;
                    if target.is_empty() || target.contains('\0') {
                        return Err(refuse("empty symlink target".into()));
                    }
                    Op::Symlink {
                        path,
                        target,
                        uid,
                        gid,
                    }
                }
                tar::EntryType::Link => {
                    let target = link_target(&e, "hardlink").map_err(&refuse)?;
                    let bad_target = |r: String| {
                        refuse(format!(
                            "hardlink target '{}': {r}",
                            escaped(target.as_bytes())
                        ))
                    };
                    let comps = components(&target).map_err(bad_target)?;
                    if comps.is_empty() {
                        return Err(refuse("a hardlink to the layer root".into()));
                    }
                    let t = to_path(&comps).map_err(bad_target)?;
                    // a link shares its target's inode: its times and xattrs are the target's
                    attrs = Attrs::default();
                    Op::Hardlink { path, target: t }
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    let (kind, rdev) = match kind {
                        tar::EntryType::Fifo => (FileKind::Fifo, 0),
                        k => {
                            let major = numeric_opt(e.header().device_major()).map_err(&refuse)?;
                            let minor = numeric_opt(e.header().device_minor()).map_err(&refuse)?;
                            let kind = if k == tar::EntryType::Char {
                                FileKind::CharDevice
                            } else {
                                FileKind::BlockDevice
                            };
                            (kind, layerlab_core::makedev(major, minor))
                        }
                    };
                    if let Some(why) = layerlab_core::rules::mknod_refusal(kind, rdev) {
                        return Err(refuse(why));
                    }
                    let node = layerlab_core::Node::new(kind, mode, rdev);
                    Op::Node {
                        path,
                        node,
                        uid,
                        gid,
                    }
                }
                other => {
                    return Err(refuse(format!(
                        "unsupported entry type {:?}",
                        other.as_byte() as char
                    )))
                }
            };
            entries.push(Entry { name, op, attrs });
        }
    }
    spool.flush().map_err(|e| OciError::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let spool = spool.into_inner().map_err(|e| OciError::Io {
        path: std::env::temp_dir(),
        source: e.into_error(),
    })?;
    let (diff_id, tar_size) = ar
        .into_inner()
        .finish()
        .map_err(|e| read_err(e, &last_name))?;
    Ok(Parsed {
        archive: archive.to_string(),
        entries,
        diff_id,
        tar_size,
        content_bytes: offset,
        compression,
        spool,
    })
}

/// One trait-level step of an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Remove every entry of a directory of the current view (an opaque marker).
    ClearDir(LayerPath),
    /// Remove an entry, recursively.
    Remove(LayerPath),
    /// Create what an entry asks for: a directory (also a missing parent, 0755 root:root),
    /// a file from the spool, a symlink or a hardlink, with its mode and owner. Never a
    /// whiteout or an opaque marker: those become `Remove` and `ClearDir`.
    Create(Op),
    /// Set the extended attributes an entry carries, and its mtime (a directory's at the
    /// end of the apply, once nothing more is made in it).
    Attrs(LayerPath, Attrs),
    /// Set the mode and owner of an existing directory.
    SetAttrs {
        /// Where.
        path: LayerPath,
        /// Mode.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
}

/// The state of a path in the model of the resulting tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Absent,
    Kind(FileKind),
    /// A directory none of whose current-view entries remain.
    FreshDir,
}

struct Model<'a, D: ?Sized> {
    d: &'a mut D,
    layer: &'a LayerId,
    nodes: BTreeMap<String, Node>,
}

impl<D: LayerDriver + ?Sized> Model<'_, D> {
    fn lookup(&mut self, path: &LayerPath) -> Result<Option<FileKind>> {
        if let Some(n) = self.nodes.get(path.as_str()) {
            return Ok(match n {
                Node::Absent => None,
                Node::Kind(k) => Some(*k),
                Node::FreshDir => Some(FileKind::Dir),
            });
        }
        let mut anc = path.parent();
        while let Some(a) = anc {
            match self.nodes.get(a.as_str()) {
                Some(Node::Kind(FileKind::Dir)) => break,
                Some(_) => return Ok(None),
                None => anc = a.parent(),
            }
        }
        match self.d.stat(self.layer, path) {
            Ok(md) => Ok(Some(md.kind)),
            Err(Error::NotFound { .. } | Error::NotADirectory { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn set(&mut self, path: &LayerPath, node: Node) {
        if node != Node::Kind(FileKind::Dir) {
            let prefix = format!("{}/", path.as_str().trim_end_matches('/'));
            let stale: Vec<String> = self
                .nodes
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                self.nodes.remove(&k);
            }
        }
        self.nodes.insert(path.as_str().to_string(), node);
    }

    /// What is at `a`, an ancestor of a path written or removed: a symlink on the way is
    /// refused.
    fn ancestor(&mut self, a: &LayerPath) -> std::result::Result<Option<FileKind>, String> {
        match self.lookup(a).map_err(|e| e.to_string())? {
            Some(FileKind::Symlink) => Err(format!("the path goes through the symlink '{a}'")),
            kind => Ok(kind),
        }
    }

    /// Checks the parents of `path` for a write: each must be (or become) a directory.
    /// Returns the missing ones, to be created.
    fn parents_for_write(
        &mut self,
        path: &LayerPath,
    ) -> std::result::Result<Vec<LayerPath>, String> {
        let mut missing = Vec::new();
        for a in path.ancestors().into_iter().filter(|a| !a.is_root()) {
            match self.ancestor(&a)? {
                Some(FileKind::Dir) => {}
                Some(k) => return Err(format!("'{a}' is a {}, not a directory", k.as_str())),
                None => {
                    missing.push(a.clone());
                    self.set(&a, Node::FreshDir);
                }
            }
        }
        Ok(missing)
    }

    /// Checks the parents of `path` for a removal: a symlink on the way is refused; a
    /// missing or non-directory parent means there is nothing to remove (`Ok(false)`).
    fn parents_for_remove(&mut self, path: &LayerPath) -> std::result::Result<bool, String> {
        for a in path.ancestors().into_iter().filter(|a| !a.is_root()) {
            if self.ancestor(&a)? != Some(FileKind::Dir) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Checks a parsed archive against the layer's current view and returns the steps to
/// apply, in order. Nothing is changed. Errors name the entry.
pub fn plan<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    parsed: &Parsed,
) -> Result<Vec<Step>> {
    let archive = parsed.archive.clone();
    let mut m = Model {
        d,
        layer,
        nodes: BTreeMap::new(),
    };
    let mut steps = Vec::new();
    let refuse = |e: &Entry, reason: String| OciError::Entry {
        archive: archive.clone(),
        entry: e.name.clone(),
        reason,
    };
    // 1. opaque markers
    for e in &parsed.entries {
        if let Op::Opaque(dir) = &e.op {
            if !m.parents_for_remove(dir).map_err(|r| refuse(e, r))? {
                continue;
            }
            if m.lookup(dir)? == Some(FileKind::Dir)
                && m.nodes.get(dir.as_str()) != Some(&Node::FreshDir)
            {
                steps.push(Step::ClearDir(dir.clone()));
                m.set(dir, Node::FreshDir);
            }
        }
    }
    // 2. whiteouts
    for e in &parsed.entries {
        if let Op::Whiteout(p) = &e.op {
            if !m.parents_for_remove(p).map_err(|r| refuse(e, r))? {
                continue;
            }
            if m.lookup(p)?.is_some() {
                steps.push(Step::Remove(p.clone()));
                m.set(p, Node::Absent);
            }
        }
    }
    // 3. the entries, in archive order
    for e in &parsed.entries {
        let Some(path) = e.op.path() else {
            continue;
        };
        for dir in m.parents_for_write(path).map_err(|r| refuse(e, r))? {
            steps.push(Step::Create(Op::Dir {
                path: dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
            }));
        }
        if let Op::Hardlink { target, .. } = &e.op {
            if target == path {
                return Err(refuse(e, "a hardlink to itself".into()));
            }
            if target.as_str().starts_with(&format!("{}/", path.as_str())) {
                return Err(refuse(
                    e,
                    format!("the hardlink target '{target}' is inside the link's own path"),
                ));
            }
            if !m
                .parents_for_remove(target)
                .map_err(|r| refuse(e, format!("hardlink target: {r}")))?
            {
                return Err(refuse(
                    e,
                    format!("the hardlink target '{target}' does not exist in the layer"),
                ));
            }
            match m.lookup(target)? {
                Some(FileKind::File) => {}
                Some(k) => {
                    return Err(refuse(
                        e,
                        format!(
                            "the hardlink target '{target}' is a {}, not a regular file",
                            k.as_str()
                        ),
                    ))
                }
                None => {
                    return Err(refuse(
                        e,
                        format!("the hardlink target '{target}' does not exist in the layer"),
                    ))
                }
            }
        }
        let existing = m.lookup(path)?;
        let made = match &e.op {
            Op::Dir { mode, uid, gid, .. } if existing == Some(FileKind::Dir) => {
                steps.push(Step::SetAttrs {
                    path: path.clone(),
                    mode: *mode,
                    uid: *uid,
                    gid: *gid,
                });
                if e.attrs != Attrs::default() {
                    steps.push(Step::Attrs(path.clone(), e.attrs.clone()));
                }
                continue;
            }
            Op::Dir { .. } => Node::FreshDir,
            Op::File { .. } | Op::Hardlink { .. } => Node::Kind(FileKind::File),
            Op::Symlink { .. } => Node::Kind(FileKind::Symlink),
            Op::Node { node, .. } => Node::Kind(node.kind),
            Op::Opaque(_) | Op::Whiteout(_) => continue,
        };
        if existing.is_some() {
            steps.push(Step::Remove(path.clone()));
        }
        steps.push(Step::Create(e.op.clone()));
        if e.attrs != Attrs::default() {
            steps.push(Step::Attrs(path.clone(), e.attrs.clone()));
        }
        m.set(path, made);
    }
    Ok(steps)
}
