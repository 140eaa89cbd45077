//! `mkv rebuild`: the index, recreated from what the volumes hold.
//!
//! 1. Every volume is listed over HTTP. volume-uring answers
//!    `GET /?recursive` with every file below its root, md5s included, in
//!    one streamed answer. nginx ignores the query; its volumes are crawled
//!    folder by folder: `svNN` subvolumes, `/xx/yy/`, and below that the
//!    nested folders a `/` in the base64 name makes.
//! 2. A file counts as a key's replica only where `key2path` of its decoded
//!    name puts it; anything else (nginx's `body_temp`, strays) is skipped.
//! 3. Only if every listing succeeded is the index emptied and written:
//!    one live record per key, replicas in `key2volume` order then the
//!    others, with the md5 a volume-uring replica kept. A volume that cannot
//!    be listed fails the rebuild and leaves the index as it was.
//!
//! Keys are gathered in memory, up to `MEMORY_KEYS` of them (~0.2 KB each);
//! past that they go to sorted run files in a folder beside the index
//! (`runs`), merged as the index is written, so memory stays bounded
//! however many keys the volumes hold.
//!
//! Unlinked keys come back live: the volumes do not know about unlinks.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use base64::Engine;
use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::config::{Cluster, ToolArgs};
use crate::index::{Durability, Index, Op};
use crate::placement::{key2path, key2volume};
use crate::progress::Progress;
use crate::record::Record;
use crate::volume_client::{ClientError, VolumeClient};

mod runs;
use runs::Runs;

/// Records written per index batch.
const BATCH: usize = 10_000;
/// Listings are read in pieces of this size (nginx's are mostly small).
const READ_CHUNK: usize = 32 * 1024;
/// Folder listings larger than this fail (nginx's are whole JSON documents).
const MAX_LISTING: u64 = 256 << 20;
const IO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Keys held in memory before they are written to a run on disk; the
/// environment variable `MKV_REBUILD_MEMORY_KEYS` sets another bound.
const MEMORY_KEYS: usize = 250_000;

/// A key as found on the volumes, kept small: there can be many millions.
#[derive(Clone, Debug, Default, PartialEq)]
struct Found {
    /// Where its files are: the volume's index in `-volumes` and the
    /// subvolume (`NO_SUBVOLUME` for none).
    replicas: Vec<(u16, u8)>,
    md5: Option<[u8; 16]>,
}

impl Found {
    fn add_replica(&mut self, replica: (u16, u8)) {
        if !self.replicas.contains(&replica) {
            self.replicas.push(replica);
        }
    }

    /// Takes the md5 a replica kept; false if it differs from one taken before.
    fn add_md5(&mut self, md5: Option<[u8; 16]>) -> bool {
        match (&self.md5, md5) {
            (None, Some(m)) => self.md5 = Some(m),
            (Some(a), Some(b)) if *a != b => return false,
            _ => {}
        }
        true
    }

    /// Takes what another listing found of the same key; false if the md5s
    /// differ.
    fn absorb(&mut self, other: &Found) -> bool {
        for &replica in &other.replicas {
            self.add_replica(replica);
        }
        self.add_md5(other.md5)
    }
}

const NO_SUBVOLUME: u8 = u8::MAX;

struct Crawl {
    /// Keys found since the last spill to `runs`.
    keys: BTreeMap<Vec<u8>, Found>,
    memory_keys: usize,
    runs: Runs,
    files: u64,
    skipped: u64,
    listings: u64,
    md5_disagreements: Vec<Vec<u8>>,
    errors: Vec<String>,
}

impl Crawl {
    fn new(memory_keys: usize, runs: Runs) -> Crawl {
        Crawl {
            keys: BTreeMap::new(),
            memory_keys,
            runs,
            files: 0,
            skipped: 0,
            listings: 0,
            md5_disagreements: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Writes the keys in memory to a run when there are `memory_keys`.
    fn spill_if_full(&mut self) {
        if self.keys.len() < self.memory_keys {
            return;
        }
        if let Err(e) = self.runs.spill(&mut self.keys) {
            self.errors
                .push(format!("writing found keys to disk (runs): {e}"));
            // Nothing more is kept: the rebuild has failed.
            self.memory_keys = usize::MAX;
            self.keys.clear();
        }
    }
}

/// A folder to list: `/{sv}{rel}/` on `volume`; `rel` is under the
/// (sub)volume root (`""`, `"5d"`, `"5d/41"`, `"27/6f/Lz8"`).
struct Folder {
    volume: u16,
    host: String,
    sv: String,
    rel: String,
}

pub fn run(cluster: &Cluster, args: &ToolArgs) -> Result<(), String> {
    let memory_keys = match std::env::var("MKV_REBUILD_MEMORY_KEYS") {
        Ok(v) if !v.is_empty() => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or(format!("MKV_REBUILD_MEMORY_KEYS={v}: not a number of keys"))?,
        _ => MEMORY_KEYS,
    };
    // Beside the index (`components` drops a trailing `/`).
    let mut runs_dir = cluster.db.components().as_path().as_os_str().to_owned();
    runs_dir.push(format!(".rebuild-{}", std::process::id()));
    let crawl = Crawl::new(memory_keys, Runs::new(runs_dir.into()));
    let progress = Progress::new("rebuild", None);
    let (mut rt, _) =
        volume_uring::runtime::build().map_err(|e| format!("cannot start a runtime: {e}"))?;
    let mut crawl = rt.block_on(crawl_volumes(
        cluster,
        args.concurrency.max(1),
        &progress,
        crawl,
    ));
    progress.finish();
    if !crawl.errors.is_empty() {
        for e in &crawl.errors {
            eprintln!("mkv rebuild: {e}");
        }
        return Err(format!(
            "{} error(s); the index at {} was not changed",
            crawl.errors.len(),
            cluster.db.display()
        ));
    }
    // Past the memory bound, the last keys join the runs and all are merged
    // (opened before the index is touched).
    let mut merge = if crawl.runs.is_empty() {
        None
    } else {
        let last = crawl.runs.spill(&mut crawl.keys);
        let merge = last
            .and_then(|()| crawl.runs.merge())
            .map_err(|e| format!("found keys on disk (runs): {e}"))?;
        Some(merge)
    };
    let index = Index::open(&cluster.db, false).map_err(|e| e.to_string())?;
    let keys = match &mut merge {
        None => write_index(
            &index,
            cluster,
            std::mem::take(&mut crawl.keys).into_iter().map(Ok),
        ),
        Some(merge) => write_index(
            &index,
            cluster,
            merge.by_ref().map(|r| r.map_err(|e| e.to_string())),
        ),
    }
    .map_err(|e| format!("writing the index: {e}"))?;
    if let Some(mut merge) = merge {
        crawl.md5_disagreements.append(&mut merge.disagreements);
    }
    index.close();
    for key in &crawl.md5_disagreements {
        eprintln!(
            "mkv rebuild: warning: replicas of {} hold different md5s",
            String::from_utf8_lossy(key)
        );
    }
    let secs = progress.elapsed().as_secs_f64();
    println!(
        "rebuilt {keys} keys from {} files on {} volumes ({} listings, {} files skipped, {} md5 disagreements, 0 errors) in {secs:.2}s: {:.0} keys/s",
        crawl.files,
        cluster.volumes.len(),
        crawl.listings,
        crawl.skipped,
        crawl.md5_disagreements.len(),
        keys as f64 / secs.max(1e-9)
    );
    Ok(())
}

async fn crawl_volumes(
    cluster: &Cluster,
    concurrency: usize,
    progress: &Progress,
    crawl: Crawl,
) -> Crawl {
    let client = Rc::new(VolumeClient::new(cluster.voltimeout, IO_TIMEOUT));
    let queue: VecDeque<Folder> = (0..cluster.volumes.len())
        .map(|i| Folder {
            volume: i as u16,
            host: cluster.volumes[i].clone(),
            sv: String::new(),
            rel: String::new(),
        })
        .collect();
    // What was found, and the folders still to list: the listings running
    // at once add to both as their lines arrive (never across an await).
    let state = RefCell::new((crawl, queue));
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < concurrency {
            // Depth first: the queue stays short however many folders there are.
            let Some(folder) = state.borrow_mut().1.pop_back() else {
                break;
            };
            let client = client.clone();
            let state = &state;
            running.push(async move {
                let listed = list(&client, &folder, |entry| {
                    let (out, queue) = &mut *state.borrow_mut();
                    take(out, queue, &folder, entry);
                })
                .await;
                (folder, listed)
            });
        }
        let Some((folder, listed)) = running.next().await else {
            break;
        };
        let out = &mut state.borrow_mut().0;
        out.listings += 1;
        if let Err(e) = listed {
            out.errors.push(format!(
                "listing /{}{}/ on {}: {e}",
                folder.sv, folder.rel, folder.host
            ));
        }
        progress.update(out.files, || {
            format!(
                "files, {} keys, {} listings",
                out.keys.len() as u64 + out.runs.spilled,
                out.listings
            )
        });
    }
    drop(running);
    state.into_inner().0
}

/// One listing entry: a path under the listed folder, whether it is a
/// folder, and the md5 a volume kept.
struct Entry {
    path: String,
    folder: bool,
    md5: Option<String>,
}

/// Lists a folder, handing each entry to `each` as its line arrives (a
/// volume's recursive listing can name millions of files); the volume root
/// is asked for a recursive listing first.
async fn list(
    client: &VolumeClient,
    folder: &Folder,
    mut each: impl FnMut(Entry),
) -> Result<(), ClientError> {
    let url = if folder.rel.is_empty() && folder.sv.is_empty() {
        "/?recursive".to_string()
    } else {
        format!(
            "/{}{}{}/",
            folder.sv,
            if folder.sv.is_empty() { "" } else { "/" },
            folder.rel
        )
        .replace("//", "/")
    };
    let mut download = client.start_get(&folder.host, &url).await?;
    let reply = download.reply();
    if reply.status != 200 {
        return Err(ClientError::new(
            &folder.host,
            format!("answered {} to GET {url}", reply.status),
        ));
    }
    let recursive = reply.recursive_listing;
    // One buffer for the whole listing: complete lines are parsed out of
    // its front, the rest waits for more.
    let mut pending: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut total = 0u64;
    loop {
        if pending.capacity() - pending.len() < READ_CHUNK / 2 {
            pending.reserve(READ_CHUNK);
        }
        let before = pending.len();
        let (res, buf) = download.read(pending).await;
        pending = buf;
        if res? == 0 {
            break;
        }
        total += (pending.len() - before) as u64;
        if !recursive && total > MAX_LISTING {
            return Err(ClientError::new(
                &folder.host,
                format!("listing of {url} is too large"),
            ));
        }
        let cut = pending
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        pending[..cut]
            .split(|&c| c == b'\n')
            .filter_map(|l| parse_line(l, recursive))
            .for_each(&mut each);
        pending.drain(..cut);
    }
    parse_line(&pending, recursive).into_iter().for_each(each);
    download.done();
    Ok(())
}

/// One line of a listing (nginx's and ours put one entry per line).
fn parse_line(line: &[u8], recursive: bool) -> Option<Entry> {
    let line = line.trim_ascii();
    let line = line.strip_suffix(b",").unwrap_or(line);
    if !line.starts_with(b"{") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let path = v.get("name")?.as_str()?.to_string();
    let folder = v.get("type")?.as_str()? == "directory";
    let md5 = v
        .get("md5")
        .and_then(|m| m.as_str())
        .map(str::to_ascii_lowercase);
    if recursive && folder {
        return None;
    }
    Some(Entry { path, folder, md5 })
}

fn is_hex2(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

fn is_subvolume(s: &str) -> bool {
    s.len() == 4 && s.starts_with("sv") && is_hex2(&s[2..])
}

/// Files into keys, folders into the queue.
fn take(out: &mut Crawl, queue: &mut VecDeque<Folder>, folder: &Folder, entry: Entry) {
    let full = if folder.rel.is_empty() {
        entry.path.clone()
    } else {
        format!("{}/{}", folder.rel, entry.path)
    };
    if entry.folder {
        let depth = full.split('/').count();
        let first = full.split('/').next().unwrap_or("");
        let wanted = match (folder.sv.is_empty(), folder.rel.is_empty()) {
            // The volume root: subvolumes, or `xx` folders of a volume without them.
            (true, true) => is_subvolume(first) || is_hex2(first),
            _ => depth > 2 || full.split('/').all(is_hex2),
        };
        if !wanted {
            return;
        }
        if folder.sv.is_empty() && folder.rel.is_empty() && is_subvolume(first) {
            let sv = first.to_string();
            queue.push_back(Folder {
                volume: folder.volume,
                host: folder.host.clone(),
                sv,
                rel: String::new(),
            });
        } else {
            let sv = folder.sv.clone();
            queue.push_back(Folder {
                volume: folder.volume,
                host: folder.host.clone(),
                sv,
                rel: full,
            });
        }
        return;
    }
    // A recursive listing names files from the volume root, `svNN/` first.
    let (sv, rel) = match full.split_once('/') {
        Some((first, rest)) if folder.sv.is_empty() && is_subvolume(first) => {
            (first.to_string(), rest.to_string())
        }
        _ => (folder.sv.clone(), full),
    };
    out.files += 1;
    let Some(key) = key_of(&rel) else {
        out.skipped += 1;
        return;
    };
    let subvolume = if sv.is_empty() {
        NO_SUBVOLUME
    } else {
        u8::from_str_radix(&sv[2..], 16).unwrap_or(NO_SUBVOLUME)
    };
    let found = out.keys.entry(key.clone()).or_default();
    found.add_replica((folder.volume, subvolume));
    if !found.add_md5(entry.md5.as_deref().and_then(md5_bytes)) {
        out.md5_disagreements.push(key);
    }
    out.spill_if_full();
}

fn md5_bytes(hex: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The key a file at `xx/yy/name` under a (sub)volume root holds, if
/// `key2path` puts that key exactly there.
fn key_of(rel: &str) -> Option<Vec<u8>> {
    let (xx, rest) = rel.split_once('/')?;
    let (yy, name) = rest.split_once('/')?;
    if !is_hex2(xx) || !is_hex2(yy) {
        return None;
    }
    let decodes_here = |name: &str| {
        let key = base64::engine::general_purpose::STANDARD
            .decode(name)
            .ok()?;
        (key2path(&key) == format!("/{xx}/{yy}/{name}")).then_some(key)
    };
    decodes_here(name).or_else(|| {
        // A name with `//` (base64 of some non-ASCII keys) is stored with
        // the slashes merged, by nginx and us alike: try the doubled forms.
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() < 2 || parts.len() > 7 {
            return None;
        }
        (0..3usize.pow(parts.len() as u32 - 1)).find_map(|mut pick| {
            let mut candidate = parts[0].to_string();
            for part in &parts[1..] {
                candidate.push_str(&"/".repeat(pick % 3 + 1));
                candidate.push_str(part);
                pick /= 3;
            }
            (candidate.len() % 4 == 0)
                .then(|| decodes_here(&candidate))
                .flatten()
        })
    })
}

/// Empties the index, then writes one live record per key of `keys` (in
/// key order); returns how many.
fn write_index(
    index: &Index,
    cluster: &Cluster,
    keys: impl Iterator<Item = Result<(Vec<u8>, Found), String>>,
) -> Result<u64, String> {
    let mut from = Vec::new();
    loop {
        let mut doomed = Vec::new();
        index
            .scan(b"", &from, |k, _| {
                doomed.push(k.to_vec());
                doomed.len() < BATCH
            })
            .map_err(|e| e.to_string())?;
        let Some(last) = doomed.last().cloned() else {
            break;
        };
        index
            .apply_blocking(
                doomed.into_iter().map(Op::Delete).collect(),
                Durability::Relaxed,
            )
            .map_err(|e| e.to_string())?;
        from = last;
    }
    let name = |&(volume, sv): &(u16, u8)| match sv {
        NO_SUBVOLUME => cluster.volumes[usize::from(volume)].clone(),
        sv => format!("{}/sv{sv:02X}", cluster.volumes[usize::from(volume)]),
    };
    let mut ops = Vec::with_capacity(BATCH);
    let mut written = 0;
    for found in keys {
        let (key, found) = found?;
        let wanted = key2volume(&key, &cluster.volumes, cluster.replicas, cluster.subvolumes);
        let here: Vec<String> = found.replicas.iter().map(name).collect();
        let mut replicas: Vec<String> = wanted
            .iter()
            .filter(|w| here.contains(w))
            .cloned()
            .collect();
        let mut others: Vec<String> = here.into_iter().filter(|r| !wanted.contains(r)).collect();
        others.sort();
        replicas.extend(others);
        let md5 = found.md5.map(|m| crate::fanout::hex(&m));
        ops.push(Op::Put(key, Record::live(replicas, md5).encode()));
        written += 1;
        if ops.len() == BATCH {
            index
                .apply_blocking(std::mem::take(&mut ops), Durability::Relaxed)
                .map_err(|e| e.to_string())?;
        }
    }
    // The last batch is synced, and with it every batch before it.
    index
        .apply_blocking(ops, Durability::Synced)
        .map_err(|e| e.to_string())?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_keys() {
        assert_eq!(key_of("5d/41/aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(key_of("27/6f/Lz8/Pw=="), Some(b"/???".to_vec()));
        assert_eq!(key_of("5d/42/aGVsbG8="), None, "in the wrong folder");
        assert_eq!(key_of("body_temp/0000000001"), None);
        assert_eq!(key_of("5d/41/not base64"), None);
        assert!(is_subvolume("sv0A") && !is_subvolume("sv1") && !is_subvolume("5d"));
        // A base64 `//` (only bytes that are not UTF-8 make one) is stored
        // merged into one `/`.
        let key = b"/\xff\xff";
        let path = key2path(key);
        assert!(path[7..].contains("//"), "{path}");
        let merged = path[1..].replace("//", "/");
        assert_eq!(key_of(&merged), Some(key.to_vec()));
    }

    #[test]
    fn listing_lines() {
        let nginx =
            br#"{ "name":"Lz8", "type":"directory", "mtime":"Tue, 24 Nov 2026 05:07:20 GMT" },"#;
        let e = parse_line(nginx, false).unwrap();
        assert_eq!((e.path.as_str(), e.folder, e.md5), ("Lz8", true, None));
        let ours = br#"{ "name":"sv01/5d/41/aGVsbG8=", "type":"file", "mtime":"x", "size":5, "md5":"5D41402ABC4B2A76B9719D911017C592" }"#;
        let e = parse_line(ours, true).unwrap();
        assert_eq!(e.md5.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
        assert!(parse_line(b"[", false).is_none() && parse_line(b"]", true).is_none());
    }
}
