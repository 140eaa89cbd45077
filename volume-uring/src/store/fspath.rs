//! The one place a URL becomes a path under the volume's root.
//!
//! A URL path is percent-decoded exactly once, split on `/`, and refused if any
//! segment is `..` or any byte is NUL. Files are then opened relative to a
//! directory descriptor of the root with `openat2(RESOLVE_BENEATH)`, so that
//! neither `..` nor a symlink can reach outside it, whatever races with the
//! lookup. Kernels without `openat2` (before 5.6) get a checked fallback.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::VolumeError;

/// Decodes `raw` (the URL path, starting with `/`) into `out` as a relative
/// path: segments joined by `/`, no leading slash, empty for the root.
/// Returns whether the URL ended with `/` (a directory was asked for).
pub fn decode(raw: &[u8], out: &mut Vec<u8>) -> Result<bool, VolumeError> {
    if raw.first() != Some(&b'/') {
        return Err(VolumeError::BadPath("path must start with /"));
    }
    percent_decode(raw, out)?;
    let trailing_slash = out.last() == Some(&b'/');
    // Normalise in place: segments only ever move towards the front.
    let (mut read, mut write) = (0, 0);
    while read < out.len() {
        let end = out[read..]
            .iter()
            .position(|&c| c == b'/')
            .map_or(out.len(), |i| read + i);
        match &out[read..end] {
            b"" | b"." => {}
            b".." => return Err(VolumeError::BadPath("path leaves the volume")),
            _ => {
                if write > 0 {
                    out[write] = b'/';
                    write += 1;
                }
                out.copy_within(read..end, write);
                write += end - read;
            }
        }
        read = end + 1;
    }
    out.truncate(write);
    Ok(trailing_slash)
}

/// Percent-decodes `raw` into `out`; a NUL byte cannot be in a file name.
fn percent_decode(raw: &[u8], out: &mut Vec<u8>) -> Result<(), VolumeError> {
    http1::percent::decode(raw, out).map_err(|_| VolumeError::BadPath("bad percent-encoding"))?;
    if out.contains(&0) {
        return Err(VolumeError::BadPath("NUL in path"));
    }
    Ok(())
}

/// Splits `a/b/c` into (`a/b`, `c`).
pub fn split_parent(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&c| c == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

/// The volume's root directory, held open for the life of the server.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    has_openat2: AtomicBool,
}

impl Root {
    pub fn open(path: &Path) -> std::io::Result<Root> {
        let path = path.canonicalize()?;
        let fd = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            path,
            has_openat2: AtomicBool::new(true),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `rel` (relative to `dir`, which is the root or a folder under it)
    /// without leaving `dir`.
    pub fn open_beneath(
        &self,
        dir: BorrowedFd<'_>,
        rel: &[u8],
        flags: OFlags,
    ) -> Result<OwnedFd, Errno> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        let flags = flags | OFlags::CLOEXEC | OFlags::NOCTTY;
        if self.has_openat2.load(Ordering::Relaxed) {
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(dir, rel, flags, Mode::empty(), resolve) {
                Err(Errno::NOSYS) => self.has_openat2.store(false, Ordering::Relaxed),
                other => return other,
            }
        }
        self.open_checked(dir, rel, flags)
    }

    /// Fallback for kernels without openat2: open, then check where the
    /// descriptor really points.
    fn open_checked(
        &self,
        dir: BorrowedFd<'_>,
        rel: &[u8],
        flags: OFlags,
    ) -> Result<OwnedFd, Errno> {
        let fd = rustix::fs::openat(dir, rel, flags, Mode::empty())?;
        let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        let real = std::fs::read_link(link).map_err(|_| Errno::XDEV)?;
        if real.starts_with(&self.path) {
            Ok(fd)
        } else {
            Err(Errno::XDEV)
        }
    }

    /// Opens the folder that holds `rel`, creating missing folders when
    /// `create` is set. Also returns the folders that gained an entry (the
    /// parents of new folders): they must be synced for the new folders to
    /// survive a power loss.
    pub fn open_parent(
        &self,
        rel: &[u8],
        create: bool,
    ) -> Result<(OwnedFd, Vec<OwnedFd>), VolumeError> {
        let (parent, _) = split_parent(rel);
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY;
        match self.open_beneath(self.fd(), parent, dir_flags) {
            Ok(fd) => return Ok((fd, Vec::new())),
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(e.into()),
        }
        // Usually only the last folder is new (a fresh `/xx/yy/`): start
        // from its parent when that exists, else from the root.
        let (grandparent, last) = split_parent(parent);
        let (mut cur, todo) = match self.open_beneath(self.fd(), grandparent, dir_flags) {
            Ok(fd) if !last.is_empty() => (fd, last),
            _ => (self.open_beneath(self.fd(), b"", dir_flags)?, parent),
        };
        let mut changed = Vec::new();
        for segment in todo.split(|&c| c == b'/') {
            let created = match rustix::fs::mkdirat(&cur, segment, Mode::from_raw_mode(0o755)) {
                Ok(()) => true,
                Err(Errno::EXIST) => false,
                Err(e) => return Err(e.into()),
            };
            let next = self.open_beneath(cur.as_fd(), segment, dir_flags)?;
            if created {
                changed.push(cur);
            }
            cur = next;
        }
        Ok((cur, changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(raw: &str) -> Result<(String, bool), VolumeError> {
        let mut out = Vec::new();
        let slash = decode(raw.as_bytes(), &mut out)?;
        Ok((String::from_utf8(out).unwrap(), slash))
    }

    #[test]
    fn decodes_once_and_confines() {
        assert_eq!(
            dec("/5d/41/aGVsbG8=").unwrap(),
            ("5d/41/aGVsbG8=".into(), false)
        );
        assert_eq!(
            dec("/27/6f/Lz8/Pw==").unwrap(),
            ("27/6f/Lz8/Pw==".into(), false)
        );
        assert_eq!(dec("/").unwrap(), ("".into(), true));
        assert_eq!(dec("/sv00/").unwrap(), ("sv00".into(), true));
        assert_eq!(dec("//a/./b%20c").unwrap(), ("a/b c".into(), false));
        assert_eq!(dec("/a%252e%252e").unwrap(), ("a%2e%2e".into(), false));
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/%2e%2e/x",
            "/a/..",
            "/a%00b",
            "/a%2",
            "/a%zz",
            "x",
        ] {
            assert!(dec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn split_parent_works() {
        assert_eq!(split_parent(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_parent(b"c"), (&b""[..], &b"c"[..]));
    }
}
