//! The staging area (`.mkv-parts/` folders): where the master puts the
//! parts of an S3 multipart upload and new values that must not replace an
//! old one until every replica has them. Two requests of our own, which
//! nginx does not know (it answers 405, and the master does without):
//!
//! - `PUT` with `X-Mkv-Offset: N` into the staging area: the body is written
//!   into the file at offset N, in place (the file is created if missing,
//!   never truncated); the answer's `X-Crc32` is the CRC32 of the body.
//! - `POST /target?mkv-assemble`: the target is made of byte ranges of
//!   staging files, listed in the body one per line as
//!   `PATH OFFSET LENGTH CRC32` (the path percent-encoded, the CRC32 of the
//!   range in 8 hex digits). One range that starts a file is a move: the
//!   file is cut to the range and renamed over the target, no byte copied.
//!   Otherwise the ranges are copied (`copy_file_range`) into a temporary
//!   file, which is renamed over the target. With `X-Mkv-Backup: PATH` (in
//!   the staging area) the file replaced is kept there. The target's CRC32
//!   is combined from the ranges'. Sources that were copied stay.
//!
//! Durability as for a PUT: data synced, then renamed, then the folders
//! synced, before the 201/204.

use std::os::fd::OwnedFd;

use http1::{Answer, BodyKind, BodyReader, Conn};
use rustix::fs::{Mode, OFlags};

use crate::error::VolumeError;
use crate::front::request::Request;
use crate::ops::put::warn_no_xattr;
use crate::state::Ctx;
use crate::store::checksum;
use crate::store::fspath::{self, split_parent};
use crate::store::place::{ensure_space, place, At};
use crate::store::upload::{self, Sink, TempFile};

/// The folder name that marks the staging area.
pub const STAGING: &[u8] = b".mkv-parts";
/// The header of a ranged write, and of a backup.
pub const OFFSET_HEADER: &str = "x-mkv-offset";
pub const BACKUP_HEADER: &str = "x-mkv-backup";
/// The longest list of ranges an assemble takes.
const MAX_LIST: usize = 4 << 20;

/// Whether a decoded path lies in a staging folder.
pub fn in_staging(rel: &[u8]) -> bool {
    rel.split(|&c| c == b'/').any(|s| s == STAGING)
}

/// `PUT` with `X-Mkv-Offset`.
pub async fn ranged_put(
    conn: &mut Conn,
    req: &Request<'_>,
    offset: u64,
) -> Result<Answer, VolumeError> {
    let ctx = req.ctx;
    if req.dir_wanted || !in_staging(req.rel) {
        return Err(VolumeError::Forbidden(
            "ranged writes go only into .mkv-parts/",
        ));
    }
    match req.head.body {
        BodyKind::Empty => return Err(VolumeError::LengthRequired),
        BodyKind::Length(n) => ensure_space(ctx, n)?,
        _ => {}
    }
    let (dir, new_folders) = ctx.root.open_parent(req.rel, true)?;
    let (_, name) = split_parent(req.rel);
    let created = rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_err();
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let fd = rustix::fs::openat(&dir, name, flags, Mode::from_raw_mode(0o644))?;
    req.continue_if_expected(conn).await?;
    let sink = Sink {
        dir: &dir,
        name,
        fd: &fd,
        start: offset,
    };
    let got = upload::receive(conn, req.head.body, &sink).await?;
    if got
        .sent_crc
        .is_some_and(|sent| checksum::parse_hex(sent.as_bytes()) != Some(got.crc))
    {
        return Err(VolumeError::BadBody(
            "the body does not match its X-Mkv-Crc32 trailer",
        ));
    }
    if let Some(sync) = &ctx.sync {
        let synced: Vec<&OwnedFd> = new_folders.iter().chain([&fd, &dir]).collect();
        sync.sync(&synced).await?;
    }
    let code = if created { 201 } else { 204 };
    Ok(req.empty(&mut conn.wbuf, code, Some(got.crc)))
}

/// One range of a staging file.
struct Range {
    rel: Vec<u8>,
    offset: u64,
    len: u64,
    crc: u32,
}

/// `POST /target?mkv-assemble`.
pub async fn assemble(conn: &mut Conn, req: &Request<'_>) -> Result<Answer, VolumeError> {
    let ctx = req.ctx;
    if req.dir_wanted || req.rel.is_empty() {
        return Err(VolumeError::Conflict("cannot assemble a folder"));
    }
    let ranges = read_ranges(conn, req).await?;
    let backup = match req.head.header(BACKUP_HEADER) {
        Some(raw) => Some(staging_path(raw)?),
        None => None,
    };
    let (dir, new_folders) = ctx.root.open_parent(req.rel, true)?;
    let (_, name) = split_parent(req.rel);
    let target = At { dir: &dir, name };
    let crc = combined_crc(&ranges);
    let mut synced_dirs: Vec<OwnedFd> = new_folders;
    let replaced = match ranges.as_slice() {
        [one] if one.offset == 0 => {
            move_range(ctx, one, crc, &target, backup.as_deref(), &mut synced_dirs).await?
        }
        _ => {
            let copy = Copy {
                ranges: &ranges,
                crc,
                rel: req.rel,
            };
            copy_ranges(ctx, &copy, &target, backup.as_deref(), &mut synced_dirs).await?
        }
    };
    if let Some(sync) = &ctx.sync {
        let dirs: Vec<&OwnedFd> = synced_dirs.iter().chain([&dir]).collect();
        sync.sync(&dirs).await?;
    }
    Ok(req.empty(&mut conn.wbuf, if replaced { 204 } else { 201 }, Some(crc)))
}

/// The list of ranges in the body.
async fn read_ranges(conn: &mut Conn, req: &Request<'_>) -> Result<Vec<Range>, VolumeError> {
    let mut body = BodyReader::new(req.head.body);
    let list = body
        .read_full(conn, Vec::with_capacity(64 * 1024.min(MAX_LIST)))
        .await?;
    let mut list = list;
    while !body.is_done() {
        if list.len() >= MAX_LIST {
            return Err(VolumeError::BadBody("the list of ranges is too long"));
        }
        list.reserve(64 * 1024);
        list = body.read_full(conn, list).await?;
    }
    let text =
        std::str::from_utf8(&list).map_err(|_| VolumeError::BadBody("the list is not UTF-8"))?;
    let ranges: Vec<Range> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_range)
        .collect::<Result<_, _>>()?;
    if ranges.is_empty() {
        return Err(VolumeError::BadBody("no ranges to assemble"));
    }
    Ok(ranges)
}

fn parse_range(line: &str) -> Result<Range, VolumeError> {
    let bad = || VolumeError::BadBody("a range is PATH OFFSET LENGTH CRC32");
    let mut parts = line.split_ascii_whitespace();
    let (Some(path), Some(offset), Some(len), Some(crc), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    Ok(Range {
        rel: staging_path(path.as_bytes())?,
        offset: offset.parse().map_err(|_| bad())?,
        len: len.parse().map_err(|_| bad())?,
        crc: checksum::parse_hex(crc.as_bytes()).ok_or_else(bad)?,
    })
}

/// A path in the staging area, decoded.
fn staging_path(raw: &[u8]) -> Result<Vec<u8>, VolumeError> {
    let mut rel = Vec::new();
    let dir = fspath::decode(raw, &mut rel)?;
    if dir || !in_staging(&rel) {
        return Err(VolumeError::Forbidden(
            "sources and backups must be in .mkv-parts/",
        ));
    }
    Ok(rel)
}

/// The CRC32 of the ranges one after another.
fn combined_crc(ranges: &[Range]) -> u32 {
    let mut all = crc32fast::Hasher::new();
    for r in ranges {
        all.combine(&crc32fast::Hasher::new_with_initial_len(r.crc, r.len));
    }
    all.finalize()
}

/// The file of `backup`, if there is one: its folder (in the staging area,
/// made if missing) and name.
fn open_backup(
    ctx: &Ctx,
    backup: Option<&[u8]>,
) -> Result<Option<(OwnedFd, Vec<u8>)>, VolumeError> {
    let Some(rel) = backup else { return Ok(None) };
    let (dir, _) = ctx.root.open_parent(rel, true)?;
    Ok(Some((dir, split_parent(rel).1.to_vec())))
}

/// One range that starts its file: the file is cut to it and moved.
async fn move_range(
    ctx: &Ctx,
    range: &Range,
    crc: u32,
    target: &At<'_>,
    backup: Option<&[u8]>,
    synced_dirs: &mut Vec<OwnedFd>,
) -> Result<bool, VolumeError> {
    let (src_dir, _) = ctx.root.open_parent(&range.rel, false)?;
    let (_, src_name) = split_parent(&range.rel);
    let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&src_dir, src_name, flags, Mode::empty())?;
    let size = rustix::fs::fstat(&fd)?.st_size as u64;
    if size < range.len {
        return Err(VolumeError::Conflict("a source is shorter than its range"));
    }
    if size > range.len {
        rustix::fs::ftruncate(&fd, range.len)?;
    }
    if checksum::read(&fd) != Some(crc) && !checksum::write(&fd, crc, None)? {
        warn_no_xattr();
    }
    if let Some(sync) = &ctx.sync {
        sync.sync(&[&fd]).await?;
    }
    let backup = open_backup(ctx, backup)?;
    let backup_at = backup.as_ref().map(|(dir, name)| At { dir, name });
    let from = At {
        dir: &src_dir,
        name: src_name,
    };
    let replaced = place(&from, target, backup_at.as_ref())?;
    synced_dirs.push(src_dir);
    synced_dirs.extend(backup.map(|(dir, _)| dir));
    Ok(replaced)
}

/// What a copying assemble makes: the ranges, their combined CRC, and the
/// target's path.
struct Copy<'a> {
    ranges: &'a [Range],
    crc: u32,
    rel: &'a [u8],
}

/// Several ranges, or one that does not start its file: copied into a new
/// file, in the kernel, off the runtime thread.
async fn copy_ranges(
    ctx: &Ctx,
    copy: &Copy<'_>,
    target: &At<'_>,
    backup: Option<&[u8]>,
    synced_dirs: &mut Vec<OwnedFd>,
) -> Result<bool, VolumeError> {
    let (ranges, crc) = (copy.ranges, copy.crc);
    let total: u64 = ranges.iter().map(|r| r.len).sum();
    ensure_space(ctx, total)?;
    let mut sources = Vec::with_capacity(ranges.len());
    for r in ranges {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK;
        let fd = ctx.root.open_beneath(ctx.root.fd(), &r.rel, flags)?;
        if (rustix::fs::fstat(&fd)?.st_size as u64) < r.offset + r.len {
            return Err(VolumeError::Conflict("a source is shorter than its range"));
        }
        sources.push((fd, r.offset, r.len));
    }
    let temp = TempFile::create(ctx, target.dir, copy.rel)?;
    let out = temp.fd.try_clone()?;
    monoio::spawn_blocking(move || copy_all(&sources, &out))
        .await
        .map_err(|_| VolumeError::Io(std::io::Error::other("the copy thread failed")))??;
    if !checksum::write(&temp.fd, crc, None)? {
        warn_no_xattr();
    }
    if let Some(sync) = &ctx.sync {
        sync.sync(&[&temp.fd]).await?;
    }
    let backup = open_backup(ctx, backup)?;
    let backup_at = backup.as_ref().map(|(dir, name)| At { dir, name });
    let from = At {
        dir: target.dir,
        name: &temp.name,
    };
    let replaced = place(&from, target, backup_at.as_ref())?;
    temp.disarm();
    synced_dirs.extend(backup.map(|(dir, _)| dir));
    Ok(replaced)
}

/// Copies each (file, offset, length) after the other into `out`.
fn copy_all(sources: &[(OwnedFd, u64, u64)], out: &OwnedFd) -> Result<(), VolumeError> {
    let mut at = 0u64;
    for (fd, offset, len) in sources {
        let (mut from, end) = (*offset, offset + len);
        while from < end {
            let want = (end - from).min(1 << 30) as usize;
            let n = copy_some(fd, from, out, at, want)?;
            if n == 0 {
                return Err(VolumeError::Conflict("a source shrank while it was copied"));
            }
            from += n as u64;
            at += n as u64;
        }
    }
    Ok(())
}

/// Copies up to `want` bytes in the kernel; where the filesystem cannot,
/// through a buffer.
fn copy_some(
    fd: &OwnedFd,
    from: u64,
    out: &OwnedFd,
    at: u64,
    want: usize,
) -> Result<usize, VolumeError> {
    use rustix::io::Errno;
    let (mut src_off, mut dst_off) = (from, at);
    match rustix::fs::copy_file_range(fd, Some(&mut src_off), out, Some(&mut dst_off), want) {
        Ok(n) => Ok(n),
        Err(Errno::XDEV | Errno::NOSYS | Errno::OPNOTSUPP | Errno::INVAL) => {
            let mut buf = vec![0u8; want.min(1 << 20)];
            let n = rustix::io::pread(fd, &mut buf, from)?;
            let mut written = 0;
            while written < n {
                written += rustix::io::pwrite(out, &buf[written..n], at + written as u64)?;
            }
            Ok(n)
        }
        Err(e) => Err(e.into()),
    }
}
