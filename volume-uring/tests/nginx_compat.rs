//! The same requests against stock nginx (configured as the original's
//! `volume` script configures it) and against volume-uring: same statuses,
//! same listing bytes (mtimes aside). Where the two differ on purpose,
//! docs/volume-api.md ("Differences from nginx") says so; those requests are
//! not here.

mod common;

use std::net::SocketAddr;

use common::{pattern, Driver, Volume};
use testkit::client::Client;

struct Case {
    name: &'static str,
    raw: Vec<u8>,
    head: bool,
}

fn req(
    name: &'static str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Case {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "PUT" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("Connection: close\r\n\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    Case {
        name,
        raw,
        head: method == "HEAD",
    }
}

fn raw(name: &'static str, bytes: &[u8]) -> Case {
    Case {
        name,
        raw: bytes.to_vec(),
        head: false,
    }
}

fn cases() -> Vec<Case> {
    let big = pattern(3, 16 << 20);
    vec![
        req("put new", "PUT", "/a/b/c", &[], b"0123456789"),
        req("put again", "PUT", "/a/b/c", &[], b"0123456789"),
        req("put nested base64", "PUT", "/sv07/27/6f/Lz8/Pw==", &[], b"slash"),
        req("put space", "PUT", "/a/b/x%20y", &[], b"space"),
        req("put empty", "PUT", "/a/zero", &[], b""),
        req("put 16 MiB", "PUT", "/big", &[], &big),
        raw("put chunked", b"PUT /a/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        raw("put 100-continue", b"PUT /a/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nabc"),
        req("get", "GET", "/a/b/c", &[], b""),
        req("get 16 MiB", "GET", "/big", &[], b""),
        req("get nested base64", "GET", "/sv07/27/6f/Lz8/Pw==", &[], b""),
        req("head", "HEAD", "/a/b/c", &[], b""),
        req("get with query", "GET", "/a/b/c?x=1", &[], b""),
        req("range a-b", "GET", "/a/b/c", &[("Range", "bytes=2-5")], b""),
        req("range a-", "GET", "/a/b/c", &[("Range", "bytes=2-")], b""),
        req("range -n", "GET", "/a/b/c", &[("Range", "bytes=-3")], b""),
        req("range -n large", "GET", "/a/b/c", &[("Range", "bytes=-30")], b""),
        req("range past end", "GET", "/a/b/c", &[("Range", "bytes=10-")], b""),
        req("range malformed", "GET", "/a/b/c", &[("Range", "bytes=abc")], b""),
        req("range reversed", "GET", "/a/b/c", &[("Range", "bytes=5-2")], b""),
        req("range other unit", "GET", "/a/b/c", &[("Range", "chars=0-1")], b""),
        req("range on empty", "GET", "/a/zero", &[("Range", "bytes=0-1")], b""),
        req("folder without slash", "GET", "/a/b", &[], b""),
        req("file as folder", "GET", "/a/b/c/", &[], b""),
        req("missing", "GET", "/nope", &[], b""),
        req("missing folder", "GET", "/nope/", &[], b""),
        req("head missing", "HEAD", "/nope", &[], b""),
        req("put to folder url", "PUT", "/a/newdir/", &[], b"x"),
        req("put over a folder", "PUT", "/a/b", &[], b"x"),
        req("post", "POST", "/a/b/c", &[], b"x"),
        req("options", "OPTIONS", "/a/b/c", &[], b""),
        req("unknown method", "BREW", "/a/b/c", &[], b""),
        raw("http/1.0", b"GET /a/b/c HTTP/1.0\r\n\r\n"),
        raw("garbage", b"garbage\r\n\r\n"),
        raw("no host", b"GET /a/b/c HTTP/1.1\r\nConnection: close\r\n\r\n"),
        raw("two hosts", b"GET /a/b/c HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"),
        raw("smuggling", b"PUT /s HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"),
        raw("duplicate length", b"PUT /s HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"),
        raw("gzip encoding", b"PUT /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n"),
        raw("http/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
        raw("escape root", b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        raw("escape root encoded", b"GET /a/%2e%2e/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        raw("nul", b"GET /a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        req("delete", "DELETE", "/a/b/x%20y", &[], b""),
        req("delete again", "DELETE", "/a/b/x%20y", &[], b""),
        req("delete missing", "DELETE", "/nope", &[], b""),
        req("delete folder without slash", "DELETE", "/a/b", &[], b""),
        req("get deleted", "GET", "/a/b/x%20y", &[], b""),
    ]
}

fn send(addr: SocketAddr, case: &Case) -> testkit::Response {
    let mut c = Client::connect(addr);
    c.send(&case.raw);
    let mut r = c.read_response(case.head);
    if r.status == 100 {
        r = c.read_response(case.head);
    }
    r
}

/// Listing bytes with every mtime value replaced, for comparison.
fn mask_mtimes(listing: &str) -> String {
    let mut out = String::new();
    let mut rest = listing;
    while let Some(i) = rest.find("\"mtime\":\"") {
        let (before, after) = rest.split_at(i + 9);
        out.push_str(before);
        let end = after.find('"').expect("mtime ends");
        let value = &after[..end];
        assert!(
            value.ends_with(" GMT") && value.len() == 29,
            "mtime {value:?}"
        );
        out.push_str("MTIME");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn same_answers_as_nginx(driver: Driver) {
    let ngx_tmp = tempfile::tempdir().unwrap();
    let ngx_root = ngx_tmp.path().join("root");
    let ngx = testkit::nginx::start(&ngx_root, &ngx_tmp.path().join("nginx"));
    let vol = Volume::start(driver, &[]);
    for case in cases() {
        let want = send(ngx.addr(), &case);
        let got = send(vol.addr(), &case);
        assert_eq!(
            got.status, want.status,
            "{}: nginx said {}, we said {}",
            case.name, want.status, got.status
        );
        if want.status / 100 == 2 && !case.head {
            assert!(got.body == want.body, "{}: bodies differ", case.name);
        }
        // Error bodies differ (nginx sends HTML pages); their statuses may not.
        let headers: &[&str] = match want.status {
            200..=299 => &[
                "content-length",
                "content-range",
                "accept-ranges",
                "content-type",
            ],
            416 => &["content-range"],
            _ => &[],
        };
        for h in headers {
            assert_eq!(got.header(h), want.header(h), "{}: header {h}", case.name);
        }
    }
    for folder in ["/a/", "/a/b/", "/sv07/27/6f/", "/sv07/27/6f/Lz8/"] {
        let case = req("listing", "GET", folder, &[], b"");
        let (want, got) = (send(ngx.addr(), &case), send(vol.addr(), &case));
        assert_eq!(
            (got.status, got.header("content-type")),
            (want.status, want.header("content-type"))
        );
        assert_eq!(
            mask_mtimes(&got.text()),
            mask_mtimes(&want.text()),
            "listing of {folder}"
        );
        let parsed: serde_json::Value = serde_json::from_slice(&got.body).expect("listing is JSON");
        assert!(parsed.is_array());
    }
}

on_both_drivers!(needs "needs nginx (MKV_ALL_TESTS=1)": same_answers_as_nginx);
