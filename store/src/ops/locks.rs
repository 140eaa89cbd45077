//! Per-key write locks: one write of a key at a time. The plain API's
//! writers take a key's lock or give up (the original's 409); S3's wait
//! for it ([`KeyLocks::lock`]), so that overlapping writers of a key each
//! succeed, one after the other. The guard releases the key when dropped,
//! on every path out of a handler.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::MasterError;
use crate::index::Index;
use crate::record::Record;

const SHARDS: usize = 16;

#[derive(Default)]
pub struct KeyLocks {
    shards: [Mutex<HashSet<Vec<u8>>>; SHARDS],
    hasher: std::collections::hash_map::RandomState,
}

pub struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: Vec<u8>,
}

impl KeyLocks {
    fn shard(&self, key: &[u8]) -> &Mutex<HashSet<Vec<u8>>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// The key's lock, unless someone holds it.
    pub fn try_lock(&self, key: &[u8]) -> Option<KeyGuard<'_>> {
        let mut set = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        if set.insert(key.to_vec()) {
            Some(KeyGuard {
                locks: self,
                key: key.to_vec(),
            })
        } else {
            None
        }
    }

    /// The key's lock, waiting up to `patience` for its holder to let go
    /// (polled, every 1 ms at first, then every 20 ms).
    pub async fn lock(&self, key: &[u8], patience: Duration) -> Option<KeyGuard<'_>> {
        let deadline = Instant::now() + patience;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(guard) = self.try_lock(key) {
                return Some(guard);
            }
            if Instant::now() >= deadline {
                return None;
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
    let lock = locks.try_lock(key).ok_or(MasterError::Busy)?;
    let rec = index
        .get(key)
        .await?
        .filter(|r| !r.deleted)
        .ok_or(MasterError::NotFound)?;
    Ok((lock, rec))
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
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
        let a = locks.try_lock(b"/k").expect("free");
        assert!(locks.try_lock(b"/k").is_none());
        let b = locks
            .try_lock(b"/other")
            .expect("other keys are independent");
        drop(a);
        assert!(locks.try_lock(b"/k").is_some());
        drop(b);
    }
}
