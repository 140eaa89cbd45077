//! Deleting a key: the record goes soft-deleted first, then every
//! replica's file is removed, then the record itself and the object's
//! metadata (synced). If a replica cannot delete, the error says so and
//! the key stays soft-deleted, so it is invisible and a retried delete
//! finishes the job (a replica that no longer has the file counts as
//! done).

use futures_util::future::join_all;

use crate::client::VolumeClient;
use crate::error::MasterError;
use crate::index::{Durability, Write};
use crate::meta;
use crate::ops::locks::KeyGuard;
use crate::placement::key2path;
use crate::record::Record;
use crate::Store;

/// Deletes a key whose record is `rec` (the caller holds its lock,
/// `hold`, and writes nothing of the key after): the record soft-deleted,
/// the files removed, then the record and the object's metadata gone in
/// one synced batch, with the lock.
pub async fn delete_record(
    store: &Store,
    hold: &KeyGuard<'_>,
    rec: Record,
) -> Result<(), MasterError> {
    let key = hold.key();
    let index = &store.index;
    if !rec.deleted {
        let soft = Record {
            deleted: true,
            ..rec.clone()
        };
        let op = Write::Put(key.to_vec(), soft.encode());
        index.apply_held(key, vec![op], Durability::Relaxed).await?;
    }
    remove_files(&store.client, &key2path(key), &rec.volumes).await?;
    let ops = vec![
        Write::Delete(key.to_vec()),
        Write::Delete(meta::object_key(key)),
    ];
    hold.commit_last(index, ops, Durability::Synced).await?;
    Ok(())
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
