//! The LevelDB backend: the locked LevelDB with the miss filter and the
//! record cache (`core`), the writer thread (`writer`) and the durable env
//! (`env`). The default, and the original's format.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use futures_channel::oneshot;

use super::core::{spawn_filter_scan, Core};
use super::filter::KeyFilter;
use super::writer::{self, Job};
use super::{
    Durability, IndexError, Pending, Step, Submitted, Write, BULK_WRITE_BUFFER, CACHE_BYTES,
};

pub(super) struct Level {
    pub(super) core: Arc<Core>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

impl Level {
    /// Opens (or creates) the index. With `filter`, a background thread
    /// loads every key into the miss filter; until it is done, every lookup
    /// goes to LevelDB.
    pub(super) fn open(path: &Path, filter: bool) -> Result<Level, IndexError> {
        Self::open_with(path, filter.then(KeyFilter::new), CACHE_BYTES)
    }

    /// Opens the index for writing many records at once (`mkv rebuild`):
    /// a larger write buffer, so that fewer, larger tables are flushed and
    /// compacted; no miss filter.
    pub(super) fn open_bulk(path: &Path) -> Result<Level, IndexError> {
        let core = Core::open(
            path,
            KeyFilter::off(),
            (CACHE_BYTES, Some(BULK_WRITE_BUFFER)),
        );
        Self::start(path, core?, false)
    }

    pub(super) fn open_with(
        path: &Path,
        filter: Option<KeyFilter>,
        cache_bytes: usize,
    ) -> Result<Level, IndexError> {
        let scan = filter.is_some();
        let filter = filter.unwrap_or_else(KeyFilter::off);
        let core = Core::open(path, filter, (cache_bytes, None))?;
        Self::start(path, core, scan)
    }

    /// Starts the writer thread (and the miss filter's scan) of an opened core.
    fn start(path: &Path, core: Core, scan: bool) -> Result<Level, IndexError> {
        let core = Arc::new(core);
        let open_err = |e: std::io::Error| IndexError::Open {
            path: path.display().to_string(),
            msg: e.to_string(),
        };
        let (tx, writer) = writer::spawn(core.clone()).map_err(open_err)?;
        if scan {
            spawn_filter_scan(&core).map_err(open_err)?;
        }
        Ok(Level {
            core,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            path: path.to_path_buf(),
        })
    }

    /// The raw record of `key`, if any. Misses the filter rules out, and
    /// records in the cache, cost no lock; when the writer thread holds the
    /// lock, the lookup waits behind its write without blocking the calling
    /// thread.
    pub(super) async fn get_raw(&self, key: &[u8]) -> Option<Bytes> {
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

    /// [`Index::get_raw`] for threads outside a runtime (the offline tools).
    pub(super) fn get_raw_blocking(&self, key: &[u8]) -> Option<Bytes> {
        let core = &*self.core;
        core.known(key)
            .unwrap_or_else(|| core.lookup(&mut core.lock(), key))
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

    /// Queues `ops` as one atomic batch for the writer thread and returns at
    /// once: a bulk writer prepares its next batch while this one is
    /// applied. Batches are applied in the order they were queued.
    pub(super) fn submit(
        &self,
        ops: Vec<Write>,
        durability: Durability,
    ) -> Result<Submitted, IndexError> {
        let (done, wait) = oneshot::channel();
        let job = Job::Write {
            ops,
            synced: durability == Durability::Synced,
            done,
        };
        if !self.queue(job) {
            return Err(IndexError::Write("the index is closed".into()));
        }
        Ok(Submitted(Pending::Level(wait)))
    }

    /// [`Index::scan`] where `f` may also skip ahead ([`Step::Seek`]).
    pub(super) fn scan_steps(
        &self,
        prefix: &[u8],
        start: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> Step,
    ) -> Result<(), IndexError> {
        self.core.scan(prefix, start, f)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Finishes the writes in flight, stops the writer, and puts what
    /// relaxed writes left in LevelDB's buffer on disk.
    pub(super) fn close(&self) {
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

impl Drop for Level {
    fn drop(&mut self) {
        self.close();
    }
}
