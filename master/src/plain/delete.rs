//! DELETE and UNLINK.
//!
//! DELETE: `ops::delete` (the record soft-deleted, the files removed, then
//! the record and the metadata gone), then the 204; a replica that cannot
//! delete makes it a 500 and leaves the key soft-deleted, so a retried
//! DELETE finishes the job. With `--protect`, a live key is a 403.
//!
//! UNLINK: the record goes soft-deleted (synced); the files stay.

use http1::{Answer, Conn};

use crate::error::MasterError;
use crate::front::request::Req;
use crate::index::{Durability, Write};
use crate::ops::delete::delete_record;
use crate::ops::locks::lock_live;
use crate::record::Record;

pub async fn delete(conn: &mut Conn, req: &Req<'_>) -> Result<Answer, MasterError> {
    let store = req.store;
    let (lock, at) = store
        .locks
        .try_lock_reading(&store.index, req.key)
        .await?
        .ok_or(MasterError::Busy)?;
    let rec = at.record.ok_or(MasterError::NotFound)?;
    if store.cluster.protect && !rec.deleted {
        return Err(MasterError::Forbidden);
    }
    delete_record(store, &lock, rec).await?;
    Ok(req.plain(&mut conn.wbuf, 204))
}

pub async fn unlink(conn: &mut Conn, req: &Req<'_>) -> Result<Answer, MasterError> {
    let store = req.store;
    let (_lock, rec) = lock_live(&store.locks, &store.index, req.key).await?;
    let soft = Record {
        deleted: true,
        ..rec
    };
    let op = Write::Put(req.key.to_vec(), soft.encode());
    store
        .index
        .apply_held(req.key, vec![op], Durability::Synced)
        .await?;
    Ok(req.plain(&mut conn.wbuf, 204))
}
