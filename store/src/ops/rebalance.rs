//! Moving a key's replicas to where `key2volume` puts them now: for one key
//! (`REBALANCE /key` on the server) and for every key (`mkv rebalance`).
//!
//! For one key:
//! 1. HEAD every replica of the record (and every wanted volume) to see which
//!    really hold the value; one that disagrees in length or CRC32 with the
//!    record's first replica does not count.
//! 2. Write an intent (`ops::intent`, kind move) naming the wanted volumes
//!    that lack it (synced), then copy from a holder to each, streamed
//!    volume to volume, checking length, CRC32 and (if recorded) md5. A
//!    failed copy, or a crash before step 3, is undone from the intent: the
//!    copies removed, record and replicas as they were.
//! 3. Write the record with the wanted replicas first and the surplus after
//!    them, and remove the intent (synced): a crash from here on leaves the
//!    surplus listed, so a re-run finds and removes it.
//! 4. Delete the surplus copies, then write the record with exactly the
//!    wanted replicas. Its deleted-state and hash never change.

use std::rc::Rc;

use futures_util::future::join_all;

use crate::client::copy::Piece;
use crate::client::fanout::Target;
use crate::client::{self, Reply, VolumeClient};
use crate::cluster::Cluster;
use crate::digests::{Digests, Sums};
use crate::error::MasterError;
use crate::index::{Durability, Index, Write};
use crate::meta::Intent;
use crate::ops::delete::remove_files;
use crate::ops::intent::{self, Earlier};
use crate::placement::{key2path, key2volume};
use crate::record::Record;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Copies made (or, in a dry run, to make).
    pub copied: Vec<String>,
    /// Copies removed (or to remove).
    pub removed: Vec<String>,
    pub bytes: u64,
}

impl Moved {
    pub fn is_nothing(&self) -> bool {
        self.copied.is_empty() && self.removed.is_empty()
    }
}

pub async fn rebalance_key(
    client: &Rc<VolumeClient>,
    index: &Index,
    cluster: &Cluster,
    key: &[u8],
    rec: &Record,
    dry_run: bool,
) -> Result<Moved, MasterError> {
    let wanted = key2volume(key, &cluster.volumes, cluster.replicas, cluster.subvolumes);
    let path = key2path(key);
    let (holders, size) = holders(client, rec, &wanted, &path).await?;
    let not_in = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|x| !b.contains(x)).cloned().collect()
    };
    let (missing, surplus) = (not_in(&wanted, &holders), not_in(&holders, &wanted));
    let mut moved = Moved {
        copied: missing.clone(),
        removed: surplus.clone(),
        bytes: 0,
    };
    if dry_run {
        moved.bytes = size * missing.len() as u64;
        return Ok(moved);
    }
    if moved.is_nothing() && rec.volumes == wanted {
        return Ok(moved);
    }
    // The copies are the intent's until the record names them.
    let mut done = None;
    if !missing.is_empty() {
        let make = |_: Option<&Record>| (Intent::moving(&missing), Vec::new());
        let old = Some(rec.clone());
        let (moving, _) = intent::begin(index, client, key, old, Earlier::Unread, make).await?;
        match copy(client, &holders[0], &missing, &path, rec.hash.as_deref()).await {
            Ok(bytes) => moved.bytes = bytes,
            Err(e) => {
                if let Err(undo) = intent::undo(index, client, key, &moving).await {
                    tracing::error!(error = %undo, "could not undo a rebalance's copies");
                }
                return Err(e);
            }
        }
        done = Some(intent::done_op(key));
    }
    let with = |volumes: Vec<String>| {
        let rec = Record {
            volumes,
            ..rec.clone()
        };
        Write::Put(key.to_vec(), rec.encode())
    };
    if !surplus.is_empty() {
        let mut listed = wanted.clone();
        listed.extend(surplus.iter().cloned());
        let ops = std::iter::once(with(listed)).chain(done.take()).collect();
        index.apply_held(key, ops, Durability::Synced).await?;
        remove_files(client, &path, &surplus).await?;
    }
    let ops = std::iter::once(with(wanted)).chain(done).collect();
    index.apply_held(key, ops, Durability::Synced).await?;
    Ok(moved)
}

/// The replicas (record's first, then wanted ones) that hold the value, the
/// record's own replicas first. Fails if none does, or if one of the
/// record's replicas cannot be asked.
async fn holders(
    client: &Rc<VolumeClient>,
    rec: &Record,
    wanted: &[String],
    path: &str,
) -> Result<(Vec<String>, u64), MasterError> {
    let mut candidates: Vec<&String> = rec.volumes.iter().collect();
    candidates.extend(wanted.iter().filter(|w| !rec.volumes.contains(w)));
    let answers = join_all(candidates.iter().map(|r| client.head(r, path))).await;
    let mut reference: Option<Reply> = None;
    let mut found = Vec::new();
    for (i, (replica, answer)) in candidates.iter().zip(answers).enumerate() {
        let reply = match answer {
            Ok(reply) => reply,
            // A replica of the record that cannot be asked may still hold the
            // value: moving on would drop it from the record and orphan it.
            Err(e) if i < rec.volumes.len() => return Err(e.into()),
            Err(_) => continue,
        };
        if reply.status != 200 {
            continue;
        }
        match &reference {
            None if i < rec.volumes.len() => reference = Some(reply),
            None => continue,
            Some(r) if !same_value(r, &reply) => {
                tracing::warn!(%replica, "copy differs from the record's first replica; it will be replaced");
                continue;
            }
            Some(_) => {}
        }
        found.push((*replica).clone());
    }
    match reference {
        Some(r) if !found.is_empty() => Ok((found, r.content_length.unwrap_or(0))),
        _ => Err(MasterError::ReplicaAnswer {
            replica: rec.volumes.join(","),
            why: "no replica holds the value".into(),
        }),
    }
}

fn same_value(a: &Reply, b: &Reply) -> bool {
    let crcs_differ = matches!((a.crc32, b.crc32), (Some(x), Some(y)) if x != y);
    a.content_length == b.content_length && !crcs_differ
}

/// Streams the value from `source` to every target at once, checking its
/// length, CRC32 and (if recorded) md5; returns its length. On failure the
/// copies that landed are removed.
async fn copy(
    client: &VolumeClient,
    source: &str,
    targets: &[String],
    path: &str,
    md5: Option<&str>,
) -> Result<u64, MasterError> {
    let pieces = [Piece::whole(source, path)];
    let digests = Digests::new(md5.is_some(), &[]);
    let check = |sums: &Sums| match (md5, sums.md5_hex()) {
        (Some(want), Some(got)) if want != got => Err(MasterError::ReplicaAnswer {
            replica: source.to_string(),
            why: format!("its bytes have md5 {got}, the record says {want}"),
        }),
        _ => Ok(()),
    };
    let sent = client::copy::copy(
        client,
        &pieces,
        &Target::each(targets, path),
        digests,
        check,
    )
    .await?;
    Ok(sent.bytes)
}
