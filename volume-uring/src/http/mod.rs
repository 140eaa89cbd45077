//! HTTP/1.1 on httparse over monoio, shared by the volume server and the master.
//!
//! - `head`: parsing a request head into [`RequestHead`] (no allocation once warm).
//! - `body`: streaming request/response bodies (`Content-Length` and chunked).
//! - `conn`: a connection with its read buffer, write buffer and timeouts.
//! - `response`: status lines, headers and the cached `Date`.
//! - `serve`: the per-connection request loop, around a [`Service`].
//! - `client_head`: parsing a response head, for the master's volume client.
//! - `duration`: Go-style durations (`1s`, `500ms`, `1m30s`) for the CLI.

pub mod body;
pub mod client_head;
pub mod conn;
pub mod duration;
pub mod head;
pub mod response;
pub mod serve;

pub use body::{BodyKind, BodyReader};
pub use conn::{Conn, Timeouts};
pub use head::{HeadLimits, Method, RequestHead, Want};
pub use serve::Service;

/// Why a request could not be read or understood. Each maps to one status in
/// [`HttpError::status`]; I/O errors and timeouts close the connection silently.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    BadRequest(&'static str),
    #[error("request header fields too large")]
    HeadersTooLarge,
    #[error("URI too long")]
    UriTooLong,
    #[error("unsupported transfer-encoding")]
    UnsupportedTransferEncoding,
    #[error("HTTP version not supported")]
    VersionNotSupported,
    #[error("body ended early")]
    IncompleteBody,
    #[error("timed out")]
    Timeout,
    #[error("connection closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl HttpError {
    /// The status to answer with, or `None` when the connection is simply closed.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::BadRequest(_) => Some(400),
            HttpError::HeadersTooLarge => Some(431),
            HttpError::UriTooLong => Some(414),
            HttpError::UnsupportedTransferEncoding => Some(501),
            HttpError::VersionNotSupported => Some(505),
            HttpError::IncompleteBody => Some(400),
            HttpError::Timeout | HttpError::Closed | HttpError::Io(_) => None,
        }
    }
}
