//! The store's writes, one module per kind; crash ordering is documented in
//! each, and every multi-step one follows `intent`.

pub mod delete;
pub mod install;
pub mod intent;
pub mod locks;
pub mod put;
pub mod rebalance;
