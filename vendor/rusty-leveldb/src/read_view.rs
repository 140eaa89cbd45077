//! Reading without the database: a `ReadView` is a copy of what a forward
//! scan from some key needs — the table files of the current version and the
//! memtables' entries from that key on — taken in a moment while the
//! database is held. A `ViewReader`, owned by one thread, scans it while
//! the database goes on writing elsewhere: table files are immutable, and
//! the view's memtable entries are copies. Several threads can scan at once.
//!
//! A compaction may delete a table file of the view before a reader opens
//! it: the scan then fails, and the caller takes a new view (or holds the
//! database). A file a reader has opened stays readable until the reader
//! lets it go, which it does as soon as a view no longer lists it.

use crate::cache::Cache;
use crate::cmp::{Cmp, DefaultCmp, InternalKeyCmp};
use crate::error::Result;
use crate::key_types::{parse_internal_key, LookupKey, ValueType};
use crate::memtable::MemTable;
use crate::merging_iter::MergingIter;
use crate::options::Options;
use crate::table_cache::TableCache;
use crate::table_reader::TableIterator;
use crate::types::{share, FileNum, LdbIterator, SequenceNumber, Shared};
use crate::types::{MAX_SEQUENCE_NUMBER, NUM_LEVELS};
use crate::version::Version;

use bytes::Bytes;
use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

/// One table file of a view.
#[derive(Clone, Debug)]
pub(crate) struct TableFile {
    num: FileNum,
    size: usize,
    smallest: Vec<u8>,
    largest: Vec<u8>,
}

/// The table files of a version, level by level; shared by every view of
/// that version.
pub(crate) type Levels = Arc<[Arc<[TableFile]>]>;

/// The table files of `version`, copied.
pub(crate) fn levels_of(version: &Version) -> Levels {
    let levels = (0..NUM_LEVELS).map(|l| {
        let files = version.files[l].iter().map(|f| {
            let f = f.borrow();
            TableFile {
                num: f.num,
                size: f.size,
                smallest: f.smallest.to_vec(),
                largest: f.largest.to_vec(),
            }
        });
        files.collect::<Vec<_>>().into()
    });
    levels.collect::<Vec<_>>().into()
}

/// Memtable entries, copied: internal keys and values, in order.
#[derive(Default, Debug)]
struct MemCopy {
    bytes: Vec<u8>,
    /// (key start, value start, value end) in `bytes`.
    entries: Vec<(usize, usize, usize)>,
}

/// See the module's comment. Holds no reference into the database.
#[derive(Debug)]
pub struct ReadView {
    seq: SequenceNumber,
    levels: Levels,
    mems: Vec<Arc<MemCopy>>,
    limit: Option<Vec<u8>>,
}

impl ReadView {
    /// Takes a view of `current` and the memtables for a scan from `from`
    /// of keys beginning with `prefix`. At most about `max_mem` memtable
    /// entries are copied; when more remain, the view ends at [`limit`].
    ///
    /// [`limit`]: ReadView::limit
    pub(crate) fn take(
        seq: SequenceNumber,
        levels: Levels,
        mems: &[&MemTable],
        (from, prefix, max_mem): (&[u8], &[u8], usize),
    ) -> ReadView {
        // Keys before the prefix are not the scan's, and must not end the copy.
        let from = from.max(prefix);
        let mut limit: Option<Vec<u8>> = None;
        let mut copies = Vec::new();
        for mem in mems.iter().filter(|m| m.len() > 0) {
            let (copy, cut) = copy_mem(mem, from, prefix, max_mem);
            if let Some(cut) = cut {
                if limit.as_ref().is_none_or(|l| cut < *l) {
                    limit = Some(cut);
                }
            }
            copies.push(Arc::new(copy));
        }
        ReadView {
            seq,
            levels,
            mems: copies,
            limit,
        }
    }

    /// The first user key this view does not cover, when its memtable copy
    /// was cut short: a scan that gets there goes on with a new view.
    pub fn limit(&self) -> Option<&[u8]> {
        self.limit.as_deref()
    }

    fn file_nums(&self) -> HashSet<FileNum> {
        self.levels
            .iter()
            .flat_map(|l| l.iter())
            .map(|f| f.num)
            .collect()
    }
}

/// Copies the entries of `mem` from `from` on while their keys have
/// `prefix`; past `max` entries, stops at the next new user key and gives it.
fn copy_mem(mem: &MemTable, from: &[u8], prefix: &[u8], max: usize) -> (MemCopy, Option<Vec<u8>>) {
    let mut copy = MemCopy::default();
    let mut it = mem.iter();
    it.seek(LookupKey::new(from, MAX_SEQUENCE_NUMBER).internal_key());
    let mut last_user_key: Vec<u8> = Vec::new();
    while let Some((ikey, value)) = it.current_ref() {
        let (_, _, ukey) = parse_internal_key(ikey);
        if !ukey.starts_with(prefix) {
            break;
        }
        if copy.entries.len() >= max && ukey != last_user_key.as_slice() {
            return (copy, Some(ukey.to_vec()));
        }
        if ukey != last_user_key.as_slice() {
            last_user_key.clear();
            last_user_key.extend_from_slice(ukey);
        }
        let start = copy.bytes.len();
        copy.bytes.extend_from_slice(ikey);
        copy.bytes.extend_from_slice(value);
        copy.entries
            .push((start, start + ikey.len(), copy.bytes.len()));
        it.advance();
    }
    (copy, None)
}

/// Scans views of one database on one thread, keeping its tables open
/// between scans (and its own block cache).
pub struct ViewReader {
    ucmp: Rc<Box<dyn Cmp>>,
    cache: Shared<TableCache>,
    open: HashSet<FileNum>,
    /// The files of the last view read: the same for views of one version.
    last: Option<Levels>,
}

impl ViewReader {
    /// A reader of the database in `dir` (whose comparator must be the
    /// default one), keeping up to `tables` tables open and `blocks` blocks
    /// cached.
    pub fn new(dir: PathBuf, tables: usize, blocks: usize) -> ViewReader {
        let opt = Options::default();
        let cache = TableCache::new(&dir, opt.clone(), share(Cache::new(blocks)), tables);
        ViewReader {
            ucmp: opt.cmp.clone(),
            cache: share(cache),
            open: HashSet::new(),
            last: None,
        }
    }

    /// An iterator over `view`, not yet positioned: `seek` first.
    pub fn iter<'v>(&mut self, view: &'v ReadView) -> Result<ViewIter<'v>> {
        self.forget_others(view);
        let mut iters: Vec<Box<dyn LdbIterator>> = Vec::new();
        for mem in &view.mems {
            iters.push(Box::new(MemIter {
                mem: mem.clone(),
                at: None,
            }));
        }
        let mut cache = self.cache.borrow_mut();
        for f in view.levels[0].iter() {
            iters.push(Box::new(cache.get_table(f.num)?.iter()));
            self.open.insert(f.num);
        }
        drop(cache);
        let failed = Rc::new(Cell::new(false));
        for files in view.levels.iter().skip(1).filter(|l| !l.is_empty()) {
            self.open.extend(files.iter().map(|f| f.num));
            iters.push(Box::new(LevelIter {
                files: files.clone(),
                cache: self.cache.clone(),
                cmp: InternalKeyCmp(self.ucmp.clone()),
                current: None,
                ix: 0,
                done: false,
                failed: failed.clone(),
            }));
        }
        let icmp: Rc<Box<dyn Cmp>> = Rc::new(Box::new(InternalKeyCmp(self.ucmp.clone())));
        Ok(ViewIter {
            merged: MergingIter::new(icmp, iters),
            view,
            failed,
            skip: Vec::new(),
            valid: false,
        })
    }

    /// Lets go of tables the view does not list (compacted away since):
    /// their disk space comes back once nobody holds them open.
    fn forget_others(&mut self, view: &ReadView) {
        if self
            .last
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(l, &view.levels))
        {
            return;
        }
        self.last = Some(view.levels.clone());
        let keep = view.file_nums();
        let mut cache = self.cache.borrow_mut();
        self.open.retain(|n| {
            let kept = keep.contains(n);
            if !kept {
                let _ = cache.evict(*n);
            }
            kept
        });
    }
}

/// A forward scan of a view, by user key: the newest value of each key,
/// deleted keys left out, ending at the view's limit.
pub struct ViewIter<'v> {
    merged: MergingIter,
    view: &'v ReadView,
    /// The user key whose older entries are being skipped.
    skip: Vec<u8>,
    valid: bool,
    /// Set when a table of the view could not be opened (a compaction has
    /// deleted it): the scan has ended early.
    failed: Rc<Cell<bool>>,
}

impl<'v> ViewIter<'v> {
    pub fn seek(&mut self, user_key: &[u8]) {
        self.skip.clear();
        self.merged
            .seek(LookupKey::new(user_key, self.view.seq).internal_key());
        self.find_next(false);
    }

    pub fn advance(&mut self) {
        if !self.valid {
            return;
        }
        if let Some((ikey, _)) = self.merged.current_ref() {
            self.skip.clear();
            self.skip.extend_from_slice(parse_internal_key(ikey).2);
        }
        self.merged.advance();
        self.find_next(true);
    }

    /// Whether a table of the view could not be read: the scan ended there
    /// and not at the view's end.
    pub fn failed(&self) -> bool {
        self.failed.get()
    }

    /// The current user key and value; None at the end of the view, or
    /// where it [failed](ViewIter::failed).
    pub fn current(&self) -> Option<(&[u8], &[u8])> {
        if !self.valid || self.failed.get() {
            return None;
        }
        let (ikey, value) = self.merged.current_ref()?;
        Some((parse_internal_key(ikey).2, value))
    }

    fn find_next(&mut self, mut skipping: bool) {
        self.valid = false;
        while let Some((ikey, _)) = self.merged.current_ref() {
            let (typ, seq, ukey) = parse_internal_key(ikey);
            if let Some(limit) = &self.view.limit {
                if ukey >= limit.as_slice() {
                    return;
                }
            }
            if seq <= self.view.seq {
                let hidden = skipping && ukey <= self.skip.as_slice();
                match typ {
                    ValueType::TypeDeletion if !hidden => {
                        self.skip.clear();
                        self.skip.extend_from_slice(ukey);
                        skipping = true;
                    }
                    ValueType::TypeValue if !hidden => {
                        self.valid = true;
                        return;
                    }
                    _ => {}
                }
            }
            self.merged.advance();
        }
    }
}

/// A view's copy of a memtable, as an iterator of internal keys.
struct MemIter {
    mem: Arc<MemCopy>,
    at: Option<usize>,
}

impl MemIter {
    fn entry(&self, i: usize) -> (&[u8], &[u8]) {
        let (k, v, end) = self.mem.entries[i];
        (&self.mem.bytes[k..v], &self.mem.bytes[v..end])
    }
}

impl LdbIterator for MemIter {
    fn advance(&mut self) -> bool {
        let next = self.at.map_or(0, |i| i + 1);
        self.at = (next < self.mem.entries.len()).then_some(next);
        self.at.is_some()
    }
    fn current(&self) -> Option<(Bytes, Bytes)> {
        let (k, v) = self.current_ref()?;
        Some((Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
    }
    fn current_ref(&self) -> Option<(&[u8], &[u8])> {
        self.at.map(|i| self.entry(i))
    }
    fn seek(&mut self, key: &[u8]) {
        let cmp = InternalKeyCmp(Rc::new(Box::new(DefaultCmp)));
        let i = self
            .mem
            .entries
            .partition_point(|&(k, v, _)| cmp.cmp(&self.mem.bytes[k..v], key) == Ordering::Less);
        self.at = (i < self.mem.entries.len()).then_some(i);
    }
    fn reset(&mut self) {
        self.at = None;
    }
    fn valid(&self) -> bool {
        self.at.is_some()
    }
    fn prev(&mut self) -> bool {
        self.at = self.at.and_then(|i| i.checked_sub(1));
        self.at.is_some()
    }
}

/// The tables of one level (1 and up: sorted, not overlapping), one after
/// the other, opened as the scan gets to them. Unlike the database's own
/// level iterator, a table that cannot be opened is reported (`failed`),
/// not taken for the end of the level.
struct LevelIter {
    files: Arc<[TableFile]>,
    cache: Shared<TableCache>,
    cmp: InternalKeyCmp,
    current: Option<TableIterator>,
    ix: usize,
    /// Past the last table (or failed): `advance` does not start over.
    done: bool,
    failed: Rc<Cell<bool>>,
}

impl LevelIter {
    fn open(&mut self, ix: usize) -> Option<&mut TableIterator> {
        self.ix = ix;
        match self.cache.borrow_mut().get_table(self.files[ix].num) {
            Ok(table) => self.current = Some(table.iter()),
            Err(_) => {
                self.failed.set(true);
                self.current = None;
            }
        }
        self.current.as_mut()
    }

    /// From the start of table `ix` on, to the first entry.
    fn first_from(&mut self, mut ix: usize) -> bool {
        while ix < self.files.len() {
            match self.open(ix).map(|t| t.advance()) {
                Some(true) => return true,
                Some(false) => ix += 1,
                None => break,
            }
        }
        self.current = None;
        self.done = true;
        false
    }
}

impl LdbIterator for LevelIter {
    fn advance(&mut self) -> bool {
        if self.done {
            return false;
        }
        match self.current.as_mut().map(|t| t.advance()) {
            None => self.first_from(0),
            Some(true) => true,
            Some(false) => self.first_from(self.ix + 1),
        }
    }
    fn current(&self) -> Option<(Bytes, Bytes)> {
        self.current.as_ref().and_then(|t| t.current())
    }
    fn current_ref(&self) -> Option<(&[u8], &[u8])> {
        self.current.as_ref().and_then(|t| t.current_ref())
    }
    fn seek(&mut self, key: &[u8]) {
        self.done = false;
        // The first table whose largest key is not before `key`.
        let ix = self
            .files
            .partition_point(|f| self.cmp.cmp(&f.largest, key) == Ordering::Less);
        if ix >= self.files.len() {
            self.current = None;
            self.done = true;
            return;
        }
        match self.open(ix) {
            Some(t) => {
                t.seek(key);
                if !t.valid() {
                    self.first_from(ix + 1);
                }
            }
            None => self.done = true,
        }
    }
    fn reset(&mut self) {
        self.current = None;
        self.ix = 0;
        self.done = false;
    }
    fn valid(&self) -> bool {
        self.current.as_ref().is_some_and(|t| t.valid())
    }
    fn prev(&mut self) -> bool {
        // Views scan forward only.
        self.current = None;
        false
    }
}
