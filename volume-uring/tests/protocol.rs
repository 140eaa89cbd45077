//! The volume's HTTP/1.1 as clients use it, on the real binary, on both
//! drivers: keep-alive and pipelining, HTTP/1.0, chunked uploads with
//! trailers, `Expect: 100-continue`, and `?recursive` listings.

mod common;

use common::{Driver, Volume};
use testkit::client::{request, Client};
use testkit::reference;

fn keep_alive_and_pipelining(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let mut c = Client::connect(v.addr());
    c.send(b"PUT /p1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /p1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\nDELETE /p1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response(false).status, 201);
    let g = c.read_response(false);
    assert_eq!((g.status, g.body.as_slice()), (200, &b"abc"[..]));
    let h = c.read_response(true);
    assert_eq!((h.status, h.header("content-length")), (200, Some("3")));
    assert_eq!(c.read_response(false).status, 404);
    assert_eq!(c.read_response(false).status, 204);
    // Still open for more.
    assert_eq!(c.request("GET", "/p1", &[], b"").status, 404);
    c.send(b"GET /p1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!((r.status, r.header("connection")), (404, Some("close")));
    assert!(c.closed_within(std::time::Duration::from_secs(5)));
}

fn http10_client(driver: Driver) {
    let v = Volume::start(driver, &[]);
    assert_eq!(
        request(v.addr(), "PUT", "/k", &[], b"old school").status,
        201
    );
    let mut c = Client::connect(v.addr());
    c.send(b"GET /k HTTP/1.0\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(
        (r.status, r.body.as_slice(), r.header("connection")),
        (200, &b"old school"[..], Some("close"))
    );
    assert!(c.closed_within(std::time::Duration::from_secs(5)));
    let mut c = Client::connect(v.addr());
    c.send(b"GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("\"name\":\"k\""),
        "listing over HTTP/1.0 ends with the connection"
    );
}

fn chunked_upload(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let mut c = Client::connect(v.addr());
    c.send(b"PUT /chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        std::fs::read(v.path("chunky")).unwrap(),
        b"hello 0123456789"
    );
    assert_eq!(
        r.header("x-crc32"),
        Some(format!("{:08x}", reference::crc32(b"hello 0123456789")).as_str())
    );
    // The connection carries on after a chunked body.
    assert_eq!(
        c.request("GET", "/chunky", &[], b"").body,
        b"hello 0123456789"
    );
    // A big chunked body in many pieces.
    let data = common::pattern(7, 3 << 20);
    let mut raw = b"PUT /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in data.chunks(100_003) {
        raw.extend_from_slice(format!("{:X}\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    c.send(&raw);
    assert_eq!(c.read_response(false).status, 201);
    assert!(std::fs::read(v.path("big")).unwrap() == data);
}

fn expect_continue(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let mut c = Client::connect(v.addr());
    c.send(b"PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.read_response(false);
    assert_eq!(interim.status, 100);
    c.send(b"hello");
    assert_eq!(c.read_response(false).status, 201);
    assert_eq!(std::fs::read(v.path("e")).unwrap(), b"hello");
    // A request refused before its body gets its final answer without a 100.
    c.send(b"PUT /dir/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!((r.status, r.header("connection")), (409, Some("close")));
}

fn trailers_and_recursive_listing(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let mut c = Client::connect(v.addr());
    let md5 = "5d41402abc4b2a76b9719d911017c592";
    let put = |c: &mut Client, path: &str, trailers: &str| {
        c.send(format!("PUT {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n{trailers}\r\n").as_bytes());
        c.read_response(false)
    };
    let good = format!("X-Mkv-Crc32: 3610a686\r\nX-Mkv-Md5: {md5}\r\n");
    assert_eq!(put(&mut c, "/sv01/5d/41/aGVsbG8=", &good).status, 201);
    assert_eq!(
        put(&mut c, "/sv01/27/6f/Lz8/Pw==", "X-Mkv-Crc32: 3610a686\r\n").status,
        201
    );
    let bad = put(&mut c, "/sv02/aa/bb/Ym9ndXM=", "X-Mkv-Crc32: 00000000\r\n");
    assert_eq!(
        bad.status, 400,
        "a body that does not match its CRC trailer"
    );
    assert_eq!(
        request(v.addr(), "GET", "/sv02/aa/bb/Ym9ndXM=", &[], b"").status,
        404
    );
    // An md5 is kept only when a CRC trailer of the same PUT vouched for
    // the bytes; a malformed one stores nothing (docs/volume-api.md).
    let unchecked = format!("X-Mkv-Md5: {md5}\r\n");
    assert_eq!(put(&mut c, "/sv01/6e/6f/bm9jcmM=", &unchecked).status, 201);
    let malformed = "X-Mkv-Crc32: 3610a686\r\nX-Mkv-Md5: not-an-md5\r\n";
    assert_eq!(put(&mut c, "/sv02/cc/dd/bWQ1", malformed).status, 400);
    assert_eq!(
        request(v.addr(), "GET", "/sv02/cc/dd/bWQ1", &[], b"").status,
        404
    );
    std::fs::write(v.path("sv01/stray"), b"not ours").unwrap();
    let r = request(v.addr(), "GET", "/?recursive", &[], b"");
    assert_eq!(
        (r.status, r.header("x-mkv-listing")),
        (200, Some("recursive"))
    );
    let text = r.text();
    let mut lines: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    lines.sort();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with(r#"{ "name":"sv01/27/6f/Lz8/Pw==", "type":"file""#),
        "{text}"
    );
    assert!(!lines[0].contains("md5"), "no md5 was sent for it: {text}");
    assert!(
        lines[1].starts_with(r#"{ "name":"sv01/5d/41/aGVsbG8=", "type":"file""#),
        "{text}"
    );
    assert!(
        lines[1].ends_with(&format!(r#""size":5, "md5":"{md5}" }},"#))
            || lines[1].ends_with(&format!(r#""size":5, "md5":"{md5}" }}"#)),
        "{text}"
    );
    assert!(
        lines[2].starts_with(r#"{ "name":"sv01/6e/6f/bm9jcmM=", "type":"file""#),
        "{text}"
    );
    assert!(
        !lines[2].contains("md5"),
        "an unchecked md5 was kept: {text}"
    );
    assert!(
        lines[3].starts_with(r#"{ "name":"sv01/stray", "type":"file""#),
        "{text}"
    );
    let parsed: serde_json::Value =
        serde_json::from_str(&text).expect("the recursive listing is JSON");
    assert_eq!(parsed.as_array().unwrap().len(), 4);
    // Without the query, the nginx listing of one folder.
    let plain = request(v.addr(), "GET", "/sv01/", &[], b"");
    assert_eq!(plain.header("x-mkv-listing"), None);
    assert!(plain
        .text()
        .contains(r#"{ "name":"27", "type":"directory""#));
}

on_both_drivers!(
    keep_alive_and_pipelining,
    http10_client,
    chunked_upload,
    expect_continue,
    trailers_and_recursive_listing,
);
