//! The first pass: every replica of every record, checked where it is.
//! volume-uring re-reads its file against the stored CRC32 (a HEAD with
//! `X-Mkv-Verify`); over nginx the bytes are read here and their md5
//! compared with the record's. Sizes are compared with the object's
//! metadata, or else with the other replicas. With `--repair`, a damaged
//! or wrong-sized copy is removed and the key's replicas are restored from
//! a good one, as `REBALANCE` does.

use std::rc::Rc;

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use md5::{Digest, Md5};

use super::{Finding, Findings};
use crate::client::reply::CrcCheck;
use crate::client::VolumeClient;
use crate::config::Cluster;
use crate::error::{MasterError, ToolError};
use crate::index::Index;
use crate::meta::{self, ObjectMeta};
use crate::ops::rebalance::rebalance_key;
use crate::placement::{key2path, key2volume, needs_rebalance};
use crate::record::Record;
use crate::tools::rebalance::next_page;

/// One replica as checked.
enum Seen {
    Fine(u64),
    Missing,
    Damaged(String),
    /// Could not be asked: the volume failed.
    Failed(String),
}

/// What the pass needs besides the key.
pub struct Pass<'a> {
    pub cluster: &'a Cluster,
    pub index: &'a Index,
    pub client: Rc<VolumeClient>,
    pub quick: bool,
    pub repair: bool,
    pub concurrency: usize,
}

/// Checks every record; findings go to `out` as they are made.
pub async fn check_all(pass: &Pass<'_>, out: &mut Findings) -> Result<(), ToolError> {
    let mut from = Vec::new();
    loop {
        let page = next_page(pass.index, &from)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        from = last.clone();
        let checks = stream::iter(page.into_iter().map(|(key, rec)| async move {
            let (found, bad) = check_key(pass, &key, &rec).await;
            (key, rec, found, bad)
        }))
        .buffer_unordered(pass.concurrency.max(1));
        let results: Vec<_> = checks.collect().await;
        for (key, rec, found, bad) in results {
            out.n.keys += 1;
            out.n.replicas += rec.volumes.len() as u64;
            let broken = found.iter().any(Finding::is_repairable);
            for f in found {
                out.add(f);
            }
            if broken && pass.repair {
                out.repairing(&key, repair_key(pass, &key, &rec, &bad).await);
            }
        }
        out.progress_update();
    }
}

/// The findings of one key, and its replicas whose copies are bad.
async fn check_key(pass: &Pass<'_>, key: &[u8], rec: &Record) -> (Vec<Finding>, Vec<String>) {
    let path = key2path(key);
    let name = String::from_utf8_lossy(key).into_owned();
    let seen = join_all(
        rec.volumes
            .iter()
            .map(|r| check_replica(pass, r, &path, rec.hash.as_deref())),
    )
    .await;
    let expected = expected_size(pass.index, key, &seen);
    let mut found = Vec::new();
    let mut bad = Vec::new();
    for (replica, seen) in rec.volumes.iter().zip(seen) {
        let (name, replica) = (name.clone(), replica.clone());
        match seen {
            Seen::Fine(size) if expected.is_some_and(|e| e != size) => {
                bad.push(replica.clone());
                let expected = expected.unwrap_or(0);
                found.push(Finding::WrongSize {
                    name,
                    replica,
                    size,
                    expected,
                });
            }
            Seen::Fine(_) => {}
            Seen::Missing => found.push(Finding::Missing { name, replica }),
            Seen::Damaged(why) => {
                bad.push(replica.clone());
                found.push(Finding::Damaged { name, replica, why });
            }
            Seen::Failed(why) => found.push(Finding::Unchecked { name, replica, why }),
        }
    }
    let c = pass.cluster;
    let wanted = key2volume(key, &c.volumes, c.replicas, c.subvolumes);
    if needs_rebalance(&rec.volumes, &wanted) {
        found.push(Finding::Unbalanced {
            name,
            replicas: rec.volumes.clone(),
            wanted,
        });
    }
    (found, bad)
}

async fn check_replica(pass: &Pass<'_>, replica: &str, path: &str, md5: Option<&str>) -> Seen {
    let client = &pass.client;
    let reply = if pass.quick {
        client.head(replica, path).await
    } else {
        client.head_checked(replica, path).await
    };
    let reply = match reply {
        Ok(r) => r,
        Err(e) => return Seen::Failed(e.what),
    };
    match reply.status {
        200 => {}
        404 => return Seen::Missing,
        s => return Seen::Failed(format!("answered {s} to a HEAD")),
    }
    let size = reply.content_length.unwrap_or(0);
    match reply.crc_check {
        Some(CrcCheck::Mismatch) => {
            return Seen::Damaged("its bytes do not match the CRC32 stored with them".into())
        }
        Some(CrcCheck::Ok) => return Seen::Fine(size),
        _ => {}
    }
    // nginx, or a file without a CRC: the md5 of its bytes, if recorded.
    match md5 {
        Some(want) if !pass.quick => match md5_of(client, replica, path).await {
            Ok(got) if got.eq_ignore_ascii_case(want) => Seen::Fine(size),
            Ok(got) => Seen::Damaged(format!("md5 {got}, the index says {want}")),
            Err(e) => Seen::Failed(e),
        },
        _ => Seen::Fine(size),
    }
}

/// Reads a replica whole and hashes it.
async fn md5_of(client: &VolumeClient, replica: &str, path: &str) -> Result<String, String> {
    let mut download = client.start_get(replica, path).await.map_err(|e| e.what)?;
    if download.reply().status != 200 {
        return Err(format!("answered {} to a GET", download.reply().status));
    }
    let mut hasher = Md5::new();
    let mut buf = Vec::with_capacity(1 << 20);
    loop {
        buf = download.fill(buf).await.map_err(|e| e.what)?;
        if buf.is_empty() {
            break;
        }
        hasher.update(&buf);
    }
    download.done();
    Ok(crate::digests::hex(&hasher.finalize()))
}

/// The size every replica should have: the object's metadata's, or else
/// the one most replicas have.
fn expected_size(index: &Index, key: &[u8], seen: &[Seen]) -> Option<u64> {
    let recorded = index
        .get_raw_blocking(&meta::object_key(key))
        .ok()
        .flatten()
        .and_then(|raw| meta::decode::<ObjectMeta>(key, &raw).ok())
        .map(|m| m.size);
    if recorded.is_some() {
        return recorded;
    }
    let sizes: Vec<u64> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Fine(n) => Some(*n),
            _ => None,
        })
        .collect();
    let most = |n: &u64| sizes.iter().filter(|m| *m == n).count();
    sizes.iter().copied().max_by_key(most)
}

/// Removes the `bad` copies of a key, then copies a good one where they
/// were and where copies are missing.
async fn repair_key(
    pass: &Pass<'_>,
    key: &[u8],
    rec: &Record,
    bad: &[String],
) -> Result<(), MasterError> {
    let path = key2path(key);
    for replica in bad {
        pass.client.delete(replica, &path).await?;
    }
    rebalance_key(&pass.client, pass.index, pass.cluster, key, rec, false).await?;
    Ok(())
}
