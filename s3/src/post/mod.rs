//! POST Object: a browser-style upload, `POST /bucket` with a
//! `multipart/form-data` body — the fields (`key`, `policy` and its
//! signature, `acl`, `Content-Type`, `x-amz-meta-*`,
//! `success_action_status`, `success_action_redirect`, ...) then `file`.
//! The fields are read whole (bounded), the policy and its signature
//! checked (`policy`), then the file streams to the volumes as a
//! PutObject's body does (`form`), never held whole: its length is checked
//! against the policy's `content-length-range` as it goes, and a file too
//! long or too short stores nothing.

mod form;
mod policy;

use http1::{response, Answer, Conn};

use crate::checks::Expected;
use crate::error::{Code, Error, S3Error};
use crate::xml::Xml;
use crate::Cx;
use form::{boundary, Form};
use policy::Fields;

/// Whether a request is a POST Object: a POST of form data to a bucket.
pub fn is_form(head: &http1::RequestHead) -> bool {
    head.header("content-type")
        .is_some_and(|t| boundary(&String::from_utf8_lossy(t)).is_some())
}

pub async fn post(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    let req = &cx.req;
    let content_type = req.header("content-type").unwrap_or_default();
    let boundary = boundary(&content_type).ok_or_else(|| form::malformed("no boundary"))?;
    if !crate::bucket::exists(cx, &req.bucket).await? {
        return Err(S3Error::no_such_bucket().into());
    }
    if req.head.expect_continue {
        conn.wbuf.extend_from_slice(response::CONTINUE);
    }
    let mut form = Form::new(req.head.body, &boundary);
    let (fields, file) = form.fields(conn).await?;
    let mut fields = Fields(fields);
    let key = fields.get("key").ok_or_else(|| {
        S3Error::invalid_argument("Bucket POST must contain a field named 'key'.")
    })?;
    let key = key.replace("${filename}", file.filename.as_deref().unwrap_or_default());
    if key.is_empty() {
        return Err(S3Error::new(Code::UserKeyMustBeSpecified, "A key must be given.").into());
    }
    if let Some((_, v)) = fields.0.iter_mut().find(|(n, _)| n == "key") {
        v.clone_from(&key);
    }
    let limits = policy::check(cx.config.credentials.as_ref(), &req.bucket, &fields)?;
    (form.min_len, form.max_len) = (limits.min, limits.max);
    if let Some(acl) = fields.get("acl") {
        crate::acl::check_canned(acl)?;
    }
    // The content type is the field's, else the file part's.
    let get = |name: &str| match (fields.get(name), name) {
        (Some(v), _) => Some(v.to_string()),
        (None, "content-type") => file.content_type.clone(),
        (None, _) => None,
    };
    let user = fields.0.iter().filter_map(|(n, v)| {
        let short = n.strip_prefix("x-amz-meta-")?;
        Some((short.to_string(), v.clone()))
    });
    let meta = crate::object::meta_from(get, user)?;
    let mkv_key = format!("/{}/{key}", req.bucket).into_bytes();
    let (_, meta) = {
        let _lock = crate::lock_key(cx, &mkv_key).await?;
        let old = cx.store.index.get(&mkv_key).await?;
        let expected = Expected::default();
        crate::object::store_value(cx, conn, &mkv_key, old, &mut form, &expected, meta).await?
    };
    form.drain(conn).await;
    answer(cx, conn, &fields, &key, &meta.quoted_etag())
}

/// As `success_action_redirect` (303 to it, with bucket, key and ETag in
/// its query) or `success_action_status` (200, 201 with a `PostResponse`,
/// or the default 204) say.
fn answer(
    cx: &Cx<'_>,
    conn: &mut Conn,
    fields: &Fields,
    key: &str,
    etag: &str,
) -> Result<Answer, Error> {
    let req = &cx.req;
    let bucket = &req.bucket;
    let mut encoded_key = String::new();
    crate::sigv4::uri_encode(key.as_bytes(), false, &mut encoded_key);
    let location = format!("/{bucket}/{encoded_key}");
    let out = &mut conn.wbuf;
    let redirect = fields
        .get("success_action_redirect")
        .or_else(|| fields.get("redirect"))
        .filter(|r| r.starts_with("http://") || r.starts_with("https://"));
    if let Some(to) = redirect {
        let mut etag_q = String::new();
        crate::sigv4::uri_encode(etag.as_bytes(), false, &mut etag_q);
        let sep = if to.contains('?') { '&' } else { '?' };
        let target = format!("{to}{sep}bucket={bucket}&key={encoded_key}&etag={etag_q}");
        let head = req.start(out, 303);
        response::header(out, "Location", target.as_bytes());
        response::header(out, "ETag", etag.as_bytes());
        return Ok(req.finish(head, out, b""));
    }
    let body = match fields.get("success_action_status") {
        Some("201") => {
            let mut x = Xml::new("PostResponse");
            x.elem("Location", &location)
                .elem("Bucket", bucket)
                .elem("Key", key)
                .elem("ETag", etag);
            Some((201, x.finish("PostResponse")))
        }
        Some("200") => Some((200, Vec::new())),
        _ => None,
    };
    let head = req.start(out, body.as_ref().map_or(204, |(code, _)| *code));
    response::header(out, "ETag", etag.as_bytes());
    response::header(out, "Location", location.as_bytes());
    Ok(match body {
        Some((_, xml)) if !xml.is_empty() => {
            response::header(out, "Content-Type", b"application/xml");
            req.finish(head, out, &xml)
        }
        Some(_) => req.finish(head, out, b""),
        // A 204 carries no Content-Length.
        None => req.end(head, out),
    })
}
