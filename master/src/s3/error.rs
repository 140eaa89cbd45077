//! S3's errors: a code, a status, a message, written as the XML `<Error>`
//! every S3 client parses (docs/s3.md, "Errors").

use http1::{response, Answer};

use super::xml::Xml;
use crate::front::request::SERVER;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct S3Error {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl S3Error {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error {
            code,
            status,
            message: message.into(),
        }
    }

    pub fn no_such_key() -> S3Error {
        S3Error::new(404, "NoSuchKey", "The specified key does not exist.")
    }

    pub fn no_such_bucket() -> S3Error {
        S3Error::new(404, "NoSuchBucket", "The specified bucket does not exist.")
    }

    pub fn no_such_upload() -> S3Error {
        S3Error::new(
            404,
            "NoSuchUpload",
            "The specified multipart upload does not exist.",
        )
    }

    pub fn access_denied(why: &str) -> S3Error {
        S3Error::new(403, "AccessDenied", format!("Access Denied: {why}"))
    }

    pub fn signature_mismatch() -> S3Error {
        S3Error::new(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    }

    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::new(400, "InvalidArgument", message)
    }

    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new(400, "InvalidRequest", message)
    }

    pub fn malformed_xml() -> S3Error {
        S3Error::new(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }

    pub fn bad_digest(what: &str) -> S3Error {
        S3Error::new(
            400,
            "BadDigest",
            format!("The {what} you specified did not match the calculated checksum."),
        )
    }

    pub fn busy() -> S3Error {
        S3Error::new(
            409,
            "OperationAborted",
            "A conflicting operation is in progress against this key. Please try again.",
        )
    }

    pub fn not_implemented(what: &str) -> S3Error {
        S3Error::new(501, "NotImplemented", format!("{what} is not implemented."))
    }

    pub fn internal(why: impl std::fmt::Display) -> S3Error {
        S3Error::new(
            500,
            "InternalError",
            format!("We encountered an internal error: {why}"),
        )
    }

    /// The code of an error whose S3 name is not known, from its status.
    pub fn from_status(status: u16, message: impl Into<String>) -> S3Error {
        let code = match status {
            400 => "InvalidRequest",
            403 => "AccessDenied",
            404 => "NoSuchKey",
            405 => "MethodNotAllowed",
            409 => "OperationAborted",
            411 => "MissingContentLength",
            413 => "EntityTooLarge",
            414 | 431 => "RequestHeaderSectionTooLarge",
            501 => "NotImplemented",
            503 => "SlowDown",
            507 => "InsufficientStorage",
            _ => "InternalError",
        };
        S3Error::new(status, code, message)
    }
}

/// A request id: unique in this process, and across restarts likely so.
pub fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| crate::time::now_ms() ^ u64::from(std::process::id()) << 40);
    format!(
        "{:016X}",
        start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
    )
}

/// Writes a whole error answer; `resource` is the request's path. A HEAD's
/// answer keeps the head (the connection loop strips the body).
pub fn write(
    out: &mut Vec<u8>,
    e: &S3Error,
    resource: &str,
    keep_alive: bool,
    http10: bool,
) -> Answer {
    let id = request_id();
    let mut x = Xml::error();
    x.elem("Code", e.code)
        .elem("Message", &e.message)
        .elem("Resource", resource)
        .elem("RequestId", &id);
    let body = x.finish("Error");
    let mut head = response::start(out, e.status, SERVER);
    response::header(out, "x-amz-request-id", id.as_bytes());
    response::header(out, "Content-Type", b"application/xml");
    head.content_length(out, body.len() as u64);
    let answer = head.end(out, keep_alive, http10);
    out.extend_from_slice(&body);
    answer
}
