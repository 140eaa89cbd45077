//! Leftover temporary files, for `mkv verify`: `GET /?mkv-temp` lists those
//! no upload of this process owns, `POST /?mkv-sweep` removes them; both
//! take `age=SECONDS` (only files last written that long ago; default 0).
//! The walk runs on a thread of its own, not on the runtime.

use std::time::Duration;

use http1::{percent, response, Answer, Conn, Method};

use crate::error::VolumeError;
use crate::front::request::Request;
use crate::ops::walk;
use crate::store::sweep::{self, Leftover};

/// Which of the two, if the request is one of them.
pub enum TempOp {
    List,
    Sweep,
}

/// `GET /?mkv-temp` or `POST /?mkv-sweep`, on the root only.
pub fn wanted(req: &Request<'_>) -> Option<(TempOp, Duration)> {
    if !req.rel.is_empty() {
        return None;
    }
    let query = req.head.query()?;
    let mut op = None;
    let mut age = Duration::ZERO;
    for (name, value) in percent::query_pairs(query) {
        match (name, req.head.method) {
            (b"mkv-temp", Method::Get) => op = Some(TempOp::List),
            (b"mkv-sweep", Method::Post) => op = Some(TempOp::Sweep),
            (b"age", _) => {
                let secs = http1::request::parse_u64(value).unwrap_or(0);
                age = Duration::from_secs(secs);
            }
            _ => {}
        }
    }
    op.map(|op| (op, age))
}

pub async fn serve(
    conn: &mut Conn,
    req: &Request<'_>,
    op: TempOp,
    age: Duration,
) -> Result<Answer, VolumeError> {
    // A walk of the whole tree: it counts among the recursive listings'.
    let permit = walk::Permit::take().ok_or(VolumeError::Busy(
        "too many walks of the volume at once; retry",
    ))?;
    let root = req.ctx.root.path().to_path_buf();
    let body = off_thread(move || {
        let _permit = permit;
        walk_temp(&root, op, age)
    })
    .await?;
    let out = &mut conn.wbuf;
    let mut head = req.start(out, 200);
    response::header(out, "Content-Type", b"application/json");
    head.content_length(out, body.len() as u64);
    let answer = req.finish(head, out);
    out.extend_from_slice(&body);
    Ok(answer)
}

/// Lists or removes the leftover temporary files (on a thread of its own).
fn walk_temp(root: &std::path::Path, op: TempOp, age: Duration) -> Vec<u8> {
    match op {
        TempOp::List => list_json(root, age),
        TempOp::Sweep => {
            let (removed, failed) = sweep::remove(root, age, &mut 0);
            crate::admin::metrics::METRICS.temp_removed.inc_by(removed);
            format!("{{\"removed\":{removed},\"failed\":{failed}}}\n").into_bytes()
        }
    }
}

/// One line per file, as the recursive listing writes them.
fn list_json(root: &std::path::Path, age: Duration) -> Vec<u8> {
    let found: Vec<Leftover> = sweep::leftovers(root, age, &mut 0);
    let mut out = b"[".to_vec();
    for (i, left) in found.iter().enumerate() {
        let rel = left.path.strip_prefix(root).unwrap_or(&left.path);
        let line = serde_json::json!({
            "name": rel.to_string_lossy(),
            "size": left.size,
            "mtime": left.mtime,
        });
        out.extend_from_slice(if i == 0 { b"\r\n" } else { b",\r\n" });
        out.extend_from_slice(line.to_string().as_bytes());
    }
    out.extend_from_slice(b"\r\n]\n");
    out
}

/// Runs `work` on a new thread and waits for it without blocking the runtime.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, VolumeError> {
    let (done, wait) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name("temp-walk".into())
        .spawn(move || {
            let _ = done.send(work());
        })
        .map_err(VolumeError::Io)?;
    wait.await
        .map_err(|_| VolumeError::Io(std::io::Error::other("the walk stopped")))
}
