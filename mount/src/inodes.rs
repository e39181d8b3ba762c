//! Inode numbers for the life of a mount: a table between paths and numbers.
//!
//! The trait names entries by path and has no inode identity, so numbers are given out here,
//! in order, the first time a path is seen, and kept until the mount ends (`forget` does not
//! drop them, so a number is never reused for another entry). A hard link made through the
//! mount (`link`) joins the new name to the existing number. Limit: hard links that existed
//! in the layer before it was mounted cannot be recognized from the trait (it reports only
//! `nlink`), so each of their names gets its own number until one is linked through the
//! mount; `st_nlink` is still the driver's count. The drivers do know (overlay2, aufs and
//! vfs keep host hard links, the cow drivers an inode per file, devicemapper an inode
//! table), but no trait call says which names share a file. `layerlab_core::links` infers
//! groups from look-alike metadata and equal content, which is right for writing a tar but
//! not for inode numbers: it needs a walk of the whole view before the first lookup, and two
//! unrelated look-alike files joined under one number would share one page cache in the
//! kernel, so a write through one name would show through the other.

use layerlab_core::LayerPath;
use std::collections::{BTreeMap, HashMap};

/// The root directory's number, as FUSE fixes it.
pub const ROOT_INO: u64 = 1;

/// Paths to numbers and back.
#[derive(Debug)]
pub struct Inodes {
    by_path: BTreeMap<LayerPath, u64>,
    by_ino: HashMap<u64, Vec<LayerPath>>,
    next: u64,
}

impl Default for Inodes {
    fn default() -> Self {
        let mut t = Inodes {
            by_path: BTreeMap::new(),
            by_ino: HashMap::new(),
            next: ROOT_INO + 1,
        };
        t.by_path.insert(LayerPath::root(), ROOT_INO);
        t.by_ino.insert(ROOT_INO, vec![LayerPath::root()]);
        t
    }
}

impl Inodes {
    /// The number of `path`, given out now if it has none.
    pub fn ino_of(&mut self, path: &LayerPath) -> u64 {
        if let Some(ino) = self.by_path.get(path) {
            return *ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_path.insert(path.clone(), ino);
        self.by_ino.insert(ino, vec![path.clone()]);
        ino
    }

    /// A path of `ino` (the first of its names), if the number is known.
    pub fn path_of(&self, ino: u64) -> Option<&LayerPath> {
        self.by_ino.get(&ino).and_then(|paths| paths.first())
    }

    /// Records that `link` is another name of `ino`.
    pub fn link(&mut self, ino: u64, link: &LayerPath) {
        self.forget_path(link);
        self.by_path.insert(link.clone(), ino);
        self.by_ino.entry(ino).or_default().push(link.clone());
    }

    /// Drops the name `path` (after unlink, rmdir, or when a rename replaces it). The number
    /// stays known while it has other names.
    pub fn forget_path(&mut self, path: &LayerPath) {
        if let Some(ino) = self.by_path.remove(path) {
            if let Some(paths) = self.by_ino.get_mut(&ino) {
                paths.retain(|p| p != path);
            }
        }
    }

    /// Moves `from` and everything below it to `to`, keeping their numbers; what was at `to`
    /// loses its name.
    pub fn rename(&mut self, from: &LayerPath, to: &LayerPath) {
        self.forget_subtree(to);
        for (old, ino) in self.subtree(from) {
            let Some(new) = old.rebase(from, to) else {
                continue;
            };
            self.by_path.remove(&old);
            self.by_path.insert(new.clone(), ino);
            if let Some(paths) = self.by_ino.get_mut(&ino) {
                for p in paths.iter_mut().filter(|p| **p == old) {
                    *p = new.clone();
                }
            }
        }
    }

    fn forget_subtree(&mut self, top: &LayerPath) {
        for (p, _) in self.subtree(top) {
            self.forget_path(&p);
        }
    }

    /// `top` and every known path below it. Names sharing `top` as a string prefix sort
    /// among them (`/a-b` between `/a` and `/a/b`), hence the filter inside the prefix run.
    fn subtree(&self, top: &LayerPath) -> Vec<(LayerPath, u64)> {
        self.by_path
            .range(top.clone()..)
            .take_while(|(p, _)| p.as_str().starts_with(top.as_str()))
            .filter(|(p, _)| *p == top || top.is_ancestor_of(p))
            .map(|(p, i)| (p.clone(), *i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> LayerPath {
        LayerPath::parse(s).unwrap_or_else(|_| LayerPath::root())
    }

    #[test]
    fn numbers_are_stable_and_follow_renames() {
        let mut t = Inodes::default();
        let a = t.ino_of(&p("/a"));
        let ab = t.ino_of(&p("/a/b"));
        let other = t.ino_of(&p("/a-b"));
        assert_eq!(t.ino_of(&p("/a")), a);
        t.rename(&p("/a"), &p("/z"));
        assert_eq!(t.ino_of(&p("/z/b")), ab);
        assert_eq!(t.ino_of(&p("/a-b")), other);
        assert_eq!(t.path_of(ab), Some(&p("/z/b")));
        assert_ne!(t.ino_of(&p("/a/b")), ab, "the old name is a new entry");
    }

    #[test]
    fn links_share_a_number_until_a_name_goes() {
        let mut t = Inodes::default();
        let f = t.ino_of(&p("/f"));
        t.link(f, &p("/g"));
        assert_eq!(t.ino_of(&p("/g")), f);
        t.forget_path(&p("/f"));
        assert_eq!(t.path_of(f), Some(&p("/g")));
        t.rename(&p("/g"), &p("/h"));
        assert_eq!(t.ino_of(&p("/h")), f);
        assert_eq!(t.path_of(ROOT_INO), Some(&LayerPath::root()));
    }
}
