//! A file's `user.mkv` read by its name in an open folder, without opening
//! the file: `getxattrat(2)` (Linux 6.13). A recursive listing reads one
//! for every file, and an `open` and a `close` each cost about as much as
//! the read itself. Older kernels (`ENOSYS`), and sandboxes whose seccomp
//! filter refuses the call (`EPERM`), get the file opened, as before: the
//! first such answer switches every later read to that.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags};

use super::checksum::{read_sums, Sums, XATTR_MAX};

/// `getxattrat`'s number where new system calls share one table.
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64"
))]
const SYS_GETXATTRAT: libc::c_long = 464;

/// `struct xattr_args` of the kernel's uapi.
#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// Set once `getxattrat` turned out to be missing or forbidden.
static MISSING: AtomicBool = AtomicBool::new(false);

/// What `getxattrat` made of one file.
#[derive(Debug, PartialEq)]
enum At {
    Read(Sums),
    /// An answer opening the file may improve on (a name it cannot pass,
    /// an error other than "no such attribute").
    Open,
    /// The call is missing (`ENOSYS`) or forbidden (`EPERM`: a seccomp
    /// filter that does not know it; reading a `user.` attribute of a
    /// regular file is never refused otherwise).
    Unsupported,
}

/// The sums of the file `name` in `folder`, symlinks not followed; none
/// when it has no `user.mkv` or cannot be read. The answer is the one
/// opening the file gives: anything `getxattrat` cannot answer for sure
/// goes that way.
pub fn read_sums_at<Fd: AsFd>(folder: Fd, name: &[u8]) -> Sums {
    if !MISSING.load(Ordering::Relaxed) {
        match getxattrat(folder.as_fd(), name) {
            At::Read(sums) => return sums,
            At::Open => {}
            At::Unsupported => MISSING.store(true, Ordering::Relaxed),
        }
    }
    read_sums_opening(folder, name)
}

/// The same, by opening the file (non-blocking: a FIFO must not hang).
pub fn read_sums_opening<Fd: AsFd>(folder: Fd, name: &[u8]) -> Sums {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    rustix::fs::openat(folder, name, flags, Mode::empty())
        .map(read_sums)
        .unwrap_or_default()
}

#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64"
))]
fn getxattrat(folder: std::os::fd::BorrowedFd<'_>, name: &[u8]) -> At {
    // A name from a folder listing: at most 255 bytes, no NUL.
    let mut path = [0u8; 256];
    if name.is_empty() || name.len() >= path.len() || name.contains(&0) {
        return At::Open;
    }
    path[..name.len()].copy_from_slice(name);
    let mut value = [0u8; XATTR_MAX];
    let mut args = XattrArgs {
        value: value.as_mut_ptr() as u64,
        size: XATTR_MAX as u32,
        flags: 0,
    };
    const ATTR: &[u8] = b"user.mkv\0";
    // SAFETY: `path` and `ATTR` are NUL-terminated and outlive the call;
    // `args` points at `value`, which has `args.size` writable bytes, and
    // the kernel writes nothing else.
    let got = unsafe {
        libc::syscall(
            SYS_GETXATTRAT,
            folder.as_raw_fd() as libc::c_long,
            path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW as libc::c_long,
            ATTR.as_ptr(),
            &mut args as *mut XattrArgs,
            std::mem::size_of::<XattrArgs>() as libc::c_long,
        )
    };
    if got >= 0 {
        return At::Read(Sums::parse(&value[..(got as usize).min(XATTR_MAX)]));
    }
    match std::io::Error::last_os_error().raw_os_error() {
        // No such attribute (also what a symlink or a FIFO answers).
        Some(libc::ENODATA) => At::Read(Sums::default()),
        Some(libc::ENOSYS | libc::EPERM) => At::Unsupported,
        _ => At::Open,
    }
}

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64"
)))]
fn getxattrat(_: std::os::fd::BorrowedFd<'_>, _: &[u8]) -> At {
    At::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::checksum;

    fn folder(dir: &std::path::Path) -> std::os::fd::OwnedFd {
        rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn by_name_as_by_opening() {
        let dir = tempfile::tempdir().unwrap();
        let md5 = "5d41402abc4b2a76b9719d911017c592";
        let with_md5 = std::fs::File::create(dir.path().join("a")).unwrap();
        if !checksum::write(&with_md5, 0x3610a686, Some(md5)).unwrap() {
            eprintln!("no user xattrs on this filesystem: nothing to compare");
            return;
        }
        let crc_only = std::fs::File::create(dir.path().join("b")).unwrap();
        checksum::write(&crc_only, 7, None).unwrap();
        std::fs::File::create(dir.path().join("bare")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("link")).unwrap();
        rustix::fs::mknodat(
            folder(dir.path()),
            "fifo",
            rustix::fs::FileType::Fifo,
            Mode::RUSR | Mode::WUSR,
            0,
        )
        .unwrap();
        let fd = folder(dir.path());
        let want = Sums {
            crc: Some(0x3610a686),
            md5: Some(md5.to_string()),
        };
        for (name, expected) in [
            ("a", want),
            (
                "b",
                Sums {
                    crc: Some(7),
                    md5: None,
                },
            ),
            ("bare", Sums::default()),
            ("link", Sums::default()),
            ("fifo", Sums::default()),
            ("missing", Sums::default()),
        ] {
            let name = name.as_bytes();
            assert_eq!(read_sums_opening(&fd, name), expected, "{name:?} opened");
            match getxattrat(fd.as_fd(), name) {
                At::Read(direct) => assert_eq!(direct, expected, "{name:?} by getxattrat"),
                other => eprintln!("{name:?}: getxattrat answered {other:?}"),
            }
            assert_eq!(read_sums_at(&fd, name), expected, "{name:?}");
        }
        assert_eq!(getxattrat(fd.as_fd(), &[b'a', 0]), At::Open);
    }
}
