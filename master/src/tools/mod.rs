//! The commands: `serve` (the HTTP API), `rebuild` (the index from the
//! volumes), `rebalance` (values to where placement now puts them), `dev`
//! (a whole cluster in one process), `verify` (replicas and files checked,
//! and repaired), `migrate` (an index copied between LevelDB and
//! PostgreSQL), `journal` (the thread that finishes
//! what crashes and failures left); `progress` reports on the long ones.

pub mod dev;
pub mod journal;
pub mod migrate;
pub mod progress;
pub mod rebalance;
pub mod rebuild;
pub mod serve;
pub mod verify;
