//! `REBALANCE /key`: the key's replicas moved to where `key2volume` puts
//! them now (`ops::rebalance`, where the crash ordering is).

use http1::{Answer, Conn};

use crate::error::MasterError;
use crate::front::request::Req;
use crate::ops::locks::lock_live;
use crate::ops::rebalance::rebalance_key;

/// `REBALANCE /key`: 204 once moved, 404 for a missing or unlinked key.
pub async fn serve(conn: &mut Conn, req: &Req<'_>) -> Result<Answer, MasterError> {
    let store = req.store;
    let (_lock, rec) = lock_live(&store.locks, &store.index, req.key).await?;
    rebalance_key(
        &store.client,
        &store.index,
        &store.cluster,
        req.key,
        &rec,
        false,
    )
    .await?;
    Ok(req.plain(&mut conn.wbuf, 204))
}
