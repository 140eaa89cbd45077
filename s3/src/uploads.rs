//! Listings of multipart uploads in progress: ListParts of one upload, and
//! ListMultipartUploads of a bucket.

use http1::{Answer, Conn};

use super::list::{name_elem, url_names};
use super::multipart::{parts, upload_of};
use super::xml::Xml;
use super::Cx;
use crate::error::Error;
use crate::index::Index;
use crate::meta::{self, Part, Upload};
use crate::time;

pub async fn list_parts(cx: &Cx<'_>, conn: &mut Conn, id: &str) -> Result<Answer, Error> {
    let req = &cx.req;
    upload_of(cx, id).await?;
    let marker: u32 = req
        .param("part-number-marker")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let max: usize = req
        .param("max-parts")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let owned = id.to_string();
    let all = super::blocking(cx, move |index| parts(index, &owned)).await?;
    let after: Vec<&(u32, Part)> = all.iter().filter(|(n, _)| *n > marker).collect();
    let page = &after[..after.len().min(max)];
    let truncated = after.len() > page.len();
    let mut x = Xml::new("ListPartsResult");
    x.elem("Bucket", &req.bucket)
        .elem("Key", &req.key_text())
        .elem("UploadId", id);
    x.elem("PartNumberMarker", &marker.to_string());
    if let Some((last, _)) = page.last() {
        x.elem("NextPartNumberMarker", &last.to_string());
    }
    x.elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    x.elem("StorageClass", "STANDARD");
    for (n, p) in page {
        x.open("Part")
            .elem("PartNumber", &n.to_string())
            .elem("LastModified", &time::iso8601(p.mtime_ms))
            .elem("ETag", &format!("\"{}\"", p.etag))
            .elem("Size", &p.size.to_string())
            .close("Part");
    }
    Ok(req.xml(&mut conn.wbuf, 200, &x.finish("ListPartsResult")))
}

pub async fn list_uploads(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    let req = &cx.req;
    let base = format!("/{}/", req.bucket).into_bytes();
    let prefix = req.param("prefix").unwrap_or_default().to_string();
    let key_marker = req
        .param("key-marker")
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let max: usize = req
        .param("max-uploads")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let mut uploads = super::blocking(cx, move |index| all_uploads(index, &base)).await?;
    uploads.retain(|(rel, _, _)| rel.starts_with(prefix.as_bytes()) && *rel > key_marker);
    uploads.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let truncated = uploads.len() > max;
    uploads.truncate(max);
    let url = url_names(cx);
    let mut x = Xml::new("ListMultipartUploadsResult");
    x.elem("Bucket", &req.bucket);
    name_elem(&mut x, "KeyMarker", url, &key_marker);
    x.elem("UploadIdMarker", "");
    name_elem(
        &mut x,
        "Prefix",
        url,
        req.param("prefix").unwrap_or_default().as_bytes(),
    );
    x.elem("MaxUploads", &max.to_string());
    if url {
        x.elem("EncodingType", "url");
    }
    x.elem("IsTruncated", if truncated { "true" } else { "false" });
    if let (true, Some((rel, id, _))) = (truncated, uploads.last()) {
        name_elem(&mut x, "NextKeyMarker", url, rel);
        x.elem("NextUploadIdMarker", id);
    }
    for (rel, id, up) in &uploads {
        x.open("Upload");
        name_elem(&mut x, "Key", url, rel);
        x.elem("UploadId", id)
            .elem("Initiated", &time::iso8601(up.created_ms))
            .elem("StorageClass", "STANDARD")
            .close("Upload");
    }
    Ok(req.xml(&mut conn.wbuf, 200, &x.finish("ListMultipartUploadsResult")))
}

/// The uploads of keys under `base` (`/bucket/`): key under it, id, upload.
fn all_uploads(index: &Index, base: &[u8]) -> Result<Vec<(Vec<u8>, String, Upload)>, Error> {
    let mut out = Vec::new();
    index.scan(&meta::uploads(), b"", |k, v| {
        if let Ok(up) = meta::decode::<Upload>(k, v) {
            let key = up.key();
            if let Some(rel) = key.strip_prefix(base) {
                out.push((
                    rel.to_vec(),
                    String::from_utf8_lossy(&k[1..]).into_owned(),
                    up,
                ));
            }
        }
        true
    })?;
    Ok(out)
}
