//! PUT: the body streams into a temporary file in the target folder, with its
//! CRC32 computed on the way; the file is then renamed over the target, so a
//! reader sees the old file, the new file, or nothing — never a partial one.
//!
//! Crash ordering with fsync on (the default), before the 201/204:
//! 1. the bytes and the checksum xattr are written to `.mkv-tmp-…`, and synced;
//! 2. the temporary file is renamed over the target;
//! 3. a second sync makes the rename, and any folders made for it, durable.
//!
//! A crash before 3 leaves the old file (or none) and perhaps a hidden
//! temporary file, never a visible partial one. A PUT whose client hung up
//! before step 2 (a master that gave up on a volume that stopped answering)
//! stores nothing: its client was told it failed. The syncs are group commits
//! (`group_sync`): the uploads in flight share them, and the runtime thread
//! never blocks on one.

use std::os::fd::{AsFd, OwnedFd};

use http1::{Answer, BodyKind, Conn};

use crate::error::VolumeError;
use crate::front::request::Request;
use crate::store::checksum;
use crate::store::fspath::split_parent;
use crate::store::place::{ensure_space, place, At};
use crate::store::upload::{self, TempFile};

pub async fn serve(conn: &mut Conn, req: &Request<'_>) -> Result<Answer, VolumeError> {
    let ctx = req.ctx;
    if req.dir_wanted || req.rel.is_empty() {
        return Err(VolumeError::Conflict("cannot PUT a folder"));
    }
    let (_, name) = split_parent(req.rel);
    if name.len() > 255 {
        return Err(VolumeError::NameTooLong);
    }
    match req.head.body {
        BodyKind::Empty => return Err(VolumeError::LengthRequired),
        BodyKind::Length(n) => ensure_space(ctx, n)?,
        _ => {}
    }
    let (dir, new_folders) = ctx.root.open_parent(req.rel, true)?;
    let temp = TempFile::create(ctx, &dir, req.rel)?;
    req.continue_if_expected(conn).await?;
    let got = upload::receive(conn, req.head.body, &temp.sink()).await?;
    let md5 = checked_md5(&got)?;
    if !checksum::write(temp.fd.as_fd(), got.crc, md5)? {
        warn_no_xattr();
    }
    if let Some(sync) = &ctx.sync {
        sync.sync(&[&temp.fd]).await?;
    }
    if conn.peer_hung_up() {
        // The temporary file goes with `temp`.
        return Err(http1::HttpError::Closed.into());
    }
    let from = At {
        dir: &dir,
        name: &temp.name,
    };
    let replaced = place(&from, &At { dir: &dir, name }, None)?;
    temp.disarm();
    if let Some(sync) = &ctx.sync {
        // The rename, and any folders made for it.
        let folders: Vec<&OwnedFd> = new_folders.iter().chain([&dir]).collect();
        sync.sync(&folders).await?;
    }
    let code = if replaced { 204 } else { 201 };
    Ok(req.empty(&mut conn.wbuf, code, Some(got.crc)))
}

/// Checks the trailers of a PUT: a CRC trailer must match the bytes
/// stored, and an md5 trailer must be an md5. The md5 is kept only when a
/// CRC trailer of the same PUT matched: the sender computed both from the
/// same bytes, so the md5 describes them without the volume hashing them
/// again. An md5 sent without a CRC is not kept.
fn checked_md5(got: &upload::Received) -> Result<Option<&str>, VolumeError> {
    let crc_ok = match &got.sent_crc {
        Some(sent) if checksum::parse_hex(sent.as_bytes()) != Some(got.crc) => {
            return Err(VolumeError::BadBody(
                "the body does not match its X-Mkv-Crc32 trailer",
            ))
        }
        Some(_) => true,
        None => false,
    };
    match got.md5.as_deref() {
        Some(m) if !checksum::is_md5_hex(m) => Err(VolumeError::BadBody(
            "the X-Mkv-Md5 trailer is not an md5 (32 hex digits)",
        )),
        Some(m) if crc_ok => Ok(Some(m)),
        _ => Ok(None),
    }
}

pub(crate) fn warn_no_xattr() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| tracing::warn!("this filesystem has no user xattrs: CRCs are not kept"));
}
