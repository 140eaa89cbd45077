//! Faults and hostile input (docs/crash-safety.md, docs/master-api.md):
//! bodies never run as requests, volumes that stop answering, full disks,
//! a master killed under writers.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Cluster};
use testkit::client::{request, Client};
use testkit::eventually;

/// A body on GET, HEAD, DELETE or UNLINK is framed and dropped: the request
/// hidden in it never runs.
fn bodies_are_never_requests(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    assert_eq!(request(a, "PUT", "/victim", &[], b"v").status, 201);
    testkit::hostile::bodies_stay_bodies(a, "/elsewhere", "/victim", &["UNLINK"]);
    assert_eq!(request(a, "GET", "/victim", &[], b"").status, 302);
    assert_eq!(common::fetch(a, "/victim").as_deref(), Some(&b"v"[..]));
}

/// The committed corpus of hostile requests (http1/tests/corpus): each
/// refused with its status or accepted, the master serving throughout.
fn hostile_corpus(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    assert_eq!(request(a, "PUT", "/canary", &[], b"alive").status, 201);
    testkit::hostile::send_corpus(a, || {
        assert_eq!(common::fetch(a, "/canary").as_deref(), Some(&b"alive"[..]));
    });
    // The accepted PUTs wrote /corpus/a and /corpus/b; nothing smuggled in
    // a GET's or HEAD's body deleted /corpus/a.
    assert_eq!(
        common::fetch(a, "/corpus/a").as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        common::fetch(a, "/corpus/b").as_deref(),
        Some(&b"hello"[..])
    );
}

/// A PUT refused before its body is read (403: the key exists) still
/// reaches its client, which is sending 8 MiB when the answer comes: the
/// master reads and drops the rest before it closes. The 8 PUTs race for
/// the key's lock: one that finds it held is refused with 409, as the
/// original does, just as early.
fn early_answers_reach_the_client(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    assert_eq!(request(a, "PUT", "/taken", &[], b"v").status, 201);
    let senders: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = Client::connect(a);
                let body = vec![b'x'; 8 << 20];
                client.send(
                    format!(
                        "PUT /taken HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                std::io::Write::write_all(&mut client.stream, &body).expect("the body was cut off");
                client.read_response(false).status
            })
        })
        .collect();
    let statuses: Vec<u16> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s == 403 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&403), "{statuses:?}");
    assert_eq!(common::fetch(a, "/taken").as_deref(), Some(&b"v"[..]));
}

/// The files the live keys of `?list` should have on the volumes, as
/// `Cluster::files` names them.
fn expected_files(c: &Cluster, replicas: usize) -> Vec<String> {
    let names: Vec<String> = c.volume_list().split(',').map(String::from).collect();
    let listed: serde_json::Value =
        serde_json::from_slice(&request(c.addr(), "GET", "/?list", &[], b"").body).unwrap();
    let mut out = Vec::new();
    for key in listed["keys"].as_array().unwrap() {
        let key = key.as_str().unwrap().as_bytes();
        for r in mkv::placement::key2volume(key, &names, replicas, 10) {
            let (host, sv) = r.split_once('/').unwrap();
            let i = names.iter().position(|n| n == host).unwrap();
            out.push(format!("{i}:{sv}{}", mkv::placement::key2path(key)));
        }
    }
    out.sort();
    out
}

/// A volume stopped (SIGSTOP) during PUT, DELETE and GET: each fails or
/// answers within the bound (`-volume-timeout`), and the failed PUT never
/// comes back: not when the volume resumes (it holds the whole body in its
/// socket), not after a rebuild (docs/crash-safety.md).
fn a_stopped_volume(backend: Backend) {
    let mut c = Cluster::start(backend, 3, &["-volume-timeout", "1s"]);
    let a = c.addr();
    assert_eq!(request(a, "PUT", "/before", &[], b"v").status, 201);
    c.volumes[0].proc.signal_group("STOP");
    let bounded = |method: &str, key: &str, body: &[u8]| {
        let start = Instant::now();
        let status = request(a, method, key, &[], body).status;
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "{method} {key} took {:?}",
            start.elapsed()
        );
        status
    };
    // Small enough to sit whole in the stopped volume's socket buffer.
    let value = vec![b'f'; 64 * 1024];
    let in_flight = std::thread::spawn(move || {
        let start = Instant::now();
        let status = request(a, "PUT", "/failed", &[], &value).status;
        (status, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    // In flight, the key is invisible, and not listed as unlinked.
    assert_eq!(request(a, "GET", "/failed", &[], b"").status, 404);
    let unlinked = request(a, "GET", "/?unlinked", &[], b"").text();
    assert_eq!(unlinked, r#"{"next":"","keys":[]}"#);
    let (status, took) = in_flight.join().unwrap();
    assert!(
        status >= 500 && took < Duration::from_secs(8),
        "{status} after {took:?}"
    );
    assert_eq!(request(a, "GET", "/failed", &[], b"").status, 404);
    assert!(bounded("DELETE", "/before", b"") >= 500);
    assert_eq!(
        bounded("GET", "/before", b""),
        404,
        "a failed DELETE leaves the key unlinked"
    );
    c.volumes[0].proc.signal_group("CONT");
    // The journal removes what the resumed volume may have stored.
    assert!(
        eventually(Duration::from_secs(30), || c.files()
            == expected_files(&c, 3)),
        "files of the failed PUT stayed: {:?}",
        c.files()
    );
    let unlinked = request(a, "GET", "/?unlinked", &[], b"").text();
    assert_eq!(unlinked, r#"{"next":"","keys":["/before"]}"#);
    assert_eq!(request(a, "DELETE", "/before", &[], b"").status, 204);
    c.kill_master();
    let (status, out, err) = c.run_tool(&[0, 1, 2], &c.db.clone(), &["rebuild"]);
    assert!(status.success(), "{out}{err}");
    c.start_master();
    assert_eq!(request(c.addr(), "GET", "/failed", &[], b"").status, 404);
    assert_eq!(request(c.addr(), "GET", "/before", &[], b"").status, 404);
}

/// A volume killed (SIGKILL) while a PUT streams to it and during a
/// DELETE: both fail at once, GETs go to the live replicas, and once the
/// volume is back on its folder and port, nothing of the failed PUT is
/// left anywhere and the DELETE can be finished (volume-uring only: the
/// restart needs its port).
#[test]
fn a_killed_volume() {
    let mut c = Cluster::start(Backend::VolumeUring, 3, &["-volume-timeout", "2s"]);
    let a = c.addr();
    assert_eq!(request(a, "PUT", "/kept", &[], b"kept").status, 201);
    let port = c.volumes[0].proc.addr().port();
    let mut put = Client::connect(a);
    put.send(b"PUT /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n");
    put.send(&vec![b'c'; 8 << 20]);
    std::thread::sleep(Duration::from_millis(200));
    c.volumes[0].proc.kill();
    let start = Instant::now();
    // The master gives up on the volume; the rest of the body is read and
    // dropped (or the connection closed) with the answer.
    let _ = std::io::Write::write_all(&mut put.stream, &vec![b'c'; 56 << 20]);
    let status = put
        .try_read_response(false)
        .ok()
        .flatten()
        .map(|r| r.status);
    assert!(matches!(status, None | Some(500..=599)), "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(request(a, "GET", "/cut", &[], b"").status, 404);
    assert!(request(a, "DELETE", "/kept", &[], b"").status >= 500);
    let mut cmd = std::process::Command::new(common::volume_bin());
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--threads",
        "1",
    ])
    .arg(&c.volumes[0].dir);
    c.volumes[0].proc = testkit::Proc::start("volume0-again", cmd, &c.tmp.path().join("logs"));
    assert_eq!(request(a, "DELETE", "/kept", &[], b"").status, 204);
    assert!(
        eventually(Duration::from_secs(30), || c.files().is_empty()),
        "left behind: {:?}",
        c.files()
    );
}

/// The master killed (SIGKILL) under 16 writers: every 201 is readable
/// after a restart, no key that was never unlinked is listed as unlinked,
/// and no file is left without a record.
fn master_killed_under_writers(backend: Backend) {
    let mut c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("/w{w}/k{i}");
                    let value = format!("{key} {}", "v".repeat(20_000));
                    let sent = std::panic::catch_unwind(|| {
                        request(a, "PUT", &key, &[], value.as_bytes()).status
                    });
                    match sent {
                        Ok(201) => acked.push((key, value)),
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    c.master.as_ref().unwrap().signal("KILL");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<(String, String)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        acked.len() > 16,
        "only {} writes before the kill",
        acked.len()
    );
    c.kill_master();
    c.start_master();
    let a = c.addr();
    for (key, value) in &acked {
        assert_eq!(
            common::fetch(a, key).as_deref(),
            Some(value.as_bytes()),
            "{key}"
        );
    }
    let unlinked = request(a, "GET", "/?unlinked", &[], b"").text();
    assert_eq!(unlinked, r#"{"next":"","keys":[]}"#);
    assert!(
        eventually(Duration::from_secs(20), || c.files()
            == expected_files(&c, 3)),
        "files without a record after the restart"
    );
}

on_both_backends!(
    bodies_are_never_requests,
    hostile_corpus,
    early_answers_reach_the_client,
    a_stopped_volume,
    master_killed_under_writers
);

/// 2,000 connections that never send a byte: the master serves others
/// meanwhile, answers connections past `-max-connections` with a 503, and
/// closes the silent ones after the idle timeout.
#[test]
fn silent_connections_and_the_connection_limit() {
    let c = Cluster::start(
        Backend::VolumeUring,
        3,
        &["-idle-timeout", "3s", "-max-connections", "2050"],
    );
    let a = c.addr();
    let silent: Vec<std::net::TcpStream> = (0..2000)
        .map(|_| std::net::TcpStream::connect(a).unwrap())
        .collect();
    assert_eq!(request(a, "PUT", "/served", &[], b"v").status, 201);
    assert_eq!(common::fetch(a, "/served").as_deref(), Some(&b"v"[..]));
    // Past the limit: answered 503 at once, without a request.
    let mut refused = 0;
    let mut extra: Vec<Client> = (0..100).map(|_| Client::connect(a)).collect();
    for client in &mut extra {
        client
            .stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        if let Ok(Some(r)) = client.try_read_response(false) {
            assert_eq!(
                (r.status, r.text().as_str()),
                (503, "too many connections\n")
            );
            refused += 1;
        }
    }
    assert!(
        (40..=60).contains(&refused),
        "{refused} of 100 refused past 2,050"
    );
    drop(extra);
    // The silent ones are closed after the idle timeout.
    std::thread::sleep(Duration::from_secs(4));
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut byte = [0u8; 1];
        let n = std::io::Read::read(&mut s, &mut byte);
        assert!(
            matches!(n, Ok(0) | Err(_)),
            "a silent connection stayed open"
        );
    }
    assert_eq!(common::fetch(a, "/served").as_deref(), Some(&b"v"[..]));
}

/// Out of descriptors: accepting fails over and over, and the master says
/// so at most once per thread every 10 s (not 40 times a second), then
/// serves again once connections close.
#[test]
fn out_of_descriptors_is_logged_sparingly() {
    let mut c = Cluster::volumes_only(&[Backend::VolumeUring; 3], &["-max-connections", "100000"]);
    let mkv = c.mkv(&["server"]);
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg("--nofile=128:128")
        .arg("--")
        .arg(mkv.get_program())
        .args(mkv.get_args());
    c.master = Some(testkit::Proc::start("mkv", cmd, &c.tmp.path().join("logs")));
    let a = c.addr();
    let held: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(a).unwrap())
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let log = c.master.as_ref().unwrap().stderr();
    let warned = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(
        (1..=2).contains(&warned),
        "{warned} warnings in 3 s:\n{log}"
    );
    drop(held);
    assert!(eventually(Duration::from_secs(10), || {
        request(a, "PUT", "/after", &[], b"v").status == 201
    }));
}

/// A replica out of space: the PUT is a 507 (the volume says so after the
/// whole body), nothing of it is visible or left on any volume, and once
/// keys are deleted, PUTs work again.
#[test]
#[cfg_attr(
    not(mkv_all_tests),
    ignore = "needs root for a tmpfs (MKV_ALL_TESTS=1)"
)]
fn a_full_volume_is_507() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("volume0");
    std::fs::create_dir(&small).unwrap();
    let _unmount = testkit::mount::Tmpfs::mount(&small, "20m");
    let mut c = Cluster::volumes_in(tmp, &[Backend::VolumeUring; 3], &[]);
    c.start_master();
    let a = c.addr();
    let value = vec![b'z'; 1 << 20];
    let mut stored = Vec::new();
    let full = loop {
        let key = format!("/fill{}", stored.len());
        match request(a, "PUT", &key, &[], &value).status {
            201 => stored.push(key),
            status => break (key, status),
        }
        assert!(stored.len() < 40, "a 20 MiB volume took 40 MiB");
    };
    assert_eq!(full.1, 507, "{} after {} values", full.0, stored.len());
    assert_eq!(request(a, "GET", &full.0, &[], b"").status, 404);
    assert!(
        eventually(Duration::from_secs(5), || c.files()
            == expected_files(&c, 3)),
        "the failed PUT left files: {:?}",
        c.files()
    );
    for key in stored.iter().take(4) {
        assert_eq!(request(a, "DELETE", key, &[], b"").status, 204);
    }
    assert_eq!(request(a, "PUT", &full.0, &[], &value).status, 201);
    assert_eq!(common::fetch(a, &full.0).as_deref(), Some(value.as_slice()));
}
