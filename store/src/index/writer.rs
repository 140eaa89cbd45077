//! The index writer thread. It takes every job waiting, appends all the
//! writes to the log as one batch under the lock, answers the lookups and
//! the relaxed writes, then syncs the log once for the synced writes —
//! outside the lock, so readers go on while the disk works (group commit).
//! rusty-leveldb compacts inside a write, for up to a few hundred
//! milliseconds: here, that holds up no runtime thread.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use bytes::Bytes;
use futures_channel::oneshot;
use rusty_leveldb::WriteBatch;

use super::core::{spawn_filter_scan, Core};
use super::Write;

/// Work for the writer thread, and where to answer.
pub(super) enum Job {
    Write {
        ops: Vec<Write>,
        synced: bool,
        done: oneshot::Sender<Result<(), String>>,
    },
    /// A lookup made while the writer was writing.
    Read {
        key: Vec<u8>,
        done: oneshot::Sender<Option<Bytes>>,
    },
}

/// Starts the writer thread; it ends when every sender is dropped.
pub(super) fn spawn(core: Arc<Core>) -> std::io::Result<(mpsc::Sender<Job>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let writer = std::thread::Builder::new()
        .name("index-writer".into())
        .spawn(move || write_groups(&core, &rx))?;
    Ok((tx, writer))
}

/// A write waiting for the writer thread's answer.
struct Waiter {
    synced: bool,
    done: oneshot::Sender<Result<(), String>>,
}

fn write_groups(core: &Arc<Core>, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while let Ok(more) = jobs.try_recv() {
            group.push(more);
        }
        let (written, waiters, filter_full) = append(core, group);
        if let Err(e) = &written {
            tracing::error!(error = %e, "index write failed");
        }
        // `insert` says so once per filter, so one scan runs at a time.
        if filter_full {
            if let Err(e) = spawn_filter_scan(core) {
                tracing::warn!(error = %e, "cannot start a scan for a larger miss filter");
            }
        }
        answer(core, written, waiters);
    }
}

/// Appends the writes of `group` as one batch and answers its lookups;
/// returns the outcome, the writes to answer, and whether the miss filter
/// is full.
fn append(core: &Core, group: Vec<Job>) -> (Result<(), String>, Vec<Waiter>, bool) {
    let mut batch = WriteBatch::default();
    let mut waiters = Vec::new();
    let mut reads = Vec::new();
    let mut filter_full = false;
    let writes = group.iter().any(|j| matches!(j, Job::Write { .. }));
    core.writing.store(writes, Ordering::Release);
    let mut db = core.lock();
    for job in group {
        match job {
            Job::Write { ops, synced, done } => {
                crate::metrics::METRICS
                    .index_writes
                    .inc_by(ops.len() as u64);
                filter_full |= stage(core, &mut batch, ops);
                waiters.push(Waiter { synced, done });
            }
            Job::Read { key, done } => reads.push((key, done)),
        }
    }
    let synced = waiters.iter().any(|w| w.synced);
    // With `synced`, LevelDB hands the log to the kernel (the env's flush
    // does not sync it); otherwise it stays in LevelDB's buffer.
    let written = if writes {
        db.write(batch, synced).map_err(|e| e.to_string())
    } else {
        Ok(())
    };
    core.writing.store(false, Ordering::Release);
    for (key, done) in reads {
        let _ = done.send(core.lookup(&mut db, &key));
    }
    (written, waiters, filter_full)
}

/// Adds `ops` to the batch (under the lock). Keys go into the miss filter
/// before their records: a filter scan starting meanwhile sees one or the
/// other. Written keys leave the record cache (lookups bring them back, so
/// a stream of writes cannot push out the records being read). Returns
/// whether the filter is full.
fn stage(core: &Core, batch: &mut WriteBatch, ops: Vec<Write>) -> bool {
    let mut filter_full = false;
    for op in ops {
        match op {
            Write::Put(k, v) => {
                filter_full |= core.filter.insert(&k);
                core.cache.remove(&k);
                batch.put(&k, &v);
            }
            Write::Delete(k) => {
                core.cache.remove(&k);
                batch.delete(&k);
            }
        }
    }
    filter_full
}

/// Answers the relaxed writes at once, and the synced ones once the log is
/// on disk.
fn answer(core: &Core, written: Result<(), String>, waiters: Vec<Waiter>) {
    let (synced, relaxed): (Vec<_>, Vec<_>) = waiters.into_iter().partition(|w| w.synced);
    for waiter in relaxed {
        let _ = waiter.done.send(written.clone());
    }
    if synced.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let result = written.and_then(|()| {
        core.log
            .sync()
            .map_err(|e| format!("sync of the index log: {e}"))
    });
    let m = &*crate::metrics::METRICS;
    m.index_sync_seconds
        .observe(started.elapsed().as_secs_f64());
    m.index_sync_batch.observe(synced.len() as f64);
    if let Err(e) = &result {
        tracing::error!(error = %e, "index sync failed");
    }
    for waiter in synced {
        let _ = waiter.done.send(result.clone());
    }
}

pub(super) use http1::runtime::block_on;
