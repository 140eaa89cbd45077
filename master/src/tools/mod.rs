//! The commands: `serve` (the HTTP API), `rebuild` (the index from the
//! volumes), `rebalance` (values to where placement now puts them), `dev`
//! (a whole cluster in one process); `progress` reports on the long ones.

pub mod dev;
pub mod progress;
pub mod rebalance;
pub mod rebuild;
pub mod serve;
