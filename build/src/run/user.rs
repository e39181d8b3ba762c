//! USER resolved from the image's `/etc/passwd` and `/etc/group`, as runc and buildah do:
//! a name must be in `/etc/passwd`; a uid need not be (its group is then 0 and its home
//! `/`); a group name must be in `/etc/group`.

use super::root;
use std::path::Path;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// The home directory (for `HOME`).
    pub home: String,
}

/// One `name:x:id:...` line's fields.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
}

/// Resolves USER (`name`, `uid`, either with `:group` or `:gid`; empty is root) against the
/// image mounted at `root`. `Err` names what is missing.
pub fn resolve_user(root: &Path, user: &str) -> Result<Ident, String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let passwd = root::read(root, "/etc/passwd")?.unwrap_or_default();
    let found = entries(&passwd).find(|f| {
        f.len() >= 6
            && match u.parse::<u32>() {
                Ok(n) => f[2].parse::<u32>() == Ok(n),
                Err(_) => f[0] == u,
            }
    });
    let mut ident = match (found, u.parse::<u32>()) {
        (Some(f), _) => Ident {
            uid: f[2]
                .parse()
                .map_err(|_| format!("/etc/passwd: bad uid for {}", f[0]))?,
            gid: f[3]
                .parse()
                .map_err(|_| format!("/etc/passwd: bad gid for {}", f[0]))?,
            home: f[5].to_string(),
        },
        (None, Ok(uid)) => Ident {
            uid,
            gid: 0,
            home: "/".into(),
        },
        (None, Err(_)) => return Err(format!("no user {u} in /etc/passwd")),
    };
    if ident.home.is_empty() {
        ident.home = "/".into();
    }
    if let Some(g) = g {
        ident.gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let group = root::read(root, "/etc/group")?.unwrap_or_default();
                let gid = entries(&group)
                    .find(|f| f.len() >= 3 && f[0] == g)
                    .and_then(|f| f[2].parse().ok());
                gid.ok_or_else(|| format!("no group {g} in /etc/group"))?
            }
        };
    }
    Ok(ident)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_ids_and_groups() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
        let r = |u| resolve_user(t.path(), u);
        assert_eq!(r("").unwrap().home, "/root");
        assert_eq!((r("app").unwrap().uid, r("app").unwrap().gid), (1000, 1001));
        assert_eq!(r("1000").unwrap().home, "/home/app");
        assert_eq!(r("app:staff").unwrap().gid, 50);
        assert_eq!(r("app:7").unwrap().gid, 7);
        assert_eq!(
            r("4242").unwrap(),
            Ident {
                uid: 4242,
                gid: 0,
                home: "/".into()
            }
        );
        assert!(r("nobody").unwrap_err().contains("no user nobody"));
        assert!(r("app:wheel").unwrap_err().contains("no group wheel"));
    }
}
