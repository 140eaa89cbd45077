//! ACLs, as a store without them can honestly answer (docs/s3.md, "ACLs"):
//! every bucket and object belongs to the one owner, who has FULL_CONTROL,
//! and nothing is granted to anyone else. GetBucketAcl and GetObjectAcl say
//! so. PutBucketAcl, PutObjectAcl and the ACL headers of writes
//! (PutObject, CopyObject, CreateMultipartUpload, CreateBucket) are taken
//! when they ask for what there is — the canned ACL `private`, or
//! `bucket-owner-full-control` (the same, the bucket's owner being every
//! object's), or a policy granting only the owner FULL_CONTROL — and
//! refused with NotImplemented otherwise, never ignored.

use http1::{Answer, Conn};

use super::error::{Code, Error, S3Error};
use super::request::S3Req;
use super::xml::{self, Element, Xml};
use super::Cx;

/// The one owner's ID and display name.
pub const OWNER: &str = "mkv";

/// The canned ACLs that are what there is.
const AS_IT_IS: &[&str] = &["private", "bucket-owner-full-control"];

/// The largest policy document taken.
const MAX_BODY: usize = 64 * 1024;

const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Refuses a write whose ACL headers ask for more than there is.
pub fn check_headers(req: &S3Req<'_>) -> Result<(), S3Error> {
    if let Some(acl) = req.header("x-amz-acl") {
        check_canned(&acl)?;
    }
    let grant = req
        .head
        .headers()
        .any(|(name, _)| name.len() > 12 && name[..12].eq_ignore_ascii_case(b"x-amz-grant-"));
    if grant {
        return Err(S3Error::not_implemented(
            "Granting access with x-amz-grant-* headers",
        ));
    }
    Ok(())
}

/// Refuses a canned ACL (`x-amz-acl`, a POST form's `acl`) other than what
/// there is.
pub fn check_canned(acl: &str) -> Result<(), S3Error> {
    let acl = acl.trim();
    if AS_IT_IS.contains(&acl) {
        Ok(())
    } else {
        Err(S3Error::not_implemented(&format!(
            "The canned ACL {acl:?} (only private is kept)"
        )))
    }
}

/// GetBucketAcl and GetObjectAcl: the owner, with FULL_CONTROL.
pub async fn get(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    exists(cx).await?;
    let mut x = Xml::new("AccessControlPolicy");
    owner(&mut x, "Owner");
    x.open("AccessControlList").open("Grant");
    x.open(&format!(
        "Grantee xmlns:xsi=\"{XSI}\" xsi:type=\"CanonicalUser\""
    ));
    x.elem("ID", OWNER).elem("DisplayName", OWNER);
    x.close("Grantee")
        .elem("Permission", "FULL_CONTROL")
        .close("Grant")
        .close("AccessControlList");
    Ok(cx
        .req
        .xml(&mut conn.wbuf, 200, &x.finish("AccessControlPolicy")))
}

/// PutBucketAcl and PutObjectAcl: taken when they change nothing.
pub async fn put(cx: &Cx<'_>, conn: &mut Conn) -> Result<Answer, Error> {
    exists(cx).await?;
    check_headers(&cx.req)?;
    let body = super::read_small_body(conn, cx.req.head, MAX_BODY).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let policy = xml::parse(&body).map_err(|_| S3Error::malformed_xml())?;
        only_the_owner(&policy)?;
    } else if cx.req.header("x-amz-acl").is_none() {
        return Err(S3Error::new(
            Code::MissingSecurityHeader,
            "Your request was missing a required header: x-amz-acl, or an AccessControlPolicy body.",
        )
        .into());
    }
    Ok(cx.req.empty(&mut conn.wbuf, 200))
}

/// The bucket, or the object, the request names: there, or S3's 404.
async fn exists(cx: &Cx<'_>) -> Result<(), Error> {
    if cx.req.key.is_empty() {
        return match super::bucket::exists(cx, &cx.req.bucket).await? {
            true => Ok(()),
            false => Err(S3Error::no_such_bucket().into()),
        };
    }
    match cx.store.index.get(&cx.req.mkv_key).await? {
        Some(rec) if !rec.deleted => Ok(()),
        _ => Err(super::bucket::missing_object(cx).await),
    }
}

fn owner(x: &mut Xml, tag: &str) {
    x.open(tag)
        .elem("ID", OWNER)
        .elem("DisplayName", OWNER)
        .close(tag);
}

/// A policy document that grants the owner FULL_CONTROL and nothing else.
fn only_the_owner(policy: &Element) -> Result<(), S3Error> {
    if policy.name != "AccessControlPolicy" {
        return Err(S3Error::malformed_xml());
    }
    let grants: Vec<&Element> = policy
        .child("AccessControlList")
        .map(|l| l.children_named("Grant").collect())
        .unwrap_or_default();
    let owners_full_control = |g: &&Element| {
        let id = g.child("Grantee").and_then(|e| e.child_text("ID"));
        id == Some(OWNER) && g.child_text("Permission") == Some("FULL_CONTROL")
    };
    if grants.len() == 1 && grants.iter().all(owners_full_control) {
        Ok(())
    } else {
        Err(S3Error::not_implemented(
            "An ACL granting anything but the owner's FULL_CONTROL",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(grants: &str) -> Element {
        let doc = format!("<AccessControlPolicy xmlns=\"{}\"><Owner><ID>mkv</ID></Owner><AccessControlList>{grants}</AccessControlList></AccessControlPolicy>", xml::NS);
        xml::parse(doc.as_bytes()).unwrap()
    }

    fn grant(id: &str, permission: &str) -> String {
        format!("<Grant><Grantee xmlns:xsi=\"{XSI}\" xsi:type=\"CanonicalUser\"><ID>{id}</ID></Grantee><Permission>{permission}</Permission></Grant>")
    }

    #[test]
    fn only_the_owners_full_control_is_taken() {
        assert!(only_the_owner(&policy(&grant("mkv", "FULL_CONTROL"))).is_ok());
        for refused in [
            grant("mkv", "READ"),
            grant("someone", "FULL_CONTROL"),
            grant("mkv", "FULL_CONTROL") + &grant("someone", "READ"),
            String::new(),
        ] {
            let e = only_the_owner(&policy(&refused)).unwrap_err();
            assert_eq!(e.code, Code::NotImplemented, "{refused}");
        }
    }
}
