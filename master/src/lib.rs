//! mkv: minikeyvalue's master. Where a request goes:
//! - `config`: the command line (the original's flags, Go spellings too).
//! - `server`: shared and per-thread state, routing, listeners.
//! - `router`: method + query → an operation.
//! - `get` (GET/HEAD), `put`, `delete` (DELETE/UNLINK), `list`, `rebalance`.
//! - `fanout`: one stream to several volumes (PUT, rebalance copies).
//! - `volume_client`: pooled keep-alive HTTP client for volumes; `transfer`:
//!   its streaming uploads and downloads; `head_lanes`: its pipelined HEADs.
//! - `placement` (key2path, key2volume), `record` (the index value codec).
//! - `index`: the only code that touches LevelDB (durable env, group commit).
//! - `locks`: per-key write locks.
//! - `rebuild`, `rebalance_tool`: the offline commands; `dev`: `mkv dev`.
//! - `error`: the crate's errors and their statuses.

pub mod config;
pub mod delete;
pub mod dev;
pub mod error;
pub mod fanout;
pub mod get;
pub mod head_lanes;
pub mod index;
pub mod list;
pub mod locks;
pub mod placement;
pub mod progress;
pub mod put;
pub mod rebalance;
pub mod rebalance_tool;
pub mod rebuild;
pub mod record;
pub mod router;
pub mod server;
pub mod transfer;
pub mod volume_client;
