//! volume-uring: an HTTP/1.1 file server on io_uring (monoio) that does what
//! minikeyvalue's nginx volumes do — WebDAV PUT/DELETE, GET with ranges,
//! nginx's JSON folder listings — and never shows a half-written file.
//! The HTTP/1.1 itself is the `http1` crate's.
//!
//! Where a request goes:
//! - `server`: starts the listeners and threads; `state`: what they share.
//! - `front`: `service` decodes the path once and routes by method;
//!   `request` is what a handler knows of the request.
//! - `ops`: the handlers — `get` (files; folders go to `listing`, and
//!   `?recursive` to `walk`, off the runtime), `put`, `delete`, `stage` (the
//!   staging area for multipart uploads and overwrites: ranged PUTs and
//!   `?mkv-assemble`), `temp` (`?mkv-temp`, `?mkv-sweep`), `verify` (a
//!   HEAD that re-reads a file's CRC32); `Range` and the validators are
//!   http1's.
//! - `store`: the disk — `fspath` (the one place a URL becomes a path under
//!   the root), `checksum` (the CRC32 and md5 kept in an xattr), `xattr_at`
//!   (that xattr read by name, for listings), `upload` (temporary files and
//!   how a body is written), `place` (how a finished file takes its name,
//!   and free space), `group_sync` (group commit of fsyncs), `aligned`
//!   (buffers for `O_DIRECT`), `sweep` (the temporary files of cut-off
//!   uploads, removed at start).
//! - `scrub`: `volume scrub`, re-checking stored CRCs.
//! - `admin`: the admin listener (metrics, health, readiness) and the
//!   background scrub.
//! - `error`: the crate's errors and their statuses.

pub mod admin;
pub mod error;
pub mod front;
pub mod ops;
pub mod scrub;
pub mod server;
pub mod state;
pub mod store;

pub use server::{Config, Server};
