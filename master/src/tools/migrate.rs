//! `mkv migrate --from DB --to DB`: copies every record of one index into
//! another, empty one — LevelDB to PostgreSQL, back, or between two of a
//! kind — exactly as stored (records, S3 metadata, buckets, uploads,
//! unfinished writes' intents: the masters that open the copy settle them
//! as they would have). Both indexes are opened as a tool opens them:
//! alone, no master running on either.
//!
//! Memory stays bounded: the source is read in key order a batch at a time
//! (at most `BATCH_RECORDS` records or `BATCH_BYTES` bytes), each batch
//! written while the next is read, at most two in flight; the batches are
//! relaxed writes and one synced write ends the copy, so that it is durable
//! when the command says it is done.

use std::path::Path;

use crate::config::MigrateArgs;
use crate::error::ToolError;
use crate::index::{describe, Durability, Index, Submitted, Write};
use crate::tools::progress::Progress;

const BATCH_RECORDS: usize = 2048;
const BATCH_BYTES: usize = 8 << 20;

pub fn run(args: &MigrateArgs) -> Result<(), ToolError> {
    let (from, to) = (&args.from, &args.to);
    if same_index(from, to) {
        return Err(ToolError::Usage(
            "--from and --to name the same index".into(),
        ));
    }
    if !crate::index::is_postgres(from) && !from.join("CURRENT").exists() {
        return Err(ToolError::Usage(format!(
            "--from {}: no LevelDB index there",
            from.display()
        )));
    }
    let source = Index::open(from, false)?;
    let dest = Index::open_bulk(to)?;
    let mut present = false;
    dest.scan(b"", b"", |_, _| {
        present = true;
        false
    })?;
    if present {
        return Err(ToolError::Usage(format!(
            "--to {}: that index is not empty; migrate copies into an empty (or new) one",
            describe(to)
        )));
    }
    let progress = Progress::new("migrate", None);
    let copied = copy(&source, &dest, &progress);
    progress.finish();
    let (records, bytes) = copied?;
    source.close();
    dest.close();
    println!(
        "copied {records} records ({bytes} bytes) from {} to {} in {:.1}s",
        describe(from),
        describe(to),
        progress.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Copies every record; how many, and their bytes (keys and values).
fn copy(source: &Index, dest: &Index, progress: &Progress) -> Result<(u64, u64), ToolError> {
    let mut batch: Vec<Write> = Vec::with_capacity(BATCH_RECORDS);
    let mut batch_bytes = 0;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut in_flight: Option<Submitted> = None;
    let mut failed: Option<ToolError> = None;
    let send = |batch: Vec<Write>, in_flight: &mut Option<Submitted>| -> Result<(), ToolError> {
        // The batch before this one must be in before a third is queued.
        if let Some(earlier) = in_flight.take() {
            earlier.wait_blocking()?;
        }
        *in_flight = Some(dest.submit(batch, Durability::Relaxed)?);
        Ok(())
    };
    source.scan(b"", b"", |k, v| {
        batch.push(Write::Put(k.to_vec(), v.to_vec()));
        batch_bytes += k.len() + v.len();
        records += 1;
        bytes += (k.len() + v.len()) as u64;
        if batch.len() < BATCH_RECORDS && batch_bytes < BATCH_BYTES {
            return true;
        }
        batch_bytes = 0;
        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_RECORDS));
        if let Err(e) = send(full, &mut in_flight) {
            failed = Some(e);
            return false;
        }
        progress.update(records, || format!("{bytes} bytes"));
        true
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(earlier) = in_flight.take() {
        earlier.wait_blocking()?;
    }
    // The last records, and everything before them, durable.
    dest.apply_blocking(batch, Durability::Synced)?;
    Ok((records, bytes))
}

fn same_index(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
