//! mkv: minikeyvalue's master. Three crates, each using only those below
//! it: this one (the server, its plain API, the commands), `mkv-s3` (the
//! S3 API) and `mkv-store` (index, stored formats, volumes' client, the
//! multi-step writes; its modules are re-exported here under their own
//! names). This crate's modules, layer by layer:
//! - `front`: `server` starts the listeners; `service` turns each request
//!   into a route (`router`) and runs it, on the plain API or on
//!   `mkv_s3::serve`; `request` is what a plain handler knows of the
//!   request and how it starts its answer.
//! - `plain`: the original's API — `get` (GET/HEAD), `put`, `delete`
//!   (DELETE/UNLINK), `list`, `rebalance` (one key) — over `mkv_store`'s
//!   `Store` and `ops`.
//! - `state`: what the threads share (`App`) and what each owns (`Local`:
//!   its `Store`).
//! - `tools`: the commands — `serve`, `rebuild`, `rebalance`, `dev`,
//!   `verify` (replicas, orphans; `--repair`) — `journal`, the server's
//!   thread that undoes what crashes left, and `progress`.
//! - `config` (the command line) and `error` (the commands' errors).
//! - Operations: `health` (the thread that checks the volumes and counts the
//!   index), `admin` (the admin listener: metrics, health, readiness and
//!   the status page).
//!
//! The HTTP/1.1 itself is the `http1` crate's; the volume crate is used only
//! by `mkv dev`, which runs volumes in the same process.

pub use mkv_store::{
    client, cluster, digests, index, md5x, meta, metrics, ops, placement, record, time, Store,
};

pub mod admin;
pub mod config;
pub mod error;
pub mod front;
pub mod health;
pub mod plain;
pub mod state;
pub mod tools;
