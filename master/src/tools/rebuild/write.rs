//! The index written from what the crawl found: emptied first, then one
//! live record per key, replicas in `key2volume` order, then the others.

use super::crawl::NO_SUBVOLUME;
use super::Found;
use crate::config::Cluster;
use crate::index::{Durability, Index, Op};
use crate::meta::{self, ObjectMeta};
use crate::placement::key2volume;
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
    let name = |&(volume, sv): &(u16, u8)| match sv {
        NO_SUBVOLUME => cluster.volumes[usize::from(volume)].clone(),
        sv => format!("{}/sv{sv:02X}", cluster.volumes[usize::from(volume)]),
    };
    let mut ops = Vec::with_capacity(BATCH);
    let mut written = 0;
    for found in keys {
        let (key, found) = found?;
        let wanted = key2volume(&key, &cluster.volumes, cluster.replicas, cluster.subvolumes);
        let here: Vec<String> = found.replicas.iter().map(name).collect();
        let mut replicas: Vec<String> = wanted
            .iter()
            .filter(|w| here.contains(w))
            .cloned()
            .collect();
        let mut others: Vec<String> = here.into_iter().filter(|r| !wanted.contains(r)).collect();
        others.sort();
        replicas.extend(others);
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
            index
                .apply_blocking(std::mem::take(&mut ops), Durability::Relaxed)
                .map_err(|e| e.to_string())?;
        }
    }
    // The last batch is synced, and with it every batch before it.
    index
        .apply_blocking(ops, Durability::Synced)
        .map_err(|e| e.to_string())?;
    Ok(written)
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
