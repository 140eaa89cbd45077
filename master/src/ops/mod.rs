//! The operations of the master's API, one module per group; each writes
//! its whole answer. Crash ordering is documented in each.

pub mod delete;
pub mod get;
pub mod install;
pub mod intent;
pub mod list;
pub mod locks;
pub mod put;
pub mod rebalance;
