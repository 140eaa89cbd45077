//! Temporary files of uploads that a crash or a kill cut off
//! (`.mkv-tmp-<pid>-…`, never renamed into place). At start they are
//! removed, on a thread of their own so that serving starts at once, and
//! the files stored are counted for the metrics. While serving, `mkv
//! verify` can list those left since (`GET /?mkv-temp`) and remove them
//! (`POST /?mkv-sweep`). Files of this process's own uploads (its pid in
//! the name) are never touched: they are uploads in flight.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::upload::TEMP_PREFIX;
use crate::admin::metrics::METRICS;

/// Starts the sweep of `root` on a thread; it logs what it removed.
pub fn spawn(root: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("sweep".into())
        .spawn(move || {
            let mut files = 0;
            let (removed, failed) = remove(&root, Duration::ZERO, &mut files);
            METRICS.files.inc_by(files as i64);
            METRICS.temp_removed.inc_by(removed);
            if removed > 0 || failed > 0 {
                tracing::info!(removed, failed, "temporary files of cut-off uploads");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the sweep of temporary files");
    }
}

/// A temporary file no upload of this process owns.
pub struct Leftover {
    pub path: PathBuf,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
}

/// The leftover temporary files below `root` last written over `age` ago;
/// `files` counts the other files seen.
pub fn leftovers(root: &Path, age: Duration, files: &mut u64) -> Vec<Leftover> {
    let own = format!("{}-", std::process::id());
    let cutoff = SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH);
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            match name.as_bytes().strip_prefix(TEMP_PREFIX) {
                Some(rest) if kind.is_file() && !rest.starts_with(own.as_bytes()) => {
                    let Ok(meta) = entry.metadata() else { continue };
                    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
                    if mtime <= cutoff {
                        found.push(Leftover {
                            path: entry.path(),
                            size: meta.len(),
                            mtime: mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                        });
                    }
                }
                Some(_) => {}
                None if kind.is_dir() => stack.push(entry.path()),
                None => *files += 1,
            }
        }
    }
    found
}

/// Removes the leftover temporary files below `root` older than `age`;
/// returns how many were removed and how many could not be.
pub fn remove(root: &Path, age: Duration, files: &mut u64) -> (u64, u64) {
    let mut counts = (0, 0);
    for left in leftovers(root, age, files) {
        match std::fs::remove_file(&left.path) {
            Ok(()) => counts.0 += 1,
            Err(e) => {
                tracing::warn!(path = %left.path.display(), error = %e, "cannot remove a temporary file");
                counts.1 += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_others_temp_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("ab/cd");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join(".mkv-tmp-1-2-3"), b"cut").unwrap();
        std::fs::write(tmp.path().join(".mkv-tmp-99999999-1-1"), b"cut").unwrap();
        let own = format!(".mkv-tmp-{}-5-6", std::process::id());
        std::fs::write(deep.join(&own), b"mine").unwrap();
        std::fs::write(deep.join("value"), b"kept").unwrap();
        let mut files = 0;
        let young = leftovers(tmp.path(), Duration::from_secs(3600), &mut files);
        assert!(young.is_empty(), "nothing is an hour old");
        assert_eq!(remove(tmp.path(), Duration::ZERO, &mut files), (2, 0));
        assert!(deep.join(&own).exists() && deep.join("value").exists());
        assert!(!deep.join(".mkv-tmp-1-2-3").exists());
        assert_eq!(files, 2, "the value, counted by both walks");
    }
}
