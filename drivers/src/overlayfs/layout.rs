//! Where overlay2 keeps things on the host, Docker's layout:
//!
//! ```text
//! <root>/overlay2/<dir>/diff/      the layer's upper directory (its own entries, whiteouts)
//! <root>/overlay2/<dir>/link       the layer's short name
//! <root>/overlay2/<dir>/lower      l/SHORT:l/SHORT:...  its lower chain, top first
//!                                  (absent for a base layer, as in Docker)
//! <root>/overlay2/<dir>/work/      overlayfs's workdir: staging for copy-ups and whiteouts
//! <root>/overlay2/l/<SHORT>        symlink to ../<dir>/diff
//! <root>/overlay2/.staging/<dir>/  a layer being created, until it is renamed into place
//! ```
//!
//! `<dir>` is [`LayerId::dir_name`], except that a layer named `l` lives in `l=` (`=` never
//! appears in a dir name) so it cannot collide with the short-link directory. Short names
//! are 26 base32 characters derived from the id (FNV-1a, collision-checked), so that
//! the same workload gives the same store on every machine.

use crate::fsck::{check_scratch_dir, staging_then_layers, CheckReport, LayerData};
use crate::hostfs;
use crate::store::{fsync_dir, LayerTable};
use crate::union::BranchUsage;
use layerlab_core::{Error, IoContext, LayerId, Meter, Result};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The short-link directory.
pub const LINK_DIR: &str = "l";
/// Where layers are assembled before they are renamed into place.
pub const STAGING: &str = ".staging";

/// The driver's directory in a store.
pub fn base(root: &Path) -> PathBuf {
    root.join("overlay2")
}

/// The host directory name of a layer.
pub fn dir_name(id: &LayerId) -> String {
    let d = id.dir_name();
    if d == LINK_DIR {
        format!("{d}=")
    } else {
        d
    }
}

/// `<root>/overlay2/<dir>`.
pub fn layer_dir(root: &Path, id: &LayerId) -> PathBuf {
    base(root).join(dir_name(id))
}

/// `<root>/overlay2/<dir>/diff`.
pub fn diff_dir(root: &Path, id: &LayerId) -> PathBuf {
    layer_dir(root, id).join("diff")
}

/// `<root>/overlay2/<dir>/work`.
pub fn work_dir(root: &Path, id: &LayerId) -> PathBuf {
    layer_dir(root, id).join("work")
}

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The candidate short name of `id` at attempt `n`: 26 characters of base32 (A-Z, 2-7),
/// like Docker's random ones, but derived from the id.
pub fn short_name(id: &LayerId, n: u32) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut input = n.to_le_bytes().to_vec();
    input.extend_from_slice(id.as_str().as_bytes());
    let hi = fnv1a(0x9e37_79b9_7f4a_7c15, &input);
    let lo = fnv1a(0x5bd1_e995_0000_0001, &input);
    let bits = (u128::from(hi) << 64) | u128::from(lo);
    (0..26)
        .map(|k| {
            let v = ((bits >> (k * 5 % 128)) & 31) as usize;
            char::from(ALPHABET[v])
        })
        .collect()
}

/// The link target of a layer's short name (`../<dir>/diff`).
pub fn link_target(id: &LayerId) -> String {
    format!("../{}/diff", dir_name(id))
}

/// Picks a short name for `id` that no other layer's link uses.
pub fn pick_short(root: &Path, id: &LayerId) -> Result<String> {
    let links = base(root).join(LINK_DIR);
    for n in 0..1000 {
        let s = short_name(id, n);
        let p = links.join(&s);
        match fs::read_link(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(s),
            Err(e) => return Err(Error::io(&p, e)),
            Ok(t) if t == Path::new(&link_target(id)) => return Ok(s),
            Ok(_) => {}
        }
    }
    Err(Error::Corrupt {
        path: links,
        detail: format!("no free short name for layer {id}"),
    })
}

/// Reads a layer's short name.
pub fn read_short(root: &Path, id: &LayerId) -> Result<String> {
    let p = layer_dir(root, id).join("link");
    Ok(fs::read_to_string(&p).at(&p)?.trim().to_string())
}

/// Reads a layer's lower chain (`None` for a base layer).
pub fn read_lower(root: &Path, id: &LayerId) -> Result<Option<String>> {
    let p = layer_dir(root, id).join("lower");
    match fs::read_to_string(&p) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&p, e)),
    }
}

fn write_synced(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path).at(path)?;
    f.write_all(text.as_bytes()).at(path)?;
    f.sync_all().at(path)
}

/// Makes a layer's directories: assembled in `.staging/<dir>` (diff, work, link, lower,
/// all fsynced), renamed to `<dir>`, then the short link made. The layer table, written
/// afterwards by the caller, is the commit point. Returns the short name.
pub fn create_layer_dirs(
    root: &Path,
    id: &LayerId,
    parent: Option<&LayerId>,
    meter: &mut Meter,
) -> Result<String> {
    let base = base(root);
    let staging = base.join(STAGING).join(dir_name(id));
    hostfs::remove_tree(&staging)?;
    fs::create_dir(&staging).at(&staging)?;
    let diff = staging.join("diff");
    match parent {
        // the view of a new layer starts as its parent's: the root's attributes too
        Some(p) => {
            let pdiff = diff_dir(root, p);
            let md = fs::symlink_metadata(&pdiff).at(&pdiff)?;
            fs::create_dir(&diff).at(&diff)?;
            hostfs::copy_attrs(&pdiff, &md, &diff)?;
        }
        None => hostfs::create_dir(&diff, 0o755)?,
    }
    let work = staging.join("work");
    fs::create_dir(&work).at(&work)?;
    hostfs::set_mode(&work, 0o700)?;
    let short = pick_short(root, id)?;
    write_synced(&staging.join("link"), &short)?;
    meter.counts.metadata_writes += 4;
    meter.counts.entry_fsyncs += 1;
    if let Some(p) = parent {
        let mut lower = format!("{LINK_DIR}/{}", read_short(root, p)?);
        if let Some(rest) = read_lower(root, p)? {
            lower.push(':');
            lower.push_str(&rest);
        }
        write_synced(&staging.join("lower"), &lower)?;
        meter.counts.metadata_writes += 1;
        meter.counts.entry_fsyncs += 1;
    }
    fsync_dir(&staging)?;
    let dst = layer_dir(root, id);
    hostfs::rename(&staging, &dst)?;
    let link = base.join(LINK_DIR).join(&short);
    if hostfs::lstat(&link)?.is_none() {
        std::os::unix::fs::symlink(link_target(id), &link).at(&link)?;
    }
    fsync_dir(&base)?;
    fsync_dir(&base.join(LINK_DIR))?;
    meter.counts.metadata_writes += 2;
    meter.counts.entry_fsyncs += 3;
    Ok(short)
}

/// Removes a layer's short link and directories (after the table dropped it).
pub fn remove_layer_dirs(root: &Path, id: &LayerId) -> Result<()> {
    if let Ok(short) = read_short(root, id) {
        let link = base(root).join(LINK_DIR).join(short);
        match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&link, e)),
        }
    }
    hostfs::remove_tree(&layer_dir(root, id))
}

/// Sweeps what a crash can leave: staged layers, layer directories and short links the
/// table does not name, and staged entries in the work dirs of the layers it names.
pub fn sweep(root: &Path, known: &[LayerId]) -> Result<()> {
    let base = base(root);
    hostfs::reset_dir(&base.join(STAGING))?;
    let names: BTreeSet<String> = known.iter().map(dir_name).collect();
    for name in hostfs::list_names(&base)? {
        if name == LINK_DIR || name == STAGING {
            continue;
        }
        let p = base.join(&name);
        if !names.contains(&name) {
            hostfs::remove_tree(&p)?;
            continue;
        }
        hostfs::clear_scratch_dir(&p.join("work"), 0o700)?;
    }
    let links = base.join(LINK_DIR);
    for short in hostfs::list_names(&links)? {
        let p = links.join(&short);
        let keep = fs::read_link(&p).ok().is_some_and(|t| {
            t.to_str()
                .and_then(|t| t.strip_prefix("../"))
                .and_then(|t| t.strip_suffix("/diff"))
                .is_some_and(|d| names.contains(d))
        });
        if !keep {
            fs::remove_file(&p).at(&p)?;
        }
    }
    Ok(())
}

/// Walks a diff directory.
pub fn diff_usage(diff: &Path, format: &super::OverlayFormat) -> Result<BranchUsage> {
    let mut u = BranchUsage::default();
    let mut stack = vec![diff.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).at(&d)? {
            let p = e.at(&d)?.path();
            let md = fs::symlink_metadata(&p).at(&p)?;
            if !seen.insert((md.dev(), md.ino())) {
                continue;
            }
            u.inodes += 1;
            u.disk += md.blocks() * 512;
            if md.is_dir() {
                if format.is_opaque(&p)? {
                    u.opaque_dirs += 1;
                }
                stack.push(p);
            } else if hostfs::is_whiteout(&md) {
                u.whiteouts += 1;
            } else if md.is_file() && format.is_metacopy(&p)? {
                u.metacopy_files += 1;
            } else {
                u.bytes += md.size();
            }
        }
    }
    Ok(u)
}

/// Makes the driver's own directories in a new store (`l/`, the staging directory).
pub fn init_dirs(root: &Path) -> Result<()> {
    let b = base(root);
    for d in [LINK_DIR, STAGING] {
        fs::create_dir_all(b.join(d)).at(b.join(d))?;
    }
    fsync_dir(&b)
}

/// Cleans up a layer whose making failed: its staged directory (best effort).
pub fn discard_staged(root: &Path, id: &LayerId) {
    let _ = hostfs::remove_tree(&base(root).join(STAGING).join(dir_name(id)));
}

/// `fsck`: the table's layers whose `diff/` is there; layer directories and short links no
/// layer of the table names.
pub fn layer_data(root: &Path, table: &LayerTable) -> Result<LayerData> {
    let mut d = LayerData::default();
    d.scan(&base(root), table, dir_name, &[LINK_DIR, STAGING], true)?;
    d.present.retain(|id| diff_dir(root, id).is_dir());
    let names: BTreeSet<String> = table.ids().map(dir_name).collect();
    let links = base(root).join(LINK_DIR);
    if links.is_dir() {
        for short in hostfs::list_names(&links)? {
            let p = links.join(&short);
            if !link_names_one_of(&p, &names) {
                d.orphans.push(p);
            }
        }
    }
    Ok(d)
}

fn link_names_one_of(link: &Path, names: &BTreeSet<String>) -> bool {
    fs::read_link(link).ok().is_some_and(|t| {
        t.to_str()
            .and_then(|t| t.strip_prefix("../"))
            .and_then(|t| t.strip_suffix("/diff"))
            .is_some_and(|d| names.contains(d))
    })
}

/// `fsck`: the staging directory and each layer's `work/` empty (when `own_work`: under
/// the real kernel, `work/` is overlayfs's own workdir and holds its `work/work`), each
/// layer's short link there and pointing at its `diff/` (made again from its `link` file on
/// `repair`).
pub fn check_layout(
    root: &Path,
    table: &LayerTable,
    own_work: bool,
    repair: bool,
    report: &mut CheckReport,
) -> Result<()> {
    let staging = base(root).join(STAGING);
    for id in staging_then_layers(report, root, &staging, table, repair, diff_dir)? {
        if own_work {
            check_scratch_dir(report, root, Some(id), &work_dir(root, id), 0o700, repair)?;
        }
        let short = match read_short(root, id) {
            Ok(s) if !s.is_empty() && !s.contains('/') => s,
            Ok(_) | Err(_) => {
                let place = format!("overlay2/{}/link", dir_name(id));
                report.uncorrected(
                    Some(id),
                    place,
                    "the layer's short name is missing or unreadable",
                );
                continue;
            }
        };
        let link = base(root).join(LINK_DIR).join(&short);
        let target = link_target(id);
        if fs::read_link(&link)
            .ok()
            .is_some_and(|t| t == Path::new(&target))
        {
            continue;
        }
        let place = format!("overlay2/{LINK_DIR}/{short}");
        if repair {
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link).at(&link)?;
            fsync_dir(&base(root).join(LINK_DIR))?;
            report.repaired(
                Some(id),
                place,
                "short link missing or wrong: made again",
                None,
            );
        } else {
            report.uncorrected(
                Some(id),
                place,
                "short link missing or not pointing at the layer's diff",
            );
        }
    }
    Ok(())
}
