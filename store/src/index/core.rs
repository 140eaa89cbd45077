//! The core of the index that lookups and the writer thread share: the
//! locked LevelDB, the miss filter and the record cache, and the scans.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use bytes::Bytes;
use rusty_leveldb::{LdbIterator, Options, DB};

use super::cache::RecordCache;
use super::env::{DurableEnv, LogSync};
use super::filter::KeyFilter;
use super::views::{self, ViewEnd, Views};
use super::{IndexError, Step};

/// Keys given to a scan's callback per lock hold.
pub(super) const SCAN_PAGE: usize = 1024;

/// What lookups and the writer thread share.
pub(super) struct Core {
    db: Mutex<DB>,
    pub(super) log: LogSync,
    /// Answers "certainly not here" for most missing keys without the lock.
    pub(super) filter: KeyFilter,
    /// Recent records, looked up without the lock.
    pub(super) cache: RecordCache,
    /// Set while the writer thread writes (and perhaps compacts).
    pub(super) writing: AtomicBool,
    /// Scans read views of the index outside the lock.
    pub(super) views: Views,
}

impl Core {
    /// Opens (or creates) the LevelDB at `path` with the durable env.
    pub(super) fn open(
        path: &Path,
        filter: KeyFilter,
        (cache_bytes, write_buffer): (usize, Option<usize>),
    ) -> Result<Core, IndexError> {
        let log = LogSync::default();
        let defaults = Options::default();
        let opts = Options {
            create_if_missing: true,
            // Snappy, as goleveldb writes by default.
            compressor: 1,
            env: std::rc::Rc::new(Box::new(DurableEnv::new(log.clone()))),
            write_buffer_size: write_buffer.unwrap_or(defaults.write_buffer_size),
            ..defaults
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
        Ok(Core {
            db: Mutex::new(db),
            log,
            filter,
            cache: RecordCache::new(cache_bytes),
            writing: AtomicBool::new(false),
            views: Views::new(path),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, DB> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lock if it is free now.
    pub(super) fn try_lock(&self) -> Option<MutexGuard<'_, DB>> {
        match self.db.try_lock() {
            Ok(db) => Some(db),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// What is known of `key` without the lock: certainly absent (the miss
    /// filter), or its cached record.
    pub(super) fn known(&self, key: &[u8]) -> Option<Option<Bytes>> {
        let m = &*crate::metrics::METRICS;
        if !self.filter.may_contain(key) {
            m.filter_hits.inc();
            return Some(None);
        }
        let hit = self.cache.get(key)?;
        m.cache_hits.inc();
        Some(Some(hit))
    }

    /// Asks LevelDB (`db` is the locked index), and keeps what it says in
    /// the cache, under the lock, where writes take their keys out of it.
    pub(super) fn lookup(&self, db: &mut DB, key: &[u8]) -> Option<Bytes> {
        let raw = db.get(key)?;
        self.cache.insert(key, raw.clone());
        Some(raw)
    }

    /// Calls `f(key, value)` on each key with `prefix`, from `start` (or the
    /// prefix) on, in key order, until `f` says to stop; `f` may also skip
    /// ahead to a later key. The keys come from views of the index
    /// (`views.rs`), read without the lock; a view whose tables are gone is
    /// finished with the lock held. `f` must not use the index.
    pub(super) fn scan(
        &self,
        prefix: &[u8],
        start: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Step,
    ) -> Result<(), IndexError> {
        let mut from = if start > prefix {
            start.to_vec()
        } else {
            prefix.to_vec()
        };
        loop {
            let view = self.lock().read_view(&from, prefix, views::MEM_ENTRIES);
            let Some(view) = view else {
                return self.scan_locked(prefix, from, f);
            };
            match self.views.scan(&view, prefix, &mut from, &mut f)? {
                ViewEnd::Done => return Ok(()),
                ViewEnd::Limit => {}
                ViewEnd::Failed => {
                    crate::metrics::METRICS.scan_fallbacks.inc();
                    return self.scan_locked(prefix, from, f);
                }
            }
        }
    }

    /// [`Core::scan`] with the lock held while reading, for at most
    /// [`SCAN_PAGE`] keys per hold, so writers and readers get their turn.
    pub(super) fn scan_locked(
        &self,
        prefix: &[u8],
        mut from: Vec<u8>,
        mut f: impl FnMut(&[u8], &[u8]) -> Step,
    ) -> Result<(), IndexError> {
        loop {
            let mut db = self.lock();
            let mut it = db.new_iter().map_err(|e| IndexError::Read(e.to_string()))?;
            it.seek(&from);
            let mut steps = 0;
            loop {
                let Some((k, v)) = it.current_ref() else {
                    return Ok(());
                };
                if !k.starts_with(prefix) {
                    return Ok(());
                }
                if steps == SCAN_PAGE {
                    // The lock's turn is over: go on from this key later.
                    from.clear();
                    from.extend_from_slice(k);
                    break;
                }
                steps += 1;
                match f(k, v) {
                    Step::Next => {
                        it.advance();
                    }
                    Step::Stop => return Ok(()),
                    Step::Seek(to) if to.as_slice() > k => it.seek(&to),
                    Step::Seek(_) => return Err(seek_backwards()),
                }
            }
        }
    }
}

/// A scan's callback sought to a key at or before the one it was given.
pub(super) fn seek_backwards() -> IndexError {
    IndexError::Read("a scan may only seek forward".into())
}

/// Scans every key into a new miss filter on a thread of its own (at
/// startup, and when the filter is full).
pub(super) fn spawn_filter_scan(core: &Arc<Core>) -> std::io::Result<()> {
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
                Step::Next
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
