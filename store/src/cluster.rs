//! The cluster a master serves: its index, its volumes and how values are
//! placed and kept on them (the checked flags of `mkv server` and the tools).

use std::path::PathBuf;
use std::time::Duration;

/// What every command that touches a cluster needs, checked.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub db: PathBuf,
    pub volumes: Vec<String>,
    pub replicas: usize,
    pub subvolumes: u32,
    pub protect: bool,
    pub md5sum: bool,
    pub fallback: Option<String>,
    pub voltimeout: Duration,
    pub volume_timeout: Duration,
    pub verbose: bool,
}
