//! Message bodies, streamed: a `Content-Length` body, a chunked body, or (for
//! responses only) a body that runs to the end of the connection.
//!
//! Bytes are appended to a caller's buffer up to its spare capacity, so memory
//! stays bounded whatever the size of the value. When the connection's read
//! buffer is empty and the caller wants a lot, the socket is read straight into
//! the caller's buffer.

use super::chunked::{parse_chunk_size, parse_trailer, split_line};
use super::conn::{BodyState, Conn};
use super::HttpError;

/// Below this, reading through the connection buffer is cheaper than a direct read.
const DIRECT_READ_MIN: usize = 8 * 1024;
/// A chunk-size line (with extensions) or a trailer section larger than this is refused.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No `Content-Length` and no `Transfer-Encoding`: a request without a body.
    Empty,
    Length(u64),
    Chunked,
    /// A response without framing: the body ends when the peer closes.
    UntilClose,
}

impl BodyKind {
    /// Whether body bytes follow the head on the wire.
    pub fn has_bytes(self) -> bool {
        !matches!(self, BodyKind::Empty | BodyKind::Length(0))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Data { remaining: u64, chunked: bool },
    ChunkSize,
    ChunkEnd,
    Trailers { seen: usize },
    UntilClose,
    Done,
}

#[derive(Debug)]
pub struct BodyReader {
    state: State,
    /// Body bytes handed out so far.
    pub received: u64,
    /// Trailer fields of a chunked body (names in lower case), once read.
    trailers: Vec<(String, String)>,
}

impl BodyReader {
    pub fn new(kind: BodyKind) -> BodyReader {
        let state = match kind {
            BodyKind::Empty | BodyKind::Length(0) => State::Done,
            BodyKind::Length(n) => State::Data {
                remaining: n,
                chunked: false,
            },
            BodyKind::Chunked => State::ChunkSize,
            BodyKind::UntilClose => State::UntilClose,
        };
        BodyReader {
            state,
            received: 0,
            trailers: Vec::new(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// A trailer field of a chunked body, once the body has been read.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Appends the next body bytes to `out`, at most its spare capacity (which
    /// must not be zero). `Ok(0)` means the body is complete.
    pub async fn read(
        &mut self,
        conn: &mut Conn,
        out: Vec<u8>,
    ) -> (Result<usize, HttpError>, Vec<u8>) {
        if conn.body == BodyState::Unread {
            conn.body = BodyState::Partial;
        }
        let done = self.read_step(conn, out).await;
        if self.state == State::Done {
            conn.body = BodyState::Done;
        }
        done
    }

    async fn read_step(
        &mut self,
        conn: &mut Conn,
        mut out: Vec<u8>,
    ) -> (Result<usize, HttpError>, Vec<u8>) {
        debug_assert!(out.capacity() > out.len());
        loop {
            let step = match self.state {
                State::Done => return (Ok(0), out),
                State::Data { remaining, chunked } => {
                    let (res, buf) = self.read_data(conn, out, remaining).await;
                    out = buf;
                    match res {
                        Ok(n) => {
                            let left = remaining - n as u64;
                            self.state = match (left, chunked) {
                                (0, true) => State::ChunkEnd,
                                (0, false) => State::Done,
                                (left, chunked) => State::Data {
                                    remaining: left,
                                    chunked,
                                },
                            };
                            self.received += n as u64;
                            return (Ok(n), out);
                        }
                        Err(e) => return (Err(e), out),
                    }
                }
                State::UntilClose => {
                    let (res, buf) = self.read_data(conn, out, u64::MAX).await;
                    out = buf;
                    return match res {
                        Err(HttpError::IncompleteBody) => {
                            self.state = State::Done;
                            (Ok(0), out)
                        }
                        Ok(n) => {
                            self.received += n as u64;
                            (Ok(n), out)
                        }
                        Err(e) => (Err(e), out),
                    };
                }
                State::ChunkSize => self.chunk_size(conn).await,
                State::ChunkEnd => self.chunk_end(conn).await,
                State::Trailers { seen } => self.trailers(conn, seen).await,
            };
            if let Err(e) = step {
                return (Err(e), out);
            }
        }
    }

    /// Reads body bytes into `buf` until it is full or the body ends; fewer
    /// than its capacity only at the end.
    pub async fn read_full(
        &mut self,
        conn: &mut Conn,
        mut buf: Vec<u8>,
    ) -> Result<Vec<u8>, HttpError> {
        while buf.len() < buf.capacity() {
            let (res, b) = self.read(conn, buf).await;
            buf = b;
            if res? == 0 {
                break;
            }
        }
        Ok(buf)
    }

    /// Reads and throws away the rest of the body, if no more than `limit` bytes
    /// of it remain to be read; `Ok(false)` when there was more (close then).
    pub async fn discard(&mut self, conn: &mut Conn, limit: u64) -> Result<bool, HttpError> {
        let mut scratch = Vec::with_capacity(16 * 1024);
        let start = self.received;
        loop {
            if self.received - start > limit {
                return Ok(false);
            }
            let (res, mut buf) = self.read(conn, scratch).await;
            if res? == 0 {
                return Ok(true);
            }
            buf.clear();
            scratch = buf;
        }
    }

    async fn read_data(
        &mut self,
        conn: &mut Conn,
        mut out: Vec<u8>,
        remaining: u64,
    ) -> (Result<usize, HttpError>, Vec<u8>) {
        let spare = out.capacity() - out.len();
        let want = remaining.min(spare as u64) as usize;
        if conn.buffered().is_empty() {
            if want >= DIRECT_READ_MIN {
                let (res, buf) = conn.read_direct(out, want).await;
                return match res {
                    Ok(0) => (Err(HttpError::IncompleteBody), buf),
                    other => (other, buf),
                };
            }
            match conn.fill(conn.timeouts.io).await {
                Ok(0) => return (Err(HttpError::IncompleteBody), out),
                Ok(_) => {}
                Err(e) => return (Err(e), out),
            }
        }
        let n = conn.buffered().len().min(want);
        out.extend_from_slice(&conn.buffered()[..n]);
        conn.consume(n);
        (Ok(n), out)
    }

    /// Takes one line (without its line ending) from the connection buffer.
    async fn line(conn: &mut Conn) -> Result<Vec<u8>, HttpError> {
        loop {
            if let Some((len, consumed)) = split_line(conn.buffered())? {
                let line = conn.buffered()[..len].to_vec();
                conn.consume(consumed);
                return Ok(line);
            }
            if conn.buffered().len() > MAX_LINE {
                return Err(HttpError::BadRequest("chunk line too long"));
            }
            if conn.fill(conn.timeouts.io).await? == 0 {
                return Err(HttpError::IncompleteBody);
            }
        }
    }

    async fn chunk_size(&mut self, conn: &mut Conn) -> Result<(), HttpError> {
        let line = Self::line(conn).await?;
        let size = parse_chunk_size(&line).ok_or(HttpError::BadRequest("bad chunk size"))?;
        self.state = if size == 0 {
            State::Trailers { seen: 0 }
        } else {
            State::Data {
                remaining: size,
                chunked: true,
            }
        };
        Ok(())
    }

    async fn chunk_end(&mut self, conn: &mut Conn) -> Result<(), HttpError> {
        if !Self::line(conn).await?.is_empty() {
            return Err(HttpError::BadRequest("chunk data longer than its size"));
        }
        self.state = State::ChunkSize;
        Ok(())
    }

    async fn trailers(&mut self, conn: &mut Conn, seen: usize) -> Result<(), HttpError> {
        let line = Self::line(conn).await?;
        let seen = seen + line.len() + 2;
        if seen > MAX_TRAILERS {
            return Err(HttpError::HeadersTooLarge);
        }
        if line.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        self.trailers.push(parse_trailer(&line)?);
        self.state = State::Trailers { seen };
        Ok(())
    }
}
