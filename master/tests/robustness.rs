//! Many clients at once, big values, a volume dying, the master killed:
//! no errors, nothing half-visible, nothing acknowledged lost
//! (docs/crash-safety.md).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{fetch, split_url, Backend, Cluster};
use md5::{Digest, Md5};
use testkit::client::{request, Client};

fn sixteen_workers(backend: Backend) {
    let c = Cluster::start(backend, 4, &[]);
    let a = c.addr();
    let workers: Vec<_> = (0..16)
        .map(|w| {
            std::thread::spawn(move || {
                let mut client = Client::connect(a);
                for i in 0..30 {
                    let key = format!("/worker{w}/key{i}");
                    let value = format!("value {w} {i} {}", "x".repeat(i * 37));
                    assert_eq!(
                        client.request("PUT", &key, &[], value.as_bytes()).status,
                        201,
                        "{key}"
                    );
                    assert_eq!(fetch(a, &key).as_deref(), Some(value.as_bytes()), "{key}");
                    assert_eq!(
                        client.request("DELETE", &key, &[], b"").status,
                        204,
                        "{key}"
                    );
                    assert_eq!(client.request("GET", &key, &[], b"").status, 404, "{key}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker failed");
    }
    assert!(c.files().is_empty(), "{:?}", c.files());
}

fn racing_puts_of_one_key(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut client = Client::connect(a);
                let value = vec![b'a' + i as u8; 200_000];
                barrier.wait();
                (
                    client.request("PUT", "/contended", &[], &value).status,
                    value,
                )
            })
        })
        .collect();
    let results: Vec<(u16, Vec<u8>)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let winners: Vec<_> = results.iter().filter(|(s, _)| *s == 201).collect();
    assert_eq!(
        winners.len(),
        1,
        "statuses: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(results.iter().all(|(s, _)| [201, 403, 409].contains(s)));
    assert_eq!(
        fetch(a, "/contended").as_deref(),
        Some(winners[0].1.as_slice())
    );
}

fn one_gib_round_trip(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    const SIZE: usize = 1 << 30;
    let mut client = Client::connect(a);
    client
        .send(format!("PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: {SIZE}\r\n\r\n").as_bytes());
    let mut sent = Md5::new();
    let mut piece = vec![0u8; 1 << 20];
    for i in 0..SIZE >> 20 {
        piece
            .iter_mut()
            .enumerate()
            .for_each(|(j, b)| *b = (i * 31 + j * 7) as u8);
        sent.update(&piece);
        client.stream.write_all(&piece).unwrap();
    }
    let sent = mkv::digests::hex(&sent.finalize());
    assert_eq!(client.read_response(false).status, 201);
    let r = request(a, "GET", "/big", &[], b"");
    assert_eq!(r.header("content-md5"), Some(sent.as_str()));
    // Read it back from the volume the master points at, streaming.
    let (vol, path) = split_url(r.header("location").unwrap());
    let mut v = std::net::TcpStream::connect(vol).unwrap();
    v.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut got = Md5::new();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        v.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&head).contains(&format!("Content-Length: {SIZE}")));
    let mut total = 0;
    loop {
        let n = v.read(&mut piece).unwrap();
        if n == 0 {
            break;
        }
        got.update(&piece[..n]);
        total += n;
    }
    assert_eq!(total, SIZE);
    assert_eq!(mkv::digests::hex(&got.finalize()), sent);
}

fn a_volume_dies(backend: Backend) {
    let mut c = Cluster::start(backend, 3, &["-replicas", "2", "-voltimeout", "300ms"]);
    let a = c.addr();
    let names: Vec<String> = c.volume_list().split(',').map(String::from).collect();
    let keys: Vec<String> = (0..40).map(|i| format!("/survivor{i}")).collect();
    for k in &keys {
        assert_eq!(request(a, "PUT", k, &[], k.as_bytes()).status, 201);
    }
    let dead = names[1].clone();
    c.volumes[1].proc.kill();
    // Reads: every key still has a replica that answers.
    for k in &keys {
        assert_eq!(fetch(a, k).as_deref(), Some(k.as_bytes()), "{k}");
        let r = request(a, "GET", k, &[], b"");
        assert!(
            !r.header("location").unwrap().contains(&dead),
            "redirected to the dead volume"
        );
    }
    // Writes that need the dead volume fail cleanly; the others work.
    let (mut failed, mut stored) = (0, 0);
    for i in 0..40 {
        let key = format!("/after{i}");
        let wants_dead = mkv::placement::key2volume(key.as_bytes(), &names, 2, 10)
            .iter()
            .any(|v| v.starts_with(&dead));
        let r = request(a, "PUT", &key, &[], b"new");
        if wants_dead {
            assert!(r.status >= 500, "{key}: {}", r.status);
            assert_eq!(
                request(a, "GET", &key, &[], b"").status,
                404,
                "{key} is half-visible"
            );
            failed += 1;
        } else {
            assert_eq!(r.status, 201, "{key}");
            stored += 1;
        }
    }
    assert!(failed > 0 && stored > 0);
    // Each failure was answered and logged (docs/master-api.md, "Logging").
    let logged = c.master.as_ref().unwrap().stderr();
    let lines = logged.lines().filter(|l| l.contains("request failed"));
    assert_eq!(
        lines
            .filter(|l| l.contains("status=500") && l.contains("/after"))
            .count(),
        failed,
        "{logged}"
    );
    // Nothing of the failed writes stayed on the live volumes.
    let leftovers: Vec<String> = c
        .files()
        .into_iter()
        .filter(|f| !f.starts_with("1:"))
        .collect();
    assert_eq!(
        leftovers.len(),
        40 * 2 - keys_on(&names[1], &keys, &names) + stored * 2,
        "{leftovers:?}"
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&request(a, "GET", "/after?list", &[], b"").body).unwrap();
    assert_eq!(listed["keys"].as_array().unwrap().len(), stored);
}

/// How many of `keys` have a replica on `volume` (2 replicas each).
fn keys_on(volume: &str, keys: &[String], names: &[String]) -> usize {
    keys.iter()
        .filter(|k| {
            mkv::placement::key2volume(k.as_bytes(), names, 2, 10)
                .iter()
                .any(|v| v.starts_with(volume))
        })
        .count()
}

fn master_killed_after_201s(backend: Backend) {
    let mut c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    let mut client = Client::connect(a);
    let keys: Vec<String> = (0..200).map(|i| format!("/acked{i}")).collect();
    for k in &keys {
        assert_eq!(client.request("PUT", k, &[], k.as_bytes()).status, 201);
    }
    c.master.as_ref().unwrap().signal("KILL");
    std::thread::sleep(Duration::from_millis(100));
    c.kill_master();
    c.start_master();
    let a = c.addr();
    for k in &keys {
        assert_eq!(
            fetch(a, k).as_deref(),
            Some(k.as_bytes()),
            "{k} was acknowledged, then lost"
        );
    }
}

on_both_backends!(
    sixteen_workers,
    racing_puts_of_one_key,
    one_gib_round_trip,
    a_volume_dies,
    master_killed_after_201s
);

/// Volumes close idle keep-alive connections; the master's pooled ones (and
/// its pipelined HEAD lanes) must notice and reconnect, not fail requests.
#[test]
fn idle_connections_closed_by_volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut volumes = Vec::new();
    for i in 0..3 {
        let dir = tmp.path().join(format!("v{i}"));
        let mut cmd = std::process::Command::new(common::volume_bin());
        cmd.args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--idle-timeout",
            "300ms",
        ])
        .arg(&dir);
        volumes.push(testkit::Proc::start(
            &format!("volume{i}"),
            cmd,
            &tmp.path().join("logs"),
        ));
    }
    let names: Vec<String> = volumes.iter().map(|v| v.hostport()).collect();
    let db = tmp.path().join("db");
    let mut cmd = testkit::proc::mkv_command(env!("CARGO_BIN_EXE_mkv"), &names.join(","), &db);
    cmd.arg("server");
    let master = testkit::Proc::start("mkv", cmd, &tmp.path().join("logs"));
    let a = master.addr();
    for round in 0..4 {
        let key = format!("/round{round}");
        assert_eq!(request(a, "PUT", &key, &[], b"v").status, 201, "{key}");
        for _ in 0..5 {
            assert_eq!(request(a, "GET", &key, &[], b"").status, 302, "{key}");
        }
        assert_eq!(request(a, "DELETE", &key, &[], b"").status, 204, "{key}");
        std::thread::sleep(Duration::from_millis(600));
    }
}
