//! The original's API, one module per group of methods; each checks the
//! request, calls `ops` for what it writes, and writes its whole answer.

pub mod delete;
pub mod get;
pub mod list;
pub mod put;
pub mod rebalance;
