//! PutObject (GetObject and HeadObject are in `get`, the deletes in
//! `delete`).
//!
//! A PUT to a key without a live value is the plain API's PUT
//! ([`crate::ops::put::write_new`]); over a live value the new one is
//! staged on the replicas first and installed only once all have it
//! (`install`), so a failed overwrite leaves the old value whole.

use http1::{response, Answer, BodyKind, Conn};

use super::checks::Expected;
use super::conditions;
use super::error::{Code, S3Error};
use super::get::object_meta;
use super::payload::{self, Payload};
use super::request::S3Req;
use super::Cx;
use crate::client::fanout::{Sent, Target};
use crate::error::Error;
use crate::index::Write;
use crate::meta::{self, ObjectMeta};
use crate::ops::install::{self, Staged};
use crate::ops::intent::Earlier;
use crate::ops::put::{meta_of, replicate, write_new, NewValue, Source, Start};
use crate::placement::key2volume;
use crate::record::Record;

/// Headers kept with an object and given back with it.
pub const STORED_HEADERS: [&str; 5] = [
    "content-disposition",
    "content-encoding",
    "cache-control",
    "content-language",
    "expires",
];
/// The most `x-amz-meta-*` an object may carry, names and values together.
const MAX_USER_META: usize = 2048;

/// The content type, stored headers and user metadata a request gives.
pub fn meta_from_headers(req: &S3Req<'_>) -> Result<ObjectMeta, S3Error> {
    let user = req.head.headers().filter_map(|(name, value)| {
        let short = name
            .get(..11)
            .filter(|p| p.eq_ignore_ascii_case(b"x-amz-meta-"))
            .map(|_| &name[11..])?;
        let short = String::from_utf8_lossy(short).to_ascii_lowercase();
        Some((short, String::from_utf8_lossy(value).into_owned()))
    });
    meta_from(|name| req.header(name), user)
}

/// The content type, stored headers and user metadata from `get` (a value
/// by lower-case name) and `user` (`x-amz-meta-*`, the prefix taken off):
/// a request's headers, or a POST form's fields.
pub fn meta_from(
    get: impl Fn(&str) -> Option<String>,
    user: impl Iterator<Item = (String, String)>,
) -> Result<ObjectMeta, S3Error> {
    let mut meta = ObjectMeta {
        content_type: get("content-type"),
        ..ObjectMeta::default()
    };
    for name in STORED_HEADERS {
        let Some(mut value) = get(name) else {
            continue;
        };
        if name == "content-encoding" {
            value = value
                .split(',')
                .map(str::trim)
                .filter(|t| !t.eq_ignore_ascii_case("aws-chunked"))
                .collect::<Vec<_>>()
                .join(", ");
        }
        if !value.is_empty() {
            meta.headers.push((name.to_string(), value));
        }
    }
    let mut size = 0;
    for (short, value) in user {
        size += short.len() + value.len();
        meta.user.push((short, value));
    }
    if size > MAX_USER_META {
        return Err(S3Error::new(
            Code::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    Ok(meta)
}

/// PutObject.
pub async fn put(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    let (store, req) = (cx.store, &cx.req);
    let key = req.mkv_key.as_slice();
    let _lock = super::lock_key(cx, key).await?;
    if req.head.body == BodyKind::Empty {
        return Err(S3Error::new(
            Code::MissingContentLength,
            "You must provide the Content-Length HTTP header.",
        )
        .into());
    }
    let meta = meta_from_headers(req)?;
    let (framing, decoded) = payload::framing(req)?;
    let expected = Expected::of(req, cx.signer.as_ref())?;
    let old = store.index.get(key).await?;
    check_write_conditions(cx, old.as_ref()).await?;
    if req.head.expect_continue {
        conn.wbuf.extend_from_slice(response::CONTINUE);
    }
    let mut body = Payload::new(req.head.body, framing, cx.signer.as_ref(), decoded);
    let (sent, meta) = store_value(cx, conn, key, old, &mut body, &expected, meta).await?;
    let out = &mut conn.wbuf;
    let head = req.start(out, 200);
    response::header(out, "ETag", meta.quoted_etag().as_bytes());
    for (name, value) in expected.reply_headers(&sent.sums) {
        response::header(out, name, value.as_bytes());
    }
    Ok(req.finish(head, out, b""))
}

/// Streams `source` into `key` (whose record, under the caller's lock, is
/// `old`): a new value, or one staged and installed over a live one.
pub async fn store_value<S: Source<Error = Error>>(
    cx: &Cx<'_>,
    conn: &mut Conn,
    key: &[u8],
    old: Option<Record>,
    source: &mut S,
    expected: &Expected,
    meta: ObjectMeta,
) -> Result<(Sent, ObjectMeta), Error> {
    match old {
        Some(rec) if !rec.deleted => overwrite(cx, conn, key, rec, source, expected, meta).await,
        old => {
            let extra = super::bucket::marker_op(cx).await?.into_iter().collect();
            let new = NewValue {
                key,
                start: Start::Begin {
                    old,
                    earlier: Earlier::Unread,
                },
                ends: None,
                meta,
                extra,
            };
            let check = |s: &_, src: &S| expected.check(s, src);
            write_new(cx.store, conn, new, source, expected.digests(), check).await
        }
    }
}

/// A write's `If-None-Match` / `If-Match` (`conditions::check_write`)
/// against the key's record as it is under the write's lock, `old`.
pub async fn check_write_conditions(cx: &Cx<'_>, old: Option<&Record>) -> Result<(), Error> {
    if !conditions::is_conditional_write(cx.req.head) {
        return Ok(());
    }
    let (store, key) = (cx.store, cx.req.mkv_key.as_slice());
    let current = match old.filter(|r| !r.deleted) {
        Some(rec) => Some(object_meta(&store.client, &store.index, key, rec).await?),
        None => None,
    };
    Ok(conditions::check_write(cx.req.head, current.as_ref())?)
}

/// A new value over a live one: staged, then installed.
async fn overwrite<S: Source<Error = Error>>(
    cx: &Cx<'_>,
    conn: &mut Conn,
    key: &[u8],
    old: Record,
    source: &mut S,
    expected: &Expected,
    meta: ObjectMeta,
) -> Result<(Sent, ObjectMeta), Error> {
    let store = cx.store;
    let c = &store.cluster;
    let replicas = key2volume(key, &c.volumes, c.replicas, c.subvolumes);
    let (index, client) = (&store.index, &store.client);
    let stage = format!("/.mkv-parts/{}.stage", install::new_id());
    let (installing, _) = install::begin(index, client, key, Some(old), &replicas, &stage).await?;
    let targets = Target::each(&replicas, installing.stage());
    let mut landed = Vec::new();
    let check = |s: &_, src: &S| expected.check(s, src);
    let staged = replicate(
        store,
        conn,
        &targets,
        source,
        expected.digests(),
        check,
        &mut landed,
    )
    .await;
    let sent = match staged {
        Ok(sent) => sent,
        Err(e) => {
            installing.abort(index, client).await;
            return Err(e);
        }
    };
    let hash = sent.md5().filter(|_| c.md5sum);
    let meta = meta_of(meta, &sent, hash.clone());
    let mut commit = vec![
        Write::Put(key.to_vec(), Record::live(replicas.clone(), hash).encode()),
        meta::put_op(meta::object_key(key), &meta),
    ];
    commit.extend(super::bucket::marker_op(cx).await?);
    let staged = Staged {
        path: stage,
        len: sent.bytes,
        crc: sent.crc32,
    };
    installing.finish(index, client, &staged, commit).await?;
    Ok((sent, meta))
}
