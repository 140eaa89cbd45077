//! The database against a model (a sorted map), under writes that make
//! many small tables: keys written in order (narrow memtables, which may
//! go below level 0), keys at random (wide ones), overwrites and deletes,
//! with flushes and compactions all along. Every read must answer what the
//! model holds, before and after the database is reopened.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::options::{self, Options};
use crate::test_util::LdbIteratorIter;
use crate::DB;

const KEYS: u32 = 3000;

fn key(n: u32) -> Vec<u8> {
    format!("k{n:06}").into_bytes()
}

fn small_tables() -> Options {
    Options {
        write_buffer_size: 2 << 10,
        max_file_size: 8 << 10,
        ..options::for_test()
    }
}

/// One of the write patterns, `n` writes long.
fn write_some(db: &mut DB, model: &mut BTreeMap<Vec<u8>, Vec<u8>>, rng: &mut StdRng, op: &mut u64) {
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

fn check_gets(db: &mut DB, model: &BTreeMap<Vec<u8>, Vec<u8>>, rng: &mut StdRng, n: usize) {
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

fn check_all(db: &mut DB, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let mut it = db.new_iter().unwrap();
    let got: Vec<(Vec<u8>, Vec<u8>)> = LdbIteratorIter::wrap(&mut it)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "a scan differs from the model");
    for (k, v) in model {
        assert_eq!(
            db.get(k).map(|v| v.to_vec()).as_ref(),
            Some(v),
            "get {}",
            String::from_utf8_lossy(k)
        );
    }
}

#[test]
fn reads_answer_the_latest_write() {
    for seed in 0..6u64 {
        let opt = small_tables();
        let mut db = DB::open("model", opt.clone()).unwrap();
        let mut model = BTreeMap::new();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut op = 0;
        for round in 0..60 {
            write_some(&mut db, &mut model, &mut rng, &mut op);
            check_gets(&mut db, &model, &mut rng, 40);
            if round % 20 == 19 {
                check_all(&mut db, &model);
            }
        }
        check_all(&mut db, &model);
        db.close().unwrap();
        let mut db = DB::open("model", opt).unwrap();
        check_all(&mut db, &model);
    }
}
