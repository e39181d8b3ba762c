//! `kernel-btrfs`: the reference for the btrfs model. A real btrfs filesystem, made with
//! `mkfs.btrfs` in a sparse file of the store and loop-mounted (`mount -o loop`); a
//! subvolume per base layer, a snapshot per child, each made with the kernel's own ioctl
//! (`BTRFS_IOC_SUBVOL_CREATE_V2`, `BTRFS_IOC_SNAP_CREATE_V2`, through the `btrfs-uapi`
//! crate, as Docker's btrfs driver makes them: no process is started, so a layer's
//! creation times the kernel's work alone); a layer's view is its subvolume, and every file operation goes through it with `std::fs` (an
//! `lstat` per component, `O_NOFOLLOW`). `usage` is btrfs's own accounting: `btrfs
//! filesystem du -s --raw` (exclusive bytes, after a `btrfs filesystem sync`).
//!
//! ```text
//! <root>/kernel-btrfs/pool.img              the filesystem (sparse; option kbtrfs.size)
//! <root>/kernel-btrfs/mnt/                  where it is mounted while the driver is open
//! <root>/kernel-btrfs/mnt/layers/<dir>      a layer's subvolume (or snapshot)
//! ```
//!
//! The filesystem is unmounted when the driver is dropped (the loop device goes with it)
//! and mounted again by `open`. The Meter counts bytes read and written only.

use super::mount::{self, Mount};
use super::ops::HostTree;
use super::tree;
use crate::backend::{Cx, Lifecycle};
use crate::hostfs;
use crate::options::OptionSpec;
use crate::store::{Options, Store};
use layerlab_core::{Error, LayerId, LayerInfo, PageCache, Result, Semantics, Usage};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kernel btrfs backend.
#[derive(Debug)]
pub struct KernelBtrfs {
    root: PathBuf,
    mount: Option<Mount>,
}

fn base(root: &Path) -> PathBuf {
    root.join("kernel-btrfs")
}

fn image(root: &Path) -> PathBuf {
    base(root).join("pool.img")
}

fn mnt(root: &Path) -> PathBuf {
    base(root).join("mnt")
}

fn subvol(root: &Path, id: &LayerId) -> PathBuf {
    mnt(root).join("layers").join(id.dir_name())
}

/// Commits the mounted filesystem's pending changes (`btrfs filesystem sync`), so that its
/// accounting is current; returns the mount point.
fn fs_sync(root: &Path) -> Result<PathBuf> {
    let m = mnt(root);
    run(
        Command::new("btrfs").args(["filesystem", "sync"]).arg(&m),
        &m,
    )?;
    Ok(m)
}

/// Bytes of data the filesystem of the store at `root` has allocated (`btrfs filesystem
/// df -b`, "Data, ... used=", after a `btrfs filesystem sync`): the real pool's use, bookend
/// extents included, to hold against the model's pool file.
pub fn data_used(root: &Path) -> Result<u64> {
    let m = fs_sync(root)?;
    let text = run(
        Command::new("btrfs")
            .args(["filesystem", "df", "-b"])
            .arg(&m),
        &m,
    )?;
    text.lines()
        .filter(|l| l.starts_with("Data,"))
        .find_map(|l| l.split("used=").nth(1)?.trim().parse().ok())
        .ok_or_else(|| Error::Corrupt {
            path: m.clone(),
            detail: format!("unexpected `btrfs filesystem df` output: {text:?}"),
        })
}

/// Runs a tool; its stderr becomes the error.
fn run(cmd: &mut Command, at: &Path) -> Result<String> {
    let out = cmd.output().map_err(|e| Error::io(at, e))?;
    if !out.status.success() {
        return Err(Error::io(
            at,
            std::io::Error::other(format!(
                "{:?} failed: {}",
                cmd,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `mkfs.btrfs` on the image. Before it writes, mkfs.btrfs checks that no loop device uses
/// the image by reading every loop device's backing file, and fails ("cannot check mount
/// status") when another process detaches a loop device at that moment, as parallel tests
/// do: that failure, and only that one, is retried a few times.
fn make_filesystem(img: &Path) -> Result<()> {
    const TRIES: u32 = 5;
    let mut tried = 1;
    loop {
        match run(Command::new("mkfs.btrfs").arg("-q").arg("-f").arg(img), img) {
            Err(e) if tried < TRIES && e.to_string().contains("cannot check mount status") => {
                tried += 1;
                std::thread::sleep(std::time::Duration::from_millis(50 * u64::from(tried)));
            }
            done => return done.map(drop),
        }
    }
}

/// The size of the filesystem file, from the `kbtrfs.size` option (128 MiB or more).
fn pool_size(options: &Options) -> Result<u64> {
    let size = crate::options::size(KernelBtrfs::NAME, options, "kbtrfs.size")?;
    if size < 128 << 20 {
        return Err(Error::InvalidOption {
            driver: KernelBtrfs::NAME.into(),
            key: "kbtrfs.size".into(),
            reason: "must be 128MiB or more (mkfs.btrfs needs it)".into(),
        });
    }
    Ok(size)
}

/// The directory `dst` is made in, opened, and `dst`'s last component as the kernel takes a
/// subvolume's name.
fn parent_and_name(dst: &Path) -> Result<(File, CString)> {
    let bad = || Error::io(dst, std::io::Error::from(std::io::ErrorKind::InvalidInput));
    let (Some(parent), Some(name)) = (dst.parent(), dst.file_name()) else {
        return Err(bad());
    };
    let name = CString::new(name.as_bytes()).map_err(|_| bad())?;
    let dir = File::open(parent).map_err(|e| Error::io(parent, e))?;
    Ok((dir, name))
}

/// Makes an empty subvolume at `dst` (`BTRFS_IOC_SUBVOL_CREATE_V2` on its parent
/// directory): what `btrfs subvolume create` asks of the kernel, without the process.
pub fn create_subvolume(dst: &Path) -> Result<()> {
    let (dir, name) = parent_and_name(dst)?;
    btrfs_uapi::subvolume::subvolume_create(dir.as_fd(), &name, &[])
        .map_err(|e| Error::io(dst, std::io::Error::from(e)))
}

/// Snapshots the subvolume `src` as `dst` (`BTRFS_IOC_SNAP_CREATE_V2`, writable): what
/// `btrfs subvolume snapshot` asks of the kernel, without the process. The kernel makes the
/// snapshot in a transaction commit and returns when it is on disk.
pub fn snapshot(src: &Path, dst: &Path) -> Result<()> {
    let (dir, name) = parent_and_name(dst)?;
    let source = File::open(src).map_err(|e| Error::io(src, e))?;
    btrfs_uapi::subvolume::snapshot_create(dir.as_fd(), source.as_fd(), &name, false, &[])
        .map_err(|e| Error::io(dst, std::io::Error::from(e)))
}

/// `btrfs subvolume delete --commit-after DIR`.
fn delete_subvolume(dst: &Path) -> Result<String> {
    run(
        Command::new("btrfs")
            .args(["subvolume", "delete", "--commit-after"])
            .arg(dst),
        dst,
    )
}

impl KernelBtrfs {
    /// Mounts the filesystem (stale mounts of a crashed process are detached first).
    fn mount_pool(root: &Path) -> Result<Mount> {
        let target = mnt(root);
        mount::sweep_mounts(&base(root))?;
        let img = image(root);
        run(
            Command::new("mount")
                .arg("-t")
                .arg("btrfs")
                .arg("-o")
                .arg("loop")
                .arg(&img)
                .arg(&target),
            &target,
        )?;
        Ok(Mount::adopt(target))
    }
}

impl Lifecycle for KernelBtrfs {
    const NAME: &'static str = "kernel-btrfs";
    const DESCRIPTION: &'static str =
        "the kernel's btrfs, loop-mounted from a file of the store: a subvolume per base \
         layer, a snapshot per child (reference for the btrfs model; needs root, btrfs-progs)";
    const OPTIONS: &'static [OptionSpec] = &[OptionSpec {
        key: "kbtrfs.size",
        default: "1GiB",
        help: "size of the (sparse) file holding the btrfs filesystem (at least 128MiB)",
    }];

    fn availability() -> std::result::Result<(), String> {
        mount::common_availability("btrfs")?;
        for tool in ["mkfs.btrfs", "btrfs", "mount", "losetup"] {
            if !mount::have_program(tool) {
                return Err(format!(
                    "{tool} is not installed (apt-get install btrfs-progs)"
                ));
            }
        }
        Ok(())
    }

    fn settle_options(options: Options) -> Result<Options> {
        pool_size(&options)?;
        Ok(options)
    }

    fn init(cx: &mut Cx<'_>) -> Result<Self> {
        let root = cx.store.root();
        let size = pool_size(cx.store.options())?;
        let b = base(root);
        std::fs::create_dir_all(mnt(root)).map_err(|e| Error::io(&b, e))?;
        let img = image(root);
        let f = std::fs::File::create(&img).map_err(|e| Error::io(&img, e))?;
        f.set_len(size).map_err(|e| Error::io(&img, e))?;
        drop(f);
        make_filesystem(&img)?;
        let m = Self::mount_pool(root)?;
        let layers = mnt(root).join("layers");
        std::fs::create_dir(&layers).map_err(|e| Error::io(&layers, e))?;
        Ok(KernelBtrfs {
            root: root.to_path_buf(),
            mount: Some(m),
        })
    }

    fn open(cx: &mut Cx<'_>) -> Result<Self> {
        let root = cx.store.root();
        let m = Self::mount_pool(root)?;
        Ok(KernelBtrfs {
            root: root.to_path_buf(),
            mount: Some(m),
        })
    }

    fn semantics(&self) -> Semantics {
        crate::cow::semantics(PageCache::PerLayer)
    }

    fn make_layer(&mut self, cx: &mut Cx<'_>, new: &LayerInfo) -> Result<()> {
        let (id, parent) = (&new.id, new.parent.as_ref());
        let dst = subvol(&self.root, id);
        if dst.exists() {
            // left by a crash before the table named it
            delete_subvolume(&dst)?;
        }
        match parent {
            None => {
                create_subvolume(&dst)?;
                hostfs::set_new_owner(&dst)?;
                hostfs::set_mode(&dst, 0o755)?;
            }
            Some(p) => snapshot(&subvol(&self.root, p), &dst)?,
        }
        cx.meter.step(|| match parent {
            Some(p) => format!("kernel-btrfs: snapshot of {p} as {id}"),
            None => format!("kernel-btrfs: subvolume {id}"),
        });
        Ok(())
    }

    fn drop_layer(&mut self, _cx: &mut Cx<'_>, id: &LayerId) -> Result<()> {
        let dst = subvol(&self.root, id);
        if !dst.exists() {
            return Ok(());
        }
        delete_subvolume(&dst)?;
        // btrfs frees a deleted subvolume's extents in the background; wait for it, so
        // that usage afterwards is what the model (which frees at once) reports
        let m = mnt(&self.root);
        run(
            Command::new("btrfs").args(["subvolume", "sync"]).arg(&m),
            &m,
        )
        .map(drop)
    }

    fn usage(&mut self, cx: &mut Cx<'_>, layer: &LayerId) -> Result<Usage> {
        let dir = self.view_root(cx, layer)?;
        fs_sync(&self.root)?;
        let text = run(
            Command::new("btrfs")
                .args(["filesystem", "du", "-s", "--raw"])
                .arg(&dir),
            &dir,
        )?;
        // "Total Exclusive Set-shared Filename"
        let nums: Vec<u64> = text
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .filter_map(|w| w.parse().ok())
            .collect();
        let [total, exclusive, shared] = nums[..] else {
            return Err(Error::Corrupt {
                path: dir,
                detail: format!("unexpected `btrfs filesystem du` output: {text:?}"),
            });
        };
        let (_, inodes, _) = hostfs::tree_usage(&dir)?;
        let details = BTreeMap::from([
            ("referenced".to_string(), total),
            ("exclusive".to_string(), exclusive),
            ("shared".to_string(), shared),
        ]);
        Ok(Usage {
            bytes: exclusive,
            inodes,
            details,
        })
    }

    fn facts(&self, store: &Store) -> Result<(PathBuf, Vec<(String, String)>)> {
        let layers = store.table().infos();
        let b = base(&self.root);
        let size = std::fs::metadata(image(&self.root))
            .map(|m| m.len())
            .unwrap_or(0);
        let facts = vec![
            ("layers".into(), layers.len().to_string()),
            ("filesystem file".into(), format!("{size} bytes (sparse)")),
            (
                "mounted".into(),
                if self.mount.is_some() { "yes" } else { "no" }.into(),
            ),
            (
                "data used".into(),
                match data_used(&self.root) {
                    Ok(n) => format!("{n} bytes (btrfs filesystem df)"),
                    Err(e) => format!("unknown: {e}"),
                },
            ),
        ];
        Ok((b, facts))
    }
}

impl HostTree for KernelBtrfs {
    /// Every data change is synced (`fdatasync`): its extents are then those of one write
    /// each, as the btrfs model's are.
    const SYNC: tree::DataSync = tree::DataSync::Data;
    /// The layer's subvolume.
    fn view_root(&mut self, _cx: &mut Cx<'_>, layer: &LayerId) -> Result<PathBuf> {
        Ok(subvol(&self.root, layer))
    }
}
