//! The volume server's errors, and the one place they become statuses.

use http1::HttpError;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("bad path: {0}")]
    BadPath(&'static str),
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("a PUT needs Content-Length or chunked encoding")]
    LengthRequired,
    #[error("name too long")]
    NameTooLong,
    #[error("no space left on the volume")]
    NoSpace,
    #[error("{0}")]
    BadBody(&'static str),
    #[error("i/o: {0}")]
    Io(std::io::Error),
    #[error("busy: {0}")]
    Busy(&'static str),
}

impl From<std::io::Error> for VolumeError {
    fn from(e: std::io::Error) -> Self {
        use rustix::io::Errno;
        let errno = e.raw_os_error().map(Errno::from_raw_os_error);
        match errno {
            Some(Errno::NOENT) => VolumeError::NotFound,
            Some(Errno::NOTDIR) => VolumeError::Conflict("a parent of this path is a file"),
            Some(Errno::ISDIR) => VolumeError::Conflict("this path is a directory"),
            Some(Errno::ACCESS) | Some(Errno::PERM) => VolumeError::Forbidden("permission denied"),
            Some(Errno::XDEV) | Some(Errno::LOOP) => {
                VolumeError::Forbidden("path leaves the volume")
            }
            Some(Errno::NAMETOOLONG) => VolumeError::NameTooLong,
            Some(Errno::NOSPC) | Some(Errno::DQUOT) => VolumeError::NoSpace,
            _ => VolumeError::Io(e),
        }
    }
}

impl From<rustix::io::Errno> for VolumeError {
    fn from(e: rustix::io::Errno) -> Self {
        std::io::Error::from(e).into()
    }
}

impl VolumeError {
    /// The answer's status; `None` when the connection can only be closed
    /// (the peer is gone, or part of an answer was already sent).
    pub fn status(&self) -> Option<u16> {
        match self {
            VolumeError::Http(e) => e.status(),
            VolumeError::BadPath(_) => Some(400),
            VolumeError::NotFound => Some(404),
            VolumeError::Forbidden(_) => Some(403),
            VolumeError::MethodNotAllowed => Some(405),
            VolumeError::Conflict(_) => Some(409),
            VolumeError::LengthRequired => Some(411),
            VolumeError::NameTooLong => Some(414),
            VolumeError::NoSpace => Some(507),
            VolumeError::BadBody(_) => Some(400),
            VolumeError::Io(_) => Some(500),
            VolumeError::Busy(_) => Some(503),
        }
    }
}
