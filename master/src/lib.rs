//! mkv: minikeyvalue's master. Where a request goes, layer by layer (each
//! uses only the layers below it):
//! - `front`: `server` starts the listeners; `service` turns each request
//!   into an operation (`router`) and runs it; `request` is what an
//!   operation knows of the request and how it starts its answer.
//! - `ops`: the operations — `get` (GET/HEAD), `put`, `delete`
//!   (DELETE/UNLINK), `list`, `rebalance` (one key) — `locks`, the
//!   per-key write locks they take, and `pending`, the records of writes
//!   in flight or failed that the journal finishes.
//! - `state`: what the threads share (`App`) and what each owns (`Local`).
//! - `index`: the only code that touches LevelDB (API, core, writer thread,
//!   durable env, miss filter, record cache).
//! - `client`: the HTTP client for volumes — pooled connections, replies,
//!   pipelined HEADs, streaming transfers, and `fanout` (one stream to
//!   several volumes).
//! - `placement` (key2path, key2volume) and `record` (the index value codec).
//! - `tools`: the commands — `serve`, `rebuild`, `rebalance`, `dev` — and
//!   `journal`, the server's thread that finishes what crashes left.
//! - `config` (the command line) and `error` (errors and their statuses).
//! - Operations: `metrics` (the Prometheus metrics every layer counts
//!   into), `health` (the thread that checks the volumes and counts the
//!   index), `admin` (the admin listener: metrics, health, readiness and
//!   the status page).
//!
//! The HTTP/1.1 itself is the `http1` crate's; the volume crate is used only
//! by `mkv dev`, which runs volumes in the same process.

pub mod admin;
pub mod client;
pub mod config;
pub mod digests;
pub mod error;
pub mod front;
pub mod health;
pub mod index;
pub mod md5x;
pub mod meta;
pub mod metrics;
pub mod ops;
pub mod placement;
pub mod record;
pub mod s3;
pub mod state;
pub mod time;
pub mod tools;
