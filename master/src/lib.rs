//! mkv: minikeyvalue's master. Every module, layer by layer (each uses only
//! the layers below it):
//! - `front`: `server` starts the listeners; `service` turns each request
//!   into an operation (`router`) and runs it; `request` is what an
//!   operation knows of the request and how it starts its answer.
//! - `s3`: the S3 API on the same port (router, signatures, payloads,
//!   the operations by group, XML); it calls `ops` for what the plain API
//!   does too.
//! - `ops`: the operations — `get` (GET/HEAD), `put`, `delete`
//!   (DELETE/UNLINK), `list`, `rebalance` (one key) — `locks`, the
//!   per-key write locks they take, `intent`, the one write-intent
//!   protocol every multi-step write follows and the one function that
//!   undoes each kind, and `install`, a staged value put in a key's place.
//! - `state`: what the threads share (`App`) and what each owns (`Local`).
//! - `index`: the only code that touches LevelDB (API, core, read views,
//!   writer thread, durable env, miss filter, record cache).
//! - `record` (the original's `/` records) and `meta` (every other record:
//!   S3 metadata, buckets, uploads, parts, intents; the hand-read form a
//!   listing decodes): the only code that reads or writes stored formats.
//! - `client`: the HTTP client for volumes — pooled connections, replies,
//!   pipelined HEADs, streaming transfers, volume-to-volume `copy`, and
//!   `fanout` (one stream to several volumes).
//! - `digests` (md5 and S3 checksums of a streaming value, on a hashing
//!   thread), `md5x` (md5 of many values at once, one per SIMD lane),
//!   `placement` (key2path, key2volume), `time` (S3's date formats).
//! - `tools`: the commands — `serve`, `rebuild`, `rebalance`, `dev`,
//!   `verify` (replicas, orphans; `--repair`) — `journal`, the server's
//!   thread that undoes what crashes left, and `progress`.
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
