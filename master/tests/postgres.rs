//! docs/postgres.md: several masters over one PostgreSQL index. Real
//! PostgreSQL servers (Debian's), started in temporary folders on loopback
//! by each test: two masters sharing one index, racing writers split over
//! them, a master killed mid-write and settled by the other, a write whose
//! lock another master took over committing nothing, a streaming
//! standby promoted under writers, the database stopped (and frozen) and
//! back, and `mkv migrate` LevelDB -> PostgreSQL -> LevelDB read by
//! goleveldb.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{fetch, Backend, Cluster};
use testkit::client::{request, Client};
use testkit::postgres::Postgres;
use testkit::{eventually, Proc};

/// Three volumes and an index in `pg`'s database `postgres` (or `url`).
fn cluster_on(url: &str, args: &[&str]) -> Cluster {
    let mut c = Cluster::volumes_only(&[Backend::VolumeUring; 3], args);
    c.db = PathBuf::from(url);
    c
}

fn admin_ready(admin: SocketAddr) -> (u16, String) {
    let r = request(admin, "GET", "/ready", &[], b"");
    (r.status, r.text())
}

/// Keys of `?list` under `prefix`, through `master`.
fn list(master: SocketAddr, prefix: &str, unlinked: bool) -> Vec<String> {
    let q = if unlinked { "unlinked" } else { "list" };
    let r = request(master, "GET", &format!("{prefix}?{q}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs PostgreSQL (MKV_ALL_TESTS=1)")]
fn two_masters_share_one_index() {
    let pg = Postgres::start();
    let c = cluster_on(&pg.url(), &[]);
    let a = c.another_master(&[]);
    let b = c.another_master(&[]);
    let (a, b) = (a.addr(), b.addr());
    assert_eq!(request(a, "PUT", "/s/one", &[], b"first").status, 201);
    assert_eq!(request(a, "PUT", "/s/two", &[], b"second").status, 201);
    // Written through one, read and listed through the other.
    assert_eq!(fetch(b, "/s/one").as_deref(), Some(&b"first"[..]));
    assert_eq!(list(b, "/s/", false), ["/s/one", "/s/two"]);
    // A key the other master made exists for this one too.
    assert_eq!(request(b, "PUT", "/s/one", &[], b"again").status, 403);
    // Unlinked through one, seen unlinked through the other.
    assert_eq!(request(b, "UNLINK", "/s/one", &[], b"").status, 204);
    assert_eq!(request(a, "GET", "/s/one", &[], b"").status, 404);
    assert_eq!(list(a, "/s/", true), ["/s/one"]);
    assert_eq!(list(a, "/s/", false), ["/s/two"]);
    // Deleted through one, gone for both; its files gone.
    assert_eq!(request(a, "DELETE", "/s/one", &[], b"").status, 204);
    assert_eq!(request(a, "DELETE", "/s/two", &[], b"").status, 204);
    assert_eq!(request(b, "GET", "/s/two", &[], b"").status, 404);
    assert!(list(b, "/s/", true).is_empty());
    assert!(c.files().is_empty(), "{:?}", c.files());
    // A miss from one master is not remembered: the other's 201 is seen.
    assert_eq!(request(b, "GET", "/s/late", &[], b"").status, 404);
    assert_eq!(request(a, "PUT", "/s/late", &[], b"late").status, 201);
    assert_eq!(fetch(b, "/s/late").as_deref(), Some(&b"late"[..]));
    // A tool runs alone, as over LevelDB: refused while masters run.
    let (status, out, err) = c.run_tool(&[0, 1, 2], &c.db.clone(), &["rebuild"]);
    assert!(!status.success(), "{out}{err}");
    assert!(err.contains("in use by another process"), "{err}");
    assert_eq!(fetch(a, "/s/late").as_deref(), Some(&b"late"[..]));
}

#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs PostgreSQL (MKV_ALL_TESTS=1)")]
fn sixteen_writers_over_two_masters_race_on_each_key() {
    let pg = Postgres::start();
    let c = cluster_on(&pg.url(), &[]);
    let masters = [c.another_master(&[]), c.another_master(&[])];
    let addrs: Vec<SocketAddr> = masters.iter().map(Proc::addr).collect();
    const KEYS: usize = 40;
    let barrier = Arc::new(Barrier::new(16));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (barrier, addr) = (barrier.clone(), addrs[w % 2]);
            std::thread::spawn(move || {
                barrier.wait();
                (0..KEYS)
                    .map(|k| {
                        let value = format!("writer {w} key {k}").repeat(1000);
                        let key = format!("/race/{k}");
                        // A fresh connection each: a refused PUT's body is
                        // not read, and its connection closed.
                        let status = request(addr, "PUT", &key, &[], value.as_bytes()).status;
                        (k, status, value)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut winners: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for w in writers {
        for (k, status, value) in w.join().unwrap() {
            assert!([201, 403, 409].contains(&status), "key {k}: {status}");
            if status == 201 {
                winners.entry(k).or_default().push(value);
            }
        }
    }
    for k in 0..KEYS {
        let won = winners.get(&k).map_or(0, Vec::len);
        assert_eq!(won, 1, "key {k}: {won} writers got a 201");
        let value = fetch(addrs[k % 2], &format!("/race/{k}"));
        assert_eq!(value.as_deref(), Some(winners[&k][0].as_bytes()), "key {k}");
    }
    // Every lock was let go.
    assert_eq!(pg.psql("SELECT count(*) FROM mkv_locks"), "0");
}

/// Writers over two masters racing PUTs and DELETEs on a few keys: every
/// answer one of the original's, every 201 deleted by exactly one 204 or
/// still there, and no deadlock between the masters' transactions (a
/// claim's transaction and a batch's statement each wait for rows in one
/// statement, in key order).
#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs PostgreSQL (MKV_ALL_TESTS=1)")]
fn puts_and_deletes_racing_over_two_masters_never_deadlock() {
    let pg = Postgres::start();
    let c = cluster_on(&pg.url(), &[]);
    let masters = [c.another_master(&[]), c.another_master(&[])];
    let addrs: Vec<SocketAddr> = masters.iter().map(Proc::addr).collect();
    const KEYS: usize = 8;
    let barrier = Arc::new(Barrier::new(12));
    let writers: Vec<_> = (0..12)
        .map(|w| {
            let (barrier, addr) = (barrier.clone(), addrs[w % 2]);
            std::thread::spawn(move || {
                barrier.wait();
                let mut seen = Vec::new();
                for i in 0..60 {
                    let key = format!("/tangle/{}", (w + i) % KEYS);
                    let put = request(addr, "PUT", &key, &[], b"value").status;
                    let delete = request(addr, "DELETE", &key, &[], b"").status;
                    seen.push((put, delete));
                }
                seen
            })
        })
        .collect();
    let (mut created, mut deleted) = (0, 0);
    for w in writers {
        for (put, delete) in w.join().unwrap() {
            assert!([201, 403, 409].contains(&put), "PUT: {put}");
            assert!([204, 404, 409].contains(&delete), "DELETE: {delete}");
            created += usize::from(put == 201);
            deleted += usize::from(delete == 204);
        }
    }
    let live = (0..KEYS)
        .filter(|k| fetch(addrs[0], &format!("/tangle/{k}")).is_some())
        .count();
    assert!(created > 0);
    assert_eq!(created, deleted + live, "every 201 deleted once, or live");
    assert!(!pg.log().contains("deadlock detected"), "{}", pg.log());
    assert_eq!(pg.psql("SELECT count(*) FROM mkv_locks"), "0");
}

/// A PUT of a key with neither a record nor an intent begins in the commit
/// that takes its lock (docs/postgres.md, "Claims"); a key with either
/// is written as before: an unlinked key again, a live one refused, one a
/// failed write left copies of settled first. No intent or lock is left.
#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs PostgreSQL (MKV_ALL_TESTS=1)")]
fn a_put_claims_a_new_key_and_any_other_goes_as_before() {
    let pg = Postgres::start();
    let c = cluster_on(&pg.url(), &[]);
    let a = c.another_master(&[]);
    let b = c.another_master(&[]);
    let (a, b) = (a.addr(), b.addr());
    let left = |pg: &Postgres| {
        let intents = pg.psql("SELECT count(*) FROM mkv_index WHERE substr(k, 1, 1) = 'w'::bytea");
        (intents, pg.psql("SELECT count(*) FROM mkv_locks"))
    };
    assert_eq!(request(a, "PUT", "/c/new", &[], b"one").status, 201);
    assert_eq!(fetch(b, "/c/new").as_deref(), Some(&b"one"[..]));
    assert_eq!(left(&pg), ("0".into(), "0".into()));
    // A live key: refused, and nothing of the refused write stays.
    assert_eq!(request(b, "PUT", "/c/new", &[], b"two").status, 403);
    assert_eq!(fetch(a, "/c/new").as_deref(), Some(&b"one"[..]));
    assert_eq!(left(&pg), ("0".into(), "0".into()));
    // An unlinked key (a soft record): written again.
    assert_eq!(request(a, "UNLINK", "/c/new", &[], b"").status, 204);
    assert_eq!(request(b, "PUT", "/c/new", &[], b"three").status, 201);
    assert_eq!(fetch(a, "/c/new").as_deref(), Some(&b"three"[..]));
    // A failed write's intent with copies left and no record: the PUT
    // settles it (the copy removed), then writes.
    let volume = c.volume_list().split(',').next().unwrap().to_string();
    let path = mkv::placement::key2path(b"/c/failed");
    let stray = request(volume.parse().unwrap(), "PUT", &path, &[], b"stray");
    assert!([201, 204].contains(&stray.status), "{}", stray.status);
    pg.psql(&format!(
        "INSERT INTO mkv_index VALUES ('w/c/failed'::bytea,          convert_to('{{\"r\":[\"{volume}\"],\"f\":true}}', 'UTF8'))"
    ));
    assert_eq!(request(a, "PUT", "/c/failed", &[], b"four").status, 201);
    assert_eq!(fetch(b, "/c/failed").as_deref(), Some(&b"four"[..]));
    assert_eq!(left(&pg), ("0".into(), "0".into()));
    // Refused before any lock or claim: no body, and an unstorable key.
    assert_eq!(request(a, "PUT", "/c/empty", &[], b"").status, 411);
    assert_eq!(request(b, "GET", "/c/empty", &[], b"").status, 404);
    assert_eq!(left(&pg), ("0".into(), "0".into()));
    // Every file is a live key's.
    let mut files = c.files();
    files.sort();
    assert_eq!(files.len(), 6, "{files:?}");
}

/// The keys the index has a live record of, and whether each has an
/// intent (an unfinished write), read with psql.
fn records(pg: &Postgres) -> (Vec<String>, usize) {
    let live = pg.psql(
        "SELECT convert_from(k, 'UTF8') FROM mkv_index \
         WHERE substr(k, 1, 1) = '/'::bytea ORDER BY k",
    );
    let intents = pg.psql("SELECT count(*) FROM mkv_index WHERE substr(k, 1, 1) = 'w'::bytea");
    (
        live.lines().map(str::to_string).collect(),
        intents.parse().unwrap(),
    )
}

#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs PostgreSQL (MKV_ALL_TESTS=1)")]
fn a_killed_masters_writes_are_settled_by_the_other() {
    let pg = Postgres::start();
    let c = cluster_on(&pg.url(), &[]);
    let mut a = c.another_master(&[]);
    let b = c.another_master(&[]);
    let (a_addr, b_addr) = (a.addr(), b.addr());
    // Finished writes through A, then PUTs half sent when A is killed.
    for i in 0..5 {
        let value = vec![b'0' + i as u8; 300_000];
        assert_eq!(
            request(a_addr, "PUT", &format!("/k/done{i}"), &[], &value).status,
            201
        );
    }
    let mut half_sent = Vec::new();
    for i in 0..6 {
        let mut client = Client::connect(a_addr);
        let head = format!(
            "PUT /k/cut{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            4 << 20
        );
        client.send(head.as_bytes());
        client.send(&vec![b'x'; 1 << 20]);
        half_sent.push(client);
    }
    // The PUTs have begun: their intents are in the index.
    assert!(
        eventually(Duration::from_secs(10), || records(&pg).1 == 6),
        "intents: {}",
        records(&pg).1
    );
    a.kill();
    drop(half_sent);
    // B settles them (its journal, within its interval), although A
    // started them; nothing half-written stays.
    assert!(
        eventually(Duration::from_secs(30), || records(&pg).1 == 0),
        "B did not settle A's writes:\n{}",
        b.logs()
    );
    let (live, _) = records(&pg);
    let done: Vec<String> = (0..5).map(|i| format!("/k/done{i}")).collect();
    assert_eq!(live, done);
    for i in 0..5 {
        assert_eq!(
            fetch(b_addr, &format!("/k/done{i}")),
            Some(vec![b'0' + i as u8; 300_000])
        );
    }
    for i in 0..6 {
        assert_eq!(
            request(b_addr, "GET", &format!("/k/cut{i}"), &[], b"").status,
            404
        );
    }
    // No file without a record: 5 keys, 3 replicas each.
    assert_eq!(c.files().len(), 15, "{:?}", c.files());
    assert_eq!(pg.psql("SELECT count(*) FROM mkv_locks"), "0");
    // mkv rebuild (masters stopped) finds the same.
    drop(b);
    let (status, out, err) = c.run_tool(&[0, 1, 2], &c.db.clone(), &["rebuild"]);
    assert!(status.success(), "{out}{err}");
    assert_eq!(records(&pg).0, done);
}

#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs PostgreSQL (MKV_ALL_TESTS=1)")]
fn a_write_whose_lock_was_taken_over_commits_nothing() {
    let pg = Postgres::start();
    let c = cluster_on(&pg.url(), &[]);
    let master = c.another_master(&[]);
    let addr = master.addr();
    let mut client = Client::connect(addr);
    let size = 4 << 20;
    let head = format!("PUT /f/key HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n");
    client.send(head.as_bytes());
    client.send(&vec![b'x'; 1 << 20]);
    assert!(
        eventually(Duration::from_secs(10), || records(&pg).1 == 1),
        "the PUT did not begin"
    );
    // Another master took the lock over (as if this one's session had
    // been lost): the row names an owner whose session is gone.
    pg.psql("UPDATE mkv_locks SET owner = 12345, token = 1");
    assert_eq!(pg.psql("SELECT owner FROM mkv_locks"), "12345");
    client.send(&vec![b'x'; size - (1 << 20)]);
    let r = client.read_response(false);
    assert_eq!(r.status, 503, "{}", r.text());
    // Nothing of it is visible, now or after the journal settles it (it
    // takes the lock over from the gone owner).
    assert_eq!(request(addr, "GET", "/f/key", &[], b"").status, 404);
    assert!(
        eventually(Duration::from_secs(40), || records(&pg).1 == 0),
        "the intent stayed:\n{}",
        master.logs()
    );
    assert_eq!(request(addr, "GET", "/f/key", &[], b"").status, 404);
    assert!(records(&pg).0.is_empty(), "{:?}", records(&pg).0);
    assert!(c.files().is_empty(), "{:?}", c.files());
    assert_eq!(pg.psql("SELECT count(*) FROM mkv_locks"), "0");
    // The key is writable again.
    assert_eq!(request(addr, "PUT", "/f/key", &[], b"v").status, 201);
    assert_eq!(fetch(addr, "/f/key").as_deref(), Some(&b"v"[..]));
}

/// Writers of unique keys through `masters` until `stop`; the keys that
/// got a 201, and every status seen.
fn write_until(
    masters: Vec<SocketAddr>,
    writers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<(Vec<String>, Vec<u16>)>> {
    (0..writers)
        .map(|w| {
            let (addr, stop) = (masters[w % masters.len()], stop.clone());
            std::thread::spawn(move || {
                let (mut acked, mut statuses) = (Vec::new(), Vec::new());
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("/w/{w}/{i}");
                    i += 1;
                    let value = format!("{key} ").repeat(500);
                    let status = request(addr, "PUT", &key, &[], value.as_bytes()).status;
                    statuses.push(status);
                    if status == 201 {
                        acked.push(key);
                    } else {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                (acked, statuses)
            })
        })
        .collect()
}

#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs PostgreSQL (MKV_ALL_TESTS=1)")]
fn a_standby_promoted_under_writers_loses_no_acknowledged_write() {
    // A synchronous standby: a commit returns once the standby has it.
    let sync = ["-c", "synchronous_standby_names=*", "-c", "fsync=off"];
    let mut primary = Postgres::start_with(&sync);
    let standby = Postgres::standby_of(&primary, &["-c", "fsync=off"]);
    assert!(
        eventually(Duration::from_secs(20), || primary.psql(
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
        ) == "1"),
        "the standby is not synchronous"
    );
    let url = format!(
        "postgres://mkv@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let c = cluster_on(&url, &["-volume-timeout", "3s"]);
    let masters = [c.another_master(&[]), c.another_master(&[])];
    let addrs: Vec<SocketAddr> = masters.iter().map(Proc::addr).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = write_until(addrs.clone(), 8, stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    // The primary dies; the standby takes its place.
    primary.crash();
    standby.promote();
    // Both masters write again, without a restart.
    let started = Instant::now();
    for (i, &m) in addrs.iter().enumerate() {
        let key = format!("/after/{i}");
        assert!(
            eventually(Duration::from_secs(30), || request(
                m,
                "PUT",
                &key,
                &[],
                b"v"
            )
            .status
                == 201),
            "master {i} did not take writes after the failover:\n{}",
            masters[i].logs()
        );
    }
    let recovered = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut statuses = Vec::new();
    for w in writers {
        let (a, s) = w.join().unwrap();
        acked.extend(a);
        statuses.extend(s);
    }
    assert!(acked.len() > 50, "{} writes acknowledged", acked.len());
    assert!(
        statuses.iter().all(|s| [201, 503].contains(s)),
        "statuses: {:?}",
        statuses.iter().filter(|s| **s != 201).collect::<Vec<_>>()
    );
    // Every acknowledged write is readable through both masters.
    for (i, key) in acked.iter().enumerate() {
        let value = fetch(addrs[i % 2], key);
        assert_eq!(
            value.as_deref(),
            Some(format!("{key} ").repeat(500).as_bytes()),
            "{key} was acknowledged, then lost"
        );
    }
    eprintln!(
        "{} writes acknowledged, {} refused (503) around the failover; both masters wrote again {:.1}s after the promotion",
        acked.len(),
        statuses.iter().filter(|s| **s == 503).count(),
        recovered.as_secs_f64()
    );
}

#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs PostgreSQL (MKV_ALL_TESTS=1)")]
fn the_database_stopped_then_back() {
    let mut pg = Postgres::start();
    let mut c = cluster_on(&pg.url(), &["-volume-timeout", "2s"]);
    let admin = testkit::free_port();
    let master = c.another_master(&["-admin-port", &admin.to_string()]);
    let m = master.addr();
    let admin: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    assert_eq!(request(m, "PUT", "/d/kept", &[], b"kept").status, 201);
    assert!(eventually(Duration::from_secs(10), || admin_ready(admin).0 == 200));

    pg.stop();
    for (method, key) in [("PUT", "/d/new"), ("GET", "/d/kept"), ("DELETE", "/d/kept")] {
        let started = Instant::now();
        let r = request(m, method, key, &[], b"v");
        assert_eq!(r.status, 503, "{method} {key}: {}", r.text());
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    let listing = request(m, "GET", "/d/?list", &[], b"");
    assert_eq!(listing.status, 503);
    // An S3 request: an S3 error.
    let s3 = request(
        m,
        "GET",
        "/bucket/key",
        &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
        b"",
    );
    assert_eq!(s3.status, 503, "{}", s3.text());
    assert!(
        s3.text().contains("<Code>ServiceUnavailable</Code>"),
        "{}",
        s3.text()
    );
    assert!(
        eventually(Duration::from_secs(10), || {
            let (status, why) = admin_ready(admin);
            status == 503 && why.contains("the index does not answer")
        }),
        "{:?}",
        admin_ready(admin)
    );

    // Back, without a restart of the master.
    pg.restart(&["-c", "fsync=off"]);
    assert!(
        eventually(Duration::from_secs(20), || request(
            m,
            "PUT",
            "/d/new",
            &[],
            b"new"
        )
        .status
            == 201),
        "{}",
        master.logs()
    );
    assert_eq!(fetch(m, "/d/kept").as_deref(), Some(&b"kept"[..]));
    assert!(eventually(Duration::from_secs(10), || admin_ready(admin).0 == 200));

    // Frozen (every process stopped): answers within the timeout still.
    let frozen = pg.freeze();
    let started = Instant::now();
    let r = request(m, "GET", "/d/kept", &[], b"");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    drop(frozen);
    assert!(
        eventually(Duration::from_secs(30), || request(
            m,
            "GET",
            "/d/kept",
            &[],
            b""
        )
        .status
            == 302),
        "{}",
        master.logs()
    );
    c.kill_master();
}

#[test]
#[cfg_attr(
    not(mkv_all_tests),
    ignore = "needs PostgreSQL, Go and Debian's goleveldb (MKV_ALL_TESTS=1)"
)]
fn migrate_leveldb_to_postgres_and_back() {
    let pg = Postgres::start();
    let mut c = Cluster::start(Backend::VolumeUring, 3, &[]);
    let m = c.addr();
    for i in 0..30 {
        let value = format!("value {i}").repeat(100);
        assert_eq!(
            request(m, "PUT", &format!("/mig/{i}"), &[], value.as_bytes()).status,
            201
        );
    }
    assert_eq!(request(m, "UNLINK", "/mig/3", &[], b"").status, 204);
    c.kill_master();
    let tmp = tempfile::tempdir().unwrap();
    let dumper = common::build_goleveldb_dumper(tmp.path());
    let before = common::goleveldb_dump(&dumper, &c.db);
    assert!(before.len() >= 60, "{} records", before.len());

    let leveldb = c.db.clone();
    let mkv = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mkv"))
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, out) = mkv(&[
        "migrate",
        "-from",
        leveldb.to_str().unwrap(),
        "-to",
        &pg.url(),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("copied {} records", before.len())),
        "{out}"
    );
    // Into a database that is not empty: refused, nothing changed.
    let (ok, out) = mkv(&[
        "migrate",
        "-from",
        leveldb.to_str().unwrap(),
        "-to",
        &pg.url(),
    ]);
    assert!(!ok && out.contains("not empty"), "{out}");

    // A master over the copy serves every key.
    c.db = PathBuf::from(pg.url());
    c.start_master();
    for i in (0..30).filter(|&i| i != 3) {
        let want = format!("value {i}").repeat(100);
        assert_eq!(
            fetch(c.addr(), &format!("/mig/{i}")).as_deref(),
            Some(want.as_bytes())
        );
    }
    assert_eq!(list(c.addr(), "/mig/", true), ["/mig/3"]);
    c.kill_master();

    let back = tmp.path().join("back");
    let (ok, out) = mkv(&["migrate", "-from", &pg.url(), "-to", back.to_str().unwrap()]);
    assert!(ok, "{out}");
    // goleveldb (the original's library) opens it and finds the same records.
    assert_eq!(common::goleveldb_dump(&dumper, &back), before);
}

#[test]
#[cfg_attr(
    not(mkv_all_tests),
    ignore = "needs PostgreSQL and nginx (MKV_ALL_TESTS=1)"
)]
fn the_nginx_example_balances_two_masters() {
    let pg = Postgres::start();
    let c = cluster_on(&pg.url(), &[]);
    let masters = [c.another_master(&[]), c.another_master(&[])];
    // examples/nginx-masters.conf, with these masters and a free port.
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nginx-masters.conf"),
    )
    .unwrap();
    let port = testkit::free_port();
    let conf = example
        .replace("10.0.0.11:3000", &masters[0].hostport())
        .replace("10.0.0.12:3000", &masters[1].hostport())
        .replace("listen 3000;", &format!("listen 127.0.0.1:{port};"))
        .replace("worker_processes auto;", "worker_processes 1;");
    assert_ne!(conf, example);
    let prefix = c.tmp.path().join("lb");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let path = prefix.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nginx");
    let mut cmd = std::process::Command::new(nginx);
    cmd.arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(&prefix)
        .args(["-g", "daemon off; error_log stderr; pid nginx.pid;"]);
    let _lb = Proc::spawn("nginx", cmd, &prefix);
    let lb: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        std::net::TcpStream::connect(lb).is_ok()
    }));
    // Writes and reads through the balancer reach both masters; a big
    // value streams through; the redirect names a volume.
    let big = vec![b'b'; 8 << 20];
    assert_eq!(request(lb, "PUT", "/lb/big", &[], &big).status, 201);
    for i in 0..20 {
        assert_eq!(
            request(
                lb,
                "PUT",
                &format!("/lb/{i}"),
                &[],
                format!("v{i}").as_bytes()
            )
            .status,
            201
        );
    }
    for m in &masters {
        assert_eq!(fetch(m.addr(), "/lb/big").as_deref(), Some(big.as_slice()));
    }
    let r = request(lb, "GET", "/lb/3", &[], b"");
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap();
    assert!(
        c.volumes.iter().any(|v| location.contains(&v.name())),
        "{location}"
    );
    assert_eq!(fetch(lb, "/lb/3").as_deref(), Some(&b"v3"[..]));
    assert_eq!(list(lb, "/lb/", false).len(), 21);
    // One master gone: the balancer sends everything to the other.
    let [gone, left] = masters;
    drop(gone);
    for i in 0..20 {
        assert_eq!(
            fetch(lb, &format!("/lb/{i}")),
            Some(format!("v{i}").into_bytes())
        );
    }
    assert_eq!(request(lb, "DELETE", "/lb/big", &[], b"").status, 204);
    assert_eq!(request(left.addr(), "GET", "/lb/big", &[], b"").status, 404);
}

#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs PostgreSQL (MKV_ALL_TESTS=1)")]
fn rebalance_onto_a_new_volume_over_postgres() {
    let pg = Postgres::start();
    let mut c = cluster_on(&pg.url(), &["-replicas", "1"]);
    let db = c.db.clone();
    c.start_master_on(&[0, 1], &db);
    let keys: Vec<String> = (0..40).map(|i| format!("/rb/{i}")).collect();
    for k in &keys {
        assert_eq!(request(c.addr(), "PUT", k, &[], k.as_bytes()).status, 201);
    }
    c.kill_master();
    assert!(c.files().iter().all(|f| !f.starts_with("2:")));
    let (status, out, err) = c.run_tool(&[0, 1, 2], &db, &["rebalance"]);
    assert!(status.success(), "{out}{err}");
    // Some moved to the new volume; every key is readable where it now is.
    assert!(
        c.files().iter().any(|f| f.starts_with("2:")),
        "{:?}",
        c.files()
    );
    assert_eq!(c.files().len(), keys.len(), "{:?}", c.files());
    c.start_master_on(&[0, 1, 2], &db);
    for k in &keys {
        assert_eq!(fetch(c.addr(), k).as_deref(), Some(k.as_bytes()), "{k}");
    }
    // verify agrees: nothing missing, nothing unbalanced.
    c.kill_master();
    let (status, out, err) = c.run_tool(&[0, 1, 2], &db, &["verify"]);
    assert!(status.success(), "{out}{err}");
    assert!(out.ends_with("clean\n"), "{out}");
}
