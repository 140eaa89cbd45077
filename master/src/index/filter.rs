//! A Bloom filter of the index's keys, so that most GETs of missing keys are
//! answered without taking the index lock.
//!
//! It only ever says "certainly absent" or "maybe present"; a key is added
//! before its record is written, and keys are never removed (a deleted key
//! just costs a real lookup). Until the startup scan has loaded every key
//! it says "maybe" to everything. It is sized at startup for twice the keys
//! then present (16 bits a key, at least 4 MiB); an index that grows well
//! past that sees more false positives — slower misses, never wrong answers
//! — until the next start sizes it anew.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::{Index, IndexError};

const HASHES: u64 = 4;
const MIN_BITS: u64 = 32 << 20;

pub struct KeyFilter {
    /// Published once the startup scan is done.
    bits: OnceLock<Box<[AtomicU64]>>,
    hasher: std::collections::hash_map::RandomState,
    /// Keys added during the startup scan, before `bits` existed.
    early: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Default for KeyFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyFilter {
    pub fn new() -> KeyFilter {
        KeyFilter {
            bits: OnceLock::new(),
            hasher: Default::default(),
            early: Default::default(),
        }
    }

    fn positions(&self, key: &[u8], nbits: u64) -> impl Iterator<Item = u64> {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        let h1 = h.finish();
        let h2 = h1.rotate_left(32).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..HASHES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & (nbits - 1))
    }

    pub fn insert(&self, key: &[u8]) {
        match self.bits.get() {
            Some(bits) => self.set(bits, key),
            None => {
                let mut early = self.early.lock().unwrap_or_else(|e| e.into_inner());
                // Re-check under the lock: `fill` may have just published the bits.
                match self.bits.get() {
                    Some(bits) => self.set(bits, key),
                    None => early.push(key.to_vec()),
                }
            }
        }
    }

    fn set(&self, bits: &[AtomicU64], key: &[u8]) {
        let nbits = bits.len() as u64 * 64;
        for p in self.positions(key, nbits) {
            bits[(p / 64) as usize].fetch_or(1 << (p % 64), Ordering::Relaxed);
        }
    }

    /// `false` means the key is certainly not in the index.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        let Some(bits) = self.bits.get() else {
            return true;
        };
        let nbits = bits.len() as u64 * 64;
        self.positions(key, nbits)
            .all(|p| bits[(p / 64) as usize].load(Ordering::Relaxed) & (1 << (p % 64)) != 0)
    }

    /// Loads every key of `index` (once, at startup).
    pub fn fill(&self, index: &Index) -> Result<(), IndexError> {
        let mut keys = Vec::new();
        index.scan(b"", b"", |k, _| {
            keys.push(k.to_vec());
            true
        })?;
        let nbits = (keys.len() as u64 * 32).max(MIN_BITS).next_power_of_two();
        let bits: Box<[AtomicU64]> = (0..nbits / 64).map(|_| AtomicU64::new(0)).collect();
        for k in &keys {
            self.set(&bits, k);
        }
        {
            let mut early = self.early.lock().unwrap_or_else(|e| e.into_inner());
            for k in early.drain(..) {
                self.set(&bits, &k);
            }
            let _ = self.bits.set(bits);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let f = KeyFilter::new();
        assert!(
            f.may_contain(b"anything"),
            "not ready: everything may be there"
        );
        f.insert(b"/early");
        let bits: Box<[AtomicU64]> = (0..MIN_BITS / 64).map(|_| AtomicU64::new(0)).collect();
        let _ = f.bits.set(bits);
        for k in f.early.lock().unwrap().drain(..) {
            f.set(f.bits.get().unwrap(), &k);
        }
        for i in 0..100_000 {
            f.insert(format!("/key/{i}").as_bytes());
        }
        assert!(f.may_contain(b"/early"));
        assert!((0..100_000).all(|i| f.may_contain(format!("/key/{i}").as_bytes())));
        let false_positives = (0..100_000)
            .filter(|i| f.may_contain(format!("/other/{i}").as_bytes()))
            .count();
        assert!(
            false_positives < 100,
            "{false_positives} false positives in 100k"
        );
    }
}
