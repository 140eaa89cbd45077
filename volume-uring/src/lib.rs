//! volume-uring: an HTTP/1.1 file server on io_uring (monoio) that does what
//! minikeyvalue's nginx volumes do — WebDAV PUT/DELETE, GET with ranges,
//! nginx's JSON folder listings — and never shows a half-written file.
//!
//! Where a request goes:
//! - `server`: listeners and one runtime per thread; graceful shutdown.
//! - `conn`: one connection's request loop, routing by method.
//! - `fspath`: the one place a URL becomes a path under the root.
//! - `get` (files; folders go to `listing`), `put`, `delete`.
//! - `range`: `Range`, `ETag`, `Last-Modified`, conditional requests.
//! - `checksum`: the CRC32 kept in an xattr; `scrub` re-checks them.
//! - `http`: HTTP/1.1 parsing and writing, shared with the master.
//! - `runtime`: monoio runtimes, reuse-port listeners, signals (shared too).
//! - `error`: the crate's errors and their statuses.

pub mod aligned;
pub mod checksum;
pub mod conn;
pub mod delete;
pub mod error;
pub mod fspath;
pub mod get;
pub mod group_sync;
pub mod http;
pub mod listing;
pub mod put;
pub mod range;
pub mod runtime;
pub mod scrub;
pub mod server;

pub use server::{Config, Server};
