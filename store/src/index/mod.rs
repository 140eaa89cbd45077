//! The index: the only code that touches the database. This module is its
//! API, over one of two backends, chosen by `-db`:
//! - `level` (a folder, the default and the original's format): `core`
//!   holds the locked LevelDB with the miss filter (`filter`) and the
//!   record cache (`cache`); `writer` is the writer thread; `env` makes
//!   LevelDB's files durable; `views` lets scans read outside the lock.
//! - `pg` (a `postgres://` URL): one table of keys and values in the same
//!   order, shared by any number of masters, with their key locks beside
//!   it (docs/postgres.md).
//!
//! LevelDB: rusty-leveldb's `DB` is not `Sync` and even `get` takes `&mut
//! self`, so it sits behind a mutex held only for one lookup, one batch
//! append, or one page of a scan. Writes go to the writer thread, which
//! appends every write waiting as one batch and syncs the log once for all
//! the synced ones (group commit; see `env` for what else is synced when).
//! A lookup that misses the cache and finds the lock held by the writer
//! queues behind the write instead of waiting for the lock on its runtime
//! thread.
//!
//! What survives: after a `Synced` write returns, a process crash or a power
//! loss (over PostgreSQL: what its `synchronous_commit` promises). A
//! `Relaxed` write is visible at once and reaches the disk with the next
//! synced write (or the index's close); a crash before that loses it.

mod cache;
mod core;
mod env;
mod filter;
mod level;
mod pg;
#[cfg(test)]
mod tests;
mod views;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_channel::oneshot;

use crate::record::{CorruptRecord, Record};
pub use filter::KeyFilter;
use level::Level;
use pg::{Pg, Role};
use writer::block_on;

/// A batch queued by [`Index::submit`]: its outcome, once applied.
#[must_use = "a queued batch may still fail"]
pub struct Submitted(Pending);

enum Pending {
    Level(oneshot::Receiver<Result<(), String>>),
    Pg(oneshot::Receiver<Result<(), IndexError>>),
}

impl Submitted {
    pub async fn await_applied(self) -> Result<(), IndexError> {
        match self.0 {
            Pending::Level(rx) => match rx.await {
                Ok(res) => res.map_err(IndexError::Write),
                Err(_) => Err(IndexError::Write("the index writer stopped".into())),
            },
            Pending::Pg(rx) => rx.await.unwrap_or_else(|_| {
                Err(IndexError::Unavailable(
                    "the database thread stopped".into(),
                ))
            }),
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
    /// The database does not answer (or not in time): a 503, tried again.
    #[error("the index is unavailable: {0}")]
    Unavailable(String),
    /// A batch fenced by a key's lock ([`Index::apply_held`]) found the
    /// lock taken over by another master: nothing was written.
    #[error("the index is unavailable: this master lost the key's lock to another")]
    LockLost,
    /// A conflict with another transaction (tried again, then Unavailable).
    #[error("the index is unavailable: {0}")]
    Retry(String),
}

impl IndexError {
    /// The same error again, for each of the callers one failure answers.
    pub fn same(&self) -> IndexError {
        match self {
            IndexError::Open { path, msg } => IndexError::Open {
                path: path.clone(),
                msg: msg.clone(),
            },
            IndexError::Write(m) => IndexError::Write(m.clone()),
            IndexError::Corrupt(e) => IndexError::Read(e.to_string()),
            IndexError::Read(m) => IndexError::Read(m.clone()),
            IndexError::Unavailable(m) => IndexError::Unavailable(m.clone()),
            IndexError::LockLost => IndexError::LockLost,
            IndexError::Retry(m) => IndexError::Unavailable(m.clone()),
        }
    }

    /// Whether this is the database not answering, which a client may try
    /// again (503), rather than something wrong with the index (500).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            IndexError::Unavailable(_) | IndexError::LockLost | IndexError::Retry(_)
        )
    }
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

/// Records a lock taking writes if the keys hold none ([`Index::lock_key`]):
/// keys and values.
pub type Claim = Vec<(Vec<u8>, Vec<u8>)>;

/// What [`Index::lock_key`] read under the lock it took: each read's
/// value, in order; whether the claim's writes were made.
pub struct Locked {
    pub vals: Vec<Option<Bytes>>,
    pub claimed: bool,
}

/// The index: LevelDB (a folder) or PostgreSQL (a `postgres://` URL);
/// nothing above this API knows which.
pub struct Index {
    backend: Backend,
}

enum Backend {
    Level(Level),
    Pg(Pg),
}

/// How long a tool waits for PostgreSQL to answer one request.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `db` (the `-db` flag) names a PostgreSQL database.
pub fn is_postgres(db: &Path) -> bool {
    db.to_str().is_some_and(pg::is_url)
}

/// `db` as messages may show it (a URL without its password).
pub fn describe(db: &Path) -> String {
    match db.to_str() {
        Some(url) if pg::is_url(url) => pg::redact(url),
        _ => db.display().to_string(),
    }
}

impl Index {
    /// Opens (or creates) the index for an offline tool. A LevelDB index
    /// with `filter` loads every key into the miss filter on a background
    /// thread (until it is done, every lookup goes to LevelDB). A
    /// PostgreSQL index is opened alone: no master may use it meanwhile.
    pub fn open(db: &Path, filter: bool) -> Result<Arc<Index>, IndexError> {
        Ok(Arc::new(match db.to_str() {
            Some(url) if pg::is_url(url) => Index::pg(url, Role::Tool, TOOL_TIMEOUT)?,
            _ => Index::level(Level::open(db, filter)?),
        }))
    }

    /// Opens the index for a master (`mkv server`, `mkv dev`): LevelDB
    /// with its miss filter, or PostgreSQL shared with any number of
    /// masters, each request to it bounded by `timeout`.
    pub fn serve(db: &Path, timeout: Duration) -> Result<Arc<Index>, IndexError> {
        Ok(Arc::new(match db.to_str() {
            Some(url) if pg::is_url(url) => Index::pg(url, Role::Serve, timeout)?,
            _ => Index::level(Level::open(db, true)?),
        }))
    }

    /// Opens the index for writing many records at once (`mkv rebuild`):
    /// for LevelDB a larger write buffer, so that fewer, larger tables are
    /// flushed and compacted, and no miss filter.
    pub fn open_bulk(db: &Path) -> Result<Arc<Index>, IndexError> {
        Ok(Arc::new(match db.to_str() {
            Some(url) if pg::is_url(url) => Index::pg(url, Role::Tool, TOOL_TIMEOUT)?,
            _ => Index::level(Level::open_bulk(db)?),
        }))
    }

    #[cfg(test)]
    fn open_with(
        path: &Path,
        filter: Option<KeyFilter>,
        cache_bytes: usize,
    ) -> Result<Arc<Index>, IndexError> {
        Ok(Arc::new(Index::level(Level::open_with(
            path,
            filter,
            cache_bytes,
        )?)))
    }

    fn level(level: Level) -> Index {
        Index {
            backend: Backend::Level(level),
        }
    }

    fn pg(url: &str, role: Role, timeout: Duration) -> Result<Index, IndexError> {
        Ok(Index {
            backend: Backend::Pg(Pg::open(url, role, timeout)?),
        })
    }

    #[cfg(test)]
    fn level_ref(&self) -> &Level {
        match &self.backend {
            Backend::Level(l) => l,
            Backend::Pg(_) => panic!("not a LevelDB index"),
        }
    }

    /// Whether several processes share this index, so that key locks and
    /// unfinished writes must be claimed in it (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Pg(_))
    }

    /// What the index is: its folder, or its database's URL (no password).
    pub fn name(&self) -> String {
        match &self.backend {
            Backend::Level(l) => l.path().display().to_string(),
            Backend::Pg(p) => p.name().to_string(),
        }
    }

    /// Why the index cannot be used now, if it cannot (its database does
    /// not answer); for `/ready`.
    pub fn trouble(&self) -> Option<String> {
        match &self.backend {
            Backend::Level(_) => None,
            Backend::Pg(p) => p.trouble(),
        }
    }

    /// Asks the database whether it answers (a lookup), so that
    /// [`Index::trouble`] is current when no request asks; for the health
    /// thread.
    pub fn probe(&self) {
        if let Backend::Pg(p) = &self.backend {
            let _ = p.get_raw_blocking(b"");
        }
    }

    /// The raw record of `key`, if any. Over LevelDB, misses the filter
    /// rules out, and records in the cache, cost no lock; when the writer
    /// thread holds the lock, the lookup waits behind its write without
    /// blocking the calling thread.
    pub async fn get_raw(&self, key: &[u8]) -> Result<Option<Bytes>, IndexError> {
        match &self.backend {
            Backend::Level(l) => Ok(l.get_raw(key).await),
            Backend::Pg(p) => p.get_raw(key).await,
        }
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<Record>, IndexError> {
        decode(self.get_raw(key).await?)
    }

    /// [`Index::get_raw`] for threads outside a runtime (the offline tools).
    pub fn get_raw_blocking(&self, key: &[u8]) -> Result<Option<Bytes>, IndexError> {
        match &self.backend {
            Backend::Level(l) => Ok(l.get_raw_blocking(key)),
            Backend::Pg(p) => p.get_raw_blocking(key),
        }
    }

    /// [`Index::get`] for threads outside a runtime (the offline tools).
    pub fn get_blocking(&self, key: &[u8]) -> Result<Option<Record>, IndexError> {
        decode(self.get_raw_blocking(key)?)
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

    /// Writes `ops` as one atomic batch; returns once it is visible, and
    /// with `Synced` once it is durable.
    pub async fn apply(&self, ops: Vec<Write>, durability: Durability) -> Result<(), IndexError> {
        self.submit(ops, durability)?.await_applied().await
    }

    /// [`Index::apply`] by the holder of `key`'s lock: over PostgreSQL the
    /// batch applies only while this master still holds the lock in the
    /// database (else [`IndexError::LockLost`]), so that a master whose
    /// lock another took over (it seemed dead) cannot commit under it.
    pub async fn apply_held(
        &self,
        key: &[u8],
        ops: Vec<Write>,
        durability: Durability,
    ) -> Result<(), IndexError> {
        self.submit_fenced(ops, durability, Some(key), None)?
            .await_applied()
            .await
    }

    /// [`Index::apply_held`] for the batch that ends a hold of `key`'s
    /// lock: over PostgreSQL the lock [`Index::lock_key`] took with
    /// `token` goes in the same commit, so that letting go of it costs no
    /// statement of its own. Where the index is not shared, `apply_held`.
    pub async fn apply_releasing(
        &self,
        key: &[u8],
        ops: Vec<Write>,
        durability: Durability,
        token: i64,
    ) -> Result<(), IndexError> {
        self.submit_fenced(ops, durability, Some(key), Some(token))?
            .await_applied()
            .await
    }

    /// [`Index::apply`] for threads outside a runtime (the offline tools).
    pub fn apply_blocking(
        &self,
        ops: Vec<Write>,
        durability: Durability,
    ) -> Result<(), IndexError> {
        self.submit(ops, durability)?.wait_blocking()
    }

    /// Queues `ops` as one atomic batch and returns at once: a bulk writer
    /// prepares its next batch while this one is applied. Batches are
    /// applied in the order they were queued (over PostgreSQL, batches in
    /// flight together may apply in any order: callers that need an order
    /// wait for the first).
    pub fn submit(&self, ops: Vec<Write>, durability: Durability) -> Result<Submitted, IndexError> {
        self.submit_fenced(ops, durability, None, None)
    }

    fn submit_fenced(
        &self,
        ops: Vec<Write>,
        durability: Durability,
        fence: Option<&[u8]>,
        release: Option<i64>,
    ) -> Result<Submitted, IndexError> {
        match &self.backend {
            Backend::Level(l) => l.submit(ops, durability),
            Backend::Pg(p) => Ok(Submitted(Pending::Pg(p.submit(
                ops,
                durability == Durability::Relaxed,
                fence,
                release,
            )?))),
        }
    }

    /// Calls `f(key, value)` on each key with `prefix`, from `start` (or the
    /// prefix) on, in key order, until `f` returns false. Keys come a page
    /// at a time, so writers and readers get their turn.
    pub fn scan(
        &self,
        prefix: &[u8],
        start: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), IndexError> {
        self.scan_steps(
            prefix,
            start,
            |k, v| if f(k, v) { Step::Next } else { Step::Stop },
        )
    }

    /// [`Index::scan`] where `f` may also skip ahead ([`Step::Seek`]).
    /// Blocks the calling thread: call it on the blocking pool or a tool's
    /// thread.
    pub fn scan_steps(
        &self,
        prefix: &[u8],
        start: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> Step,
    ) -> Result<(), IndexError> {
        match &self.backend {
            Backend::Level(l) => l.scan_steps(prefix, start, f),
            Backend::Pg(p) => pg::scan::scan(p, prefix, start, f),
        }
    }

    /// The raw records of `keys`, in order.
    pub async fn get_each(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Bytes>>, IndexError> {
        let mut vals = Vec::with_capacity(keys.len());
        for k in keys {
            vals.push(self.get_raw(k).await?);
        }
        Ok(vals)
    }

    /// Takes `key`'s lock in the index shared with other masters (`token`
    /// names this hold), then reads the records `reads` under it, in one
    /// step (over PostgreSQL, one round trip); `None` if a live master
    /// holds the lock, else each read's value, in order, as it was when the
    /// lock was taken. With a `claim` (puts of `key`'s own records, each
    /// among `reads`), the claim's writes are made too, synced, in the
    /// commit that takes the lock — if none of the keys they write holds a
    /// record then ([`Locked::claimed`]); else nothing is written. Where the
    /// index is not shared there is no lock to take here: the reads, then
    /// the claim's writes if they apply.
    pub async fn lock_key(
        &self,
        key: &[u8],
        token: i64,
        reads: Vec<Vec<u8>>,
        claim: Claim,
    ) -> Result<Option<Locked>, IndexError> {
        match &self.backend {
            Backend::Level(_) => {
                let vals = self.get_each(&reads).await?;
                let free = |k: &[u8]| {
                    reads
                        .iter()
                        .zip(&vals)
                        .any(|(r, v)| r.as_slice() == k && v.is_none())
                };
                let claimed = !claim.is_empty() && claim.iter().all(|(k, _)| free(k));
                if claimed {
                    let puts = claim.into_iter().map(|(k, v)| Write::Put(k, v)).collect();
                    self.apply(puts, Durability::Synced).await?;
                }
                Ok(Some(Locked { vals, claimed }))
            }
            Backend::Pg(p) => p.lock(key, token, reads, claim).await,
        }
    }

    /// Lets go of the lock [`Index::lock_key`] took; the receiver hears
    /// when the release is over (or was tried and is retried).
    pub fn unlock_key(&self, key: Vec<u8>, token: i64) -> Option<oneshot::Receiver<()>> {
        match &self.backend {
            Backend::Level(_) => None,
            Backend::Pg(p) => p.unlock(key, token),
        }
    }

    /// Finishes the writes in flight and closes the index (LevelDB: puts
    /// what relaxed writes left in its buffer on disk).
    pub fn close(&self) {
        match &self.backend {
            Backend::Level(l) => l.close(),
            Backend::Pg(p) => p.close(),
        }
    }
}

/// A raw record, decoded (`None`: no record).
pub fn decode(raw: Option<Bytes>) -> Result<Option<Record>, IndexError> {
    match raw {
        Some(raw) => Ok(Some(Record::decode(&raw)?)),
        None => Ok(None),
    }
}
