//! Per-key write locks: one PUT, DELETE, UNLINK or REBALANCE of a key at a
//! time; a second one gets a 409 rather than waiting. The guard releases the
//! key when dropped, on every path out of a handler.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Mutex;

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
