//! docs/index-and-placement.md, "Compatibility of the index": the original
//! must be able to open our index: goleveldb (Debian's
//! packaging of the library the original master uses) reads what we wrote,
//! log and snappy tables alike, and finds exactly our records.

mod common;

use std::collections::BTreeMap;

use mkv::index::{Durability, Index, Write};
use mkv::record::Record;

#[test]
#[cfg_attr(
    not(mkv_all_tests),
    ignore = "needs Go and Debian's goleveldb (MKV_ALL_TESTS=1)"
)]
fn goleveldb_opens_our_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dumper = common::build_goleveldb_dumper(tmp.path());
    let db = tmp.path().join("index");
    let mut want = BTreeMap::new();
    {
        let index = Index::open(&db, false).unwrap();
        // Enough data to fill several memtables, so that LevelDB writes
        // snappy tables and runs compactions, not only its log.
        for round in 0..6 {
            let mut ops = Vec::new();
            for i in 0..10_000 {
                let key = format!("/bulk/{round}/{i:05}/{}", "x".repeat(40));
                let rec = Record::live(
                    vec![format!("localhost:300{}/sv0{}", i % 5 + 1, i % 10)],
                    Some(format!("{:032x}", i)),
                );
                want.insert(key.clone(), String::from_utf8(rec.encode()).unwrap());
                ops.push(Write::Put(key.into_bytes(), rec.encode()));
            }
            index.apply_blocking(ops, Durability::Relaxed).unwrap();
        }
        let odd = ["/???", "/a b", "/unicodé/ключ/鍵", "/plus+sign", "/~tilde"];
        for (i, key) in odd.iter().enumerate() {
            let rec = Record {
                deleted: i == 1,
                hash: None,
                volumes: vec!["localhost:3001/sv07".into()],
            };
            want.insert(key.to_string(), String::from_utf8(rec.encode()).unwrap());
            index
                .apply_blocking(
                    vec![Write::Put(key.as_bytes().to_vec(), rec.encode())],
                    Durability::Synced,
                )
                .unwrap();
        }
        let gone = "/bulk/0/00007/".to_string() + &"x".repeat(40);
        want.remove(&gone);
        index
            .apply_blocking(vec![Write::Delete(gone.into_bytes())], Durability::Synced)
            .unwrap();
    }
    let tables = std::fs::read_dir(&db).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "ldb")
    });
    assert!(
        tables.count() > 0,
        "the test should make LevelDB write tables"
    );
    assert_eq!(common::goleveldb_dump(&dumper, &db), want);
}
