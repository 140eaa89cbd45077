//! CompleteMultipartUpload: the listed parts checked (in order, each as
//! uploaded, all but the last at least 5 MiB), the object built on each
//! replica from them — by volume-uring itself, or streamed through the
//! master for nginx — into a staging file, then installed in the key's
//! place with the upload's records removed in the same batch.

use futures_util::future::join_all;
use http1::{Answer, Conn};

use super::error::{Code, S3Error};
use super::multipart::{self, data_path, etag_of_parts, file_path, multipart_etag, MIN_PART};
use super::xml::{self, Xml};
use super::Cx;
use crate::client::copy::{self, Piece};
use crate::client::fanout::Target;
use crate::client::StagedRange;
use crate::error::Error;
use crate::index::Write;
use crate::meta::{self, ObjectMeta, Part};
use crate::ops::install::{self, Staged};
use crate::record::Record;
use crate::time;
use mkv_store::error::MasterError;

/// The largest CompleteMultipartUpload body taken (10,000 parts fit).
const MAX_BODY: usize = 4 << 20;

pub async fn complete(cx: &Cx<'_>, conn: &mut Conn, id: &str) -> Result<Answer, Error> {
    let (store, req) = (cx.store, &cx.req);
    let key = req.mkv_key.as_slice();
    // Under the lock: a Complete retried while the first still runs finds
    // the upload gone once it has the key, and answers as the first did.
    let _lock = super::lock_key(cx, key).await?;
    let upload = match multipart::upload_of(cx, id).await {
        Ok(upload) => upload,
        Err(missing) => return completed_again(cx, conn, id, missing).await,
    };
    let body = super::read_small_body(conn, req.head, MAX_BODY).await?;
    let listed = listed_parts(&body)?;
    let owned = id.to_string();
    let all = super::blocking(cx, move |index| multipart::parts(index, &owned)).await?;
    let chosen = choose(&listed, &all)?;
    let staged = object_of(id, &chosen);
    let (index, client) = (&store.index, &store.client);
    let old = index.get(key).await?;
    super::object::check_write_conditions(cx, old.as_ref()).await?;
    let (installing, _) =
        install::begin(index, client, key, old, &upload.replicas, &staged.path).await?;
    if let Err(e) = build_all(cx, &upload.replicas, id, &chosen, &staged).await {
        installing.abort(index, client).await;
        return Err(e);
    }
    let parts: Vec<&Part> = chosen.iter().map(|(_, p)| *p).collect();
    let meta = ObjectMeta {
        size: staged.len,
        mtime_ms: time::now_ms(),
        etag: multipart_etag(&parts),
        hash: None,
        upload: Some(id.to_string()),
        ..upload.meta.clone()
    };
    let mut commit = vec![
        Write::Put(
            key.to_vec(),
            Record::live(upload.replicas.clone(), None).encode(),
        ),
        meta::put_op(meta::object_key(key), &meta),
    ];
    commit.extend(forget_upload(id, &all));
    commit.extend(super::bucket::marker_op(cx).await?);
    installing.finish(index, client, &staged, commit).await?;
    multipart::remove(cx, &upload.replicas, &multipart::staging_files(id, &all)).await;
    Ok(completed(cx, conn, &meta))
}

/// The answer to a Complete that made `meta`'s object.
fn completed(cx: &Cx<'_>, conn: &mut Conn, meta: &ObjectMeta) -> Answer {
    let req = &cx.req;
    let mut x = Xml::new("CompleteMultipartUploadResult");
    x.elem("Location", &format!("/{}/{}", req.bucket, req.key_text()))
        .elem("Bucket", &req.bucket)
        .elem("Key", &req.key_text())
        .elem("ETag", &meta.quoted_etag());
    req.xml(
        &mut conn.wbuf,
        200,
        &x.finish("CompleteMultipartUploadResult"),
    )
}

/// A Complete of an upload that is not in progress. When the key's object
/// is the one this upload's Complete made, from the same list of parts
/// (the list's ETags make the object's), the answer is that Complete's: a
/// client whose first answer was lost retries, and the upload it made
/// stands. Otherwise `missing` (NoSuchUpload): also for another list of
/// parts, since the upload is gone.
async fn completed_again(
    cx: &Cx<'_>,
    conn: &mut Conn,
    id: &str,
    missing: Error,
) -> Result<Answer, Error> {
    let body = super::read_small_body(conn, cx.req.head, MAX_BODY).await?;
    let listed = listed_parts(&body)?;
    let key = cx.req.mkv_key.as_slice();
    let index = &cx.store.index;
    let Some(rec) = index.get(key).await?.filter(|r| !r.deleted) else {
        return Err(missing);
    };
    let Some(meta) = meta::get::<ObjectMeta>(index, &meta::object_key(key)).await? else {
        return Err(missing);
    };
    let made_by_it = meta.upload.as_deref() == Some(id) && meta.hash == rec.hash;
    if !made_by_it || meta.etag != etag_of_parts(listed.iter().map(|(_, e)| e.as_str())) {
        return Err(missing);
    }
    Ok(completed(cx, conn, &meta))
}

/// Builds the object on every replica (a failure is undone with the
/// install's intent, which removes the staged object everywhere).
async fn build_all(
    cx: &Cx<'_>,
    replicas: &[String],
    id: &str,
    chosen: &[(u32, &Part)],
    staged: &Staged,
) -> Result<(), Error> {
    let built = join_all(replicas.iter().map(|r| build(cx, r, id, chosen, staged))).await;
    built.into_iter().collect()
}

/// The index operations that remove an upload and its part records.
fn forget_upload<'a>(id: &'a str, parts: &'a [(u32, Part)]) -> impl Iterator<Item = Write> + 'a {
    let records = parts.iter().map(move |(n, _)| meta::part_key(id, *n));
    std::iter::once(meta::upload_key(id))
        .chain(records)
        .map(Write::Delete)
}

/// The object the chosen parts make, staged under the upload's name: its
/// length, and its CRC32 combined from the parts' own.
fn object_of(id: &str, chosen: &[(u32, &Part)]) -> Staged {
    let mut crc = crc32fast::Hasher::new();
    for (_, p) in chosen {
        crc.combine(&crc32fast::Hasher::new_with_initial_len(p.crc32, p.size));
    }
    Staged {
        path: format!("/.mkv-parts/{id}.obj"),
        len: chosen.iter().map(|(_, p)| p.size).sum(),
        crc: crc.finalize(),
    }
}

/// The (number, ETag) pairs of the request body.
fn listed_parts(body: &[u8]) -> Result<Vec<(u32, String)>, S3Error> {
    let root = xml::parse(body).map_err(|_| S3Error::malformed_xml())?;
    if root.name != "CompleteMultipartUpload" {
        return Err(S3Error::malformed_xml());
    }
    let mut out = Vec::new();
    for part in root.children_named("Part") {
        let number = part
            .child_text("PartNumber")
            .and_then(|n| n.parse::<u32>().ok());
        let etag = part
            .child_text("ETag")
            .map(|e| e.trim_matches('"').to_ascii_lowercase());
        match (number, etag) {
            (Some(n), Some(e)) => out.push((n, e)),
            _ => return Err(S3Error::malformed_xml()),
        }
    }
    if out.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    Ok(out)
}

/// The uploaded parts the list names, checked.
fn choose<'p>(
    listed: &[(u32, String)],
    all: &'p [(u32, Part)],
) -> Result<Vec<(u32, &'p Part)>, S3Error> {
    let invalid = || {
        S3Error::new(Code::InvalidPart, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.")
    };
    let mut chosen = Vec::with_capacity(listed.len());
    for (i, (number, etag)) in listed.iter().enumerate() {
        if i > 0 && *number <= listed[i - 1].0 {
            return Err(S3Error::new(Code::InvalidPartOrder, "The list of parts was not in ascending order. The parts list must be specified in order of the part number."));
        }
        let part = all
            .iter()
            .find(|(n, _)| n == number)
            .map(|(_, p)| p)
            .ok_or_else(invalid)?;
        if !part.etag.eq_ignore_ascii_case(etag) {
            return Err(invalid());
        }
        chosen.push((*number, part));
    }
    if chosen[..chosen.len() - 1]
        .iter()
        .any(|(_, p)| p.size < MIN_PART)
    {
        return Err(S3Error::new(
            Code::EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size.",
        ));
    }
    Ok(chosen)
}

/// The object, built on one replica into the staging file.
async fn build(
    cx: &Cx<'_>,
    replica: &str,
    id: &str,
    chosen: &[(u32, &Part)],
    staged: &Staged,
) -> Result<(), Error> {
    let client = &cx.store.client;
    if !client.is_volume_uring(replica).await {
        let pieces: Vec<Piece> = chosen
            .iter()
            .map(|(_, p)| Piece::whole(replica, &file_path(p.file.as_deref().unwrap_or_default())))
            .collect();
        copy::copy_into_file(client, &pieces, Target::new(replica, &staged.path)).await?;
        return Ok(());
    }
    let reply = client
        .assemble(replica, &staged.path, &ranges(id, chosen), None)
        .await?;
    match reply.status {
        201 | 204 if reply.crc32 == Some(staged.crc) => Ok(()),
        s => Err(MasterError::ReplicaAnswer {
            replica: replica.to_string(),
            why: format!(
                "answered {s} (CRC32 {:?}) to assembling the parts",
                reply.crc32
            ),
        }
        .into()),
    }
}

/// The parts as ranges of staging files for volume-uring; parts that sit
/// one after the other in the upload's staging file are one range.
fn ranges(id: &str, chosen: &[(u32, &Part)]) -> Vec<StagedRange> {
    let mut merged: Vec<(String, u64, u64, crc32fast::Hasher)> = Vec::new();
    for (_, p) in chosen {
        let (path, offset) = match (p.slot, &p.file) {
            (Some(slot), _) => (data_path(id), slot),
            (None, file) => (file_path(file.as_deref().unwrap_or_default()), 0),
        };
        let part_crc = crc32fast::Hasher::new_with_initial_len(p.crc32, p.size);
        match merged.last_mut() {
            Some((last_path, start, len, crc)) if *last_path == path && *start + *len == offset => {
                *len += p.size;
                crc.combine(&part_crc);
            }
            _ => merged.push((path, offset, p.size, part_crc)),
        }
    }
    merged
        .into_iter()
        .map(|(path, offset, len, crc)| StagedRange {
            path,
            offset,
            len,
            crc: crc.finalize(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(size: u64, slot: Option<u64>, file: Option<&str>) -> Part {
        let data = vec![size as u8; size as usize];
        Part {
            size,
            etag: String::new(),
            crc32: crc32fast::hash(&data),
            mtime_ms: 0,
            slot,
            file: file.map(str::to_string),
        }
    }

    #[test]
    fn slots_in_a_row_are_one_range() {
        let (a, b, c) = (
            part(8, Some(0), None),
            part(8, Some(8), None),
            part(3, Some(16), None),
        );
        let list = ranges("u", &[(1, &a), (2, &b), (3, &c)]);
        let mut whole = vec![8u8; 16];
        whole.extend([3u8; 3]);
        let one = StagedRange {
            path: "/.mkv-parts/u.data".into(),
            offset: 0,
            len: 19,
            crc: crc32fast::hash(&whole),
        };
        assert_eq!(list, [one]);
        let d = part(5, None, Some("u.2.x"));
        let list = ranges("u", &[(1, &a), (2, &d), (3, &c)]);
        assert_eq!(list.len(), 3, "{list:?}");
        let second = (list[1].path.as_str(), list[1].offset, list[1].len);
        assert_eq!(second, ("/.mkv-parts/u.2.x", 0, 5));
    }

    #[test]
    fn listed_parts_checked() {
        let body = br#"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"AB"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>cd</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(
            listed_parts(body).unwrap(),
            vec![(1, "ab".into()), (2, "cd".into())]
        );
        assert_eq!(
            listed_parts(b"<CompleteMultipartUpload/>")
                .unwrap_err()
                .code
                .as_str(),
            "MalformedXML"
        );
        let big = Part {
            etag: "ab".into(),
            ..part(MIN_PART, None, None)
        };
        let small = Part {
            etag: "cd".into(),
            ..part(1, None, None)
        };
        let all = vec![(1, big.clone()), (2, small.clone())];
        assert!(choose(&[(1, "ab".into()), (2, "cd".into())], &all).is_ok());
        let code = |l: &[(u32, String)]| choose(l, &all).unwrap_err().code.as_str();
        assert_eq!(
            code(&[(2, "cd".into()), (1, "ab".into())]),
            "InvalidPartOrder"
        );
        assert_eq!(code(&[(1, "ff".into())]), "InvalidPart");
        assert_eq!(code(&[(3, "ab".into())]), "InvalidPart");
        let all_small = vec![
            (1, small.clone()),
            (
                2,
                Part {
                    etag: "ef".into(),
                    ..small
                },
            ),
        ];
        assert_eq!(
            choose(&[(1, "cd".into()), (2, "ef".into())], &all_small)
                .unwrap_err()
                .code
                .as_str(),
            "EntityTooSmall"
        );
    }
}
