//! The master's HTTP client for volume servers — volume-uring and stock nginx
//! alike: keep-alive connections pooled per thread and volume (`pool`), a
//! timeout on every step, HEADs pipelined per volume, streaming uploads and
//! downloads with bounded buffers (`transfer`), one stream to several
//! volumes (`fanout`), and what a volume's answer says (`reply`).
//!
//! Requests name a file as a replica entry (`host:port/sv07`) and a path
//! under it (a `key2path`, or a folder for listings).

pub mod fanout;
pub mod pool;
pub mod reply;
pub mod transfer;

use std::rc::Rc;
use std::time::Duration;

use http1::client::{self, Dialer, Framing};
use http1::pipeline::HeadLanes;
use http1::{BodyReader, HttpError};

use fanout::Target;
use pool::Pool;
pub use reply::Reply;
use reply::{reply_of, Extras};
pub use transfer::{Download, Upload};

#[derive(Debug, thiserror::Error)]
#[error("volume {host}: {what}")]
pub struct ClientError {
    pub host: String,
    pub what: String,
    /// The volume's answer, when the failure is one.
    pub status: Option<u16>,
}

impl ClientError {
    pub fn new(host: &str, what: impl std::fmt::Display) -> ClientError {
        ClientError {
            host: host.to_string(),
            what: what.to_string(),
            status: None,
        }
    }
}

/// Splits a replica entry `host:port/sv07` into its host and the URL of
/// `path` on it (`/sv07` + `path`).
fn url_of<'r>(replica: &'r str, path: &str) -> (&'r str, String) {
    match replica.find('/') {
        Some(i) => (&replica[..i], format!("{}{path}", &replica[i..])),
        None => (replica, path.to_string()),
    }
}

/// One per runtime thread.
pub struct VolumeClient {
    /// `--voltimeout`: a HEAD (connect included) that takes longer fails.
    pub head_timeout: Duration,
    /// Any other step (connect, a write, a read) that takes longer fails.
    pub io_timeout: Duration,
    pool: Pool,
    lanes: Rc<HeadLanes<Extras>>,
}

impl VolumeClient {
    pub fn new(head_timeout: Duration, io_timeout: Duration) -> VolumeClient {
        let dialer = Rc::new(Dialer::default());
        VolumeClient {
            head_timeout,
            io_timeout,
            lanes: Rc::new(HeadLanes::new(dialer.clone(), Extras::take)),
            pool: Pool::new(dialer),
        }
    }

    /// A request without a body; the answer's body (at most `max_body`
    /// bytes, or it fails) is returned whole.
    async fn call(
        &self,
        host: &str,
        method: &str,
        path: &str,
        max_body: u64,
    ) -> Result<(Reply, Vec<u8>), ClientError> {
        let mut attempt = 0;
        loop {
            let (mut conn, pooled) = self
                .pool
                .checkout(host, self.io_timeout)
                .await
                .map_err(|e| ClientError::new(host, e))?;
            client::write_request(&mut conn.wbuf, method, host, path, Framing::None, &[]);
            let mut extras = Extras::default();
            let answer = async {
                conn.flush().await?;
                client::read_response(&mut conn, method == "HEAD", |n, v| extras.take(n, v)).await
            }
            .await;
            let head = match answer {
                Ok(h) => h,
                // A pooled connection the volume closed meanwhile: once more, fresh.
                Err(HttpError::Closed | HttpError::Io(_)) if pooled && attempt == 0 => {
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(ClientError::new(host, e)),
            };
            let body = client::read_body(&mut conn, head.body, max_body)
                .await
                .map_err(|e| ClientError::new(host, e))?;
            if head.keep_alive {
                self.pool.checkin(host, conn);
            }
            return Ok((reply_of(&head, extras), body));
        }
    }

    /// A connection to `host` for a request that is not retried.
    async fn connection(&self, host: &str) -> Result<http1::Conn, ClientError> {
        let (conn, _) = self
            .pool
            .checkout(host, self.io_timeout)
            .await
            .map_err(|e| ClientError::new(host, e))?;
        Ok(conn)
    }

    /// HEAD, answered within `--voltimeout` (connecting included), over
    /// the thread's pipelined lane to that volume.
    pub async fn head(&self, replica: &str, path: &str) -> Result<Reply, ClientError> {
        let (host, url) = url_of(replica, path);
        match self.lanes.head(host, url, self.head_timeout).await {
            Ok((head, extras)) => Ok(reply_of(&head, extras)),
            Err(e) => Err(ClientError::new(host, e)),
        }
    }

    pub async fn delete(&self, replica: &str, path: &str) -> Result<Reply, ClientError> {
        let (host, url) = url_of(replica, path);
        Ok(self.call(host, "DELETE", &url, 64 * 1024).await?.0)
    }

    /// Opens a PUT (chunked) to `target`; send the body with
    /// [`Upload::send`], then [`Upload::finish`].
    pub async fn start_put(&self, target: &Target) -> Result<Upload<'_>, ClientError> {
        let (host, url) = url_of(&target.replica, &target.path);
        let mut conn = self.connection(host).await?;
        let offset = target.offset.map(|o| o.to_string());
        let extra: &[(&str, &[u8])] = match &offset {
            Some(o) => &[(reply::OFFSET_HEADER, o.as_bytes())],
            None => &[],
        };
        client::write_request(&mut conn.wbuf, "PUT", host, &url, Framing::Chunked, extra);
        Ok(Upload::new(&self.pool, host, conn))
    }

    /// Opens a GET whose body is read piece by piece ([`Download::read`]).
    pub async fn start_get(&self, replica: &str, path: &str) -> Result<Download<'_>, ClientError> {
        let (host, url) = url_of(replica, path);
        let mut conn = self.connection(host).await?;
        client::write_request(&mut conn.wbuf, "GET", host, &url, Framing::None, &[]);
        let mut extras = Extras::default();
        let head = async {
            conn.flush().await?;
            client::read_response(&mut conn, false, |n, v| extras.take(n, v)).await
        }
        .await
        .map_err(|e| ClientError::new(host, e))?;
        let body = BodyReader::new(head.body);
        Ok(Download::new(
            &self.pool,
            host,
            conn,
            reply_of(&head, extras),
            head.keep_alive,
            body,
        ))
    }
}
