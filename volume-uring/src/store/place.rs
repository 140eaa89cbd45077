//! How a finished file takes its name: renamed over the target, so readers
//! see the old file or the new one, never a mix; and, when the old one must
//! be kept (an overwrite that may be rolled back), the old one first given
//! the backup name as a second link, so that at every instant, a crash
//! included, the old value is at the target or at the backup name, and the
//! target is never missing.

use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, RenameFlags};
use rustix::io::Errno;

use crate::error::VolumeError;
use crate::state::Ctx;

/// A file by its open folder and its name in it.
pub struct At<'a> {
    pub dir: &'a OwnedFd,
    pub name: &'a [u8],
}

/// Moves `from` to `to`; returns whether a file was replaced. With
/// `backup`, the file replaced is kept there: linked there first, then
/// replaced by the rename. (An exchange of the two names followed by a
/// rename of the old one to the backup name would leave it under the
/// staged file's name after a crash in between, where an undo takes it for
/// the new value.) A backup name already taken is a 409.
pub fn place(from: &At<'_>, to: &At<'_>, backup: Option<&At<'_>>) -> Result<bool, VolumeError> {
    if let Some(backup) = backup {
        match rustix::fs::linkat(to.dir, to.name, backup.dir, backup.name, AtFlags::empty()) {
            // No file to replace, or the old one linked at the backup name.
            Ok(()) | Err(Errno::NOENT) => {}
            Err(Errno::EXIST) => return Err(VolumeError::Conflict("the backup name is taken")),
            // No hard links here: move the old one aside, then the new in
            // (the target is missing for a moment).
            Err(Errno::PERM) | Err(Errno::OPNOTSUPP) | Err(Errno::MLINK) => {
                match rustix::fs::renameat(to.dir, to.name, backup.dir, backup.name) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    rename(from, to)
}

/// Renames `from` over `to`; returns whether one was replaced.
fn rename(from: &At<'_>, to: &At<'_>) -> Result<bool, VolumeError> {
    match rustix::fs::renameat_with(from.dir, from.name, to.dir, to.name, RenameFlags::NOREPLACE) {
        Ok(()) => {
            crate::admin::metrics::METRICS.files.inc();
            return Ok(false);
        }
        Err(Errno::EXIST) => {}
        // Filesystems without RENAME_NOREPLACE: look first.
        Err(Errno::INVAL) | Err(Errno::NOSYS) => {}
        Err(e) => return Err(e.into()),
    }
    let existed = rustix::fs::statat(to.dir, to.name, AtFlags::SYMLINK_NOFOLLOW).is_ok();
    rustix::fs::renameat(from.dir, from.name, to.dir, to.name)?;
    if !existed {
        crate::admin::metrics::METRICS.files.inc();
    }
    Ok(existed)
}

/// Refuses up front a body that cannot fit (507), rather than after
/// receiving most of it.
pub fn ensure_space(ctx: &Ctx, len: u64) -> Result<(), VolumeError> {
    let stat = rustix::fs::fstatvfs(ctx.root.fd())?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if len > free {
        return Err(VolumeError::NoSpace);
    }
    Ok(())
}

/// A filesystem's size and what is free on it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Space {
    pub total: u64,
    /// Free for an unprivileged writer (`f_bavail`).
    pub free: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
}

/// The space of the filesystem `path` is on.
pub fn space(path: &std::path::Path) -> std::io::Result<Space> {
    let s = rustix::fs::statvfs(path)?;
    Ok(Space {
        total: s.f_blocks.saturating_mul(s.f_frsize),
        free: s.f_bavail.saturating_mul(s.f_frsize),
        inodes_total: s.f_files,
        inodes_free: s.f_favail,
    })
}
