//! The commands' errors; the store's are `mkv_store::error`'s.

use crate::index::IndexError;
pub use mkv_store::error::MasterError;

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
