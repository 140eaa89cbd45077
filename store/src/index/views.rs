//! Scans outside the index lock. Under the lock, a scan only takes a view
//! (`rusty_leveldb::ReadView`: the current table files and a copy of the
//! memtable's entries from where it starts); it then reads the view on its
//! own thread while lookups, writes and other scans go on. Each thread keeps
//! a reader per index (`ViewReader`: its open tables and a small block
//! cache), so scans on several threads read at once.
//!
//! A view whose tables a compaction has deleted before they were opened
//! fails; the scan goes on from where it was with the lock held, as all
//! scans did before views.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusty_leveldb::{ReadView, ViewReader};

use super::{IndexError, Step};

/// Memtable entries a view copies at most (under the lock); a scan that
/// goes past them takes another view.
pub(super) const MEM_ENTRIES: usize = 4096;
/// Tables a thread's reader keeps open.
const TABLES: usize = 64;
/// Blocks a thread's reader keeps (4 KiB each).
const BLOCKS: usize = 256;
/// Readers a thread keeps, of as many indexes (a process has one, tests
/// more).
const READERS_PER_THREAD: usize = 2;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static READERS: RefCell<Vec<(u64, ViewReader)>> = const { RefCell::new(Vec::new()) };
}

/// Where one index's views are read from.
pub(super) struct Views {
    id: u64,
    dir: PathBuf,
}

/// How the scan of one view ended.
pub(super) enum ViewEnd {
    /// The callback stopped it, or the keys with the prefix ran out.
    Done,
    /// It got to the view's limit: take a new view from the scan's `from`.
    Limit,
    /// A table could not be read: go on from `from` with the lock held.
    Failed,
}

impl Views {
    pub(super) fn new(dir: &Path) -> Views {
        Views {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            dir: dir.to_path_buf(),
        }
    }

    /// Scans `view` with this thread's reader; `from` is where the scan
    /// goes on (after the last key given, or where the callback sought to).
    pub(super) fn scan(
        &self,
        view: &ReadView,
        prefix: &[u8],
        from: &mut Vec<u8>,
        f: &mut impl FnMut(&[u8], &[u8]) -> Step,
    ) -> Result<ViewEnd, IndexError> {
        // Taken out while in use: a callback that scans too gets a reader
        // of its own rather than a second borrow.
        let taken = READERS.with(|r| {
            let mut r = r.borrow_mut();
            let at = r.iter().position(|(id, _)| *id == self.id)?;
            Some(r.remove(at).1)
        });
        let mut reader = taken.unwrap_or_else(|| ViewReader::new(self.dir.clone(), TABLES, BLOCKS));
        let end = scan_view(&mut reader, view, prefix, from, f);
        READERS.with(|r| {
            let mut r = r.borrow_mut();
            r.push((self.id, reader));
            if r.len() > READERS_PER_THREAD {
                r.remove(0);
            }
        });
        end
    }
}

fn scan_view(
    reader: &mut ViewReader,
    view: &ReadView,
    prefix: &[u8],
    from: &mut Vec<u8>,
    f: &mut impl FnMut(&[u8], &[u8]) -> Step,
) -> Result<ViewEnd, IndexError> {
    let Ok(mut it) = reader.iter(view) else {
        return Ok(ViewEnd::Failed);
    };
    it.seek(from);
    loop {
        let Some((k, v)) = it.current() else {
            if it.failed() {
                return Ok(ViewEnd::Failed);
            }
            return Ok(match view.limit() {
                Some(limit) => {
                    if limit > from.as_slice() {
                        *from = limit.to_vec();
                    }
                    ViewEnd::Limit
                }
                None => ViewEnd::Done,
            });
        };
        if !k.starts_with(prefix) {
            return Ok(ViewEnd::Done);
        }
        match f(k, v) {
            Step::Next => {
                // The smallest key after `k`.
                from.clear();
                from.extend_from_slice(k);
                from.push(0);
                it.advance();
            }
            Step::Stop => return Ok(ViewEnd::Done),
            Step::Seek(to) if to.as_slice() > k => {
                it.seek(&to);
                *from = to;
            }
            Step::Seek(_) => return Err(super::core::seek_backwards()),
        }
    }
}
