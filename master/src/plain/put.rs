//! PUT: a new value streamed to its replicas (`ops::put`, where the crash
//! ordering is); 403 if the key holds a live value, 409 while another
//! write of it is under way.

use http1::{Answer, BodyReader, Conn};

use crate::digests::Digests;
use crate::error::MasterError;
use crate::front::request::Req;
use crate::meta::ObjectMeta;
use crate::ops::intent::Earlier;
use crate::ops::put::{write_new, NewValue};

pub async fn serve(conn: &mut Conn, req: &Req<'_>) -> Result<Answer, MasterError> {
    let store = req.store;
    let (lock, at) = store
        .locks
        .try_lock_reading(&store.index, req.key)
        .await?
        .ok_or(MasterError::Busy)?;
    if !req.head.body.has_bytes() {
        return Err(MasterError::LengthRequired);
    }
    let old = at.record;
    if old.as_ref().is_some_and(|r| !r.deleted) {
        return Err(MasterError::Forbidden);
    }
    if req.head.expect_continue {
        conn.wbuf.extend_from_slice(http1::response::CONTINUE);
    }
    let mut body = BodyReader::new(req.head.body);
    let digests = Digests::new(store.cluster.md5sum, &[]);
    let new = NewValue {
        key: req.key,
        old,
        earlier: Earlier::Read(at.intent),
        ends: Some(&lock),
        meta: ObjectMeta::default(),
        extra: Vec::new(),
    };
    write_new(store, conn, new, &mut body, digests, |_, _| Ok(())).await?;
    Ok(req.plain(&mut conn.wbuf, 201))
}
