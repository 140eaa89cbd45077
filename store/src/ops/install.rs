//! Putting a staged value in place of a key's value (an S3 overwrite, a
//! copy onto a live key, a multipart completion), so that a failure leaves
//! the old value, never a mix, and a crash is undone at the next start.
//! The intent is `ops::intent`'s, of kind install.
//!
//! Crash ordering:
//! 1. [`begin`]: the intent (key's old record, replicas, staging and backup
//!    paths) is written and synced, before anything is staged;
//! 2. the new value is staged on every replica (`.mkv-parts/<id>.stage`, or
//!    the multipart object);
//! 3. [`Installing::finish`]: on each replica the staged file replaces the
//!    key's file, the old one kept at the backup path (volume-uring
//!    exchanges the two names atomically; over nginx the master copies);
//! 4. the key's record and metadata are written and the intent removed, in
//!    one synced batch; then the answer;
//! 5. the old copies, and files on old replicas no longer wanted, are
//!    deleted.
//!
//! A failure in 2 to 4, and an intent a crash left, are undone by [`undo`]
//! (through `intent::undo`): on every replica the old value back in place
//! (or, on a replica that had none, the new one removed), staged and backup
//! files removed. The old replicas the record names keep their files.

use futures_util::future::join_all;

use crate::client::copy::{self, Piece};
use crate::client::fanout::Target;
use crate::client::{StagedRange, VolumeClient};
use crate::error::MasterError;
use crate::index::{Durability, Index, Write};
use crate::meta::{Intent, Kind};
use crate::ops::intent::{self, Earlier};
use crate::placement::key2path;
use crate::record::Record;

/// A value staged on the replicas, ready to take a key's place.
pub struct Staged {
    /// The staging path (under each replica's subvolume).
    pub path: String,
    pub len: u64,
    pub crc: u32,
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

/// An install whose intent is written (step 1): stage the value at
/// [`Installing::stage`] on [`Installing::replicas`], then `finish` or
/// `abort`.
pub struct Installing {
    key: Vec<u8>,
    intent: Intent,
}

/// Step 1 (the caller holds the key's lock): the intent to put a value
/// staged at `stage` on `replicas` in place of the key's. Returns the key's
/// record as it now is (an earlier write cut off by a crash is undone
/// first).
pub async fn begin(
    index: &Index,
    client: &VolumeClient,
    key: &[u8],
    old: Option<Record>,
    replicas: &[String],
    stage: &str,
) -> Result<(Installing, Option<Record>), MasterError> {
    let backup = format!("/.mkv-parts/{}.old", new_id());
    let (intent, old) = intent::begin(index, client, key, old, Earlier::Unread, |old| {
        (Intent::install(replicas, old, stage, &backup), Vec::new())
    })
    .await?;
    let installing = Installing {
        key: key.to_vec(),
        intent,
    };
    Ok((installing, old))
}

impl Installing {
    pub fn stage(&self) -> &str {
        self.paths().0
    }

    fn paths(&self) -> (&str, &str) {
        match self.intent.kind() {
            Kind::Install { stage, backup } => (stage, backup),
            _ => unreachable!("an install's intent is of kind install"),
        }
    }

    /// Steps 3 to 5: `staged` takes the key's place on every replica and
    /// `commit` is written with the removal of the intent. On failure the
    /// old value is back.
    pub async fn finish(
        self,
        index: &Index,
        client: &VolumeClient,
        staged: &Staged,
        mut commit: Vec<Write>,
    ) -> Result<(), MasterError> {
        let dest = key2path(&self.key);
        let old = self.intent.old_replicas();
        let backup = self.paths().1;
        let placed = join_all(self.intent.replicas.iter().map(|r| {
            let backup = old.contains(r).then_some(backup);
            place(client, r, &dest, staged, backup)
        }))
        .await;
        if let Some(e) = placed.into_iter().find_map(Result::err) {
            self.abort(index, client).await;
            return Err(e);
        }
        commit.push(intent::done_op(&self.key));
        if let Err(e) = index
            .apply_held(&self.key, commit, Durability::Synced)
            .await
        {
            self.abort(index, client).await;
            return Err(e.into());
        }
        clean_up(client, &self.intent, &dest, true).await;
        Ok(())
    }

    /// Undoes the install (nothing committed): the old value stays; what
    /// a volume did not confirm is left to the journal.
    pub async fn abort(self, index: &Index, client: &VolumeClient) {
        if let Err(e) = intent::undo(index, client, &self.key, &self.intent).await {
            tracing::error!(error = %e, key = %String::from_utf8_lossy(&self.key), "could not undo an install");
        }
    }
}

/// On one replica: the staged file replaces `dest`, the old one kept at
/// `backup` when given. volume-uring does it itself; over nginx the master
/// copies.
async fn place(
    client: &VolumeClient,
    replica: &str,
    dest: &str,
    staged: &Staged,
    backup: Option<&str>,
) -> Result<(), MasterError> {
    if client.is_volume_uring(replica).await {
        let range = StagedRange {
            path: staged.path.clone(),
            offset: 0,
            len: staged.len,
            crc: staged.crc,
        };
        let reply = client.assemble(replica, dest, &[range], backup).await?;
        return match reply.status {
            201 | 204 => Ok(()),
            s => Err(MasterError::ReplicaAnswer {
                replica: replica.to_string(),
                why: format!("answered {s} to placing a staged value"),
            }),
        };
    }
    if let Some(backup) = backup {
        let head = client.head(replica, dest).await?;
        if head.status == 200 {
            let pieces = [Piece::whole(replica, dest)];
            copy::copy_into_file(client, &pieces, Target::new(replica, backup)).await?;
        }
    }
    let pieces = [Piece::whole(replica, &staged.path)];
    copy::copy_into_file(client, &pieces, Target::new(replica, dest)).await?;
    Ok(())
}

/// The volumes' side of undoing an install: on every replica of `intent`
/// the old value back where it was, then staged and backup files removed;
/// true when all of them answered (the intent can go).
pub async fn undo(client: &VolumeClient, key: &[u8], intent: &Intent) -> bool {
    let dest = key2path(key);
    let old = intent.old_replicas();
    let Kind::Install { backup, .. } = intent.kind() else {
        return true;
    };
    let undone = join_all(
        intent
            .replicas
            .iter()
            .map(|r| restore(client, r, &dest, old.contains(r).then_some(backup))),
    )
    .await;
    let all = undone.iter().all(Result::is_ok);
    for e in undone.into_iter().filter_map(Result::err) {
        tracing::warn!(error = %e, key = %String::from_utf8_lossy(key), "an install could not be undone yet");
    }
    if all {
        clean_up(client, intent, &dest, false).await;
    }
    all
}

/// On one replica: the old value back from `backup` (a replica that held
/// it), or (on a replica that had none) the new one removed.
async fn restore(
    client: &VolumeClient,
    replica: &str,
    dest: &str,
    backup: Option<&str>,
) -> Result<(), MasterError> {
    let Some(backup) = backup else {
        let reply = client.delete(replica, dest).await?;
        return match reply.status {
            200 | 204 | 404 => Ok(()),
            s => Err(MasterError::ReplicaAnswer {
                replica: replica.to_string(),
                why: format!("answered {s} to removing an installed value"),
            }),
        };
    };
    let head = client.head(replica, backup).await?;
    let Some(len) = head.content_length.filter(|_| head.status == 200) else {
        // Never replaced: the old value is still in place.
        return Ok(());
    };
    let old = Staged {
        path: backup.to_string(),
        len,
        crc: head.crc32.unwrap_or_default(),
    };
    match head.crc32 {
        Some(_) => place(client, replica, dest, &old, None).await,
        // No CRC32 to assemble by (nginx, or a file it wrote): copied.
        None => {
            let pieces = [Piece::whole(replica, backup)];
            copy::copy_into_file(client, &pieces, Target::new(replica, dest)).await?;
            Ok(())
        }
    }
}

/// Deletes what an install leaves behind: staged and backup copies and,
/// once it is `committed`, the key's files on old replicas the new record
/// no longer names (undone, the old record still names them).
async fn clean_up(client: &VolumeClient, intent: &Intent, dest: &str, committed: bool) {
    let Kind::Install { stage, backup } = intent.kind() else {
        return;
    };
    let mut deletes: Vec<(&str, &str)> = Vec::new();
    for r in &intent.replicas {
        deletes.push((r, stage));
        deletes.push((r, backup));
    }
    let old = intent.old_replicas();
    if committed {
        for r in old.iter().filter(|r| !intent.replicas.contains(r)) {
            deletes.push((r, dest));
        }
    }
    for res in join_all(deletes.iter().map(|(r, p)| client.delete(r, p))).await {
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not remove a staged or old copy");
        }
    }
}
