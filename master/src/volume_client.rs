//! The master's HTTP client for volume servers — volume-uring and stock nginx
//! alike: keep-alive connections pooled per thread and volume, a timeout on
//! every step, streaming uploads and downloads with bounded buffers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;
use volume_uring::http::client_head::{self, ResponseHead};
use volume_uring::http::{BodyKind, BodyReader, Conn, HttpError, Timeouts};

use crate::head_lanes::HeadLanes;
pub use crate::transfer::{Download, Upload};

/// Body pieces up to this size are copied behind the request head and go
/// out with it in one send; larger ones are sent as they are (shared).
pub(crate) const COPY_MAX: usize = 16 * 1024;
/// Idle connections kept per volume on each thread.
const MAX_IDLE: usize = 64;
/// Older idle connections are closed rather than reused (servers close
/// theirs after 75 s; this stays well clear of that race).
const MAX_IDLE_AGE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("volume {host}: {what}")]
pub struct ClientError {
    pub host: String,
    pub what: String,
    /// The volume's answer, when the failure is one.
    pub status: Option<u16>,
}

impl ClientError {
    pub(crate) fn new(host: &str, what: impl std::fmt::Display) -> ClientError {
        ClientError {
            host: host.to_string(),
            what: what.to_string(),
            status: None,
        }
    }
}

/// A volume's answer.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    /// A recursive listing (volume-uring's `?recursive`), not nginx's.
    pub recursive_listing: bool,
    /// `X-Crc32`: volume-uring's CRC32 of what it stored or holds.
    pub crc32: Option<u32>,
    pub content_length: Option<u64>,
}

/// Splits a replica entry `host:port/sv07` into its host and the URL of
/// `path` on it (`/sv07` + `path`).
fn url_of<'r>(replica: &'r str, path: &str) -> (&'r str, String) {
    match replica.find('/') {
        Some(i) => (&replica[..i], format!("{}{path}", &replica[i..])),
        None => (replica, path.to_string()),
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// One per runtime thread.
pub struct VolumeClient {
    /// `--voltimeout`: a HEAD (connect included) that takes longer fails.
    pub head_timeout: Duration,
    /// Any other step (connect, a write, a read) that takes longer fails.
    pub io_timeout: Duration,
    pools: RefCell<HashMap<String, Vec<Idle>>>,
    addrs: RefCell<HashMap<String, Vec<SocketAddr>>>,
    lanes: HeadLanes,
}

async fn timed<F: std::future::Future>(
    host: &str,
    dur: Duration,
    f: F,
) -> Result<F::Output, ClientError> {
    monoio::time::timeout(dur, f)
        .await
        .map_err(|_| ClientError::new(host, "timed out"))
}

impl VolumeClient {
    pub fn new(head_timeout: Duration, io_timeout: Duration) -> VolumeClient {
        VolumeClient {
            head_timeout,
            io_timeout,
            pools: Default::default(),
            addrs: Default::default(),
            lanes: Default::default(),
        }
    }

    /// Addresses of `host`, resolved once per thread (getaddrinfo blocks).
    fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, ClientError> {
        if let Some(a) = self.addrs.borrow().get(host) {
            return Ok(a.clone());
        }
        let addrs: Vec<SocketAddr> = host
            .to_socket_addrs()
            .map_err(|e| ClientError::new(host, format!("cannot resolve: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(ClientError::new(host, "resolves to no address"));
        }
        self.addrs
            .borrow_mut()
            .insert(host.to_string(), addrs.clone());
        Ok(addrs)
    }

    pub(crate) async fn connect(&self, host: &str, timeout: Duration) -> Result<Conn, ClientError> {
        let addrs = self.resolve(host)?;
        let mut last = None;
        for (i, addr) in addrs.iter().enumerate() {
            match timed(host, timeout, TcpStream::connect_addr(*addr)).await? {
                Ok(stream) => {
                    if i > 0 {
                        // Try the address that works first next time (localhost: ::1 vs 127.0.0.1).
                        self.addrs
                            .borrow_mut()
                            .insert(host.to_string(), rotate(&addrs, i));
                    }
                    let _ = stream.set_nodelay(true);
                    return Ok(Conn::new(stream, self.timeouts(timeout)));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(ClientError::new(
            host,
            format!(
                "cannot connect: {}",
                last.map_or("no address".into(), |e| e.to_string())
            ),
        ))
    }

    fn timeouts(&self, io: Duration) -> Timeouts {
        Timeouts {
            idle: MAX_IDLE_AGE,
            header: io,
            io,
        }
    }

    /// A pooled connection that still looks alive, or a new one; and whether it was pooled.
    async fn checkout(&self, host: &str, timeout: Duration) -> Result<(Conn, bool), ClientError> {
        loop {
            let idle = self.pools.borrow_mut().get_mut(host).and_then(Vec::pop);
            match idle {
                Some(i) if i.since.elapsed() < MAX_IDLE_AGE && !i.conn.peer_closed() => {
                    let mut conn = i.conn;
                    conn.timeouts = self.timeouts(timeout);
                    return Ok((conn, true));
                }
                Some(_) => continue,
                None => return Ok((self.connect(host, timeout).await?, false)),
            }
        }
    }

    pub(crate) fn checkin(&self, host: &str, conn: Conn) {
        let mut pools = self.pools.borrow_mut();
        let pool = pools.entry(host.to_string()).or_default();
        if pool.len() < MAX_IDLE {
            pool.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// A request without a body; the answer's body (at most `max_body`
    /// bytes, or it fails) is returned whole.
    async fn call(
        &self,
        host: &str,
        method: &str,
        path: &str,
        timeout: Duration,
        max_body: u64,
    ) -> Result<(Reply, Vec<u8>), ClientError> {
        let mut attempt = 0;
        loop {
            let (mut conn, pooled) = self.checkout(host, timeout).await?;
            write_head(&mut conn, method, host, path, None);
            let answer = async {
                conn.flush().await?;
                read_reply(&mut conn, method == "HEAD").await
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
            let body = read_body(&mut conn, &head, max_body)
                .await
                .map_err(|e| ClientError::new(host, e))?;
            if head.keep_alive {
                self.checkin(host, conn);
            }
            return Ok((reply_of(&head), body));
        }
    }

    // The requests below name a file as a replica entry (`host:port/sv07`)
    // and a path under it (a `key2path`, or a folder for listings).

    /// HEAD, answered within `--voltimeout` (connecting included), over
    /// the thread's pipelined lane to that volume.
    pub async fn head(self: &Rc<Self>, replica: &str, path: &str) -> Result<Reply, ClientError> {
        let (host, url) = url_of(replica, path);
        self.lanes
            .head(self.clone(), host, url, self.head_timeout)
            .await
    }

    pub async fn delete(&self, replica: &str, path: &str) -> Result<Reply, ClientError> {
        let (host, url) = url_of(replica, path);
        Ok(self
            .call(host, "DELETE", &url, self.io_timeout, 64 * 1024)
            .await?
            .0)
    }

    /// Opens a PUT (chunked); send the body with [`Upload::send`], then
    /// [`Upload::finish`].
    pub async fn start_put(&self, replica: &str, path: &str) -> Result<Upload<'_>, ClientError> {
        let (host, url) = url_of(replica, path);
        let (mut conn, _) = self.checkout(host, self.io_timeout).await?;
        write_head(&mut conn, "PUT", host, &url, Some(None));
        Ok(Upload {
            client: self,
            host: host.to_string(),
            conn,
        })
    }

    /// Opens a GET whose body is read piece by piece ([`Download::read`]).
    pub async fn start_get(&self, replica: &str, path: &str) -> Result<Download<'_>, ClientError> {
        let (host, url) = url_of(replica, path);
        let (mut conn, _) = self.checkout(host, self.io_timeout).await?;
        write_head(&mut conn, "GET", host, &url, None);
        let head = async {
            conn.flush().await?;
            read_reply(&mut conn, false).await
        }
        .await
        .map_err(|e| ClientError::new(host, e))?;
        let body = BodyReader::new(head.body.unwrap_or(BodyKind::Empty));
        Ok(Download {
            client: self,
            host: host.to_string(),
            conn,
            head,
            body,
        })
    }
}

fn rotate(addrs: &[SocketAddr], first: usize) -> Vec<SocketAddr> {
    addrs[first..]
        .iter()
        .chain(&addrs[..first])
        .copied()
        .collect()
}

/// `len`: `None` for no body, `Some(None)` for a chunked body.
pub(crate) fn write_head(
    conn: &mut Conn,
    method: &str,
    host: &str,
    path: &str,
    len: Option<Option<u64>>,
) {
    let out = &mut conn.wbuf;
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    match len {
        None => {}
        Some(Some(n)) => volume_uring::http::response::header_num(out, "Content-Length", n),
        Some(None) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Reads a final answer's head (interim 1xx answers are skipped).
pub(crate) async fn read_reply(
    conn: &mut Conn,
    head_request: bool,
) -> Result<ResponseHead, HttpError> {
    loop {
        if let Some((n, head)) = client_head::parse(conn.buffered(), head_request)? {
            conn.consume(n);
            if head.status / 100 == 1 {
                continue;
            }
            return Ok(head);
        }
        if conn.fill(conn.timeouts.io).await? == 0 {
            return Err(HttpError::Closed);
        }
    }
}

pub(crate) async fn read_body(
    conn: &mut Conn,
    head: &ResponseHead,
    max: u64,
) -> Result<Vec<u8>, HttpError> {
    let mut body = BodyReader::new(head.body.unwrap_or(BodyKind::Empty));
    let mut out = Vec::new();
    loop {
        if out.len() as u64 > max {
            return Err(HttpError::BadRequest("answer too large"));
        }
        out.reserve(16 * 1024);
        let (res, buf) = body.read(conn, out).await;
        out = buf;
        if res? == 0 {
            return Ok(out);
        }
    }
}

pub(crate) fn reply_of(head: &ResponseHead) -> Reply {
    Reply {
        status: head.status,
        recursive_listing: head.recursive_listing,
        crc32: head.crc32,
        content_length: head.content_length,
    }
}
