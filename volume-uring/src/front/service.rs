//! The volume as a [`Service`]: decode the path once, route by method.

use http1::metrics::{method_label, Timer};
use http1::{response, Answer, Conn, Method, RequestHead, Service, Timeouts};

use crate::admin::metrics::METRICS;

use crate::error::VolumeError;
use crate::front::request::{Request, SERVER};
use crate::ops::{delete, get, put, stage, temp};
use crate::state::Ctx;
use crate::store::fspath;
use crate::store::upload::TEMP_PREFIX;

impl Service for Ctx {
    type Error = VolumeError;

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
        e: &VolumeError,
        head: Option<&RequestHead>,
        keep_alive: bool,
    ) {
        let mut answer = response::start(out, code, SERVER);
        if code == 405 {
            response::header(out, "Allow", b"GET, HEAD, PUT, DELETE");
        }
        let text = format!("{e}\n");
        response::header(out, "Content-Type", b"text/plain");
        answer.content_length(out, text.len() as u64);
        let _ = answer.end(out, keep_alive, head.is_some_and(|h| h.http10));
        out.extend_from_slice(text.as_bytes());
    }

    async fn call(&self, conn: &mut Conn, head: &RequestHead) -> Result<Answer, VolumeError> {
        let timer = Timer::start(conn, head);
        let mut rel = std::mem::take(&mut conn.scratch);
        let result = match fspath::decode(head.path(), &mut rel) {
            Ok(dir_wanted) => route(conn, head, self, &rel, dir_wanted).await,
            Err(e) => Err(e),
        };
        conn.scratch = rel;
        let done = timer.finish(conn, result.as_ref().map_err(VolumeError::status));
        METRICS.http.observe("files", method_label(head), &done);
        result
    }
}

async fn route(
    conn: &mut Conn,
    head: &RequestHead,
    ctx: &Ctx,
    rel: &[u8],
    dir_wanted: bool,
) -> Result<Answer, VolumeError> {
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
        ctx,
    };
    if let Some((op, age)) = temp::wanted(&req) {
        return temp::serve(conn, &req, op, age).await;
    }
    match head.method {
        Method::Get | Method::Head => get::serve(conn, &req).await,
        Method::Put => match head.header(stage::OFFSET_HEADER) {
            Some(offset) => {
                let offset = http1::request::parse_u64(offset)
                    .ok_or(VolumeError::BadBody("X-Mkv-Offset must be a number"))?;
                stage::ranged_put(conn, &req, offset).await
            }
            None => put::serve(conn, &req).await,
        },
        Method::Delete => delete::serve(conn, &req).await,
        Method::Post if is_assemble(head) => stage::assemble(conn, &req).await,
        _ => Err(VolumeError::MethodNotAllowed),
    }
}

fn is_assemble(head: &RequestHead) -> bool {
    head.query()
        .is_some_and(|q| http1::percent::query_pairs(q).any(|(n, _)| n == b"mkv-assemble"))
}
