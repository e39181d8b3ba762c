//! Moving trees between the host and a layer: `copy` (host into a layer, like a
//! Dockerfile `COPY`) and `export` (a layer's merged view into a host directory).
//!
//! Both never follow a symlink on the host side: a host symlink is copied as a symlink,
//! and export creates every host entry fresh (`O_EXCL`), so nothing lands outside the
//! target directory. Export keeps the view's hard links (one host inode per link group),
//! holes, modes, mtimes and owners; `export --tar` is in `oci_cmds`. Owners are carried over only when running as root (an unprivileged
//! process could not set them).

use super::args::Global;
use super::file_cmds::CHUNK;
use super::session::Session;
use super::values;
use anyhow::{anyhow, bail, Context, Result};
use layerlab_core::{links, ops, Error, FileKind, LayerDriver, LayerId, LayerPath, Metadata};
use layerlab_drivers::journal::{self, Intent};
use layerlab_drivers::{hostfs, Access};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// True when this process runs as root (the owner of `/proc/self` is the effective uid).
pub fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// What one host entry becomes in the layer.
#[derive(Debug)]
enum Item {
    Dir,
    File,
    Symlink(String),
}

/// One host entry to copy, checked before anything is written.
#[derive(Debug)]
struct Planned {
    host: PathBuf,
    path: LayerPath,
    item: Item,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn kind_name(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a fifo"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "an unsupported file type"
    }
}

fn plan_one(host: &Path, path: LayerPath, md: &fs::Metadata) -> Result<Planned> {
    let item = match hostfs::kind_of(md) {
        Some(FileKind::Dir) => Item::Dir,
        Some(FileKind::File) => Item::File,
        Some(FileKind::Symlink) => {
            let target = fs::read_link(host).with_context(|| format!("{}", host.display()))?;
            let target = target
                .to_str()
                .ok_or_else(|| anyhow!("{}: symlink target is not UTF-8", host.display()))?;
            Item::Symlink(target.to_string())
        }
        _ => bail!(
            "{}: cannot copy {}",
            host.display(),
            kind_name(&md.file_type())
        ),
    };
    Ok(Planned {
        host: host.to_path_buf(),
        path,
        item,
        mode: md.permissions().mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
    })
}

/// Lists a host directory tree below `host` (parents first, siblings by name), checking
/// every name and file type before anything is written.
fn plan_tree(host: &Path, path: &LayerPath, out: &mut Vec<Planned>) -> Result<()> {
    let mut names = Vec::new();
    for e in fs::read_dir(host).with_context(|| format!("{}", host.display()))? {
        let e = e.with_context(|| format!("{}", host.display()))?;
        names.push(e.file_name());
    }
    names.sort();
    for name in names {
        let child_host = host.join(&name);
        let name = name
            .to_str()
            .ok_or_else(|| anyhow!("{}: file name is not UTF-8", child_host.display()))?;
        let child = path
            .join(name)
            .map_err(|e| anyhow!("{}: cannot copy: {e}", child_host.display()))?;
        let md = fs::symlink_metadata(&child_host)
            .with_context(|| format!("{}", child_host.display()))?;
        let p = plan_one(&child_host, child.clone(), &md)?;
        let is_dir = matches!(p.item, Item::Dir);
        out.push(p);
        if is_dir {
            plan_tree(&child_host, &child, out)?;
        }
    }
    Ok(())
}

/// The kind of what is at `path` in the layer, `None` when nothing is.
fn existing<D: LayerDriver>(
    d: &mut D,
    id: &LayerId,
    path: &LayerPath,
) -> layerlab_core::Result<Option<FileKind>> {
    match d.stat(id, path) {
        Ok(md) => Ok(Some(md.kind)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `copy ID HOSTPATH DEST`: a host file becomes the file DEST (or DEST/name when DEST is a
/// directory); a host directory's contents are copied into DEST (created if missing), as
/// Docker's COPY does. Existing files are replaced; existing directories are merged into.
pub fn copy(g: &Global, id: &str, hostpath: &Path, dest: &str) -> Result<()> {
    let id = values::id(id)?;
    let dest = values::path(&id, dest)?;
    let md = fs::symlink_metadata(hostpath).with_context(|| format!("{}", hostpath.display()))?;
    let as_root = running_as_root();
    let mut s = Session::open(g, Access::Write)?;

    // Plan everything and check it against the layer before writing anything.
    let dest_kind = s.op(
        || format!("copy: look up {id} {dest}"),
        |d| existing(d, &id, &dest),
    )?;
    let mut plan = Vec::new();
    if md.is_dir() {
        let top = plan_one(hostpath, dest.clone(), &md)?;
        plan.push(top);
        plan_tree(hostpath, &dest, &mut plan)?;
    } else {
        let target = if dest_kind == Some(FileKind::Dir) {
            let name = hostpath
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| anyhow!("{}: no usable file name", hostpath.display()))?;
            dest.join(name)
                .map_err(|e| anyhow!("{}: cannot copy: {e}", hostpath.display()))?
        } else {
            dest.clone()
        };
        plan.push(plan_one(hostpath, target, &md)?);
    }
    let present = s.op(
        || {
            format!(
                "copy: check {} destination(s) in {id} under {dest}",
                plan.len()
            )
        },
        |d| {
            plan.iter()
                .map(|p| existing(d, &id, &p.path))
                .collect::<layerlab_core::Result<Vec<_>>>()
        },
    )?;
    for (p, kind) in plan.iter().zip(&present) {
        match (&p.item, *kind) {
            (Item::Dir, Some(k)) if k != FileKind::Dir => {
                return Err(Error::NotADirectory {
                    layer: id.clone(),
                    path: p.path.clone(),
                }
                .into())
            }
            (Item::File | Item::Symlink(_), Some(FileKind::Dir)) => {
                return Err(Error::IsADirectory {
                    layer: id.clone(),
                    path: p.path.clone(),
                }
                .into())
            }
            _ => {}
        }
    }

    // Missing parents of the destination, as `mkdir -p`.
    let parent = plan.first().and_then(|p| p.path.parent());
    if let Some(parent) = parent.filter(|p| !p.is_root()) {
        s.op(
            || format!("copy: mkdir -p {id} {parent}"),
            |d| ops::mkdir_p(d, &id, &parent, 0o755),
        )?;
    }
    // the topmost of the entries that are new: the journal removes them again if the copy
    // is interrupted (files it replaces are each replaced whole)
    let new: Vec<&LayerPath> = plan
        .iter()
        .zip(&present)
        .filter(|(_, was)| was.is_none())
        .map(|(p, _)| &p.path)
        .collect();
    let topmost: Vec<LayerPath> = new
        .iter()
        .filter(|p| p.parent().is_none_or(|parent| !new.contains(&&parent)))
        .map(|p| (*p).clone())
        .collect();
    let intent = Intent::Undo {
        layer: id.clone(),
        remove: topmost,
    };
    let root = s.root().to_path_buf();
    s.op(
        || {
            format!(
                "copy {} -> {id} {dest}: {} entries",
                hostpath.display(),
                plan.len()
            )
        },
        |d| {
            journal::run(d, &root, &intent, |d| -> Result<()> {
                for (p, was) in plan.iter().zip(&present) {
                    copy_one(d, &id, p, *was, as_root)?;
                }
                Ok(())
            })
        },
    )?;
    s.finish();
    Ok(())
}

fn copy_one<D: LayerDriver>(
    d: &mut D,
    id: &LayerId,
    p: &Planned,
    was: Option<FileKind>,
    as_root: bool,
) -> Result<()> {
    match &p.item {
        Item::Dir => {
            if was.is_some() {
                return Ok(()); // merge into an existing directory, as COPY does
            }
            d.mkdir(id, &p.path, p.mode)?;
        }
        Item::File => {
            if was == Some(FileKind::Symlink) {
                d.unlink(id, &p.path)?;
            }
            let data = fs::read(&p.host).with_context(|| format!("{}", p.host.display()))?;
            if was == Some(FileKind::File) {
                d.replace(id, &p.path, &data)?;
            } else {
                ops::write_file(d, id, &p.path, &data, p.mode)?;
            }
        }
        Item::Symlink(target) => {
            if was.is_some() {
                d.unlink(id, &p.path)?;
            }
            d.symlink(id, target, &p.path)?;
        }
    }
    // New entries are owned by 0:0; an entry that existed keeps its owner unless set here.
    let chowned = as_root && ((p.uid, p.gid) != (0, 0) || was.is_some());
    if chowned {
        d.chown(id, &p.path, p.uid, p.gid)?;
    }
    // write_file keeps the mode of a file that existed, and the mode is set again after a
    // chown or a write so that setuid and setgid bits survive them.
    let special = p.mode & 0o7000 != 0;
    if !matches!(p.item, Item::Symlink(_)) && (chowned || was.is_some() || special) {
        d.chmod(id, &p.path, p.mode)?;
    }
    Ok(())
}

/// `export ID HOSTDIR`: the layer's merged view, written into HOSTDIR (created if missing,
/// refused unless empty) with modes, symlinks, mtimes, hard links (one host inode per link
/// group, `layerlab_core::links`), holes (runs of zero blocks are not written, as
/// `cp --sparse=always` does) and, when running as root, owners. On failure what was
/// written is removed again.
pub fn export(g: &Global, id: &str, hostdir: &Path) -> Result<()> {
    let id = values::id(id)?;
    refuse_inside_store(g, hostdir)?;
    let mut s = Session::open(g, Access::Read)?;
    let root = LayerPath::root();
    let entries = s.op(
        || format!("export: walk {id} /"),
        |d| -> layerlab_core::Result<_> {
            let mut out = Vec::new();
            for (path, _) in ops::walk(d, &id, &root)? {
                if !path.is_root() {
                    let md = d.stat(&id, &path)?;
                    out.push((path, md));
                }
            }
            Ok(out)
        },
    )?;
    let groups = s.op(
        || format!("export: find the hard-link groups of {id}"),
        |d| links::groups(d, &id, &entries),
    )?;
    // every later name of a group is linked to the first one
    let link_to: BTreeMap<&LayerPath, &LayerPath> = groups
        .iter()
        .filter_map(|g| g.split_first())
        .flat_map(|(first, rest)| rest.iter().map(move |p| (p, first)))
        .collect();

    let created = match fs::metadata(hostdir) {
        Ok(md) if !md.is_dir() => bail!("{}: not a directory", hostdir.display()),
        Ok(_) => {
            let mut it = fs::read_dir(hostdir).with_context(|| format!("{}", hostdir.display()))?;
            if it.next().is_some() {
                bail!(
                    "{}: directory is not empty; export needs an empty or missing directory",
                    hostdir.display()
                );
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(hostdir).with_context(|| format!("{}", hostdir.display()))?;
            true
        }
        Err(e) => return Err(e).with_context(|| format!("{}", hostdir.display())),
    };

    let as_root = running_as_root();
    let result = export_entries(&mut s, &id, &entries, &link_to, hostdir, as_root);
    if result.is_err() {
        clean(hostdir, created);
    }
    result?;
    s.finish();
    Ok(())
}

fn export_entries(
    s: &mut Session,
    id: &LayerId,
    entries: &[(LayerPath, Metadata)],
    link_to: &BTreeMap<&LayerPath, &LayerPath>,
    hostdir: &Path,
    as_root: bool,
) -> Result<()> {
    // Directory modes and mtimes are set last, deepest first, so a read-only directory can
    // be filled and filling it does not move its mtime.
    let mut dirs: Vec<(PathBuf, &Metadata)> = Vec::new();
    for (path, md) in entries {
        let host = hostdir.join(path.relative());
        if let Some(first) = link_to.get(path) {
            let target = hostdir.join(first.relative());
            fs::hard_link(&target, &host)
                .with_context(|| format!("{}: link to {}", host.display(), target.display()))?;
            continue;
        }
        match md.kind {
            FileKind::Dir => {
                fs::create_dir(&host).with_context(|| format!("{}", host.display()))?;
                dirs.push((host.clone(), md));
            }
            FileKind::File => {
                s.op(
                    || format!("export {id} {path} -> {}", host.display()),
                    |d| write_sparse(d, id, path, md.size, &host),
                )?;
            }
            FileKind::Symlink => {
                let target = md.target.clone().unwrap_or_default();
                std::os::unix::fs::symlink(&target, &host)
                    .with_context(|| format!("{}", host.display()))?;
            }
            kind @ (FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo) => {
                hostfs::make_node(&host, kind, md.rdev)?;
            }
        }
        if as_root {
            std::os::unix::fs::lchown(&host, Some(md.uid), Some(md.gid))
                .with_context(|| format!("{}: chown", host.display()))?;
        }
        if !matches!(md.kind, FileKind::Dir | FileKind::Symlink) {
            fs::set_permissions(&host, fs::Permissions::from_mode(md.mode))
                .with_context(|| format!("{}: chmod", host.display()))?;
        }
        // after chown, which clears security.capability
        let xattrs = s.op(
            || format!("xattrs of {id} {path}"),
            |d| ops::xattrs(d, id, path),
        )?;
        for (name, value) in &xattrs {
            // trusted.* and security.* need root on the host, as with tar --xattrs
            if as_root || name.starts_with("user.") {
                hostfs::set_xattr(&host, name, value)?;
            }
        }
        if md.kind != FileKind::Dir {
            hostfs::set_mtime(&host, md.mtime, md.mtime_nsec)?;
        }
    }
    for (host, md) in dirs.iter().rev() {
        fs::set_permissions(host, fs::Permissions::from_mode(md.mode))
            .with_context(|| format!("{}: chmod", host.display()))?;
        hostfs::set_mtime(host, md.mtime, md.mtime_nsec)?;
    }
    Ok(())
}

/// The block a run of zeros must fill to be left as a hole.
const HOLE_BLOCK: usize = 4096;

/// Writes a file of the layer to a new host file, leaving every all-zero block as a hole
/// (seeked over, never written) and setting the length at the end, so the host file
/// allocates only what holds data.
fn write_sparse<D: LayerDriver>(
    d: &mut D,
    id: &LayerId,
    path: &LayerPath,
    size: u64,
    host: &Path,
) -> Result<()> {
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(host)
        .with_context(|| format!("{}", host.display()))?;
    let mut offset = 0u64;
    loop {
        let chunk = d.read(id, path, offset, CHUNK)?;
        if chunk.is_empty() {
            break;
        }
        for (i, block) in chunk.chunks(HOLE_BLOCK).enumerate() {
            if block.iter().any(|b| *b != 0) {
                let at = offset + (i * HOLE_BLOCK) as u64;
                f.write_all_at(block, at)
                    .with_context(|| format!("{}", host.display()))?;
            }
        }
        offset += chunk.len() as u64;
    }
    f.set_len(size.max(offset))
        .with_context(|| format!("{}: set length", host.display()))?;
    Ok(())
}

/// Refuses an output path (a directory to export into, a tar file to write) inside the
/// store: writing there would change a layer's data, committed ones included, behind the
/// driver's back. Symlinks and `..` are resolved through the part of the path that exists.
pub fn refuse_inside_store(g: &Global, out: &Path) -> Result<()> {
    if out == Path::new("-") {
        return Ok(()); // stdout
    }
    let root = g.store_root();
    let Ok(root) = fs::canonicalize(&root) else {
        return Ok(()); // no store there: the command itself will say so
    };
    let abs = std::path::absolute(out).with_context(|| format!("{}", out.display()))?;
    // the deepest existing ancestor, resolved, with the rest of the path after it
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    let resolved = loop {
        if let Ok(r) = fs::canonicalize(cur) {
            break r;
        }
        match (cur.parent(), cur.file_name()) {
            (Some(p), Some(n)) => {
                rest.push(n.to_owned());
                cur = p;
            }
            _ => return Ok(()),
        }
    };
    let mut full = resolved;
    for n in rest.iter().rev() {
        if n == ".." {
            full.pop();
        } else {
            full.push(n);
        }
    }
    if full.starts_with(&root) {
        bail!(
            "{}: inside the store {} (writing there would change its layers); choose a path outside it",
            out.display(),
            root.display()
        );
    }
    Ok(())
}

/// Removes what a failed export wrote (best effort).
fn clean(hostdir: &Path, created: bool) {
    if created {
        let _ = fs::remove_dir_all(hostdir);
        return;
    }
    if let Ok(rd) = fs::read_dir(hostdir) {
        for e in rd.flatten() {
            let p = e.path();
            let _ = match e.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(&p),
                _ => fs::remove_file(&p),
            };
        }
    }
}
