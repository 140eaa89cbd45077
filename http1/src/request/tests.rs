use super::*;

fn parse_one(raw: &str) -> Result<Option<(usize, RequestHead)>, HttpError> {
    let mut head = RequestHead::default();
    Ok(parse(raw.as_bytes(), &mut head, &HeadLimits::default())?.map(|n| (n, head)))
}

#[test]
fn simple_get_keeps_alive() {
    let raw = "GET /a%20b?list&limit=3 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\nNEXT";
    let (n, head) = parse_one(raw).unwrap().unwrap();
    assert_eq!(n, raw.len() - 4);
    assert_eq!(head.method, Method::Get);
    assert_eq!(head.path(), b"/a%20b");
    assert_eq!(head.query(), Some(&b"list&limit=3"[..]));
    assert_eq!(head.header("range"), Some(&b"bytes=0-1"[..]));
    assert_eq!(head.header("If-Range"), None);
    assert_eq!(head.header("HOST"), Some(&b"x"[..]));
    assert_eq!(head.headers().count(), 2);
    assert!(head.keep_alive);
    assert_eq!(head.body, BodyKind::Empty);
}

#[test]
fn partial_then_limits() {
    assert!(parse_one("GET / HTTP/1.1\r\nHost: x\r\n")
        .unwrap()
        .is_none());
    let long_line = format!("GET /{} HTTP/1.1", "a".repeat(40_000));
    assert!(matches!(parse_one(&long_line), Err(HttpError::UriTooLong)));
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n", "a".repeat(40_000));
    assert!(matches!(parse_one(&big), Err(HttpError::HeadersTooLarge)));
    let many: String = (0..101).map(|i| format!("X{i}: y\r\n")).collect();
    let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert!(matches!(parse_one(&raw), Err(HttpError::HeadersTooLarge)));
}

#[test]
fn framing_rules() {
    let smuggle =
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(matches!(parse_one(smuggle), Err(HttpError::BadRequest(_))));
    let dup = "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";
    assert!(matches!(parse_one(dup), Err(HttpError::BadRequest(_))));
    let neg = "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n";
    assert!(matches!(parse_one(neg), Err(HttpError::BadRequest(_))));
    let gzip = "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    assert!(matches!(
        parse_one(gzip),
        Err(HttpError::UnsupportedTransferEncoding)
    ));
    let no_host = "GET / HTTP/1.1\r\n\r\n";
    assert!(matches!(parse_one(no_host), Err(HttpError::BadRequest(_))));
    let expect = "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n";
    assert!(!parse_one(expect).unwrap().unwrap().1.expect_continue);
    let chunked =
        "PUT /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n";
    let (_, head) = parse_one(chunked).unwrap().unwrap();
    assert_eq!(head.body, BodyKind::Chunked);
    assert!(head.expect_continue);
}

#[test]
fn http10_and_connection_tokens() {
    let (_, head) = parse_one("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(head.http10 && !head.keep_alive);
    let (_, head) = parse_one("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(head.keep_alive);
    let (_, head) = parse_one("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!head.keep_alive);
}

#[test]
fn targets() {
    let (_, head) = parse_one("GET http://h:1/k?x HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(head.target(), b"/k?x");
    assert!(matches!(
        parse_one("GET k HTTP/1.1\r\nHost: h\r\n\r\n"),
        Err(HttpError::BadRequest(_))
    ));
    assert!(matches!(
        parse_one("GET / HTTP/2.0\r\nHost: h\r\n\r\n"),
        Err(HttpError::VersionNotSupported)
    ));
    assert!(matches!(
        parse_one("\x16\x03\x01garbage\r\n\r\n"),
        Err(HttpError::BadRequest(_))
    ));
}

#[test]
fn unknown_method_is_other() {
    let (_, head) = parse_one("BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!((head.method, head.method_name()), (Method::Other, "BREW"));
    let (_, head) = parse_one("UNLINK /k HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!((head.method, head.method_name()), (Method::Other, "UNLINK"));
    let (_, head) = parse_one("DELETE /k HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        (head.method, head.method_name()),
        (Method::Delete, "DELETE")
    );
}
