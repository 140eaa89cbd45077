//! The conditions a request puts on an object's ETag and time, evaluated
//! once for GetObject, HeadObject and CopyObject's source, as S3 (and RFC
//! 9110) does: `If-Match` is decided before `If-Unmodified-Since` and
//! overrides it, `If-None-Match` before `If-Modified-Since`; entity tags
//! compare weakly (a `W/` prefix is dropped) and `*` matches any object.
//!
//! Conditional writes ([`check_write`]: PutObject, CompleteMultipartUpload)
//! are decided under the key's write lock, against the object the write
//! would replace, so of writers racing with `If-None-Match: *` exactly one
//! creates the key.

use http1::RequestHead;

use super::error::{Code, S3Error};
use crate::meta::ObjectMeta;
use crate::time;

/// The four condition headers under their names for one kind of request.
pub struct Names {
    pub if_match: &'static str,
    pub if_none_match: &'static str,
    pub if_modified_since: &'static str,
    pub if_unmodified_since: &'static str,
}

/// GetObject and HeadObject.
pub const READ: Names = Names {
    if_match: "if-match",
    if_none_match: "if-none-match",
    if_modified_since: "if-modified-since",
    if_unmodified_since: "if-unmodified-since",
};

/// CopyObject's source.
pub const COPY_SOURCE: Names = Names {
    if_match: "x-amz-copy-source-if-match",
    if_none_match: "x-amz-copy-source-if-none-match",
    if_modified_since: "x-amz-copy-source-if-modified-since",
    if_unmodified_since: "x-amz-copy-source-if-unmodified-since",
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// `If-None-Match` named the object, or it is not modified since: a
    /// read answers 304, a copy 412.
    NotModified,
    /// `If-Match` did not name the object, or it was modified since.
    Failed,
}

/// What the request's conditions say of `meta`.
pub fn evaluate(head: &RequestHead, names: &Names, meta: &ObjectMeta) -> Verdict {
    let etag = meta.quoted_etag();
    let secs = meta.mtime_ms / 1000;
    let date = |name: &str| head.header(name).and_then(time::parse_http_date);
    if let Some(im) = head.header(names.if_match) {
        if !tag_listed(im, &etag) {
            return Verdict::Failed;
        }
    } else if date(names.if_unmodified_since).is_some_and(|d| secs > d) {
        return Verdict::Failed;
    }
    if let Some(inm) = head.header(names.if_none_match) {
        if tag_listed(inm, &etag) {
            return Verdict::NotModified;
        }
    } else if date(names.if_modified_since).is_some_and(|d| secs <= d) {
        return Verdict::NotModified;
    }
    Verdict::Proceed
}

/// The 412 S3 answers a failed condition with.
pub fn failed() -> S3Error {
    S3Error::new(
        Code::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

/// A write's conditions against the key's live object, `current` (its
/// metadata; `None` when the key holds none): `If-None-Match: *` fails when
/// there is one (412), `If-Match` when there is none (404, as S3) or its
/// ETag is not listed (412). `If-None-Match` with anything but `*` is not
/// something S3 does on a write (501).
pub fn check_write(head: &RequestHead, current: Option<&ObjectMeta>) -> Result<(), S3Error> {
    if let Some(inm) = head.header("if-none-match") {
        if inm.trim_ascii() != b"*" {
            return Err(S3Error::not_implemented(
                "If-None-Match on a write with a value other than *",
            ));
        }
        if current.is_some() {
            return Err(failed());
        }
    }
    if let Some(im) = head.header("if-match") {
        match current {
            None => return Err(S3Error::no_such_key()),
            Some(meta) if !tag_listed(im, &meta.quoted_etag()) => return Err(failed()),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Whether a write carries conditions ([`check_write`]).
pub fn is_conditional_write(head: &RequestHead) -> bool {
    head.header("if-none-match").is_some() || head.header("if-match").is_some()
}

/// The answer to a write that waited for its key longer than
/// `WAIT_FOR_KEY`: for a conditional one, S3's 409
/// ConditionalRequestConflict (retry, and the condition is decided then);
/// otherwise OperationAborted.
pub fn busy(head: &RequestHead) -> S3Error {
    if is_conditional_write(head) {
        S3Error::new(
            Code::ConditionalRequestConflict,
            "A conflicting conditional operation is currently in progress against this resource. Please try again.",
        )
    } else {
        S3Error::busy()
    }
}

/// Whether a list of entity tags (or `*`) names `etag`.
pub fn tag_listed(list: &[u8], etag: &str) -> bool {
    let list = String::from_utf8_lossy(list);
    list.trim() == "*"
        || list.split(',').any(|t| {
            let t = t.trim();
            t.strip_prefix("W/").unwrap_or(t).trim_matches('"') == etag.trim_matches('"')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        let mut raw = String::from("GET /b/k HTTP/1.1\r\nHost: x\r\n");
        for (n, v) in headers {
            raw += &format!("{n}: {v}\r\n");
        }
        raw += "\r\n";
        let mut h = RequestHead::default();
        http1::request::parse(raw.as_bytes(), &mut h, &http1::HeadLimits::default())
            .expect("a request head")
            .expect("complete");
        h
    }

    fn meta() -> ObjectMeta {
        ObjectMeta {
            size: 1,
            mtime_ms: 1_700_000_000_000,
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            ..Default::default()
        }
    }

    #[test]
    fn read_and_copy_conditions_agree() {
        let etag = "\"5d41402abc4b2a76b9719d911017c592\"";
        let weak = "W/\"5d41402abc4b2a76b9719d911017c592\"";
        let before = "Mon, 13 Nov 2023 00:00:00 GMT";
        let after = "Wed, 15 Nov 2023 00:00:00 GMT";
        let cases: &[(&[(&str, &str)], Verdict)] = &[
            (&[], Verdict::Proceed),
            (&[("if-match", etag)], Verdict::Proceed),
            (&[("if-match", weak)], Verdict::Proceed),
            (&[("if-match", "*")], Verdict::Proceed),
            (
                &[(
                    "if-match",
                    "\"other\", W/\"5d41402abc4b2a76b9719d911017c592\"",
                )],
                Verdict::Proceed,
            ),
            (&[("if-match", "\"other\"")], Verdict::Failed),
            (&[("if-none-match", weak)], Verdict::NotModified),
            (&[("if-none-match", "\"other\"")], Verdict::Proceed),
            (&[("if-unmodified-since", before)], Verdict::Failed),
            (&[("if-unmodified-since", after)], Verdict::Proceed),
            (&[("if-modified-since", after)], Verdict::NotModified),
            (&[("if-modified-since", before)], Verdict::Proceed),
            // If-Match decides over If-Unmodified-Since, If-None-Match over
            // If-Modified-Since.
            (
                &[("if-match", etag), ("if-unmodified-since", before)],
                Verdict::Proceed,
            ),
            (
                &[("if-none-match", "\"other\""), ("if-modified-since", after)],
                Verdict::Proceed,
            ),
        ];
        for (headers, want) in cases {
            assert_eq!(
                evaluate(&head(headers), &READ, &meta()),
                *want,
                "{headers:?}"
            );
            let copy: Vec<(String, &str)> = headers
                .iter()
                .map(|(n, v)| (format!("x-amz-copy-source-{n}"), *v))
                .collect();
            let copy: Vec<(&str, &str)> = copy.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            assert_eq!(
                evaluate(&head(&copy), &COPY_SOURCE, &meta()),
                *want,
                "{copy:?}"
            );
        }
    }
}
