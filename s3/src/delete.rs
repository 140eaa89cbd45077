//! DeleteObject and DeleteObjects: a key deleted as the plain API's DELETE
//! does (`ops::delete`), missing keys counted as deleted, as S3 does.

use http1::{Answer, Conn};

use super::checks::Expected;
use super::error::{Code, S3Error};
use super::xml::{self, Xml};
use super::Cx;
use crate::error::Error;
use crate::ops::delete::delete_record;

/// DeleteObject: 204 whether or not the key was there.
pub async fn delete(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    delete_key(cx, &cx.req.mkv_key).await?;
    Ok(cx.req.empty(&mut conn.wbuf, 204))
}

/// Deletes one key as S3 does (missing is fine); with `-protect` a live
/// key must be unlinked first.
pub async fn delete_key(cx: &Cx<'_>, key: &[u8]) -> Result<(), Error> {
    let store = cx.store;
    let lock = super::lock_key(cx, key).await?;
    let Some(rec) = store.index.get(key).await? else {
        return Ok(());
    };
    if store.cluster.protect && !rec.deleted {
        return Err(S3Error::access_denied(
            "the master protects live keys (-protect): UNLINK first",
        )
        .into());
    }
    Ok(delete_record(cx.store, &lock, rec).await?)
}

/// The largest DeleteObjects body taken.
const MAX_DELETE_BODY: usize = 2 << 20;

pub async fn delete_objects(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    let req = &cx.req;
    let body = super::read_small_body(conn, req.head, MAX_DELETE_BODY).await?;
    Expected::of(req, cx.signer.as_ref())?.check_body(&body)?;
    let root = xml::parse(&body).map_err(|_| S3Error::malformed_xml())?;
    // Keys exactly as sent (white space is part of a key); an object
    // without one makes the whole request malformed, as on S3.
    let keys: Option<Vec<&str>> = root
        .children_named("Object")
        .map(|o| o.child_exact("Key"))
        .collect();
    let keys = keys.unwrap_or_default();
    if root.name != "Delete" || keys.is_empty() || keys.len() > 1000 {
        return Err(S3Error::malformed_xml().into());
    }
    let quiet = root.child_text("Quiet") == Some("true");
    let mut x = Xml::new("DeleteResult");
    for key in keys {
        let mkv_key = format!("/{}/{key}", req.bucket).into_bytes();
        let deleted = match key.is_empty() {
            true => Err(S3Error::new(Code::UserKeyMustBeSpecified, "A key must be given.").into()),
            false => delete_key(cx, &mkv_key).await,
        };
        match deleted {
            Ok(()) if quiet => {}
            Ok(()) => {
                x.open("Deleted").elem("Key", key).close("Deleted");
            }
            Err(e) => {
                let e = e.to_s3();
                x.open("Error")
                    .elem("Key", key)
                    .elem("Code", e.code.as_str())
                    .elem("Message", &e.message)
                    .close("Error");
            }
        }
    }
    Ok(req.xml(&mut conn.wbuf, 200, &x.finish("DeleteResult")))
}
