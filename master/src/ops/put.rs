//! PUT: the body streams to every replica at once, through a bounded buffer,
//! with its md5 and CRC32 computed on the way.
//!
//! Crash ordering:
//! 1. the record is written soft-deleted with the new replicas (so a crash
//!    mid-write leaves the key invisible, never half-visible);
//! 2. every replica receives the value (volume-uring and nginx both store a
//!    PUT whole or not at all; volume-uring fsyncs before answering);
//! 3. the record is written live with its md5 and synced; then the 201.
//!
//! If any replica fails (or stores bytes whose CRC32 differs from what was
//! sent), the copies that did land are removed and the record goes back to
//! what it was (none, or the old soft-deleted one), and the answer is a 5xx.

use futures_util::future::join_all;
use http1::{response, BodyReader, Conn};

use crate::client::fanout::{Fanout, Target};
use crate::digests::Digests;
use crate::error::MasterError;
use crate::front::request::Req;
use crate::index::Durability;
use crate::placement::{key2path, key2volume, unstorable};
use crate::record::Record;
use crate::state::Local;

/// Bytes read from the client before each round of sends to the replicas.
const CHUNK: usize = 256 * 1024;

pub async fn serve(local: &Local, conn: &mut Conn, req: &Req<'_>) -> Result<(), MasterError> {
    let app = &local.app;
    let _lock = app.locks.try_lock(req.key).ok_or(MasterError::Busy)?;
    if !req.head.body.has_bytes() {
        return Err(MasterError::LengthRequired);
    }
    let old = app.index.get(req.key).await?;
    if old.as_ref().is_some_and(|r| !r.deleted) {
        return Err(MasterError::Forbidden);
    }
    if let Some(why) = unstorable(req.key) {
        return Err(MasterError::Unstorable(why));
    }
    let c = &app.cluster;
    let replicas = key2volume(req.key, &c.volumes, c.replicas, c.subvolumes);
    let pending = Record {
        deleted: true,
        hash: None,
        volumes: replicas.clone(),
    };
    app.index
        .put(req.key, &pending, Durability::Relaxed)
        .await?;
    if req.head.expect_continue {
        conn.wbuf.extend_from_slice(response::CONTINUE);
        conn.flush().await?;
    }
    let mut landed = Vec::new();
    match replicate(local, conn, req, &replicas, &mut landed).await {
        Ok(hash) => {
            app.index
                .put(req.key, &Record::live(replicas, hash), Durability::Synced)
                .await?;
            req.plain(&mut conn.wbuf, 201);
            Ok(())
        }
        Err(e) => {
            undo(local, req.key, &landed, old).await;
            Err(e)
        }
    }
}

/// Streams the body to every replica; returns the value's hex md5. The
/// replicas that stored the value are pushed to `landed` as they answer.
async fn replicate(
    local: &Local,
    conn: &mut Conn,
    req: &Req<'_>,
    replicas: &[String],
    landed: &mut Vec<String>,
) -> Result<Option<String>, MasterError> {
    let path = key2path(req.key);
    let targets = Target::each(replicas, &path);
    let digests = Digests::new(local.app.cluster.md5sum, &[]);
    let mut fanout = Fanout::open(&local.client, &targets, digests).await?;
    let mut body = BodyReader::new(req.head.body);
    // The next chunk is read from the client while this one goes out; the
    // last one goes with the trailers.
    let mut chunk = body.read_full(conn, Vec::with_capacity(CHUNK)).await?;
    while !body.is_done() {
        let next = body.read_full(conn, Vec::with_capacity(CHUNK));
        let (sent, next) = monoio::join!(fanout.send(chunk), next);
        sent?;
        chunk = next?;
    }
    Ok(fanout.finish(chunk, landed).await?.md5())
}

/// After a failed PUT: removes the copies that landed (except on volumes the
/// old soft-deleted record still points at) and restores the old record.
async fn undo(local: &Local, key: &[u8], landed: &[String], old: Option<Record>) {
    let path = key2path(key);
    let keep: &[String] = old.as_ref().map_or(&[], |r| &r.volumes);
    let removals = landed
        .iter()
        .filter(|r| !keep.contains(r))
        .map(|r| local.client.delete(r, &path));
    for res in join_all(removals).await {
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not remove the copy of a failed PUT");
        }
    }
    let index = &local.app.index;
    let restored = match old {
        Some(rec) => index.put(key, &rec, Durability::Synced).await,
        None => index.delete(key, Durability::Synced).await,
    };
    if let Err(e) = restored {
        tracing::error!(error = %e, key = %String::from_utf8_lossy(key), "could not restore the record after a failed PUT");
    }
}
