//! The store's errors, and the one place they become the plain API's
//! statuses.

use http1::HttpError;

use crate::client::ClientError;
use crate::index::IndexError;

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
    /// An earlier write of the key failed and its copies are not all
    /// removed yet (a volume does not answer).
    #[error("an earlier failed write of this key is still being undone: {0}")]
    Unfinished(String),
    #[error("an empty value cannot be stored")]
    LengthRequired,
    #[error("{0}")]
    Unstorable(crate::placement::Unstorable),
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
    /// Work handed to the blocking pool did not come back (its thread
    /// panicked).
    #[error("{0} failed on the blocking pool")]
    Pool(&'static str),
}

impl MasterError {
    /// The answer's status; `None` only when the connection is broken.
    pub fn status(&self) -> Option<u16> {
        match self {
            MasterError::Http(e) => e.status(),
            MasterError::BadRequest(_) => Some(400),
            MasterError::NotFound => Some(404),
            MasterError::Forbidden => Some(403),
            MasterError::MethodNotAllowed => Some(405),
            MasterError::Busy => Some(409),
            MasterError::Unfinished(_) => Some(503),
            MasterError::LengthRequired => Some(411),
            // The original had no such check; nginx answered its PUT 409 or
            // failed, so it answered 500 after writing the soft record.
            MasterError::Unstorable(_) => Some(400),
            MasterError::TooManyKeys => Some(413),
            MasterError::Replica(e) if e.status == Some(507) => Some(507),
            MasterError::Replica(_) | MasterError::ReplicaAnswer { .. } => Some(500),
            // The database did not answer: try again (its masters go on).
            MasterError::Index(e) if e.is_unavailable() => Some(503),
            MasterError::Index(_) | MasterError::Corrupt(_) | MasterError::Pool(_) => Some(500),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_but_a_broken_connection_has_a_status() {
        assert_eq!(MasterError::Pool("the listing").status(), Some(500));
        assert_eq!(
            MasterError::Pool("md5").to_string(),
            "md5 failed on the blocking pool"
        );
        assert_eq!(MasterError::Http(HttpError::Closed).status(), None);
        assert_eq!(
            MasterError::Http(HttpError::BadRequest("x")).status(),
            Some(400)
        );
    }
}
