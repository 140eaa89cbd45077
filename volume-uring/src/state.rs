//! What every thread of a running volume shares.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http1::{Shutdown, Timeouts};

use crate::store::fspath::Root;
use crate::store::group_sync::GroupSync;

pub struct Ctx {
    pub root: Root,
    /// Where durable writes wait to be on disk; `None` with `--no-fsync`.
    pub sync: Option<GroupSync>,
    pub timeouts: Timeouts,
    pub grace: Duration,
    pub shutdown: Arc<Shutdown>,
    pub temp_files: TempFiles,
}

/// Temporary files of PUTs in progress, so that a shutdown that cannot wait
/// for them any longer still removes them.
#[derive(Default)]
pub struct TempFiles(Mutex<HashSet<PathBuf>>);

impl TempFiles {
    pub fn add(&self, path: PathBuf) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path);
    }

    pub fn remove(&self, path: &PathBuf) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
    }

    pub fn remove_all(&self) {
        for path in self.0.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            let _ = std::fs::remove_file(&path);
        }
    }
}
