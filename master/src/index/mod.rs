//! The index: the only code that touches LevelDB.
//!
//! rusty-leveldb's `DB` is not `Sync` and even `get` takes `&mut self`, so it
//! sits behind a mutex held only for one lookup, one batch append, or one
//! page of a scan. A write is appended to the log by the thread that makes
//! it, under the lock; a synced write then waits for the syncer thread,
//! which `fdatasync`s the log once for every synced write appended since its
//! last sync — outside the lock, so readers and other writers go on while
//! the disk works (group commit; see `env` for what else is synced when).
//!
//! What survives: after a `Synced` write returns, a process crash or a power
//! loss. A `Relaxed` write is visible at once and reaches the disk with the
//! next synced write (or the index's close); a crash before that loses it.

mod cache;
mod env;
mod filter;

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
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

/// Answered by the syncer once the log is on disk.
type SyncWaiter = oneshot::Sender<Result<(), String>>;

pub struct Index {
    db: Mutex<DB>,
    syncs: Mutex<Option<mpsc::Sender<SyncWaiter>>>,
    syncer: Mutex<Option<JoinHandle<()>>>,
    log: LogSync,
    /// Answers "certainly not here" for most missing keys without the lock.
    pub filter: KeyFilter,
    /// This index, for the threads it starts.
    me: std::sync::Weak<Index>,
    /// Recent records, looked up without the lock.
    cache: RecordCache,
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
        let (tx, rx) = mpsc::channel();
        let syncer_log = log.clone();
        let syncer = std::thread::Builder::new()
            .name("index-syncer".into())
            .spawn(move || sync_groups(&syncer_log, &rx))
            .map_err(|e| open_err(e.to_string()))?;
        let scan = filter.is_some();
        let index = Arc::new_cyclic(|me| Index {
            db: Mutex::new(db),
            syncs: Mutex::new(Some(tx)),
            syncer: Mutex::new(Some(syncer)),
            log,
            filter: filter.unwrap_or_else(KeyFilter::off),
            me: me.clone(),
            cache: RecordCache::new(cache_bytes),
        });
        if scan {
            index
                .spawn_filter_scan()
                .map_err(|e| open_err(e.to_string()))?;
        }
        Ok(index)
    }

    /// Scans every key into a new miss filter on a thread of its own (at
    /// startup, and when the filter is full).
    fn spawn_filter_scan(&self) -> std::io::Result<()> {
        let Some(index) = self.me.upgrade() else {
            return Ok(());
        };
        std::thread::Builder::new()
            .name("index-filter".into())
            .spawn(move || {
                {
                    // Under the lock, so between writes: see `begin_scan`.
                    let _db = index.lock();
                    index.filter.begin_scan();
                }
                let mut hashes = Vec::new();
                let scanned = index.scan(b"", b"", |k, _| {
                    hashes.push(index.filter.hash(k));
                    true
                });
                let count = hashes.len();
                match index.filter.end_scan(scanned.map(|()| hashes)) {
                    Ok(()) => tracing::debug!(keys = count, "miss filter loaded"),
                    Err(e) => {
                        tracing::warn!(error = %e, "the miss filter could not be loaded; misses use LevelDB")
                    }
                }
            })?;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, DB> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The raw record of `key`, if any. Misses the filter rules out cost no lock.
    pub fn get_raw(&self, key: &[u8]) -> Option<Bytes> {
        if !self.filter.may_contain(key) {
            return None;
        }
        if let Some(raw) = self.cache.get(key) {
            return Some(raw);
        }
        let mut db = self.lock();
        let raw = db.get(key)?;
        self.cache.insert(key, raw.clone());
        Some(raw)
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

    /// Writes `ops` as one atomic batch; with `Synced`, returns once it is
    /// on disk.
    pub async fn apply(&self, ops: Vec<Op>, durability: Durability) -> Result<(), IndexError> {
        let mut batch = WriteBatch::default();
        let synced = durability == Durability::Synced;
        let mut filter_full = false;
        {
            let mut db = self.lock();
            // Keys go into the miss filter under the lock, before their
            // records: a filter scan starting meanwhile sees one or the other.
            // Written keys leave the record cache (lookups bring them back, so
            // a stream of writes cannot push out the records being read).
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        filter_full |= self.filter.insert(&k);
                        self.cache.remove(&k);
                        batch.put(&k, &v);
                    }
                    Op::Delete(k) => {
                        self.cache.remove(&k);
                        batch.delete(&k);
                    }
                }
            }
            // With `synced`, LevelDB hands the log to the kernel (the env's
            // flush does not sync it); otherwise it stays in LevelDB's buffer.
            db.write(batch, synced)
                .map_err(|e| IndexError::Write(e.to_string()))?;
        }
        if filter_full {
            if let Err(e) = self.spawn_filter_scan() {
                tracing::warn!(error = %e, "cannot start a scan for a larger miss filter");
            }
        }
        if !synced {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        let queued = match self
            .syncs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(tx) => tx.send(done).is_ok(),
            None => false,
        };
        if !queued {
            return Err(IndexError::Write("the index is closed".into()));
        }
        match wait.await {
            Ok(res) => res.map_err(IndexError::Write),
            Err(_) => Err(IndexError::Write("the index syncer stopped".into())),
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

    /// Answers the syncs in flight, stops the syncer, and puts what relaxed
    /// writes left in LevelDB's buffer on disk.
    pub fn close(&self) {
        self.syncs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.syncer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        let _ = self.lock().flush();
        if let Err(e) = self.log.sync() {
            tracing::error!(error = %e, "the index log could not be synced at close");
        }
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.close();
    }
}

/// The syncer thread: one `fdatasync` of the log for all the writes whose
/// waiters arrived since the last one (each was appended before its waiter
/// was queued), then their answers.
fn sync_groups(log: &LogSync, waiters: &mpsc::Receiver<SyncWaiter>) {
    while let Ok(first) = waiters.recv() {
        let mut group = vec![first];
        while let Ok(more) = waiters.try_recv() {
            group.push(more);
        }
        let result = log
            .sync()
            .map_err(|e| format!("sync of the index log: {e}"));
        if let Err(e) = &result {
            tracing::error!(error = %e, "index sync failed");
        }
        for waiter in group {
            let _ = waiter.send(result.clone());
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
        while index.filter.is_scanning() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for w in 0..2 {
            for i in 0..3_000 {
                let key = format!("/w{w}/{i}");
                assert!(index.get_raw(key.as_bytes()).is_some(), "{key} lost");
            }
        }
        let ruled_out = (0..1_000)
            .filter(|i| !index.filter.may_contain(format!("/missing/{i}").as_bytes()))
            .count();
        assert!(
            ruled_out > 950,
            "the grown filter rules out only {ruled_out} of 1,000"
        );
        index.close();
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
                    let volumes = |key: &str| index.get(key.as_bytes()).unwrap().map(|r| r.volumes);
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
