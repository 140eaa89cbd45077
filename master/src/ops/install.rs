//! Putting a staged value in place of a key's live one (an S3 overwrite, a
//! multipart completion onto an existing key), so that a failure leaves the
//! old value, never a mix, and a crash is undone at the next start.
//!
//! Crash ordering:
//! 1. the new value is staged on every replica (`.mkv-parts/<id>.stage`);
//! 2. an intent record (`j<id>`: key, replicas, old replicas, paths) is
//!    written and synced;
//! 3. on each replica the staged file replaces the key's file, the old one
//!    kept as `.mkv-parts/<id>.old` (volume-uring exchanges the two names
//!    atomically; over nginx the master copies);
//! 4. the key's record and metadata are written and the intent removed, in
//!    one synced batch; then the answer;
//! 5. the old copies, and files on replicas no longer wanted, are deleted.
//!
//! A failure in 3 puts the old copies back and removes the intent. A crash
//! between 2 and 4 leaves the intent: [`recover`] (at start, and every
//! 10 s while any is left) puts the old copies back then.

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::client::copy::{self, Piece};
use crate::client::fanout::Target;
use crate::client::{StagedRange, VolumeClient};
use crate::digests::Digests;
use crate::error::MasterError;
use crate::index::{Durability, Index, Op};
use crate::meta;
use crate::placement::key2path;
use crate::record::Record;
use crate::state::App;

/// A value staged on the replicas, ready to take a key's place.
pub struct Staged {
    /// The staging path (under each replica's subvolume).
    pub path: String,
    pub len: u64,
    pub crc: u32,
}

/// An install in flight, as the journal keeps it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    #[serde(rename = "k")]
    pub key: Vec<u8>,
    #[serde(rename = "r")]
    pub replicas: Vec<String>,
    /// The replicas that held the old value.
    #[serde(rename = "o")]
    pub old: Vec<String>,
    #[serde(rename = "s")]
    pub stage: String,
    #[serde(rename = "b")]
    pub backup: String,
}

pub fn intent_key(id: &str) -> Vec<u8> {
    let mut k = b"j".to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// An id for uploads, staging files and intents: random, with the time and
/// a counter so that it is unique even where randomness is short.
pub fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut random = [0u8; 8];
    let _ = rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty());
    let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff;
    format!(
        "{}{:011x}{n:04x}",
        crate::digests::hex(&random),
        crate::time::now_ms()
    )
}

/// Installs `staged` as `key`'s value on `replicas` (steps 2 to 5 above);
/// `commit` is written with the removal of the intent.
pub async fn install(
    app: &App,
    client: &VolumeClient,
    key: &[u8],
    old: &Record,
    replicas: &[String],
    staged: &Staged,
    commit: Vec<Op>,
) -> Result<(), MasterError> {
    let id = new_id();
    let intent = Intent {
        key: key.to_vec(),
        replicas: replicas.to_vec(),
        old: old.volumes.clone(),
        stage: staged.path.clone(),
        backup: format!("/.mkv-parts/{id}.old"),
    };
    meta::put(&app.index, intent_key(&id), &intent, Durability::Synced).await?;
    let dest = key2path(key);
    let placed = join_all(replicas.iter().map(|r| {
        let backup = intent.old.contains(r).then_some(intent.backup.as_str());
        place(client, r, &dest, staged, backup)
    }))
    .await;
    if let Some(e) = placed.into_iter().find_map(Result::err) {
        if undo(client, &intent).await {
            let _ = app.index.delete(&intent_key(&id), Durability::Synced).await;
        }
        return Err(e);
    }
    let mut ops = commit;
    ops.push(Op::Delete(intent_key(&id)));
    app.index.apply(ops, Durability::Synced).await?;
    clean_up(client, &intent, &dest).await;
    Ok(())
}

/// On one replica: the staged file replaces `dest`, the old one kept at
/// `backup` when given.
async fn place(
    client: &VolumeClient,
    replica: &str,
    dest: &str,
    staged: &Staged,
    backup: Option<&str>,
) -> Result<(), MasterError> {
    if !client.is_volume_uring(replica).await {
        // Copies through the master do what volume-uring does itself.
        return emulate_place(client, replica, dest, staged, backup).await;
    }
    let range = StagedRange {
        path: staged.path.clone(),
        offset: 0,
        len: staged.len,
        crc: staged.crc,
    };
    let reply = client.assemble(replica, dest, &[range], backup).await?;
    match reply.status {
        201 | 204 => Ok(()),
        s => Err(MasterError::ReplicaAnswer {
            replica: replica.to_string(),
            why: format!("answered {s} to placing a staged value"),
        }),
    }
}

async fn emulate_place(
    client: &VolumeClient,
    replica: &str,
    dest: &str,
    staged: &Staged,
    backup: Option<&str>,
) -> Result<(), MasterError> {
    if let Some(backup) = backup {
        let head = client.head(replica, dest).await?;
        if head.status == 200 {
            let pieces = [Piece::whole(replica, dest)];
            let to = [Target::new(replica, backup)];
            copy::copy(client, &pieces, &to, Digests::new(false, &[]), |_| Ok(())).await?;
        }
    }
    let pieces = [Piece::whole(replica, &staged.path)];
    let to = [Target::new(replica, dest)];
    copy::copy(client, &pieces, &to, Digests::new(false, &[]), |_| Ok(())).await?;
    Ok(())
}

/// Puts the old value back on every replica of an intent; true when all
/// of them answered (the intent can go).
async fn undo(client: &VolumeClient, intent: &Intent) -> bool {
    let dest = key2path(&intent.key);
    let undone = join_all(
        intent
            .replicas
            .iter()
            .map(|r| restore(client, r, &dest, intent)),
    )
    .await;
    let all = undone.iter().all(Result::is_ok);
    for e in undone.into_iter().filter_map(Result::err) {
        tracing::warn!(error = %e, key = %String::from_utf8_lossy(&intent.key), "an install could not be undone yet");
    }
    if all {
        clean_up(client, intent, &dest).await;
    }
    all
}

/// On one replica: the old value back where it was, or (on a replica that
/// had none) the new one removed.
async fn restore(
    client: &VolumeClient,
    replica: &str,
    dest: &str,
    intent: &Intent,
) -> Result<(), MasterError> {
    if !intent.old.iter().any(|r| r == replica) {
        let reply = client.delete(replica, dest).await?;
        return match reply.status {
            200 | 204 | 404 => Ok(()),
            s => Err(MasterError::ReplicaAnswer {
                replica: replica.to_string(),
                why: format!("answered {s} to removing an installed value"),
            }),
        };
    }
    let backup = client.head(replica, &intent.backup).await?;
    let Some(len) = backup.content_length.filter(|_| backup.status == 200) else {
        // Never replaced: the old value is still in place.
        return Ok(());
    };
    let old = Staged {
        path: intent.backup.clone(),
        len,
        crc: backup.crc32.unwrap_or_default(),
    };
    match backup.crc32 {
        Some(_) => place(client, replica, dest, &old, None).await,
        None => emulate_place(client, replica, dest, &old, None).await,
    }
}

/// Deletes what an intent leaves behind: staged and old copies, and the
/// key's files on old replicas that are no longer wanted.
async fn clean_up(client: &VolumeClient, intent: &Intent, dest: &str) {
    let mut deletes: Vec<(&str, &str)> = Vec::new();
    for r in &intent.replicas {
        deletes.push((r, &intent.stage));
        deletes.push((r, &intent.backup));
    }
    for r in intent.old.iter().filter(|r| !intent.replicas.contains(r)) {
        deletes.push((r, dest));
    }
    for res in join_all(deletes.iter().map(|(r, p)| client.delete(r, p))).await {
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not remove a staged or old copy");
        }
    }
}

/// Undoes the installs a crash left unfinished; returns how many remain
/// (their volumes did not answer).
pub async fn recover(app: &App, client: &VolumeClient) -> Result<usize, MasterError> {
    let index = app.index.clone();
    let pending: Vec<(Vec<u8>, Intent)> = monoio::spawn_blocking(move || scan_intents(&index))
        .await
        .map_err(|_| MasterError::Pool("the journal scan"))??;
    let mut left = 0;
    for (record, intent) in pending {
        let Some(_lock) = app.locks.try_lock(&intent.key) else {
            left += 1;
            continue;
        };
        if undo(client, &intent).await {
            app.index.delete(&record, Durability::Synced).await?;
            tracing::info!(key = %String::from_utf8_lossy(&intent.key), "undid an install left by a crash");
        } else {
            left += 1;
        }
    }
    Ok(left)
}

fn scan_intents(index: &Index) -> Result<Vec<(Vec<u8>, Intent)>, MasterError> {
    meta::scan_all(index, b"j")
}
