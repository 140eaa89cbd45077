//! HTTP/1.1 on monoio (io_uring, or epoll where io_uring is refused), for
//! servers and clients that stream large bodies through bounded buffers.
//! It knows no application: methods it does not name are tokens a service
//! matches on, and headers are looked up by name.
//!
//! Server side:
//! - `request`: a request head parsed on httparse, with the framing rules
//!   that keep a server safe (one framing, one Host, bounded sizes).
//! - `body`: `Content-Length`, chunked (with trailers) and until-close
//!   bodies, read into a caller's buffer.
//! - `conn`: a connection with its read and write buffers and timeouts.
//! - `response`: status lines, headers and the cached `Date`.
//! - `service`: the per-connection loop around a [`Service`].
//! - `server`: one [`Server`] handle over `runtime`'s runtimes, listeners,
//!   signals and graceful shutdown.
//!
//! Client side:
//! - `client`: request heads, response heads, a [`client::Dialer`].
//! - `pipeline`: HEAD requests to one host sharing a connection.
//!
//! Operations: `admin` (a small blocking listener for metrics, health and
//! status pages), `metrics` (request metrics in the Prometheus format).
//!
//! Both: `chunked` (chunk framing with trailers), `percent` (URL
//! decoding, one rule), `range` (`Range` and validators), `duration`
//! (Go-style durations for command lines).

pub mod admin;
pub mod body;
pub mod chunked;
pub mod client;
pub mod conn;
pub mod duration;
pub mod metrics;
pub mod percent;
pub mod pipeline;
pub mod range;
pub mod request;
pub mod response;
pub mod runtime;
pub mod server;
pub mod service;

pub use body::{BodyKind, BodyReader};
pub use conn::{BodyState, Conn, Timeouts};
pub use request::{HeadLimits, Method, RequestHead};
pub use response::{Answer, Head};
pub use runtime::{DriverKind, Shutdown};
pub use server::Server;
pub use service::Service;

/// Why a message could not be read or understood. Each maps to one status
/// in [`HttpError::status`]; I/O errors and timeouts close the connection.
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
    /// The status to answer with, or `None` when the connection is broken
    /// and can only be closed.
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
