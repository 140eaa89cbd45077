//! Streaming transfers to and from one volume: a PUT whose body is sent
//! piece by piece ([`Upload`]), a GET whose body is read piece by piece
//! ([`Download`]). Both come from [`VolumeClient`] and give their
//! connection back to its pool when they end cleanly.

use std::time::Duration;

use bytes::Bytes;
use volume_uring::http::client_head::ResponseHead;
use volume_uring::http::{BodyReader, Conn, HttpError};

use crate::volume_client::{
    read_body, read_reply, reply_of, ClientError, Reply, VolumeClient, COPY_MAX,
};

/// A PUT in progress to one volume. The body goes chunked, so that the
/// `X-Mkv-Crc32` and `X-Mkv-Md5` trailers can follow it: volume-uring
/// refuses a body that does not match the CRC and keeps the md5 (nginx
/// ignores trailers).
pub struct Upload<'c> {
    pub(crate) client: &'c VolumeClient,
    pub host: String,
    pub(crate) conn: Conn,
}

impl Upload<'_> {
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
    /// large one is sent as it is (shared, not copied).
    async fn push_chunk(&mut self, data: Bytes) -> Result<(), HttpError> {
        let size_line = format!("{:x}\r\n", data.len());
        self.conn.wbuf.extend_from_slice(size_line.as_bytes());
        if data.len() <= COPY_MAX {
            self.conn.wbuf.extend_from_slice(&data);
        } else {
            self.conn.flush().await?;
            self.conn.send(data).await?;
        }
        self.conn.wbuf.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// A volume that refuses a PUT may answer and close before reading the
    /// body; its answer says more than the broken pipe.
    async fn why_refused(&mut self, e: HttpError) -> ClientError {
        let quick = monoio::time::timeout(
            Duration::from_millis(500),
            read_reply(&mut self.conn, false),
        )
        .await;
        match quick {
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
            self.conn.wbuf.extend_from_slice(b"0\r\n");
            for (name, value) in trailers {
                volume_uring::http::response::header(&mut self.conn.wbuf, name, value.as_bytes());
            }
            self.conn.wbuf.extend_from_slice(b"\r\n");
            self.conn.flush().await
        }
        .await;
        if let Err(e) = sent {
            return Err(self.why_refused(e).await);
        }
        let head = read_reply(&mut self.conn, false)
            .await
            .map_err(|e| ClientError::new(&self.host, e))?;
        read_body(&mut self.conn, &head, 64 * 1024)
            .await
            .map_err(|e| ClientError::new(&self.host, e))?;
        if head.keep_alive {
            self.client.checkin(&self.host, self.conn);
        }
        Ok(reply_of(&head))
    }
}

/// A GET in progress from one volume.
pub struct Download<'c> {
    pub(crate) client: &'c VolumeClient,
    pub host: String,
    pub(crate) conn: Conn,
    pub(crate) head: ResponseHead,
    pub(crate) body: BodyReader,
}

impl Download<'_> {
    pub fn reply(&self) -> Reply {
        reply_of(&self.head)
    }

    /// Appends the next bytes of the body to `out`; `Ok(0)` at its end (and
    /// then the connection goes back to the pool).
    pub async fn read(&mut self, out: Vec<u8>) -> (Result<usize, ClientError>, Vec<u8>) {
        let (res, out) = self.body.read(&mut self.conn, out).await;
        (res.map_err(|e| ClientError::new(&self.host, e)), out)
    }

    /// Reads up to `max` bytes of the body (fewer only at its end).
    pub async fn read_chunk(&mut self, max: usize) -> Result<Vec<u8>, ClientError> {
        let mut buf = Vec::with_capacity(max);
        while buf.len() < max {
            let (res, b) = self.read(buf).await;
            buf = b;
            if res? == 0 {
                break;
            }
        }
        Ok(buf)
    }

    pub fn is_done(&self) -> bool {
        self.body.is_done()
    }

    /// Returns the connection to the pool if the body was read to its end.
    pub fn done(self) {
        if self.body.is_done() && self.head.keep_alive {
            self.client.checkin(&self.host, self.conn);
        }
    }
}
