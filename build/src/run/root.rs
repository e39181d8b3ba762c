//! Paths inside the image, resolved under the mount directory as the chrooted command
//! would see them: symbolic links are followed relative to the image's root (an absolute
//! target starts again at the root, `..` stops at it), so nothing outside the mount is
//! ever read or made.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// The most symbolic links followed for one path (the kernel's limit).
const MAX_LINKS: u32 = 40;

/// Resolves `path` under `root`; `None` when a component is missing. With `create`, the
/// missing directories are made (mode 0755, owned by the caller, as WORKDIR makes them).
fn resolve(root: &Path, path: &str, create: bool) -> Result<Option<PathBuf>, String> {
    let mut todo: VecDeque<OsString> = components(Path::new(path));
    let mut at: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            at.pop();
            continue;
        }
        let here = at.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        let candidate = here.join(&name);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err("too many levels of symbolic links".into());
                }
                let target = std::fs::read_link(&candidate).map_err(|e| e.to_string())?;
                if target.is_absolute() {
                    at.clear();
                }
                for c in components(&target).into_iter().rev() {
                    todo.push_front(c);
                }
            }
            Ok(m) if !m.is_dir() && !todo.is_empty() => {
                return Err(format!("{}: not a directory", display(&at, &name)));
            }
            Ok(_) => at.push(name),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                std::fs::create_dir(&candidate)
                    .map_err(|e| format!("making {}: {e}", display(&at, &name)))?;
                at.push(name);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", display(&at, &name))),
        }
    }
    Ok(Some(at.iter().fold(root.to_path_buf(), |p, c| p.join(c))))
}

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn display(at: &[OsString], name: &OsString) -> String {
    let mut s = String::new();
    for c in at.iter().chain(std::iter::once(name)) {
        s.push('/');
        s.push_str(&c.to_string_lossy());
    }
    s
}

/// Makes the directory `path` of the image and its missing parents.
pub fn make_dirs(root: &Path, path: &str) -> Result<(), String> {
    match resolve(root, path, true)? {
        Some(p) if p.is_dir() => Ok(()),
        _ => Err("not a directory".into()),
    }
}

/// Whether `path` is a directory in the image.
pub fn is_dir(root: &Path, path: &str) -> bool {
    matches!(resolve(root, path, false), Ok(Some(p)) if p.is_dir())
}

/// The content of the file `path` of the image; `None` when it is missing.
pub fn read(root: &Path, path: &str) -> Result<Option<String>, String> {
    match resolve(root, path, false)? {
        None => Ok(None),
        Some(p) => std::fs::read_to_string(&p)
            .map(Some)
            .map_err(|e| format!("{path}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn links_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "x").unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("etc/far")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("cfg")).unwrap();
        assert_eq!(read(&root, "/cfg/passwd").unwrap().as_deref(), Some("x"));
        assert_eq!(
            read(&root, "/etc/far/etc/passwd").unwrap().as_deref(),
            Some("x")
        );
        // the host's /tmp is not the image's
        make_dirs(&root, "/up/tmp/made").unwrap();
        assert!(root.join("tmp/made").is_dir());
        assert!(!t.path().join("tmp").exists());
        assert!(make_dirs(&root, "/etc/passwd/x").is_err());
        assert!(!is_dir(&root, "/nothing"));
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(read(&root, "/loop").is_err());
    }
}
