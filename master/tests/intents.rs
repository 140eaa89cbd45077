//! The write-intent protocol (docs/crash-safety.md): the states a crash can
//! leave between an intent and its commit, made by hand on real volumes and
//! a real index, are undone by the master's journal at start, and the
//! journal stays quiet about writes that are merely under way.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{split_url, Backend, Cluster};
use mkv::index::{Durability, Index, Write};
use mkv::meta::{self, Intent, LegacyInstall};
use mkv::placement::{key2path, key2volume};
use mkv::record::Record;
use testkit::client::{request, Client};
use testkit::eventually;

const KEY: &[u8] = b"/b/k";
const STAGE: &str = "/.mkv-parts/t1.stage";
const BACKUP: &str = "/.mkv-parts/t1.old";

/// `http://replica/path` split into an address and a path.
fn on(replica: &str, path: &str) -> (std::net::SocketAddr, String) {
    split_url(&format!("http://{replica}{path}"))
}

fn put_on(replica: &str, path: &str, body: &[u8]) {
    let (addr, path) = on(replica, path);
    let status = request(addr, "PUT", &path, &[], body).status;
    assert!(matches!(status, 201 | 204), "PUT {replica}{path}: {status}");
}

fn get_on(replica: &str, path: &str) -> Option<Vec<u8>> {
    let (addr, path) = on(replica, path);
    let r = request(addr, "GET", &path, &[], b"");
    (r.status == 200).then_some(r.body)
}

/// The index at `db`, opened as a tool. Over PostgreSQL a master just
/// killed may still hold its place among the users for a moment (until
/// the database sees its socket closed): the open is tried again meanwhile.
fn open_index(db: &Path) -> std::sync::Arc<Index> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Index::open(db, false) {
            Ok(index) => return index,
            Err(e) if e.to_string().contains("in use") && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("open index: {e:?}"),
        }
    }
}

fn write_index(db: &Path, ops: Vec<Write>) {
    let index = open_index(db);
    index
        .apply_blocking(ops, Durability::Synced)
        .expect("write");
    index.close();
}

fn read_index(db: &Path, key: &[u8]) -> Option<Vec<u8>> {
    let index = open_index(db);
    let raw = index.get_raw_blocking(key).unwrap().map(|b| b.to_vec());
    index.close();
    raw
}

/// What a crash left in the index: the key's record and an intent.
fn crash_left(c: &Cluster, rec: &Record, intent: &Intent) {
    let ops = vec![
        Write::Put(KEY.to_vec(), rec.encode()),
        meta::put_op(meta::intent_key(KEY), intent),
    ];
    write_index(&c.db, ops);
}

/// The master serves the old value.
fn serves_old(c: &Cluster) {
    let got = common::fetch(c.addr(), "/b/k");
    assert_eq!(got.as_deref(), Some(&b"old"[..]));
}

/// Three volumes, two replicas a key: the key's replicas and the volume
/// that is not one.
fn cluster(backend: Backend) -> (Cluster, Vec<String>, String) {
    let c = Cluster::volumes_only(&[backend; 3], &["-replicas", "2"]);
    let names: Vec<String> = c.volumes.iter().map(|v| v.name()).collect();
    let replicas = key2volume(KEY, &names, 2, 10);
    let other = names
        .iter()
        .find(|n| !replicas.iter().any(|r| r.starts_with(n.as_str())))
        .map(|n| format!("{n}/sv00"))
        .unwrap();
    (c, replicas, other)
}

/// Nothing staged or kept aside is left on any volume.
fn no_staging_files(c: &Cluster) -> bool {
    !c.files().iter().any(|f| f.contains(".mkv-parts/"))
}

/// The master restarted after a crash, its journal finished (it says so
/// once the intent is removed); the intent record `record` is gone from the
/// index.
fn journal_settles(c: &mut Cluster, record: &[u8]) {
    c.start_master();
    let db = c.db.clone();
    let logs = || c.master.as_ref().unwrap().logs();
    assert!(
        eventually(Duration::from_secs(20), || logs()
            .contains("undid an unfinished write")),
        "{}",
        logs()
    );
    assert!(no_staging_files(c), "left: {:?}", c.files());
    c.kill_master();
    assert_eq!(read_index(&db, record), None, "the intent is settled");
    c.start_master();
}

/// An S3 overwrite cut off after one replica exchanged the staged value
/// for the old one and before the commit: the old value is back on every
/// replica.
fn crashed_install_is_undone(backend: Backend) {
    let (mut c, replicas, _) = cluster(backend);
    let path = key2path(KEY);
    let old = Record::live(replicas.clone(), None);
    put_on(&replicas[0], BACKUP, b"old");
    put_on(&replicas[0], &path, b"new");
    put_on(&replicas[1], &path, b"old");
    put_on(&replicas[1], STAGE, b"new");
    let intent = Intent::install(&replicas, Some(&old), STAGE, BACKUP);
    crash_left(&c, &old, &intent);
    journal_settles(&mut c, &meta::intent_key(KEY));
    for r in &replicas {
        assert_eq!(get_on(r, &path).as_deref(), Some(&b"old"[..]), "{r}");
    }
    serves_old(&c);
}

/// An install whose new replicas are not where the old value is (the
/// volumes changed since it was written): undone, the old replicas keep
/// their files, which the record still names.
fn undone_install_keeps_old_replicas(backend: Backend) {
    let (mut c, replicas, other) = cluster(backend);
    let path = key2path(KEY);
    let old = Record::live(vec![other.clone()], None);
    put_on(&other, &path, b"old");
    put_on(&replicas[0], &path, b"new");
    put_on(&replicas[1], STAGE, b"new");
    let intent = Intent::install(&replicas, Some(&old), STAGE, BACKUP);
    crash_left(&c, &old, &intent);
    journal_settles(&mut c, &meta::intent_key(KEY));
    assert_eq!(get_on(&other, &path).as_deref(), Some(&b"old"[..]));
    for r in &replicas {
        assert_eq!(get_on(r, &path), None, "{r} had no old value");
    }
    serves_old(&c);
}

/// A rebalance's copy made and not yet recorded: removed; the record and
/// its replica untouched.
fn crashed_move_is_undone(backend: Backend) {
    let (mut c, replicas, other) = cluster(backend);
    let path = key2path(KEY);
    let rec = Record::live(vec![other.clone()], None);
    put_on(&other, &path, b"old");
    put_on(&replicas[0], &path, b"old");
    crash_left(&c, &rec, &Intent::moving(&replicas[..1]));
    journal_settles(&mut c, &meta::intent_key(KEY));
    assert_eq!(
        get_on(&replicas[0], &path),
        None,
        "the unrecorded copy stayed"
    );
    c.kill_master();
    assert_eq!(read_index(&c.db, &meta::intent_key(KEY)), None);
    assert_eq!(read_index(&c.db, KEY), Some(rec.encode()));
    c.start_master();
    serves_old(&c);
}

/// An install recorded as versions before the shared intent record kept
/// installs (`j` + id) is undone the same way, and its record removed.
fn legacy_install_is_undone(backend: Backend) {
    let (mut c, replicas, _) = cluster(backend);
    let path = key2path(KEY);
    put_on(&replicas[0], BACKUP, b"old");
    put_on(&replicas[0], &path, b"new");
    put_on(&replicas[1], &path, b"old");
    let legacy = LegacyInstall {
        key: KEY.to_vec(),
        replicas: replicas.clone(),
        old: replicas.clone(),
        stage: STAGE.into(),
        backup: BACKUP.into(),
    };
    let record = b"jt1".to_vec();
    write_index(
        &c.db,
        vec![
            Write::Put(KEY.to_vec(), Record::live(replicas.clone(), None).encode()),
            meta::put_op(record.clone(), &legacy),
        ],
    );
    journal_settles(&mut c, &record);
    for r in &replicas {
        assert_eq!(get_on(r, &path).as_deref(), Some(&b"old"[..]), "{r}");
    }
}

on_both_backends!(
    crashed_install_is_undone,
    undone_install_keeps_old_replicas,
    crashed_move_is_undone,
    legacy_install_is_undone,
);

/// A PUT whose body takes longer than a journal round: the journal sees its
/// intent with the key's lock held, leaves it alone and logs nothing; the
/// PUT succeeds.
#[test]
fn journal_is_quiet_about_writes_under_way() {
    let mut c = Cluster::start(Backend::VolumeUring, 3, &[]);
    let mut put = Client::connect(c.addr());
    put.send(b"PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello");
    std::thread::sleep(mkv_journal_interval() + Duration::from_secs(1));
    put.send(b"world");
    assert_eq!(put.read_response(false).status, 201);
    assert_eq!(
        common::fetch(c.addr(), "/slow").as_deref(),
        Some(&b"helloworld"[..])
    );
    let logs = c.master.as_ref().unwrap().logs();
    c.kill_master();
    // Neither this version's line for a stuck write nor the one older
    // versions logged for every write in flight.
    for stuck in ["waits for its volumes", "wait for their volumes"] {
        assert!(!logs.contains(stuck), "{logs}");
    }
}

fn mkv_journal_interval() -> Duration {
    mkv::tools::journal::INTERVAL
}
