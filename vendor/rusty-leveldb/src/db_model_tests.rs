//! The database against a model (a sorted map), under writes that make
//! many small tables: keys written in order (narrow memtables, which may
//! go below level 0), keys at random (wide ones), overwrites and deletes,
//! with flushes and compactions all along. Every read must answer what the
//! model holds, before and after the database is reopened: gets, scans from
//! random places that skip ahead as a listing with a delimiter does, and
//! scans of read views.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::options::Options;
use crate::read_view::ViewReader;
use crate::snapshot::Snapshot;
use crate::test_util::LdbIteratorIter;
use crate::test_util::TempDir;
use crate::types::LdbIterator;
use crate::DB;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const KEYS: u32 = 3000;

fn key(n: u32) -> Vec<u8> {
    format!("k{n:06}").into_bytes()
}

fn small_tables() -> Options {
    Options {
        write_buffer_size: 2 << 10,
        max_file_size: 8 << 10,
        compressor: 1,
        ..Options::default()
    }
}

/// One of the write patterns, `n` writes long.
fn write_some(db: &mut DB, model: &mut Model, rng: &mut StdRng, op: &mut u64) {
    let pattern = rng.gen_range(0..4);
    let start = rng.gen_range(0..KEYS);
    for i in 0..rng.gen_range(1..200u32) {
        *op += 1;
        let k = match pattern {
            // In order, from a random place: a narrow memtable.
            0 | 1 => key((start + i) % KEYS),
            // Anywhere.
            2 => key(rng.gen_range(0..KEYS)),
            // Every seventh key from the start, some deleted.
            _ => key((start + 7 * i) % KEYS),
        };
        if pattern == 3 && rng.gen_bool(0.3) {
            db.delete(&k).unwrap();
            model.remove(&k);
        } else {
            let v = format!("v{op}").into_bytes();
            db.put(&k, &v).unwrap();
            model.insert(k, v);
        }
    }
}

fn check_gets(db: &mut DB, model: &Model, rng: &mut StdRng, n: usize) {
    for _ in 0..n {
        let k = key(rng.gen_range(0..KEYS));
        let got = db.get(&k).map(|v| v.to_vec());
        assert_eq!(
            got.as_ref(),
            model.get(&k),
            "get {}",
            String::from_utf8_lossy(&k)
        );
    }
}

fn check_all(db: &mut DB, model: &Model) {
    let mut it = db.new_iter().unwrap();
    let got: Vec<(Vec<u8>, Vec<u8>)> = LdbIteratorIter::wrap(&mut it)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        let show = |e: Option<&(Vec<u8>, Vec<u8>)>| {
            e.map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            })
        };
        panic!(
            "a scan differs from the model at {i}: {:?} where {:?} is",
            show(got.get(i)),
            show(want.get(i))
        );
    }
    for (k, v) in model {
        assert_eq!(
            db.get(k).map(|v| v.to_vec()).as_ref(),
            Some(v),
            "get {}",
            String::from_utf8_lossy(k)
        );
    }
}

/// Where a scan that skips ahead goes after `k`: past every key that
/// shares its first `n` bytes, as a listing past a common prefix does.
fn skip_past(k: &[u8], n: usize) -> Vec<u8> {
    let mut to = k[..n.min(k.len())].to_vec();
    to.push(0xff);
    to
}

/// Up to `n` entries from `from`, skipping ahead after every key whose
/// number ends in 3 (the model's answer to compare with).
fn expected(model: &Model, from: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = from.to_vec();
    while out.len() < n {
        let Some((k, _)) = model.range(at.clone()..).next() else {
            break;
        };
        out.push(k.clone());
        at = if k.ends_with(b"3") {
            skip_past(k, 6)
        } else {
            [k.as_slice(), b"\0"].concat()
        };
    }
    out
}

fn check_seeks(db: &mut DB, model: &Model, rng: &mut StdRng, n: usize) {
    for _ in 0..n {
        let from = key(rng.gen_range(0..KEYS));
        let want = expected(model, &from, 30);
        let mut it = db.new_iter().unwrap();
        it.seek(&from);
        let mut got = Vec::new();
        while let Some((k, _)) = it.current_ref() {
            if got.len() == want.len() {
                break;
            }
            got.push(k.to_vec());
            if k.ends_with(b"3") {
                let to = skip_past(k, 6);
                it.seek(&to);
            } else {
                it.advance();
            }
        }
        assert_eq!(got, want, "scan from {}", String::from_utf8_lossy(&from));
    }
}

/// A scan of read views from `from` to the end, views of at most `max`
/// memtable entries (a new one wherever one ends at its limit).
fn check_views(db: &mut DB, reader: &mut ViewReader, model: &Model, from: &[u8], max: usize) {
    let mut got = Vec::new();
    let mut at = from.to_vec();
    loop {
        let view = db.read_view(&at, b"", max).unwrap();
        let mut it = reader.iter(&view).unwrap();
        it.seek(&at);
        while let Some((k, v)) = it.current() {
            got.push((k.to_vec(), v.to_vec()));
            it.advance();
        }
        assert!(!it.failed());
        match view.limit() {
            Some(limit) => at = limit.to_vec(),
            None => break,
        }
    }
    let want: Vec<(Vec<u8>, Vec<u8>)> = model
        .range(from.to_vec()..)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(
        got == want,
        "a view scan from {} differs from the model",
        String::from_utf8_lossy(from)
    );
}

fn check_snapshot(db: &mut DB, snap: &Snapshot, then: &Model, rng: &mut StdRng) {
    for _ in 0..40 {
        let k = key(rng.gen_range(0..KEYS));
        let got = db.get_at(snap, &k).unwrap().map(|v| v.to_vec());
        assert_eq!(
            got.as_ref(),
            then.get(&k),
            "get {} at a snapshot",
            String::from_utf8_lossy(&k)
        );
    }
    let mut it = db.new_iter_at(snap.clone()).unwrap();
    let from = key(rng.gen_range(0..KEYS));
    it.seek(&from);
    for (k, v) in then.range(from.clone()..).take(50) {
        let (gk, gv) = it.current_ref().expect("a scan at a snapshot ends early");
        assert_eq!(
            (gk, gv),
            (k.as_slice(), v.as_slice()),
            "a scan at a snapshot"
        );
        it.advance();
    }
}

#[test]
fn reads_answer_the_latest_write() {
    for seed in 0..8u64 {
        let dir = TempDir::new(&format!("db-model-{seed}"));
        let mut db = DB::open(&dir.0, small_tables()).unwrap();
        let mut reader = ViewReader::new(dir.0.clone(), 16, 64);
        let mut model = BTreeMap::new();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut op = 0;
        // A snapshot held over some rounds, with the model as it was: older
        // entries kept through compactions, so that a level's neighbouring
        // tables can share a key.
        let mut held: Option<(Snapshot, Model)> = None;
        for round in 0..60 {
            if round % 10 == 3 {
                held = Some((db.get_snapshot(), model.clone()));
            }
            write_some(&mut db, &mut model, &mut rng, &mut op);
            check_gets(&mut db, &model, &mut rng, 40);
            check_seeks(&mut db, &model, &mut rng, 4);
            if let Some((snap, then)) = &held {
                check_snapshot(&mut db, snap, then, &mut rng);
            }
            if round % 10 == 8 {
                held = None;
            }
            if round == 30 {
                // Reopened halfway (the log replayed into new tables), and a
                // range compacted by hand.
                db.close().unwrap();
                db = DB::open(&dir.0, small_tables()).unwrap();
                let a = rng.gen_range(0..KEYS);
                db.compact_range(&key(a), &key((a + 500).min(KEYS)))
                    .unwrap();
            }
            if round % 20 == 19 {
                check_all(&mut db, &model);
                let from = key(rng.gen_range(0..KEYS));
                for max in [5, 100_000] {
                    check_views(&mut db, &mut reader, &model, &from, max);
                }
            }
        }
        check_all(&mut db, &model);
        db.close().unwrap();
        let mut db = DB::open(&dir.0, small_tables()).unwrap();
        check_all(&mut db, &model);
        check_views(&mut db, &mut reader, &model, b"", 100_000);
    }
}
