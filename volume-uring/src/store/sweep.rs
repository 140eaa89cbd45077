//! At start, the temporary files of uploads that a crash or a kill cut off
//! (`.mkv-tmp-<pid>-…`, never renamed into place) are removed, on a thread
//! of their own so that serving starts at once. Files of this process's own
//! uploads (its pid in the name) are left alone.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::upload::TEMP_PREFIX;

/// Starts the sweep of `root` on a thread; it logs what it removed.
pub fn spawn(root: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("sweep".into())
        .spawn(move || {
            let (removed, failed) = sweep(&root);
            if removed > 0 || failed > 0 {
                tracing::info!(removed, failed, "temporary files of cut-off uploads");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the sweep of temporary files");
    }
}

/// Removes the temporary files below `root` that are not this process's;
/// returns how many were removed and how many could not be.
pub fn sweep(root: &Path) -> (u64, u64) {
    let own = format!("{}-", std::process::id());
    let mut counts = (0, 0);
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
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => counts.0 += 1,
                        Err(e) => {
                            tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove a temporary file");
                            counts.1 += 1;
                        }
                    }
                }
                _ if kind.is_dir() => stack.push(entry.path()),
                _ => {}
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
        assert_eq!(sweep(tmp.path()), (2, 0));
        assert!(deep.join(&own).exists() && deep.join("value").exists());
        assert!(!deep.join(".mkv-tmp-1-2-3").exists());
    }
}
