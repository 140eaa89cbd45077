//! The index: the only code that touches LevelDB.
//!
//! rusty-leveldb's `DB` is not `Sync` and even `get` takes `&mut self`, so it
//! sits behind a mutex held only for one lookup, one batch append, or one
//! page of a scan. Writes go through one writer thread that commits them in
//! groups: every write queued while the previous group was syncing shares the
//! next `fdatasync` (see `env` for what is synced when).
//!
//! What survives: after a `Synced` write returns, a process crash or a power
//! loss. After a `Relaxed` write returns, a process crash (the bytes are in
//! the kernel), not a power loss.

mod env;
mod filter;

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use bytes::Bytes;
use rusty_leveldb::{LdbIterator, Options, WriteBatch, DB};

use crate::record::{CorruptRecord, Record};
use env::{DurableEnv, LogSync};
pub use filter::KeyFilter;

/// Keys read per lock hold while scanning.
const SCAN_PAGE: usize = 1024;
/// Most writes committed in one group.
const MAX_GROUP: usize = 4096;

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
    /// In the kernel before the call returns; on disk with the next sync.
    Relaxed,
}

pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

struct Job {
    ops: Vec<Op>,
    durability: Durability,
    done: futures_channel::oneshot::Sender<Result<(), String>>,
}

pub struct Index {
    db: Arc<Mutex<DB>>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Answers "certainly not here" for most missing keys without the lock.
    pub filter: KeyFilter,
}

impl Index {
    /// Opens (or creates) the index. With `filter`, a background thread
    /// loads every key into the miss filter; until it is done, every lookup
    /// goes to LevelDB.
    pub fn open(path: &Path, filter: bool) -> Result<Arc<Index>, IndexError> {
        let log = LogSync::default();
        let mut opts = Options::default();
        opts.create_if_missing = true;
        // Snappy, as goleveldb writes by default.
        opts.compressor = 1;
        opts.env = std::rc::Rc::new(Box::new(DurableEnv::new(log.clone())));
        let open_err = |msg: String| IndexError::Open {
            path: path.display().to_string(),
            msg,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_err(e.to_string()))?;
        }
        let db = DB::open(path, opts).map_err(|e| {
            open_err(if e.code == rusty_leveldb::StatusCode::LockError {
                "it is in use by another process".to_string()
            } else {
                e.to_string()
            })
        })?;
        let db = Arc::new(Mutex::new(db));
        let (tx, rx) = mpsc::channel();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("index-writer".into())
            .spawn(move || write_groups(&writer_db, &log, &rx))
            .map_err(|e| open_err(e.to_string()))?;
        let index = Arc::new(Index {
            db,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            filter: KeyFilter::new(),
        });
        if filter {
            let bg = index.clone();
            std::thread::Builder::new()
                .name("index-filter".into())
                .spawn(move || {
                    if let Err(e) = bg.filter.fill(&bg) {
                        tracing::warn!(error = %e, "the miss filter could not be loaded; misses use LevelDB");
                    }
                })
                .map_err(|e| open_err(e.to_string()))?;
        }
        Ok(index)
    }

    fn lock(&self) -> MutexGuard<'_, DB> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The raw record of `key`, if any. Misses the filter rules out cost no lock.
    pub fn get_raw(&self, key: &[u8]) -> Option<Bytes> {
        if !self.filter.may_contain(key) {
            return None;
        }
        self.lock().get(key)
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Record>, IndexError> {
        match self.get_raw(key) {
            Some(raw) => Ok(Some(Record::decode(&raw)?)),
            None => Ok(None),
        }
    }

    pub async fn put(
        &self,
        key: &[u8],
        rec: &Record,
        durability: Durability,
    ) -> Result<(), IndexError> {
        self.apply(vec![Op::Put(key.to_vec(), rec.encode())], durability)
            .await
    }

    pub async fn delete(&self, key: &[u8], durability: Durability) -> Result<(), IndexError> {
        self.apply(vec![Op::Delete(key.to_vec())], durability).await
    }

    /// Queues `ops` as one atomic batch and waits until it is committed.
    pub async fn apply(&self, ops: Vec<Op>, durability: Durability) -> Result<(), IndexError> {
        for op in &ops {
            if let Op::Put(k, _) = op {
                self.filter.insert(k);
            }
        }
        let (done, wait) = futures_channel::oneshot::channel();
        let sent = match self.jobs.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(tx) => tx
                .send(Job {
                    ops,
                    durability,
                    done,
                })
                .is_ok(),
            None => false,
        };
        if !sent {
            return Err(IndexError::Write("the index is closed".into()));
        }
        match wait.await {
            Ok(res) => res.map_err(IndexError::Write),
            Err(_) => Err(IndexError::Write("the index writer stopped".into())),
        }
    }

    /// [`Index::apply`] for threads outside a runtime (the offline tools).
    pub fn apply_blocking(&self, ops: Vec<Op>, durability: Durability) -> Result<(), IndexError> {
        futures_executor_block_on(self.apply(ops, durability))
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
        let mut from = if start > prefix {
            start.to_vec()
        } else {
            prefix.to_vec()
        };
        let mut skip_from = false;
        loop {
            let (page, more) = self.scan_page(prefix, &from, skip_from)?;
            for (k, v) in &page {
                if !f(k, v) {
                    return Ok(());
                }
            }
            match page.last() {
                Some((k, _)) if more => {
                    from = k.to_vec();
                    skip_from = true;
                }
                _ => return Ok(()),
            }
        }
    }

    fn scan_page(
        &self,
        prefix: &[u8],
        from: &[u8],
        skip_from: bool,
    ) -> Result<(Vec<(Bytes, Bytes)>, bool), IndexError> {
        let mut page = Vec::with_capacity(SCAN_PAGE);
        let mut db = self.lock();
        let mut it = db.new_iter().map_err(|e| IndexError::Read(e.to_string()))?;
        it.seek(from);
        while it.valid() && page.len() < SCAN_PAGE {
            let Some((k, v)) = it.current() else { break };
            if !k.starts_with(prefix) {
                return Ok((page, false));
            }
            if !(skip_from && k.as_ref() == from) {
                page.push((k, v));
            }
            it.advance();
        }
        let more = it.valid();
        Ok((page, more))
    }

    /// Stops the writer after the queued writes and flushes the log.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = w.join();
        }
        let _ = self.lock().flush();
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread: takes every job queued, commits them as one batch,
/// syncs once (outside the lock) if any of them asked for it, answers all.
fn write_groups(db: &Mutex<DB>, log: &LogSync, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut batch = WriteBatch::default();
        for job in &group {
            for op in &job.ops {
                match op {
                    Op::Put(k, v) => batch.put(k, v),
                    Op::Delete(k) => batch.delete(k),
                }
            }
        }
        let written = db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write(batch, true)
            .map_err(|e| e.to_string());
        let result = written.and_then(|()| {
            if group.iter().any(|j| j.durability == Durability::Synced) {
                log.sync()
                    .map_err(|e| format!("sync of the index log: {e}"))
            } else {
                Ok(())
            }
        });
        if let Err(e) = &result {
            tracing::error!(error = %e, "index write failed");
        }
        for job in group {
            let _ = job.done.send(result.clone());
        }
    }
}

/// Runs a future to completion on the calling thread (no runtime needed:
/// the futures here only wait on the writer thread).
fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
