//! The master's errors, and the one place they become statuses.

use volume_uring::http::HttpError;

use crate::index::IndexError;
use crate::volume_client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("another write of this key is in progress")]
    Busy,
    #[error("an empty value cannot be stored")]
    LengthRequired,
    #[error("{0}")]
    Unstorable(String),
    #[error("more than 1000000 keys: use limit")]
    TooManyKeys,
    #[error("replica failed: {0}")]
    Replica(#[from] ClientError),
    #[error("replica {replica}: {why}")]
    ReplicaAnswer { replica: String, why: String },
    #[error("index: {0}")]
    Index(#[from] IndexError),
    #[error(transparent)]
    Corrupt(#[from] crate::record::CorruptRecord),
}

impl MasterError {
    /// Work handed to the blocking pool that did not come back (its thread
    /// panicked): a 500.
    pub fn pool_failed(what: &str) -> MasterError {
        MasterError::Http(
            std::io::Error::other(format!("{what} failed on the blocking pool")).into(),
        )
    }

    /// The answer's status; `None` when the connection can only be closed.
    pub fn status(&self) -> Option<u16> {
        match self {
            MasterError::Http(e) => e.status(),
            MasterError::BadRequest(_) => Some(400),
            MasterError::NotFound => Some(404),
            MasterError::Forbidden => Some(403),
            MasterError::MethodNotAllowed => Some(405),
            MasterError::Busy => Some(409),
            MasterError::LengthRequired => Some(411),
            // The original had no such check; nginx answered its PUT 409 or
            // failed, so it answered 500 after writing the soft record.
            MasterError::Unstorable(_) => Some(400),
            MasterError::TooManyKeys => Some(413),
            MasterError::Replica(e) if e.status == Some(507) => Some(507),
            MasterError::Replica(_) | MasterError::ReplicaAnswer { .. } => Some(500),
            MasterError::Index(_) | MasterError::Corrupt(_) => Some(500),
        }
    }
}
