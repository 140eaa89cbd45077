//! Group commit for durable PUTs and DELETEs.
//!
//! A request that must be on disk before its answer hands the syncer
//! thread the files and folders it changed, once its writes are done. The
//! syncer takes every request waiting and makes them durable together:
//! - a few files (at most `FSYNC_MAX`: one upload or delete on its own)
//!   are `fsync`ed one by one, touching nothing else on the filesystem;
//! - more than that, `syncfs(2)` on the volume's filesystem: one pass of
//!   writeback and one device flush for all of them. Concurrent `fsync`s of
//!   many small files were measured here to be much slower: each writes its
//!   inode's table block and flushes the device on its own, and they queue
//!   behind each other on shared blocks.
//!
//! `syncfs` flushes the whole filesystem, so under load a volume sharing one
//! with a busy writer waits for that writer's dirty data too; `--no-fsync`
//! turns all of this off.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;

use futures_channel::oneshot;

/// Up to this many files in a group, each is fsynced; past it, `syncfs`.
const FSYNC_MAX: usize = 3;

struct Waiter {
    files: Vec<OwnedFd>,
    done: oneshot::Sender<Result<(), (std::io::ErrorKind, String)>>,
}

pub struct GroupSync {
    queue: mpsc::Sender<Waiter>,
}

impl GroupSync {
    /// Starts the syncer thread for the filesystem `fd` is on. It ends when
    /// the `GroupSync` is dropped.
    pub fn start(fd: OwnedFd) -> std::io::Result<GroupSync> {
        let (queue, waiters) = mpsc::channel();
        std::thread::Builder::new()
            .name("volume-syncer".into())
            .spawn(move || sync_groups(&fd, &waiters))?;
        Ok(GroupSync { queue })
    }

    /// Resolves once everything written to `files` (files or folders on the
    /// volume's filesystem) before the call is on disk.
    pub async fn sync(&self, files: &[&OwnedFd]) -> std::io::Result<()> {
        let stopped = || std::io::Error::other("the volume syncer stopped");
        let files = files
            .iter()
            .map(|f| f.try_clone())
            .collect::<std::io::Result<Vec<_>>>()?;
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Waiter { files, done })
            .map_err(|_| stopped())?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((kind, message))) => Err(std::io::Error::new(kind, message)),
            Err(_) => Err(stopped()),
        }
    }
}

fn sync_groups(fs: &OwnedFd, waiters: &mpsc::Receiver<Waiter>) {
    while let Ok(first) = waiters.recv() {
        let mut group = vec![first];
        while let Ok(more) = waiters.try_recv() {
            group.push(more);
        }
        let files = group.iter().map(|w| w.files.len()).sum::<usize>();
        let started = std::time::Instant::now();
        let result = if files <= FSYNC_MAX {
            group
                .iter()
                .flat_map(|w| &w.files)
                .try_for_each(|f| rustix::fs::fsync(f.as_fd()))
        } else {
            rustix::fs::syncfs(fs)
        };
        let m = &*crate::admin::metrics::METRICS;
        m.sync_seconds.observe(started.elapsed().as_secs_f64());
        m.sync_batch.observe(files as f64);
        let result = result.map_err(|e| {
            m.sync_failures.inc();
            let e = std::io::Error::from(e);
            tracing::error!(error = %e, "syncing the volume failed");
            (e.kind(), format!("sync: {e}"))
        });
        for waiter in group {
            let _ = waiter.done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_syncs_all_answered_and_data_kept() {
        let dir = tempfile::tempdir().unwrap();
        let fd = std::fs::File::open(dir.path()).unwrap();
        let sync = std::sync::Arc::new(GroupSync::start(fd.into()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sync = sync.clone();
                let path = dir.path().join(format!("f{t}"));
                std::thread::spawn(move || {
                    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        for i in 0..25 {
                            std::fs::write(&path, format!("{i}")).unwrap();
                            let file: OwnedFd = std::fs::File::open(&path).unwrap().into();
                            let files = [&file];
                            // 0 to 4 at once: alone, fsyncs; crowded, syncfs.
                            let waits: Vec<_> = (0..i % 5).map(|_| sync.sync(&files)).collect();
                            for w in futures_util::future::join_all(waits).await {
                                w.unwrap();
                            }
                        }
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for t in 0..4 {
            assert_eq!(
                std::fs::read(dir.path().join(format!("f{t}"))).unwrap(),
                b"24"
            );
        }
    }
}
