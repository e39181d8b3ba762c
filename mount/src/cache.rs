//! What the server knows of the served view between requests, so that most requests of a
//! busy program (`tar x`: a lookup, a create, three `setattr`s per file) need no `stat` of
//! the driver.
//!
//! It is exact, not a guess with a time limit, because nothing but this server changes the
//! view while it is mounted: the mount record makes every other process refuse a change of
//! the mounted layer (`MountRecord::check_unmounted`, called by the store before every
//! change, removal and commit), and the layers below it are committed, which never change.
//! So what is known stays true until this server changes the view, and every change here
//! first tells the cache what it may touch:
//!
//! - the entry itself, and its ancestors (a new or removed name changes the parent's time
//!   and link count; a copy-up writes the ancestors into the upper layer);
//! - everything, when the entry is a file with other names (`nlink > 1`: they share size,
//!   mode, owner, times and link count), when its link count is not known, for links and
//!   renames (link counts of other names; whole subtrees move) and for xattr changes
//!   (hard links share them).
//!
//! A change of an entry in place whose outcome the trait fixes (`chmod`, `chown`,
//! `set_mtime`, and the size after `write` and `truncate`) updates its attributes instead,
//! when the entry is known, has one name and is in the served layer already (no copy-up):
//! `tar x` then needs one `stat` per file, after the create.
//!
//! Three kinds of knowledge are kept:
//! - attributes (the driver's `stat`) by path;
//! - the complete listing of each directory made through this mount (it was empty when
//!   made, and every name added or removed since came through here), so a lookup of a name
//!   not in it is answered "no such entry" without the driver (`tar x` looks up every name
//!   before it creates it);
//! - entries known to have no `security.capability`, which the kernel asks for before every
//!   write to a file (a file made here has no xattrs).

use layerlab_core::{FileKind, LayerId, LayerPath, Metadata, MODE_MASK};
use std::collections::{HashMap, HashSet};

/// What the cache says of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// The entry is there, with these attributes.
    Present(Metadata),
    /// There is no entry of that name.
    Absent,
    /// Not known: ask the driver.
    Unknown,
}

/// Attributes of one entry; a stale one still tells the kind and link count (which change
/// only by link, unlink and rename, and those drop everything). `mtime_fresh` false: all
/// but the modification time is known (after a write: the driver set it to its clock).
#[derive(Debug)]
struct Attrs {
    meta: Metadata,
    fresh: bool,
    mtime_fresh: bool,
}

/// A change of an entry in place whose outcome is known without asking the driver (see
/// [`ViewCache::in_place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// `chmod`: the permission bits.
    Mode(u32),
    /// `chown`.
    Owner(u32, u32),
    /// `utimensat`: the modification time, exact to the nanosecond.
    Mtime(i64, u32),
    /// A write ending at this offset: the size grows to it; the time is the driver's clock.
    Written(u64),
    /// A truncate to this size; the time is the driver's clock.
    Size(u64),
}

/// The server's knowledge of the view (see the module doc).
#[derive(Debug, Default)]
pub struct ViewCache {
    attrs: HashMap<LayerPath, Attrs>,
    complete: HashMap<LayerPath, HashSet<String>>,
    no_caps: HashSet<LayerPath>,
}

impl ViewCache {
    /// What is known of `path`.
    pub fn lookup(&self, path: &LayerPath) -> Known {
        if let Some(a) = self.attrs.get(path).filter(|a| a.fresh && a.mtime_fresh) {
            return Known::Present(a.meta.clone());
        }
        let listed = path
            .parent()
            .zip(path.file_name())
            .and_then(|(parent, name)| {
                self.complete.get(&parent).map(|names| names.contains(name))
            });
        match listed {
            Some(false) => Known::Absent,
            _ => Known::Unknown,
        }
    }

    /// Records the attributes the driver reported for `path`.
    pub fn remember(&mut self, path: &LayerPath, meta: &Metadata) {
        self.attrs.insert(
            path.clone(),
            Attrs {
                meta: meta.clone(),
                fresh: true,
                mtime_fresh: true,
            },
        );
    }

    /// Whether `path` may share its inode with other names (unknown counts as may).
    fn shared(&self, path: &LayerPath) -> bool {
        self.attrs
            .get(path)
            .is_none_or(|a| a.meta.kind == FileKind::File && a.meta.nlink > 1)
    }

    /// Marks `path` and its ancestors as to be asked again.
    fn stale_up(&mut self, path: &LayerPath) {
        for p in path.ancestors().iter().chain(std::iter::once(path)) {
            if let Some(a) = self.attrs.get_mut(p) {
                a.fresh = false;
            }
        }
    }

    /// Before a change of `path` in place (write, truncate, chmod, chown, times) by the
    /// driver of `layer`: whether its outcome will be known ([`ViewCache::changed`]). It is
    /// when the entry's attributes are known (all but perhaps the time), it has no other
    /// names, and it is in `layer` already: then the driver changes that entry alone (no
    /// copy-up writes its ancestors), and exactly as the trait says (`chmod` the mode bits,
    /// `chown` the owner, `set_mtime` the time, `write` and `truncate` the size and the
    /// time). Otherwise this is [`ViewCache::changing`], and `false`.
    pub fn in_place(&mut self, path: &LayerPath, layer: &LayerId) -> bool {
        let known = self.attrs.get(path).is_some_and(|a| {
            a.fresh
                && &a.meta.layer == layer
                && !(a.meta.kind == FileKind::File && a.meta.nlink > 1)
        });
        if !known {
            self.changing(path);
        }
        known
    }

    /// After a change [`ViewCache::in_place`] said is known: `Ok` applies it, an error
    /// makes the entry stale (the driver may have done part of it).
    pub fn changed(&mut self, path: &LayerPath, update: Update, ok: bool) {
        let Some(a) = self.attrs.get_mut(path) else {
            return;
        };
        if !ok {
            a.fresh = false;
            return;
        }
        let m = &mut a.meta;
        match update {
            Update::Mode(mode) => m.mode = mode & MODE_MASK,
            Update::Owner(uid, gid) => (m.uid, m.gid) = (uid, gid),
            Update::Mtime(secs, nsec) => {
                (m.mtime, m.mtime_nsec) = (secs, nsec);
                a.mtime_fresh = true;
            }
            Update::Written(end) => {
                m.size = m.size.max(end);
                a.mtime_fresh = false;
            }
            Update::Size(size) => {
                m.size = size;
                a.mtime_fresh = false;
            }
        }
    }

    /// Before a change of `path` that keeps its name (write, truncate, chmod, chown, times).
    pub fn changing(&mut self, path: &LayerPath) {
        if self.shared(path) {
            self.attrs.clear();
        } else {
            self.stale_up(path);
        }
    }

    /// Before a change of the xattrs of `path` (hard links share them).
    pub fn changing_xattrs(&mut self) {
        self.no_caps.clear();
    }

    /// After an attempt to make the entry `path` (file, directory, symlink, node): its
    /// ancestors change; if it was made (`made`), its parent's listing gains the name, and
    /// a new directory's listing is known complete (empty), a new file has no xattrs.
    pub fn made(&mut self, path: &LayerPath, kind: FileKind, made: bool) {
        self.attrs.remove(path);
        self.stale_up(path);
        if !made {
            return;
        }
        if let Some((parent, name)) = path.parent().zip(path.file_name()) {
            if let Some(names) = self.complete.get_mut(&parent) {
                names.insert(name.to_string());
            }
        }
        match kind {
            FileKind::Dir => {
                self.complete.insert(path.clone(), HashSet::new());
            }
            _ => {
                self.no_caps.insert(path.clone());
            }
        }
    }

    /// Before an unlink or rmdir of `path`.
    pub fn removing(&mut self, path: &LayerPath) {
        if self.shared(path) {
            self.attrs.clear();
        }
        self.no_caps.remove(path);
        self.complete.remove(path);
        self.attrs.remove(path);
        self.stale_up(path);
    }

    /// After an unlink or rmdir of `path` that succeeded: the name leaves its parent's listing.
    pub fn removed(&mut self, path: &LayerPath) {
        if let Some((parent, name)) = path.parent().zip(path.file_name()) {
            if let Some(names) = self.complete.get_mut(&parent) {
                names.remove(name);
            }
        }
    }

    /// Before a hard link is made at `link`: every link count may change.
    pub fn linking(&mut self) {
        self.attrs.clear();
        self.no_caps.clear();
    }

    /// After a hard link was made at `link`.
    pub fn linked(&mut self, link: &LayerPath) {
        if let Some((parent, name)) = link.parent().zip(link.file_name()) {
            if let Some(names) = self.complete.get_mut(&parent) {
                names.insert(name.to_string());
            }
        }
    }

    /// Before a rename of `from` to `to`: attributes and xattr knowledge are dropped, and
    /// the listings of both subtrees.
    pub fn renaming(&mut self, from: &LayerPath, to: &LayerPath) {
        self.attrs.clear();
        self.no_caps.clear();
        let inside = |d: &LayerPath, top: &LayerPath| d == top || top.is_ancestor_of(d);
        self.complete
            .retain(|d, _| !inside(d, from) && !inside(d, to));
    }

    /// After a rename of `from` to `to` that succeeded: the parents' listings follow.
    pub fn renamed(&mut self, from: &LayerPath, to: &LayerPath) {
        self.removed(from);
        self.linked(to);
    }

    /// Whether `path` is known to have no `security.capability`.
    pub fn has_no_caps(&self, path: &LayerPath) -> bool {
        self.no_caps.contains(path)
    }

    /// Records that `path` has no `security.capability`.
    pub fn no_caps(&mut self, path: &LayerPath) {
        self.no_caps.insert(path.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> LayerPath {
        LayerPath::parse(s).unwrap_or_else(|_| LayerPath::root())
    }

    fn meta(kind: FileKind, nlink: u32) -> Metadata {
        let layer = LayerId::new("l").unwrap_or_else(|e| unreachable!("{e}"));
        Metadata {
            nlink,
            ..Metadata::new(kind, 0o644, 0, 0, layer)
        }
    }

    #[test]
    fn a_change_makes_the_entry_and_its_ancestors_stale_only() {
        let mut c = ViewCache::default();
        for (path, kind) in [
            ("/", FileKind::Dir),
            ("/d", FileKind::Dir),
            ("/e", FileKind::File),
        ] {
            c.remember(&p(path), &meta(kind, 1));
        }
        c.remember(&p("/d/f"), &meta(FileKind::File, 1));
        c.changing(&p("/d/f"));
        for gone in ["/", "/d", "/d/f"] {
            assert_eq!(c.lookup(&p(gone)), Known::Unknown, "{gone}");
        }
        assert!(matches!(c.lookup(&p("/e")), Known::Present(_)));
    }

    #[test]
    fn a_file_with_other_names_or_an_unknown_one_drops_everything() {
        let mut c = ViewCache::default();
        c.remember(&p("/e"), &meta(FileKind::File, 1));
        c.remember(&p("/f"), &meta(FileKind::File, 2));
        c.changing(&p("/f"));
        assert_eq!(c.lookup(&p("/e")), Known::Unknown);
        c.remember(&p("/e"), &meta(FileKind::File, 1));
        c.changing(&p("/unknown"));
        assert_eq!(c.lookup(&p("/e")), Known::Unknown);
    }

    #[test]
    fn a_known_change_in_place_is_applied_and_the_rest_asked_again() {
        let (mut c, own, lower) = (ViewCache::default(), meta(FileKind::File, 1).layer, p("/"));
        c.remember(&lower, &meta(FileKind::Dir, 1));
        c.remember(&p("/f"), &meta(FileKind::File, 1));
        assert!(c.in_place(&p("/f"), &own));
        c.changed(&p("/f"), Update::Written(100), true);
        assert_eq!(
            c.lookup(&p("/f")),
            Known::Unknown,
            "the write's time is the driver's"
        );
        assert!(
            matches!(c.lookup(&lower), Known::Present(_)),
            "no ancestor changed"
        );
        assert!(c.in_place(&p("/f"), &own));
        c.changed(&p("/f"), Update::Mtime(7, 9), true);
        assert!(c.in_place(&p("/f"), &own));
        c.changed(&p("/f"), Update::Mode(0o104755), true);
        let known = match c.lookup(&p("/f")) {
            Known::Present(m) => Some((m.size, m.mtime, m.mtime_nsec, m.mode)),
            _ => None,
        };
        assert_eq!(known, Some((100, 7, 9, 0o4755)), "known after set_mtime");
        assert!(c.in_place(&p("/f"), &own));
        c.changed(&p("/f"), Update::Owner(1, 2), false);
        assert_eq!(
            c.lookup(&p("/f")),
            Known::Unknown,
            "a failed change is asked again"
        );
        let other = LayerId::new("other").unwrap_or_else(|e| unreachable!("{e}"));
        c.remember(&p("/g"), &meta(FileKind::File, 1));
        assert!(!c.in_place(&p("/g"), &other), "a copy-up is not known");
        assert_eq!(
            c.lookup(&lower),
            Known::Unknown,
            "a copy-up writes the ancestors"
        );
    }

    #[test]
    fn listings_of_directories_made_here_answer_absent_names() {
        let mut c = ViewCache::default();
        assert_eq!(
            c.lookup(&p("/d")),
            Known::Unknown,
            "the root was not made here"
        );
        c.made(&p("/d"), FileKind::Dir, true);
        assert_eq!(c.lookup(&p("/d/f")), Known::Absent);
        c.made(&p("/d/f"), FileKind::File, true);
        assert!(c.has_no_caps(&p("/d/f")));
        assert_eq!(
            c.lookup(&p("/d/f")),
            Known::Unknown,
            "there, attributes not known"
        );
        c.removing(&p("/d/f"));
        c.removed(&p("/d/f"));
        assert_eq!(c.lookup(&p("/d/f")), Known::Absent);
        c.made(&p("/d/g"), FileKind::File, false);
        assert_eq!(
            c.lookup(&p("/d/g")),
            Known::Absent,
            "a failed make adds no name"
        );
        c.made(&p("/d/s"), FileKind::Dir, true);
        c.renaming(&p("/d/s"), &p("/d/t"));
        c.renamed(&p("/d/s"), &p("/d/t"));
        assert_eq!(c.lookup(&p("/d/s")), Known::Absent);
        assert_eq!(c.lookup(&p("/d/t")), Known::Unknown);
        assert_eq!(
            c.lookup(&p("/d/t/x")),
            Known::Unknown,
            "a moved listing is dropped"
        );
        c.linked(&p("/d/l"));
        assert_eq!(c.lookup(&p("/d/l")), Known::Unknown);
    }
}
