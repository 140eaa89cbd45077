//! The volume as a [`Service`]: decode the path once, route by method.

use crate::error::VolumeError;
use crate::http::{response, Conn, Method, RequestHead, Service, Timeouts};
use crate::runtime::Shutdown;
use crate::server::Ctx;
use crate::{delete, fspath, get, put};

pub const SERVER: &str = "volume-uring";

/// Name prefix of the files a PUT writes before renaming them into place.
pub const TEMP_PREFIX: &[u8] = b".mkv-tmp-";

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

impl Service for Ctx {
    type Error = VolumeError;

    fn name(&self) -> &'static str {
        SERVER
    }

    fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    fn shutting_down(&self) -> bool {
        self.shutdown.is_triggered()
    }

    fn error_status(&self, e: &VolumeError) -> Option<u16> {
        e.status()
    }

    fn write_error(
        &self,
        out: &mut Vec<u8>,
        code: u16,
        e: &dyn std::fmt::Display,
        keep_alive: bool,
        http10: bool,
    ) {
        response::start(out, code, SERVER);
        if code == 405 {
            response::header(out, "Allow", b"GET, HEAD, PUT, DELETE");
        }
        let text = format!("{e}\n");
        response::header(out, "Content-Type", b"text/plain");
        response::header_num(out, "Content-Length", text.len() as u64);
        response::finish(out, keep_alive, http10);
        out.extend_from_slice(text.as_bytes());
    }

    async fn call(&self, conn: &mut Conn, head: &RequestHead) -> Result<bool, VolumeError> {
        let mut rel = std::mem::take(&mut conn.scratch);
        let dir_wanted = fspath::decode(head.path(), &mut rel)?;
        let result = route(conn, head, self, &rel, dir_wanted).await;
        conn.scratch = rel;
        result
    }
}

async fn route(
    conn: &mut Conn,
    head: &RequestHead,
    ctx: &Ctx,
    rel: &[u8],
    dir_wanted: bool,
) -> Result<bool, VolumeError> {
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
