//! One listing page read from the index: the keys from the page's start
//! (soft-deleted ones left out, a common prefix taken once and skipped with
//! a seek), then their metadata records with a second scan that steps from
//! one to the next.

use crate::error::Error;
use crate::index::{Index, Step};
use crate::meta::Listed;
use crate::meta::{self, ObjectMeta};
use crate::record::Record;

/// What one page asks for; keys and prefixes are relative to the bucket.
pub(super) struct Query {
    pub(super) bucket: String,
    pub(super) prefix: Vec<u8>,
    pub(super) delimiter: Vec<u8>,
    /// The first key that may be listed.
    pub(super) from: Vec<u8>,
    pub(super) max: usize,
}

/// A listed object: its key (relative to the bucket) and what a listing
/// says of it.
pub(super) struct Entry {
    /// Where the key is in the page's `keys`.
    key: (usize, usize),
    /// The record's md5, when it has one.
    hash: Option<[u8; 32]>,
    pub(super) size: u64,
    pub(super) mtime_ms: u64,
    /// Unquoted, when it is not the record's md5: how a multipart object's
    /// was made, or the one its metadata gives.
    etag: Option<String>,
}

impl Entry {
    fn new(keys: &mut Vec<u8>, key: &[u8], record: &[u8]) -> Result<Entry, Error> {
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

    pub(super) fn key<'k>(&self, keys: &'k [u8]) -> &'k [u8] {
        &keys[self.key.0..self.key.1]
    }

    /// Writes the ETag, without quotes, into XML text.
    pub(super) fn etag_into(&self, out: &mut Vec<u8>) {
        match (&self.etag, &self.hash) {
            (Some(e), _) => crate::xml::escape_into(e, out),
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
pub(super) struct Page {
    pub(super) contents: Vec<Entry>,
    /// The listed keys, one after the other (one allocation a page).
    pub(super) keys: Vec<u8>,
    pub(super) prefixes: Vec<Vec<u8>>,
    pub(super) truncated: bool,
    /// Where the next page starts (a key, inclusive).
    pub(super) next: Vec<u8>,
    /// The last key or prefix given (v1's NextMarker).
    pub(super) last: Vec<u8>,
}

/// Lists one page (on the calling thread). The scans' callbacks do little:
/// the key, and the md5 from its record, are copied; the metadata records
/// are copied into one buffer and decoded afterwards.
pub(super) fn list(index: &Index, q: &Query) -> Result<Page, Error> {
    let base = format!("/{}/", q.bucket).into_bytes();
    let scan_prefix = [&base[..], &q.prefix].concat();
    let start = [&base[..], &q.from].concat();
    let mut contents: Vec<Entry> = Vec::new();
    let mut keys: Vec<u8> = Vec::new();
    let mut bad = None;
    let mut prefixes: Vec<Vec<u8>> = Vec::new();
    let (mut truncated, mut last_is_prefix) = (false, false);
    index.scan_steps(&scan_prefix, &start, |k, v| {
        if Record::is_deleted_raw(v) {
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
        match crate::bucket::successor(common) {
            Some(after) => Step::Seek([&base[..], &after].concat()),
            None => Step::Stop,
        }
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    join_meta(index, &base, &keys, &mut contents)?;
    let (last, next) = match (last_is_prefix, prefixes.last(), contents.last()) {
        (true, Some(p), _) => (p.clone(), crate::bucket::successor(p).unwrap_or_default()),
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
fn join_meta(index: &Index, base: &[u8], keys: &[u8], contents: &mut [Entry]) -> Result<(), Error> {
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
