//! Compound operations built from the trait's primitives, written once for every driver:
//! whole-file reads and writes, `mkdir -p`, `rm -r`, tree walks.

use crate::{Error, FileKind, LayerDriver, LayerId, LayerPath, Result};

const CHUNK: u64 = 1 << 20;

/// Reads a whole file.
pub fn read_all<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let chunk = d.read(layer, path, out.len() as u64, CHUNK)?;
        if chunk.is_empty() {
            return Ok(out);
        }
        out.extend_from_slice(&chunk);
    }
}

/// Replaces a file's content, creating it with `mode` if it does not exist
/// (`layerlab write` without `--offset`).
pub fn write_file<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    data: &[u8],
    mode: u32,
) -> Result<()> {
    match d.create(layer, path, mode) {
        Ok(()) => {}
        Err(Error::AlreadyExists { .. }) => d.truncate(layer, path, 0)?,
        Err(e) => return Err(e),
    }
    if data.is_empty() {
        return Ok(());
    }
    d.write(layer, path, 0, data)
}

/// Creates a directory and any missing parents (`mkdir -p`); existing directories are fine.
pub fn mkdir_p<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    mode: u32,
) -> Result<()> {
    let mut all = path.ancestors();
    all.push(path.clone());
    for p in all.iter().filter(|p| !p.is_root()) {
        match d.mkdir(layer, p, mode) {
            Ok(()) => {}
            Err(Error::AlreadyExists { .. }) => {
                if d.stat(layer, p)?.kind != FileKind::Dir {
                    return Err(Error::NotADirectory {
                        layer: layer.clone(),
                        path: p.clone(),
                    });
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes an entry and, for a directory, everything under it (`rm -r`), deepest first.
pub fn remove_all<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<()> {
    match d.stat(layer, path)?.kind {
        FileKind::Dir => {
            for entry in d.readdir(layer, path)? {
                let child = child(path, &entry.name)?;
                remove_all(d, layer, &child)?;
            }
            if path.is_root() {
                Ok(())
            } else {
                d.rmdir(layer, path)
            }
        }
        _ => d.unlink(layer, path),
    }
}

/// Every path of a layer's view under `path` (itself included), depth first: parents
/// before children, siblings by name.
pub fn walk<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<Vec<(LayerPath, FileKind)>> {
    let mut out = Vec::new();
    let kind = d.stat(layer, path)?.kind;
    walk_into(d, layer, path, kind, &mut out)?;
    Ok(out)
}

fn walk_into<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    kind: FileKind,
    out: &mut Vec<(LayerPath, FileKind)>,
) -> Result<()> {
    out.push((path.clone(), kind));
    if kind == FileKind::Dir {
        for e in d.readdir(layer, path)? {
            let c = child(path, &e.name)?;
            walk_into(d, layer, &c, e.kind, out)?;
        }
    }
    Ok(())
}

/// `dir/name` with a typed error.
pub fn child(dir: &LayerPath, name: &str) -> Result<LayerPath> {
    dir.join(name).map_err(|e| Error::InvalidPath {
        path: format!("{dir}/{name}"),
        reason: e.to_string(),
    })
}

/// Every extended attribute of an entry, by name (sorted), with its value.
pub fn xattrs<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in d.list_xattrs(layer, path)? {
        let v = d.get_xattr(layer, path, &name)?;
        out.push((name, v));
    }
    Ok(out)
}
