//! Paths inside a layer: parsed and normalized in this one place.
//!
//! A [`LayerPath`] is an absolute, lexically normalized path (`/`, `/etc`, `/etc/passwd`).
//! layerlab never follows symlinks while resolving a path, so `..` can be resolved
//! lexically; a `..` that would climb above the root is an escape and is refused.

use serde::{Deserialize, Serialize};

/// The longest file name accepted, in bytes (as on Linux).
pub const NAME_MAX: usize = 255;
/// The longest path accepted, in bytes (as on Linux).
pub const PATH_MAX: usize = 4096;
/// Names starting with this prefix are reserved for whiteouts (OCI image-spec).
pub const WHITEOUT_PREFIX: &str = ".wh.";

/// Why a path or a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path or name was empty.
    #[error("empty path")]
    Empty,
    /// The path contains a NUL byte.
    #[error("path contains a NUL byte")]
    Nul,
    /// A `..` climbs above the layer's root.
    #[error("'..' escapes the layer root")]
    Escapes,
    /// A name is `.` or `..` or contains `/` where a single name was expected.
    #[error("'{0}' is not a valid file name")]
    BadName(String),
    /// A name uses the reserved whiteout prefix `.wh.`.
    #[error("'{0}' uses the reserved whiteout prefix '.wh.'")]
    Reserved(String),
    /// A name or the path is longer than Linux allows.
    #[error("name or path too long")]
    TooLong,
}

/// A normalized absolute path inside a layer.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LayerPath(String);

impl LayerPath {
    /// The root directory of a layer, `/`.
    pub fn root() -> Self {
        LayerPath("/".to_string())
    }

    /// Parses and normalizes a path. Relative paths are taken from the root; `.` and empty
    /// components are dropped and `..` is resolved lexically (symlinks are never followed).
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.contains('\0') {
            return Err(PathError::Nul);
        }
        if raw.len() > PATH_MAX {
            return Err(PathError::TooLong);
        }
        let mut parts: Vec<&str> = Vec::new();
        for comp in raw.split('/') {
            match comp {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(PathError::Escapes);
                    }
                }
                name => {
                    check_name(name)?;
                    parts.push(name);
                }
            }
        }
        Ok(LayerPath(format!("/{}", parts.join("/"))))
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The path as text, starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path without its leading `/` (empty for the root), to join onto a host directory.
    pub fn relative(&self) -> &str {
        &self.0[1..]
    }

    /// The parent directory; `None` for the root.
    pub fn parent(&self) -> Option<LayerPath> {
        if self.is_root() {
            return None;
        }
        match self.0.rfind('/') {
            Some(0) => Some(LayerPath::root()),
            Some(i) => Some(LayerPath(self.0[..i].to_string())),
            None => None,
        }
    }

    /// The last component; `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        self.0.rfind('/').map(|i| &self.0[i + 1..])
    }

    /// This path with one more component. The name is validated like any component.
    pub fn join(&self, name: &str) -> Result<LayerPath, PathError> {
        check_name(name)?;
        if self.0.len() + name.len() + 1 > PATH_MAX {
            return Err(PathError::TooLong);
        }
        if self.is_root() {
            Ok(LayerPath(format!("/{name}")))
        } else {
            Ok(LayerPath(format!("{}/{name}", self.0)))
        }
    }

    /// The components, root first (empty for the root).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// Number of components (0 for the root).
    pub fn depth(&self) -> usize {
        self.components().count()
    }

    /// The strict ancestors of this path, from the root down (empty for the root).
    pub fn ancestors(&self) -> Vec<LayerPath> {
        let mut out = Vec::new();
        let mut cur = self.parent();
        while let Some(p) = cur {
            cur = p.parent();
            out.push(p);
        }
        out.reverse();
        out
    }

    /// True when `self` is a strict ancestor of `other` (`/a` of `/a/b`, not of `/ab`).
    pub fn is_ancestor_of(&self, other: &LayerPath) -> bool {
        if self.is_root() {
            return !other.is_root();
        }
        other.0.len() > self.0.len()
            && other.0.starts_with(&self.0)
            && other.0.as_bytes()[self.0.len()] == b'/'
    }

    /// `other` re-rooted from `from` to `to` (used when a directory is renamed).
    pub fn rebase(&self, from: &LayerPath, to: &LayerPath) -> Option<LayerPath> {
        if self == from {
            return Some(to.clone());
        }
        if !from.is_ancestor_of(self) {
            return None;
        }
        let rest = if from.is_root() {
            &self.0[1..]
        } else {
            &self.0[from.0.len() + 1..]
        };
        if to.is_root() {
            Some(LayerPath(format!("/{rest}")))
        } else {
            Some(LayerPath(format!("{}/{rest}", to.0)))
        }
    }
}

/// Checks a single file name: non-empty, no `/` or NUL, not `.`/`..`, not a whiteout name.
pub fn check_name(name: &str) -> Result<(), PathError> {
    if name.is_empty() {
        return Err(PathError::Empty);
    }
    if name.contains('\0') {
        return Err(PathError::Nul);
    }
    if name == "." || name == ".." || name.contains('/') {
        return Err(PathError::BadName(name.to_string()));
    }
    if name.len() > NAME_MAX {
        return Err(PathError::TooLong);
    }
    if name.starts_with(WHITEOUT_PREFIX) {
        return Err(PathError::Reserved(name.to_string()));
    }
    Ok(())
}

crate::id::string_newtype!(LayerPath, PathError, LayerPath::parse);

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> LayerPath {
        LayerPath::parse(s).unwrap_or_else(|e| unreachable!("{s}: {e}"))
    }

    #[test]
    fn normalizes() {
        assert_eq!(p("/").as_str(), "/");
        assert_eq!(p("a/b").as_str(), "/a/b");
        assert_eq!(p("//a/./b/").as_str(), "/a/b");
        assert_eq!(p("/a/c/../b").as_str(), "/a/b");
        assert_eq!(p("/a/..").as_str(), "/");
    }

    #[test]
    fn rejects_bad_paths() {
        assert_eq!(LayerPath::parse(""), Err(PathError::Empty));
        assert_eq!(LayerPath::parse("/.."), Err(PathError::Escapes));
        assert_eq!(LayerPath::parse("a/../../b"), Err(PathError::Escapes));
        assert_eq!(LayerPath::parse("/a\0b"), Err(PathError::Nul));
        assert!(matches!(
            LayerPath::parse("/x/.wh.y"),
            Err(PathError::Reserved(_))
        ));
        assert!(matches!(
            LayerPath::root().join(".."),
            Err(PathError::BadName(_))
        ));
        assert!(matches!(
            LayerPath::root().join("a/b"),
            Err(PathError::BadName(_))
        ));
        assert_eq!(LayerPath::root().join(""), Err(PathError::Empty));
        assert_eq!(LayerPath::parse(&"x".repeat(256)), Err(PathError::TooLong));
    }

    #[test]
    fn relations() {
        assert_eq!(p("/a/b").parent(), Some(p("/a")));
        assert_eq!(p("/a").parent(), Some(LayerPath::root()));
        assert_eq!(LayerPath::root().parent(), None);
        assert_eq!(p("/a/b").file_name(), Some("b"));
        assert!(p("/a").is_ancestor_of(&p("/a/b")));
        assert!(!p("/a").is_ancestor_of(&p("/ab")));
        assert!(LayerPath::root().is_ancestor_of(&p("/a")));
        assert_eq!(p("/a/b/c").ancestors(), vec![p("/"), p("/a"), p("/a/b")]);
        assert_eq!(p("/a/b/c").rebase(&p("/a"), &p("/x")), Some(p("/x/b/c")));
        assert_eq!(p("/a/b").rebase(&p("/a/b"), &p("/")), Some(p("/")));
        assert_eq!(p("/q").rebase(&p("/a"), &p("/x")), None);
    }
}
