//! The index: the only code that touches LevelDB. This module is its API;
//! `core` holds the locked LevelDB with the miss filter (`filter`) and the
//! record cache (`cache`); `writer` is the writer thread; `env` makes
//! LevelDB's files durable.
//!
//! rusty-leveldb's `DB` is not `Sync` and even `get` takes `&mut self`, so it
//! sits behind a mutex held only for one lookup, one batch append, or one
//! page of a scan. Writes go to the writer thread, which appends every
//! write waiting as one batch and syncs the log once for all the synced
//! ones (group commit; see `env` for what else is synced when). A lookup
//! that misses the cache and finds the lock held by the writer queues
//! behind the write instead of waiting for the lock on its runtime thread.
//!
//! What survives: after a `Synced` write returns, a process crash or a power
//! loss. A `Relaxed` write is visible at once and reaches the disk with the
//! next synced write (or the index's close); a crash before that loses it.

mod cache;
mod core;
mod env;
mod filter;
#[cfg(test)]
mod tests;
mod views;
mod writer;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use futures_channel::oneshot;

use self::core::{spawn_filter_scan, Core};
use crate::record::{CorruptRecord, Record};
pub use filter::KeyFilter;
use writer::{block_on, Job};

/// A batch queued by [`Index::submit`]: its outcome, once applied.
#[must_use = "a queued batch may still fail"]
pub struct Submitted(oneshot::Receiver<Result<(), String>>);

impl Submitted {
    pub async fn await_applied(self) -> Result<(), IndexError> {
        match self.0.await {
            Ok(res) => res.map_err(IndexError::Write),
            Err(_) => Err(IndexError::Write("the index writer stopped".into())),
        }
    }

    /// [`Submitted::await_applied`] for threads outside a runtime.
    pub fn wait_blocking(self) -> Result<(), IndexError> {
        block_on(self.await_applied())
    }
}

/// Bytes of keys and records the record cache holds.
const CACHE_BYTES: usize = 32 << 20;
/// LevelDB's write buffer for bulk loads (its default is 4 MiB).
const BULK_WRITE_BUFFER: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot open the index at {path}: {msg}")]
    Open { path: String, msg: String },
    #[error("index write failed: {0}")]
    Write(String),
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
    #[error("index read failed: {0}")]
    Read(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// On disk before the call returns.
    Synced,
    /// Visible at once; on disk with the next synced write.
    Relaxed,
}

/// What a scan does after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Next,
    Stop,
    /// Skip to the first key at or after this one (which must be later).
    Seek(Vec<u8>),
}

pub enum Write {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

pub struct Index {
    core: Arc<Core>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Index {
    /// Opens (or creates) the index. With `filter`, a background thread
    /// loads every key into the miss filter; until it is done, every lookup
    /// goes to LevelDB.
    pub fn open(path: &Path, filter: bool) -> Result<Arc<Index>, IndexError> {
        Self::open_with(path, filter.then(KeyFilter::new), CACHE_BYTES)
    }

    /// Opens the index for writing many records at once (`mkv rebuild`):
    /// a larger write buffer, so that fewer, larger tables are flushed and
    /// compacted; no miss filter.
    pub fn open_bulk(path: &Path) -> Result<Arc<Index>, IndexError> {
        let core = Core::open(
            path,
            KeyFilter::off(),
            (CACHE_BYTES, Some(BULK_WRITE_BUFFER)),
        );
        Self::start(path, core?, false)
    }

    fn open_with(
        path: &Path,
        filter: Option<KeyFilter>,
        cache_bytes: usize,
    ) -> Result<Arc<Index>, IndexError> {
        let scan = filter.is_some();
        let filter = filter.unwrap_or_else(KeyFilter::off);
        let core = Core::open(path, filter, (cache_bytes, None))?;
        Self::start(path, core, scan)
    }

    /// Starts the writer thread (and the miss filter's scan) of an opened core.
    fn start(path: &Path, core: Core, scan: bool) -> Result<Arc<Index>, IndexError> {
        let core = Arc::new(core);
        let open_err = |e: std::io::Error| IndexError::Open {
            path: path.display().to_string(),
            msg: e.to_string(),
        };
        let (tx, writer) = writer::spawn(core.clone()).map_err(open_err)?;
        if scan {
            spawn_filter_scan(&core).map_err(open_err)?;
        }
        Ok(Arc::new(Index {
            core,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// The raw record of `key`, if any. Misses the filter rules out, and
    /// records in the cache, cost no lock; when the writer thread holds the
    /// lock, the lookup waits behind its write without blocking the calling
    /// thread.
    pub async fn get_raw(&self, key: &[u8]) -> Option<Bytes> {
        let core = &*self.core;
        if let Some(known) = core.known(key) {
            return known;
        }
        if let Some(mut db) = core.try_lock() {
            return core.lookup(&mut db, key);
        }
        // Taken: by the writer (whose write may compact for a long time),
        // or by another lookup or a page of a scan (soon over).
        if core.writing.load(Ordering::Acquire) {
            if let Some(answer) = self.read_behind_writes(key).await {
                return answer;
            }
        }
        core.lookup(&mut core.lock(), key)
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<Record>, IndexError> {
        decode(self.get_raw(key).await)
    }

    /// [`Index::get_raw`] for threads outside a runtime (the offline tools).
    pub fn get_raw_blocking(&self, key: &[u8]) -> Option<Bytes> {
        let core = &*self.core;
        core.known(key)
            .unwrap_or_else(|| core.lookup(&mut core.lock(), key))
    }

    /// [`Index::get`] for threads outside a runtime (the offline tools).
    pub fn get_blocking(&self, key: &[u8]) -> Result<Option<Record>, IndexError> {
        decode(self.get_raw_blocking(key))
    }

    /// A lookup by the writer thread, after the writes queued before it;
    /// None if the index is closed.
    async fn read_behind_writes(&self, key: &[u8]) -> Option<Option<Bytes>> {
        let (done, wait) = oneshot::channel();
        let job = Job::Read {
            key: key.to_vec(),
            done,
        };
        if !self.queue(job) {
            return None;
        }
        wait.await.ok()
    }

    /// Hands `job` to the writer thread; false if the index is closed.
    fn queue(&self, job: Job) -> bool {
        match self.jobs.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        }
    }

    pub async fn put(
        &self,
        key: &[u8],
        rec: &Record,
        durability: Durability,
    ) -> Result<(), IndexError> {
        self.apply(vec![Write::Put(key.to_vec(), rec.encode())], durability)
            .await
    }

    pub async fn delete(&self, key: &[u8], durability: Durability) -> Result<(), IndexError> {
        self.apply(vec![Write::Delete(key.to_vec())], durability)
            .await
    }

    /// Writes `ops` as one atomic batch (on the writer thread); returns
    /// once it is visible, and with `Synced` once it is on disk.
    pub async fn apply(&self, ops: Vec<Write>, durability: Durability) -> Result<(), IndexError> {
        self.submit(ops, durability)?.await_applied().await
    }

    /// [`Index::apply`] for threads outside a runtime (the offline tools).
    pub fn apply_blocking(
        &self,
        ops: Vec<Write>,
        durability: Durability,
    ) -> Result<(), IndexError> {
        self.submit(ops, durability)?.wait_blocking()
    }

    /// Queues `ops` as one atomic batch for the writer thread and returns at
    /// once: a bulk writer prepares its next batch while this one is
    /// applied. Batches are applied in the order they were queued.
    pub fn submit(&self, ops: Vec<Write>, durability: Durability) -> Result<Submitted, IndexError> {
        let (done, wait) = oneshot::channel();
        let job = Job::Write {
            ops,
            synced: durability == Durability::Synced,
            done,
        };
        if !self.queue(job) {
            return Err(IndexError::Write("the index is closed".into()));
        }
        Ok(Submitted(wait))
    }

    /// Calls `f(key, value)` on each key with `prefix`, from `start` (or the
    /// prefix) on, in key order, until `f` returns false. The lock is held for
    /// one page of keys at a time, so writers and readers get their turn.
    pub fn scan(
        &self,
        prefix: &[u8],
        start: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), IndexError> {
        self.core.scan(
            prefix,
            start,
            |k, v| if f(k, v) { Step::Next } else { Step::Stop },
        )
    }

    /// [`Index::scan`] where `f` may also skip ahead ([`Step::Seek`]).
    pub fn scan_steps(
        &self,
        prefix: &[u8],
        start: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> Step,
    ) -> Result<(), IndexError> {
        self.core.scan(prefix, start, f)
    }

    /// Finishes the writes in flight, stops the writer, and puts what
    /// relaxed writes left in LevelDB's buffer on disk.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        let _ = self.core.lock().flush();
        if let Err(e) = self.core.log.sync() {
            tracing::error!(error = %e, "the index log could not be synced at close");
        }
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.close();
    }
}

fn decode(raw: Option<Bytes>) -> Result<Option<Record>, IndexError> {
    match raw {
        Some(raw) => Ok(Some(Record::decode(&raw)?)),
        None => Ok(None),
    }
}
