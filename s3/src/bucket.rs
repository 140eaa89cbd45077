//! Buckets: the first segment of a key's path. A bucket exists when it was
//! created (a `b` record) or holds a live key — keys written by the plain
//! API make their buckets, as in the original. CreateBucket, HeadBucket,
//! DeleteBucket (refused while it holds keys), ListBuckets,
//! GetBucketLocation and GetBucketVersioning (versioning is never on).

use http1::{response, Answer, Conn};

use super::error::{Code, S3Error};
use super::xml::Xml;
use super::Cx;
use crate::error::Error;
use crate::index::{Durability, Index, Step, Write};
use crate::meta::{self, BucketMeta, ObjectMeta};
use crate::record::Record;
use crate::time;

/// The smallest key after every key that begins with `prefix`, if any.
pub fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// Whether any live key begins with `prefix` (on the calling thread).
pub fn has_live_key(index: &Index, prefix: &[u8]) -> Result<bool, Error> {
    let mut found = false;
    index.scan(prefix, b"", |_, v| {
        found = !Record::is_deleted_raw(v);
        !found
    })?;
    Ok(found)
}

/// The write that marks the request's bucket as created, when it is not
/// yet: a bucket S3 writes into stays when its keys are deleted, as S3's do.
pub async fn marker_op(cx: &Cx<'_>) -> Result<Option<Write>, Error> {
    let key = meta::bucket_key(&cx.req.bucket);
    if cx.store.index.get_raw(&key).await?.is_some() {
        return Ok(None);
    }
    let marker = BucketMeta {
        created_ms: time::now_ms(),
    };
    Ok(Some(meta::put_op(key, &marker)))
}

pub async fn exists(cx: &Cx<'_>, bucket: &str) -> Result<bool, Error> {
    let index = &cx.store.index;
    if index.get_raw(&meta::bucket_key(bucket)).await?.is_some() {
        return Ok(true);
    }
    let prefix = format!("/{bucket}/").into_bytes();
    super::blocking(cx, move |index| has_live_key(index, &prefix)).await
}

/// The error for a key that is not there: NoSuchBucket when its bucket
/// is not there either.
pub async fn missing_object(cx: &Cx<'_>) -> Error {
    match exists(cx, &cx.req.bucket).await {
        Ok(false) => S3Error::no_such_bucket().into(),
        Ok(true) => S3Error::no_such_key().into(),
        Err(e) => e,
    }
}

/// Bucket names as S3 allows them (for buckets created through S3).
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

pub async fn create(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    let req = &cx.req;
    if !valid_name(&req.bucket) {
        return Err(S3Error::new(
            Code::InvalidBucketName,
            "The specified bucket is not valid.",
        )
        .into());
    }
    // The body (a CreateBucketConfiguration) names a region: all are one here.
    super::read_small_body(conn, req.head, 64 * 1024).await?;
    if !exists(cx, &req.bucket).await? {
        let marker = BucketMeta {
            created_ms: time::now_ms(),
        };
        meta::put(
            &cx.store.index,
            meta::bucket_key(&req.bucket),
            &marker,
            Durability::Synced,
        )
        .await?;
    }
    let out = &mut conn.wbuf;
    let head = req.start(out, 200);
    response::header(out, "Location", format!("/{}", req.bucket).as_bytes());
    Ok(req.finish(head, out, b""))
}

pub async fn head(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    if !exists(cx, &cx.req.bucket).await? {
        return Err(S3Error::no_such_bucket().into());
    }
    let out = &mut conn.wbuf;
    let head = cx.req.start(out, 200);
    response::header(out, "x-amz-bucket-region", b"us-east-1");
    Ok(cx.req.finish(head, out, b""))
}

pub async fn delete(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    let req = &cx.req;
    let marker = meta::bucket_key(&req.bucket);
    let prefix = format!("/{}/", req.bucket).into_bytes();
    let holds_keys = super::blocking(cx, move |index| has_live_key(index, &prefix)).await?;
    if holds_keys {
        return Err(S3Error::new(
            Code::BucketNotEmpty,
            "The bucket you tried to delete is not empty.",
        )
        .into());
    }
    if cx.store.index.get_raw(&marker).await?.is_none() {
        return Err(S3Error::no_such_bucket().into());
    }
    cx.store.index.delete(&marker, Durability::Synced).await?;
    Ok(req.empty(&mut conn.wbuf, 204))
}

pub async fn list_all(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    let buckets = super::blocking(cx, all_buckets).await?;
    let mut x = Xml::new("ListAllMyBucketsResult");
    x.open("Owner")
        .elem("ID", super::acl::OWNER)
        .elem("DisplayName", super::acl::OWNER)
        .close("Owner");
    x.open("Buckets");
    for (name, created) in &buckets {
        x.open("Bucket")
            .elem("Name", name)
            .elem("CreationDate", &time::iso8601(*created))
            .close("Bucket");
    }
    x.close("Buckets");
    Ok(cx
        .req
        .xml(&mut conn.wbuf, 200, &x.finish("ListAllMyBucketsResult")))
}

/// Every bucket, by name, with its creation time (for a bucket only keys
/// make, its first key's time).
fn all_buckets(index: &Index) -> Result<Vec<(String, u64)>, Error> {
    let mut buckets: Vec<(String, u64)> = Vec::new();
    index.scan(&meta::buckets(), b"", |k, v| {
        let created = meta::decode::<BucketMeta>(k, v).map_or(0, |m| m.created_ms);
        buckets.push((String::from_utf8_lossy(&k[1..]).into_owned(), created));
        true
    })?;
    let mut implicit: Vec<(String, Vec<u8>)> = Vec::new();
    index.scan_steps(b"/", b"", |k, v| {
        let Some(slash) = k[1..].iter().position(|&c| c == b'/') else {
            return Step::Next;
        };
        if Record::is_deleted_raw(v) {
            return Step::Next;
        }
        let name = String::from_utf8_lossy(&k[1..1 + slash]).into_owned();
        implicit.push((name, k.to_vec()));
        match successor(&k[..slash + 2]) {
            Some(next) => Step::Seek(next),
            None => Step::Stop,
        }
    })?;
    for (name, first_key) in implicit {
        if !buckets.iter().any(|(b, _)| *b == name) {
            let created = index
                .get_raw_blocking(&meta::object_key(&first_key))?
                .and_then(|raw| meta::decode::<ObjectMeta>(&first_key, &raw).ok())
                .map_or(0, |m| m.mtime_ms);
            buckets.push((name, created));
        }
    }
    buckets.sort();
    Ok(buckets)
}

pub async fn location(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    if !exists(cx, &cx.req.bucket).await? {
        return Err(S3Error::no_such_bucket().into());
    }
    // Empty: us-east-1, the one region there is.
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\"/>",
        super::xml::NS
    );
    Ok(cx.req.xml(&mut conn.wbuf, 200, body.as_bytes()))
}

pub async fn versioning(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    if !exists(cx, &cx.req.bucket).await? {
        return Err(S3Error::no_such_bucket().into());
    }
    let x = Xml::new("VersioningConfiguration");
    Ok(cx
        .req
        .xml(&mut conn.wbuf, 200, &x.finish("VersioningConfiguration")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_successors() {
        assert!(valid_name("my-bucket.1") && valid_name("abc"));
        for bad in ["ab", "Caps", "-a-", "a..b", "192.168.1.1", "under_score"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(successor(b"/b/"), Some(b"/b0".to_vec()));
        assert_eq!(successor(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(successor(b"\xff"), None);
    }
}
