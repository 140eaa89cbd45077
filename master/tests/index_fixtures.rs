//! docs/index-and-placement.md, "Compatibility of the index": the index
//! opens LevelDB folders written by the original (goleveldb, both
//! as it left them — everything in the journal — and fully compacted into
//! snappy tables) and finds exactly the records they hold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mkv::index::{Durability, Index, Write};
use mkv::record::Record;

fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    std::fs::create_dir(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        std::fs::copy(e.path(), &to).unwrap();
        // The copies must be writable by their owner (LevelDB opens them so).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    (tmp, dst)
}

fn expected() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/goleveldb-records.json");
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(map.len(), 206);
    map
}

fn all_records(index: &Index) -> BTreeMap<String, String> {
    let mut got = BTreeMap::new();
    index
        .scan(b"", b"", |k, v| {
            got.insert(
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            );
            true
        })
        .unwrap();
    got
}

fn opens_with_exact_records(name: &str) {
    let (_tmp, dir) = fixture_copy(name);
    let want = expected();
    let index = Index::open(&dir, false).unwrap();
    assert_eq!(all_records(&index), want);
    for (k, v) in &want {
        assert_eq!(
            index.get_raw_blocking(k.as_bytes()).unwrap().as_deref(),
            Some(v.as_bytes()),
            "{k}"
        );
        let rec = Record::decode(v.as_bytes()).unwrap();
        assert_eq!(
            rec.encode(),
            v.as_bytes(),
            "{k} re-encodes to the same bytes"
        );
    }
    assert!(
        index.get_blocking(b"/fixture/key-0007").unwrap().is_none(),
        "the deleted key stays deleted"
    );
    for unlinked in [
        "/fixture/key-0005",
        "/fixture/key-0006",
        "/fixture/key-0100",
    ] {
        assert!(
            index
                .get_blocking(unlinked.as_bytes())
                .unwrap()
                .unwrap()
                .deleted,
            "{unlinked}"
        );
    }
    let slashy = index.get_blocking(b"/???").unwrap().unwrap();
    assert_eq!(
        slashy.hash.as_deref(),
        Some("022562cbfc8b12f9ae7b291a7b21f2e8")
    );

    // Writes on top of the original's files survive a reopen.
    let rec = Record::live(vec!["localhost:3001/sv00".into()], None);
    index
        .apply_blocking(
            vec![
                Write::Put(b"/added".to_vec(), rec.encode()),
                Write::Delete(b"/a b".to_vec()),
            ],
            Durability::Synced,
        )
        .unwrap();
    drop(index);
    let index = Index::open(&dir, false).unwrap();
    let mut want = want;
    want.insert("/added".into(), "localhost:3001/sv00".into());
    want.remove("/a b");
    assert_eq!(all_records(&index), want);
}

#[test]
fn journal_fixture() {
    opens_with_exact_records("goleveldb-journal");
}

#[test]
fn tables_fixture() {
    opens_with_exact_records("goleveldb-tables");
}

#[test]
fn prefix_scans_page_through_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::open(&tmp.path().join("db"), true).unwrap();
    let ops: Vec<Write> = (0..5000)
        .map(|i| Write::Put(format!("/p/{i:05}").into_bytes(), b"v".to_vec()))
        .chain([
            Write::Put(b"/o".to_vec(), b"v".to_vec()),
            Write::Put(b"/q".to_vec(), b"v".to_vec()),
        ])
        .collect();
    index.apply_blocking(ops, Durability::Relaxed).unwrap();
    let mut keys = Vec::new();
    index
        .scan(b"/p/", b"", |k, _| {
            keys.push(k.to_vec());
            true
        })
        .unwrap();
    assert_eq!(keys.len(), 5000);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    let mut from_start = Vec::new();
    index
        .scan(b"/p/", b"/p/04990", |k, _| {
            from_start.push(k.to_vec());
            true
        })
        .unwrap();
    assert_eq!(from_start.len(), 10);
    // A start before the prefix does not leak keys outside it.
    let mut early = 0;
    index
        .scan(b"/p/", b"/a", |_, _| {
            early += 1;
            true
        })
        .unwrap();
    assert_eq!(early, 5000);
    let mut stopped = 0;
    index
        .scan(b"", b"", |_, _| {
            stopped += 1;
            stopped < 3
        })
        .unwrap();
    assert_eq!(stopped, 3);
}

/// The real server on the original's index lists exactly its live keys, and
/// exactly its unlinked ones.
fn server_lists_fixture(name: &str) {
    let (tmp, dir) = fixture_copy(name);
    let volumes = "localhost:3001,localhost:3002,localhost:3003,localhost:3004,localhost:3005";
    let mut cmd = testkit::proc::mkv_command(env!("CARGO_BIN_EXE_mkv"), volumes, &dir);
    cmd.arg("server");
    let server = testkit::Proc::start("mkv", cmd, &tmp.path().join("logs"));
    let want = expected();
    let keys_where = |deleted: bool| -> Vec<String> {
        want.iter()
            .filter(|(_, v)| v.starts_with("DELETED") == deleted)
            .map(|(k, _)| k.clone())
            .collect()
    };
    let list = |query: &str| -> Vec<String> {
        let r = testkit::client::request(server.addr(), "GET", query, &[], b"");
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list("/?list"), keys_where(false));
    assert_eq!(
        list("/?unlinked"),
        vec![
            "/fixture/key-0005",
            "/fixture/key-0006",
            "/fixture/key-0100"
        ]
    );
    assert_eq!(
        list("/fixture/key-00?list&limit=3"),
        vec![
            "/fixture/key-0000",
            "/fixture/key-0001",
            "/fixture/key-0002"
        ]
    );
    // A soft-deleted key is a 404 (with its hash, as the original answers).
    let r = testkit::client::request(server.addr(), "GET", "/fixture/key-0005", &[], b"");
    assert_eq!(
        (r.status, r.header("content-md5")),
        (404, Some("a16fa6450d7609c8fdb0a33645f4017d"))
    );
    assert_eq!(
        testkit::client::request(server.addr(), "GET", "/fixture/key-0007", &[], b"").status,
        404
    );
}

#[test]
fn server_on_journal_fixture() {
    server_lists_fixture("goleveldb-journal");
}

#[test]
fn server_on_tables_fixture() {
    server_lists_fixture("goleveldb-tables");
}

#[test]
fn listing_over_a_million_keys_needs_a_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    {
        let index = Index::open(&db, false).unwrap();
        for batch in 0..101 {
            let ops = (0..10_000)
                .map(|i| {
                    Write::Put(
                        format!("/many/{batch:03}/{i:05}").into_bytes(),
                        b"localhost:3001".to_vec(),
                    )
                })
                .collect();
            index.apply_blocking(ops, Durability::Relaxed).unwrap();
        }
    }
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mkv"));
    cmd.args([
        "-port",
        "0",
        "-bind",
        "127.0.0.1",
        "-replicas",
        "1",
        "-volumes",
        "localhost:3001",
        "-db",
    ])
    .arg(&db)
    .arg("server");
    let server = testkit::Proc::start("mkv", cmd, &tmp.path().join("logs"));
    assert_eq!(
        testkit::client::request(server.addr(), "GET", "/many/?list", &[], b"").status,
        413
    );
    let page = testkit::client::request(
        server.addr(),
        "GET",
        "/many/?list&limit=2&start=/many/100/09999",
        &[],
        b"",
    );
    assert_eq!(page.text(), r#"{"next":"","keys":["/many/100/09999"]}"#);
}
