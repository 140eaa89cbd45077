//! Group commit for durable PUTs and DELETEs.
//!
//! An upload that must be on disk before its answer asks for a sync here
//! once its writes are done. One thread runs `syncfs(2)` on the volume's
//! filesystem for every request that arrived before that call began, and
//! answers them all: the data, inodes and folders of all uploads in flight
//! share one pass of writeback and one device flush. Concurrent `fsync`s of
//! many small files were measured here to be three times slower: each
//! writes its inode's table block and flushes the device on its own, and
//! they queue behind each other on shared blocks.
//!
//! `syncfs` flushes the whole filesystem, so a volume sharing one with a
//! busy writer waits for that writer's dirty data too; `--no-fsync` turns
//! all of this off.

use std::os::fd::OwnedFd;
use std::sync::mpsc;

use futures_channel::oneshot;

type Waiter = oneshot::Sender<Result<(), (std::io::ErrorKind, String)>>;

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

    /// Resolves once everything written before the call is on disk.
    pub async fn sync(&self) -> std::io::Result<()> {
        let stopped = || std::io::Error::other("the volume syncer stopped");
        let (done, wait) = oneshot::channel();
        self.queue.send(done).map_err(|_| stopped())?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((kind, message))) => Err(std::io::Error::new(kind, message)),
            Err(_) => Err(stopped()),
        }
    }
}

fn sync_groups(fd: &OwnedFd, waiters: &mpsc::Receiver<Waiter>) {
    while let Ok(first) = waiters.recv() {
        let mut group = vec![first];
        while let Ok(more) = waiters.try_recv() {
            group.push(more);
        }
        let result = rustix::fs::syncfs(fd).map_err(|e| {
            let e = std::io::Error::from(e);
            tracing::error!(error = %e, "syncfs of the volume failed");
            (e.kind(), format!("syncfs: {e}"))
        });
        for waiter in group {
            let _ = waiter.send(result.clone());
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
                            let waits: Vec<_> = (0..4).map(|_| sync.sync()).collect();
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
