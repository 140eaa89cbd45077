//! What S3 keeps beside the original's records, in index records whose keys
//! do not begin with `/` — the original's code never reads them (its
//! listings read `/` keys only), so it still opens the index and lists the
//! same keys. Values are JSON objects; one starting `{` can never be taken
//! for a list of volumes.
//!
//! | key | record |
//! |---|---|
//! | `o` + mkv key | an object's size, time, ETag, content type, metadata |
//! | `b` + bucket | a bucket created empty |
//! | `u` + upload id | a multipart upload in progress |
//! | `p` + upload id + `/` + part number (5 digits) | one uploaded part |
//! | `w` + mkv key | a write of the key in progress, or a failed one not yet cleaned up (`intent`, settled by `ops::intent`) |
//! | `j` + id | an install in progress, as versions before the `w` intent for installs wrote it (read, never written) |
//!
//! This module (with `record` for the `/` records) is the only code that
//! reads or writes these formats: the others ask it for keys, prefixes and
//! decoded values.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::MasterError;
use crate::index::{Durability, Index, Write};

mod intent;
mod listed;

pub use intent::{Intent, Kind, LegacyInstall};
pub use listed::Listed;

pub fn object_key(mkv_key: &[u8]) -> Vec<u8> {
    prefixed(b'o', mkv_key)
}

/// The intent record of a key's write.
pub fn intent_key(mkv_key: &[u8]) -> Vec<u8> {
    prefixed(b'w', mkv_key)
}

/// The mkv key an intent record is of.
pub fn key_of_intent(record_key: &[u8]) -> &[u8] {
    record_key.get(1..).unwrap_or_default()
}

/// The prefix of every legacy install record.
pub const LEGACY_INSTALLS: &[u8] = b"j";

pub fn bucket_key(bucket: &str) -> Vec<u8> {
    prefixed(b'b', bucket.as_bytes())
}

pub fn upload_key(id: &str) -> Vec<u8> {
    prefixed(b'u', id.as_bytes())
}

pub fn part_key(id: &str, part: u32) -> Vec<u8> {
    prefixed(b'p', format!("{id}/{part:05}").as_bytes())
}

/// The prefix of every bucket marker.
pub fn buckets() -> Vec<u8> {
    bucket_key("")
}

/// The prefix of every upload record.
pub fn uploads() -> Vec<u8> {
    upload_key("")
}

/// The prefix of every part record of an upload.
pub fn parts_prefix(id: &str) -> Vec<u8> {
    prefixed(b'p', format!("{id}/").as_bytes())
}

fn prefixed(tag: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(tag);
    k.extend_from_slice(rest);
    k
}

/// An object's metadata.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    #[serde(rename = "s")]
    pub size: u64,
    /// Milliseconds since the epoch.
    #[serde(rename = "t")]
    pub mtime_ms: u64,
    /// Without quotes: the md5 in hex, or `md5-of-md5s-N` for a multipart
    /// object; empty when not known.
    #[serde(rename = "e", default)]
    pub etag: String,
    /// The record's hash this metadata was written with: when the record
    /// says otherwise (the original master wrote the key since), it is stale.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(rename = "ct", default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Other stored headers (`Content-Disposition`, `Cache-Control`, ...).
    #[serde(rename = "hd", default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// `x-amz-meta-*`, names lower-case without the prefix.
    #[serde(rename = "m", default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<(String, String)>,
    /// The multipart upload whose completion made this object (so that a
    /// retried CompleteMultipartUpload can be answered as the first was).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
}

impl ObjectMeta {
    /// This object's size, ETag and hash with another's type and metadata.
    pub fn replaced_by(self, other: ObjectMeta) -> ObjectMeta {
        ObjectMeta {
            content_type: other.content_type,
            headers: other.headers,
            user: other.user,
            ..self
        }
    }

    /// The ETag, quoted; where no md5 is known, one made of time and size
    /// (as nginx makes its own), which no client takes for an md5.
    pub fn quoted_etag(&self) -> String {
        if self.etag.is_empty() {
            format!("\"{:x}-{:x}\"", self.mtime_ms / 1000, self.size)
        } else {
            format!("\"{}\"", self.etag)
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketMeta {
    #[serde(rename = "t")]
    pub created_ms: u64,
}

/// A multipart upload in progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Upload {
    /// The mkv key, base64.
    #[serde(rename = "k")]
    key_b64: String,
    #[serde(rename = "t")]
    pub created_ms: u64,
    /// What the object will be created with.
    #[serde(rename = "o")]
    pub meta: ObjectMeta,
    /// Where its parts are: the replicas the object will have.
    #[serde(rename = "r")]
    pub replicas: Vec<String>,
    /// The size of the parts that go into slots of one staging file per
    /// replica (part N at (N-1) × stride); chosen by the first part.
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<u64>,
}

impl Upload {
    pub fn new(key: &[u8], created_ms: u64, meta: ObjectMeta, replicas: Vec<String>) -> Upload {
        Upload {
            key_b64: base64::engine::general_purpose::STANDARD.encode(key),
            created_ms,
            meta,
            replicas,
            stride: None,
        }
    }

    pub fn key(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.key_b64)
            .unwrap_or_default()
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Part {
    #[serde(rename = "s")]
    pub size: u64,
    /// The md5 in hex (the part's ETag, unquoted).
    #[serde(rename = "e")]
    pub etag: String,
    #[serde(rename = "c")]
    pub crc32: u32,
    #[serde(rename = "t")]
    pub mtime_ms: u64,
    /// On volume-uring replicas, its offset in the upload's staging file
    /// (`.mkv-parts/<id>.data`).
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// Elsewhere (nginx replicas, and parts that fit no slot), the name of
    /// its own staging file.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Reads and decodes one record; a record that does not decode is an error.
pub async fn get<T: for<'de> Deserialize<'de>>(
    index: &Index,
    key: &[u8],
) -> Result<Option<T>, MasterError> {
    match index.get_raw(key).await? {
        Some(raw) => decode(key, &raw).map(Some),
        None => Ok(None),
    }
}

pub fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], raw: &[u8]) -> Result<T, MasterError> {
    serde_json::from_slice(raw).map_err(|e| {
        MasterError::Index(crate::index::IndexError::Read(format!(
            "the record {} is corrupt: {e}",
            String::from_utf8_lossy(key)
        )))
    })
}

/// Every record whose key starts with `prefix`, decoded (the journal's
/// intents, pending writes); a record that does not decode is an error.
pub fn scan_all<T: for<'de> Deserialize<'de>>(
    index: &Index,
    prefix: &[u8],
) -> Result<Vec<(Vec<u8>, T)>, MasterError> {
    let mut out = Vec::new();
    let mut bad = None;
    index.scan(prefix, b"", |k, v| {
        match decode::<T>(k, v) {
            Ok(t) => out.push((k.to_vec(), t)),
            Err(e) => bad = Some(e),
        }
        bad.is_none()
    })?;
    match bad {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The index operation that writes a record.
pub fn put_op<T: Serialize>(key: Vec<u8>, value: &T) -> Write {
    Write::Put(key, encode(value))
}

/// A record's value as it is stored.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

pub async fn put<T: Serialize>(
    index: &Index,
    key: Vec<u8>,
    value: &T,
    d: Durability,
) -> Result<(), MasterError> {
    Ok(index.apply(vec![put_op(key, value)], d).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_never_look_like_the_originals() {
        let meta = ObjectMeta {
            size: 5,
            mtime_ms: 1_796_292_604_123,
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            hash: Some("5d41402abc4b2a76b9719d911017c592".into()),
            content_type: Some("text/plain".into()),
            headers: vec![],
            user: vec![("color".into(), "blue".into())],
            upload: None,
        };
        let raw = serde_json::to_vec(&meta).unwrap();
        assert!(raw.starts_with(b"{"));
        assert_eq!(decode::<ObjectMeta>(b"o/b/k", &raw).unwrap(), meta);
        assert_eq!(meta.quoted_etag(), "\"5d41402abc4b2a76b9719d911017c592\"");
        let blank = ObjectMeta {
            size: 10,
            mtime_ms: 0x6b0537d0 * 1000,
            ..Default::default()
        };
        assert_eq!(blank.quoted_etag(), "\"6b0537d0-a\"");
        assert_eq!(part_key("u1", 7), b"pu1/00007");
        assert!(part_key("u1", 10_000) > part_key("u1", 999));
        let up = Upload::new(b"/b/\xffk", 1, ObjectMeta::default(), vec!["v:1".into()]);
        assert_eq!(up.key(), b"/b/\xffk");
        assert!(decode::<ObjectMeta>(b"o/x", b"not json").is_err());
    }
}
