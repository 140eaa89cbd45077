//! How an upload reaches the disk: a hidden temporary file in the target
//! folder ([`TempFile`], removed unless renamed into place), and the body
//! written into it as it arrives ([`receive`]), its CRC32 computed on the way.
//!
//! Small pieces go in with a plain `pwrite` (a copy into the page cache,
//! cheaper than an io_uring write the kernel would hand to a worker thread);
//! larger ones as io_uring writes, so the thread never waits on a throttled
//! disk, and while a piece is written the next one is received. Bytes past
//! the file offset `DIRECT_IO_FROM` bypass the page cache (`O_DIRECT`): copying
//! into it costs more CPU than receiving the bytes, and a value of gigabytes
//! would push everything else out of the cache. Where `O_DIRECT` is refused,
//! the page cache it is.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use http1::{BodyKind, BodyReader, Conn};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::VolumeError;
use crate::state::Ctx;
use crate::store::aligned::{self, AlignedBuf};
use crate::store::checksum;
use crate::store::fspath::split_parent;

/// Name prefix of the files a PUT writes before renaming them into place.
pub const TEMP_PREFIX: &[u8] = b".mkv-tmp-";

/// Bytes gathered from the socket before each write to the file.
const WRITE_CHUNK: usize = 512 * 1024;
/// Writes up to this size are plain `pwrite`s; larger ones io_uring writes.
const DIRECT_WRITE_MAX: usize = 64 * 1024;
/// Bytes written past this offset of a file bypass the page cache
/// (`O_DIRECT`): the tail of a large value, or a part of a multipart
/// upload staged beyond the file's first slot.
const DIRECT_IO_FROM: u64 = 8 << 20;

/// What a PUT's body brought: its CRC32, and the trailers the master adds.
pub struct Received {
    pub crc: u32,
    pub sent_crc: Option<String>,
    pub md5: Option<String>,
}

/// Where a body is written: an open file (by its folder and name too, to
/// reopen it with `O_DIRECT`), from the offset `start` on.
pub struct Sink<'a> {
    pub dir: &'a OwnedFd,
    pub name: &'a [u8],
    pub fd: &'a OwnedFd,
    pub start: u64,
}

/// Streams the request body into `sink`.
pub async fn receive(
    conn: &mut Conn,
    body: BodyKind,
    sink: &Sink<'_>,
) -> Result<Received, VolumeError> {
    let mut big_writes = None;
    let result = write_body(conn, body, sink, &mut big_writes).await;
    // Closed before answering: on io_uring a dropped file closes later, and a
    // failed upload's space must be free by the time the client hears of it.
    if let Some(writes) = big_writes {
        writes.close().await;
    }
    result
}

/// The body, piece by piece, into `sink`; large pieces through `big_writes`
/// (opened on first need).
async fn write_body(
    conn: &mut Conn,
    kind: BodyKind,
    sink: &Sink<'_>,
    big_writes: &mut Option<BigWrites>,
) -> Result<Received, VolumeError> {
    let capacity = match kind {
        BodyKind::Length(n) => (n as usize).clamp(1, WRITE_CHUNK),
        _ => WRITE_CHUNK,
    };
    let mut body = BodyReader::new(kind);
    let mut hasher = crc32fast::Hasher::new();
    let mut pos = 0u64;
    let mut buf = body.read_full(conn, Vec::with_capacity(capacity)).await?;
    let mut spare = Vec::new();
    while !buf.is_empty() {
        hasher.update(&buf);
        let len = buf.len() as u64;
        if buf.len() <= DIRECT_WRITE_MAX {
            pwrite_all(sink.fd, &buf, sink.start + pos)?;
            buf.clear();
            if !body.is_done() {
                buf = body.read_full(conn, buf).await?;
            }
        } else {
            let writes = match big_writes {
                Some(w) => w,
                None => big_writes.insert(BigWrites::open(sink)?),
            };
            spare.reserve(capacity);
            let next = async {
                if body.is_done() {
                    Ok(spare)
                } else {
                    body.read_full(conn, spare).await.map_err(VolumeError::from)
                }
            };
            let (freed, next) = writes.write_while(sink, buf, pos, next).await?;
            spare = freed;
            spare.clear();
            buf = next;
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
/// with `O_DIRECT`.
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
    fn open(sink: &Sink<'_>) -> Result<BigWrites, VolumeError> {
        let buffered = std::fs::File::from(sink.fd.try_clone()?);
        Ok(BigWrites {
            buffered: monoio::fs::File::from_std(buffered)?,
            direct: Direct::NotTried,
            aligned: None,
        })
    }

    /// Writes `buf`, the body's bytes from `pos`, while `next` (the next
    /// piece) is received; gives back a buffer the piece after can go into,
    /// and the next piece.
    async fn write_while<F>(
        &mut self,
        sink: &Sink<'_>,
        mut buf: Vec<u8>,
        pos: u64,
        next: F,
    ) -> Result<(Vec<u8>, Vec<u8>), VolumeError>
    where
        F: std::future::Future<Output = Result<Vec<u8>, VolumeError>>,
    {
        let at = sink.start + pos;
        let whole_blocks = at.is_multiple_of(aligned::ALIGN as u64);
        if !(at >= DIRECT_IO_FROM && whole_blocks && self.direct(sink)) {
            let (freed, next) = monoio::join!(self.write(buf, at), next);
            return Ok((freed?, next?));
        }
        // The piece is copied out, so its buffer is free at once.
        let aligned = buf.len() / aligned::ALIGN * aligned::ALIGN;
        let mut copy = self.aligned.take().expect("the aligned buffer is back");
        copy.set(&buf[..aligned]);
        // Only the body's last piece has a tail that is not a whole block.
        pwrite_all(sink.fd, &buf[aligned..], at + aligned as u64)?;
        let freed = std::mem::take(&mut buf);
        let (written, next) = monoio::join!(self.write_direct(copy, at), next);
        written?;
        Ok((freed, next?))
    }

    /// Whether pieces go in with `O_DIRECT`, opening the file so on first need.
    fn direct(&mut self, sink: &Sink<'_>) -> bool {
        if let Direct::NotTried = self.direct {
            let flags = OFlags::WRONLY | OFlags::DIRECT | OFlags::CLOEXEC;
            let opened = rustix::fs::openat(sink.dir, sink.name, flags, Mode::empty())
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

fn pwrite_all(fd: &OwnedFd, mut data: &[u8], mut pos: u64) -> Result<(), VolumeError> {
    while !data.is_empty() {
        let n = rustix::io::pwrite(fd, data, pos)?;
        data = &data[n..];
        pos += n as u64;
    }
    Ok(())
}

/// A temporary file that removes itself unless it was renamed into place.
pub struct TempFile<'a> {
    ctx: &'a Ctx,
    dir: &'a OwnedFd,
    pub fd: OwnedFd,
    pub name: Vec<u8>,
    full_path: PathBuf,
    armed: bool,
}

impl<'a> TempFile<'a> {
    /// Creates `.mkv-tmp-<pid>-<nanos>-<n>` in `dir`, the folder of `rel`.
    pub fn create(ctx: &'a Ctx, dir: &'a OwnedFd, rel: &[u8]) -> Result<TempFile<'a>, VolumeError> {
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

    /// Where its body goes.
    pub fn sink(&self) -> Sink<'_> {
        Sink {
            dir: self.dir,
            name: &self.name,
            fd: &self.fd,
            start: 0,
        }
    }

    /// The file was renamed into place: keep it.
    pub fn disarm(mut self) {
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
