//! The index: the only code that touches LevelDB.
//!
//! rusty-leveldb's `DB` is not `Sync` and even `get` takes `&mut self`, so it
//! sits behind a mutex held only for one lookup, one batch append, or one
//! page of a scan. Writes go to the writer thread: it takes every write
//! waiting, appends them to the log as one batch under the lock, answers
//! the relaxed ones, and `fdatasync`s the log once for the synced ones —
//! outside the lock, so readers go on while the disk works (group commit;
//! see `env` for what else is synced when). rusty-leveldb compacts inside
//! a write, for up to a few hundred milliseconds: on the writer thread,
//! that holds up no runtime thread's other connections. A lookup that
//! misses the cache and finds the lock held by the writer queues behind
//! the write instead of waiting for the lock on its runtime thread.
//!
//! What survives: after a `Synced` write returns, a process crash or a power
//! loss. A `Relaxed` write is visible at once and reaches the disk with the
//! next synced write (or the index's close); a crash before that loses it.

mod cache;
mod env;
mod filter;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;

use bytes::Bytes;
use futures_channel::oneshot;
use rusty_leveldb::{LdbIterator, Options, WriteBatch, DB};

use crate::record::{CorruptRecord, Record};
use cache::RecordCache;
use env::{DurableEnv, LogSync};
pub use filter::KeyFilter;

/// Keys read per lock hold while scanning.
const SCAN_PAGE: usize = 1024;
/// Bytes of keys and records the record cache holds.
const CACHE_BYTES: usize = 32 << 20;

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

pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

/// Work for the writer thread, and where to answer.
enum Job {
    Write {
        ops: Vec<Op>,
        synced: bool,
        done: oneshot::Sender<Result<(), String>>,
    },
    /// A lookup made while the writer was writing.
    Read {
        key: Vec<u8>,
        done: oneshot::Sender<Option<Bytes>>,
    },
}

/// What lookups and the writer thread share.
struct Core {
    db: Mutex<DB>,
    log: LogSync,
    /// Answers "certainly not here" for most missing keys without the lock.
    filter: KeyFilter,
    /// Recent records, looked up without the lock.
    cache: RecordCache,
    /// Set while the writer thread writes (and perhaps compacts).
    writing: AtomicBool,
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, DB> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lock if it is free now.
    fn try_lock(&self) -> Option<MutexGuard<'_, DB>> {
        match self.db.try_lock() {
            Ok(db) => Some(db),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// What is known of `key` without the lock: certainly absent (the miss
    /// filter), or its cached record.
    fn known(&self, key: &[u8]) -> Option<Option<Bytes>> {
        if !self.filter.may_contain(key) {
            return Some(None);
        }
        self.cache.get(key).map(Some)
    }

    /// Asks LevelDB (`db` is the locked index), and keeps what it says in
    /// the cache, under the lock, where writes take their keys out of it.
    fn lookup(&self, db: &mut DB, key: &[u8]) -> Option<Bytes> {
        let raw = db.get(key)?;
        self.cache.insert(key, raw.clone());
        Some(raw)
    }

    /// Calls `f(key, value)` on each key with `prefix`, from `start` (or the
    /// prefix) on, in key order, until `f` returns false. The lock is held for
    /// one page of keys at a time, so writers and readers get their turn.
    fn scan(
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
}

/// Scans every key into a new miss filter on a thread of its own (at
/// startup, and when the filter is full).
fn spawn_filter_scan(core: &Arc<Core>) -> std::io::Result<()> {
    let core = core.clone();
    std::thread::Builder::new()
        .name("index-filter".into())
        .spawn(move || {
            {
                // Under the lock, so between writes: see `begin_scan`.
                let _db = core.lock();
                core.filter.begin_scan();
            }
            let mut hashes = Vec::new();
            let scanned = core.scan(b"", b"", |k, _| {
                hashes.push(core.filter.hash(k));
                true
            });
            let count = hashes.len();
            match core.filter.end_scan(scanned.map(|()| hashes)) {
                Ok(()) => tracing::debug!(keys = count, "miss filter loaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "the miss filter could not be loaded; misses use LevelDB")
                }
            }
        })?;
    Ok(())
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

    fn open_with(
        path: &Path,
        filter: Option<KeyFilter>,
        cache_bytes: usize,
    ) -> Result<Arc<Index>, IndexError> {
        let log = LogSync::default();
        let opts = Options {
            create_if_missing: true,
            // Snappy, as goleveldb writes by default.
            compressor: 1,
            env: std::rc::Rc::new(Box::new(DurableEnv::new(log.clone()))),
            ..Options::default()
        };
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
        let scan = filter.is_some();
        let core = Arc::new(Core {
            db: Mutex::new(db),
            log,
            filter: filter.unwrap_or_else(KeyFilter::off),
            cache: RecordCache::new(cache_bytes),
            writing: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel();
        let writer_core = core.clone();
        let writer = std::thread::Builder::new()
            .name("index-writer".into())
            .spawn(move || write_groups(&writer_core, &rx))
            .map_err(|e| open_err(e.to_string()))?;
        if scan {
            spawn_filter_scan(&core).map_err(|e| open_err(e.to_string()))?;
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
        self.apply(vec![Op::Put(key.to_vec(), rec.encode())], durability)
            .await
    }

    pub async fn delete(&self, key: &[u8], durability: Durability) -> Result<(), IndexError> {
        self.apply(vec![Op::Delete(key.to_vec())], durability).await
    }

    /// Writes `ops` as one atomic batch (on the writer thread); returns
    /// once it is visible, and with `Synced` once it is on disk.
    pub async fn apply(&self, ops: Vec<Op>, durability: Durability) -> Result<(), IndexError> {
        let (done, wait) = oneshot::channel();
        let job = Job::Write {
            ops,
            synced: durability == Durability::Synced,
            done,
        };
        if !self.queue(job) {
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
        f: impl FnMut(&[u8], &[u8]) -> bool,
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

/// A write waiting for the writer thread's answer.
struct Waiter {
    synced: bool,
    done: oneshot::Sender<Result<(), String>>,
}

/// The writer thread: takes every job waiting, appends all the writes to
/// the log as one batch, answers the lookups and the relaxed writes, then
/// syncs the log once for the synced writes and answers them.
fn write_groups(core: &Arc<Core>, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while let Ok(more) = jobs.try_recv() {
            group.push(more);
        }
        let mut batch = WriteBatch::default();
        let mut waiters = Vec::new();
        let mut reads = Vec::new();
        let mut filter_full = false;
        let writes = group.iter().any(|j| matches!(j, Job::Write { .. }));
        let written = {
            core.writing.store(writes, Ordering::Release);
            let mut db = core.lock();
            // Keys go into the miss filter under the lock, before their
            // records: a filter scan starting meanwhile sees one or the
            // other. Written keys leave the record cache (lookups bring them
            // back, so a stream of writes cannot push out the records being
            // read).
            for job in group {
                match job {
                    Job::Write { ops, synced, done } => {
                        for op in ops {
                            match op {
                                Op::Put(k, v) => {
                                    filter_full |= core.filter.insert(&k);
                                    core.cache.remove(&k);
                                    batch.put(&k, &v);
                                }
                                Op::Delete(k) => {
                                    core.cache.remove(&k);
                                    batch.delete(&k);
                                }
                            }
                        }
                        waiters.push(Waiter { synced, done });
                    }
                    Job::Read { key, done } => reads.push((key, done)),
                }
            }
            let synced = waiters.iter().any(|w| w.synced);
            // With `synced`, LevelDB hands the log to the kernel (the env's
            // flush does not sync it); otherwise it stays in LevelDB's buffer.
            let written = if writes {
                db.write(batch, synced).map_err(|e| e.to_string())
            } else {
                Ok(())
            };
            core.writing.store(false, Ordering::Release);
            for (key, done) in reads {
                let _ = done.send(core.lookup(&mut db, &key));
            }
            written
        };
        if let Err(e) = &written {
            tracing::error!(error = %e, "index write failed");
        }
        // `insert` says so once per filter, so one scan runs at a time.
        if filter_full {
            if let Err(e) = spawn_filter_scan(core) {
                tracing::warn!(error = %e, "cannot start a scan for a larger miss filter");
            }
        }
        let (synced, relaxed): (Vec<_>, Vec<_>) = waiters.into_iter().partition(|w| w.synced);
        for waiter in relaxed {
            let _ = waiter.done.send(written.clone());
        }
        if synced.is_empty() {
            continue;
        }
        let result = written.and_then(|()| {
            core.log
                .sync()
                .map_err(|e| format!("sync of the index log: {e}"))
        });
        if let Err(e) = &result {
            tracing::error!(error = %e, "index sync failed");
        }
        for waiter in synced {
            let _ = waiter.done.send(result.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Writers racing with the scans that grow a small miss filter: every
    /// key written is found afterwards, and the grown filter still rules
    /// out most missing keys.
    #[test]
    fn miss_filter_grows_under_writes_without_losing_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let small = KeyFilter::with_min_bits(1 << 12); // 256 keys
        let index = Index::open_with(&tmp.path().join("db"), Some(small), CACHE_BYTES).unwrap();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let index = index.clone();
                std::thread::spawn(move || {
                    for i in 0..3_000 {
                        let rec = Record::live(vec![format!("v{w}")], None);
                        let op = Op::Put(format!("/w{w}/{i}").into_bytes(), rec.encode());
                        index.apply_blocking(vec![op], Durability::Relaxed).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        while index.core.filter.is_scanning() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for w in 0..2 {
            for i in 0..3_000 {
                let key = format!("/w{w}/{i}");
                assert!(
                    index.get_raw_blocking(key.as_bytes()).is_some(),
                    "{key} lost"
                );
            }
        }
        let ruled_out = (0..1_000)
            .filter(|i| {
                !index
                    .core
                    .filter
                    .may_contain(format!("/missing/{i}").as_bytes())
            })
            .count();
        assert!(
            ruled_out > 950,
            "the grown filter rules out only {ruled_out} of 1,000"
        );
        index.close();
    }

    /// A write waits for the writer thread without blocking its caller: a
    /// runtime thread goes on serving while LevelDB is busy (here the lock
    /// is held, as a compaction inside a write holds it), and lookups of
    /// cached records are answered meanwhile.
    #[test]
    fn a_slow_write_does_not_block_the_caller() {
        use std::future::Future;
        use std::task::{Context, Waker};
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::open_with(&tmp.path().join("db"), None, CACHE_BYTES).unwrap();
        let rec = Record::live(vec!["v".to_string()], None).encode();
        let put = |key: &[u8]| vec![Op::Put(key.to_vec(), rec.clone())];
        index.apply_blocking(put(b"a"), Durability::Synced).unwrap();
        assert!(
            index.get_raw_blocking(b"a").is_some(),
            "read once, now cached"
        );

        let busy = index.core.lock();
        let mut write = Box::pin(index.apply(put(b"b"), Durability::Synced));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..3 {
            assert!(write.as_mut().poll(&mut cx).is_pending());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(index.get_raw_blocking(b"a").is_some());
        drop(busy);
        futures_executor_block_on(write).unwrap();
        assert!(index.get_raw_blocking(b"b").is_some());
        index.close();
    }

    /// A lookup that misses the cache while the writer is writing waits
    /// behind the write without blocking its caller, and then finds the
    /// record.
    #[test]
    fn a_lookup_during_a_write_waits_without_blocking_the_caller() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::open_with(&tmp.path().join("db"), None, CACHE_BYTES).unwrap();
        let rec = Record::live(vec!["v".to_string()], None).encode();
        let op = Op::Put(b"c".to_vec(), rec.clone());
        index.apply_blocking(vec![op], Durability::Synced).unwrap();

        // As the writer thread stands during a long write: flag up, lock held.
        let busy = index.core.lock();
        index.core.writing.store(true, Ordering::Release);
        let mut lookup = Box::pin(index.get_raw(b"c"));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..3 {
            assert!(lookup.as_mut().poll(&mut cx).is_pending());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        index.core.writing.store(false, Ordering::Release);
        drop(busy);
        assert_eq!(futures_executor_block_on(lookup).as_deref(), Some(&rec[..]));
        // The writer's lookup filled the cache: no lock needed now.
        let _busy = index.core.lock();
        let mut again = Box::pin(index.get_raw(b"c"));
        assert!(matches!(again.as_mut().poll(&mut cx), Poll::Ready(Some(_))));
    }

    /// Lookups through a small record cache (evicting all the time) always
    /// see the last write that returned: new records, replaced ones,
    /// deleted ones, from several threads at once.
    #[test]
    fn lookups_see_every_returned_write_through_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::open_with(&tmp.path().join("db"), None, 16 * 1024).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let index = index.clone();
                std::thread::spawn(move || {
                    let put = |key: &str, volume: &str| {
                        let rec = Record::live(vec![volume.to_string()], None);
                        let op = Op::Put(key.as_bytes().to_vec(), rec.encode());
                        index.apply_blocking(vec![op], Durability::Relaxed).unwrap();
                    };
                    let volumes = |key: &str| {
                        index
                            .get_blocking(key.as_bytes())
                            .unwrap()
                            .map(|r| r.volumes)
                    };
                    for i in 0..2_000 {
                        let key = format!("/t{t}/{}", i % 300);
                        put(&key, &format!("a{i}"));
                        assert_eq!(volumes(&key), Some(vec![format!("a{i}")]));
                        put(&key, &format!("b{i}"));
                        assert_eq!(volumes(&key), Some(vec![format!("b{i}")]));
                        if i % 3 == 0 {
                            let op = Op::Delete(key.as_bytes().to_vec());
                            index.apply_blocking(vec![op], Durability::Relaxed).unwrap();
                            assert_eq!(volumes(&key), None, "{key} deleted");
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        index.close();
    }
}
