//! Writes whose outcome on some replica is not known: a PUT in flight, and
//! a failed PUT whose copies could not all be removed (a volume stopped
//! answering). Each has a record `w` + key (see `meta`), written and synced
//! before the first byte goes to a volume, so that neither a crash of the
//! master nor a volume that commits after the master gave up leaves a file
//! with no record, or a failed value that `mkv rebuild` would bring back.
//!
//! [`resolve`] deletes the key's file on the replicas the record names and,
//! for a write that was in flight at a crash, puts the key's record back as
//! it was. It runs at start and every 10 s on the journal thread, before a
//! new PUT of the key, and in `mkv rebuild` before the volumes are listed.

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::client::VolumeClient;
use crate::error::MasterError;
use crate::index::{Durability, Index, Op};
use crate::meta;
use crate::placement::key2path;
use crate::record::Record;

/// What the `w` record of a key says.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Replicas that may hold a copy the key's record does not account for.
    #[serde(rename = "r")]
    pub replicas: Vec<String>,
    /// The key's record before the write (encoded), put back after a crash.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// The write was answered as failed and the record already put back.
    #[serde(rename = "f", default)]
    pub failed: bool,
}

impl Pending {
    /// A write about to start on `replicas`, over the key's record `old`.
    pub fn in_flight(replicas: &[String], old: Option<&Record>) -> Pending {
        Pending {
            replicas: replicas.to_vec(),
            old: old.map(|r| String::from_utf8_lossy(&r.encode()).into_owned()),
            failed: false,
        }
    }
}

/// The index operation that records `pending` for `key`.
pub fn put_op(key: &[u8], pending: &Pending) -> Op {
    meta::put_op(meta::pending_key(key), pending)
}

pub fn delete_op(key: &[u8]) -> Op {
    Op::Delete(meta::pending_key(key))
}

/// Deletes the key's file on each replica `pending` names; the replicas
/// that did not answer (or refused).
pub async fn remove_copies(client: &VolumeClient, key: &[u8], replicas: &[String]) -> Vec<String> {
    let path = key2path(key);
    let answers = join_all(replicas.iter().map(|r| client.delete(r, &path))).await;
    let mut left = Vec::new();
    for (replica, answer) in replicas.iter().zip(answers) {
        match answer {
            Ok(r) if matches!(r.status, 200 | 204 | 404) => {}
            Ok(r) => {
                tracing::warn!(
                    replica,
                    status = r.status,
                    "could not remove the copy of a failed write"
                );
                left.push(replica.clone());
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not remove the copy of a failed write");
                left.push(replica.clone());
            }
        }
    }
    left
}

/// Finishes what `pending` left of a write of `key` (the caller holds the
/// key's lock); `Ok(false)` when some replica still did not answer (the
/// record then names only those).
pub async fn resolve(
    index: &Index,
    client: &VolumeClient,
    key: &[u8],
    pending: &Pending,
) -> Result<bool, MasterError> {
    let left = remove_copies(client, key, &pending.replicas).await;
    if !left.is_empty() {
        if left.len() < pending.replicas.len() {
            let fewer = Pending {
                replicas: left,
                ..pending.clone()
            };
            index
                .apply(vec![put_op(key, &fewer)], Durability::Synced)
                .await?;
        }
        return Ok(false);
    }
    let mut ops = vec![delete_op(key)];
    if !pending.failed {
        // In flight at a crash: the record is the soft one the write made.
        ops.push(match &pending.old {
            Some(old) => Op::Put(key.to_vec(), old.clone().into_bytes()),
            None => Op::Delete(key.to_vec()),
        });
    }
    index.apply(ops, Durability::Synced).await?;
    Ok(true)
}

/// Every pending write in the index, oldest key first.
pub fn scan(index: &Index) -> Result<Vec<(Vec<u8>, Pending)>, MasterError> {
    let mut found: Vec<(Vec<u8>, Pending)> = meta::scan_all(index, b"w")?;
    for (key, _) in &mut found {
        key.remove(0);
    }
    Ok(found)
}

/// Whether `key` has a write in flight or not cleaned up.
pub async fn get(index: &Index, key: &[u8]) -> Result<Option<Pending>, MasterError> {
    meta::get(index, &meta::pending_key(key)).await
}
