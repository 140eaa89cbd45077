//! Every row of the request table in docs/volume-api.md, and its protocol
//! extensions, on the real binary, on both drivers.

mod common;

use common::{Driver, Volume};
use testkit::client::{request, Client};

fn put_get_head_delete(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let a = v.addr();
    let r = request(a, "PUT", "/a/b/c", &[], b"hello");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("x-crc32"), Some("3610a686"));
    assert_eq!(std::fs::read(v.path("a/b/c")).unwrap(), b"hello");

    let r = request(a, "PUT", "/a/b/c", &[], b"hello!");
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("x-crc32"),
        Some(format!("{:08x}", crc32(b"hello!")).as_str())
    );

    let r = request(a, "GET", "/a/b/c", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello!");
    assert_eq!(r.header("content-length"), Some("6"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let mtime = std::fs::metadata(v.path("a/b/c"))
        .unwrap()
        .modified()
        .unwrap();
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(r.header("etag"), Some(format!("\"{secs:x}-6\"").as_str()));
    assert_eq!(r.header("last-modified"), Some(httpdate(mtime).as_str()));
    assert_eq!(
        r.header("x-crc32"),
        Some(format!("{:08x}", crc32(b"hello!")).as_str())
    );

    let h = request(a, "HEAD", "/a/b/c", &[], b"");
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    for name in [
        "content-length",
        "etag",
        "last-modified",
        "accept-ranges",
        "x-crc32",
    ] {
        assert_eq!(h.header(name), r.header(name), "{name}");
    }

    assert_eq!(request(a, "DELETE", "/a/b/c", &[], b"").status, 204);
    assert!(!v.path("a/b/c").exists());
    assert_eq!(request(a, "DELETE", "/a/b/c", &[], b"").status, 404);
    assert_eq!(request(a, "GET", "/a/b/c", &[], b"").status, 404);
    // A HEAD answer has no body, errors included: the connection stays usable.
    let mut c = Client::connect(a);
    c.send(b"HEAD /a/b/c HTTP/1.1\r\nHost: x\r\n\r\nHEAD /a/../x HTTP/1.1\r\nHost: x\r\n\r\nGET /a/ HTTP/1.1\r\nHost: x\r\n\r\n");
    let h = c.read_response(true);
    assert_eq!((h.status, h.body.len()), (404, 0));
    assert_eq!(c.read_response(true).status, 400);
    assert_eq!(c.read_response(false).status, 200);
}

fn crc32(b: &[u8]) -> u32 {
    let mut h = crc32fast_hasher();
    h.update(b);
    h.finalize()
}

// The tests depend on the crate's own crc32fast through the binary's answers;
// this is the same IEEE CRC computed independently.
struct Crc(u32);
fn crc32fast_hasher() -> Crc {
    Crc(0xffff_ffff)
}
impl Crc {
    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u32::from(b);
            for _ in 0..8 {
                self.0 = if self.0 & 1 == 1 {
                    (self.0 >> 1) ^ 0xedb8_8320
                } else {
                    self.0 >> 1
                };
            }
        }
    }
    fn finalize(self) -> u32 {
        !self.0
    }
}

fn httpdate(t: std::time::SystemTime) -> String {
    // RFC 7231 IMF-fixdate, computed here independently of the server.
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {day:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT")
}

fn ranges(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let a = v.addr();
    assert_eq!(request(a, "PUT", "/r", &[], b"0123456789").status, 201);
    let cases: &[(&str, u16, &str, Option<&str>)] = &[
        ("bytes=2-5", 206, "2345", Some("bytes 2-5/10")),
        ("bytes=2-", 206, "23456789", Some("bytes 2-9/10")),
        ("bytes=-3", 206, "789", Some("bytes 7-9/10")),
        ("bytes=-30", 206, "0123456789", Some("bytes 0-9/10")),
        ("bytes=5-100", 206, "56789", Some("bytes 5-9/10")),
        ("bytes=10-", 416, "", Some("bytes */10")),
        ("bytes=-0", 416, "", Some("bytes */10")),
        ("bytes=5-2", 416, "", Some("bytes */10")),
        ("bytes=abc", 416, "", Some("bytes */10")),
        ("bytes=0-1,3-4", 200, "0123456789", None),
        ("chars=0-1", 200, "0123456789", None),
    ];
    let mut c = Client::connect(a);
    for (range, status, body, content_range) in cases {
        let r = c.request("GET", "/r", &[("Range", range)], b"");
        assert_eq!(r.status, *status, "{range}");
        assert_eq!(r.text(), *body, "{range}");
        assert_eq!(r.header("content-range"), *content_range, "{range}");
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str()),
            "{range}"
        );
        // The CRC is of the whole file: only whole answers carry it.
        assert_eq!(r.header("x-crc32").is_some(), *status == 200, "{range}");
    }
    let etag = c
        .request("HEAD", "/r", &[], b"")
        .header("etag")
        .unwrap()
        .to_string();
    let r = c.request(
        "GET",
        "/r",
        &[("Range", "bytes=0-0"), ("If-Range", &etag)],
        b"",
    );
    assert_eq!((r.status, r.text().as_str()), (206, "0"));
    let r = c.request(
        "GET",
        "/r",
        &[("Range", "bytes=0-0"), ("If-Range", "\"stale\"")],
        b"",
    );
    assert_eq!((r.status, r.body.len()), (200, 10));
    // A range on an empty file is ignored, as nginx does.
    assert_eq!(c.request("PUT", "/empty", &[], b"").status, 201);
    let r = c.request("GET", "/empty", &[("Range", "bytes=0-1")], b"");
    assert_eq!((r.status, r.body.len()), (200, 0));
}

fn conditional_get(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let a = v.addr();
    assert_eq!(request(a, "PUT", "/k", &[], b"value").status, 201);
    let r = request(a, "GET", "/k", &[], b"");
    let (etag, lm) = (
        r.header("etag").unwrap(),
        r.header("last-modified").unwrap(),
    );
    let nm = request(a, "GET", "/k", &[("If-None-Match", etag)], b"");
    assert_eq!(nm.status, 304);
    assert!(nm.body.is_empty());
    assert_eq!(nm.header("etag"), Some(etag));
    assert_eq!(
        request(a, "GET", "/k", &[("If-Modified-Since", lm)], b"").status,
        304
    );
    assert_eq!(
        request(a, "GET", "/k", &[("If-None-Match", "\"other\"")], b"").status,
        200
    );
}

fn listing(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let a = v.addr();
    for (path, body) in [
        ("/sv01/5d/41/aGVsbG8=", "x"),
        ("/sv01/27/6f/Lz8/Pw==", "yy"),
        ("/sv01/zfile", "zzz"),
    ] {
        assert_eq!(
            request(a, "PUT", path, &[], body.as_bytes()).status,
            201,
            "{path}"
        );
    }
    std::fs::write(v.path("sv01/.hidden"), b"h").unwrap();
    let r = request(a, "GET", "/sv01/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let text = r.text();
    let names: Vec<&str> = text.lines().filter_map(|l| l.split('"').nth(3)).collect();
    assert_eq!(
        names,
        ["27", "5d", "zfile"],
        "folders first, then files, hidden left out: {text}"
    );
    assert!(
        text.starts_with("[\r\n{ \"name\":\"27\", \"type\":\"directory\", \"mtime\":\""),
        "{text}"
    );
    assert!(
        text.contains("{ \"name\":\"zfile\", \"type\":\"file\", \"mtime\":\""),
        "{text}"
    );
    assert!(text.ends_with(" GMT\", \"size\":3 }\r\n]"), "{text}");
    // The base64 `/` makes a nested folder, which lists like any other.
    let r = request(a, "GET", "/sv01/27/6f/", &[], b"");
    assert!(
        r.text()
            .contains("{ \"name\":\"Lz8\", \"type\":\"directory\""),
        "{}",
        r.text()
    );
    let r = request(a, "GET", "/sv01/27/6f/Lz8/Pw==", &[], b"");
    assert_eq!(r.body, b"yy");
    let r = request(a, "GET", "/sv01", &[], b"");
    assert_eq!((r.status, r.header("location")), (301, Some("/sv01/")));
    let empty = request(a, "GET", "/sv01/5d/41/aGVsbG8=/", &[], b"");
    assert_eq!(empty.status, 404, "a file asked for as a folder");
    std::fs::create_dir(v.path("emptydir")).unwrap();
    assert_eq!(request(a, "GET", "/emptydir/", &[], b"").text(), "[\r\n]");
    let h = request(a, "HEAD", "/sv01/", &[], b"");
    assert_eq!((h.status, h.body.len()), (200, 0));
}

fn put_edge_cases(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let a = v.addr();
    let mut c = Client::connect(a);
    c.send(b"PUT /nolen HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response(false).status, 411);
    assert_eq!(request(a, "PUT", "/zero", &[], b"").status, 201);
    assert_eq!(std::fs::read(v.path("zero")).unwrap(), b"");
    assert_eq!(request(a, "PUT", "/folder/", &[], b"x").status, 409);
    assert_eq!(request(a, "PUT", "/file", &[], b"x").status, 201);
    assert_eq!(request(a, "PUT", "/file/below", &[], b"x").status, 409);
    assert_eq!(request(a, "PUT", "/folder2/x", &[], b"x").status, 201);
    assert_eq!(request(a, "PUT", "/folder2", &[], b"x").status, 409);
    assert_eq!(request(a, "DELETE", "/folder2", &[], b"").status, 409);
    assert_eq!(request(a, "DELETE", "/folder2/", &[], b"").status, 409);
    assert!(v.path("folder2/x").exists(), "folders are never deleted");
    let long = format!("/{}", "a".repeat(256));
    assert_eq!(request(a, "PUT", &long, &[], b"x").status, 414);
    assert_eq!(request(a, "PUT", "/.mkv-tmp-1", &[], b"x").status, 403);
    let r = request(a, "POST", "/file", &[], b"x");
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, HEAD, PUT, DELETE"))
    );
    assert_eq!(request(a, "PUT", "/a%20b%2Bc", &[], b"q").status, 201);
    assert_eq!(std::fs::read(v.path("a b+c")).unwrap(), b"q");
    assert_eq!(request(a, "GET", "/file?x=1", &[], b"").body, b"x");
    assert_eq!(v.all_files(), ["a b+c", "file", "folder2/x", "zero"]);
}

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
        Some(format!("{:08x}", crc32(b"hello 0123456789")).as_str())
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
    trailers_and_recursive_listing,
    put_get_head_delete,
    ranges,
    conditional_get,
    listing,
    put_edge_cases,
    keep_alive_and_pipelining,
    http10_client,
    chunked_upload,
    expect_continue,
);
