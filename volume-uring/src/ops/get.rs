//! GET and HEAD of files (and of folders, which are listed).
//!
//! Small files are read on the runtime thread straight into the response
//! buffer and go out with their head in one send. Larger ones stream in
//! pieces: the next piece is read while the previous one is sent.

use std::os::fd::OwnedFd;

use monoio::buf::IoBufMut;
use rustix::fs::{FileType, OFlags};

use http1::{response, Answer, Conn, HttpError, Method};

use crate::error::VolumeError;
use crate::front::request::Request;
use crate::ops::{listing, verify};
use crate::store::checksum;
use http1::range::{self, Span, Validators};

/// Files up to this size are read into the response buffer.
const INLINE_MAX: u64 = 64 * 1024;
/// Larger files are read and sent in pieces of this size, two at a time.
const STREAM_CHUNK: usize = 256 * 1024;

pub async fn serve(conn: &mut Conn, req: &Request<'_>) -> Result<Answer, VolumeError> {
    let root = &req.ctx.root;
    // NONBLOCK: opening a FIFO must not hang the thread.
    let fd = root.open_beneath(root.fd(), req.rel, OFlags::RDONLY | OFlags::NONBLOCK)?;
    let stat = rustix::fs::fstat(&fd)?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory if req.dir_wanted => {
            return listing::serve(conn, req, fd).await;
        }
        FileType::Directory => return Ok(redirect_to_folder(conn, req)),
        FileType::RegularFile if !req.dir_wanted => {}
        _ => return Err(VolumeError::NotFound),
    }
    let size = stat.st_size as u64;
    let validators = Validators::new(stat.st_mtime, size);
    let head = req.head;
    if validators.not_modified(
        head.header("if-none-match"),
        head.header("if-modified-since"),
    ) {
        let out = &mut conn.wbuf;
        let answer = req.start(out, 304);
        write_validators(out, &validators);
        return Ok(req.finish(answer, out));
    }
    let span = if validators.range_applies(head.header("if-range")) {
        range::resolve(head.header("range"), size)
    } else {
        Span::Full
    };
    let (code, start, len) = match span {
        Span::Full => (200, 0, size),
        Span::Part { start, end } => (206, start, end - start + 1),
        Span::Unsatisfiable => return Ok(not_satisfiable(conn, req, size)),
    };
    let check = match head.header(verify::VERIFY_HEADER) {
        Some(_) if head.method == Method::Head && code == 200 => {
            Some(verify::check(&fd, size).await?)
        }
        _ => None,
    };
    let answer = write_head(
        conn,
        req,
        &fd,
        (code, check),
        &validators,
        (start, len, size),
    );
    if head.method == Method::Head || len == 0 {
        // The head is the whole answer.
    } else if len <= INLINE_MAX {
        read_inline(conn, &fd, start, len)?;
    } else {
        conn.flush().await?;
        stream_file(conn, &fd, start, len).await?;
    }
    Ok(answer)
}

fn write_validators(out: &mut Vec<u8>, v: &Validators) {
    response::header(out, "Last-Modified", v.last_modified());
    response::header(out, "ETag", v.etag());
}

fn write_head(
    conn: &mut Conn,
    req: &Request<'_>,
    fd: &OwnedFd,
    (code, check): (u16, Option<&str>),
    v: &Validators,
    span: (u64, u64, u64),
) -> Answer {
    let (start, len, size) = span;
    let out = &mut conn.wbuf;
    let mut answer = req.start(out, code);
    response::header(out, "Content-Type", b"application/octet-stream");
    answer.content_length(out, len);
    write_validators(out, v);
    if code == 206 {
        out.extend_from_slice(b"Content-Range: bytes ");
        response::push_num(out, start);
        out.push(b'-');
        response::push_num(out, start + len - 1);
        out.push(b'/');
        response::push_num(out, size);
        out.extend_from_slice(b"\r\n");
    } else {
        response::header(out, "Accept-Ranges", b"bytes");
        // The checksum is of the whole file, so it goes with whole answers only.
        if let Some(crc) = checksum::read(fd) {
            response::header(out, checksum::CRC_HEADER, &checksum::to_hex(crc));
        }
        if let Some(check) = check {
            response::header(out, verify::CHECK_HEADER, check.as_bytes());
        }
    }
    req.finish(answer, out)
}

fn not_satisfiable(conn: &mut Conn, req: &Request<'_>, size: u64) -> Answer {
    let out = &mut conn.wbuf;
    let mut answer = req.start(out, 416);
    out.extend_from_slice(b"Content-Range: bytes */");
    response::push_num(out, size);
    out.extend_from_slice(b"\r\n");
    answer.content_length(out, 0);
    req.finish(answer, out)
}

/// `GET /folder` without the slash: nginx answers 301 to `/folder/`.
fn redirect_to_folder(conn: &mut Conn, req: &Request<'_>) -> Answer {
    let out = &mut conn.wbuf;
    let mut answer = req.start(out, 301);
    out.extend_from_slice(b"Location: ");
    out.extend_from_slice(req.head.path());
    out.extend_from_slice(b"/\r\n");
    answer.content_length(out, 0);
    req.finish(answer, out)
}

/// Appends `len` bytes of the file at `start` to the response buffer.
fn read_inline(conn: &mut Conn, fd: &OwnedFd, start: u64, len: u64) -> Result<(), VolumeError> {
    let out = &mut conn.wbuf;
    let end = out.len() + len as usize;
    out.reserve(len as usize);
    let mut offset = start;
    while out.len() < end {
        let want = end - out.len();
        let (filled, _) = rustix::io::pread(fd, &mut out.spare_capacity_mut()[..want], offset)?;
        let got = filled.len();
        if got == 0 {
            return Err(VolumeError::Io(std::io::Error::other(
                "file shrank while being read",
            )));
        }
        // SAFETY: pread initialised the first `got` bytes of the spare capacity.
        unsafe { out.set_len(out.len() + got) };
        offset += got as u64;
    }
    Ok(())
}

/// Streams `len` bytes of the file from `start`: io_uring reads the next
/// piece while the previous one is being sent, so a file that is not in the
/// page cache never blocks the thread (on the epoll driver, reads are plain
/// `pread`s). Measured against non-blocking `sendfile(2)` and splice, this was
/// the fastest on loopback (docs/performance.md).
/// Errors here come after the head went out: the connection can only close.
async fn stream_file(
    conn: &mut Conn,
    fd: &OwnedFd,
    start: u64,
    len: u64,
) -> Result<(), VolumeError> {
    let closed = |e: std::io::Error| VolumeError::Http(HttpError::Io(e));
    let file = monoio::fs::File::from_std(std::fs::File::from(fd.try_clone().map_err(closed)?))
        .map_err(closed)?;
    let end = start + len;
    let read = |buf: Vec<u8>, offset: u64| {
        let want = ((end - offset) as usize).min(STREAM_CHUNK);
        file.read_at(buf.slice_mut(0..want), offset)
    };
    let (res, slice) = read(Vec::with_capacity(STREAM_CHUNK), start).await;
    let mut current = slice.into_inner();
    let mut offset = start + piece_len(res).map_err(closed)?;
    let mut spare = Vec::with_capacity(STREAM_CHUNK);
    while offset < end {
        spare.clear();
        let (sent, (res, slice)) = monoio::join!(conn.send(current), read(spare, offset));
        spare = sent?;
        current = slice.into_inner();
        offset += piece_len(res).map_err(closed)?;
    }
    conn.send(current).await?;
    Ok(())
}

/// A read of 0 bytes before the end means the file shrank under us.
fn piece_len(res: std::io::Result<usize>) -> std::io::Result<u64> {
    match res? {
        0 => Err(std::io::Error::other("file shrank while being sent")),
        n => Ok(n as u64),
    }
}
