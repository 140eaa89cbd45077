//! The S3 API, on the master's port (and on `--s3-port`).

pub mod sigv4;
pub mod time;
pub mod xml;
