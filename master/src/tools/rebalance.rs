//! `mkv rebalance`: every record's replicas moved to where `key2volume`
//! puts them now, with the current `-volumes` (see `rebalance` for one key).
//!
//! Keys are read from the index a page at a time and moved with bounded
//! concurrency; unlinked keys move too and stay unlinked. Every step is
//! safe to interrupt: a re-run first undoes the copies a killed run made
//! but had not yet recorded (their intents, `ops::intent`), then finds what
//! is left and finishes the job.
//! `--dry-run` prints what would move and changes nothing.

use std::collections::BTreeMap;
use std::rc::Rc;

use futures_util::stream::{self, StreamExt};

use crate::client::VolumeClient;
use crate::config::{Cluster, RebalanceArgs};
use crate::error::{MasterError, ToolError};
use crate::index::Index;
use crate::ops::rebalance::{rebalance_key, Moved};
use crate::record::Record;
use crate::tools::progress::Progress;

/// Records read from the index at a time.
const PAGE: usize = 1024;

#[derive(Default)]
struct Tally {
    done: u64,
    moved: u64,
    bytes: u64,
    errors: u64,
    /// Volumes that failed, with the keys they held up and the first error:
    /// one line each, not one per key.
    failing: BTreeMap<String, (u64, String)>,
}

pub fn run(cluster: &Cluster, args: &RebalanceArgs) -> Result<(), ToolError> {
    // A mistyped -db would otherwise be a new, empty index, "rebalanced".
    if !crate::index::is_postgres(&cluster.db) && !cluster.db.join("CURRENT").exists() {
        return Err(ToolError::Usage(format!(
            "-db {}: no index there (rebalance moves the values of an existing index)",
            cluster.db.display()
        )));
    }
    let (mut rt, _) = http1::runtime::build().map_err(ToolError::io("cannot start a runtime"))?;
    // Copies a killed run (or a crashed server) made but never recorded.
    if !args.dry_run {
        rt.block_on(crate::tools::rebuild::settle_intents(cluster))?;
    }
    let index = Index::open(&cluster.db, false)?;
    let mut total = 0u64;
    index.scan(b"/", b"", |_, _| {
        total += 1;
        true
    })?;
    let progress = Progress::new(
        if args.dry_run {
            "rebalance (dry run)"
        } else {
            "rebalance"
        },
        Some(total),
    );
    let tally = rt.block_on(rebalance_all(cluster, &index, args, &progress))?;
    progress.finish();
    index.close();
    let secs = progress.elapsed().as_secs_f64();
    let (verb, copied) = if args.dry_run {
        ("would move", "to copy")
    } else {
        ("moved", "copied")
    };
    for (volume, (keys, what)) in &tally.failing {
        eprintln!("mkv rebalance: volume {volume}: {keys} keys not moved: {what}");
    }
    println!(
        "rebalanced {} keys: {verb} {} ({} bytes {copied}), {} already in place, {} errors, in {secs:.2}s: {:.0} keys/s",
        tally.done,
        tally.moved,
        tally.bytes,
        tally.done - tally.moved - tally.errors,
        tally.errors,
        tally.done as f64 / secs.max(1e-9)
    );
    if tally.errors > 0 {
        return Err(ToolError::Unmoved(tally.errors));
    }
    Ok(())
}

async fn rebalance_all(
    cluster: &Cluster,
    index: &Index,
    args: &RebalanceArgs,
    progress: &Progress,
) -> Result<Tally, ToolError> {
    let client = Rc::new(VolumeClient::new(
        cluster.voltimeout,
        cluster.volume_timeout,
    ));
    let mut tally = Tally::default();
    let mut from = Vec::new();
    loop {
        let page = next_page(index, &from)?;
        let Some((last, _)) = page.last() else {
            return Ok(tally);
        };
        from = last.clone();
        let moves = stream::iter(page.into_iter().map(|(key, rec)| {
            let client = client.clone();
            async move {
                let moved = rebalance_key(&client, index, cluster, &key, &rec, args.dry_run).await;
                (key, moved)
            }
        }))
        .buffer_unordered(args.tool.concurrency.max(1));
        let results: Vec<_> = moves.collect().await;
        for (key, moved) in results {
            tally.done += 1;
            report(&mut tally, &key, moved, args.dry_run, progress);
        }
        progress.update(tally.done, || {
            format!("{} moved, {} errors", tally.moved, tally.errors)
        });
    }
}

/// The next `PAGE` records after `from` (from the first, if it is empty).
pub(crate) fn next_page(index: &Index, from: &[u8]) -> Result<Vec<(Vec<u8>, Record)>, ToolError> {
    let mut page = Vec::with_capacity(PAGE);
    let mut bad = None;
    index.scan(b"/", from, |k, v| {
        if !from.is_empty() && k == from {
            return true;
        }
        match Record::decode(v) {
            Ok(rec) => page.push((k.to_vec(), rec)),
            Err(source) => {
                let key = String::from_utf8_lossy(k).into_owned();
                bad = Some(ToolError::CorruptRecord { key, source });
            }
        }
        page.len() < PAGE && bad.is_none()
    })?;
    match bad {
        Some(e) => Err(e),
        None => Ok(page),
    }
}

fn report(
    tally: &mut Tally,
    key: &[u8],
    moved: Result<Moved, MasterError>,
    dry_run: bool,
    progress: &Progress,
) {
    let name = String::from_utf8_lossy(key);
    match moved {
        Ok(m) if m.is_nothing() => {}
        Ok(m) => {
            tally.moved += 1;
            tally.bytes += m.bytes;
            if dry_run {
                println!(
                    "{name}: copy to [{}], remove from [{}]",
                    m.copied.join(","),
                    m.removed.join(",")
                );
            }
        }
        Err(MasterError::Replica(e)) => {
            tally.errors += 1;
            let (keys, _) = tally.failing.entry(e.host.clone()).or_insert_with(|| {
                progress.println(&format!(
                    "mkv rebalance: volume {} fails ({}); its keys are skipped and counted",
                    e.host, e.what
                ));
                (0, e.what.clone())
            });
            *keys += 1;
        }
        Err(e) => {
            tally.errors += 1;
            progress.println(&format!("mkv rebalance: {name}: {e}"));
        }
    }
}
