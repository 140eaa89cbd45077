//! CopyObject.
//!
//! A copy is done by the store, not the client: the bytes go from a replica
//! of the source to the destination's replicas through the master (written
//! as a PUT is, or staged and installed over a live destination). A copy
//! onto itself with `x-amz-metadata-directive: REPLACE` rewrites only the
//! metadata.

use http1::{Answer, Conn};

use super::conditions::{self, Verdict};
use super::error::{Code, S3Error};
use super::get::object_meta;
use super::object::meta_from_headers;
use super::xml::Xml;
use super::Cx;
use crate::client::copy::{self, Piece};
use crate::client::fanout::{Sent, Target};
use crate::digests::Digests;
use crate::error::Error;
use crate::index::{Durability, Write};
use crate::meta::{self, Intent, ObjectMeta};
use crate::ops::install::{self, Installing, Staged};
use crate::ops::intent::{self, Earlier};
use crate::ops::put::{self, meta_of};
use crate::placement::{key2path, key2volume, replicas_in_read_order, unstorable};
use crate::record::Record;
use crate::time;
use mkv_store::error::MasterError;

/// The source named by `x-amz-copy-source`, as an mkv key.
fn source_key(cx: &Cx<'_>) -> Result<Vec<u8>, S3Error> {
    let raw = cx.req.head.header("x-amz-copy-source").unwrap_or_default();
    let raw = raw.split(|&c| c == b'?').next().unwrap_or_default();
    let mut decoded = Vec::new();
    http1::percent::decode(raw, &mut decoded)
        .map_err(|_| S3Error::invalid_argument("x-amz-copy-source is not URL-encoded"))?;
    let mut key = Vec::with_capacity(decoded.len() + 1);
    if decoded.first() != Some(&b'/') {
        key.push(b'/');
    }
    key.extend_from_slice(&decoded);
    if !key[1..].contains(&b'/') {
        return Err(S3Error::invalid_argument(
            "x-amz-copy-source must name a bucket and a key",
        ));
    }
    Ok(key)
}

pub async fn copy_object(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    let (store, req) = (cx.store, &cx.req);
    let source = source_key(cx)?;
    let dest = req.mkv_key.as_slice();
    let rec = match store.index.get(&source).await? {
        Some(r) if !r.deleted => r,
        _ => return Err(S3Error::no_such_key().into()),
    };
    let src_meta = object_meta(&store.client, &store.index, &source, &rec).await?;
    copy_preconditions(cx, &src_meta)?;
    let replace = req
        .header("x-amz-metadata-directive")
        .is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
    let mut meta = if replace {
        meta_from_headers(req)?
    } else {
        src_meta.clone()
    };
    // A copy is an object of its own, not the one a Complete made.
    meta.upload = None;
    let _lock = super::lock_key(cx, dest).await?;
    if source == dest {
        if !replace {
            return Err(S3Error::invalid_request("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.").into());
        }
        meta = ObjectMeta {
            mtime_ms: time::now_ms(),
            upload: None,
            ..src_meta.replaced_by(meta)
        };
        meta::put(
            &store.index,
            meta::object_key(dest),
            &meta,
            Durability::Synced,
        )
        .await?;
    } else {
        meta = copy_bytes(cx, &source, &rec, dest, meta).await?;
    }
    let mut x = Xml::new("CopyObjectResult");
    x.elem("LastModified", &time::iso8601(meta.mtime_ms))
        .elem("ETag", &meta.quoted_etag());
    Ok(req.xml(&mut conn.wbuf, 200, &x.finish("CopyObjectResult")))
}

/// The source's conditions: as a GET's, but what a GET answers 304 is a
/// 412 here (S3's rule).
fn copy_preconditions(cx: &Cx<'_>, meta: &ObjectMeta) -> Result<(), S3Error> {
    match conditions::evaluate(cx.req.head, &conditions::COPY_SOURCE, meta) {
        Verdict::Proceed => Ok(()),
        Verdict::NotModified | Verdict::Failed => Err(conditions::failed()),
    }
}

/// Copies the source's bytes to `dest` (from the first replica that
/// serves them whole) and records it; returns the metadata written.
async fn copy_bytes(
    cx: &Cx<'_>,
    source: &[u8],
    rec: &Record,
    dest: &[u8],
    meta: ObjectMeta,
) -> Result<ObjectMeta, Error> {
    let store = cx.store;
    if let Some(why) = unstorable(dest) {
        return Err(MasterError::Unstorable(why).into());
    }
    let c = &store.cluster;
    let replicas = key2volume(dest, &c.volumes, c.replicas, c.subvolumes);
    let (index, client) = (&store.index, &store.client);
    let old = index.get(dest).await?;
    let writing = match old {
        Some(live) if !live.deleted => {
            let stage = format!("/.mkv-parts/{}.stage", install::new_id());
            let begun = install::begin(index, client, dest, Some(live), &replicas, &stage);
            Writing::Install(begun.await?.0)
        }
        old => Writing::New(put::begin(store, dest, &replicas, old, Earlier::Unread).await?),
    };
    let path = match &writing {
        Writing::Install(i) => i.stage().to_string(),
        Writing::New(_) => key2path(dest),
    };
    let sent = match copy_from_any(cx, source, rec, &Target::each(&replicas, &path)).await {
        Ok(sent) => sent,
        Err(e) => {
            match writing {
                Writing::Install(i) => i.abort(index, client).await,
                Writing::New(w) => put::undo(store, dest, &w).await,
            }
            return Err(e);
        }
    };
    let hash = sent.md5().filter(|_| c.md5sum);
    let meta = meta_of(meta, &sent, hash.clone());
    let mut commit = vec![
        Write::Put(dest.to_vec(), Record::live(replicas.clone(), hash).encode()),
        meta::put_op(meta::object_key(dest), &meta),
    ];
    commit.extend(super::bucket::marker_op(cx).await?);
    let staged = Staged {
        path,
        len: sent.bytes,
        crc: sent.crc32,
    };
    match writing {
        Writing::Install(i) => i.finish(index, client, &staged, commit).await?,
        Writing::New(w) => {
            commit.push(intent::done_op(dest));
            if let Err(e) = index.apply_held(dest, commit, Durability::Synced).await {
                put::undo(store, dest, &w).await;
                return Err(e.into());
            }
        }
    }
    Ok(meta)
}

/// How a copy's bytes reach the destination: over a live value staged and
/// installed, else written in place as a PUT is.
enum Writing {
    Install(Installing),
    New(Intent),
}

/// Streams the source from its replicas, one after another until one
/// serves it whole.
async fn copy_from_any(
    cx: &Cx<'_>,
    source: &[u8],
    rec: &Record,
    targets: &[Target],
) -> Result<Sent, Error> {
    let path = key2path(source);
    let mut last = S3Error::new(
        Code::ServiceUnavailable,
        "No replica of the source answered.",
    )
    .into();
    for replica in replicas_in_read_order(&rec.volumes) {
        let pieces = [Piece::whole(replica, &path)];
        match copy::copy(
            &cx.store.client,
            &pieces,
            targets,
            Digests::new(true, &[]),
            |_| Ok(()),
        )
        .await
        {
            Ok(sent) => return Ok(sent),
            Err(e) => {
                tracing::warn!(error = %e, "a copy from a replica failed");
                last = e;
            }
        }
    }
    Err(last)
}
