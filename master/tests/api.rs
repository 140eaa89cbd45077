//! Every table of docs/master-api.md, against real `mkv` and real volumes:
//! volume-uring, and (the same suite again) stock nginx.

mod common;

use common::{encode_key, fetch, Backend, Cluster};
use mkv::placement::{key2path, key2volume};
use testkit::client::{request, Client};

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn put_get_delete_rows(backend: Backend) {
    let c = Cluster::start(backend, 4, &[]);
    let a = c.addr();
    let volumes: Vec<String> = c.volume_list().split(',').map(String::from).collect();

    let r = request(a, "PUT", "/wehave", &[], b"bigswag");
    assert_eq!((r.status, r.header("content-length")), (201, Some("0")));
    assert_eq!(
        request(a, "PUT", "/wehave", &[], b"other").status,
        403,
        "PUT of a live key"
    );
    assert_eq!(request(a, "PUT", "/empty", &[], b"").status, 411);

    let want = key2volume(b"/wehave", &volumes, 3, 10);
    for method in ["GET", "HEAD"] {
        let r = request(a, method, "/wehave", &[], b"");
        assert_eq!(r.status, 302, "{method}");
        assert_eq!(r.header("content-md5"), Some(md5_hex(b"bigswag").as_str()));
        assert_eq!(r.header("key-volumes"), Some(want.join(",").as_str()));
        assert_eq!(r.header("key-balance"), Some("balanced"));
        assert_eq!(r.header("content-length"), Some("0"));
        let location = r.header("location").unwrap();
        let path = key2path(b"/wehave");
        assert!(
            want.iter().any(|v| location == format!("http://{v}{path}")),
            "{location}"
        );
    }
    assert_eq!(fetch(a, "/wehave").as_deref(), Some(&b"bigswag"[..]));
    // The three replicas hold the value, each in its subvolume folder.
    assert_eq!(c.files().len(), 3, "{:?}", c.files());

    let missing = request(a, "GET", "/nope", &[], b"");
    assert_eq!(
        (missing.status, missing.header("content-length")),
        (404, Some("0"))
    );
    assert_eq!(request(a, "HEAD", "/nope", &[], b"").status, 404);

    assert_eq!(request(a, "DELETE", "/wehave", &[], b"").status, 204);
    assert_eq!(request(a, "GET", "/wehave", &[], b"").status, 404);
    assert_eq!(request(a, "DELETE", "/wehave", &[], b"").status, 404);
    assert!(c.files().is_empty(), "{:?}", c.files());
    assert_eq!(
        request(a, "PUT", "/wehave", &[], b"again").status,
        201,
        "a deleted key can be written again"
    );
    assert_eq!(fetch(a, "/wehave").as_deref(), Some(&b"again"[..]));

    // A chunked body that ends before any chunk is an empty value, stored:
    // its length was not said to be 0, as the original sees it too.
    let mut put = Client::connect(a);
    put.send(
        b"PUT /emptychunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(put.read_response(false).status, 201);
    let r = request(a, "HEAD", "/emptychunked", &[], b"");
    assert_eq!(r.header("content-md5"), Some(md5_hex(b"").as_str()));
    assert_eq!(fetch(a, "/emptychunked").as_deref(), Some(&b""[..]));
}

fn unlink_rows(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    assert_eq!(request(a, "PUT", "/u", &[], b"value").status, 201);
    assert_eq!(request(a, "UNLINK", "/u", &[], b"").status, 204);
    assert_eq!(request(a, "GET", "/u", &[], b"").status, 404);
    assert_eq!(
        request(a, "UNLINK", "/u", &[], b"").status,
        404,
        "already unlinked"
    );
    assert_eq!(request(a, "UNLINK", "/never", &[], b"").status, 404);
    assert_eq!(c.files().len(), 3, "an unlink keeps the files");
    assert_eq!(
        request(a, "GET", "/?unlinked", &[], b"").text(),
        r#"{"next":"","keys":["/u"]}"#
    );
    assert_eq!(
        request(a, "GET", "/?list", &[], b"").text(),
        r#"{"next":"","keys":[]}"#
    );
    // An unlinked key can be written over.
    assert_eq!(request(a, "PUT", "/u", &[], b"new value").status, 201);
    assert_eq!(fetch(a, "/u").as_deref(), Some(&b"new value"[..]));
    assert_eq!(request(a, "UNLINK", "/u", &[], b"").status, 204);
    assert_eq!(
        request(a, "DELETE", "/u", &[], b"").status,
        204,
        "an unlinked key can be deleted"
    );
    assert!(c.files().is_empty());
    assert_eq!(
        request(a, "GET", "/?unlinked", &[], b"").text(),
        r#"{"next":"","keys":[]}"#
    );
}

fn protect_and_fallback(backend: Backend) {
    let c = Cluster::start(backend, 3, &["-protect", "-fallback", "127.0.0.1:9"]);
    let a = c.addr();
    assert_eq!(request(a, "PUT", "/p", &[], b"v").status, 201);
    assert_eq!(
        request(a, "DELETE", "/p", &[], b"").status,
        403,
        "protect: UNLINK first"
    );
    assert_eq!(request(a, "UNLINK", "/p", &[], b"").status, 204);
    assert_eq!(request(a, "DELETE", "/p", &[], b"").status, 204);
    let r = request(a, "GET", "/missing%20key", &[], b"");
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("http://127.0.0.1:9/missing%20key"))
    );
}

fn listing_rows(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    let mut keys: Vec<String> = (0..12).map(|i| format!("/swag-{i}")).collect();
    for k in &keys {
        assert_eq!(request(a, "PUT", k, &[], b"0").status, 201);
    }
    assert_eq!(request(a, "PUT", "/swag", &[], b"0").status, 201);
    assert_eq!(request(a, "PUT", "/other", &[], b"0").status, 201);
    keys.sort();
    let json =
        |r: testkit::Response| -> serde_json::Value { serde_json::from_slice(&r.body).unwrap() };
    let first = request(a, "GET", "/swag-?list&limit=10", &[], b"");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(
        json(first),
        serde_json::json!({"next": keys[10], "keys": keys[..10]})
    );
    let next = request(
        a,
        "GET",
        &format!("/swag-?list&limit=10&start={}", encode_key(&keys[10])),
        &[],
        b"",
    );
    assert_eq!(
        json(next),
        serde_json::json!({"next": "", "keys": keys[10..]})
    );
    let all = request(a, "GET", "/swag?list", &[], b"");
    assert_eq!(json(all)["keys"].as_array().unwrap().len(), 13);
    let none = request(a, "GET", "/swag-/DOES_NOT_EXIST?list", &[], b"");
    assert_eq!(none.text(), r#"{"next":"","keys":[]}"#);
    assert_eq!(request(a, "GET", "/?list&limit=x", &[], b"").status, 400);
    assert_eq!(request(a, "GET", "/?bogus", &[], b"").status, 403);
    // As the original: a query on PUT, HEAD, DELETE or UNLINK is ignored.
    assert_eq!(request(a, "PUT", "/k?list", &[], b"x").status, 201);
    assert_eq!(fetch(a, "/k").as_deref(), Some(&b"x"[..]));
    assert_eq!(request(a, "HEAD", "/k?list", &[], b"").status, 302);
    assert_eq!(request(a, "UNLINK", "/k?start=1", &[], b"").status, 204);
    assert_eq!(request(a, "DELETE", "/k?list", &[], b"").status, 204);
    assert_eq!(request(a, "GET", "/k", &[], b"").status, 404);
    assert_eq!(request(a, "POST", "/k", &[], b"x").status, 405);
}

fn odd_keys(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    let keys = [
        "/a b",
        "/???",
        "/unicodé/ключ/鍵",
        "/plus+sign",
        "/~tilde",
        "/deep/nested/path/x.txt",
        "/%",
    ];
    for (i, k) in keys.iter().enumerate() {
        let value = format!("value {i}");
        let url = encode_key(k);
        assert_eq!(
            request(a, "PUT", &url, &[], value.as_bytes()).status,
            201,
            "{k}"
        );
        assert_eq!(fetch(a, &url).as_deref(), Some(value.as_bytes()), "{k}");
    }
    // A raw '+' in the path is a plus, not a space.
    assert_eq!(fetch(a, "/plus+sign").as_deref(), Some(&b"value 3"[..]));
    // `/???` is stored under a nested folder: its base64 has a '/'.
    assert!(
        c.files().iter().any(|f| f.ends_with("/Lz8/Pw==")),
        "{:?}",
        c.files()
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&request(a, "GET", "/?list", &[], b"").body).unwrap();
    let mut want: Vec<&str> = keys.to_vec();
    want.sort();
    assert_eq!(listed["keys"], serde_json::json!(want));
    // 189 bytes make a 252-byte base64 name, 190 bytes a 256-byte one:
    // too long for a file name.
    let longest = format!("/{}", "k".repeat(188));
    assert_eq!(request(a, "PUT", &longest, &[], b"fits").status, 201);
    assert_eq!(fetch(a, &longest).as_deref(), Some(&b"fits"[..]));
    let too_long = format!("/{}", "k".repeat(189));
    assert_eq!(request(a, "PUT", &too_long, &[], b"x").status, 400);
    assert_eq!(
        request(a, "GET", &too_long, &[], b"").status,
        404,
        "nothing was written"
    );
    // base64("/??11?") = "Lz8/MTE/": a file name cannot end with '/'.
    let r = request(a, "PUT", "/%3F%3F11%3F", &[], b"x");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Lz8/MTE/"), "{}", r.text());
    assert_eq!(
        request(a, "GET", "/%3F%3F11%3F", &[], b"").status,
        404,
        "nothing was written"
    );
    assert_eq!(request(a, "GET", "/bad%zzescape", &[], b"").status, 400);
}

fn uploads_in_every_framing(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    let mut client = Client::connect(a);
    client.send(b"PUT /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n");
    assert_eq!(client.read_response(false).status, 201);
    assert_eq!(fetch(a, "/chunked").as_deref(), Some(&b"wikipedia"[..]));
    let r = request(a, "GET", "/chunked", &[], b"");
    assert_eq!(
        r.header("content-md5"),
        Some(md5_hex(b"wikipedia").as_str())
    );
    client.send(
        b"PUT /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(client.read_response(false).status, 100);
    client.send(b"hello");
    assert_eq!(client.read_response(false).status, 201);
    // Keep-alive and pipelining through the master too.
    client.send(b"GET /expect HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nUNLINK /expect HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.read_response(false).status, 302);
    assert_eq!(client.read_response(false).status, 404);
    assert_eq!(client.read_response(false).status, 204);
    client.send(b"GET /x HTTP/1.0\r\n\r\n");
    let r = client.read_response(false);
    assert_eq!((r.status, r.header("connection")), (404, Some("close")));
}

fn hostile_requests(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    assert_eq!(request(a, "PUT", "/canary", &[], b"alive").status, 201);
    let cases: &[(&[u8], u16)] = &[
        (b"garbage\r\n\r\n", 400),
        (b"GET /k HTTP/1.1\r\n\r\n", 400),
        (b"PUT /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"PUT /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"PUT /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ];
    for (raw, want) in cases {
        let mut client = Client::connect(a);
        client.send(raw);
        assert_eq!(
            client.read_response(false).status,
            *want,
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(fetch(a, "/canary").as_deref(), Some(&b"alive"[..]));
    }
    let huge = format!(
        "GET /k HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    let mut client = Client::connect(a);
    client.send(huge.as_bytes());
    assert_eq!(client.read_response(false).status, 431);
    assert_eq!(
        request(a, "GET", "/?list", &[], b"").text(),
        r#"{"next":"","keys":["/canary"]}"#,
        "the bad chunked PUT left no record"
    );
}

on_both_backends!(
    put_get_delete_rows,
    unlink_rows,
    protect_and_fallback,
    listing_rows,
    odd_keys,
    uploads_in_every_framing,
    hostile_requests,
);

/// `-v` logs one line per request: method, key, status, bytes and time
/// (docs/master-api.md, "Logging"); a 404 says 404.
#[test]
fn verbose_log_lines() {
    let c = Cluster::start(Backend::VolumeUring, 3, &["-v"]);
    let a = c.addr();
    assert_eq!(
        request(a, "PUT", "/logged", &[], b"twelve bytes").status,
        201
    );
    assert_eq!(request(a, "GET", "/logged", &[], b"").status, 302);
    assert_eq!(request(a, "GET", "/missing", &[], b"").status, 404);
    let log = c.master.as_ref().unwrap().stderr();
    let line = |key: &str, method: &str| {
        log.lines()
            .find(|l| {
                l.contains(&format!("key={key}")) && l.contains(&format!("method=\"{method}\""))
            })
            .unwrap_or_else(|| panic!("no line for {method} {key}:\n{log}"))
            .to_string()
    };
    let put = line("/logged", "PUT");
    assert!(
        put.contains("status=201") && put.contains("bytes_out=") && put.contains("ms="),
        "{put}"
    );
    let bytes_in: u64 = put
        .split("bytes_in=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes_in >= 12, "{put}");
    assert!(line("/logged", "GET").contains("status=302"));
    assert!(line("/missing", "GET").contains("status=404"));
    assert!(
        !log.contains('\u{1b}'),
        "colour escapes in a log that is not a terminal"
    );
}
