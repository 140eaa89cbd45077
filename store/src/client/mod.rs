//! The master's HTTP client for volume servers — volume-uring and stock nginx
//! alike: keep-alive connections pooled per thread and volume (`pool`), a
//! timeout on every step, HEADs pipelined per volume, streaming uploads and
//! downloads with bounded buffers (`transfer`), one stream to several
//! volumes (`fanout`), copies between volumes (`copy`), and what a
//! volume's answer says (`reply`).
//!
//! Requests name a file as a replica entry (`host:port/sv07`) and a path
//! under it (a `key2path`, or a folder for listings).

pub mod copy;
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
    /// A failed request to a volume (counted in the metrics).
    pub fn new(host: &str, what: impl std::fmt::Display) -> ClientError {
        let what = what.to_string();
        let timed_out = what.contains("timed out");
        crate::metrics::METRICS.replica_failed(host, timed_out);
        ClientError {
            host: host.to_string(),
            what,
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

/// A byte range of a staging file, and its CRC32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedRange {
    pub path: String,
    pub offset: u64,
    pub len: u64,
    pub crc: u32,
}

/// One per runtime thread.
pub struct VolumeClient {
    /// `--voltimeout`: a HEAD (connect included) that takes longer fails.
    pub head_timeout: Duration,
    /// Any other step (connect, a write, a read) that takes longer fails.
    pub io_timeout: Duration,
    pool: Pool,
    lanes: Rc<HeadLanes<Extras>>,
    /// Per volume host: whether it is volume-uring (learned once).
    kinds: std::cell::RefCell<std::collections::HashMap<String, bool>>,
}

impl VolumeClient {
    pub fn new(head_timeout: Duration, io_timeout: Duration) -> VolumeClient {
        let dialer = Rc::new(Dialer::default());
        VolumeClient {
            head_timeout,
            io_timeout,
            lanes: Rc::new(HeadLanes::new(dialer.clone(), Extras::take)),
            pool: Pool::new(dialer),
            kinds: Default::default(),
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
        self.call_with(host, method, path, max_body, &[]).await
    }

    /// [`VolumeClient::call`] with `extra` header lines.
    async fn call_with(
        &self,
        host: &str,
        method: &str,
        path: &str,
        max_body: u64,
        extra: &[(&str, &[u8])],
    ) -> Result<(Reply, Vec<u8>), ClientError> {
        let mut attempt = 0;
        loop {
            let (mut conn, pooled) = self
                .pool
                .checkout(host, self.io_timeout)
                .await
                .map_err(|e| ClientError::new(host, e))?;
            client::write_request(&mut conn.wbuf, method, host, path, Framing::None, extra);
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

    /// Whether the volume of `replica` is volume-uring (and so takes
    /// ranged writes and assembles), asked once per thread with a HEAD of
    /// its root; a volume that cannot be asked counts as not.
    pub async fn is_volume_uring(&self, replica: &str) -> bool {
        let (host, _) = url_of(replica, "/");
        if let Some(&known) = self.kinds.borrow().get(host) {
            return known;
        }
        match self.call(host, "HEAD", "/", 0).await {
            Ok((reply, _)) => {
                self.kinds
                    .borrow_mut()
                    .insert(host.to_string(), reply.volume_uring);
                reply.volume_uring
            }
            Err(_) => false,
        }
    }

    /// A HEAD that has volume-uring re-read the file and compare it with
    /// its stored CRC (`Reply::crc_check`; nginx ignores the ask).
    pub async fn head_checked(&self, replica: &str, path: &str) -> Result<Reply, ClientError> {
        let (host, url) = url_of(replica, path);
        let extra: [(&str, &[u8]); 1] = [("X-Mkv-Verify", b"crc32")];
        Ok(self.call_with(host, "HEAD", &url, 0, &extra).await?.0)
    }

    /// volume-uring's leftover temporary files older than `age` seconds
    /// (`GET /?mkv-temp`), or with `remove`, their removal (`POST
    /// /?mkv-sweep`): the answer's JSON.
    pub async fn temp_files(
        &self,
        host: &str,
        age: u64,
        remove: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let (method, path) = match remove {
            false => ("GET", format!("/?mkv-temp&age={age}")),
            true => ("POST", format!("/?mkv-sweep&age={age}")),
        };
        let (reply, body) = self.call(host, method, &path, 64 << 20).await?;
        if reply.status != 200 {
            let what = format!("answered {} to {method} {path}", reply.status);
            return Err(ClientError::new(host, what));
        }
        Ok(body)
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
        self.start_get_range(replica, path, None).await
    }

    /// [`VolumeClient::start_get`] with a `Range` header.
    pub async fn start_get_range(
        &self,
        replica: &str,
        path: &str,
        range: Option<&str>,
    ) -> Result<Download<'_>, ClientError> {
        let (host, url) = url_of(replica, path);
        let mut conn = self.connection(host).await?;
        let extra: Vec<(&str, &[u8])> =
            range.map(|r| ("Range", r.as_bytes())).into_iter().collect();
        client::write_request(&mut conn.wbuf, "GET", host, &url, Framing::None, &extra);
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

    /// `POST path?mkv-assemble` (volume-uring's; docs/volume-api.md): the
    /// file at `path` made of `ranges` of staging files, the file replaced
    /// kept at `backup` when given. All paths are under the replica's
    /// subvolume.
    pub async fn assemble(
        &self,
        replica: &str,
        path: &str,
        ranges: &[StagedRange],
        backup: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let (host, url) = url_of(replica, path);
        let list: String = ranges
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {:08x}\n",
                    url_of(replica, &r.path).1,
                    r.offset,
                    r.len,
                    r.crc
                )
            })
            .collect();
        let url = format!("{url}?mkv-assemble");
        let mut conn = self.connection(host).await?;
        let mut extra: Vec<(&str, &[u8])> = Vec::new();
        let backup_url = backup.map(|b| url_of(replica, b).1);
        if let Some(b) = &backup_url {
            extra.push((reply::BACKUP_HEADER, b.as_bytes()));
        }
        let framing = Framing::Length(list.len() as u64);
        client::write_request(&mut conn.wbuf, "POST", host, &url, framing, &extra);
        conn.wbuf.extend_from_slice(list.as_bytes());
        let mut extras = Extras::default();
        let answer = async {
            conn.flush().await?;
            let head = client::read_response(&mut conn, false, |n, v| extras.take(n, v)).await?;
            client::read_body(&mut conn, head.body, 64 * 1024).await?;
            Ok::<_, HttpError>(head)
        }
        .await
        .map_err(|e| ClientError::new(host, e))?;
        if answer.keep_alive {
            self.pool.checkin(host, conn);
        }
        Ok(reply_of(&answer, extras))
    }
}
