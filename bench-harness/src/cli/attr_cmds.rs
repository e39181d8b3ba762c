//! The verbs for what real image layers carry besides data: `touch` (mtimes), `getfattr`
//! and `setfattr` (extended attributes, as attr(1)'s tools print and take them), `mknod`
//! (device nodes and fifos, as mknod(1)).

use super::args::Global;
use super::file_cmds::change;
use super::output;
use super::session::Session;
use super::values;
use anyhow::{anyhow, bail, Result};
use layerlab_core::{ops, Error, FileKind, LayerDriver, Node};
use layerlab_drivers::Access;
use std::collections::BTreeMap;
use std::io::Write;

/// An xattr value as getfattr prints it: `"text"` when it is printable text, else `0x`
/// and hex.
pub fn value_text(v: &[u8]) -> String {
    let printable = v
        .iter()
        .all(|b| (0x20..0x7f).contains(b) && *b != b'"' && *b != b'\\');
    if printable {
        format!("\"{}\"", String::from_utf8_lossy(v))
    } else {
        format!("0x{}", hex::encode(v))
    }
}

/// An xattr value as setfattr takes it: `0x` and hex, or text (quotes around it dropped).
pub fn parse_value(raw: &str) -> Result<Vec<u8>> {
    if let Some(h) = raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X")) {
        return hex::decode(h).map_err(|e| anyhow!("value {raw:?}: not hex ({e})"));
    }
    let text = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    Ok(text.as_bytes().to_vec())
}

/// `touch ID PATH [--mtime SECS[.FRAC]] [--no-create]`: sets the mtime (now by default),
/// creating an empty file (0644) first where nothing is, as touch(1).
pub fn touch(g: &Global, id: &str, path: &str, mtime: Option<&str>, no_create: bool) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    let (secs, nsec) = match mtime {
        Some(raw) => layerlab_core::time::parse(raw).ok_or_else(|| {
            anyhow!("layer {id}: {path}: --mtime {raw:?} is not seconds since 1970 (like 1700000000 or 1700000000.5)")
        })?,
        None => layerlab_core::time::now(),
    };
    let label = || {
        format!(
            "touch {id} {path} {}",
            layerlab_core::time::format(secs, nsec)
        )
    };
    change(g, label, |d| {
        let missing = matches!(d.stat(&id, &path), Err(Error::NotFound { .. }));
        if missing && no_create {
            return Ok(());
        }
        if missing {
            d.create(&id, &path, 0o644)?;
        }
        d.set_mtime(&id, &path, secs, nsec)
    })
}

/// `getfattr ID PATH [-n NAME] [--json]`: one attribute, or every one.
pub fn getfattr<W: Write>(
    out: &mut W,
    g: &Global,
    id: &str,
    path: &str,
    name: Option<&str>,
    json: bool,
) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    let mut s = Session::open(g, Access::Read)?;
    let pairs = s.op(
        || format!("getfattr {id} {path}"),
        |d| match name {
            Some(n) => d.get_xattr(&id, &path, n).map(|v| vec![(n.to_string(), v)]),
            None => ops::xattrs(d, &id, &path),
        },
    )?;
    s.finish();
    if json {
        let map: BTreeMap<&str, String> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), value_text(v)))
            .collect();
        return output::json(out, &map);
    }
    writeln!(out, "# file: {path}")?;
    for (n, v) in &pairs {
        writeln!(out, "{n}={}", value_text(v))?;
    }
    Ok(())
}

/// `setfattr ID PATH -n NAME [-v VALUE]` or `setfattr ID PATH -x NAME`.
pub fn setfattr(
    g: &Global,
    id: &str,
    path: &str,
    name: Option<&str>,
    value: Option<&str>,
    remove: Option<&str>,
) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    match (name, remove) {
        (Some(n), None) => {
            let v =
                parse_value(value.unwrap_or("")).map_err(|e| anyhow!("layer {id}: {path}: {e}"))?;
            change(
                g,
                || format!("setfattr {id} {path} {n}={}", value_text(&v)),
                |d| d.set_xattr(&id, &path, n, &v),
            )
        }
        (None, Some(n)) => change(
            g,
            || format!("setfattr -x {n} {id} {path}"),
            |d| d.remove_xattr(&id, &path, n),
        ),
        _ => bail!("setfattr: give -n NAME (with -v VALUE) or -x NAME"),
    }
}

/// `mknod ID PATH TYPE [MAJOR MINOR] [--mode MODE]`: TYPE `c`, `b` or `p`, as mknod(1).
pub fn mknod(
    g: &Global,
    id: &str,
    path: &str,
    kind: &str,
    numbers: &[u32],
    mode: Option<&str>,
) -> Result<()> {
    let (id, path) = values::id_path(id, path)?;
    let kind = match kind {
        "c" | "u" => FileKind::CharDevice,
        "b" => FileKind::BlockDevice,
        "p" => FileKind::Fifo,
        other => bail!(
            "layer {id}: {path}: mknod type {other:?}: use c (character), b (block) or p (fifo)"
        ),
    };
    let rdev = match (kind, numbers) {
        (FileKind::Fifo, []) => 0,
        (FileKind::Fifo, _) => bail!("layer {id}: {path}: a fifo takes no MAJOR MINOR"),
        (_, [major, minor]) => layerlab_core::makedev(*major, *minor),
        _ => bail!("layer {id}: {path}: a device node needs MAJOR and MINOR"),
    };
    let mode = match mode {
        Some(m) => layerlab_core::mode::parse(m).map_err(|e| anyhow!("layer {id}: {path}: {e}"))?,
        None => 0o644,
    };
    change(
        g,
        || {
            format!(
                "mknod {id} {path} {} {}",
                kind.as_str(),
                output::octal(mode)
            )
        },
        |d| d.mknod(&id, &path, Node::new(kind, mode, rdev)),
    )
}
