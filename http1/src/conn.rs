//! A connection: the socket, a read buffer that requests are parsed from, a
//! write buffer that responses are built in, and the timeouts that keep a slow
//! or silent peer from holding resources.

use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::HttpError;

const READ_BUF: usize = 16 * 1024;
/// Answers to pipelined requests are held back until this much is pending.
const COALESCE_MAX: usize = 64 * 1024;

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Waiting for the first byte of the next request on a kept-alive connection.
    pub idle: Duration,
    /// From the first byte of a request head until the whole head has arrived.
    pub header: Duration,
    /// Between two reads of a body, and for one write to make progress.
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            idle: Duration::from_secs(75),
            header: Duration::from_secs(30),
            io: Duration::from_secs(60),
        }
    }
}

/// How much a peer may send as one request head.
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    /// Request line plus header lines; larger is a 431 (or 414 for the line alone).
    pub max_head_bytes: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 32 * 1024,
        }
    }
}

/// Where the body of the request being answered stands; the request loop
/// reads what a service left unread, so it is never taken for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyState {
    /// Read to its end, or there was none.
    Done,
    /// Not a byte of it read yet.
    Unread,
    /// Partly read.
    Partial,
}

pub struct Conn {
    pub stream: TcpStream,
    pub body: BodyState,
    /// Bytes taken from the peer (request heads and bodies) and sent to it
    /// so far, for request logs.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Where the answer being counted ([`Conn::mark_answer`]) starts in
    /// `wbuf` (0 once part of it was flushed).
    answer_at: usize,
    rbuf: Vec<u8>,
    rpos: usize,
    /// Responses (and client requests) are built here, then sent by [`Conn::flush`].
    pub wbuf: Vec<u8>,
    /// Reused by handlers for per-request work (a decoded path, say).
    pub scratch: Vec<u8>,
    pub timeouts: Timeouts,
    pub limits: HeadLimits,
}

async fn with_timeout<F: std::future::Future>(dur: Duration, f: F) -> Result<F::Output, HttpError> {
    monoio::time::timeout(dur, f)
        .await
        .map_err(|_| HttpError::Timeout)
}

impl Conn {
    pub fn new(stream: TcpStream, timeouts: Timeouts) -> Conn {
        Conn {
            stream,
            body: BodyState::Done,
            bytes_in: 0,
            bytes_out: 0,
            answer_at: 0,
            rbuf: Vec::with_capacity(READ_BUF),
            rpos: 0,
            wbuf: Vec::with_capacity(1024),
            scratch: Vec::new(),
            timeouts,
            limits: HeadLimits::default(),
        }
    }

    /// Marks where the next answer starts in `wbuf` (answers to earlier
    /// pipelined requests may wait before it), for [`Conn::answer_bytes`].
    pub fn mark_answer(&mut self) {
        self.answer_at = self.wbuf.len();
    }

    /// Bytes of the marked answer sent or waiting in `wbuf`, given
    /// `bytes_out` when it was marked.
    pub fn answer_bytes(&self, out_before: u64) -> u64 {
        self.bytes_out - out_before + self.wbuf[self.answer_at.min(self.wbuf.len())..].len() as u64
    }

    /// Bytes read from the socket and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.rbuf[self.rpos..]
    }

    pub fn consume(&mut self, n: usize) {
        self.bytes_in += n as u64;
        self.rpos += n;
        debug_assert!(self.rpos <= self.rbuf.len());
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
    }

    /// Reads more bytes into the read buffer; `Ok(0)` is end of stream.
    /// Output still waiting in the write buffer goes out first: a peer
    /// should never wait for an answer that we hold while we wait for it.
    pub async fn fill(&mut self, timeout: Duration) -> Result<usize, HttpError> {
        self.flush().await?;
        if self.rbuf.len() == self.rbuf.capacity() {
            if self.rpos > 0 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            } else {
                self.rbuf.reserve(self.rbuf.capacity().max(READ_BUF));
            }
        }
        let buf = std::mem::take(&mut self.rbuf);
        let (start, end) = (buf.len(), buf.capacity());
        let (res, slice) =
            with_timeout(timeout, self.stream.read(buf.slice_mut(start..end))).await?;
        self.rbuf = slice.into_inner();
        Ok(res?)
    }

    /// Marks the end of a complete answer. It goes out now, unless the next
    /// request is already buffered (pipelining): then answers accumulate and
    /// leave together, one send for many, when input runs out ([`Conn::fill`]).
    pub async fn end_response(&mut self) -> Result<(), HttpError> {
        if self.buffered().is_empty() || self.wbuf.len() >= COALESCE_MAX {
            self.flush().await?;
        }
        Ok(())
    }

    /// The write buffer, taken to be sent, its bytes counted as sent.
    fn take_output(&mut self) -> Vec<u8> {
        self.bytes_out += self.wbuf[self.answer_at.min(self.wbuf.len())..].len() as u64;
        self.answer_at = 0;
        std::mem::take(&mut self.wbuf)
    }

    /// Sends the write buffer and clears it.
    pub async fn flush(&mut self) -> Result<(), HttpError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let buf = self.take_output();
        let (res, mut buf) = with_timeout(self.timeouts.io, self.stream.write_all(buf)).await?;
        buf.clear();
        self.wbuf = buf;
        res.map(|_| ()).map_err(HttpError::Io)
    }

    /// Sends what the write buffer holds, then `data`, then `tail`, in one
    /// vectored write: a chunk's size line, the chunk and its CRLF go out as
    /// one system call and one push, not three.
    pub async fn send_between(
        &mut self,
        data: bytes::Bytes,
        tail: &'static [u8],
    ) -> Result<(), HttpError> {
        let head = self.take_output();
        self.bytes_out += (data.len() + tail.len()) as u64;
        let mut frame = Frame::new(head, data, tail);
        // Not monoio's `write_vectored_all`: after a partial write it
        // resends the start of the iovec it stopped in.
        let mut res = Ok(());
        while frame.left() > 0 {
            let (wrote, back) = with_timeout(self.timeouts.io, self.stream.writev(frame)).await?;
            frame = back;
            match wrote {
                Ok(0) => res = Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => frame.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => res = Err(e),
            }
            if res.is_err() {
                break;
            }
        }
        self.wbuf = frame.head;
        self.wbuf.clear();
        res.map_err(HttpError::Io)
    }

    /// Sends an owned buffer (a shared chunk of a value, say) and gives it back.
    pub async fn send<T: monoio::buf::IoBuf>(&mut self, buf: T) -> Result<T, HttpError> {
        self.bytes_out += buf.bytes_init() as u64;
        let (res, buf) = with_timeout(self.timeouts.io, self.stream.write_all(buf)).await?;
        res?;
        Ok(buf)
    }

    /// Reads from the socket straight into the spare capacity of `out`, at most
    /// `max` bytes, bypassing the read buffer (which must be empty). Large
    /// bodies take this path so that their bytes are copied once. As with
    /// [`Conn::fill`], output waiting in the write buffer (a `100 Continue`)
    /// goes out first.
    pub async fn read_direct(
        &mut self,
        out: Vec<u8>,
        max: usize,
    ) -> (Result<usize, HttpError>, Vec<u8>) {
        debug_assert!(self.buffered().is_empty());
        if let Err(e) = self.flush().await {
            return (Err(e), out);
        }
        let start = out.len();
        let end = out.capacity().min(start + max);
        match with_timeout(
            self.timeouts.io,
            self.stream.read(out.slice_mut(start..end)),
        )
        .await
        {
            Ok((res, slice)) => {
                if let Ok(n) = res {
                    self.bytes_in += n as u64;
                }
                (res.map_err(HttpError::Io), slice.into_inner())
            }
            Err(e) => (Err(e), Vec::new()),
        }
    }

    /// For a pooled idle connection: whether the peer closed it (or sent
    /// something unasked), so that it must not be reused.
    pub fn peer_closed(&self) -> bool {
        !self.buffered().is_empty() || !matches!(self.peek(), Err(rustix::io::Errno::AGAIN))
    }

    /// Whether the peer has closed its side (or reset the connection)
    /// without anything more to read: nobody will read our answer. Bytes
    /// waiting (a pipelined request) mean it is still there.
    pub fn peer_hung_up(&self) -> bool {
        use rustix::io::Errno;
        self.buffered().is_empty()
            && match self.peek() {
                Ok(n) => n == 0,
                Err(e) => e != Errno::AGAIN && e != Errno::INTR,
            }
    }

    /// Bytes waiting on the socket, looked at without waiting or taking
    /// them: `Ok(0)` is the peer's end of stream.
    fn peek(&self) -> Result<usize, rustix::io::Errno> {
        use std::os::fd::{AsRawFd, BorrowedFd};
        // SAFETY: the descriptor is owned by `self.stream`, alive for this call.
        let fd = unsafe { BorrowedFd::borrow_raw(self.stream.as_raw_fd()) };
        let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
        rustix::net::recv(fd, &mut [0u8; 1], flags).map(|(n, _)| n)
    }

    /// Half-closes our side after the last response, so the peer sees a clean end.
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Closes after an answer given while the peer may still be sending
    /// (an early refusal of a body, say): our side is half-closed, then what
    /// arrives is read and dropped until the peer closes too, it pauses for
    /// `gap`, or `total` has passed. Closing at once would make the kernel
    /// answer the unread bytes with a reset, which can destroy the answer
    /// before the peer reads it.
    pub async fn linger(mut self, total: Duration, gap: Duration) {
        if self.flush().await.is_err() {
            return;
        }
        let _ = self.stream.shutdown().await;
        let deadline = std::time::Instant::now() + total;
        let mut buf = std::mem::take(&mut self.rbuf);
        buf.clear();
        buf.reserve(64 * 1024);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match with_timeout(gap.min(left), self.stream.read(buf)).await {
                Ok((Ok(n), b)) if n > 0 => {
                    buf = b;
                    buf.clear();
                }
                _ => return,
            }
        }
    }
}

/// Three buffers for one vectored write, and how far it got; the iovecs
/// point into heap memory that does not move while the runtime holds the
/// frame.
struct Frame {
    head: Vec<u8>,
    _data: bytes::Bytes,
    iov: Box<[libc::iovec; 3]>,
    /// The first iovec not yet written whole.
    at: usize,
}

impl Frame {
    fn new(head: Vec<u8>, data: bytes::Bytes, tail: &'static [u8]) -> Frame {
        let iov = |p: *const u8, len: usize| libc::iovec {
            iov_base: p as *mut libc::c_void,
            iov_len: len,
        };
        let iov = Box::new([
            iov(head.as_ptr(), head.len()),
            iov(data.as_ptr(), data.len()),
            iov(tail.as_ptr(), tail.len()),
        ]);
        Frame {
            head,
            _data: data,
            iov,
            at: 0,
        }
    }

    fn left(&self) -> usize {
        self.iov[self.at..].iter().map(|v| v.iov_len).sum()
    }

    /// Skips the `n` bytes just written.
    fn advance(&mut self, mut n: usize) {
        while n > 0 && self.at < self.iov.len() {
            let v = &mut self.iov[self.at];
            let step = n.min(v.iov_len);
            // SAFETY: `step` is within the iovec's buffer.
            v.iov_base = unsafe { v.iov_base.cast::<u8>().add(step).cast() };
            v.iov_len -= step;
            n -= step;
            if v.iov_len == 0 {
                self.at += 1;
            }
        }
        while self.at < self.iov.len() && self.iov[self.at].iov_len == 0 {
            self.at += 1;
        }
    }
}

// SAFETY: the iovecs point into `head`'s heap buffer, `data`'s shared
// buffer and a static slice; none moves or is freed while the frame lives,
// and the iovec array itself is boxed. Only the iovecs from `at` on, all
// with bytes left, are offered.
unsafe impl monoio::buf::IoVecBuf for Frame {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov[self.at.min(2)..].as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        self.iov.len() - self.at
    }
}

#[cfg(test)]
mod frame_tests {
    use super::Frame;

    /// Partial writes that stop inside each buffer and on their edges.
    #[test]
    fn advancing_skips_what_was_written() {
        let data = bytes::Bytes::from(vec![7u8; 10]);
        let mut f = Frame::new(b"abc".to_vec(), data, b"\r\n");
        assert_eq!(f.left(), 15);
        f.advance(2);
        assert_eq!((f.at, f.left(), f.iov[0].iov_len), (0, 13, 1));
        f.advance(1);
        assert_eq!((f.at, f.left()), (1, 12));
        f.advance(11);
        assert_eq!((f.at, f.left()), (2, 1));
        // SAFETY: the iovec points at the tail's last byte.
        assert_eq!(unsafe { *f.iov[2].iov_base.cast::<u8>() }, b'\n');
        f.advance(1);
        assert_eq!((f.at, f.left()), (3, 0));
        let mut empty_head = Frame::new(Vec::new(), bytes::Bytes::from_static(b"xy"), b"");
        empty_head.advance(0);
        assert_eq!((empty_head.at, empty_head.left()), (1, 2));
    }
}
