//! `mkv rebalance`
use crate::config::{Cluster, RebalanceArgs};
pub fn run(_c: &Cluster, _a: &RebalanceArgs) -> Result<(), String> {
    Err("rebalance: not built yet".into())
}
