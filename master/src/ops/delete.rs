//! DELETE and UNLINK.
//!
//! DELETE: the record goes soft-deleted first, then every replica's file is
//! removed, then the record itself and the object's metadata (synced)
//! before the 204. If a replica
//! cannot delete, the answer is a 500 and the key stays soft-deleted, so
//! it is invisible and a retried DELETE finishes the job (a replica that no
//! longer has the file counts as done).
//!
//! UNLINK: the record goes soft-deleted (synced); the files stay.

use futures_util::future::join_all;
use http1::{Answer, Conn};

use crate::client::VolumeClient;
use crate::error::MasterError;
use crate::front::request::Req;
use crate::index::{Durability, Write};
use crate::meta;
use crate::ops::locks::lock_live;
use crate::placement::key2path;
use crate::record::Record;
use crate::state::Local;

pub async fn delete(local: &Local, conn: &mut Conn, req: &Req<'_>) -> Result<Answer, MasterError> {
    let app = &local.app;
    let _lock = app.locks.try_lock(req.key).ok_or(MasterError::Busy)?;
    let rec = app.index.get(req.key).await?.ok_or(MasterError::NotFound)?;
    if app.cluster.protect && !rec.deleted {
        return Err(MasterError::Forbidden);
    }
    delete_record(local, req.key, rec).await?;
    Ok(req.plain(&mut conn.wbuf, 204))
}

/// Deletes a key whose record is `rec` (the caller holds its lock): the
/// record soft-deleted, the files removed, then the record and the
/// object's metadata gone in one synced batch.
pub async fn delete_record(local: &Local, key: &[u8], rec: Record) -> Result<(), MasterError> {
    let index = &local.app.index;
    if !rec.deleted {
        let soft = Record {
            deleted: true,
            ..rec.clone()
        };
        index.put(key, &soft, Durability::Relaxed).await?;
    }
    remove_files(&local.client, &key2path(key), &rec.volumes).await?;
    let ops = vec![
        Write::Delete(key.to_vec()),
        Write::Delete(meta::object_key(key)),
    ];
    index.apply(ops, Durability::Synced).await?;
    Ok(())
}

pub async fn unlink(local: &Local, conn: &mut Conn, req: &Req<'_>) -> Result<Answer, MasterError> {
    let (_lock, rec) = lock_live(&local.app.locks, &local.app.index, req.key).await?;
    let soft = Record {
        deleted: true,
        ..rec
    };
    local
        .app
        .index
        .put(req.key, &soft, Durability::Synced)
        .await?;
    Ok(req.plain(&mut conn.wbuf, 204))
}

/// Deletes the file at `path` (a `key2path`) on each of `replicas`, all at
/// once. A 404 is as good as a 204: the file is gone either way.
pub async fn remove_files(
    client: &VolumeClient,
    path: &str,
    replicas: &[String],
) -> Result<(), MasterError> {
    let results = join_all(replicas.iter().map(|r| client.delete(r, path))).await;
    for (replica, res) in replicas.iter().zip(results) {
        match res {
            Ok(r) if r.status == 204 || r.status == 200 || r.status == 404 => {}
            Ok(r) => {
                let why = format!("answered {} to the DELETE", r.status);
                return Err(MasterError::ReplicaAnswer {
                    replica: replica.clone(),
                    why,
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
