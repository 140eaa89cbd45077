//! Listings: ListObjectsV2 (prefix, delimiter with CommonPrefixes, up to
//! 1000 keys a page, continuation tokens, start-after, encoding-type=url),
//! ListObjects v1 (marker) and ListObjectVersions (versioning is off: each
//! object once, version `null`). Keys come from the records (soft-deleted
//! ones left out); sizes, times and ETags from the objects' metadata, read
//! with a second scan that seeks from key to key. Keys under a common
//! prefix are skipped with a seek, not read. Scans run on the blocking pool.

use base64::Engine;

use super::error::S3Error;
use super::sigv4::uri_encode;
use super::xml::Xml;
use super::Cx;
use crate::error::MasterError;
use crate::index::{Index, Step};
use crate::meta::{self, ObjectMeta};
use crate::record::Record;
use crate::time;

const MAX_KEYS: usize = 1000;

/// What one page asks for; keys and prefixes are relative to the bucket.
struct Query {
    bucket: String,
    prefix: Vec<u8>,
    delimiter: Vec<u8>,
    /// The first key that may be listed.
    from: Vec<u8>,
    max: usize,
}

/// One page.
struct Page {
    contents: Vec<(Vec<u8>, Option<ObjectMeta>, Record)>,
    prefixes: Vec<Vec<u8>>,
    truncated: bool,
    /// Where the next page starts (a key, inclusive).
    next: Vec<u8>,
    /// The last key or prefix given (v1's NextMarker).
    last: Vec<u8>,
}

/// Lists one page (on the calling thread).
fn list(index: &Index, q: &Query) -> Result<Page, MasterError> {
    let base = format!("/{}/", q.bucket).into_bytes();
    let mut scan_prefix = base.clone();
    scan_prefix.extend_from_slice(&q.prefix);
    let mut start = base.clone();
    start.extend_from_slice(&q.from);
    let mut page = Page {
        contents: Vec::new(),
        prefixes: Vec::new(),
        truncated: false,
        next: Vec::new(),
        last: Vec::new(),
    };
    let mut bad = None;
    index.scan_steps(&scan_prefix, &start, |k, v| {
        if v.starts_with(b"DELETED") {
            return Step::Next;
        }
        let rel = &k[base.len()..];
        if page.contents.len() + page.prefixes.len() >= q.max {
            page.truncated = true;
            return Step::Stop;
        }
        let common = (!q.delimiter.is_empty())
            .then(|| find(&rel[q.prefix.len()..], &q.delimiter))
            .flatten()
            .map(|i| rel[..q.prefix.len() + i + q.delimiter.len()].to_vec());
        if let Some(common) = common {
            page.last = common.clone();
            page.next = super::bucket::successor(&common).unwrap_or_default();
            let mut seek = base.clone();
            seek.extend_from_slice(&page.next);
            page.prefixes.push(common);
            return if page.next.is_empty() {
                Step::Stop
            } else {
                Step::Seek(seek)
            };
        }
        match Record::decode(v) {
            Ok(rec) => page.contents.push((rel.to_vec(), None, rec)),
            Err(e) => {
                bad = Some(MasterError::from(e));
                return Step::Stop;
            }
        }
        page.last = rel.to_vec();
        page.next = [rel, b"\0"].concat();
        Step::Next
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    join_meta(index, &base, &mut page.contents)?;
    Ok(page)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Fills in each key's metadata with one scan of the `o` records that seeks
/// from one listed key to the next.
fn join_meta(
    index: &Index,
    base: &[u8],
    contents: &mut [(Vec<u8>, Option<ObjectMeta>, Record)],
) -> Result<(), MasterError> {
    if contents.is_empty() {
        return Ok(());
    }
    let prefix = meta::object_key(base);
    let target = |i: usize, contents: &[(Vec<u8>, Option<ObjectMeta>, Record)]| {
        let mut k = prefix.clone();
        k.extend_from_slice(&contents[i].0);
        k
    };
    let start = target(0, contents);
    let mut i = 0;
    index.scan_steps(&prefix, &start, |k, v| {
        while i < contents.len() && target(i, contents).as_slice() < k {
            i += 1;
        }
        if i == contents.len() {
            return Step::Stop;
        }
        if target(i, contents).as_slice() == k {
            contents[i].1 = meta::decode::<ObjectMeta>(k, v).ok();
            i += 1;
        }
        match i < contents.len() {
            true => {
                let next = target(i, contents);
                if next.as_slice() > k {
                    Step::Seek(next)
                } else {
                    Step::Next
                }
            }
            false => Step::Stop,
        }
    })?;
    Ok(())
}

/// The query of a listing request; `marker` names the parameter a page
/// starts after (v1 `marker`, versions `key-marker`).
fn query(cx: &Cx<'_>, v2: bool, marker: &str) -> Result<(Query, Option<String>), MasterError> {
    let req = &cx.req;
    let max = match req.param("max-keys") {
        None => MAX_KEYS,
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| S3Error::invalid_argument("max-keys must be a number"))?
            .min(MAX_KEYS),
    };
    let prefix = req.param("prefix").unwrap_or_default().as_bytes().to_vec();
    let delimiter = req
        .param("delimiter")
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let token = if v2 {
        req.param("continuation-token").map(str::to_string)
    } else {
        None
    };
    let from = match (&token, req.param(if v2 { "start-after" } else { marker })) {
        (Some(t), _) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .map_err(|_| {
                S3Error::invalid_argument("The continuation token provided is incorrect")
            })?,
        // A marker that is a common prefix: after every key under it.
        (None, Some(after)) if !delimiter.is_empty() && after.as_bytes().ends_with(&delimiter) => {
            super::bucket::successor(after.as_bytes()).unwrap_or_default()
        }
        (None, Some(after)) if !after.is_empty() => [after.as_bytes(), b"\0"].concat(),
        _ => Vec::new(),
    };
    let q = Query {
        bucket: req.bucket.clone(),
        prefix,
        delimiter,
        from,
        max,
    };
    Ok((q, token))
}

/// Runs a listing; an empty page of a bucket that does not exist is NoSuchBucket.
async fn run(cx: &Cx<'_>, q: Query) -> Result<(Query, Page), MasterError> {
    let (q, page) = super::blocking(cx, move |index| list(index, &q).map(|p| (q, p))).await?;
    if page.contents.is_empty()
        && page.prefixes.is_empty()
        && !super::bucket::exists(cx, &cx.req.bucket).await?
    {
        return Err(S3Error::no_such_bucket().into());
    }
    Ok((q, page))
}

/// Text for a key or prefix in the answer (URL-encoded when asked).
fn name(cx: &Cx<'_>, raw: &[u8]) -> String {
    if cx.req.param("encoding-type") == Some("url") {
        let mut out = String::new();
        uri_encode(raw, true, &mut out);
        out
    } else {
        String::from_utf8_lossy(raw).into_owned()
    }
}

/// The parts of an entry: last modified, ETag, size.
fn entry(meta: &Option<ObjectMeta>, rec: &Record) -> (String, String, u64) {
    match meta
        .as_ref()
        .filter(|m| m.hash == rec.hash || rec.hash.is_none())
    {
        Some(m) => (time::iso8601(m.mtime_ms), m.quoted_etag(), m.size),
        // Written by the original master: no metadata kept.
        None => (
            time::iso8601(0),
            format!("\"{}\"", rec.hash.clone().unwrap_or_default()),
            0,
        ),
    }
}

fn common_head(cx: &Cx<'_>, x: &mut Xml, q: &Query, page: &Page) {
    x.elem("Name", &q.bucket)
        .elem("Prefix", &name(cx, &q.prefix))
        .elem("MaxKeys", &q.max.to_string());
    if !q.delimiter.is_empty() {
        x.elem("Delimiter", &name(cx, &q.delimiter));
    }
    if cx.req.param("encoding-type") == Some("url") {
        x.elem("EncodingType", "url");
    }
    x.elem("IsTruncated", if page.truncated { "true" } else { "false" });
}

fn prefixes(cx: &Cx<'_>, x: &mut Xml, page: &Page) {
    for p in &page.prefixes {
        x.open("CommonPrefixes")
            .elem("Prefix", &name(cx, p))
            .close("CommonPrefixes");
    }
}

fn contents(cx: &Cx<'_>, x: &mut Xml, page: &Page, tag: &str) {
    for (key, meta, rec) in &page.contents {
        let (modified, etag, size) = entry(meta, rec);
        x.open(tag).elem("Key", &name(cx, key));
        if tag == "Version" {
            x.elem("VersionId", "null").elem("IsLatest", "true");
        }
        x.elem("LastModified", &modified)
            .elem("ETag", &etag)
            .elem("Size", &size.to_string())
            .elem("StorageClass", "STANDARD")
            .close(tag);
    }
}

pub async fn v2(cx: &Cx<'_>, conn: &mut http1::Conn) -> Result<(), MasterError> {
    let (q, token) = query(cx, true, "")?;
    let (q, page) = run(cx, q).await?;
    let mut x = Xml::new("ListBucketResult");
    common_head(cx, &mut x, &q, &page);
    x.elem(
        "KeyCount",
        &(page.contents.len() + page.prefixes.len()).to_string(),
    );
    if let Some(t) = &token {
        x.elem("ContinuationToken", t);
    }
    if let Some(after) = cx.req.param("start-after") {
        x.elem("StartAfter", &name(cx, after.as_bytes()));
    }
    if page.truncated {
        let next = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&page.next);
        x.elem("NextContinuationToken", &next);
    }
    contents(cx, &mut x, &page, "Contents");
    prefixes(cx, &mut x, &page);
    cx.req
        .xml(&mut conn.wbuf, 200, &x.finish("ListBucketResult"));
    Ok(())
}

pub async fn v1(cx: &Cx<'_>, conn: &mut http1::Conn) -> Result<(), MasterError> {
    let (q, _) = query(cx, false, "marker")?;
    let (q, page) = run(cx, q).await?;
    let mut x = Xml::new("ListBucketResult");
    common_head(cx, &mut x, &q, &page);
    x.elem(
        "Marker",
        &name(cx, cx.req.param("marker").unwrap_or_default().as_bytes()),
    );
    if page.truncated {
        x.elem("NextMarker", &name(cx, &page.last));
    }
    contents(cx, &mut x, &page, "Contents");
    prefixes(cx, &mut x, &page);
    cx.req
        .xml(&mut conn.wbuf, 200, &x.finish("ListBucketResult"));
    Ok(())
}

pub async fn versions(cx: &Cx<'_>, conn: &mut http1::Conn) -> Result<(), MasterError> {
    let (q, _) = query(cx, false, "key-marker")?;
    let (q, page) = run(cx, q).await?;
    let mut x = Xml::new("ListVersionsResult");
    common_head(cx, &mut x, &q, &page);
    x.elem(
        "KeyMarker",
        &name(
            cx,
            cx.req.param("key-marker").unwrap_or_default().as_bytes(),
        ),
    )
    .elem("VersionIdMarker", "");
    if page.truncated {
        x.elem("NextKeyMarker", &name(cx, &page.last))
            .elem("NextVersionIdMarker", "null");
    }
    contents(cx, &mut x, &page, "Version");
    prefixes(cx, &mut x, &page);
    cx.req
        .xml(&mut conn.wbuf, 200, &x.finish("ListVersionsResult"));
    Ok(())
}
