//! Keys found by a rebuild, kept on disk when there are too many to hold:
//! each spill writes the keys gathered so far, in key order, as one run
//! file, and the runs are merged key by key when the index is written. A
//! key seen by several runs (its replicas were listed at different times)
//! comes out once, with everything they found.
//!
//! A run is a sequence of records: key length (u32 LE), key, replica count
//! (u8), replicas (volume u16 LE, subvolume u8), md5 flag (u8) and 16 bytes
//! of md5 when set, size (u64 LE), time (u64 LE). The folder holding the runs is removed when `Runs` is
//! dropped.

use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::Found;

/// Buffers for writing a run, and for reading each run in the merge.
const WRITE_BUFFER: usize = 256 * 1024;
const READ_BUFFER: usize = 64 * 1024;

/// Runs merged into one when this many of one level are on disk, so a
/// merge never opens more than this many files of a level.
const FAN_IN: usize = 64;

pub(super) struct Runs {
    dir: PathBuf,
    /// The runs on disk, and each one's level: a spill makes a run of level
    /// 0, and `FAN_IN` runs of a level merge into one of the next.
    runs: Vec<(PathBuf, u32)>,
    made: usize,
    /// Keys written by spills so far (a key in two spills counts twice).
    pub(super) spilled: u64,
    /// Keys whose md5s differed between runs merged so far (handed on to
    /// the final merge).
    disagreements: Vec<Vec<u8>>,
}

impl Runs {
    /// Runs that will live in `dir`, made on the first spill.
    pub(super) fn new(dir: PathBuf) -> Runs {
        Runs {
            dir,
            runs: Vec::new(),
            made: 0,
            spilled: 0,
            disagreements: Vec::new(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Writes `keys` as a new run and empties it.
    pub(super) fn spill(&mut self, keys: &mut BTreeMap<Vec<u8>, Found>) -> std::io::Result<()> {
        let keys = std::mem::take(keys);
        if self.made == 0 {
            std::fs::create_dir_all(&self.dir)?;
        }
        let mut out = self.create(0)?;
        for (key, found) in &keys {
            out.write(key, found)?;
        }
        self.runs.push(out.finish()?);
        self.spilled += keys.len() as u64;
        self.merge_full_levels()
    }

    /// Every key of every run, once, in key order; its `disagreements`
    /// include those found while merging levels.
    pub(super) fn merge(&mut self) -> std::io::Result<Merge> {
        let mut merge = Merge::open(self.runs.iter().map(|(path, _)| path.as_path()))?;
        merge.disagreements = std::mem::take(&mut self.disagreements);
        Ok(merge)
    }

    fn create(&mut self, level: u32) -> std::io::Result<RunWriter> {
        let path = self.dir.join(format!("run-{}", self.made));
        self.made += 1;
        let file = File::create(&path)?;
        Ok(RunWriter {
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            path,
            level,
        })
    }

    /// After a spill: merges level 0 into one run when it has `FAN_IN`
    /// runs, then the level that run joined if that is full now, and so on.
    fn merge_full_levels(&mut self) -> std::io::Result<()> {
        let mut level = 0;
        while self.runs.iter().filter(|r| r.1 == level).count() >= FAN_IN {
            let (full, rest): (Vec<_>, Vec<_>) = self.runs.drain(..).partition(|r| r.1 == level);
            self.runs = rest;
            let mut merge = Merge::open(full.iter().map(|(path, _)| path.as_path()))?;
            let mut out = self.create(level + 1)?;
            for record in merge.by_ref() {
                let (key, found) = record?;
                out.write(&key, &found)?;
            }
            self.runs.push(out.finish()?);
            self.disagreements.append(&mut merge.disagreements);
            for (path, _) in full {
                std::fs::remove_file(path)?;
            }
            level += 1;
        }
        Ok(())
    }
}

impl Drop for Runs {
    fn drop(&mut self) {
        if self.made > 0 {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

struct RunWriter {
    out: BufWriter<File>,
    path: PathBuf,
    level: u32,
}

impl RunWriter {
    fn write(&mut self, key: &[u8], found: &Found) -> std::io::Result<()> {
        let len = u32::try_from(key.len()).map_err(|_| ErrorKind::InvalidInput)?;
        let count = u8::try_from(found.replicas.len()).map_err(|_| ErrorKind::InvalidInput)?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(key)?;
        self.out.write_all(&[count])?;
        for &(volume, sv) in &found.replicas {
            self.out.write_all(&volume.to_le_bytes())?;
            self.out.write_all(&[sv])?;
        }
        match &found.md5 {
            Some(md5) => {
                self.out.write_all(&[1])?;
                self.out.write_all(md5)?;
            }
            None => self.out.write_all(&[0])?,
        }
        self.out.write_all(&found.size.to_le_bytes())?;
        self.out.write_all(&found.mtime.to_le_bytes())
    }

    fn finish(mut self) -> std::io::Result<(PathBuf, u32)> {
        self.out.flush()?;
        Ok((self.path, self.level))
    }
}

struct RunReader {
    path: PathBuf,
    input: BufReader<File>,
}

impl RunReader {
    fn open(path: &Path) -> std::io::Result<RunReader> {
        Ok(RunReader {
            path: path.to_owned(),
            input: BufReader::with_capacity(READ_BUFFER, File::open(path)?),
        })
    }

    /// The next record, or None at the end of the run.
    fn next(&mut self) -> std::io::Result<Option<(Vec<u8>, Found)>> {
        if self.input.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len)?;
        let mut key = vec![0; u32::from_le_bytes(len) as usize];
        self.input.read_exact(&mut key)?;
        let mut byte = [0u8; 1];
        self.input.read_exact(&mut byte)?;
        let mut found = Found::default();
        for _ in 0..byte[0] {
            let mut replica = [0u8; 3];
            self.input.read_exact(&mut replica)?;
            let volume = u16::from_le_bytes([replica[0], replica[1]]);
            found.replicas.push((volume, replica[2]));
        }
        self.input.read_exact(&mut byte)?;
        if byte[0] == 1 {
            let mut md5 = [0u8; 16];
            self.input.read_exact(&mut md5)?;
            found.md5 = Some(md5);
        }
        let mut number = [0u8; 8];
        self.input.read_exact(&mut number)?;
        found.size = u64::from_le_bytes(number);
        self.input.read_exact(&mut number)?;
        found.mtime = u64::from_le_bytes(number);
        Ok(Some((key, found)))
    }
}

/// The next record of one run, ordered for a min-heap by key (then run).
struct Head {
    key: Vec<u8>,
    found: Found,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        (&self.key, self.run) == (&other.key, other.run)
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&other.key, other.run).cmp(&(&self.key, self.run))
    }
}

pub(super) struct Merge {
    readers: Vec<RunReader>,
    heads: BinaryHeap<Head>,
    /// Keys whose runs held different md5s.
    pub(super) disagreements: Vec<Vec<u8>>,
}

impl Merge {
    fn open<'a>(paths: impl Iterator<Item = &'a Path>) -> std::io::Result<Merge> {
        let mut merge = Merge {
            readers: Vec::new(),
            heads: BinaryHeap::new(),
            disagreements: Vec::new(),
        };
        for path in paths {
            merge.readers.push(RunReader::open(path)?);
            merge.advance(merge.readers.len() - 1)?;
        }
        Ok(merge)
    }

    /// Puts the next record of `run` among the heads.
    fn advance(&mut self, run: usize) -> std::io::Result<()> {
        let reader = &mut self.readers[run];
        match reader.next() {
            Ok(Some((key, found))) => {
                self.heads.push(Head { key, found, run });
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(std::io::Error::new(
                e.kind(),
                format!("reading {}: {e}", reader.path.display()),
            )),
        }
    }
}

impl Iterator for Merge {
    type Item = std::io::Result<(Vec<u8>, Found)>;

    fn next(&mut self) -> Option<Self::Item> {
        let Head {
            key,
            mut found,
            run,
        } = self.heads.pop()?;
        if let Err(e) = self.advance(run) {
            return Some(Err(e));
        }
        while self.heads.peek().is_some_and(|h| h.key == key) {
            let more = self.heads.pop().expect("peeked");
            if !found.absorb(&more.found) {
                self.disagreements.push(key.clone());
            }
            if let Err(e) = self.advance(more.run) {
                return Some(Err(e));
            }
        }
        Some(Ok((key, found)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(replicas: &[(u16, u8)], md5: Option<u8>) -> Found {
        Found {
            replicas: replicas.to_vec(),
            md5: md5.map(|b| [b; 16]),
            size: 5,
            mtime: 1_796_292_604,
        }
    }

    #[test]
    fn runs_merge_in_key_order_once_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let spill_dir = dir.path().join("runs");
        let mut runs = Runs::new(spill_dir.clone());
        let mut keys = BTreeMap::new();
        keys.insert(b"b".to_vec(), found(&[(0, 1)], Some(7)));
        keys.insert(b"d".to_vec(), found(&[(0, 255), (1, 255)], None));
        keys.insert(vec![0xff; 300], found(&[(2, 3)], None));
        runs.spill(&mut keys).unwrap();
        assert!(keys.is_empty());
        keys.insert(b"a".to_vec(), found(&[(1, 1)], None));
        keys.insert(b"b".to_vec(), found(&[(2, 1), (0, 1)], None));
        keys.insert(b"d".to_vec(), found(&[(2, 255)], Some(9)));
        runs.spill(&mut keys).unwrap();
        keys.insert(b"b".to_vec(), found(&[(3, 1)], Some(8)));
        runs.spill(&mut keys).unwrap();
        assert_eq!(runs.spilled, 7);

        let mut merge = runs.merge().unwrap();
        let all: Vec<_> = merge.by_ref().map(Result::unwrap).collect();
        let want = vec![
            (b"a".to_vec(), found(&[(1, 1)], None)),
            (b"b".to_vec(), found(&[(0, 1), (2, 1), (3, 1)], Some(7))),
            (
                b"d".to_vec(),
                found(&[(0, 255), (1, 255), (2, 255)], Some(9)),
            ),
            (vec![0xff; 300], found(&[(2, 3)], None)),
        ];
        assert_eq!(all, want);
        assert_eq!(merge.disagreements, vec![b"b".to_vec()]);
        drop(merge);
        assert!(spill_dir.exists());
        drop(runs);
        assert!(!spill_dir.exists(), "the runs are removed");
    }

    #[test]
    fn full_levels_merge_into_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let spill_dir = dir.path().join("runs");
        let mut runs = Runs::new(spill_dir.clone());
        // Spill i holds keys i..i+10 as seen on volume i % 5; key 7 is seen
        // with another md5 by spill 5.
        let spills = FAN_IN * FAN_IN + 3 * FAN_IN + 5;
        for i in 0..spills {
            let mut keys: BTreeMap<Vec<u8>, Found> = (i..i + 10)
                .map(|k| {
                    (
                        format!("{k:06}").into_bytes(),
                        found(&[((i % 5) as u16, 0)], Some(1)),
                    )
                })
                .collect();
            if i == 5 {
                keys.get_mut(&b"000007"[..]).unwrap().md5 = Some([2; 16]);
            }
            runs.spill(&mut keys).unwrap();
            let on_disk = std::fs::read_dir(&spill_dir).unwrap().count();
            assert_eq!(on_disk, runs.runs.len());
            assert!(on_disk < 3 * FAN_IN, "{on_disk} runs after {i} spills");
        }
        let levels: Vec<u32> = runs.runs.iter().map(|r| r.1).collect();
        assert_eq!(levels.iter().filter(|&&l| l == 2).count(), 1, "{levels:?}");
        assert_eq!(levels.iter().filter(|&&l| l == 1).count(), 3, "{levels:?}");
        assert_eq!(levels.iter().filter(|&&l| l == 0).count(), 5, "{levels:?}");

        let mut merge = runs.merge().unwrap();
        let mut count = 0;
        for (n, record) in merge.by_ref().enumerate() {
            let (key, found) = record.unwrap();
            assert_eq!(key, format!("{n:06}").into_bytes());
            let seen_by = (n.saturating_sub(9)..=n.min(spills - 1)).count();
            assert_eq!(found.replicas.len(), seen_by.min(5), "key {n}");
            count += 1;
        }
        assert_eq!(count, spills + 9);
        assert_eq!(merge.disagreements, vec![b"000007".to_vec()]);
    }

    #[test]
    fn a_cut_run_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Runs::new(dir.path().join("runs"));
        let mut keys = BTreeMap::new();
        keys.insert(b"key".to_vec(), found(&[(0, 1)], Some(1)));
        runs.spill(&mut keys).unwrap();
        let path = dir.path().join("runs").join("run-0");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = runs.merge().err().expect("a cut record");
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }
}
