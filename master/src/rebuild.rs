//! `mkv rebuild`
use crate::config::{Cluster, ToolArgs};
pub fn run(_c: &Cluster, _a: &ToolArgs) -> Result<(), String> {
    Err("rebuild: not built yet".into())
}
