//! Scans of read views against a model of the database and against the
//! database's own iterator, through memtables, flushes and compactions.

use crate::options::Options;
use crate::read_view::ViewReader;
use crate::test_util::TempDir;
use crate::types::LdbIterator;
use crate::DB;

use std::collections::BTreeMap;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn open(dir: &TempDir) -> DB {
    let opt = Options {
        write_buffer_size: 16 << 10,
        compressor: 1,
        ..Options::default()
    };
    DB::open(&dir.0, opt).unwrap()
}

/// Every key with `prefix` from `from` on, taking a new view wherever one
/// ends at its limit, as the index's scan does.
fn scan(db: &mut DB, reader: &mut ViewReader, prefix: &[u8], from: &[u8], max: usize) -> Pairs {
    let mut out = Vec::new();
    let mut from = from.max(prefix).to_vec();
    loop {
        let view = db.read_view(&from, prefix, max).unwrap();
        let mut it = reader.iter(&view).unwrap();
        it.seek(&from);
        while let Some((k, v)) = it.current() {
            if !k.starts_with(prefix) {
                return out;
            }
            out.push((k.to_vec(), v.to_vec()));
            it.advance();
        }
        assert!(!it.failed());
        match view.limit() {
            Some(limit) => from = limit.to_vec(),
            None => return out,
        }
    }
}

fn expected(model: &BTreeMap<Vec<u8>, Vec<u8>>, prefix: &[u8], from: &[u8]) -> Pairs {
    let from = from.max(prefix).to_vec();
    model
        .range(from..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn db_iter(db: &mut DB, prefix: &[u8], from: &[u8]) -> Pairs {
    let mut it = db.new_iter().unwrap();
    it.seek(from.max(prefix));
    let mut out = Vec::new();
    while let Some((k, v)) = it.current_ref() {
        if !k.starts_with(prefix) {
            break;
        }
        out.push((k.to_vec(), v.to_vec()));
        it.advance();
    }
    out
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn views_scan_what_the_database_holds() {
    let dir = TempDir::new("read-view-model");
    let mut db = open(&dir);
    let mut reader = ViewReader::new(dir.0.clone(), 16, 64);
    let mut model = BTreeMap::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..12 {
        for _ in 0..700 {
            let key = format!(
                "{}/{:04}",
                ["a", "b", "c"][rng.below(3) as usize],
                rng.below(500)
            );
            if rng.below(4) == 0 {
                db.delete(key.as_bytes()).unwrap();
                model.remove(key.as_bytes());
            } else {
                let value = vec![b'a' + (round as u8); rng.below(300) as usize];
                db.put(key.as_bytes(), &value).unwrap();
                model.insert(key.into_bytes(), value);
            }
        }
        if round == 5 {
            db.compact_range(b"a", b"z").unwrap();
        }
        for (prefix, from) in [
            (&b"b/"[..], &b""[..]),
            (b"a/", b"a/0250"),
            (b"", b""),
            (b"c/", b"c/0499x"),
        ] {
            let want = expected(&model, prefix, from);
            assert_eq!(db_iter(&mut db, prefix, from), want, "round {round}");
            for max in [1, 7, 100_000] {
                let got = scan(&mut db, &mut reader, prefix, from, max);
                assert_eq!(got, want, "round {round}, prefix {prefix:?}, max {max}");
            }
        }
    }
}

#[test]
fn a_view_sees_the_moment_it_was_taken_or_fails() {
    let dir = TempDir::new("read-view-moment");
    let mut db = open(&dir);
    for i in 0..2000u32 {
        db.put(format!("k{i:05}").as_bytes(), b"old").unwrap();
    }
    let mut reader = ViewReader::new(dir.0.clone(), 64, 64);
    let view = db.read_view(b"k", b"k", 100_000).unwrap();
    // Every table of the view opened before the writes below compact them
    // away; then one taken before, its tables never opened.
    assert_eq!(scan(&mut db, &mut reader, b"k", b"k", 100_000).len(), 2000);
    let unopened = db.read_view(b"k", b"k", 100_000).unwrap();
    let mut fresh = ViewReader::new(dir.0.clone(), 64, 64);
    for i in 0..2000u32 {
        db.put(format!("k{i:05}").as_bytes(), b"new").unwrap();
    }
    db.delete(b"k00007").unwrap();
    db.compact_range(b"k", b"l").unwrap();
    let mut it = reader.iter(&view).unwrap();
    it.seek(b"k");
    let mut n = 0;
    while let Some((_, v)) = it.current() {
        assert_eq!(v, b"old");
        n += 1;
        it.advance();
    }
    assert!(!it.failed());
    assert_eq!(n, 2000);
    drop(it);
    // The view whose tables are gone: an error, or a scan that says it
    // failed — never a short scan that looks whole.
    if let Ok(mut it) = fresh.iter(&unopened) {
        it.seek(b"k");
        let mut n = 0;
        while let Some((_, v)) = it.current() {
            assert_eq!(v, b"old");
            n += 1;
            it.advance();
        }
        assert!(it.failed() || n == 2000, "{n} keys, no failure");
    }
    // A new view sees the new values, and the old tables are let go.
    let got = scan(&mut db, &mut reader, b"k", b"k", 100_000);
    assert_eq!(got.len(), 1999);
    assert!(got.iter().all(|(_, v)| v == b"new"));
}
