//! Every row of the request table in docs/volume-api.md, and its protocol
//! extensions, on the real binary, on both drivers.

mod common;

use common::{Driver, Volume};
use testkit::client::{request, Client};
use testkit::reference;

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
        Some(format!("{:08x}", reference::crc32(b"hello!")).as_str())
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
    assert_eq!(
        r.header("last-modified"),
        Some(reference::httpdate(mtime).as_str())
    );
    assert_eq!(
        r.header("x-crc32"),
        Some(format!("{:08x}", reference::crc32(b"hello!")).as_str())
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

on_both_drivers!(
    put_get_head_delete,
    ranges,
    conditional_get,
    listing,
    put_edge_cases,
);
