//! The original's round trip, on real processes and a cluster that mixes
//! volume-uring and stock nginx volumes: write keys (some unlinked, some
//! whose base64 has a `/`, odd bytes, UTF-8), rebuild a new index from the
//! volumes alone and compare it record by record, rebalance 4 → 3 volumes
//! and back, kill a rebalance midway and finish it, and fail a rebuild
//! cleanly when a volume is down.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{encode_key, fetch, Backend, Cluster};
use mkv::index::Index;
use mkv::record::Record;
use testkit::client::{request, Client};

/// Volumes of both kinds side by side, which rebuild and rebalance read
/// alike; outside the full tier (no nginx: testkit's docs), volume-uring
/// alone.
#[cfg(mkv_all_tests)]
const MIXED: [Backend; 4] = [
    Backend::VolumeUring,
    Backend::Nginx,
    Backend::VolumeUring,
    Backend::Nginx,
];
#[cfg(not(mkv_all_tests))]
const MIXED: [Backend; 4] = [Backend::VolumeUring; 4];

/// Keys of every kind, and the value each holds.
fn keys(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let key = match i % 5 {
                0 => format!("/rt/{i}"),
                1 => format!("/??{i}"),
                2 => format!("/ключ/{i}/鍵"),
                3 => format!("/a b+c {i}"),
                _ => format!("/deep/{i}/x.txt"),
            };
            let value = format!("value of {key} {}", "v".repeat(i % 300)).into_bytes();
            (key, value)
        })
        .collect()
}

fn write_all(c: &Cluster, keys: &[(String, Vec<u8>)]) {
    let addr = c.addr();
    let chunks: Vec<Vec<(String, Vec<u8>)>> = keys
        .chunks(keys.len().div_ceil(8))
        .map(<[_]>::to_vec)
        .collect();
    let writers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                for (k, v) in chunk {
                    assert_eq!(
                        client.request("PUT", &encode_key(&k), &[], &v).status,
                        201,
                        "{k}"
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer failed");
    }
}

/// The original's records (keys beginning `/`; the objects' metadata
/// records beside them are not the original's).
fn records(db: &Path) -> BTreeMap<Vec<u8>, Record> {
    let index = Index::open(db, false).expect("open index");
    let mut out = BTreeMap::new();
    index
        .scan(b"/", b"", |k, v| {
            out.insert(k.to_vec(), Record::decode(v).expect("record"));
            true
        })
        .expect("scan");
    out
}

fn readable(c: &Cluster, keys: &[(String, Vec<u8>)], live: impl Fn(&str) -> bool) {
    for (k, v) in keys {
        let url = encode_key(k);
        if live(k) {
            assert_eq!(fetch(c.addr(), &url).as_deref(), Some(v.as_slice()), "{k}");
            let r = request(c.addr(), "HEAD", &url, &[], b"");
            assert_eq!(r.header("key-balance"), Some("balanced"), "{k}");
        } else {
            assert_eq!(
                request(c.addr(), "GET", &url, &[], b"").status,
                404,
                "{k} should stay unlinked"
            );
        }
    }
}

/// Files left on volume `i` (nginx's body_temp aside).
fn files_on(c: &Cluster, i: usize) -> usize {
    c.files()
        .iter()
        .filter(|f| f.starts_with(&format!("{i}:")))
        .count()
}

#[test]
fn rebuild_and_rebalance_round_trip() {
    let mut c = Cluster::start_mixed(&MIXED, &[]);
    let keys = keys(2000);
    write_all(&c, &keys);
    let unlinked: Vec<String> = keys.iter().step_by(10).map(|(k, _)| k.clone()).collect();
    for k in &unlinked {
        assert_eq!(
            request(c.addr(), "UNLINK", &encode_key(k), &[], b"").status,
            204
        );
    }
    c.kill_master();
    let start = records(&c.db);
    assert_eq!(start.len(), 2000);

    // Rebuild into a new index, from the volumes alone.
    let rebuilt_db = c.tmp.path().join("rebuilt");
    let (status, out, err) = c.run_tool(&[0, 1, 2, 3], &rebuilt_db, &["rebuild"]);
    assert!(status.success(), "{out}{err}");
    assert!(
        out.contains("rebuilt 2000 keys from 6000 files on 4 volumes"),
        "{out}"
    );
    let rebuilt = records(&rebuilt_db);
    assert_eq!(
        rebuilt.keys().collect::<Vec<_>>(),
        start.keys().collect::<Vec<_>>()
    );
    for (key, old) in &start {
        let new = &rebuilt[key];
        assert_eq!(new.volumes, old.volumes, "{}", String::from_utf8_lossy(key));
        // Every key has a volume-uring replica, which kept its md5.
        assert_eq!(new.hash, old.hash, "{}", String::from_utf8_lossy(key));
        assert!(!new.deleted, "the volumes know nothing of unlinks");
    }
    // Again with at most 300 keys in memory: the keys go to runs on disk
    // (replicas of a key land in different runs) and are merged back.
    // (The index named with a trailing `/`: the runs still go beside it.)
    let spilled_db = c.tmp.path().join("rebuilt-in-runs");
    let (status, out, err) = c.run_tool_with_env(
        &[0, 1, 2, 3],
        Path::new(&format!("{}/", spilled_db.display())),
        &["rebuild"],
        &[("MKV_REBUILD_MEMORY_KEYS", "300")],
    );
    assert!(status.success(), "{out}{err}");
    assert!(
        out.contains("rebuilt 2000 keys from 6000 files on 4 volumes"),
        "{out}"
    );
    assert_eq!(records(&spilled_db), rebuilt);
    let left: Vec<_> = [c.tmp.path(), &spilled_db]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("rebuild-"))
        .collect();
    assert!(left.is_empty(), "runs left behind: {left:?}");
    let (status, _, err) = c.run_tool_with_env(
        &[0, 1, 2, 3],
        &spilled_db,
        &["rebuild"],
        &[("MKV_REBUILD_MEMORY_KEYS", "lots")],
    );
    assert!(!status.success());
    assert!(err.contains("MKV_REBUILD_MEMORY_KEYS=lots"), "{err}");

    c.start_master_on(&[0, 1, 2, 3], &rebuilt_db);
    readable(&c, &keys, |_| true);
    c.kill_master();

    // A dry run says what would move, and moves nothing.
    let before = c.files();
    let (status, out, err) = c.run_tool(&[0, 1, 2], &c.db, &["rebalance", "--dry-run"]);
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("rebalanced 2000 keys: would move"), "{out}");
    // ... and how many bytes it would copy: the moved keys' sizes.
    let bytes: u64 = out
        .split(" bytes to copy")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count: {out}"));
    assert!(bytes > 0, "{out}");
    assert_eq!(c.files(), before);
    assert_eq!(records(&c.db), start);

    // Retire volume 3.
    let (status, out, err) = c.run_tool(&[0, 1, 2], &c.db, &["rebalance"]);
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("0 errors"), "{out}");
    assert_eq!(
        files_on(&c, 3),
        0,
        "files left on the retired volume: {:?}",
        c.files()
            .iter()
            .filter(|f| f.starts_with("3:"))
            .collect::<Vec<_>>()
    );
    let three = records(&c.db);
    for (key, rec) in &three {
        assert_eq!(
            (rec.deleted, &rec.hash),
            (start[key].deleted, &start[key].hash),
            "state and hash are kept"
        );
        assert!(rec
            .volumes
            .iter()
            .all(|v| !v.starts_with(&c.volumes[3].name())));
    }
    c.start_master_on(&[0, 1, 2], &c.db.clone());
    readable(&c, &keys, |k| !unlinked.contains(&k.to_string()));
    let listed: serde_json::Value =
        serde_json::from_slice(&request(c.addr(), "GET", "/?unlinked", &[], b"").body).unwrap();
    assert_eq!(listed["keys"].as_array().unwrap().len(), unlinked.len());
    c.kill_master();

    // And back to four: the records are the ones we started with.
    let (status, out, err) = c.run_tool(&[0, 1, 2, 3], &c.db, &["rebalance"]);
    assert!(status.success(), "{out}{err}");
    assert_eq!(records(&c.db), start);
    assert_eq!(c.files().len(), 6000, "three copies of each key, no more");
    c.start_master_on(&[0, 1, 2, 3], &c.db.clone());
    readable(&c, &keys, |k| !unlinked.contains(&k.to_string()));
}

#[test]
fn killed_rebalance_finishes_on_rerun() {
    let mut c = Cluster::start_mixed(&MIXED, &[]);
    let keys: Vec<(String, Vec<u8>)> = (0..600)
        .map(|i| (format!("/big/{i}"), vec![(i % 251) as u8; 200_000]))
        .collect();
    write_all(&c, &keys);
    c.kill_master();
    let names: Vec<String> = [0, 1, 2].iter().map(|&i| c.volumes[i].name()).collect();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mkv"));
    cmd.arg("-volumes")
        .arg(names.join(","))
        .arg("-db")
        .arg(&c.db)
        .args(["rebalance", "--concurrency", "2"]);
    let mut run = testkit::Proc::spawn("rebalance", cmd, &c.tmp.path().join("logs"));
    let before = files_on(&c, 3);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while files_on(&c, 3) > before * 3 / 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the rebalance made no progress"
        );
        assert!(
            run.child.try_wait().unwrap().is_none(),
            "the rebalance finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    run.signal("KILL");
    run.wait_exit(Duration::from_secs(10));
    assert!(files_on(&c, 3) > 0, "killed midway");
    let (status, out, err) = c.run_tool(&[0, 1, 2], &c.db, &["rebalance"]);
    assert!(status.success(), "{out}{err}");
    assert_eq!(files_on(&c, 3), 0);
    assert_eq!(c.files().len(), 600 * 3, "{out}");
    c.start_master_on(&[0, 1, 2], &c.db.clone());
    readable(&c, &keys, |_| true);
}

#[test]
fn rebuild_fails_cleanly_with_a_volume_down() {
    let mut c = Cluster::start_mixed(&MIXED, &[]);
    write_all(&c, &keys(50));
    c.kill_master();
    let start = records(&c.db);
    let down = c.volumes[1].name();
    c.volumes[1].proc.kill();
    let (status, out, err) = c.run_tool(&[0, 1, 2, 3], &c.db, &["rebuild"]);
    assert!(!status.success(), "{out}");
    assert!(err.contains(&down), "the message names the volume: {err}");
    assert!(
        err.contains("the index at") && err.contains("was not changed"),
        "{err}"
    );
    assert_eq!(records(&c.db), start, "the index is untouched");
}

#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs nginx (MKV_ALL_TESTS=1)")]
fn rebalance_one_key_on_the_server() {
    let mut c = Cluster::volumes_only(
        &[
            Backend::VolumeUring,
            Backend::VolumeUring,
            Backend::Nginx,
            Backend::VolumeUring,
        ],
        &[],
    );
    c.start_master_on(&[0, 1, 2, 3], &c.db.clone());
    let keys = keys(40);
    write_all(&c, &keys);
    c.start_master_on(&[0, 1, 2], &c.db.clone());
    let a = c.addr();
    let mut moved = 0;
    for (k, v) in &keys {
        let url = encode_key(k);
        let was = request(a, "HEAD", &url, &[], b"")
            .header("key-balance")
            .map(str::to_string);
        assert_eq!(request(a, "REBALANCE", &url, &[], b"").status, 204, "{k}");
        let r = request(a, "HEAD", &url, &[], b"");
        assert_eq!(r.header("key-balance"), Some("balanced"), "{k}");
        assert!(!r
            .header("key-volumes")
            .unwrap()
            .contains(&c.volumes[3].name()));
        assert_eq!(fetch(a, &url).as_deref(), Some(v.as_slice()));
        moved += usize::from(was.as_deref() == Some("unbalanced"));
    }
    assert!(moved > 0);
    assert_eq!(files_on(&c, 3), 0);
    assert_eq!(request(a, "REBALANCE", "/missing", &[], b"").status, 404);
}

/// `rebalance` on a `-db` that holds no index refuses (exit code 2) and
/// creates nothing there (docs/cli.md).
#[test]
fn rebalance_refuses_a_missing_index() {
    let c = Cluster::start(Backend::VolumeUring, 3, &[]);
    let missing = c.tmp.path().join("no-such-index");
    let (status, _, err) = c.run_tool(&[0, 1, 2], &missing, &["rebalance"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("no index there"), "{err}");
    assert!(!missing.exists());
}
