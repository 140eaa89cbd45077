//! The one write-intent protocol. Every write that sends bytes to a volume
//! before the index names them — a PUT in place (`put`), an install of a
//! staged value (`install`: S3 overwrites, copies over live keys, multipart
//! completions) and a rebalance's copies (`rebalance`) — goes:
//!
//! 1. [`begin`]: under the key's lock, settle what an earlier write of the
//!    key left, then write the intent record (`meta::Intent`) in one synced
//!    batch with whatever the write changes first (a PUT's soft record);
//! 2. send to the volumes;
//! 3. commit: the record and metadata the write makes, and [`done_op`]
//!    removing the intent, in one synced batch; then the answer.
//!
//! A failure in 2 or 3 calls [`undo`], and so does recovery of an intent a
//! crash left: the journal thread (at start and every 10 s, for keys no
//! write holds), the next write of the key (in [`begin`]), and `mkv
//! rebuild` / `mkv rebalance` before they read the volumes ([`settle_all`]).
//! So an intent exists exactly while a write may have bytes on a volume the
//! index does not account for, and one function undoes each kind.

use futures_util::future::join_all;

use crate::client::VolumeClient;
use crate::error::MasterError;
use crate::index::{Durability, Index, Write};
use crate::meta::{self, Intent, Kind, LegacyInstall};
use crate::ops::install;
use crate::ops::locks::KeyLocks;
use crate::placement::key2path;
use crate::record::Record;

/// An intent found in the index: the key written, the record that holds the
/// intent, and what it says.
pub struct Found {
    pub key: Vec<u8>,
    record: Vec<u8>,
    pub intent: Intent,
}

/// The operation that removes the key's intent, for the commit's batch.
pub fn done_op(key: &[u8]) -> Write {
    Write::Delete(meta::intent_key(key))
}

/// What a writer knows of its key's intent record when it begins.
pub enum Earlier {
    /// Nothing yet: [`begin`] reads it.
    Unread,
    /// Read under the key's lock as it was taken (`locks::AtLock`), and
    /// not written since.
    Read(Option<Intent>),
}

/// The key's intent record, if a write of it is under way or failed.
pub async fn get(index: &Index, key: &[u8]) -> Result<Option<Intent>, MasterError> {
    meta::get(index, &meta::intent_key(key)).await
}

/// Step 1 (the caller holds the key's lock): settles an earlier write of
/// the key (`earlier`), then writes the intent `make(old)` gives, with the
/// operations it gives beside it, in one synced batch. Returns the intent
/// and the key's record as it now is: `old`, or the one an earlier write
/// cut off by a crash had replaced. Refused (503) while a replica still
/// holds a copy of an earlier write that could not be removed.
pub async fn begin(
    index: &Index,
    client: &VolumeClient,
    key: &[u8],
    old: Option<Record>,
    earlier: Earlier,
    make: impl FnOnce(Option<&Record>) -> (Intent, Vec<Write>),
) -> Result<(Intent, Option<Record>), MasterError> {
    let earlier = match earlier {
        Earlier::Unread => get(index, key).await?,
        Earlier::Read(intent) => intent,
    };
    let old = match earlier {
        None => old,
        Some(earlier) => {
            let record = meta::intent_key(key);
            if !undo_at(index, client, key, record, &earlier).await? {
                return Err(MasterError::Unfinished(earlier.replicas.join(",")));
            }
            index.get(key).await?
        }
    };
    let (intent, mut ops) = make(old.as_ref());
    ops.push(meta::put_op(meta::intent_key(key), &intent));
    index.apply_held(key, ops, Durability::Synced).await?;
    Ok((intent, old))
}

/// Undoes the write `intent` records for `key` (the caller holds the key's
/// lock, or nothing else writes the index): for a PUT the copies removed
/// and the old record put back, for an install the old values put back,
/// for a move the copies removed. `Ok(false)` when some replica did not
/// answer: the intent then names only what is left, as failed.
pub async fn undo(
    index: &Index,
    client: &VolumeClient,
    key: &[u8],
    intent: &Intent,
) -> Result<bool, MasterError> {
    undo_at(index, client, key, meta::intent_key(key), intent).await
}

async fn undo_at(
    index: &Index,
    client: &VolumeClient,
    key: &[u8],
    record: Vec<u8>,
    intent: &Intent,
) -> Result<bool, MasterError> {
    let left = match intent.kind() {
        Kind::Install { .. } if install::undo(client, key, intent).await => Vec::new(),
        Kind::Install { .. } => intent.replicas.clone(),
        Kind::Put | Kind::Move => remove_copies(client, key, &intent.replicas).await,
    };
    let mut ops = Vec::new();
    if intent.kind() == Kind::Put && !intent.failed {
        ops.push(match intent.old_record()? {
            Some(old) => Write::Put(key.to_vec(), old.encode()),
            None => Write::Delete(key.to_vec()),
        });
    }
    let settled = left.is_empty();
    if settled {
        ops.push(Write::Delete(record));
    } else if !matches!(intent.kind(), Kind::Install { .. }) {
        // An install is kept whole: its old replicas are what it restores.
        ops.push(meta::put_op(record, &intent.remaining(left)));
    }
    if !ops.is_empty() {
        index.apply_held(key, ops, Durability::Synced).await?;
    }
    Ok(settled)
}

/// Deletes the key's file on each of `replicas`; returns those that did
/// not answer (or refused).
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
                    "could not remove the copy of an unfinished write"
                );
                left.push(replica.clone());
            }
            Err(e) => {
                tracing::warn!(error = %e, replica, "could not remove the copy of an unfinished write");
                left.push(replica.clone());
            }
        }
    }
    left
}

/// Every intent in the index (with the installs older versions recorded
/// apart), in key order.
pub fn scan(index: &Index) -> Result<Vec<Found>, MasterError> {
    let mut found: Vec<Found> = meta::scan_all::<Intent>(index, &meta::intent_key(b""))?
        .into_iter()
        .map(|(record, intent)| Found {
            key: meta::key_of_intent(&record).to_vec(),
            record,
            intent,
        })
        .collect();
    for (record, legacy) in meta::scan_all::<LegacyInstall>(index, meta::LEGACY_INSTALLS)? {
        found.push(Found {
            key: legacy.key.clone(),
            record,
            intent: legacy.to_intent(),
        });
    }
    Ok(found)
}

/// What a pass over the intents did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Undone: their volumes hold nothing the index does not name.
    pub undone: usize,
    /// Writes under way (their key's lock held): not touched.
    pub in_flight: usize,
    /// Undone as far as the volumes answered: the rest waits for them.
    pub stuck: Vec<(Vec<u8>, Vec<String>)>,
}

/// Undoes every intent whose key no write holds (`locks`: the server's;
/// None where nothing else writes the index, as in the tools).
pub async fn settle_all(
    index: &Index,
    client: &VolumeClient,
    locks: Option<&KeyLocks>,
    found: Vec<Found>,
) -> Result<Settled, MasterError> {
    let mut out = Settled::default();
    for f in found {
        let lock = match locks {
            Some(l) => Some(l.try_lock(&f.key).await?),
            None => None,
        };
        if matches!(lock, Some(None)) {
            out.in_flight += 1;
            continue;
        }
        // Read again under the lock: a write may have finished it meanwhile.
        let Some(intent) = reread(index, &f).await? else {
            continue;
        };
        if undo_at(index, client, &f.key, f.record.clone(), &intent).await? {
            tracing::info!(key = %String::from_utf8_lossy(&f.key), kind = ?intent.kind(), failed = intent.failed, "undid an unfinished write");
            out.undone += 1;
        } else {
            let left = get(index, &f.key)
                .await?
                .map_or(intent.replicas, |i| i.replicas);
            out.stuck.push((f.key, left));
        }
    }
    Ok(out)
}

async fn reread(index: &Index, f: &Found) -> Result<Option<Intent>, MasterError> {
    if f.record == meta::intent_key(&f.key) {
        return get(index, &f.key).await;
    }
    let legacy: Option<LegacyInstall> = meta::get(index, &f.record).await?;
    Ok(legacy.map(|l| l.to_intent()))
}
