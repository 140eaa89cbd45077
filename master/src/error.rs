//! The master's errors, and the one place they become statuses.

use http1::HttpError;

use crate::client::ClientError;
use crate::index::IndexError;
use crate::s3::error::{Code, S3Error};

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
    /// Work handed to the blocking pool did not come back (its thread
    /// panicked).
    #[error("{0} failed on the blocking pool")]
    Pool(&'static str),
    /// An S3 request's error, with its S3 code.
    #[error(transparent)]
    S3(#[from] S3Error),
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
            MasterError::Index(_) | MasterError::Corrupt(_) | MasterError::Pool(_) => Some(500),
            MasterError::S3(e) => Some(e.status),
        }
    }

    /// The error as an S3 client should see it.
    pub fn to_s3(&self) -> S3Error {
        let status = self.status().unwrap_or(500);
        match self {
            MasterError::S3(e) => e.clone(),
            MasterError::NotFound => S3Error::no_such_key(),
            MasterError::Busy => S3Error::busy(),
            MasterError::Unstorable(why) => S3Error::new(Code::KeyTooLongError, why.clone()),
            MasterError::Replica(_) if status == 507 => {
                S3Error::new(Code::InsufficientStorage, "A replica has no space left.")
            }
            MasterError::Http(HttpError::IncompleteBody) => {
                S3Error::new(Code::IncompleteBody, "The body ended before its length.")
            }
            _ if status >= 500 => S3Error::internal(self),
            _ => S3Error::from_status(status, self.to_string()),
        }
    }
}

/// Why a command (`server`, `rebuild`, `rebalance`, `dev`) failed; `main`
/// prints it and exits with [`ToolError::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Bad or missing flags (exit code 2, as a usage error).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{errors} error(s); the index at {db} was not changed")]
    RebuildFailed { errors: usize, db: String },
    #[error("found keys on disk (runs): {0}")]
    Runs(std::io::Error),
    #[error("writing the index: {0}")]
    RebuildWrite(String),
    #[error("{key}: {source}")]
    CorruptRecord {
        key: String,
        #[source]
        source: crate::record::CorruptRecord,
    },
    #[error("{0} keys could not be moved (listed above); run it again once their volumes answer")]
    Unmoved(u64),
    #[error("{0} unfinished or failed writes could not be undone (a volume they name did not answer); nothing else was done")]
    Unsettled(usize),
    #[error("{0}")]
    Master(#[from] MasterError),
}

impl ToolError {
    /// An I/O failure, saying what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ToolError {
        let what = what.into();
        move |source| ToolError::Io { what, source }
    }

    /// 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolError::Usage(_) => 2,
            _ => 1,
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

    #[test]
    fn tool_errors_exit_codes() {
        assert_eq!(ToolError::Usage("-db is required".into()).exit_code(), 2);
        let e = ToolError::io("cannot listen on port 3000")(std::io::Error::other("in use"));
        assert_eq!(e.to_string(), "cannot listen on port 3000: in use");
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            ToolError::Unmoved(3).to_string(),
            "3 keys could not be moved (listed above); run it again once their volumes answer"
        );
    }
}
