//! Records read recently, so that lookups of those keys take neither the
//! index lock nor a LevelDB read, and are not held up by a compaction that
//! rusty-leveldb runs inside a write or a lookup, under the lock.
//!
//! Kept coherent by the index lock: writers remove the keys they write
//! while holding it, and a lookup that goes to LevelDB fills the cache
//! while still holding it. A reader without the lock sees a record as of
//! some moment between the calls it races with, as if it had run just
//! before or just after them.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

const SHARDS: usize = 16;

pub struct RecordCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    /// Bytes (keys and records) each shard may hold.
    shard_budget: usize,
    /// Records held, changed only under the index lock: a write that finds
    /// none (a bulk write with nothing read) does not hash its keys.
    held: AtomicUsize,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<[u8]>, Bytes>,
    bytes: usize,
}

impl RecordCache {
    /// A cache of about `budget` bytes of keys and records.
    pub fn new(budget: usize) -> RecordCache {
        RecordCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: Default::default(),
            shard_budget: budget / SHARDS,
            held: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &[u8]) -> std::sync::MutexGuard<'_, Shard> {
        let i = self.hasher.hash_one(key) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.shard(key).map.get(key).cloned()
    }

    /// Call with the index lock held.
    pub fn insert(&self, key: &[u8], record: Bytes) {
        let size = key.len() + record.len();
        if size > self.shard_budget {
            return self.remove(key);
        }
        let mut shard = self.shard(key);
        match shard.map.insert(key.into(), record) {
            Some(old) => shard.bytes -= key.len() + old.len(),
            None => {
                self.held.fetch_add(1, Ordering::Relaxed);
            }
        }
        shard.bytes += size;
        // Full: drop others, in the map's (random) order.
        while shard.bytes > self.shard_budget {
            let Some(victim) = shard.map.keys().find(|k| k[..] != *key).cloned() else {
                break;
            };
            if let Some(old) = shard.map.remove(&victim) {
                shard.bytes -= victim.len() + old.len();
                self.held.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Call with the index lock held.
    pub fn remove(&self, key: &[u8]) {
        if self.held.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut shard = self.shard(key);
        if let Some(old) = shard.map.remove(key) {
            shard.bytes -= key.len() + old.len();
            self.held.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_latest_and_stays_within_budget() {
        let c = RecordCache::new(16 * 1000);
        c.insert(b"/a", Bytes::from_static(b"one"));
        c.insert(b"/a", Bytes::from_static(b"two"));
        assert_eq!(c.get(b"/a").as_deref(), Some(&b"two"[..]));
        c.remove(b"/a");
        assert_eq!(c.get(b"/a"), None);
        for i in 0..10_000 {
            c.insert(format!("/k/{i}").as_bytes(), Bytes::from(vec![b'x'; 40]));
            // What was just written is always there.
            assert!(c.get(format!("/k/{i}").as_bytes()).is_some());
        }
        let held: usize = c.shards.iter().map(|s| s.lock().unwrap().bytes).sum();
        assert!(held <= 16 * 1000, "{held} bytes held");
        let counted: usize = c
            .shards
            .iter()
            .flat_map(|s| {
                let s = s.lock().unwrap();
                s.map
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .collect::<Vec<_>>()
            })
            .sum();
        assert_eq!(held, counted);
        let entries: usize = c.shards.iter().map(|s| s.lock().unwrap().map.len()).sum();
        assert_eq!(c.held.load(Ordering::Relaxed), entries);
        // Too large to keep: not kept, and an older value is not left behind.
        c.insert(b"/big", Bytes::from_static(b"small"));
        c.insert(b"/big", Bytes::from(vec![b'y'; 2000]));
        assert_eq!(c.get(b"/big"), None);
    }
}
