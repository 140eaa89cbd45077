//! Per-key write locks: one write of a key at a time. The plain API's
//! writers take a key's lock or give up (the original's 409); S3's wait
//! for it ([`KeyLocks::lock`]), so that overlapping writers of a key each
//! succeed, one after the other. The guard releases the key when dropped,
//! on every path out of a handler.

use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use futures_util::future::{FutureExt, Shared};

use bytes::Bytes;

use crate::error::MasterError;
use crate::index::{Claim, Durability, Index, IndexError, Locked, Write};
use crate::meta::{self, Intent};
use crate::record::Record;

const SHARDS: usize = 16;

/// The write locks of one process's keys. Over an index several masters
/// share (PostgreSQL), a lock is taken here first (so that this master's
/// own writers of a key never ask the database twice), then in the
/// database, where it excludes every other master's writers too.
pub struct KeyLocks {
    shards: [Mutex<HashSet<Vec<u8>>>; SHARDS],
    hasher: std::collections::hash_map::RandomState,
    shared: Option<Arc<Index>>,
    next_token: AtomicI64,
}

impl Default for KeyLocks {
    fn default() -> KeyLocks {
        let mut random = [0u8; 8];
        let _ = rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty());
        KeyLocks {
            shards: Default::default(),
            hasher: Default::default(),
            shared: None,
            next_token: AtomicI64::new(i64::from_le_bytes(random) >> 1),
        }
    }
}

pub struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: Vec<u8>,
    /// The hold's token in the shared index, if it is shared.
    token: Option<i64>,
    /// The shared index's lock went with the hold's last commit.
    released: AtomicBool,
}

/// A key as read under its lock, as the lock was taken: its record, and
/// the intent an earlier write of it left, if one did; whether the claim
/// ([`KeyLocks::try_lock_claiming`]) was written.
pub struct AtLock {
    pub record: Option<Record>,
    pub intent: Option<Intent>,
    pub claimed: bool,
}

type Release = Shared<oneshot::Receiver<()>>;

thread_local! {
    /// Releases of shared locks this thread started that may not be over.
    static RELEASES: RefCell<Vec<Release>> = const { RefCell::new(Vec::new()) };
}

fn started(rx: oneshot::Receiver<()>) {
    RELEASES.with(|r| r.borrow_mut().push(rx.shared()));
}

/// Waits for the releases of shared key locks this thread started (the
/// guards dropped so far, by any request on it): an answer goes out after
/// them, so that a client's next write of the key, through any master,
/// finds it free. Each caller waits for all of them; none is taken from
/// another caller.
pub async fn released() {
    let pending: Vec<Release> = RELEASES.with(|r| {
        let mut r = r.borrow_mut();
        r.retain(|f| f.peek().is_none());
        r.clone()
    });
    for f in pending {
        let _ = f.await;
    }
}

impl KeyLocks {
    /// The locks of a master over `index`: also taken in it if it is
    /// shared with other masters.
    pub fn for_index(index: &Arc<Index>) -> KeyLocks {
        KeyLocks {
            shared: index.is_shared().then(|| index.clone()),
            ..KeyLocks::default()
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<HashSet<Vec<u8>>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// The key's lock in this process, unless one of its writers holds it.
    fn try_local(&self, key: &[u8]) -> Option<KeyGuard<'_>> {
        let mut set = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        if set.insert(key.to_vec()) {
            Some(KeyGuard {
                locks: self,
                key: key.to_vec(),
                token: None,
                released: AtomicBool::new(false),
            })
        } else {
            None
        }
    }

    /// The key's lock, unless someone holds it (a writer here, or, over a
    /// shared index, a live master's). An error if the database that
    /// holds the locks does not answer.
    pub async fn try_lock(&self, key: &[u8]) -> Result<Option<KeyGuard<'_>>, MasterError> {
        Ok(self
            .take(None, key, Vec::new(), Vec::new())
            .await?
            .map(|(g, _)| g))
    }

    /// [`KeyLocks::try_lock`], and the key's record and intent as they are
    /// under the lock, read from `index` (over a shared index, in the
    /// round trip that takes the lock).
    pub async fn try_lock_reading(
        &self,
        index: &Index,
        key: &[u8],
    ) -> Result<Option<(KeyGuard<'_>, AtLock)>, MasterError> {
        self.try_lock_claiming(index, key, Vec::new()).await
    }

    /// [`KeyLocks::try_lock_reading`], and if the key has neither a record
    /// nor an intent then, the `claim`'s writes (of the key's record and
    /// intent) made synced in the commit that takes the lock
    /// ([`Index::lock_key`]): a write of a new key begins in the round trip
    /// that locks it.
    pub async fn try_lock_claiming(
        &self,
        index: &Index,
        key: &[u8],
        claim: Claim,
    ) -> Result<Option<(KeyGuard<'_>, AtLock)>, MasterError> {
        let intent_key = meta::intent_key(key);
        let reads = vec![key.to_vec(), intent_key.clone()];
        let Some((guard, locked)) = self.take(Some(index), key, reads, claim).await? else {
            return Ok(None);
        };
        let [record, intent]: [Option<Bytes>; 2] = locked.vals.try_into().map_err(|_| {
            MasterError::Index(IndexError::Read("a read under a lock went missing".into()))
        })?;
        let record = crate::index::decode(record)?;
        let intent = intent
            .map(|raw| meta::decode::<Intent>(&intent_key, &raw))
            .transpose()?;
        let claimed = locked.claimed;
        Ok(Some((
            guard,
            AtLock {
                record,
                intent,
                claimed,
            },
        )))
    }

    /// Takes the key's lock, here then (if shared) in the database, and
    /// reads `reads` under it from `index` (the shared one if there is
    /// one), with the `claim` (see [`Index::lock_key`]).
    async fn take(
        &self,
        index: Option<&Index>,
        key: &[u8],
        reads: Vec<Vec<u8>>,
        claim: Claim,
    ) -> Result<Option<(KeyGuard<'_>, Locked)>, MasterError> {
        let Some(mut guard) = self.try_local(key) else {
            return Ok(None);
        };
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let Some(shared) = &self.shared else {
            let locked = match index {
                Some(index) => index.lock_key(key, token, reads, claim).await?,
                None => None,
            };
            let locked = locked.unwrap_or(Locked {
                vals: Vec::new(),
                claimed: false,
            });
            return Ok(Some((guard, locked)));
        };
        match shared.lock_key(key, token, reads, claim).await {
            Ok(Some(locked)) => {
                guard.token = Some(token);
                Ok(Some((guard, locked)))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                // The lock may have been taken (and the claim written)
                // before the answer was lost; the journal settles an
                // intent a claim left once the lock is free.
                if let Some(rx) = shared.unlock_key(key.to_vec(), token) {
                    started(rx);
                }
                Err(e.into())
            }
        }
    }

    /// The key's lock, waiting up to `patience` for its holder to let go
    /// (polled, every 1 ms at first, then every 20 ms); `None` past it.
    pub async fn lock(
        &self,
        key: &[u8],
        patience: Duration,
    ) -> Result<Option<KeyGuard<'_>>, MasterError> {
        let deadline = Instant::now() + patience;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(guard) = self.try_lock(key).await? {
                return Ok(Some(guard));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            monoio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// The key's write lock (409 if taken) and its live record (404 if
/// missing or unlinked).
pub async fn lock_live<'a>(
    locks: &'a KeyLocks,
    index: &Index,
    key: &[u8],
) -> Result<(KeyGuard<'a>, Record), MasterError> {
    let (lock, at) = locks
        .try_lock_reading(index, key)
        .await?
        .ok_or(MasterError::Busy)?;
    let rec = at
        .record
        .filter(|r| !r.deleted)
        .ok_or(MasterError::NotFound)?;
    Ok((lock, rec))
}

impl KeyGuard<'_> {
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Applies the batch that ends this hold's writes of the key, fenced
    /// as [`Index::apply_held`]; over a shared index the key's lock goes
    /// in the same commit (nothing of the key may be written under this
    /// guard after it).
    pub async fn commit_last(
        &self,
        index: &Index,
        ops: Vec<Write>,
        durability: Durability,
    ) -> Result<(), IndexError> {
        // A token is only taken in a shared index.
        match self.token {
            Some(token) => {
                index
                    .apply_releasing(&self.key, ops, durability, token)
                    .await?;
                self.released.store(true, Ordering::Release);
                Ok(())
            }
            None => index.apply_held(&self.key, ops, durability).await,
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let released = self.released.load(Ordering::Acquire);
        if let (Some(token), Some(index), false) = (self.token, &self.locks.shared, released) {
            if let Some(rx) = index.unlock_key(self.key.clone(), token) {
                started(rx);
            }
        }
        let mut set = self
            .locks
            .shard(&self.key)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        set.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let locks = KeyLocks::default();
        let a = locks.try_local(b"/k").expect("free");
        assert!(locks.try_local(b"/k").is_none());
        let b = locks
            .try_local(b"/other")
            .expect("other keys are independent");
        drop(a);
        assert!(locks.try_local(b"/k").is_some());
        drop(b);
    }
}
