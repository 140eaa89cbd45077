//! Malformed and hostile requests: each gets a clear 4xx/5xx (or a closed
//! connection, for timeouts), nothing is read or written outside the root,
//! and the server keeps serving afterwards.

mod common;

use std::time::Duration;

use common::{Driver, Volume};
use testkit::client::{request, Client};

/// Sends `raw` on a fresh connection and returns the answer's status.
fn status_of(v: &Volume, raw: &[u8]) -> u16 {
    let mut c = Client::connect(v.addr());
    c.send(raw);
    c.read_response(false).status
}

fn still_serving(v: &Volume) {
    let r = request(v.addr(), "GET", "/canary", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"alive"[..]));
}

fn malformed_requests(driver: Driver) {
    let v = Volume::start(driver, &[]);
    assert_eq!(
        request(v.addr(), "PUT", "/canary", &[], b"alive").status,
        201
    );
    let many_headers: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage", b"garbage\r\n\r\n".to_vec(), 400),
        ("tls hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), 400),
        ("too many headers", format!("GET / HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(), 431),
        ("huge header", format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(40_000)).into_bytes(), 431),
        ("long uri", format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(40_000)).into_bytes(), 414),
        ("smuggling", b"PUT /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        ("duplicate length", b"PUT /s HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx".to_vec(), 400),
        ("negative length", b"PUT /s HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(), 400),
        ("huge length", b"PUT /s HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(), 400),
        ("gzip encoding", b"PUT /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 501),
        ("chunked 1.0", b"PUT /s HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        ("bad chunk size", b"PUT /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec(), 400),
        ("chunk overrun", b"PUT /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n".to_vec(), 400),
        ("http/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), 505),
        ("no host", b"GET /canary HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("two hosts", b"GET /canary HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        ("unknown method", b"BREW /canary HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 405),
        ("relative target", b"GET canary HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("dot dot", b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("encoded dot dot", b"GET /a/%2e%2e/%2E%2E/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("encoded slash dot dot", b"GET /a%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("put dot dot", b"PUT /../escape HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx".to_vec(), 400),
        ("nul byte", b"GET /canary%00.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("bad escape", b"GET /canary%zz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
    ];
    for (name, raw, want) in &cases {
        assert_eq!(status_of(&v, raw), *want, "{name}");
        still_serving(&v);
    }
    assert!(!v.tmp.path().join("escape").exists());
    assert_eq!(
        v.all_files(),
        ["canary"],
        "nothing written by the bad requests"
    );
    // Absolute-form targets are fine.
    assert_eq!(
        status_of(&v, b"GET http://x/canary HTTP/1.1\r\nHost: x\r\n\r\n"),
        200
    );
}

fn symlinks_out_of_root(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let outside = v.tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, v.path("out")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), v.path("secret-link")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", v.path("relative-link")).unwrap();
    for path in ["/out/secret", "/secret-link", "/relative-link", "/out/"] {
        let r = request(v.addr(), "GET", path, &[], b"");
        assert_eq!(r.status, 403, "{path}");
        assert!(!r.text().contains("secret"), "{path}");
    }
    assert_eq!(
        request(v.addr(), "PUT", "/out/planted", &[], b"x").status,
        403
    );
    assert_eq!(
        request(v.addr(), "PUT", "/out/deeper/planted", &[], b"x").status,
        403
    );
    assert_eq!(
        request(v.addr(), "DELETE", "/out/secret", &[], b"").status,
        403
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");
    // A symlink that stays inside the root is followed, as nginx does.
    assert_eq!(
        request(v.addr(), "PUT", "/real/file", &[], b"inside").status,
        201
    );
    std::os::unix::fs::symlink("real", v.path("alias")).unwrap();
    assert_eq!(
        request(v.addr(), "GET", "/alias/file", &[], b"").body,
        b"inside"
    );
}

fn timeouts(driver: Driver) {
    let v = Volume::start(
        driver,
        &[
            "--idle-timeout",
            "1s",
            "--header-timeout",
            "1s",
            "--io-timeout",
            "1s",
        ],
    );
    let a = v.addr();
    // Silent client.
    let mut c = Client::connect(a);
    assert!(
        c.closed_within(Duration::from_secs(4)),
        "idle connection not closed"
    );
    // A head that never ends (slowloris), one byte at a time.
    let mut c = Client::connect(a);
    let start = std::time::Instant::now();
    let mut closed = false;
    for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "
        .iter()
        .cycle()
        .take(40)
    {
        if std::io::Write::write_all(&mut c.stream, &[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        closed || c.closed_within(Duration::from_secs(3)),
        "slow head not cut off"
    );
    assert!(start.elapsed() < Duration::from_secs(6));
    // A body that stops arriving: cut off, nothing left behind.
    let mut c = Client::connect(a);
    c.send(b"PUT /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello");
    assert!(
        c.closed_within(Duration::from_secs(4)),
        "stalled body not cut off"
    );
    // Kept alive after a request, then idle.
    let mut c = Client::connect(a);
    assert_eq!(c.request("PUT", "/k", &[], b"v").status, 201);
    assert!(c.closed_within(Duration::from_secs(4)));
    assert_eq!(v.all_files(), ["k"]);
}

/// The committed corpus of hostile requests (http1/tests/corpus): each
/// refused with its status, or accepted, and nothing smuggled runs.
fn hostile_corpus(driver: Driver) {
    let v = Volume::start(driver, &[]);
    assert_eq!(
        request(v.addr(), "PUT", "/canary", &[], b"alive").status,
        201
    );
    testkit::hostile::send_corpus(v.addr(), || still_serving(&v));
    let mut files = v.all_files();
    files.sort();
    assert_eq!(
        files,
        ["canary", "corpus/a", "corpus/b"],
        "only the accepted PUTs wrote"
    );
}

/// A volume that cannot listen says on which address and port, and leaves
/// no folder behind.
#[test]
fn a_failed_start_names_its_port() {
    let v = Volume::start(Driver::IoUring, &[]);
    let port = v.addr().port().to_string();
    let dir = v.tmp.path().join("never-made");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_volume"))
        .args(["--port", &port, "--bind", "127.0.0.1"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!dir.exists(), "a failed start left {}", dir.display());
}

/// Past `--max-connections`, a new connection is answered 503 and closed;
/// once one closes, the next is served.
fn connection_limit(driver: Driver) {
    let v = Volume::start(driver, &["--max-connections", "4"]);
    let held: Vec<Client> = (0..4).map(|_| Client::connect(v.addr())).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut past = Client::connect(v.addr());
    let r = past
        .try_read_response(false)
        .unwrap()
        .expect("an answer past the limit");
    assert_eq!(r.status, 503);
    assert!(past.closed_within(Duration::from_secs(2)));
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(request(v.addr(), "GET", "/missing", &[], b"").status, 404);
}

/// A body on GET, HEAD or DELETE is framed by its Content-Length or chunked
/// encoding and dropped, never run as the next request (docs/volume-api.md).
fn bodies_are_never_requests(driver: Driver) {
    let v = Volume::start(driver, &[]);
    assert_eq!(request(v.addr(), "PUT", "/victim", &[], b"v").status, 201);
    testkit::hostile::bodies_stay_bodies(v.addr(), "/elsewhere", "/victim", &[]);
    still_serving_victim(&v);
}

fn still_serving_victim(v: &Volume) {
    let r = request(v.addr(), "GET", "/victim", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"v"[..]));
}

on_both_drivers!(
    malformed_requests,
    symlinks_out_of_root,
    timeouts,
    bodies_are_never_requests,
    connection_limit,
    hostile_corpus
);
