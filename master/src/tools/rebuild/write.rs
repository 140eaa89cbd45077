//! The index written from what the crawl found: emptied first, then one
//! live record per key, replicas in `key2volume` order, then the others,
//! and then every key's metadata.
//!
//! The records and the metadata are written in two passes over the keys,
//! so that each memtable LevelDB writes out holds one stretch of one of
//! the two key ranges (`/...`, then `o/...`) and, in a new index, overlaps
//! no table written before it: it goes below level 0 and nothing has to be
//! compacted. (Over an old index, what `empty` deleted overlaps, as
//! before.) Keys in key order alternating between the two ranges made
//! every table span both, and each level-0 compaction rewrote all of level 1.

use std::collections::BTreeMap;

use super::crawl::NO_SUBVOLUME;
use super::runs::Runs;
use super::Found;
use crate::config::Cluster;
use crate::index::{Durability, Index, Submitted, Write};
use crate::meta::{self, ObjectMeta};
use crate::placement::ranked;
use crate::record::Record;

/// Records written per index batch.
const BATCH: usize = 10_000;

/// Where the found keys are: all in memory, or in runs on disk (merged
/// once per pass).
pub(super) enum Source<'a> {
    Memory(&'a BTreeMap<Vec<u8>, Found>),
    Runs(&'a mut Runs),
}

impl Source<'_> {
    /// Calls `f` on every key, in key order; a merge's md5 disagreements
    /// go to `disagreements` when given.
    fn each(
        &mut self,
        mut f: impl FnMut(&[u8], &Found) -> Result<(), String>,
        disagreements: Option<&mut Vec<Vec<u8>>>,
    ) -> Result<(), String> {
        match self {
            Source::Memory(keys) => keys.iter().try_for_each(|(key, found)| f(key, found)),
            Source::Runs(runs) => {
                let mut merge = runs
                    .merge()
                    .map_err(|e| format!("reading found keys (runs): {e}"))?;
                for record in merge.by_ref() {
                    let (key, found) =
                        record.map_err(|e| format!("reading found keys (runs): {e}"))?;
                    f(&key, &found)?;
                }
                if let Some(out) = disagreements {
                    out.append(&mut merge.disagreements);
                }
                Ok(())
            }
        }
    }
}

/// Empties the index of the original's records and of the objects'
/// metadata (buckets, uploads and the journal stay: the volumes do not
/// list them), then writes one live record, with its metadata, per key of
/// `keys`; returns how many, and adds the md5 disagreements a merge of
/// runs found to `disagreements`.
pub(super) fn write_index(
    index: &Index,
    cluster: &Cluster,
    mut keys: Source<'_>,
    disagreements: &mut Vec<Vec<u8>>,
) -> Result<u64, String> {
    empty(index, b"/")?;
    empty(index, &crate::meta::object_key(b""))?;
    let mut out = Batches::new(index);
    let mut written = 0;
    keys.each(
        |key, found| {
            let replicas = replica_names(cluster, key, &found.replicas);
            let md5 = found.md5.map(|m| crate::digests::hex(&m));
            written += 1;
            out.push(Write::Put(
                key.to_vec(),
                Record::live(replicas, md5).encode(),
            ))
        },
        Some(disagreements),
    )?;
    keys.each(
        |key, found| {
            let md5 = found.md5.map(|m| crate::digests::hex(&m));
            let meta = ObjectMeta {
                size: found.size,
                mtime_ms: found.mtime * 1000,
                etag: md5.clone().unwrap_or_default(),
                hash: md5,
                ..ObjectMeta::default()
            };
            out.push(meta::put_op(meta::object_key(key), &meta))
        },
        None,
    )?;
    out.finish()?;
    Ok(written)
}

/// Index writes in batches of `BATCH`: one batch is written while the
/// next is made.
struct Batches<'a> {
    index: &'a Index,
    ops: Vec<Write>,
    in_flight: Option<Submitted>,
}

impl<'a> Batches<'a> {
    fn new(index: &'a Index) -> Batches<'a> {
        Batches {
            index,
            ops: Vec::with_capacity(BATCH),
            in_flight: None,
        }
    }

    fn push(&mut self, op: Write) -> Result<(), String> {
        self.ops.push(op);
        if self.ops.len() < BATCH {
            return Ok(());
        }
        let ops = std::mem::replace(&mut self.ops, Vec::with_capacity(BATCH));
        let queued = self
            .index
            .submit(ops, Durability::Relaxed)
            .map_err(|e| e.to_string())?;
        match self.in_flight.replace(queued) {
            Some(before) => before.wait_blocking().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Writes the last batch synced, and with it every batch before it.
    fn finish(mut self) -> Result<(), String> {
        if let Some(before) = self.in_flight.take() {
            before.wait_blocking().map_err(|e| e.to_string())?;
        }
        self.index
            .apply_blocking(std::mem::take(&mut self.ops), Durability::Synced)
            .map_err(|e| e.to_string())
    }
}

/// The replicas of `key` found at `here` (volume positions, subvolumes),
/// named: those where `key2volume` puts it first in its order, then the
/// others by name.
fn replica_names(cluster: &Cluster, key: &[u8], here: &[(u16, u8)]) -> Vec<String> {
    let name = |&(volume, sv): &(u16, u8)| match sv {
        NO_SUBVOLUME => cluster.volumes[usize::from(volume)].clone(),
        sv => format!("{}/sv{sv:02X}", cluster.volumes[usize::from(volume)]),
    };
    if let [only] = here {
        // One replica: no order to find.
        return vec![name(only)];
    }
    let wanted: Vec<(u16, u8)> =
        ranked(key, &cluster.volumes, cluster.replicas, cluster.subvolumes)
            .into_iter()
            .filter_map(|(v, sv)| {
                // A subvolume past `svFE` is never listed (`svNN` has two digits).
                let sv = sv.map_or(Some(NO_SUBVOLUME), |n| {
                    u8::try_from(n).ok().filter(|&n| n != NO_SUBVOLUME)
                })?;
                Some((u16::try_from(v).ok()?, sv))
            })
            .collect();
    let mut replicas: Vec<String> = wanted
        .iter()
        .filter(|w| here.contains(w))
        .map(name)
        .collect();
    let mut others: Vec<String> = here
        .iter()
        .filter(|r| !wanted.contains(r))
        .map(name)
        .collect();
    others.sort();
    replicas.extend(others);
    replicas
}

/// Deletes every record whose key begins with `prefix`.
fn empty(index: &Index, prefix: &[u8]) -> Result<(), String> {
    let mut from = Vec::new();
    loop {
        let mut doomed = Vec::new();
        index
            .scan(prefix, &from, |k, _| {
                doomed.push(k.to_vec());
                doomed.len() < BATCH
            })
            .map_err(|e| e.to_string())?;
        let Some(last) = doomed.last().cloned() else {
            return Ok(());
        };
        let ops = doomed.into_iter().map(Write::Delete).collect();
        index
            .apply_blocking(ops, Durability::Relaxed)
            .map_err(|e| e.to_string())?;
        from = last;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A cluster of two volumes (one subvolume each), its index in `dir`.
    fn two_volumes(dir: &std::path::Path, replicas: usize) -> Cluster {
        Cluster {
            db: dir.join("index"),
            volumes: vec!["a:1".into(), "b:2".into()],
            replicas,
            subvolumes: 1,
            protect: false,
            md5sum: true,
            fallback: None,
            voltimeout: Duration::from_secs(1),
            volume_timeout: Duration::from_secs(1),
            verbose: false,
        }
    }

    /// Over several batches (one written while the next is made), every
    /// key gets its record and its metadata, and what was there before
    /// (records and metadata, not buckets) is gone.
    #[test]
    fn every_batch_lands() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = two_volumes(dir.path(), 1);
        let index = Index::open_bulk(&cluster.db).unwrap();
        let stale = Record::live(vec!["a:1".into()], None).encode();
        let before = vec![
            Write::Put(b"/old".to_vec(), stale),
            Write::Put(meta::object_key(b"/old"), b"{}".to_vec()),
            Write::Put(b"bbucket".to_vec(), b"{}".to_vec()),
        ];
        index.apply_blocking(before, Durability::Relaxed).unwrap();
        let n = 2 * BATCH + 123;
        let keys: BTreeMap<Vec<u8>, Found> = (0..n)
            .map(|i| {
                let found = Found {
                    replicas: vec![((i % 2) as u16, NO_SUBVOLUME)],
                    md5: Some([i as u8; 16]),
                    size: i as u64,
                    mtime: 1_700_000_000,
                };
                (format!("/k{i:06}").into_bytes(), found)
            })
            .collect();
        let mut disagreements = Vec::new();
        let written = write_index(&index, &cluster, Source::Memory(&keys), &mut disagreements);
        assert_eq!(written.unwrap(), n as u64);
        assert!(disagreements.is_empty());
        for i in [0, BATCH - 1, BATCH, 2 * BATCH, n - 1] {
            let key = format!("/k{i:06}");
            let rec = index.get_blocking(key.as_bytes()).unwrap().expect(&key);
            let volume = if i % 2 == 0 { "a:1" } else { "b:2" };
            assert_eq!(rec.volumes, vec![volume.to_string()], "{key}");
            assert_eq!(rec.hash, Some(crate::digests::hex(&[i as u8; 16])));
            let raw = index
                .get_raw_blocking(&meta::object_key(key.as_bytes()))
                .unwrap();
            let meta: serde_json::Value = serde_json::from_slice(&raw.expect(&key)).unwrap();
            assert_eq!(meta["s"], i as u64, "{key}: {meta}");
        }
        let mut records = 0;
        index
            .scan(b"/", b"", |_, _| {
                records += 1;
                true
            })
            .unwrap();
        assert_eq!(records, n, "the stale record is gone");
        assert!(index
            .get_raw_blocking(&meta::object_key(b"/old"))
            .unwrap()
            .is_none());
        assert!(
            index.get_raw_blocking(b"bbucket").unwrap().is_some(),
            "buckets stay"
        );
        index.close();
    }

    /// Keys from runs on disk are merged once per pass; a key whose
    /// replicas kept different md5s is reported once.
    #[test]
    fn runs_are_read_in_two_passes_and_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = two_volumes(dir.path(), 2);
        let mut runs = Runs::new(dir.path().join("runs"));
        for (volume, md5) in [(0u16, [1u8; 16]), (1, [2; 16])] {
            let found = |size| Found {
                replicas: vec![(volume, NO_SUBVOLUME)],
                md5: Some(md5),
                size,
                mtime: 1_700_000_000,
            };
            let mut keys: BTreeMap<Vec<u8>, Found> = BTreeMap::new();
            keys.insert(b"/differs".to_vec(), found(5));
            keys.insert(format!("/only-{volume}").into_bytes(), found(7));
            runs.spill(&mut keys).unwrap();
        }
        let index = Index::open_bulk(&cluster.db).unwrap();
        let mut disagreements = Vec::new();
        let written = write_index(
            &index,
            &cluster,
            Source::Runs(&mut runs),
            &mut disagreements,
        );
        assert_eq!(written.unwrap(), 3);
        assert_eq!(disagreements, vec![b"/differs".to_vec()]);
        let rec = index.get_blocking(b"/differs").unwrap().unwrap();
        let mut volumes = rec.volumes.clone();
        volumes.sort();
        assert_eq!(volumes, ["a:1", "b:2"]);
        for key in [&b"/differs"[..], b"/only-0", b"/only-1"] {
            let raw = index
                .get_raw_blocking(&meta::object_key(key))
                .unwrap()
                .expect("metadata");
            let meta: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            assert!(meta["s"] == 5 || meta["s"] == 7, "{meta}");
        }
        index.close();
    }
}
