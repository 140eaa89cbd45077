//! PUT: a new value streamed to its replicas (`ops::put`, where the crash
//! ordering is); 403 if the key holds a live value, 409 while another
//! write of it is under way.
//!
//! The key's lock is taken with a claim of its first step (the soft record
//! and the intent): for a key with neither, the usual PUT, the write begins
//! in the commit that locks it (over PostgreSQL one round trip where it
//! took three); for one with either, nothing is claimed and the write goes
//! on from what the lock read, as it would without the claim.

use http1::{Answer, BodyReader, Conn};

use crate::digests::Digests;
use crate::error::MasterError;
use crate::front::request::Req;
use crate::meta::ObjectMeta;
use crate::ops::intent::Earlier;
use crate::ops::put::{self, write_new, NewValue, Start};
use crate::placement::{key2volume, unstorable};

pub async fn serve(conn: &mut Conn, req: &Req<'_>) -> Result<Answer, MasterError> {
    let store = req.store;
    let c = &store.cluster;
    // A PUT that will be refused whatever the key holds claims nothing, so
    // that its answers come in the order they always did.
    let claimable = req.head.body.has_bytes() && unstorable(req.key).is_none();
    let (intent, claim) = match claimable {
        true => {
            let replicas = key2volume(req.key, &c.volumes, c.replicas, c.subvolumes);
            let (intent, rows) = put::claim(req.key, &replicas);
            (Some(intent), rows)
        }
        false => (None, Vec::new()),
    };
    let (lock, at) = store
        .locks
        .try_lock_claiming(&store.index, req.key, claim)
        .await?
        .ok_or(MasterError::Busy)?;
    let start = match intent.filter(|_| at.claimed) {
        Some(intent) => Start::Claimed(intent),
        None => {
            if !req.head.body.has_bytes() {
                return Err(MasterError::LengthRequired);
            }
            let old = at.record;
            if old.as_ref().is_some_and(|r| !r.deleted) {
                return Err(MasterError::Forbidden);
            }
            Start::Begin {
                old,
                earlier: Earlier::Read(at.intent),
            }
        }
    };
    if req.head.expect_continue {
        conn.wbuf.extend_from_slice(http1::response::CONTINUE);
    }
    let mut body = BodyReader::new(req.head.body);
    let digests = Digests::new(c.md5sum, &[]);
    let new = NewValue {
        key: req.key,
        start,
        ends: Some(&lock),
        meta: ObjectMeta::default(),
        extra: Vec::new(),
    };
    write_new(store, conn, new, &mut body, digests, |_, _| Ok(())).await?;
    Ok(req.plain(&mut conn.wbuf, 201))
}
