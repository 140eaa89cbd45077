//! Streaming transfers to and from one volume: a PUT whose body is sent
//! piece by piece ([`Upload`]), a GET whose body is read piece by piece
//! ([`Download`]). Both come from [`super::VolumeClient`] and give their
//! connection back to its pool when they end cleanly.

use std::time::Duration;

use bytes::Bytes;
use http1::client::{read_body, read_response};
use http1::{chunked, BodyReader, Conn, HttpError};

use super::pool::Pool;
use super::reply::{reply_of, Extras, Reply};
use super::ClientError;

/// Body pieces up to this size are copied behind the request head and go
/// out with it in one send; larger ones are sent as they are (shared).
const COPY_MAX: usize = 16 * 1024;
/// After the last byte of a PUT, the wait for the volume's answer grows by
/// a second per this many bytes sent: the volume syncs them first.
const SYNC_RATE: u64 = 32 << 20;

/// A PUT in progress to one volume. The body goes chunked, so that the
/// `X-Mkv-Crc32` and `X-Mkv-Md5` trailers can follow it: volume-uring
/// refuses a body that does not match the CRC and keeps the md5 (nginx
/// ignores trailers).
pub struct Upload<'c> {
    pool: &'c Pool,
    pub host: String,
    conn: Conn,
    sent: u64,
}

impl<'c> Upload<'c> {
    pub(super) fn new(pool: &'c Pool, host: &str, conn: Conn) -> Upload<'c> {
        Upload {
            pool,
            host: host.to_string(),
            conn,
            sent: 0,
        }
    }

    /// Sends one piece of the body.
    pub async fn send(&mut self, data: Bytes) -> Result<(), ClientError> {
        let sent = async {
            self.push_chunk(data).await?;
            self.conn.flush().await
        }
        .await;
        match sent {
            Ok(()) => Ok(()),
            Err(e) => Err(self.why_refused(e).await),
        }
    }

    /// Frames a chunk into the write buffer; a small one is copied there, a
    /// large one is sent as it is (shared, not copied), with its size line
    /// and CRLF in the same write.
    async fn push_chunk(&mut self, data: Bytes) -> Result<(), HttpError> {
        self.sent += data.len() as u64;
        if data.len() <= COPY_MAX {
            chunked::push_chunk(&mut self.conn.wbuf, &data);
            return Ok(());
        }
        chunked::push_size(&mut self.conn.wbuf, data.len());
        self.conn.send_between(data, chunked::CHUNK_END).await
    }

    /// A volume that refuses a PUT may answer and close before reading the
    /// body; its answer says more than the broken pipe.
    async fn why_refused(&mut self, e: HttpError) -> ClientError {
        let answer = read_response(&mut self.conn, false, |_, _| {});
        match monoio::time::timeout(Duration::from_millis(500), answer).await {
            Ok(Ok(head)) => ClientError {
                status: Some(head.status),
                ..ClientError::new(&self.host, format!("answered {}", head.status))
            },
            _ => ClientError::new(&self.host, e),
        }
    }

    /// Sends the last piece (possibly empty) and the trailers in one write,
    /// then reads the volume's answer.
    pub async fn finish(
        mut self,
        last: Bytes,
        trailers: &[(&str, &str)],
    ) -> Result<Reply, ClientError> {
        let sent = async {
            if !last.is_empty() {
                self.push_chunk(last).await?;
            }
            chunked::push_last(&mut self.conn.wbuf, trailers);
            self.conn.flush().await
        }
        .await;
        if let Err(e) = sent {
            return Err(self.why_refused(e).await);
        }
        let mut extras = Extras::default();
        let host = &self.host;
        self.conn.timeouts.io += Duration::from_secs(self.sent / SYNC_RATE);
        let head = read_response(&mut self.conn, false, |n, v| extras.take(n, v))
            .await
            .map_err(|e| ClientError::new(host, e))?;
        read_body(&mut self.conn, head.body, 64 * 1024)
            .await
            .map_err(|e| ClientError::new(host, e))?;
        if head.keep_alive {
            self.pool.checkin(&self.host, self.conn);
        }
        Ok(reply_of(&head, extras))
    }
}

/// A GET in progress from one volume.
pub struct Download<'c> {
    pool: &'c Pool,
    pub host: String,
    conn: Conn,
    reply: Reply,
    keep_alive: bool,
    body: BodyReader,
}

impl<'c> Download<'c> {
    pub(super) fn new(
        pool: &'c Pool,
        host: &str,
        conn: Conn,
        reply: Reply,
        keep_alive: bool,
        body: BodyReader,
    ) -> Download<'c> {
        Download {
            pool,
            host: host.to_string(),
            conn,
            reply,
            keep_alive,
            body,
        }
    }

    pub fn reply(&self) -> Reply {
        self.reply
    }

    /// Appends the next bytes of the body to `out`; `Ok(0)` at its end.
    pub async fn read(&mut self, out: Vec<u8>) -> (Result<usize, ClientError>, Vec<u8>) {
        let (res, out) = self.body.read(&mut self.conn, out).await;
        (res.map_err(|e| ClientError::new(&self.host, e)), out)
    }

    /// Reads up to `max` bytes of the body (fewer only at its end).
    pub async fn read_chunk(&mut self, max: usize) -> Result<Vec<u8>, ClientError> {
        let buf = Vec::with_capacity(max);
        self.body
            .read_full(&mut self.conn, buf)
            .await
            .map_err(|e| ClientError::new(&self.host, e))
    }

    /// Empties `buf` and fills it with the next bytes of the body, up to
    /// its capacity (fewer only at its end).
    pub async fn fill(&mut self, mut buf: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        buf.clear();
        self.body
            .read_full(&mut self.conn, buf)
            .await
            .map_err(|e| ClientError::new(&self.host, e))
    }

    pub fn is_done(&self) -> bool {
        self.body.is_done()
    }

    /// Returns the connection to the pool if the body was read to its end.
    pub fn done(self) {
        if self.body.is_done() && self.keep_alive {
            self.pool.checkin(&self.host, self.conn);
        }
    }
}
