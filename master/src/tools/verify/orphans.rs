//! The second pass: every file on every volume, listed as `mkv rebuild`
//! lists them, looked up in the index. A file whose key has no record, or
//! whose record does not name that volume, is an orphan; one written less
//! than `--grace` ago may be a write in flight and is only counted. Then
//! volume-uring's leftover temporary files (`GET /?mkv-temp`).
//!
//! Memory stays bounded by the orphans found (the files are looked up one
//! by one as their listings arrive).

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Finding, Findings};
use crate::client::VolumeClient;
use crate::config::Cluster;
use crate::index::Index;
use crate::record::Record;
use crate::tools::progress::Progress;
use crate::tools::rebuild::crawl::{crawl_volumes, Folder, Sink, NO_SUBVOLUME};
use crate::tools::rebuild::listing::Entry;

/// A file to remove once the listing is over.
pub struct Orphan {
    pub replica: String,
    pub key: Vec<u8>,
}

struct OrphanSink<'a> {
    cluster: &'a Cluster,
    index: &'a Index,
    /// Keys with a write pending: their files are the journal's business.
    pending: &'a HashSet<Vec<u8>>,
    /// Files written before this (seconds) are old enough to remove.
    cutoff: u64,
    files: u64,
    strays: u64,
    young: u64,
    orphans: Vec<(Orphan, Finding)>,
    errors: Vec<String>,
}

impl Sink for OrphanSink<'_> {
    fn file(&mut self, key: Option<Vec<u8>>, (volume, sv): (u16, u8), entry: &Entry<'_>) {
        self.files += 1;
        let Some(key) = key else {
            self.strays += 1;
            return;
        };
        if self.pending.contains(&key) {
            return;
        }
        let host = &self.cluster.volumes[volume as usize];
        let replica = if sv == NO_SUBVOLUME {
            host.clone()
        } else {
            format!("{host}/sv{sv:02X}")
        };
        let rec = match self.index.get_raw_blocking(&key) {
            Ok(raw) => raw.and_then(|raw| Record::decode(&raw).ok()),
            Err(e) => {
                // Not known to be an orphan: say so, and go on.
                tracing::warn!(error = %e, key = %String::from_utf8_lossy(&key), "cannot look up a file's record");
                return;
            }
        };
        let why = match rec {
            None => "no record",
            Some(r) if !r.volumes.contains(&replica) => "the record names other volumes",
            Some(_) => return,
        };
        if entry.mtime > self.cutoff {
            self.young += 1;
            return;
        }
        let finding = Finding::Orphan {
            name: String::from_utf8_lossy(&key).into_owned(),
            replica: replica.clone(),
            why,
            size: entry.size,
            mtime: entry.mtime,
        };
        self.orphans.push((Orphan { replica, key }, finding));
    }

    fn listed(&mut self, folder: &Folder, error: Option<String>) {
        if let Some(e) = error {
            self.errors.push(folder.failed(&e));
        }
    }

    fn files(&self) -> u64 {
        self.files
    }

    fn progress(&self) -> String {
        format!("files listed, {} orphans", self.orphans.len())
    }
}

/// Lists every volume; returns the orphans old enough to remove.
pub async fn find(
    cluster: &Cluster,
    index: &Index,
    pending: &HashSet<Vec<u8>>,
    grace_secs: u64,
    concurrency: usize,
    out: &mut Findings,
) -> Vec<Orphan> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let sink = OrphanSink {
        cluster,
        index,
        pending,
        cutoff: now.saturating_sub(grace_secs),
        files: 0,
        strays: 0,
        young: 0,
        orphans: Vec::new(),
        errors: Vec::new(),
    };
    let progress = Progress::new("verify: files", None);
    let sink = crawl_volumes(cluster, concurrency, &progress, sink).await;
    progress.finish();
    out.n.files = sink.files;
    out.n.strays = sink.strays;
    out.n.young_orphans = sink.young;
    for e in sink.errors {
        out.add(Finding::Failed(e));
    }
    let mut removable = Vec::new();
    for (orphan, finding) in sink.orphans {
        out.add(finding);
        removable.push(orphan);
    }
    removable
}

/// Removes orphans; returns how many are gone.
pub async fn remove(client: &VolumeClient, orphans: &[Orphan], out: &mut Findings) -> u64 {
    let mut removed = 0;
    for o in orphans {
        let path = crate::placement::key2path(&o.key);
        match client.delete(&o.replica, &path).await {
            Ok(r) if r.status == 204 || r.status == 200 || r.status == 404 => removed += 1,
            Ok(r) => out.note(format!(
                "cannot remove orphan {}{path}: answered {}",
                o.replica, r.status
            )),
            Err(e) => out.note(format!("cannot remove orphan {}{path}: {e}", o.replica)),
        }
    }
    removed
}

/// Leftover temporary files on each volume-uring volume older than the
/// grace period; with `repair`, removed. Returns (found, removed).
pub async fn temp_files(
    client: &VolumeClient,
    hosts: &[String],
    grace_secs: u64,
    repair: bool,
    out: &mut Findings,
) -> (u64, u64) {
    let (mut found, mut removed) = (0, 0);
    for host in hosts {
        let listed = match client.temp_files(host, grace_secs, false).await {
            Ok(body) => body,
            Err(e) => {
                out.add(Finding::Failed(format!("temporary files on {host}: {e}")));
                continue;
            }
        };
        let files: Vec<serde_json::Value> = serde_json::from_slice(&listed).unwrap_or_default();
        for f in &files {
            let name = f.get("name").and_then(|v| v.as_str()).unwrap_or("?");
            let size = f.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
            out.add(Finding::Temp {
                host: host.clone(),
                path: name.to_string(),
                size,
            });
        }
        found += files.len() as u64;
        if repair && !files.is_empty() {
            match client.temp_files(host, grace_secs, true).await {
                Ok(body) => {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    removed += v.get("removed").and_then(|n| n.as_u64()).unwrap_or(0);
                }
                Err(e) => out.note(format!("cannot remove temporary files on {host}: {e}")),
            }
        }
    }
    (found, removed)
}
