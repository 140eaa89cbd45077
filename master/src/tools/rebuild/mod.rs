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
//! `crawl` drives the listings, `listing` reads one and says which key a
//! file holds, `runs` keeps keys on disk, `write` writes the index.
//!
//! Unlinked keys come back live: the volumes do not know about unlinks.
//! Failed writes do not: before the volumes are listed, the copies of
//! every write the index holds an intent for (`ops::intent`: in flight at
//! a crash, or failed with a volume that did not answer) are removed.

pub mod crawl;
pub mod listing;
mod runs;
mod write;

use crate::client::VolumeClient;
use crate::config::{Cluster, ToolArgs};
use crate::error::{MasterError, ToolError};
use crate::index::Index;
use crate::ops::intent;
use crate::tools::progress::Progress;
use runs::Runs;

/// Keys held in memory before they are written to a run on disk; the
/// environment variable `MKV_REBUILD_MEMORY_KEYS` sets another bound.
const MEMORY_KEYS: usize = 250_000;

/// A key as found on the volumes, kept small: there can be many millions.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Found {
    /// Where its files are: the volume's index in `-volumes` and the
    /// subvolume (`NO_SUBVOLUME` for none).
    pub(super) replicas: Vec<(u16, u8)>,
    pub(super) md5: Option<[u8; 16]>,
    /// Its size, and the latest time a replica was written (seconds), as
    /// the listings say: they become the object's metadata.
    pub(super) size: u64,
    pub(super) mtime: u64,
}

impl Found {
    pub(super) fn add_replica(&mut self, replica: (u16, u8)) {
        if !self.replicas.contains(&replica) {
            self.replicas.push(replica);
        }
    }

    /// Takes a replica's size and time.
    pub(super) fn add_stat(&mut self, size: u64, mtime: u64) {
        self.size = self.size.max(size);
        self.mtime = self.mtime.max(mtime);
    }

    /// Takes the md5 a replica kept; false if it differs from one taken before.
    pub(super) fn add_md5(&mut self, md5: Option<[u8; 16]>) -> bool {
        match (&self.md5, md5) {
            (None, Some(m)) => self.md5 = Some(m),
            (Some(a), Some(b)) if *a != b => return false,
            _ => {}
        }
        true
    }

    /// Takes what another listing found of the same key; false if the md5s
    /// differ.
    pub(super) fn absorb(&mut self, other: &Found) -> bool {
        for &replica in &other.replicas {
            self.add_replica(replica);
        }
        self.add_stat(other.size, other.mtime);
        self.add_md5(other.md5)
    }
}

pub fn run(cluster: &Cluster, args: &ToolArgs) -> Result<(), ToolError> {
    let memory_keys = memory_keys()?;
    // Beside a LevelDB index (`components` drops a trailing `/`); in the
    // temporary folder for a database.
    let mut runs_dir = if crate::index::is_postgres(&cluster.db) {
        std::env::temp_dir().join("mkv").into_os_string()
    } else {
        cluster.db.components().as_path().as_os_str().to_owned()
    };
    runs_dir.push(format!(".rebuild-{}", std::process::id()));
    let crawl = crawl::Crawl::new(memory_keys, Runs::new(runs_dir.into()));
    let progress = Progress::new("rebuild", None);
    let (mut rt, _) = http1::runtime::build().map_err(ToolError::io("cannot start a runtime"))?;
    rt.block_on(settle_intents(cluster))?;
    let mut crawl = rt.block_on(crawl::crawl_volumes(
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
        return Err(ToolError::RebuildFailed {
            errors: crawl.errors.len(),
            db: crate::index::describe(&cluster.db),
        });
    }
    // Past the memory bound, the last keys join the runs, which are merged
    // as the index is written (spilled, and opened once, before the index
    // is touched).
    let spilled = !crawl.runs.is_empty();
    if spilled {
        let opened = crawl
            .runs
            .spill(&mut crawl.keys)
            .and_then(|()| crawl.runs.merge())
            .map_err(ToolError::Runs)?;
        crawl.md5_disagreements.extend(opened.disagreements);
    }
    let index = Index::open_bulk(&cluster.db)?;
    let source = if spilled {
        write::Source::Runs(&mut crawl.runs)
    } else {
        write::Source::Memory(&crawl.keys)
    };
    let mut disagreements = Vec::new();
    let written = write::write_index(&index, cluster, source, &mut disagreements);
    crawl.md5_disagreements.append(&mut disagreements);
    let keys = written.map_err(ToolError::RebuildWrite)?;
    index.close();
    report(&crawl, cluster, keys, progress.elapsed().as_secs_f64());
    Ok(())
}

/// Undoes every write the index holds an intent for (`ops::intent`), so
/// the listings do not find their copies; fails if a volume does not
/// answer.
pub(crate) async fn settle_intents(cluster: &Cluster) -> Result<(), ToolError> {
    if !crate::index::is_postgres(&cluster.db) && !cluster.db.exists() {
        return Ok(());
    }
    let index = Index::open(&cluster.db, false)?;
    let settled = async {
        let found = intent::scan(&index)?;
        let client = VolumeClient::new(cluster.voltimeout, cluster.volume_timeout);
        let settled = intent::settle_all(&index, &client, None, found).await?;
        Ok::<usize, MasterError>(settled.stuck.len())
    }
    .await;
    index.close();
    match settled? {
        0 => Ok(()),
        left => Err(ToolError::Unsettled(left)),
    }
}

/// The keys a rebuild holds in memory: `MKV_REBUILD_MEMORY_KEYS`, or
/// `MEMORY_KEYS`.
fn memory_keys() -> Result<usize, ToolError> {
    match std::env::var("MKV_REBUILD_MEMORY_KEYS") {
        Ok(v) if !v.is_empty() => v.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
            ToolError::Usage(format!("MKV_REBUILD_MEMORY_KEYS={v}: not a number of keys"))
        }),
        _ => Ok(MEMORY_KEYS),
    }
}

/// Prints the md5 disagreements and the summary line.
fn report(crawl: &crawl::Crawl, cluster: &Cluster, keys: u64, secs: f64) {
    for key in &crawl.md5_disagreements {
        eprintln!(
            "mkv rebuild: warning: replicas of {} hold different md5s",
            String::from_utf8_lossy(key)
        );
    }
    println!(
        "rebuilt {keys} keys from {} files on {} volumes ({} listings, {} files skipped, {} md5 disagreements, 0 errors) in {secs:.2}s: {:.0} keys/s",
        crawl.files,
        cluster.volumes.len(),
        crawl.listings,
        crawl.skipped,
        crawl.md5_disagreements.len(),
        keys as f64 / secs.max(1e-9)
    );
}
