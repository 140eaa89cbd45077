//! Listings: ListObjectsV2 (prefix, delimiter with CommonPrefixes, up to
//! 1000 keys a page, continuation tokens, start-after, encoding-type=url),
//! ListObjects v1 (marker) and ListObjectVersions (versioning is off: each
//! object once, version `null`). Keys come from the records (soft-deleted
//! ones left out); sizes, times and ETags from the objects' metadata, read
//! with a second scan that seeks from key to key. Keys under a common
//! prefix are skipped with a seek, not read. Scans run on the blocking pool.

use base64::Engine;

use super::error::S3Error;
use super::listed::Listed;
use super::sigv4::uri_encode;
use super::xml::Xml;
use super::Cx;
use crate::error::MasterError;
use crate::index::{Index, Step};
use crate::meta::{self, ObjectMeta};
use crate::record::Record;
use crate::time;

const MAX_KEYS: usize = 1000;
/// About what one listed object takes in the XML, besides its key.
const ENTRY_BYTES: usize = 200;

/// What one page asks for; keys and prefixes are relative to the bucket.
struct Query {
    bucket: String,
    prefix: Vec<u8>,
    delimiter: Vec<u8>,
    /// The first key that may be listed.
    from: Vec<u8>,
    max: usize,
}

/// A listed object: its key (relative to the bucket) and what a listing
/// says of it.
struct Entry {
    /// Where the key is in the page's `keys`.
    key: (usize, usize),
    /// The record's md5, when it has one.
    hash: Option<[u8; 32]>,
    size: u64,
    mtime_ms: u64,
    /// Unquoted, when it is not the record's md5: how a multipart object's
    /// was made, or the one its metadata gives.
    etag: Option<String>,
}

impl Entry {
    fn new(keys: &mut Vec<u8>, key: &[u8], record: &[u8]) -> Result<Entry, MasterError> {
        let hash = Record::hash_of(record)?.and_then(|h| h.as_bytes().try_into().ok());
        keys.extend_from_slice(key);
        Ok(Entry {
            key: (keys.len() - key.len(), keys.len()),
            hash,
            size: 0,
            mtime_ms: 0,
            etag: None,
        })
    }

    fn key<'k>(&self, keys: &'k [u8]) -> &'k [u8] {
        &keys[self.key.0..self.key.1]
    }

    /// Writes the ETag, without quotes, into XML text.
    fn etag_into(&self, out: &mut Vec<u8>) {
        match (&self.etag, &self.hash) {
            (Some(e), _) => super::xml::escape_into(e, out),
            // The hash was checked to be hex: nothing to escape.
            (None, Some(h)) => out.extend_from_slice(h),
            (None, None) => {}
        }
    }

    /// Takes the size, time and ETag from the object's metadata, unless the
    /// original master has written the key since (its record's md5 differs).
    fn set_meta(&mut self, raw: &[u8]) {
        let Some(m) = Listed::decode(raw) else {
            return;
        };
        if let Some(mine) = &self.hash {
            if m.hash.as_deref().map(str::as_bytes) != Some(mine.as_slice()) {
                return;
            }
        }
        self.size = m.size;
        self.mtime_ms = m.mtime_ms;
        if m.etag.is_empty() {
            let made = ObjectMeta {
                size: m.size,
                mtime_ms: m.mtime_ms,
                ..ObjectMeta::default()
            };
            self.etag = Some(made.quoted_etag().trim_matches('"').to_string());
        } else if self.hash.as_ref().map(|h| h.as_slice()) != Some(m.etag.as_bytes()) {
            self.etag = Some(m.etag.into_owned());
        }
    }
}

/// One page.
struct Page {
    contents: Vec<Entry>,
    /// The listed keys, one after the other (one allocation a page).
    keys: Vec<u8>,
    prefixes: Vec<Vec<u8>>,
    truncated: bool,
    /// Where the next page starts (a key, inclusive).
    next: Vec<u8>,
    /// The last key or prefix given (v1's NextMarker).
    last: Vec<u8>,
}

/// Lists one page (on the calling thread). The scans' callbacks do little:
/// the key, and the md5 from its record, are copied; the metadata records
/// are copied into one buffer and decoded afterwards.
fn list(index: &Index, q: &Query) -> Result<Page, MasterError> {
    let base = format!("/{}/", q.bucket).into_bytes();
    let scan_prefix = [&base[..], &q.prefix].concat();
    let start = [&base[..], &q.from].concat();
    let mut contents: Vec<Entry> = Vec::new();
    let mut keys: Vec<u8> = Vec::new();
    let mut bad = None;
    let mut prefixes: Vec<Vec<u8>> = Vec::new();
    let (mut truncated, mut last_is_prefix) = (false, false);
    index.scan_steps(&scan_prefix, &start, |k, v| {
        if v.starts_with(b"DELETED") {
            return Step::Next;
        }
        let rel = &k[base.len()..];
        if contents.len() + prefixes.len() >= q.max {
            truncated = true;
            return Step::Stop;
        }
        let common = (!q.delimiter.is_empty())
            .then(|| find(&rel[q.prefix.len()..], &q.delimiter))
            .flatten()
            .map(|i| &rel[..q.prefix.len() + i + q.delimiter.len()]);
        let Some(common) = common else {
            match Entry::new(&mut keys, rel, v) {
                Ok(e) => contents.push(e),
                Err(e) => {
                    bad = Some(e);
                    return Step::Stop;
                }
            }
            last_is_prefix = false;
            return Step::Next;
        };
        prefixes.push(common.to_vec());
        last_is_prefix = true;
        // Every key under the prefix is skipped with one seek.
        match super::bucket::successor(common) {
            Some(after) => Step::Seek([&base[..], &after].concat()),
            None => Step::Stop,
        }
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    join_meta(index, &base, &keys, &mut contents)?;
    let (last, next) = match (last_is_prefix, prefixes.last(), contents.last()) {
        (true, Some(p), _) => (p.clone(), super::bucket::successor(p).unwrap_or_default()),
        (false, _, Some(e)) => (e.key(&keys).to_vec(), [e.key(&keys), b"\0"].concat()),
        _ => (Vec::new(), Vec::new()),
    };
    Ok(Page {
        contents,
        keys,
        prefixes,
        truncated,
        next,
        last,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Fills in each key's metadata with one scan of the `o` records. Listed
/// keys' records are usually next to each other, so the scan steps from one
/// to the next, and seeks only past a run of records it does not need.
fn join_meta(
    index: &Index,
    base: &[u8],
    keys: &[u8],
    contents: &mut [Entry],
) -> Result<(), MasterError> {
    const MISSES_BEFORE_SEEK: usize = 4;
    let Some(first) = contents.first() else {
        return Ok(());
    };
    let prefix = meta::object_key(base);
    let target = |key: &[u8]| [&prefix[..], key].concat();
    // The records found, copied into one buffer: (entry, start, end).
    let mut arena: Vec<u8> = Vec::with_capacity(contents.len() * 128);
    let mut found: Vec<(usize, usize, usize)> = Vec::with_capacity(contents.len());
    let (mut i, mut misses) = (0, 0);
    index.scan_steps(&prefix, &target(first.key(keys)), |k, v| {
        let rel = &k[prefix.len()..];
        while i < contents.len() && contents[i].key(keys) < rel {
            i += 1;
        }
        if i == contents.len() {
            return Step::Stop;
        }
        if contents[i].key(keys) == rel {
            found.push((i, arena.len(), arena.len() + v.len()));
            arena.extend_from_slice(v);
            i += 1;
            misses = 0;
        } else {
            misses += 1;
        }
        match contents.get(i) {
            None => Step::Stop,
            Some(e) if misses >= MISSES_BEFORE_SEEK && e.key(keys) > rel => {
                misses = 0;
                Step::Seek(target(e.key(keys)))
            }
            Some(_) => Step::Next,
        }
    })?;
    for (i, start, end) in found {
        contents[i].set_meta(&arena[start..end]);
    }
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

/// Text for a key or prefix in the answer (URL-encoded when asked), not yet
/// escaped for XML.
fn name(cx: &Cx<'_>, raw: &[u8]) -> String {
    if url_names(cx) {
        let mut out = String::new();
        uri_encode(raw, true, &mut out);
        out
    } else {
        String::from_utf8_lossy(raw).into_owned()
    }
}

fn url_names(cx: &Cx<'_>) -> bool {
    cx.req.param("encoding-type") == Some("url")
}

/// Appends a key or prefix to element text: URL-encoded (nothing left to
/// escape), or escaped, with any bytes that are not UTF-8 as U+FFFD.
fn name_into(url: bool, raw: &[u8], out: &mut Vec<u8>) {
    if url {
        let mut encoded = String::new();
        uri_encode(raw, true, &mut encoded);
        out.extend_from_slice(encoded.as_bytes());
    } else {
        super::xml::escape_bytes_into(raw, out);
    }
}

fn common_head(cx: &Cx<'_>, x: &mut Xml, q: &Query, page: &Page) {
    x.elem("Name", &q.bucket)
        .elem("Prefix", &name(cx, &q.prefix))
        .elem("MaxKeys", &q.max.to_string());
    if !q.delimiter.is_empty() {
        x.elem("Delimiter", &name(cx, &q.delimiter));
    }
    if url_names(cx) {
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
    let url = url_names(cx);
    x.reserve(
        page.contents
            .iter()
            .map(|e| e.key.1 - e.key.0 + ENTRY_BYTES)
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
