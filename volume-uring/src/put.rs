//! PUT: the body streams into a temporary file in the target folder, with its
//! CRC32 computed on the way; the file is then renamed over the target, so a
//! reader sees the old file, the new file, or nothing — never a partial one.
//!
//! Crash ordering with fsync on (the default), before the 201/204:
//! 1. the bytes and the CRC xattr are written to `.mkv-tmp-…`, and synced;
//! 2. the temporary file is renamed over the target;
//! 3. a second sync makes the rename, and any folders made for it, durable.
//!
//! A crash before 3 leaves the old file (or none) and perhaps a hidden
//! temporary file, never a visible partial one. The syncs are group commits
//! (`group_sync`): the uploads in flight share them, and the runtime thread
//! never blocks on one.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::aligned::{self, AlignedBuf};
use crate::checksum;
use crate::conn::{self, Request, TEMP_PREFIX};
use crate::error::VolumeError;
use crate::fspath::split_parent;
use crate::http::{response, BodyKind, BodyReader, Conn};
use crate::server::Ctx;

/// Bytes gathered from the socket before each write to the file.
const WRITE_CHUNK: usize = 512 * 1024;
/// Writes up to this size are plain `pwrite`s; larger ones io_uring writes.
const DIRECT_WRITE_MAX: usize = 64 * 1024;
/// A body's bytes past this offset bypass the page cache (`O_DIRECT`).
const DIRECT_IO_FROM: u64 = 8 << 20;

pub async fn serve(conn: &mut Conn, req: &Request<'_>, ctx: &Ctx) -> Result<bool, VolumeError> {
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
    if req.head.expect_continue {
        conn.wbuf.extend_from_slice(response::CONTINUE);
        conn.flush().await?;
    }
    let got = receive(conn, req, &temp).await?;
    if got
        .sent_crc
        .is_some_and(|sent| checksum::parse_hex(sent.as_bytes()) != Some(got.crc))
    {
        return Err(VolumeError::BadBody(
            "the body does not match its X-Mkv-Crc32 trailer",
        ));
    }
    let crc = got.crc;
    if !checksum::write(temp.fd.as_fd(), crc, got.md5.as_deref())? {
        warn_no_xattr();
    }
    if let Some(sync) = &ctx.sync {
        sync.sync(&[&temp.fd]).await?;
    }
    let replaced = rename_into_place(&dir, &temp.name, name)?;
    temp.disarm();
    if let Some(sync) = &ctx.sync {
        // The rename, and any folders made for it.
        let folders: Vec<&OwnedFd> = new_folders.iter().chain([&dir]).collect();
        sync.sync(&folders).await?;
    }
    conn::empty_response(conn, req, if replaced { 204 } else { 201 }, Some(crc));
    conn.end_response().await?;
    Ok(req.keep_alive())
}

/// What a PUT's body brought: its CRC32, and the trailers the master adds.
struct Received {
    crc: u32,
    sent_crc: Option<String>,
    md5: Option<String>,
}

/// Streams the request body into the temporary file.
async fn receive(
    conn: &mut Conn,
    req: &Request<'_>,
    temp: &TempFile<'_>,
) -> Result<Received, VolumeError> {
    let mut big_writes = None;
    let result = write_body(conn, req, temp, &mut big_writes).await;
    // Closed before answering: on io_uring a dropped file closes later, and a
    // failed upload's space must be free by the time the client hears of it.
    if let Some(writes) = big_writes {
        writes.close().await;
    }
    result
}

/// Pieces up to `DIRECT_WRITE_MAX` go in with a plain `pwrite` (a copy into
/// the page cache, cheaper than an io_uring write the kernel would hand to a
/// worker thread); larger ones as io_uring writes through `big_writes`
/// (opened on first need), so the thread never waits on a throttled disk.
/// While a piece is written, the next one is received.
async fn write_body(
    conn: &mut Conn,
    req: &Request<'_>,
    temp: &TempFile<'_>,
    big_writes: &mut Option<BigWrites>,
) -> Result<Received, VolumeError> {
    let capacity = match req.head.body {
        BodyKind::Length(n) => (n as usize).clamp(1, WRITE_CHUNK),
        _ => WRITE_CHUNK,
    };
    let mut body = BodyReader::new(req.head.body);
    let mut hasher = crc32fast::Hasher::new();
    let mut pos = 0u64;
    let mut buf = fill(conn, &mut body, Vec::with_capacity(capacity)).await?;
    let mut spare = Vec::new();
    while !buf.is_empty() {
        hasher.update(&buf);
        let len = buf.len() as u64;
        if buf.len() <= DIRECT_WRITE_MAX {
            pwrite_all(&temp.fd, &buf, pos)?;
            buf.clear();
            if !body.is_done() {
                buf = fill(conn, &mut body, buf).await?;
            }
        } else {
            let writes = match big_writes {
                Some(w) => w,
                None => big_writes.insert(BigWrites::open(temp)?),
            };
            spare.reserve(capacity);
            let next = async {
                if body.is_done() {
                    Ok(spare)
                } else {
                    fill(conn, &mut body, spare).await
                }
            };
            // Each branch gives back the buffer the next piece can go into.
            let whole_blocks = pos % aligned::ALIGN as u64 == 0;
            let (freed, next) = if pos >= DIRECT_IO_FROM && whole_blocks && writes.direct(temp) {
                // The piece is copied out, so its buffer is free at once.
                let aligned = buf.len() / aligned::ALIGN * aligned::ALIGN;
                let mut copy = writes.aligned.take().expect("the aligned buffer is back");
                copy.set(&buf[..aligned]);
                // Only the body's last piece has a tail that is not a whole block.
                pwrite_all(&temp.fd, &buf[aligned..], pos + aligned as u64)?;
                let freed = std::mem::take(&mut buf);
                let (written, next) = monoio::join!(writes.write_direct(copy, pos), next);
                (written.map(|()| freed), next)
            } else {
                monoio::join!(writes.write(std::mem::take(&mut buf), pos), next)
            };
            spare = freed?;
            spare.clear();
            buf = next?;
        }
        pos += len;
    }
    Ok(Received {
        crc: hasher.finalize(),
        sent_crc: body.trailer(checksum::CRC_TRAILER).map(str::to_string),
        md5: body.trailer(checksum::MD5_TRAILER).map(str::to_string),
    })
}

/// The io_uring files large pieces are written through: the temporary file
/// through the page cache, and past `DIRECT_IO_FROM` the same file opened
/// with `O_DIRECT`: a copy into the page cache costs more CPU here than
/// receiving the bytes, and a value of gigabytes would push everything
/// else out of the cache. Where `O_DIRECT` is refused, the page cache it is.
struct BigWrites {
    buffered: monoio::fs::File,
    direct: Direct,
    aligned: Option<AlignedBuf>,
}

enum Direct {
    NotTried,
    On(monoio::fs::File),
    Unavailable,
}

impl BigWrites {
    fn open(temp: &TempFile<'_>) -> Result<BigWrites, VolumeError> {
        let buffered = std::fs::File::from(temp.fd.try_clone()?);
        Ok(BigWrites {
            buffered: monoio::fs::File::from_std(buffered)?,
            direct: Direct::NotTried,
            aligned: None,
        })
    }

    /// Whether pieces go in with `O_DIRECT`, opening the file so on first need.
    fn direct(&mut self, temp: &TempFile<'_>) -> bool {
        if let Direct::NotTried = self.direct {
            let flags = OFlags::WRONLY | OFlags::DIRECT | OFlags::CLOEXEC;
            let opened = rustix::fs::openat(temp.dir, temp.name.as_slice(), flags, Mode::empty())
                .map_err(std::io::Error::from)
                .and_then(|fd| monoio::fs::File::from_std(std::fs::File::from(fd)));
            self.direct = match opened {
                Ok(file) => {
                    self.aligned = Some(AlignedBuf::new(WRITE_CHUNK));
                    Direct::On(file)
                }
                Err(_) => Direct::Unavailable,
            };
        }
        matches!(self.direct, Direct::On(_))
    }

    async fn write(&self, buf: Vec<u8>, pos: u64) -> Result<Vec<u8>, VolumeError> {
        let (res, buf) = self.buffered.write_all_at(buf, pos).await;
        res?;
        Ok(buf)
    }

    /// Writes `buf` (whole blocks) with `O_DIRECT`; where the filesystem
    /// refuses it after all (EINVAL: an alignment it needs larger than
    /// ours), through the page cache from then on.
    async fn write_direct(&mut self, buf: AlignedBuf, pos: u64) -> Result<(), VolumeError> {
        let Direct::On(file) = &self.direct else {
            unreachable!("write_direct without an O_DIRECT file")
        };
        let (mut res, buf) = file.write_all_at(buf, pos).await;
        let buf = match res {
            Err(ref e) if e.raw_os_error() == Some(Errno::INVAL.raw_os_error()) => {
                self.direct = Direct::Unavailable;
                let (retry, buf) = self.buffered.write_all_at(buf, pos).await;
                res = retry;
                buf
            }
            _ => buf,
        };
        self.aligned = Some(buf);
        Ok(res?)
    }

    async fn close(self) {
        let _ = self.buffered.close().await;
        if let Direct::On(file) = self.direct {
            let _ = file.close().await;
        }
    }
}

/// Reads body bytes into `buf` until it is full or the body ends.
async fn fill(
    conn: &mut Conn,
    body: &mut BodyReader,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, VolumeError> {
    while buf.len() < buf.capacity() {
        let (res, b) = body.read(conn, buf).await;
        buf = b;
        if res? == 0 {
            break;
        }
    }
    Ok(buf)
}

fn pwrite_all(fd: &OwnedFd, mut data: &[u8], mut pos: u64) -> Result<(), VolumeError> {
    while !data.is_empty() {
        let n = rustix::io::pwrite(fd, data, pos)?;
        data = &data[n..];
        pos += n as u64;
    }
    Ok(())
}

/// Refuses up front a body that cannot fit (507), rather than after
/// receiving most of it.
fn ensure_space(ctx: &Ctx, len: u64) -> Result<(), VolumeError> {
    let stat = rustix::fs::fstatvfs(ctx.root.fd())?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if len > free {
        return Err(VolumeError::NoSpace);
    }
    Ok(())
}

/// Moves the temporary file over the target; returns whether one was replaced.
fn rename_into_place(dir: &OwnedFd, temp: &[u8], name: &[u8]) -> Result<bool, VolumeError> {
    match rustix::fs::renameat_with(dir, temp, dir, name, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(false),
        Err(Errno::EXIST) => {}
        // Filesystems without RENAME_NOREPLACE: look first.
        Err(Errno::INVAL) | Err(Errno::NOSYS) => {}
        Err(e) => return Err(e.into()),
    }
    let existed = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok();
    rustix::fs::renameat(dir, temp, dir, name)?;
    Ok(existed)
}

fn warn_no_xattr() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| tracing::warn!("this filesystem has no user xattrs: CRCs are not kept"));
}

/// A temporary file that removes itself unless it was renamed into place.
struct TempFile<'a> {
    ctx: &'a Ctx,
    dir: &'a OwnedFd,
    fd: OwnedFd,
    name: Vec<u8>,
    full_path: PathBuf,
    armed: bool,
}

impl<'a> TempFile<'a> {
    fn create(ctx: &'a Ctx, dir: &'a OwnedFd, rel: &[u8]) -> Result<TempFile<'a>, VolumeError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = TEMP_PREFIX.to_vec();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        name.extend_from_slice(format!("{}-{nanos}-{n}", std::process::id()).as_bytes());
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, name.as_slice(), flags, Mode::from_raw_mode(0o644))?;
        let (parent, _) = split_parent(rel);
        let mut full_path = ctx.root.path().join(OsStr::from_bytes(parent));
        full_path.push(OsStr::from_bytes(&name));
        ctx.temp_files.add(full_path.clone());
        Ok(TempFile {
            ctx,
            dir,
            fd,
            name,
            full_path,
            armed: true,
        })
    }

    fn disarm(mut self) {
        self.armed = false;
        self.ctx.temp_files.remove(&self.full_path);
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ =
                rustix::fs::unlinkat(self.dir, self.name.as_slice(), rustix::fs::AtFlags::empty());
            self.ctx.temp_files.remove(&self.full_path);
        }
    }
}
