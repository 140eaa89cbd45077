//! S3's errors: a code, a status, a message, written as the XML `<Error>`
//! every S3 client parses (docs/s3.md, "Errors").

use http1::{response, Answer, HttpError};
use mkv_store::client::ClientError;
use mkv_store::error::MasterError;
use mkv_store::index::IndexError;
use mkv_store::placement::Unstorable;
use mkv_store::record::CorruptRecord;
use mkv_store::SERVER;

use super::xml::Xml;

/// Every S3 error code this server answers, each with the status S3 gives
/// it: the one place a code's name and status are written.
macro_rules! codes {
    ($($name:ident = $status:literal),* $(,)?) => {
        #[allow(clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code {
            $($name),*
        }

        impl Code {
            /// The code as S3 writes it in `<Code>`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name)),*
                }
            }

            pub fn status(self) -> u16 {
                match self {
                    $(Code::$name => $status),*
                }
            }
        }
    };
}

codes! {
    AccessDenied = 403,
    AuthorizationHeaderMalformed = 400,
    AuthorizationQueryParametersError = 400,
    BadDigest = 400,
    BucketNotEmpty = 409,
    ConditionalRequestConflict = 409,
    EntityTooLarge = 400,
    EntityTooSmall = 400,
    IncompleteBody = 400,
    InsufficientStorage = 507,
    InternalError = 500,
    InvalidAccessKeyId = 403,
    InvalidArgument = 400,
    InvalidBucketName = 400,
    InvalidDigest = 400,
    InvalidPart = 400,
    InvalidPartOrder = 400,
    InvalidRange = 416,
    InvalidRequest = 400,
    KeyTooLongError = 400,
    MalformedPOSTRequest = 400,
    MalformedXML = 400,
    MaxPostPreDataLengthExceeded = 400,
    MaxMessageLengthExceeded = 400,
    MetadataTooLarge = 400,
    MissingSecurityHeader = 400,
    MethodNotAllowed = 405,
    MissingContentLength = 411,
    NoSuchBucket = 404,
    NoSuchKey = 404,
    NoSuchUpload = 404,
    NoSuchVersion = 404,
    NotImplemented = 501,
    OperationAborted = 409,
    PreconditionFailed = 412,
    RequestHeaderSectionTooLarge = 431,
    RequestTimeTooSkewed = 403,
    ServiceUnavailable = 503,
    SignatureDoesNotMatch = 403,
    SlowDown = 503,
    UserKeyMustBeSpecified = 400,
    XAmzContentSHA256Mismatch = 400,
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct S3Error {
    pub code: Code,
    /// The code's status, but for an HTTP-level refusal answered with its
    /// own ([`S3Error::from_status`]).
    pub status: u16,
    pub message: String,
}

impl S3Error {
    pub fn new(code: Code, message: impl Into<String>) -> S3Error {
        S3Error {
            code,
            status: code.status(),
            message: message.into(),
        }
    }

    pub fn no_such_key() -> S3Error {
        S3Error::new(Code::NoSuchKey, "The specified key does not exist.")
    }

    pub fn no_such_bucket() -> S3Error {
        S3Error::new(Code::NoSuchBucket, "The specified bucket does not exist.")
    }

    pub fn no_such_upload() -> S3Error {
        S3Error::new(
            Code::NoSuchUpload,
            "The specified multipart upload does not exist.",
        )
    }

    pub fn access_denied(why: &str) -> S3Error {
        S3Error::new(Code::AccessDenied, format!("Access Denied: {why}"))
    }

    pub fn signature_mismatch() -> S3Error {
        S3Error::new(
            Code::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided.",
        )
    }

    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::new(Code::InvalidArgument, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new(Code::InvalidRequest, message)
    }

    pub fn malformed_xml() -> S3Error {
        S3Error::new(Code::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }

    pub fn bad_digest(what: &str) -> S3Error {
        S3Error::new(
            Code::BadDigest,
            format!("The {what} you specified did not match the calculated checksum."),
        )
    }

    pub fn busy() -> S3Error {
        S3Error::new(
            Code::OperationAborted,
            "A conflicting operation is in progress against this key. Please try again.",
        )
    }

    pub fn not_implemented(what: &str) -> S3Error {
        S3Error::new(Code::NotImplemented, format!("{what} is not implemented."))
    }

    pub fn internal(why: impl std::fmt::Display) -> S3Error {
        S3Error::new(
            Code::InternalError,
            format!("We encountered an internal error: {why}"),
        )
    }

    /// The code of an error whose S3 name is not known, from its status
    /// (which it keeps).
    pub fn from_status(status: u16, message: impl Into<String>) -> S3Error {
        let code = match status {
            400 => Code::InvalidRequest,
            403 => Code::AccessDenied,
            404 => Code::NoSuchKey,
            405 => Code::MethodNotAllowed,
            409 => Code::OperationAborted,
            411 => Code::MissingContentLength,
            413 => Code::EntityTooLarge,
            414 | 431 => Code::RequestHeaderSectionTooLarge,
            501 => Code::NotImplemented,
            503 => Code::SlowDown,
            507 => Code::InsufficientStorage,
            _ => Code::InternalError,
        };
        S3Error {
            status,
            ..S3Error::new(code, message)
        }
    }
}

/// Why an S3 request failed: an S3 error of its own, or the store's,
/// answered as S3 answers it ([`Error::to_s3`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Store(#[from] MasterError),
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Error {
        Error::Store(e.into())
    }
}

impl From<IndexError> for Error {
    fn from(e: IndexError) -> Error {
        Error::Store(e.into())
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Error {
        Error::Store(e.into())
    }
}

impl From<CorruptRecord> for Error {
    fn from(e: CorruptRecord) -> Error {
        Error::Store(e.into())
    }
}

impl Error {
    /// The answer's status; `None` only when the connection is broken.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::S3(e) => Some(e.status),
            Error::Store(e) => e.status(),
        }
    }

    /// The error as an S3 client should see it.
    pub fn to_s3(&self) -> S3Error {
        match self {
            Error::S3(e) => e.clone(),
            Error::Store(e) => of_store(e),
        }
    }
}

/// A store error as an S3 client should see it.
pub fn of_store(e: &MasterError) -> S3Error {
    let status = e.status().unwrap_or(500);
    match e {
        MasterError::NotFound => S3Error::no_such_key(),
        MasterError::Busy => S3Error::busy(),
        MasterError::Unstorable(why @ Unstorable::TooLong { .. }) => {
            S3Error::new(Code::KeyTooLongError, why.to_string())
        }
        MasterError::Unstorable(why) => S3Error::invalid_argument(why.to_string()),
        MasterError::Replica(_) if status == 507 => {
            S3Error::new(Code::InsufficientStorage, "A replica has no space left.")
        }
        MasterError::Http(HttpError::IncompleteBody) => {
            S3Error::new(Code::IncompleteBody, "The body ended before its length.")
        }
        MasterError::Index(e) if e.is_unavailable() => S3Error::new(
            Code::ServiceUnavailable,
            format!("The index does not answer; please try again: {e}."),
        ),
        _ if status >= 500 => S3Error::internal(e),
        _ => S3Error::from_status(status, e.to_string()),
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
    x.elem("Code", e.code.as_str())
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
