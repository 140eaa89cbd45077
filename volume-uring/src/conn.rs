//! One client connection: read a request head, route it by method, answer,
//! and repeat while the connection may be kept alive.

use std::cell::Cell;
use std::sync::Arc;

use monoio::net::TcpStream;

use crate::error::VolumeError;
use crate::http::{response, Conn, Method, RequestHead};
use crate::runtime::Shutdown;
use crate::server::Ctx;
use crate::{delete, fspath, get, put};

pub const SERVER: &str = "volume-uring";

/// Name prefix of the files a PUT writes before renaming them into place.
pub const TEMP_PREFIX: &[u8] = b".mkv-tmp-";

thread_local! {
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// Requests being answered on this thread; shutdown waits for them.
pub fn in_flight() -> usize {
    IN_FLIGHT.with(Cell::get)
}

struct Busy;

impl Busy {
    fn enter() -> Busy {
        IN_FLIGHT.with(|c| c.set(c.get() + 1));
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        IN_FLIGHT.with(|c| c.set(c.get() - 1));
    }
}

/// What a handler needs to know about the request beyond its head.
pub struct Request<'a> {
    pub head: &'a RequestHead,
    /// The decoded path, relative to the root (`a/b/c`; empty for the root).
    pub rel: &'a [u8],
    /// The URL ended with `/`.
    pub dir_wanted: bool,
    shutdown: &'a Shutdown,
}

impl Request<'_> {
    /// Whether the answer may leave the connection open: the client wants it,
    /// and no shutdown began while the request was served.
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive && !self.shutdown.is_triggered()
    }
}

pub async fn serve(stream: TcpStream, ctx: Arc<Ctx>) {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream, ctx.timeouts);
    let mut head = RequestHead::default();
    let mut rel = Vec::with_capacity(256);
    loop {
        match conn.read_head(&mut head).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                if let Some(code) = e.status() {
                    error_response(&mut conn, code, &e.to_string(), false, false);
                    let _ = conn.flush().await;
                }
                break;
            }
        }
        let _busy = Busy::enter();
        match route(&mut conn, &head, &ctx, &mut rel).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let Some(code) = e.status() else { break };
                if code >= 500 {
                    tracing::warn!(error = %e, "request failed");
                }
                // A body we did not read would be taken for the next request.
                let keep =
                    head.keep_alive && !ctx.shutdown.is_triggered() && !head.body.has_bytes();
                conn.wbuf.clear();
                error_response(&mut conn, code, &e.to_string(), keep, head.http10);
                if conn.flush().await.is_err() || !keep {
                    break;
                }
            }
        }
    }
    conn.close().await;
}

async fn route(
    conn: &mut Conn,
    head: &RequestHead,
    ctx: &Ctx,
    rel: &mut Vec<u8>,
) -> Result<bool, VolumeError> {
    let dir_wanted = fspath::decode(head.path(), rel)?;
    if rel
        .split(|&c| c == b'/')
        .any(|s| s.starts_with(TEMP_PREFIX))
    {
        return Err(VolumeError::Forbidden("reserved name"));
    }
    let req = Request {
        head,
        rel,
        dir_wanted,
        shutdown: &ctx.shutdown,
    };
    match head.method {
        Method::Get | Method::Head => get::serve(conn, &req, ctx).await,
        Method::Put => put::serve(conn, &req, ctx).await,
        Method::Delete => delete::serve(conn, &req, ctx).await,
        _ => Err(VolumeError::MethodNotAllowed),
    }
}

fn error_response(conn: &mut Conn, code: u16, text: &str, keep_alive: bool, http10: bool) {
    let out = &mut conn.wbuf;
    response::start(out, code, SERVER);
    if code == 405 {
        response::header(out, "Allow", b"GET, HEAD, PUT, DELETE");
    }
    response::header(out, "Content-Type", b"text/plain");
    response::header_num(out, "Content-Length", text.len() as u64 + 1);
    response::finish(out, keep_alive, http10);
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

/// Ends a response with no body.
pub fn empty_response(conn: &mut Conn, req: &Request<'_>, code: u16, crc: Option<u32>) {
    let out = &mut conn.wbuf;
    response::start(out, code, SERVER);
    if let Some(crc) = crc {
        response::header(
            out,
            crate::checksum::CRC_HEADER,
            &crate::checksum::to_hex(crc),
        );
    }
    if code != 204 {
        response::header_num(out, "Content-Length", 0);
    }
    response::finish(out, req.keep_alive(), req.head.http10);
}
