//! The crawl: every volume listed, folders as they are found, with
//! bounded concurrency; each file goes to a [`Sink`]. For a rebuild
//! ([`Crawl`]) files become keys, kept in memory up to a bound and spilled
//! to runs past it; `mkv verify` looks each one up in the index.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::listing::{self, is_hex2, is_subvolume, key_of};
use super::runs::Runs;
use super::Found;
use crate::client::VolumeClient;
use crate::config::Cluster;
use crate::tools::progress::Progress;

pub const NO_SUBVOLUME: u8 = u8::MAX;

/// Files between two looks at the progress line during a listing.
const PROGRESS_EVERY: u64 = 4096;

/// Where the crawl puts what it finds.
pub trait Sink {
    /// A file: the key it holds where `key2path` puts it (`None` for a
    /// stray), its volume (index in `-volumes`) and subvolume, its entry.
    fn file(&mut self, key: Option<Vec<u8>>, replica: (u16, u8), entry: &listing::Entry<'_>);
    /// A listing ended, with its error if it failed.
    fn listed(&mut self, folder: &Folder, error: Option<String>);
    /// Files seen so far.
    fn files(&self) -> u64;
    /// A word on the rest, for the progress line.
    fn progress(&self) -> String;
}

pub(super) struct Crawl {
    /// Keys found since the last spill to `runs`.
    pub(super) keys: BTreeMap<Vec<u8>, Found>,
    pub(super) memory_keys: usize,
    pub(super) runs: Runs,
    pub(super) files: u64,
    pub(super) skipped: u64,
    pub(super) listings: u64,
    pub(super) md5_disagreements: Vec<Vec<u8>>,
    pub(super) errors: Vec<String>,
}

impl Crawl {
    pub(super) fn new(memory_keys: usize, runs: Runs) -> Crawl {
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
pub struct Folder {
    pub volume: u16,
    pub host: String,
    pub sv: String,
    pub rel: String,
}

impl Folder {
    /// The error line for a listing of the folder that failed.
    pub fn failed(&self, why: &str) -> String {
        format!("listing /{}{}/ on {}: {why}", self.sv, self.rel, self.host)
    }
}

impl Sink for Crawl {
    fn file(&mut self, key: Option<Vec<u8>>, replica: (u16, u8), entry: &listing::Entry<'_>) {
        self.files += 1;
        let Some(key) = key else {
            self.skipped += 1;
            return;
        };
        let found = Found {
            replicas: vec![replica],
            md5: entry.md5,
            size: entry.size,
            mtime: entry.mtime,
        };
        match self.keys.entry(key) {
            Entry::Vacant(place) => {
                place.insert(found);
            }
            Entry::Occupied(mut place) => {
                if !place.get_mut().absorb(&found) {
                    self.md5_disagreements.push(place.key().clone());
                }
            }
        }
        self.spill_if_full();
    }

    fn listed(&mut self, folder: &Folder, error: Option<String>) {
        self.listings += 1;
        if let Some(e) = error {
            self.errors.push(folder.failed(&e));
        }
    }

    fn files(&self) -> u64 {
        self.files
    }

    fn progress(&self) -> String {
        let keys = self.keys.len() as u64 + self.runs.spilled;
        format!("files, {keys} keys, {} listings", self.listings)
    }
}

pub async fn crawl_volumes<S: Sink>(
    cluster: &Cluster,
    concurrency: usize,
    progress: &Progress,
    sink: S,
) -> S {
    let client = Rc::new(VolumeClient::new(
        cluster.voltimeout,
        cluster.volume_timeout,
    ));
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
    let state = RefCell::new((sink, queue));
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
                let listed = listing::list(&client, &folder, |entry| {
                    let (out, queue) = &mut *state.borrow_mut();
                    take(out, queue, &folder, entry);
                    // A volume-uring volume is one long listing: progress
                    // as its lines arrive, not only when it ends.
                    if out.files() % PROGRESS_EVERY == 0 {
                        progress.update(out.files(), || out.progress());
                    }
                })
                .await;
                (folder, listed)
            });
        }
        let Some((folder, listed)) = running.next().await else {
            break;
        };
        let out = &mut state.borrow_mut().0;
        out.listed(&folder, listed.err().map(|e| e.to_string()));
        progress.update(out.files(), || out.progress());
    }
    drop(running);
    state.into_inner().0
}

/// Files into keys, folders into the queue.
fn take<S: Sink>(
    out: &mut S,
    queue: &mut VecDeque<Folder>,
    folder: &Folder,
    entry: listing::Entry<'_>,
) {
    let full: Cow<'_, str> = if folder.rel.is_empty() {
        Cow::Borrowed(&entry.path)
    } else {
        Cow::Owned(format!("{}/{}", folder.rel, entry.path))
    };
    if entry.folder {
        return queue_folder(queue, folder, full.into_owned());
    }
    // A recursive listing names files from the volume root, `svNN/` first.
    let (sv, rel) = match full.split_once('/') {
        Some((first, rest)) if folder.sv.is_empty() && is_subvolume(first) => (first, rest),
        _ => (folder.sv.as_str(), &*full),
    };
    let subvolume = if sv.is_empty() {
        NO_SUBVOLUME
    } else {
        u8::from_str_radix(&sv[2..], 16).unwrap_or(NO_SUBVOLUME)
    };
    out.file(key_of(rel), (folder.volume, subvolume), &entry);
}

/// A folder a listing named, queued if files can be below it.
fn queue_folder(queue: &mut VecDeque<Folder>, folder: &Folder, full: String) {
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
    let (sv, rel) = if folder.sv.is_empty() && folder.rel.is_empty() && is_subvolume(first) {
        (first.to_string(), String::new())
    } else {
        (folder.sv.clone(), full)
    };
    queue.push_back(Folder {
        volume: folder.volume,
        host: folder.host.clone(),
        sv,
        rel,
    });
}
