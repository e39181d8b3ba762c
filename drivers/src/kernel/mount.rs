//! Mount helpers for the kernel reference drivers: an overlay mount made with `mount(2)`
//! (or, when the options would outgrow a page, with the new mount API and the lower chain
//! looked up through the store's `l/SHORT` links), a guard that unmounts on drop, the
//! availability checks, and the sweep of mounts a crashed process left behind.

use layerlab_core::{Error, IoContext, Result};
use rustix::fs::{Mode, OFlags};
use rustix::mount::{
    fsconfig_create, fsconfig_set_fd, fsconfig_set_string, fsmount, fsopen, move_mount,
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};
use std::path::{Path, PathBuf};

/// The longest option string `mount(2)` takes (one page, its NUL included).
pub const PAGE: usize = 4096;

/// The mount options every overlay mount of the kernel driver gets, as Docker's overlay2
/// (`index=off`), with `redirect_dir` and `metacopy` off so that renaming a lower
/// directory is EXDEV and a chmod copies the whole file, as the overlay2 model does.
pub const OVERLAY_OPTIONS: &[(&str, &str)] = &[
    ("index", "off"),
    ("redirect_dir", "off"),
    ("metacopy", "off"),
];

/// An error of a mount syscall, naming the mount point.
fn mount_err(target: &Path, what: &str, e: rustix::io::Errno) -> Error {
    Error::io(
        target,
        std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("{what}: {}", std::io::Error::from(e)),
        ),
    )
}

/// A mounted filesystem; unmounted when dropped (lazily if it is busy).
#[derive(Debug)]
pub struct Mount {
    target: PathBuf,
    mounted: bool,
}

impl Mount {
    /// Wraps an existing mount at `target`, to be unmounted on drop.
    pub fn adopt(target: PathBuf) -> Mount {
        Mount {
            target,
            mounted: true,
        }
    }

    /// Where it is mounted.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Unmounts now, reporting a failure (drop only tries).
    pub fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        unmount(&self.target)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = unmount(&self.target);
        }
    }
}

/// Unmounts `target`; a busy mount is detached (gone from the namespace at once, freed
/// when its last user closes).
pub fn unmount(target: &Path) -> Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::BUSY) => rustix::mount::unmount(target, UnmountFlags::DETACH)
            .map_err(|e| mount_err(target, "umount (detach)", e)),
        Err(e) => Err(mount_err(target, "umount", e)),
    }
}

/// One overlay mount to make: the lower chain (top first) as paths relative to `base`
/// (`l/SHORT` short links, or `<dir>/diff`), and optionally an upper and work directory.
#[derive(Debug, Clone)]
pub struct OverlaySpec {
    /// The directory the lower paths are relative to (`<root>/overlay2`).
    pub base: PathBuf,
    /// Lower directories, top first: `(short link path, full diff path)`, both relative to
    /// `base`.
    pub lowers: Vec<(String, String)>,
    /// Upper and work directories (relative to `base`); `None` for a read-only mount.
    pub upper: Option<(String, String)>,
}

impl OverlaySpec {
    /// The `mount(2)` option string with absolute paths, as Docker builds it when it fits.
    pub fn absolute_options(&self) -> Option<String> {
        let abs = |rel: &str| -> Option<String> {
            let s = self.base.join(rel).into_os_string().into_string().ok()?;
            // these characters separate or escape overlay options
            (!s.contains([',', ':', '\\', '='])).then_some(s)
        };
        let lowers: Option<Vec<String>> = self.lowers.iter().map(|(_, d)| abs(d)).collect();
        let mut opts = format!("lowerdir={}", lowers?.join(":"));
        if let Some((u, w)) = &self.upper {
            opts.push_str(&format!(",upperdir={},workdir={}", abs(u)?, abs(w)?));
        }
        for (k, v) in OVERLAY_OPTIONS {
            opts.push_str(&format!(",{k}={v}"));
        }
        (opts.len() < PAGE).then_some(opts)
    }

    /// How it will be mounted, for traces.
    pub fn describe(&self) -> String {
        match self.absolute_options() {
            Some(o) => format!("mount(2) -o {o}"),
            None => format!(
                "fsopen(overlay) with {} lowerdir+ looked up through {}/l/ short links \
                 (the options would outgrow a page)",
                self.lowers.len(),
                self.base.display()
            ),
        }
    }

    /// Mounts it at `target`.
    pub fn mount(&self, target: &Path) -> Result<Mount> {
        let ro = self.upper.is_none();
        match self.absolute_options() {
            Some(opts) => {
                let flags = if ro {
                    MountFlags::RDONLY
                } else {
                    MountFlags::empty()
                };
                let data = std::ffi::CString::new(opts.clone()).map_err(|_| {
                    Error::io(
                        target,
                        std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in options"),
                    )
                })?;
                rustix::mount::mount("overlay", target, "overlay", flags, Some(data.as_c_str()))
                    .map_err(|e| mount_err(target, &format!("mount overlay -o {opts}"), e))?;
            }
            None => self.mount_by_links(target, ro)?,
        }
        Ok(Mount::adopt(target.to_path_buf()))
    }

    /// Docker mounts a long chain from `<root>/overlay2` with relative `l/SHORT` lower
    /// paths; a multi-threaded process cannot change its directory safely, so the same
    /// lookups are made relative to a descriptor of `base` and handed to the kernel one by
    /// one (`lowerdir+`), which has no page limit.
    fn mount_by_links(&self, target: &Path, ro: bool) -> Result<()> {
        let base_fd = rustix::fs::open(
            &self.base,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(&self.base, e.into()))?;
        let open_dir = |rel: &str| {
            rustix::fs::openat(
                &base_fd,
                rel,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io(self.base.join(rel), e.into()))
        };
        let ctx = |what: &str| {
            let what = what.to_string();
            move |e| mount_err(target, &what, e)
        };
        let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(ctx("fsopen overlay"))?;
        fsconfig_set_string(&fs, "source", "overlay").map_err(ctx("fsconfig source"))?;
        for (short, _) in &self.lowers {
            let fd = open_dir(short)?;
            fsconfig_set_fd(&fs, "lowerdir+", &fd)
                .map_err(ctx(&format!("fsconfig lowerdir+ {short}")))?;
        }
        if let Some((u, w)) = &self.upper {
            let ufd = open_dir(u)?;
            fsconfig_set_fd(&fs, "upperdir", &ufd).map_err(ctx("fsconfig upperdir"))?;
            let wfd = open_dir(w)?;
            fsconfig_set_fd(&fs, "workdir", &wfd).map_err(ctx("fsconfig workdir"))?;
        }
        for (k, v) in OVERLAY_OPTIONS {
            fsconfig_set_string(&fs, *k, *v).map_err(ctx(&format!("fsconfig {k}={v}")))?;
        }
        fsconfig_create(&fs).map_err(ctx("fsconfig create"))?;
        let attrs = if ro {
            MountAttrFlags::MOUNT_ATTR_RDONLY
        } else {
            MountAttrFlags::empty()
        };
        let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(ctx("fsmount"))?;
        move_mount(
            &mnt,
            "",
            rustix::fs::CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(ctx("move_mount"))
    }
}

/// True when the kernel lists `fs` in `/proc/filesystems`.
pub fn kernel_has(fs: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|s| s.lines().any(|l| l.split_whitespace().last() == Some(fs)))
        .unwrap_or(false)
}

/// The checks every kernel driver shares: root, the filesystem in the kernel, and no
/// `LAYERLAB_NO_KERNEL_DRIVERS` in the environment (which turns them off, e.g. to see the
/// skip path).
pub fn common_availability(fs: &str) -> std::result::Result<(), String> {
    if std::env::var_os("LAYERLAB_NO_KERNEL_DRIVERS").is_some() {
        return Err("LAYERLAB_NO_KERNEL_DRIVERS is set".into());
    }
    if !rustix::process::geteuid().is_root() {
        return Err("needs root (mounts)".into());
    }
    if !kernel_has(fs) {
        return Err(format!(
            "the kernel has no {fs} filesystem (/proc/filesystems)"
        ));
    }
    Ok(())
}

/// True when `prog` is an executable in `PATH` (or the usual sbin directories).
pub fn have_program(prog: &str) -> bool {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.iter().any(|d| d.join(prog).is_file())
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or below `dir` (deepest first), from `/proc/self/mountinfo`.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let info = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(info).at(info)?;
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    Ok(out)
}

/// Detaches every mount at or below `dir` (what a crashed process left behind).
pub fn sweep_mounts(dir: &Path) -> Result<()> {
    let dir = std::fs::canonicalize(dir).at(dir)?;
    for m in mounts_under(&dir)? {
        rustix::mount::unmount(&m, UnmountFlags::DETACH)
            .map_err(|e| mount_err(&m, "umount (stale mount)", e))?;
    }
    Ok(())
}
