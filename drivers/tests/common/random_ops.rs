//! The random operations the property tests share (`model_proptest`: drivers against the
//! model; `kernel_differential`: the overlay2 model against the kernel): the `Op` set over a
//! small name space, path selectors resolved against the current view, and their
//! strategies.

use layerlab_core::{
    ops, DirEntry, FileKind, LayerDriver, LayerId, LayerPath, Metadata, Node, Result,
};
use proptest::prelude::*;
use std::fmt;

/// The deepest stack a sequence builds.
pub const MAX_STACK: usize = 16;

/// One operation. Generated with `Sel` paths, applied with the `LayerPath`s they resolve to.
#[derive(Clone)]
pub enum Op<P = LayerPath> {
    /// Commit the top layer and create a child of it.
    NewLayer,
    Write(P, u64, Vec<u8>),
    Append(P, Vec<u8>),
    Truncate(P, u64),
    /// `ops::write_file`: create or replace the whole content.
    WriteFile(P, Vec<u8>),
    Create(P, u32),
    Mkdir(P, u32),
    Unlink(P),
    Rmdir(P),
    /// `ops::remove_all` (rm -r).
    RemoveAll(P),
    Rename(P, P),
    Chmod(P, u32),
    Chown(P, u32, u32),
    Symlink(String, P),
    Hardlink(P, P),
    Read(P, u64, u64),
    Stat(P),
    Readdir(P),
    /// `set_mtime` to a marker time.
    SetMtime(P, i64, u32),
    SetXattr(P, &'static str, Vec<u8>),
    RemoveXattr(P, &'static str),
    GetXattr(P, &'static str),
    ListXattrs(P),
    /// `mknod` of a fifo, or (as root) of a character or block device.
    Mknod(P, FileKind, u32, u64),
}

/// How a generated operation picks a path: a fixed path, the k-th entry of the top
/// layer's view at that moment (mod the number of entries, root first), or a name in that
/// entry. Resolved against the model's view, so that many operations meet existing entries.
#[derive(Clone)]
pub enum Sel {
    Path(LayerPath),
    Existing(usize),
    Under(usize, &'static str),
}

impl fmt::Debug for Sel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Sel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sel::Path(p) => write!(f, "{p}"),
            Sel::Existing(k) => write!(f, "<entry #{k}>"),
            Sel::Under(k, n) => write!(f, "<entry #{k}>/{n}"),
        }
    }
}

impl Sel {
    pub fn resolve(&self, entries: &[LayerPath]) -> LayerPath {
        let pick = |k: usize| entries.get(k % entries.len().max(1)).cloned();
        match self {
            Sel::Path(p) => p.clone(),
            Sel::Existing(k) => pick(*k).unwrap_or_else(LayerPath::root),
            Sel::Under(k, n) => {
                let dir = pick(*k).unwrap_or_else(LayerPath::root);
                dir.join(n).unwrap_or_else(|e| panic!("join {n}: {e}"))
            }
        }
    }
}

impl<P: Clone> Op<P> {
    /// The same operation with every path mapped by `f`.
    pub fn map<Q>(&self, f: impl Fn(&P) -> Q) -> Op<Q> {
        match self {
            Op::NewLayer => Op::NewLayer,
            Op::Write(p, o, d) => Op::Write(f(p), *o, d.clone()),
            Op::Append(p, d) => Op::Append(f(p), d.clone()),
            Op::Truncate(p, n) => Op::Truncate(f(p), *n),
            Op::WriteFile(p, d) => Op::WriteFile(f(p), d.clone()),
            Op::Create(p, m) => Op::Create(f(p), *m),
            Op::Mkdir(p, m) => Op::Mkdir(f(p), *m),
            Op::Unlink(p) => Op::Unlink(f(p)),
            Op::Rmdir(p) => Op::Rmdir(f(p)),
            Op::RemoveAll(p) => Op::RemoveAll(f(p)),
            Op::Rename(a, b) => Op::Rename(f(a), f(b)),
            Op::Chmod(p, m) => Op::Chmod(f(p), *m),
            Op::Chown(p, u, g) => Op::Chown(f(p), *u, *g),
            Op::Symlink(t, p) => Op::Symlink(t.clone(), f(p)),
            Op::Hardlink(a, b) => Op::Hardlink(f(a), f(b)),
            Op::Read(p, o, n) => Op::Read(f(p), *o, *n),
            Op::Stat(p) => Op::Stat(f(p)),
            Op::Readdir(p) => Op::Readdir(f(p)),
            Op::SetMtime(p, s, n) => Op::SetMtime(f(p), *s, *n),
            Op::SetXattr(p, n, v) => Op::SetXattr(f(p), n, v.clone()),
            Op::RemoveXattr(p, n) => Op::RemoveXattr(f(p), n),
            Op::GetXattr(p, n) => Op::GetXattr(f(p), n),
            Op::ListXattrs(p) => Op::ListXattrs(f(p)),
            Op::Mknod(p, k, m, r) => Op::Mknod(f(p), *k, *m, *r),
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Op::Read(..) | Op::Stat(_) | Op::Readdir(_) | Op::GetXattr(..) | Op::ListXattrs(_)
        )
    }
}

pub struct Bytes<'a>(pub &'a [u8]);

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl<P: fmt::Display> fmt::Debug for Op<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::NewLayer => write!(f, "new-layer"),
            Op::Write(p, o, d) => write!(f, "write {p} @{o} {:?}", Bytes(d)),
            Op::Append(p, d) => write!(f, "append {p} {:?}", Bytes(d)),
            Op::Truncate(p, s) => write!(f, "truncate {p} {s}"),
            Op::WriteFile(p, d) => write!(f, "write-file {p} {:?}", Bytes(d)),
            Op::Create(p, m) => write!(f, "create {p} {m:o}"),
            Op::Mkdir(p, m) => write!(f, "mkdir {p} {m:o}"),
            Op::Unlink(p) => write!(f, "unlink {p}"),
            Op::Rmdir(p) => write!(f, "rmdir {p}"),
            Op::RemoveAll(p) => write!(f, "rm-r {p}"),
            Op::Rename(a, b) => write!(f, "rename {a} {b}"),
            Op::Chmod(p, m) => write!(f, "chmod {p} {m:o}"),
            Op::Chown(p, u, g) => write!(f, "chown {p} {u}:{g}"),
            Op::Symlink(t, p) => write!(f, "symlink {t:?} {p}"),
            Op::Hardlink(a, b) => write!(f, "hardlink {a} {b}"),
            Op::Read(p, o, l) => write!(f, "read {p} @{o} len {l}"),
            Op::Stat(p) => write!(f, "stat {p}"),
            Op::Readdir(p) => write!(f, "readdir {p}"),
            Op::SetMtime(p, s, n) => write!(f, "set-mtime {p} {s}.{n:09}"),
            Op::SetXattr(p, n, v) => write!(f, "setxattr {p} {n} {:?}", Bytes(v)),
            Op::RemoveXattr(p, n) => write!(f, "removexattr {p} {n}"),
            Op::GetXattr(p, n) => write!(f, "getxattr {p} {n}"),
            Op::ListXattrs(p) => write!(f, "listxattr {p}"),
            Op::Mknod(p, k, m, r) => write!(f, "mknod {p} {} {m:o} {r}", k.as_str()),
        }
    }
}

// ----- generators -----------------------------------------------------------------------

pub fn path_of(names: &[&str]) -> LayerPath {
    let mut p = LayerPath::root();
    for n in names {
        p = p.join(n).unwrap_or_else(|e| panic!("join {n}: {e}"));
    }
    p
}

pub fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "c", "d"])
}

/// Names below the top level: fewer, so that nested paths meet existing directories.
pub fn inner() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "c"])
}

/// A path of depth 1 to 3 (names a..d at the top, a..c below), shallow paths more likely.
pub fn path() -> impl Strategy<Value = LayerPath> {
    prop_oneof![
        5 => name().prop_map(|a| path_of(&[a])),
        4 => (name(), inner()).prop_map(|(a, b)| path_of(&[a, b])),
        1 => (name(), inner(), inner()).prop_map(|(a, b, c)| path_of(&[a, b, c])),
    ]
}

/// A path for an operation on an entry: most often one that exists.
pub fn sel() -> impl Strategy<Value = Sel> {
    prop_oneof![
        2 => path().prop_map(Sel::Path),
        3 => (0usize..64).prop_map(Sel::Existing),
        1 => (0usize..64, inner()).prop_map(|(k, n)| Sel::Under(k, n)),
    ]
}

/// A path for an operation that makes an entry: most often a new name in an existing one.
pub fn new_sel() -> impl Strategy<Value = Sel> {
    prop_oneof![
        3 => path().prop_map(Sel::Path),
        1 => (0usize..64).prop_map(Sel::Existing),
        3 => (0usize..64, inner()).prop_map(|(k, n)| Sel::Under(k, n)),
    ]
}

pub fn mode() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => prop::sample::select(vec![
            0o644, 0o755, 0o600, 0o700, 0o4755, 0o2755, 0o1777, 0o6711, 0o3770, 0, 0o7777,
        ]),
        1 => 0u32..0o10000,
        // bits beyond 0o7777 are ignored
        1 => Just(0o100644u32),
    ]
}

pub fn owner() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![0u32, 1, 1000, 65534])
}

pub fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        6 => prop::collection::vec(prop::sample::select(b"xyz0\n".to_vec()), 1..8),
        2 => prop::collection::vec(any::<u8>(), 0..=64),
    ]
}

pub fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["a", "../b", "/a/b/c", "c/d", "."]).prop_map(String::from),
        1 => Just(String::new()),
    ]
}

pub fn marker_time() -> impl Strategy<Value = (i64, u32)> {
    (
        MARKER_TIMES,
        prop::sample::select(vec![0u32, 1, 123_456_789, 999_999_999]),
    )
}

/// Extended attribute names: user ones everywhere, a trusted one as root (the host keeps
/// it for a process without root under its own name), an invalid and a reserved one.
pub fn xattr_name() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => prop::sample::select(vec!["user.a", "user.b", "trusted.t"]),
        1 => prop::sample::select(vec!["bogus", "user.overlay.opaque"]),
    ]
}

/// What `mknod` makes: fifos, and device nodes where this process may make them.
pub fn node() -> impl Strategy<Value = (FileKind, u64)> {
    let root = rustix::process::geteuid().is_root();
    let mut kinds = vec![(FileKind::Fifo, 0u64)];
    if root {
        kinds.push((FileKind::CharDevice, layerlab_core::makedev(1, 3)));
        kinds.push((FileKind::BlockDevice, layerlab_core::makedev(7, 1)));
        kinds.push((FileKind::CharDevice, 0));
    }
    prop::sample::select(kinds)
}

/// The operations within one layer.
pub fn layer_op() -> impl Strategy<Value = Op<Sel>> {
    prop_oneof![
        2 => (sel(), marker_time()).prop_map(|(p, (s, n))| Op::SetMtime(p, s, n)),
        2 => (sel(), xattr_name(), data()).prop_map(|(p, n, v)| Op::SetXattr(p, n, v)),
        1 => (sel(), xattr_name()).prop_map(|(p, n)| Op::RemoveXattr(p, n)),
        1 => (sel(), xattr_name()).prop_map(|(p, n)| Op::GetXattr(p, n)),
        1 => sel().prop_map(Op::ListXattrs),
        1 => (new_sel(), node(), mode()).prop_map(|(p, (k, r), m)| Op::Mknod(p, k, m, r)),
        4 => (sel(), 0u64..=100, data()).prop_map(|(p, o, d)| Op::Write(p, o, d)),
        2 => (sel(), data()).prop_map(|(p, d)| Op::Append(p, d)),
        2 => (sel(), 0u64..=100).prop_map(|(p, s)| Op::Truncate(p, s)),
        3 => (new_sel(), data()).prop_map(|(p, d)| Op::WriteFile(p, d)),
        4 => (new_sel(), mode()).prop_map(|(p, m)| Op::Create(p, m)),
        5 => (new_sel(), mode()).prop_map(|(p, m)| Op::Mkdir(p, m)),
        3 => sel().prop_map(Op::Unlink),
        2 => sel().prop_map(Op::Rmdir),
        2 => sel().prop_map(Op::RemoveAll),
        4 => (sel(), new_sel()).prop_map(|(a, b)| Op::Rename(a, b)),
        3 => (sel(), mode()).prop_map(|(p, m)| Op::Chmod(p, m)),
        2 => (sel(), owner(), owner()).prop_map(|(p, u, g)| Op::Chown(p, u, g)),
        2 => (target(), new_sel()).prop_map(|(t, p)| Op::Symlink(t, p)),
        1 => (sel(), 0u64..=100, 0u64..=80).prop_map(|(p, o, l)| Op::Read(p, o, l)),
        1 => sel().prop_map(Op::Stat),
        1 => sel().prop_map(Op::Readdir),
    ]
}

// ----- applying an operation to a driver or the model ----------------------------------------

/// What a successful operation returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Bytes(Vec<u8>),
    Meta(Metadata),
    List(Vec<DirEntry>),
    Names(Vec<String>),
}

pub fn apply<D: LayerDriver>(d: &mut D, l: &LayerId, op: &Op) -> Result<Outcome> {
    use Outcome::Done;
    match op {
        Op::NewLayer => Ok(Done),
        Op::Write(p, o, data) => d.write(l, p, *o, data).map(|()| Done),
        Op::Append(p, data) => d.append(l, p, data).map(|()| Done),
        Op::Truncate(p, s) => d.truncate(l, p, *s).map(|()| Done),
        Op::WriteFile(p, data) => ops::write_file(d, l, p, data, 0o640).map(|()| Done),
        Op::Create(p, m) => d.create(l, p, *m).map(|()| Done),
        Op::Mkdir(p, m) => d.mkdir(l, p, *m).map(|()| Done),
        Op::Unlink(p) => d.unlink(l, p).map(|()| Done),
        Op::Rmdir(p) => d.rmdir(l, p).map(|()| Done),
        Op::RemoveAll(p) => ops::remove_all(d, l, p).map(|()| Done),
        Op::Rename(a, b) => d.rename(l, a, b).map(|()| Done),
        Op::Chmod(p, m) => d.chmod(l, p, *m).map(|()| Done),
        Op::Chown(p, u, g) => d.chown(l, p, *u, *g).map(|()| Done),
        Op::Symlink(t, p) => d.symlink(l, t, p).map(|()| Done),
        Op::Hardlink(a, b) => d.hardlink(l, a, b).map(|()| Done),
        Op::Read(p, o, n) => d.read(l, p, *o, *n).map(Outcome::Bytes),
        Op::Stat(p) => d.stat(l, p).map(|mut md| {
            // an mtime is compared only where it was set (a marker time): every other one
            // is whatever the clock said
            if !is_marker_time(md.mtime) {
                md.mtime = 0;
                md.mtime_nsec = 0;
            }
            Outcome::Meta(md)
        }),
        Op::Readdir(p) => d.readdir(l, p).map(Outcome::List),
        Op::SetMtime(p, s, n) => d.set_mtime(l, p, *s, *n).map(|()| Done),
        Op::SetXattr(p, n, v) => d.set_xattr(l, p, n, v).map(|()| Done),
        Op::RemoveXattr(p, n) => d.remove_xattr(l, p, n).map(|()| Done),
        Op::GetXattr(p, n) => d.get_xattr(l, p, n).map(Outcome::Bytes),
        Op::ListXattrs(p) => d.list_xattrs(l, p).map(Outcome::Names),
        Op::Mknod(p, k, m, r) => d.mknod(l, p, Node::new(*k, *m, *r)).map(|()| Done),
    }
}

/// The seconds of the mtimes the sequences set: far from any clock time of a test run.
pub const MARKER_TIMES: std::ops::Range<i64> = 1_000_000_000..1_000_000_100;

/// True for an mtime a sequence set (see [`MARKER_TIMES`]).
pub fn is_marker_time(secs: i64) -> bool {
    MARKER_TIMES.contains(&secs)
}

/// Whether two results of one operation agree: both succeeded with outcomes `same` calls
/// equal, or both failed with the same error kind.
pub fn agree<T, U>(a: &Result<T>, b: &Result<U>, same: impl Fn(&T, &U) -> bool) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => same(x, y),
        (Err(x), Err(y)) => x.kind() == y.kind(),
        _ => false,
    }
}

pub fn show(r: &Result<Outcome>) -> String {
    match r {
        Ok(o) => format!("Ok({o:?})"),
        Err(e) => format!("Err({:?}: {e})", e.kind()),
    }
}

/// The number of cases a property runs: `PROPTEST_CASES`, or 256.
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}
