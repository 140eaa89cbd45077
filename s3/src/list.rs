//! Listings: ListObjectsV2 (prefix, delimiter with CommonPrefixes, up to
//! 1000 keys a page, continuation tokens, start-after, encoding-type=url),
//! ListObjects v1 (marker) and ListObjectVersions (versioning is off: each
//! object once, version `null`). Keys come from the records (soft-deleted
//! ones left out); sizes, times and ETags from the objects' metadata, read
//! with a second scan that seeks from key to key. Keys under a common
//! prefix are skipped with a seek, not read. Scans run on the blocking pool.

use base64::Engine;
use http1::Answer;

mod scan;

use scan::{list, Page, Query};

use super::error::S3Error;
use super::sigv4::uri_encode;
use super::xml::Xml;
use super::Cx;
use crate::error::Error;
use crate::time;

const MAX_KEYS: usize = 1000;
/// About what one listed object takes in the XML, besides its key.
const ENTRY_BYTES: usize = 200;

/// The query of a listing request; `marker` names the parameter a page
/// starts after (v1 `marker`, versions `key-marker`).
fn query(cx: &Cx<'_>, v2: bool, marker: &str) -> Result<(Query, Option<String>), Error> {
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
async fn run(cx: &Cx<'_>, q: Query) -> Result<(Query, Page), Error> {
    let (q, page) = super::blocking(cx, move |index| list(index, &q).map(|p| (q, p))).await?;
    if page.contents.is_empty()
        && page.prefixes.is_empty()
        && !super::bucket::exists(cx, &cx.req.bucket).await?
    {
        return Err(S3Error::no_such_bucket().into());
    }
    Ok((q, page))
}

/// Whether the request asks for keys URL-encoded (`encoding-type=url`).
pub fn url_names(cx: &Cx<'_>) -> bool {
    cx.req.param("encoding-type") == Some("url")
}

/// `<tag>` with a key, prefix or marker as S3 writes it: URL-encoded
/// when `url` (nothing left to escape), else as XML text
/// (`xml::escape_key_into`).
pub fn name_elem(x: &mut Xml, tag: &str, url: bool, raw: &[u8]) {
    x.elem_with(tag, |out| name_into(url, raw, out));
}

fn name_into(url: bool, raw: &[u8], out: &mut Vec<u8>) {
    if url {
        let mut encoded = String::new();
        uri_encode(raw, true, &mut encoded);
        out.extend_from_slice(encoded.as_bytes());
    } else {
        super::xml::escape_key_into(raw, out);
    }
}

/// The head every listing shares. With `encoding-type=url`, S3 encodes the
/// echoed `Prefix` of ListObjectsV2 and ListObjectVersions but not of
/// ListObjects (v1), and clients decode accordingly: `prefix_url` says
/// which.
fn common_head(cx: &Cx<'_>, x: &mut Xml, q: &Query, page: &Page, prefix_url: bool) {
    let url = url_names(cx);
    x.elem("Name", &q.bucket);
    name_elem(x, "Prefix", url && prefix_url, &q.prefix);
    x.elem("MaxKeys", &q.max.to_string());
    if !q.delimiter.is_empty() {
        name_elem(x, "Delimiter", url, &q.delimiter);
    }
    if url_names(cx) {
        x.elem("EncodingType", "url");
    }
    x.elem("IsTruncated", if page.truncated { "true" } else { "false" });
}

fn prefixes(cx: &Cx<'_>, x: &mut Xml, page: &Page) {
    let url = url_names(cx);
    for p in &page.prefixes {
        x.open("CommonPrefixes");
        name_elem(x, "Prefix", url, p);
        x.close("CommonPrefixes");
    }
}

fn contents(cx: &Cx<'_>, x: &mut Xml, page: &Page, tag: &str) {
    let url = url_names(cx);
    x.reserve(
        page.contents
            .iter()
            .map(|e| e.key(&page.keys).len() + ENTRY_BYTES)
            .sum(),
    );
    let mut dates = time::Iso8601Run::default();
    for e in &page.contents {
        x.open(tag)
            .elem_with("Key", |out| name_into(url, e.key(&page.keys), out));
        if tag == "Version" {
            x.elem("VersionId", "null").elem("IsLatest", "true");
        }
        x.elem_with("LastModified", |out| dates.push(e.mtime_ms, out))
            .elem_with("ETag", |out| {
                out.extend_from_slice(b"&quot;");
                e.etag_into(out);
                out.extend_from_slice(b"&quot;");
            })
            .elem_with("Size", |out| {
                out.extend_from_slice(itoa::Buffer::new().format(e.size).as_bytes())
            })
            .elem("StorageClass", "STANDARD")
            .close(tag);
    }
}

pub async fn v2(cx: &Cx<'_>, conn: &mut http1::Conn) -> Result<Answer, Error> {
    let (q, token) = query(cx, true, "")?;
    let (q, page) = run(cx, q).await?;
    let mut x = Xml::new("ListBucketResult");
    common_head(cx, &mut x, &q, &page, true);
    x.elem(
        "KeyCount",
        &(page.contents.len() + page.prefixes.len()).to_string(),
    );
    if let Some(t) = &token {
        x.elem("ContinuationToken", t);
    }
    if let Some(after) = cx.req.param("start-after") {
        name_elem(&mut x, "StartAfter", url_names(cx), after.as_bytes());
    }
    if page.truncated {
        let next = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&page.next);
        x.elem("NextContinuationToken", &next);
    }
    contents(cx, &mut x, &page, "Contents");
    prefixes(cx, &mut x, &page);
    Ok(cx
        .req
        .xml(&mut conn.wbuf, 200, &x.finish("ListBucketResult")))
}

pub async fn v1(cx: &Cx<'_>, conn: &mut http1::Conn) -> Result<Answer, Error> {
    let (q, _) = query(cx, false, "marker")?;
    let (q, page) = run(cx, q).await?;
    let mut x = Xml::new("ListBucketResult");
    common_head(cx, &mut x, &q, &page, false);
    let (url, marker) = (url_names(cx), cx.req.param("marker").unwrap_or_default());
    name_elem(&mut x, "Marker", url, marker.as_bytes());
    if page.truncated {
        name_elem(&mut x, "NextMarker", url, &page.last);
    }
    contents(cx, &mut x, &page, "Contents");
    prefixes(cx, &mut x, &page);
    Ok(cx
        .req
        .xml(&mut conn.wbuf, 200, &x.finish("ListBucketResult")))
}

pub async fn versions(cx: &Cx<'_>, conn: &mut http1::Conn) -> Result<Answer, Error> {
    let (q, _) = query(cx, false, "key-marker")?;
    let (q, page) = run(cx, q).await?;
    let mut x = Xml::new("ListVersionsResult");
    common_head(cx, &mut x, &q, &page, true);
    let (url, marker) = (
        url_names(cx),
        cx.req.param("key-marker").unwrap_or_default(),
    );
    name_elem(&mut x, "KeyMarker", url, marker.as_bytes());
    x.elem("VersionIdMarker", "");
    if page.truncated {
        name_elem(&mut x, "NextKeyMarker", url, &page.last);
        x.elem("NextVersionIdMarker", "null");
    }
    contents(cx, &mut x, &page, "Version");
    prefixes(cx, &mut x, &page);
    Ok(cx
        .req
        .xml(&mut conn.wbuf, 200, &x.finish("ListVersionsResult")))
}
