//! The index written from what the crawl found: emptied first, then one
//! live record per key, replicas in `key2volume` order, then the others.

use super::crawl::NO_SUBVOLUME;
use super::Found;
use crate::config::Cluster;
use crate::index::{Durability, Index, Op, Submitted};
use crate::meta::{self, ObjectMeta};
use crate::placement::ranked;
use crate::record::Record;

/// Records written per index batch.
const BATCH: usize = 10_000;

/// Empties the index of the original's records and of the objects'
/// metadata (buckets, uploads and the journal stay: the volumes do not
/// list them), then writes one live record, with its metadata, per key of
/// `keys` (in key order); returns how many.
pub(super) fn write_index(
    index: &Index,
    cluster: &Cluster,
    keys: impl Iterator<Item = Result<(Vec<u8>, Found), String>>,
) -> Result<u64, String> {
    empty(index, b"/")?;
    empty(index, b"o")?;
    let mut ops = Vec::with_capacity(BATCH);
    let mut in_flight: Option<Submitted> = None;
    let mut written = 0;
    for found in keys {
        let (key, found) = found?;
        let replicas = replica_names(cluster, &key, &found.replicas);
        let md5 = found.md5.map(|m| crate::digests::hex(&m));
        let meta = ObjectMeta {
            size: found.size,
            mtime_ms: found.mtime * 1000,
            etag: md5.clone().unwrap_or_default(),
            hash: md5.clone(),
            ..ObjectMeta::default()
        };
        ops.push(meta::put_op(meta::object_key(&key), &meta));
        ops.push(Op::Put(key, Record::live(replicas, md5).encode()));
        written += 1;
        if ops.len() >= BATCH {
            // One batch is written while the next is made.
            let queued = index
                .submit(std::mem::take(&mut ops), Durability::Relaxed)
                .map_err(|e| e.to_string())?;
            if let Some(before) = in_flight.replace(queued) {
                before.wait_blocking().map_err(|e| e.to_string())?;
            }
        }
    }
    if let Some(before) = in_flight {
        before.wait_blocking().map_err(|e| e.to_string())?;
    }
    // The last batch is synced, and with it every batch before it.
    index
        .apply_blocking(ops, Durability::Synced)
        .map_err(|e| e.to_string())?;
    Ok(written)
}

/// The replicas of `key` found at `here` (volume positions, subvolumes),
/// named: those where `key2volume` puts it first in its order, then the
/// others by name.
fn replica_names(cluster: &Cluster, key: &[u8], here: &[(u16, u8)]) -> Vec<String> {
    let name = |&(volume, sv): &(u16, u8)| match sv {
        NO_SUBVOLUME => cluster.volumes[usize::from(volume)].clone(),
        sv => format!("{}/sv{sv:02X}", cluster.volumes[usize::from(volume)]),
    };
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
        let ops = doomed.into_iter().map(Op::Delete).collect();
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

    /// Over several batches (one written while the next is made), every
    /// key gets its record and its metadata, and what was there before
    /// (records and metadata, not buckets) is gone.
    #[test]
    fn every_batch_lands() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster {
            db: dir.path().join("index"),
            volumes: vec!["a:1".into(), "b:2".into()],
            replicas: 1,
            subvolumes: 1,
            protect: false,
            md5sum: true,
            fallback: None,
            voltimeout: Duration::from_secs(1),
            volume_timeout: Duration::from_secs(1),
            verbose: false,
        };
        let index = Index::open_bulk(&cluster.db).unwrap();
        let stale = Record::live(vec!["a:1".into()], None).encode();
        let before = vec![
            Op::Put(b"/old".to_vec(), stale),
            Op::Put(meta::object_key(b"/old"), b"{}".to_vec()),
            Op::Put(b"bbucket".to_vec(), b"{}".to_vec()),
        ];
        index.apply_blocking(before, Durability::Relaxed).unwrap();
        let n = 2 * BATCH + 123;
        let keys = (0..n).map(|i| {
            let found = Found {
                replicas: vec![((i % 2) as u16, NO_SUBVOLUME)],
                md5: Some([i as u8; 16]),
                size: i as u64,
                mtime: 1_700_000_000,
            };
            Ok((format!("/k{i:06}").into_bytes(), found))
        });
        assert_eq!(write_index(&index, &cluster, keys).unwrap(), n as u64);
        for i in [0, BATCH - 1, BATCH, 2 * BATCH, n - 1] {
            let key = format!("/k{i:06}");
            let rec = index.get_blocking(key.as_bytes()).unwrap().expect(&key);
            let volume = if i % 2 == 0 { "a:1" } else { "b:2" };
            assert_eq!(rec.volumes, vec![volume.to_string()], "{key}");
            assert_eq!(rec.hash, Some(crate::digests::hex(&[i as u8; 16])));
            let raw = index.get_raw_blocking(&meta::object_key(key.as_bytes()));
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
        assert!(index.get_raw_blocking(&meta::object_key(b"/old")).is_none());
        assert!(index.get_raw_blocking(b"bbucket").is_some(), "buckets stay");
        index.close();
    }
}
