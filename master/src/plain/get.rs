//! GET and HEAD: a 302 to a replica that answers a HEAD for the key's file,
//! tried in random order; 404 (or a 302 to `--fallback`) for a missing or
//! soft-deleted key, and when no replica answers.
//!
//! The common miss is answered without allocation: the filter rules most
//! missing keys out without the index lock, and the answer is written into
//! the connection's reused buffer.

use http1::{response, Answer, Conn};

use crate::error::MasterError;
use crate::front::request::Req;
use crate::placement::{key2path, key2volume, needs_rebalance, replicas_in_read_order};
use crate::record::Record;
use crate::Store;

pub async fn serve(conn: &mut Conn, req: &Req<'_>) -> Result<Answer, MasterError> {
    let store = req.store;
    let Some(raw) = store.index.get_raw(req.key).await? else {
        return missing(store, conn, req, None);
    };
    let rec = Record::decode(&raw)?;
    if rec.deleted {
        return missing(store, conn, req, rec.hash.as_deref());
    }
    let c = &store.cluster;
    let wanted = key2volume(req.key, &c.volumes, c.replicas, c.subvolumes);
    let balanced = !needs_rebalance(&rec.volumes, &wanted);
    let path = key2path(req.key);
    let found = first_answering(store, &rec.volumes, &path).await;
    let out = &mut conn.wbuf;
    let head = req.start(out, if found.is_some() { 302 } else { 404 });
    // The hash is of the whole value, whatever part of it is asked for.
    if let Some(hash) = &rec.hash {
        response::header(out, "Content-Md5", hash.as_bytes());
    }
    response::header(
        out,
        "Key-Balance",
        if balanced {
            b"balanced".as_slice()
        } else {
            b"unbalanced".as_slice()
        },
    );
    response::header(out, "Key-Volumes", rec.volumes.join(",").as_bytes());
    if let Some(replica) = found {
        out.extend_from_slice(b"Location: http://");
        out.extend_from_slice(replica.as_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Ok(req.finish(head, out, b""))
}

/// The first replica, in read order, whose volume answers 200 to a HEAD.
async fn first_answering<'r>(store: &Store, replicas: &'r [String], path: &str) -> Option<&'r str> {
    for replica in replicas_in_read_order(replicas) {
        match store.client.head(replica, path).await {
            Ok(r) if r.status == 200 => return Some(replica),
            Ok(r) => tracing::debug!(%replica, status = r.status, "replica does not have the key"),
            Err(e) => tracing::warn!(error = %e, "replica did not answer a HEAD"),
        }
    }
    None
}

fn missing(
    store: &Store,
    conn: &mut Conn,
    req: &Req<'_>,
    hash: Option<&str>,
) -> Result<Answer, MasterError> {
    let out = &mut conn.wbuf;
    let fallback = store.cluster.fallback.as_deref();
    let head = req.start(out, if fallback.is_some() { 302 } else { 404 });
    if let Some(hash) = hash {
        response::header(out, "Content-Md5", hash.as_bytes());
    }
    if let Some(fallback) = fallback {
        out.extend_from_slice(b"Location: http://");
        out.extend_from_slice(fallback.as_bytes());
        out.extend_from_slice(req.head.target());
        out.extend_from_slice(b"\r\n");
    }
    Ok(req.finish(head, out, b""))
}
