//! GetObject and HeadObject: S3 clients do not follow redirects, so the
//! master answers with the bytes themselves, streamed from a replica that
//! answers (tried in random order, falling over to the next before the
//! first byte is sent), through two buffers of 1 MiB: one is sent while
//! the next is read. Ranges, conditional requests and the `response-*`
//! overrides are answered here; HEAD touches no volume when the object's
//! metadata is in the index.

use http1::range::{self, Span};
use http1::{response, Answer, Conn};

use super::conditions::{self, Verdict};
use super::error::{Code, S3Error};
use super::request::S3Req;
use super::Cx;
use crate::client::{Download, VolumeClient};
use crate::error::Error;
use crate::meta::{self, ObjectMeta};
use crate::placement::{key2path, replicas_in_read_order};
use crate::record::Record;
use crate::time;
use mkv_store::error::MasterError;

/// Bytes relayed per read from the volume.
const RELAY_CHUNK: usize = 1024 * 1024;

/// `response-*` query parameters and the headers they set.
const OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "Content-Type"),
    ("response-content-disposition", "Content-Disposition"),
    ("response-content-encoding", "Content-Encoding"),
    ("response-content-language", "Content-Language"),
    ("response-cache-control", "Cache-Control"),
    ("response-expires", "Expires"),
];

pub async fn serve(cx: &Cx<'_>, conn: &mut Conn, head_only: bool) -> Result<Answer, Error> {
    let (store, req) = (cx.store, &cx.req);
    let key = req.mkv_key.as_slice();
    let rec = match store.index.get(key).await? {
        Some(rec) if !rec.deleted => rec,
        _ => return Err(super::bucket::missing_object(cx).await),
    };
    let meta = object_meta(&store.client, &store.index, key, &rec).await?;
    if let Some(not_modified) = preconditions(req, &meta)? {
        let out = &mut conn.wbuf;
        let head = req.start(out, not_modified);
        response::header(out, "ETag", meta.quoted_etag().as_bytes());
        response::header(
            out,
            "Last-Modified",
            time::http_date(meta.mtime_ms).as_bytes(),
        );
        return Ok(req.end(head, out));
    }
    let span = match req.head.header("range") {
        None => Span::Full,
        range => range::resolve(range, meta.size),
    };
    let (code, start, len) = match span {
        Span::Full => (200, 0, meta.size),
        Span::Part { start, end } => (206, start, end - start + 1),
        Span::Unsatisfiable => {
            return Err(
                S3Error::new(Code::InvalidRange, "The requested range is not satisfiable").into(),
            )
        }
    };
    if head_only || len == 0 {
        return Ok(write_head(req, &mut conn.wbuf, &meta, code, (start, len)));
    }
    let range = (code == 206).then(|| format!("bytes={start}-{}", start + len - 1));
    let mut download = open_replica(&store.client, &rec, key, range.as_deref(), len).await?;
    let answer = write_head(req, &mut conn.wbuf, &meta, code, (start, len));
    conn.flush().await?;
    relay(conn, &mut download).await?;
    download.done();
    Ok(answer)
}

/// The object's metadata: from the index when it is there and belongs to
/// this record, else from a replica's answer to a HEAD (a key the plain
/// API or the original master wrote).
pub async fn object_meta(
    client: &VolumeClient,
    index: &crate::index::Index,
    key: &[u8],
    rec: &Record,
) -> Result<ObjectMeta, Error> {
    if let Some(meta) = meta::get::<ObjectMeta>(index, &meta::object_key(key)).await? {
        if meta.hash == rec.hash || rec.hash.is_none() {
            return Ok(meta);
        }
    }
    let path = key2path(key);
    for replica in &rec.volumes {
        match client.head(replica, &path).await {
            Ok(r) if r.status == 200 => {
                return Ok(ObjectMeta {
                    size: r.content_length.unwrap_or_default(),
                    mtime_ms: r.last_modified.unwrap_or_default() * 1000,
                    etag: rec.hash.clone().unwrap_or_default(),
                    hash: rec.hash.clone(),
                    ..ObjectMeta::default()
                })
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "replica did not answer a HEAD"),
        }
    }
    Err(unavailable())
}

fn unavailable() -> Error {
    S3Error::new(
        Code::ServiceUnavailable,
        "No replica of the object answered; please try again.",
    )
    .into()
}

/// A 304 or a 412 for the conditional headers, in RFC 9110's order.
fn preconditions(req: &S3Req<'_>, meta: &ObjectMeta) -> Result<Option<u16>, S3Error> {
    match conditions::evaluate(req.head, &conditions::READ, meta) {
        Verdict::Proceed => Ok(None),
        Verdict::NotModified => Ok(Some(304)),
        Verdict::Failed => Err(conditions::failed()),
    }
}

/// The answer's head: status, length, validators, type, stored headers and
/// user metadata, with the `response-*` overrides.
fn write_head(
    req: &S3Req<'_>,
    out: &mut Vec<u8>,
    meta: &ObjectMeta,
    code: u16,
    (start, len): (u64, u64),
) -> Answer {
    let mut head = req.start(out, code);
    let content_type = meta
        .content_type
        .as_deref()
        .unwrap_or("binary/octet-stream");
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", content_type)];
    for (name, value) in &meta.headers {
        headers.push((name, value));
    }
    for (param, header) in OVERRIDES {
        if let Some(v) = req.param(param) {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(header));
            headers.push((header, v));
        }
    }
    for (name, value) in headers {
        response::header(out, name, value.as_bytes());
    }
    for (name, value) in &meta.user {
        response::header(out, &format!("x-amz-meta-{name}"), value.as_bytes());
    }
    response::header(out, "ETag", meta.quoted_etag().as_bytes());
    response::header(
        out,
        "Last-Modified",
        time::http_date(meta.mtime_ms).as_bytes(),
    );
    response::header(out, "Accept-Ranges", b"bytes");
    if code == 206 {
        let range = format!("bytes {start}-{}/{}", start + len - 1, meta.size);
        response::header(out, "Content-Range", range.as_bytes());
    }
    head.content_length(out, len);
    req.end(head, out)
}

/// A GET of the value (or of `range`) from the first replica, in random
/// order, that answers it whole.
async fn open_replica<'c>(
    client: &'c VolumeClient,
    rec: &Record,
    key: &[u8],
    range: Option<&str>,
    len: u64,
) -> Result<Download<'c>, Error> {
    let path = key2path(key);
    let want = if range.is_some() { 206 } else { 200 };
    for replica in replicas_in_read_order(&rec.volumes) {
        match client.start_get_range(replica, &path, range).await {
            Ok(d) if d.reply().status == want && d.reply().content_length == Some(len) => {
                return Ok(d)
            }
            Ok(d) => {
                tracing::warn!(%replica, status = d.reply().status, "replica cannot serve the object")
            }
            Err(e) => tracing::warn!(error = %e, "replica did not answer a GET"),
        }
    }
    Err(unavailable())
}

/// Sends the body as it arrives: the next piece is read while the last one
/// goes out. A failure here comes after the head: the connection can only
/// be closed (the client sees a short body).
async fn relay(conn: &mut Conn, download: &mut Download<'_>) -> Result<(), Error> {
    let broken = |e: crate::client::ClientError| {
        tracing::warn!(error = %e, "a replica failed in the middle of a GET");
        MasterError::Http(http1::HttpError::Io(std::io::Error::other(e.to_string())))
    };
    // Two buffers, each filled while the other is sent, and reused: fresh
    // memory for each piece would fault its pages in every time.
    let mut piece = download
        .fill(Vec::with_capacity(RELAY_CHUNK))
        .await
        .map_err(broken)?;
    let mut spare = Vec::with_capacity(RELAY_CHUNK);
    while !piece.is_empty() {
        if download.is_done() {
            conn.send(piece).await?;
            break;
        }
        let (sent, next) = monoio::join!(conn.send(piece), download.fill(spare));
        spare = sent?;
        piece = next.map_err(broken)?;
    }
    Ok(())
}
