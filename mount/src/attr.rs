//! Driver metadata as the kernel's attributes.

use crate::Errno;
use fuser::{FileAttr, FileType, INodeNo};
use layerlab_core::{dev_parts, makedev, FileKind, Metadata};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The kernel's file type of a driver's kind.
pub fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
        FileKind::Fifo => FileType::NamedPipe,
    }
}

/// The driver's kind for the `S_IFMT` bits of a `mknod` mode; `EOPNOTSUPP` for a socket
/// (the trait has no socket kind), `EINVAL` for anything else.
pub fn kind_of_mode(mode: u32) -> Result<FileKind, Errno> {
    match mode & libc_ifmt::S_IFMT {
        libc_ifmt::S_IFREG | 0 => Ok(FileKind::File),
        libc_ifmt::S_IFIFO => Ok(FileKind::Fifo),
        libc_ifmt::S_IFCHR => Ok(FileKind::CharDevice),
        libc_ifmt::S_IFBLK => Ok(FileKind::BlockDevice),
        libc_ifmt::S_IFSOCK => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}

/// The `S_IFMT` values (Linux).
mod libc_ifmt {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFSOCK: u32 = 0o140000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFBLK: u32 = 0o060000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFIFO: u32 = 0o010000;
}

/// A device number as the FUSE protocol carries it (the kernel's `new_encode_dev`, 32 bits)
/// into `makedev`'s packing, and back.
pub fn rdev_from_fuse(rdev: u32) -> u64 {
    let major = (rdev & 0xfff00) >> 8;
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    makedev(major, minor)
}

/// The inverse of [`rdev_from_fuse`].
pub fn rdev_to_fuse(rdev: u64) -> u32 {
    let (major, minor) = dev_parts(rdev);
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// A time from seconds and nanoseconds since the epoch (negative seconds too).
pub fn system_time(secs: i64, nsec: u32) -> SystemTime {
    let whole = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH + whole + Duration::from_nanos(u64::from(nsec))
    } else {
        UNIX_EPOCH - whole + Duration::from_nanos(u64::from(nsec))
    }
}

/// Seconds and nanoseconds since the epoch of a time.
pub fn epoch_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    }
}

/// The attributes the kernel gets for an entry. `st_blocks` is size-based (the size
/// rounded up to 4 KiB, in 512-byte units): the trait reports no per-file allocation, so a
/// sparse file counts whole and `du` shows apparent sizes rounded to blocks. Access and
/// change times are the modification time (the trait keeps only that one).
pub fn file_attr(ino: u64, m: &Metadata) -> FileAttr {
    let time = system_time(m.mtime, m.mtime_nsec);
    FileAttr {
        ino: INodeNo(ino),
        size: m.size,
        blocks: m.size.div_ceil(4096) * 8,
        atime: time,
        mtime: time,
        ctime: time,
        crtime: time,
        kind: file_type(m.kind),
        perm: (m.mode & 0o7777) as u16,
        nlink: m.nlink,
        uid: m.uid,
        gid: m.gid,
        rdev: rdev_to_fuse(m.rdev),
        blksize: 4096,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_round_trip() {
        for (ma, mi) in [(1, 3), (8, 17), (259, 300_000), (4095, 1)] {
            let packed = makedev(ma, mi);
            assert_eq!(rdev_from_fuse(rdev_to_fuse(packed)), packed, "{ma}:{mi}");
        }
    }

    #[test]
    fn times_round_trip() {
        for (s, n) in [(0, 0), (1_700_000_000, 5), (-1, 999_999_999), (-10, 0)] {
            assert_eq!(epoch_parts(system_time(s, n)), (s, n));
        }
    }
}
