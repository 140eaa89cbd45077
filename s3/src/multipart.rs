//! Multipart uploads. Parts go to the replicas the object will have, never
//! to the master's memory or disk: on volume-uring each part is written into
//! its slot of one staging file per replica (`.mkv-parts/<id>.data`, part N
//! at (N-1) × the size of the first full part), elsewhere (nginx, and parts
//! that fit no slot) into a staging file of its own. The upload and its
//! parts are index records, so an upload survives a master restart.
//!
//! Completing builds the object on each replica: volume-uring assembles it
//! itself — parts that sit in their slots one after the other are one range
//! of the staging file, which is cut and renamed, no byte copied; over nginx
//! the master streams the parts. Then the object is installed as an
//! overwrite is (`install`), the upload's records go in the same batch as
//! the object's, and every staging file of the upload is deleted.

use http1::{Answer, BodyKind, Conn};
use md5::{Digest, Md5};

use super::checks::Expected;
use super::error::S3Error;
use super::object::meta_from_headers;
use super::payload::{self, Payload};
use super::request::S3Req;
use super::xml::Xml;
use super::Cx;
use crate::client::fanout::Target;
use crate::error::Error;
use crate::index::{Durability, Index, Write};
use crate::meta::{self, Part, Upload};
use crate::ops::put::replicate;
use crate::placement::{key2volume, unstorable};
use crate::time;
use mkv_store::error::MasterError;

/// The least size of a part that is not the last.
pub const MIN_PART: u64 = 5 << 20;
/// Slots end before this offset of a staging file.
const MAX_SLOT_END: u64 = 1 << 40;

pub fn data_path(id: &str) -> String {
    format!("/.mkv-parts/{id}.data")
}

pub fn file_path(name: &str) -> String {
    format!("/.mkv-parts/{name}")
}

/// The upload `id`, if it is one of this request's key.
pub(super) async fn upload_of(cx: &Cx<'_>, id: &str) -> Result<Upload, Error> {
    match meta::get::<Upload>(&cx.store.index, &meta::upload_key(id)).await? {
        Some(up) if up.key() == cx.req.mkv_key => Ok(up),
        _ => Err(S3Error::no_such_upload().into()),
    }
}

pub async fn create(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    let (store, req) = (cx.store, &cx.req);
    if let Some(why) = unstorable(&req.mkv_key) {
        return Err(MasterError::Unstorable(why).into());
    }
    let meta = meta_from_headers(req)?;
    let c = &store.cluster;
    let replicas = key2volume(&req.mkv_key, &c.volumes, c.replicas, c.subvolumes);
    let id = crate::ops::install::new_id();
    let upload = Upload::new(&req.mkv_key, time::now_ms(), meta, replicas);
    meta::put(
        &store.index,
        meta::upload_key(&id),
        &upload,
        Durability::Synced,
    )
    .await?;
    let mut x = Xml::new("InitiateMultipartUploadResult");
    x.elem("Bucket", &req.bucket)
        .elem("Key", &req.key_text())
        .elem("UploadId", &id);
    Ok(req.xml(
        &mut conn.wbuf,
        200,
        &x.finish("InitiateMultipartUploadResult"),
    ))
}

/// The size the part announces, when it does.
fn announced_size(req: &S3Req<'_>, decoded: Option<u64>, framing: payload::Framing) -> Option<u64> {
    match (framing, req.head.body) {
        (payload::Framing::Plain, BodyKind::Length(n)) => Some(n),
        (payload::Framing::AwsChunked { .. }, _) => decoded,
        _ => None,
    }
}

pub async fn upload_part(
    cx: &Cx<'_>,
    conn: &mut Conn,
    id: &str,
    number: u32,
) -> Result<Answer, Error> {
    let (store, req) = (cx.store, &cx.req);
    let upload = upload_of(cx, id).await?;
    let part_key = meta::part_key(id, number);
    let _lock = super::lock_key(cx, &part_key).await?;
    let (framing, decoded) = payload::framing(req)?;
    let expected = Expected::of(req, cx.signer.as_ref())?;
    let old = meta::get::<Part>(&store.index, &part_key).await?;
    let size = announced_size(req, decoded, framing);
    let slot = match size {
        Some(size) => slot_for(cx, id, number, size, old.as_ref()).await?,
        None => None,
    };
    let file = format!("{id}.{number}.{}", crate::ops::install::new_id());
    let (targets, uses_file) = part_targets(cx, &upload, id, slot, &file).await;
    if req.head.expect_continue {
        conn.wbuf.extend_from_slice(http1::response::CONTINUE);
    }
    let mut body = Payload::new(req.head.body, framing, cx.signer.as_ref(), decoded);
    let mut landed = Vec::new();
    let check = |s: &_, src: &Payload<'_>| expected.check(s, src);
    let sent = replicate(
        cx.store,
        conn,
        &targets,
        &mut body,
        expected.digests(),
        check,
        &mut landed,
    )
    .await;
    let sent = match sent {
        Ok(sent) => sent,
        Err(e) => {
            if uses_file {
                remove(cx, &upload.replicas, &[file_path(&file)]).await;
            }
            return Err(e);
        }
    };
    let part = Part {
        size: sent.bytes,
        etag: sent.md5().unwrap_or_default(),
        crc32: sent.crc32,
        mtime_ms: time::now_ms(),
        slot: slot.filter(|_| targets.iter().any(|t| t.offset.is_some())),
        file: uses_file.then_some(file),
    };
    record_part(cx, &upload, part_key, &part, old).await?;
    let out = &mut conn.wbuf;
    let head = req.start(out, 200);
    http1::response::header(out, "ETag", format!("\"{}\"", part.etag).as_bytes());
    for (name, value) in expected.reply_headers(&sent.sums) {
        http1::response::header(out, name, value.as_bytes());
    }
    Ok(req.finish(head, out, b""))
}

/// Records an uploaded part (synced), and removes the file of the part it
/// replaces, if it had one of its own.
async fn record_part(
    cx: &Cx<'_>,
    upload: &Upload,
    part_key: Vec<u8>,
    part: &Part,
    old: Option<Part>,
) -> Result<(), Error> {
    meta::put(&cx.store.index, part_key, part, Durability::Synced).await?;
    if let Some(old_file) = old
        .and_then(|o| o.file)
        .filter(|f| Some(f) != part.file.as_ref())
    {
        remove(cx, &upload.replicas, &[file_path(&old_file)]).await;
    }
    Ok(())
}

/// Where a part goes on each replica: its slot of the upload's staging
/// file on volume-uring replicas (when it has one), a file of its own
/// elsewhere; and whether any replica uses that file.
async fn part_targets(
    cx: &Cx<'_>,
    upload: &Upload,
    id: &str,
    slot: Option<u64>,
    file: &str,
) -> (Vec<Target>, bool) {
    let mut targets = Vec::with_capacity(upload.replicas.len());
    let mut uses_file = false;
    for replica in &upload.replicas {
        match slot {
            Some(offset) if cx.store.client.is_volume_uring(replica).await => {
                targets.push(Target {
                    offset: Some(offset),
                    ..Target::new(replica, &data_path(id))
                })
            }
            _ => {
                uses_file = true;
                targets.push(Target::new(replica, &file_path(file)));
            }
        }
    }
    (targets, uses_file)
}

/// The offset of part `number`'s slot, if the part fits one: the upload's
/// stride is the size of its first part of at least `MIN_PART` (recorded
/// before any part is written at it), and a slot is written once — a part
/// uploaded again goes to a file of its own.
async fn slot_for(
    cx: &Cx<'_>,
    id: &str,
    number: u32,
    size: u64,
    old: Option<&Part>,
) -> Result<Option<u64>, Error> {
    if old.is_some_and(|o| o.slot.is_some()) {
        return Ok(None);
    }
    let Some(stride) = stride(cx, id, size).await? else {
        return Ok(None);
    };
    let offset = u64::from(number - 1) * stride;
    Ok((size <= stride && offset + size <= MAX_SLOT_END).then_some(offset))
}

/// The upload's stride, set by this part when it is the first full one.
async fn stride(cx: &Cx<'_>, id: &str, size: u64) -> Result<Option<u64>, Error> {
    let store = cx.store;
    let key = meta::upload_key(id);
    loop {
        let Some(mut upload) = meta::get::<Upload>(&store.index, &key).await? else {
            return Err(S3Error::no_such_upload().into());
        };
        if upload.stride.is_some() || size < MIN_PART {
            return Ok(upload.stride);
        }
        if let Some(_lock) = store.locks.try_lock(&key).await? {
            // Read again under the lock: another part may have set it.
            upload = meta::get::<Upload>(&store.index, &key)
                .await?
                .ok_or_else(S3Error::no_such_upload)?;
            if upload.stride.is_none() {
                upload.stride = Some(size);
                meta::put(&store.index, key, &upload, Durability::Synced).await?;
            }
            return Ok(upload.stride);
        }
        monoio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Deletes staging files on every replica (what cannot be deleted is logged).
pub(super) async fn remove(cx: &Cx<'_>, replicas: &[String], paths: &[String]) -> bool {
    let client = &cx.store.client;
    let mut all = true;
    for replica in replicas {
        for path in paths {
            match client.delete(replica, path).await {
                Ok(r) if matches!(r.status, 200 | 204 | 404) => {}
                Ok(r) => {
                    all = false;
                    tracing::warn!(%replica, status = r.status, "could not remove a staging file");
                }
                Err(e) => {
                    all = false;
                    tracing::warn!(error = %e, "could not remove a staging file");
                }
            }
        }
    }
    all
}

/// Every part record of an upload, by number (on the calling thread).
pub fn parts(index: &Index, id: &str) -> Result<Vec<(u32, Part)>, Error> {
    let prefix = meta::parts_prefix(id);
    let mut out = Vec::new();
    let mut bad = None;
    index.scan(&prefix, b"", |k, v| {
        let number = std::str::from_utf8(&k[prefix.len()..])
            .ok()
            .and_then(|n| n.parse().ok());
        match (number, meta::decode::<Part>(k, v)) {
            (Some(n), Ok(p)) => out.push((n, p)),
            (_, Err(e)) => bad = Some(e),
            (None, _) => {}
        }
        bad.is_none()
    })?;
    match bad {
        Some(e) => Err(e.into()),
        None => Ok(out),
    }
}

/// Every staging file of an upload.
pub(super) fn staging_files(id: &str, parts: &[(u32, Part)]) -> Vec<String> {
    let mut files = vec![data_path(id)];
    files.extend(
        parts
            .iter()
            .filter_map(|(_, p)| p.file.as_deref())
            .map(file_path),
    );
    files
}

pub async fn abort(cx: &Cx<'_>, conn: &mut Conn, id: &str) -> Result<Answer, Error> {
    let upload = upload_of(cx, id).await?;
    let owned = id.to_string();
    let all = super::blocking(cx, move |index| parts(index, &owned)).await?;
    if !remove(cx, &upload.replicas, &staging_files(id, &all)).await {
        return Err(S3Error::internal("a replica could not delete the parts; try again").into());
    }
    let mut ops = vec![Write::Delete(meta::upload_key(id))];
    ops.extend(
        all.iter()
            .map(|(n, _)| Write::Delete(meta::part_key(id, *n))),
    );
    cx.store.index.apply(ops, Durability::Synced).await?;
    Ok(cx.req.empty(&mut conn.wbuf, 204))
}

/// The multipart ETag: the md5 of the parts' md5s, and their count.
pub fn multipart_etag(parts: &[&Part]) -> String {
    etag_of_parts(parts.iter().map(|p| p.etag.as_str()))
}

/// The ETag of a multipart object whose parts' ETags (md5s in hex) are
/// `etags`, in order.
pub fn etag_of_parts<'a>(etags: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = etags.len();
    let mut all = Md5::new();
    for etag in etags {
        let raw: Vec<u8> = (0..etag.len() / 2)
            .filter_map(|i| u8::from_str_radix(etag.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        all.update(&raw);
    }
    format!("{}-{n}", crate::digests::hex(&all.finalize()))
}
