//! The filesystem over one subvolume: path lookup, reads (counting extents), and the
//! planning of every change as a list of [`Op`]s plus the data to write first.

use super::engine::{timestamp, Engine, SECTOR};
use super::ops::{Op, Stamp};
use super::tree::Attr;
use super::tree::{Ext, Inode, Tree, MAX_INO, ROOT_INO};
use crate::warm::WarmCache;
use layerlab_core::{
    DirEntry, Error, FileKind, LayerId, LayerPath, Metadata, Meter, Result, MODE_MASK, SYMLINK_MODE,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Bytes to write from a first pool sector (whole sectors).
pub type Run = (u64, Vec<u8>);

/// A planned change: data to write at free runs of sectors first, then the ops.
#[derive(Debug, Default)]
pub struct Plan {
    /// The ops of the log record.
    pub ops: Vec<Op>,
    /// `(first sector, bytes)` runs written before the record (disjoint).
    pub data: Vec<Run>,
}

/// Who shares a subvolume's data, for the trace: the origin's label and subvolume.
#[derive(Debug, Clone)]
pub struct Origin {
    /// How the trace names it (`base`, `layerlab/base@commit`).
    pub label: String,
    /// Its subvolume.
    pub sv: String,
}

/// One operation's view of one subvolume.
#[derive(Debug)]
pub struct Fs<'a> {
    eng: &'a Engine,
    tree: &'a Tree,
    sv: String,
    layer: LayerId,
    path: LayerPath,
    origin: Option<Origin>,
}

fn nospace(layer: &LayerId, path: &LayerPath, what: String) -> Error {
    Error::NoSpace {
        layer: layer.clone(),
        path: path.clone(),
        what,
    }
}

impl<'a> Fs<'a> {
    /// The subvolume `sv` of `eng`, for an operation of `layer` on `path`.
    pub fn new(
        eng: &'a Engine,
        sv: &str,
        layer: &LayerId,
        path: &LayerPath,
        origin: Option<Origin>,
    ) -> Result<Self> {
        let tree = eng.tree(sv).ok_or_else(|| Error::Corrupt {
            path: eng.meta_path(),
            detail: format!("layer {layer} has no subvolume {sv}"),
        })?;
        Ok(Fs {
            eng,
            tree,
            sv: sv.to_string(),
            layer: layer.clone(),
            path: path.clone(),
            origin,
        })
    }

    fn inode(&self, ino: u64) -> Result<&'a Arc<Inode>> {
        self.tree.get(ino).ok_or_else(|| Error::Corrupt {
            path: self.eng.meta_path(),
            detail: format!(
                "subvolume {} of layer {} names missing inode {ino}",
                self.sv, self.layer
            ),
        })
    }

    /// What is at `path`: `(inode, kind)`, `None` when absent from an existing directory.
    pub fn lookup(&self, path: &LayerPath) -> Result<Option<(u64, FileKind)>> {
        crate::blockpool::lookup_path(&self.layer, path, ROOT_INO, |dir, name| {
            Ok(self.inode(dir)?.dir.get(name).copied())
        })
    }

    fn need(&self, path: &LayerPath) -> Result<(u64, FileKind)> {
        self.lookup(path)?.ok_or_else(|| Error::NotFound {
            layer: self.layer.clone(),
            path: path.clone(),
        })
    }

    fn parent_of(&self, path: &LayerPath) -> Result<(u64, String)> {
        let parent = path.parent().unwrap_or_else(LayerPath::root);
        let name = path.file_name().unwrap_or_default().to_string();
        Ok((self.need(&parent)?.0, name))
    }

    /// Attributes of the entry at `path`.
    pub fn stat(&self, path: &LayerPath) -> Result<Metadata> {
        let (ino, kind) = self.need(path)?;
        let i = self.inode(ino)?;
        Ok(Metadata {
            kind,
            mode: i.attr.mode,
            uid: i.attr.uid,
            gid: i.attr.gid,
            size: match kind {
                FileKind::Dir => 0,
                FileKind::File => i.attr.size,
                FileKind::Symlink => i.attr.target.len() as u64,
                FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo => 0,
            },
            nlink: if kind == FileKind::File {
                i.attr.nlink
            } else {
                1
            },
            target: (kind == FileKind::Symlink).then(|| i.attr.target.clone()),
            rdev: i.attr.rdev,
            mtime: i.attr.mtime,
            mtime_nsec: i.attr.mtime_nsec,
            layer: self.layer.clone(),
        })
    }

    /// The listing of the directory at `path`.
    pub fn readdir(&self, path: &LayerPath) -> Result<Vec<DirEntry>> {
        let (ino, _) = self.need(path)?;
        Ok(self
            .inode(ino)?
            .dir
            .iter()
            .map(|(name, (_, kind))| DirEntry {
                name: name.clone(),
                kind: *kind,
            })
            .collect())
    }

    /// Reads one unit's bytes (zeros for a hole).
    fn load_unit(&self, i: &Inode, u: u64, buf: &mut [u8]) -> Result<()> {
        let unit = self.eng.geo.unit as usize;
        if u == 0 && !i.inline.is_empty() {
            let n = i.inline.len().min(unit);
            buf[..n].copy_from_slice(&i.inline[..n]);
            buf[n..unit].fill(0);
            return Ok(());
        }
        match i.extent_at(u) {
            None => buf[..unit].fill(0),
            Some((s, e)) if e.clen == 0 => {
                let spu = e.nsec / e.units.max(1);
                let got = self.eng.read_verified(
                    e.sector + (u - s) * spu,
                    spu,
                    &self.layer,
                    &self.path,
                )?;
                buf[..unit].copy_from_slice(&got[..unit]);
            }
            Some((_, e)) => {
                let plain = self.decompress(&e)?;
                buf[..unit].copy_from_slice(&plain);
            }
        }
        Ok(())
    }

    fn decompress(&self, e: &Ext) -> Result<Vec<u8>> {
        let unit = self.eng.geo.unit as usize;
        let mut raw = self
            .eng
            .read_verified(e.sector, e.nsec, &self.layer, &self.path)?;
        raw.truncate(e.clen as usize);
        let mut out = lz4_flex::block::decompress(&raw, unit).map_err(|err| Error::Corrupt {
            path: self.eng.data_path(),
            detail: format!(
                "record at sector {} of {} in layer {}: {err}",
                e.sector, self.path, self.layer
            ),
        })?;
        out.resize(unit, 0);
        Ok(out)
    }

    /// Reads `[off, off+len)` of the file at `path` (clamped to its size); every run of
    /// contiguous pool sectors read that the page cache (`cache`) did not hold counts one
    /// `extents_read`. `by_block`: the cache is keyed by pool block (zfs's ARC, shared by
    /// every dataset), else by subvolume, inode and unit (btrfs's page cache).
    pub fn read(
        &self,
        path: &LayerPath,
        off: u64,
        len: u64,
        meter: &mut Meter,
        cache: &mut WarmCache,
        by_block: bool,
    ) -> Result<Vec<u8>> {
        let (ino, _) = self.need(path)?;
        let i = self.inode(ino)?;
        let end = i.attr.size.min(off.saturating_add(len));
        if off >= end {
            return Ok(Vec::new());
        }
        let unit = self.eng.geo.unit;
        let mut out = vec![0u8; (end - off) as usize];
        if !i.inline.is_empty() {
            // in the metadata: no extent read
            let have = (i.inline.len() as u64).min(end);
            if off < have {
                out[..(have - off) as usize]
                    .copy_from_slice(&i.inline[off as usize..have as usize]);
            }
            return Ok(out);
        }
        let (a, b) = (off / unit, end.div_ceil(unit));
        let mut pieces: Vec<(u64, Ext)> = Vec::new();
        if let Some((s, e)) = i.extent_at(a) {
            if s < a {
                pieces.push((s, e));
            }
        }
        pieces.extend(i.extents.range(a..b).map(|(k, e)| (*k, *e)));
        let mut last_end: Option<u64> = None;
        let domain = cache.domain(&self.sv);
        for (s, e) in pieces {
            let ua = s.max(a);
            let ub = (s + e.units).min(b);
            let fa = (ua * unit).max(off);
            let fb = (ub * unit).min(end);
            if fa >= fb {
                continue;
            }
            let dst = &mut out[(fa - off) as usize..(fb - off) as usize];
            let spu = e.nsec / e.units.max(1);
            for u in ua..ub {
                let (phys, n) = if e.clen == 0 {
                    (e.sector + (u - s) * spu, spu)
                } else {
                    (e.sector, e.nsec)
                };
                let key = if by_block {
                    (0, phys, 0)
                } else {
                    (domain, ino, u)
                };
                if cache.read_block(key) {
                    last_end = None;
                    continue;
                }
                if last_end != Some(phys) {
                    meter.counts.extents_read += 1;
                }
                last_end = Some(phys + n);
            }
            if e.clen == 0 {
                let pos = e.sector * SECTOR + (fa - s * unit);
                let first = pos / SECTOR;
                let last = (pos + dst.len() as u64).div_ceil(SECTOR);
                let got = self
                    .eng
                    .read_verified(first, last - first, &self.layer, path)?;
                let from = (pos - first * SECTOR) as usize;
                dst.copy_from_slice(&got[from..from + dst.len()]);
            } else {
                let plain = self.decompress(&e)?;
                let from = (fa - s * unit) as usize;
                dst.copy_from_slice(&plain[from..from + dst.len()]);
            }
        }
        Ok(out)
    }

    // ----- planning changes -----------------------------------------------------------

    fn attr_op(&self, ino: u64, attr: Attr) -> Op {
        Op::Attr {
            sv: self.sv.clone(),
            ino,
            attr,
        }
    }

    /// A new file, directory or symlink at `path`.
    pub fn make(&self, path: &LayerPath, kind: FileKind, mode: u32, target: &str) -> Result<Plan> {
        self.make_with(path, kind, mode, target, 0)
    }

    /// A new device node or fifo at `path`.
    pub fn mknod(&self, path: &LayerPath, kind: FileKind, mode: u32, rdev: u64) -> Result<Plan> {
        self.make_with(path, kind, mode, "", rdev)
    }

    fn make_with(
        &self,
        path: &LayerPath,
        kind: FileKind,
        mode: u32,
        target: &str,
        rdev: u64,
    ) -> Result<Plan> {
        let (dir, name) = self.parent_of(path)?;
        let ino = self.tree.next_ino;
        if ino >= MAX_INO {
            return Err(nospace(
                &self.layer,
                path,
                format!("inode numbers of subvolume {} ({MAX_INO})", self.sv),
            ));
        }
        let (mtime, mtime_nsec) = timestamp();
        let attr = Attr {
            kind,
            mode: if kind == FileKind::Symlink {
                SYMLINK_MODE
            } else {
                mode & MODE_MASK
            },
            uid: 0,
            gid: 0,
            nlink: 1,
            size: target.len() as u64,
            mtime,
            mtime_nsec,
            rdev,
            target: target.to_string(),
        };
        Ok(Plan {
            ops: vec![
                self.attr_op(ino, attr),
                self.link_op(dir, name, ino, kind, (mtime, mtime_nsec)),
            ],
            data: Vec::new(),
        })
    }

    /// Names `ino` as `name` in directory `dir`, whose mtime becomes `now`.
    fn link_op(&self, dir: u64, name: String, ino: u64, kind: FileKind, now: Stamp) -> Op {
        Op::Link {
            sv: self.sv.clone(),
            dir,
            name,
            ino,
            kind,
            mtime: now,
        }
    }

    /// Removes `name` from directory `dir`, whose mtime becomes `now`.
    fn unlink_op(&self, dir: u64, name: String, now: Stamp) -> Op {
        Op::Unlink {
            sv: self.sv.clone(),
            dir,
            name,
            mtime: now,
        }
    }

    /// `link` as a second name of the file at `existing`.
    pub fn hardlink(&self, existing: &LayerPath, link: &LayerPath) -> Result<Plan> {
        let (ino, kind) = self.need(existing)?;
        let mut attr = self.inode(ino)?.attr.clone();
        attr.nlink += 1;
        let (dir, name) = self.parent_of(link)?;
        Ok(Plan {
            ops: vec![
                self.attr_op(ino, attr),
                self.link_op(dir, name, ino, kind, timestamp()),
            ],
            data: Vec::new(),
        })
    }

    fn drop_name(&self, ino: u64, kind: FileKind, ops: &mut Vec<Op>) -> Result<()> {
        let i = self.inode(ino)?;
        if kind == FileKind::File && i.attr.nlink > 1 {
            let mut attr = i.attr.clone();
            attr.nlink -= 1;
            ops.push(self.attr_op(ino, attr));
        } else {
            ops.push(Op::Drop {
                sv: self.sv.clone(),
                ino,
            });
        }
        Ok(())
    }

    /// Removes the entry at `path` (a file, symlink or empty directory).
    pub fn remove(&self, path: &LayerPath) -> Result<Plan> {
        let (ino, kind) = self.need(path)?;
        let (dir, name) = self.parent_of(path)?;
        let mut ops = vec![self.unlink_op(dir, name, timestamp())];
        self.drop_name(ino, kind, &mut ops)?;
        Ok(Plan {
            ops,
            data: Vec::new(),
        })
    }

    /// Moves `from` to `to`, replacing what is there (the rules were checked).
    pub fn rename(&self, from: &LayerPath, to: &LayerPath) -> Result<Plan> {
        let (ino, kind) = self.need(from)?;
        let replaced = self.lookup(to)?;
        if replaced.is_some_and(|(old, _)| old == ino) {
            return Ok(Plan::default());
        }
        let (sdir, sname) = self.parent_of(from)?;
        let (ddir, dname) = self.parent_of(to)?;
        let now = timestamp();
        let mut ops = vec![
            self.unlink_op(sdir, sname, now),
            self.link_op(ddir, dname, ino, kind, now),
        ];
        if let Some((old, okind)) = replaced {
            self.drop_name(old, okind, &mut ops)?;
        }
        Ok(Plan {
            ops,
            data: Vec::new(),
        })
    }

    /// Mode and/or owner of the entry at `path`.
    pub fn set_attrs(
        &self,
        path: &LayerPath,
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
    ) -> Result<Plan> {
        let (ino, _) = self.need(path)?;
        let mut attr = self.inode(ino)?.attr.clone();
        if let Some(m) = mode {
            attr.mode = m & MODE_MASK;
        }
        if let Some((u, g)) = owner {
            attr.uid = u;
            attr.gid = g;
        }
        Ok(Plan {
            ops: vec![self.attr_op(ino, attr)],
            data: Vec::new(),
        })
    }

    /// Sets the mtime of the entry at `path` (`utimensat`, of a symlink itself).
    pub fn set_mtime(&self, path: &LayerPath, secs: i64, nsec: u32) -> Result<Plan> {
        let (ino, _) = self.need(path)?;
        let mut attr = self.inode(ino)?.attr.clone();
        attr.mtime = secs;
        attr.mtime_nsec = nsec;
        Ok(Plan {
            ops: vec![self.attr_op(ino, attr)],
            data: Vec::new(),
        })
    }

    /// The extended attributes of the entry at `path`, by name.
    pub fn xattrs(&self, path: &LayerPath) -> Result<&'a BTreeMap<String, Vec<u8>>> {
        let (ino, _) = self.need(path)?;
        Ok(&self.inode(ino)?.xattrs)
    }

    /// Sets (`Some`) or removes (`None`) the extended attribute `name` of the entry at
    /// `path`: one op, which copies the inode and the tree path to it where they are shared.
    pub fn set_xattr(&self, path: &LayerPath, name: &str, value: Option<&[u8]>) -> Result<Plan> {
        let (ino, _) = self.need(path)?;
        Ok(Plan {
            ops: vec![Op::Xattr {
                sv: self.sv.clone(),
                ino,
                name: name.to_string(),
                value: value.map(<[u8]>::to_vec),
            }],
            data: Vec::new(),
        })
    }

    /// Who else holds the sector behind unit `u` of inode `ino`, for the trace.
    fn sharer(&self, ino: u64, u: u64, sector: u64) -> String {
        if let Some(o) = &self.origin {
            let same = self
                .eng
                .tree(&o.sv)
                .and_then(|t| t.get(ino))
                .and_then(|i| i.extent_at(u))
                .is_some_and(|(s, e)| {
                    let spu = e.nsec / e.units.max(1);
                    if e.clen == 0 {
                        e.sector + (u - s) * spu == sector
                    } else {
                        e.sector == sector
                    }
                });
            if same {
                return format!("shared with {}", o.label);
            }
        }
        format!("shared (refcount {})", self.eng.refs.get(sector).max(2))
    }

    /// New content for units `[a, a + buf.len()/unit)`: encoded (compressed where it saves
    /// a sector) and placed in the lowest free run that holds it all, or, in a fragmented
    /// pool, in several free runs (each unit or compressed record whole in one run, runs
    /// at or after `from`): the Map op (setting the file's mtime to `mtime`) and the
    /// `(sector, bytes)` runs to write. `NoSpace` only when the free runs cannot hold it.
    fn place(
        &self,
        ino: u64,
        a: u64,
        buf: &[u8],
        path: &LayerPath,
        from: u64,
        mtime: Option<Stamp>,
    ) -> Result<(Op, Vec<Run>)> {
        let geo = self.eng.geo;
        let unit = geo.unit as usize;
        let n = (buf.len() / unit) as u64;
        let spu = geo.spu();
        // each piece: (sectors, bytes padded to them, compressed length or 0)
        let mut pieces: Vec<(u64, Vec<u8>, u32)> = Vec::with_capacity(n as usize);
        for k in 0..n as usize {
            let plain = &buf[k * unit..(k + 1) * unit];
            let c = if geo.compress {
                Some(lz4_flex::block::compress(plain))
            } else {
                None
            };
            match c {
                Some(c) if (c.len() as u64).div_ceil(SECTOR) < spu => {
                    let nsec = (c.len() as u64).div_ceil(SECTOR);
                    let clen = c.len() as u32;
                    let mut bytes = c;
                    bytes.resize((nsec * SECTOR) as usize, 0);
                    pieces.push((nsec, bytes, clen));
                }
                _ => pieces.push((spu, plain.to_vec(), 0)),
            }
        }
        let sizes: Vec<u64> = pieces.iter().map(|p| p.0).collect();
        let starts = self.eng.place_pieces(&sizes, from).ok_or_else(|| {
            let total: u64 = sizes.iter().sum();
            nospace(
                &self.layer,
                path,
                format!(
                    "{} ({} free sectors, {total} needed in runs of at least {} each)",
                    self.eng.what_data(),
                    self.eng.refs.free(),
                    sizes.iter().max().copied().unwrap_or(0)
                ),
            )
        })?;
        let mut exts: Vec<(u64, Ext)> = Vec::new();
        let mut runs: Vec<Run> = Vec::new();
        let per = geo.units_per_extent();
        for (k, ((nsec, bytes, clen), at)) in pieces.into_iter().zip(starts).enumerate() {
            let u = a + k as u64;
            match runs.last_mut() {
                Some((s, b)) if *s + b.len() as u64 / SECTOR == at => b.extend_from_slice(&bytes),
                _ => runs.push((at, bytes)),
            }
            // raw units in consecutive sectors share a disk extent up to `max_extent`
            // (btrfs: 128 MiB; zfs: each record); a compressed record is its own
            match exts.last_mut() {
                Some((s, e))
                    if !geo.compress
                        && e.clen == 0
                        && e.sector + e.nsec == at
                        && *s + e.units == u
                        && e.units < per =>
                {
                    *e = Ext::whole(e.sector, e.nsec + nsec, e.units + 1, 0);
                }
                _ => exts.push((u, Ext::whole(at, nsec, 1, clen))),
            }
        }
        Ok((
            Op::Map {
                sv: self.sv.clone(),
                ino,
                from: a,
                to: a + n,
                exts,
                mtime,
            },
            runs,
        ))
    }

    /// True when a file of `size` bytes stays (or goes) inline: the flavor inlines, the
    /// file has no extent (btrfs never moves a regular file back inline) and the whole
    /// file fits `max_inline` (measured on this machine's btrfs: 2048 bytes inline, 2049 a
    /// 4 KiB extent).
    fn inline_fits(&self, i: &Inode, size: u64) -> bool {
        let max = self.eng.geo.max_inline;
        max > 0 && i.extents.is_empty() && size <= max
    }

    /// The plan that keeps the file inline with `bytes` as its content from offset 0.
    fn inline_plan(
        &self,
        ino: u64,
        i: &Inode,
        bytes: Vec<u8>,
        size: u64,
        meter: &mut Meter,
    ) -> Plan {
        let max = self.eng.geo.max_inline;
        let path = &self.path;
        let n = bytes.len();
        meter.step(|| {
            format!(
                "{path}: {n} bytes kept inline in the file's metadata, no data extent (files \
                 of at most {max} bytes: btrfs max_inline)"
            )
        });
        let mut attr = i.attr.clone();
        attr.size = size;
        attr.touch();
        let mut ops = Vec::new();
        if bytes != i.inline {
            ops.push(Op::Inline {
                sv: self.sv.clone(),
                ino,
                data: bytes,
            });
        }
        ops.push(self.attr_op(ino, attr));
        Plan {
            ops,
            data: Vec::new(),
        }
    }

    /// Moves an inline file's bytes to an extent of unit 0 (the file outgrew
    /// `max_inline`), into `plan`; returns the first sector later runs may use.
    fn leave_inline(&self, ino: u64, i: &Inode, plan: &mut Plan, meter: &mut Meter) -> Result<u64> {
        let unit = self.eng.geo.unit as usize;
        let mut buf = vec![0u8; unit];
        self.load_unit(i, 0, &mut buf)?;
        let (map, runs) = self.place(ino, 0, &buf, &self.path, 0, None)?;
        let path = &self.path;
        let (at, n) = (runs.first().map_or(0, |r| r.0), i.inline.len());
        meter.step(|| {
            format!("{path}: its {n} inline bytes move to a data extent at block {at} (the file outgrew max_inline)")
        });
        meter.counts.blocks_allocated += 1;
        let next = runs
            .iter()
            .map(|r| r.0 + (r.1.len() as u64).div_ceil(SECTOR))
            .max()
            .unwrap_or(0);
        plan.ops.push(map);
        plan.data.extend(runs);
        Ok(next)
    }

    /// Writes `data` at `off` (`u64::MAX`: at the end) into the file at `path`: the units
    /// it touches get new sectors; partly written units are read first (copy-on-write).
    pub fn write(
        &self,
        path: &LayerPath,
        off: u64,
        data: &[u8],
        meter: &mut Meter,
    ) -> Result<Plan> {
        let (ino, _) = self.need(path)?;
        let i = self.inode(ino)?;
        let off = if off == u64::MAX { i.attr.size } else { off };
        if data.is_empty() {
            return Ok(Plan::default());
        }
        let unit = self.eng.geo.unit;
        let end = off + data.len() as u64;
        if self.inline_fits(i, end.max(i.attr.size)) {
            let mut bytes = i.inline.clone();
            bytes.resize(end.max(i.attr.size) as usize, 0);
            bytes[off as usize..end as usize].copy_from_slice(data);
            return Ok(self.inline_plan(ino, i, bytes, end.max(i.attr.size), meter));
        }
        let mut plan = Plan::default();
        let (a, b) = (off / unit, end.div_ceil(unit));
        // an inline file that grows: unit 0 gets an extent first, unless this write
        // rewrites unit 0 itself (it reads the inline bytes like any partial unit)
        let from = if !i.inline.is_empty() && a > 0 {
            self.leave_inline(ino, i, &mut plan, meter)?
        } else {
            0
        };
        let n = b - a;
        let len = usize::try_from(n * unit).map_err(|_| Error::InvalidArgument {
            layer: self.layer.clone(),
            path: path.clone(),
            reason: "write too large".into(),
        })?;
        let mut buf = vec![0u8; len];
        let tree_shared = self.tree.is_shared(ino);
        let mut loaded: Vec<u64> = Vec::new();
        if off > a * unit && a * unit < i.attr.size {
            self.load_unit(i, a, &mut buf[..unit as usize])?;
            loaded.push(a);
        }
        if end < b * unit && (b - 1) * unit < i.attr.size && !loaded.contains(&(b - 1)) {
            let at = ((n - 1) * unit) as usize;
            self.load_unit(i, b - 1, &mut buf[at..at + unit as usize])?;
            loaded.push(b - 1);
        }
        let at = (off - a * unit) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        // the inode the Map op writes takes the new mtime with it
        let (map, runs) = self.place(ino, a, &buf, path, from, Some(timestamp()))?;
        let first = runs.first().map_or(0, |r| r.0);
        self.account(ino, i, a, b, &loaded, tree_shared, first, &map, path, meter);
        plan.ops.push(map);
        if end > i.attr.size {
            let mut attr = i.attr.clone();
            attr.size = end;
            attr.touch();
            plan.ops.push(self.attr_op(ino, attr));
        }
        plan.data.extend(runs);
        Ok(plan)
    }

    /// Counts and traces what a rewrite of units `[a, b)` does to the old extents.
    #[allow(clippy::too_many_arguments)]
    fn account(
        &self,
        ino: u64,
        i: &Inode,
        a: u64,
        b: u64,
        loaded: &[u64],
        tree_shared: bool,
        first: u64,
        map: &Op,
        path: &LayerPath,
        meter: &mut Meter,
    ) {
        let unit = self.eng.geo.unit;
        let new_sector = |u: u64| -> u64 {
            match map {
                Op::Map { exts, .. } => exts
                    .iter()
                    .rev()
                    .find(|(s, e)| *s <= u && u < s + e.units)
                    .map(|(s, e)| e.sector + (u - s) * (e.nsec / e.units.max(1)))
                    .unwrap_or(first),
                _ => first,
            }
        };
        meter.counts.blocks_allocated += b - a;
        for &u in loaded {
            if let Some((s, e)) = i.extent_at(u) {
                let spu = e.nsec / e.units.max(1);
                let old = if e.clen == 0 {
                    e.sector + (u - s) * spu
                } else {
                    e.sector
                };
                if tree_shared || self.eng.refs.get(old) > 1 {
                    meter.counts.bytes_copied += unit;
                    meter.counts.copy_ups += 1;
                }
            }
        }
        if !meter.tracing() {
            return;
        }
        let mut pieces: Vec<(u64, Ext)> = Vec::new();
        if let Some((s, e)) = i.extent_at(a) {
            if s < a {
                pieces.push((s, e));
            }
        }
        pieces.extend(i.extents.range(a..b).map(|(k, e)| (*k, *e)));
        let mut covered = 0u64;
        for (s, e) in &pieces {
            let idx = i.extents.range(..*s).count();
            let ua = (*s).max(a);
            let ub = (s + e.units).min(b);
            covered += ub - ua;
            let spu = e.nsec / e.units.max(1);
            let old = if e.clen == 0 {
                e.sector + (ua - s) * spu
            } else {
                e.sector
            };
            let shared = tree_shared || self.eng.refs.get(old) > 1;
            // a disk extent is freed only when no part of it is named any more
            let pinned = i
                .extents
                .iter()
                .any(|(k, x)| x.disk == e.disk && (*k < a || k + x.units > b));
            let copied: u64 = loaded.iter().filter(|u| (ua..ub).contains(u)).count() as u64 * unit;
            let (na, nb) = (new_sector(ua), new_sector(ub - 1));
            let blocks = if na == nb {
                format!("block {na}")
            } else {
                format!("blocks {na}..{nb}")
            };
            let who = if shared {
                self.sharer(ino, ua, old)
            } else {
                format!("owned by {}", self.layer)
            };
            let units = if ub - ua == 1 {
                format!("unit {ua}")
            } else {
                format!("units {ua}..{}", ub - 1)
            };
            meter.step(|| {
                if shared && copied > 0 {
                    format!(
                        "extent {idx} of {path} ({units}) {who}: CoW {copied} bytes to {blocks}"
                    )
                } else if shared {
                    format!(
                        "extent {idx} of {path} ({units}) {who}: overwritten whole, new {blocks}, \
                         nothing copied"
                    )
                } else if pinned {
                    format!(
                        "extent {idx} of {path} ({units}) {who}: rewritten to new {blocks}; the \
                         old disk extent of {} sectors stays allocated (another part of it is \
                         still in use)",
                        e.dlen
                    )
                } else {
                    format!(
                        "extent {idx} of {path} ({units}) {who}: rewritten to new {blocks}, old \
                         sectors freed"
                    )
                }
            });
        }
        if covered < b - a {
            let fresh = b - a - covered;
            let first = new_sector(a);
            meter.step(|| {
                format!(
                    "{path}: {fresh} new unit(s) of {unit} bytes written from pool sector {first}"
                )
            });
        }
    }

    /// Sets the length of the file at `path`: units past it are unmapped; a partly kept
    /// last unit is rewritten with its tail zeroed (copy-on-write like any write).
    pub fn truncate(&self, path: &LayerPath, size: u64, meter: &mut Meter) -> Result<Plan> {
        let (ino, _) = self.need(path)?;
        let i = self.inode(ino)?;
        if size == i.attr.size {
            // truncate(2) to the size it has changes only the mtime
            let mut attr = i.attr.clone();
            attr.touch();
            return Ok(Plan {
                ops: vec![self.attr_op(ino, attr)],
                data: Vec::new(),
            });
        }
        let unit = self.eng.geo.unit;
        let mut plan = Plan::default();
        if self.inline_fits(i, size) {
            let mut bytes = i.inline.clone();
            bytes.truncate(size as usize);
            if bytes.is_empty() && i.inline.is_empty() {
                // no data at all: only the size changes
                let mut attr = i.attr.clone();
                attr.size = size;
                attr.touch();
                plan.ops.push(self.attr_op(ino, attr));
                return Ok(plan);
            }
            return Ok(self.inline_plan(ino, i, bytes, size, meter));
        }
        if !i.inline.is_empty() {
            // grown past max_inline: the bytes move to an extent, the rest is a hole
            self.leave_inline(ino, i, &mut plan, meter)?;
        }
        if size < i.attr.size {
            let keep = size.div_ceil(unit);
            if !size.is_multiple_of(unit) && i.extent_at(size / unit).is_some() {
                let u = size / unit;
                let mut buf = vec![0u8; unit as usize];
                self.load_unit(i, u, &mut buf)?;
                buf[(size % unit) as usize..].fill(0);
                let (map, runs) = self.place(ino, u, &buf, path, 0, None)?;
                let shared = self.tree.is_shared(ino);
                let first = runs.first().map_or(0, |r| r.0);
                self.account(ino, i, u, u + 1, &[u], shared, first, &map, path, meter);
                plan.ops.push(map);
                plan.data.extend(runs);
            }
            plan.ops.push(Op::Map {
                sv: self.sv.clone(),
                ino,
                from: keep,
                to: u64::MAX,
                exts: Vec::new(),
                mtime: None,
            });
        }
        let mut attr = i.attr.clone();
        attr.size = size;
        attr.touch();
        plan.ops.push(self.attr_op(ino, attr));
        Ok(plan)
    }
}
