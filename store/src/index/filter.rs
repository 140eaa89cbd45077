//! A Bloom filter of the index's keys, so that most GETs of missing keys are
//! answered without taking the index lock.
//!
//! It only ever says "certainly absent" or "maybe present"; a key is added
//! before its record is written, and keys are never removed (a deleted key
//! just costs a real lookup). Until the startup scan has loaded every key
//! it says "maybe" to everything. It is sized for twice the keys present
//! (16 bits a key, at least 4 MiB). Once as many keys have been added since
//! as it was sized for (an index that grows, or churns through keys that
//! are deleted again), the index is scanned anew in the background into a
//! filter sized for what is there now, which then replaces this one; until
//! then misses only get slower, never wrong.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

const HASHES: u64 = 4;
const BITS_PER_KEY: u64 = 16;
const MIN_BITS: u64 = 32 << 20;

struct Bits {
    words: Box<[AtomicU64]>,
    /// Keys it was sized for: past this many additions, it is rebuilt.
    capacity: u64,
}

impl Bits {
    fn for_keys(keys: u64, min_bits: u64) -> Bits {
        let nbits = (keys * 2 * BITS_PER_KEY).max(min_bits).next_power_of_two();
        Bits {
            words: (0..nbits / 64).map(|_| AtomicU64::new(0)).collect(),
            capacity: nbits / BITS_PER_KEY,
        }
    }

    fn nbits(&self) -> u64 {
        self.words.len() as u64 * 64
    }
}

pub struct KeyFilter {
    /// None until the startup scan is done.
    bits: ArcSwapOption<Bits>,
    hasher: std::collections::hash_map::RandomState,
    /// While a scan runs, the hashes of the keys added meanwhile (the scan
    /// may miss them).
    during_scan: Mutex<Option<Vec<u64>>>,
    /// Keys added to the current bits since they were built.
    added: AtomicU64,
    /// A scan is running or asked for.
    scanning: AtomicBool,
    min_bits: u64,
}

impl Default for KeyFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyFilter {
    /// A filter waiting for its startup scan.
    pub fn new() -> KeyFilter {
        Self::with_min_bits(MIN_BITS)
    }

    /// A filter that is never filled: every key may be there.
    pub fn off() -> KeyFilter {
        let f = Self::new();
        *f.during_scan.lock().unwrap_or_else(|e| e.into_inner()) = None;
        f
    }

    pub(crate) fn with_min_bits(min_bits: u64) -> KeyFilter {
        KeyFilter {
            bits: ArcSwapOption::empty(),
            hasher: Default::default(),
            during_scan: Mutex::new(Some(Vec::new())),
            added: AtomicU64::new(0),
            scanning: AtomicBool::new(true),
            min_bits: min_bits.next_power_of_two(),
        }
    }

    /// A scan is running, or about to.
    #[cfg(test)]
    pub(crate) fn is_scanning(&self) -> bool {
        self.scanning.load(Ordering::Acquire)
    }

    /// What the filter keeps of a key: 8 bytes, however long the key.
    pub fn hash(&self, key: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        h.finish()
    }

    fn positions(h1: u64, nbits: u64) -> impl Iterator<Item = u64> {
        let h2 = h1.rotate_left(32).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..HASHES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & (nbits - 1))
    }

    /// Adds `key` (before its record is written). Returns whether the filter
    /// is now full and the caller should scan the index into a new one
    /// ([`KeyFilter::begin_scan`], [`KeyFilter::end_scan`]); once: later
    /// calls return false until that scan is done.
    pub fn insert(&self, key: &[u8]) -> bool {
        // Under this lock, so that a scan ending now either finds the key in
        // `during_scan` or publishes its bits before we set them.
        let mut during = self.during_scan.lock().unwrap_or_else(|e| e.into_inner());
        let bits = self.bits.load();
        // Off (no bits, no scan): nothing to hash the key for.
        let hash = (during.is_some() || bits.is_some()).then(|| self.hash(key));
        if let (Some(hashes), Some(hash)) = (during.as_mut(), hash) {
            hashes.push(hash);
        }
        let capacity = bits.as_deref().zip(hash).map(|(bits, hash)| {
            Self::set(bits, hash);
            bits.capacity
        });
        drop(bits);
        drop(during);
        let added = self.added.fetch_add(1, Ordering::Relaxed) + 1;
        let full = capacity.is_some_and(|c| added > c);
        full && !self.scanning.swap(true, Ordering::AcqRel)
    }

    fn set(bits: &Bits, hash: u64) {
        for p in Self::positions(hash, bits.nbits()) {
            bits.words[(p / 64) as usize].fetch_or(1 << (p % 64), Ordering::Relaxed);
        }
    }

    /// `false` means the key is certainly not in the index.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        let guard = self.bits.load();
        let Some(bits) = guard.as_deref() else {
            return true;
        };
        Self::positions(self.hash(key), bits.nbits())
            .all(|p| bits.words[(p / 64) as usize].load(Ordering::Relaxed) & (1 << (p % 64)) != 0)
    }

    /// Starts recording the keys added from now on, for a scan about to
    /// begin. The caller holds the index's lock, which writers hold from
    /// their `insert` to their write: every key is then either written
    /// before the scan starts (and the scan sees it) or recorded.
    pub fn begin_scan(&self) {
        self.during_scan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Vec::new);
    }

    /// Puts a filter of the scanned keys, and of those added meanwhile, in
    /// place of the current one. The startup scan, and those
    /// [`KeyFilter::insert`] asks for, end here. After a failed scan the
    /// current filter (or none) stays, and a later insert may ask again.
    /// `scanned` holds the [`KeyFilter::hash`]es of the keys found.
    pub fn end_scan<E>(&self, scanned: Result<Vec<u64>, E>) -> Result<(), E> {
        let mut during = self.during_scan.lock().unwrap_or_else(|e| e.into_inner());
        let late = during.take().unwrap_or_default();
        let keys = match scanned {
            Ok(keys) => keys,
            Err(e) => {
                self.scanning.store(false, Ordering::Release);
                return Err(e);
            }
        };
        let count = (keys.len() + late.len()) as u64;
        let bits = Bits::for_keys(count, self.min_bits);
        for &h in keys.iter().chain(&late) {
            Self::set(&bits, h);
        }
        self.added.store(count, Ordering::Relaxed);
        self.bits.store(Some(Arc::new(bits)));
        self.scanning.store(false, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(prefix: &str, i: usize) -> Vec<u8> {
        format!("/{prefix}/{i}").into_bytes()
    }

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let f = KeyFilter::new();
        assert!(
            f.may_contain(b"anything"),
            "not ready: everything may be there"
        );
        f.insert(b"/early");
        f.end_scan(Ok::<_, ()>(Vec::new())).unwrap();
        for i in 0..100_000 {
            assert!(!f.insert(&key("key", i)), "far from full");
        }
        assert!(f.may_contain(b"/early"));
        assert!((0..100_000).all(|i| f.may_contain(&key("key", i))));
        let false_positives = (0..100_000)
            .filter(|&i| f.may_contain(&key("other", i)))
            .count();
        assert!(
            false_positives < 100,
            "{false_positives} false positives in 100k"
        );
    }

    /// A filter that fills up asks once for a rescan; the new one is sized
    /// for what the index holds and misses none of the keys added while the
    /// scan ran.
    #[test]
    fn grows_by_rescanning_without_losing_keys() {
        let f = KeyFilter::with_min_bits(1 << 14); // 1,024 keys
        let mut index: Vec<Vec<u8>> = Vec::new();
        f.end_scan(Ok::<_, ()>(Vec::new())).unwrap();
        let mut asked = 0;
        for i in 0..5_000 {
            let k = key("key", i);
            let full = f.insert(&k);
            // Its record is written before the scan starts, so the scan sees it.
            index.push(k);
            if full {
                asked += 1;
                // Keys written while the scan runs, which it does not see.
                let during: Vec<_> = (0..50).map(|j| key("during", i * 100 + j)).collect();
                f.begin_scan();
                for k in &during {
                    assert!(!f.insert(k), "a scan is already running");
                }
                let hashes = index.iter().map(|k| f.hash(k)).collect();
                f.end_scan(Ok::<_, ()>(hashes)).unwrap();
                assert!(during.iter().all(|k| f.may_contain(k)));
                index.extend(during);
            }
        }
        // 1,024 keys, then 4,096 (twice the keys, to a power of two): two rescans.
        assert_eq!(asked, 2, "asked for {asked} rescans");
        assert!(index.iter().all(|k| f.may_contain(k)), "a false negative");
        let false_positives = (0..10_000)
            .filter(|&i| f.may_contain(&key("other", i)))
            .count();
        assert!(
            false_positives < 200,
            "{false_positives} false positives in 10k"
        );
    }

    #[test]
    fn a_failed_scan_keeps_the_old_filter_and_can_be_retried() {
        let f = KeyFilter::with_min_bits(1 << 10); // 64 keys
        f.end_scan(Ok::<_, ()>(Vec::new())).unwrap();
        let full = (0..100)
            .map(|i| f.insert(&key("k", i)))
            .filter(|&a| a)
            .count();
        assert_eq!(full, 1);
        f.begin_scan();
        assert_eq!(f.end_scan(Err("disk")), Err("disk"));
        assert!((0..100).all(|i| f.may_contain(&key("k", i))));
        assert!(f.insert(&key("k", 100)), "asks again after a failure");
    }

    #[test]
    fn off_never_rules_out_nor_keeps_keys() {
        let f = KeyFilter::off();
        assert!(!f.insert(b"/a"));
        assert!(f.may_contain(b"/b"));
        assert!(f.during_scan.lock().unwrap().is_none());
    }
}
