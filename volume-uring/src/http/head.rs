//! Request heads: httparse does the tokenising; this module applies the rules
//! that keep a server safe (one framing, bounded sizes) and keeps only what the
//! handlers need, in a buffer that is reused from one request to the next.

use super::body::BodyKind;
use super::HttpError;

/// The methods both servers route on. Anything else is `Other` (a 405 or 403).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Options,
    Unlink,
    Rebalance,
    Other,
}

impl Method {
    fn parse(m: &str) -> Method {
        match m {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "UNLINK" => Method::Unlink,
            "REBALANCE" => Method::Rebalance,
            _ => Method::Other,
        }
    }
}

/// Header values a handler may ask for after parsing. Everything else is
/// checked (framing) or dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Range,
    IfRange,
    IfNoneMatch,
    IfModifiedSince,
}

const WANTED: [(&str, Want); 4] = [
    ("range", Want::Range),
    ("if-range", Want::IfRange),
    ("if-none-match", Want::IfNoneMatch),
    ("if-modified-since", Want::IfModifiedSince),
];

/// The most header lines a request may carry; one more is a 431.
pub const MAX_HEADERS: usize = 100;

#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    /// Request line plus header lines; larger is a 431 (or 414 for the line alone).
    pub max_head_bytes: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 32 * 1024,
        }
    }
}

/// One parsed request head. Reused across requests on a connection.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    /// `true` for HTTP/1.0 (answers still say HTTP/1.1, as nginx does).
    pub http10: bool,
    pub keep_alive: bool,
    pub body: BodyKind,
    pub expect_continue: bool,
    arena: Vec<u8>,
    target_len: usize,
    wanted: [Option<(u32, u32)>; WANTED.len()],
}

impl Default for RequestHead {
    fn default() -> Self {
        RequestHead {
            method: Method::Other,
            http10: false,
            keep_alive: false,
            body: BodyKind::Empty,
            expect_continue: false,
            arena: Vec::with_capacity(512),
            target_len: 0,
            wanted: [None; WANTED.len()],
        }
    }
}

impl RequestHead {
    /// The request target as sent (origin form), still percent-encoded.
    pub fn target(&self) -> &[u8] {
        &self.arena[..self.target_len]
    }

    /// The target up to `?`.
    pub fn path(&self) -> &[u8] {
        let t = self.target();
        match memchr(b'?', t) {
            Some(i) => &t[..i],
            None => t,
        }
    }

    /// The raw query after `?`, if there is one (possibly empty).
    pub fn query(&self) -> Option<&[u8]> {
        let t = self.target();
        memchr(b'?', t).map(|i| &t[i + 1..])
    }

    pub fn header(&self, want: Want) -> Option<&[u8]> {
        let (start, len) = self.wanted[want as usize]?;
        Some(&self.arena[start as usize..(start + len) as usize])
    }

    fn reset(&mut self) {
        self.arena.clear();
        self.target_len = 0;
        self.wanted = [None; WANTED.len()];
        self.body = BodyKind::Empty;
        self.expect_continue = false;
    }
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &v[start..end]
}

/// Strict decimal: digits only, no sign, no overflow.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

fn has_token(list: &[u8], token: &str) -> bool {
    list.split(|&c| c == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token.as_bytes()))
}

/// Strips `http://host` from an absolute-form target; refuses anything that is
/// neither origin form nor absolute form.
fn origin_form(target: &str) -> Result<&str, HttpError> {
    if target.starts_with('/') {
        return Ok(target);
    }
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
        .ok_or(HttpError::BadRequest("request target must be a path"))?;
    match rest.find('/') {
        Some(i) => Ok(&rest[i..]),
        None => Err(HttpError::BadRequest("absolute target without a path")),
    }
}

/// Parses one request head from the front of `buf`.
///
/// Returns `Ok(Some(n))` with the head's length when complete, `Ok(None)` when
/// more bytes are needed (and allowed).
pub fn parse(
    buf: &[u8],
    head: &mut RequestHead,
    limits: &HeadLimits,
) -> Result<Option<usize>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= limits.max_head_bytes {
                let line_done = buf.windows(2).any(|w| w == b"\r\n");
                return Err(if line_done {
                    HttpError::HeadersTooLarge
                } else {
                    HttpError::UriTooLong
                });
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadersTooLarge),
        Err(httparse::Error::Version) => return Err(HttpError::VersionNotSupported),
        Err(_) => return Err(HttpError::BadRequest("malformed request head")),
    };
    if n > limits.max_head_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    head.reset();
    head.method = Method::parse(req.method.unwrap_or(""));
    head.http10 = req.version == Some(0);
    let target = origin_form(req.path.unwrap_or(""))?;
    head.arena.extend_from_slice(target.as_bytes());
    head.target_len = target.len();
    apply_headers(req.headers, head)?;
    Ok(Some(n))
}

/// Framing and connection rules over the header lines.
fn apply_headers(
    headers: &[httparse::Header<'_>],
    head: &mut RequestHead,
) -> Result<(), HttpError> {
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive_token = false;
    for h in headers {
        let value = trim(h.value);
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err(HttpError::BadRequest("duplicate content-length"));
            }
            content_length =
                Some(parse_u64(value).ok_or(HttpError::BadRequest("bad content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked || !value.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::UnsupportedTransferEncoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            close |= has_token(value, "close");
            keep_alive_token |= has_token(value, "keep-alive");
        } else if name.eq_ignore_ascii_case("expect") {
            // Other expectations are ignored, as nginx and Go's server do.
            head.expect_continue = !head.http10 && value.eq_ignore_ascii_case(b"100-continue");
        } else if let Some((_, want)) = WANTED.iter().find(|(n, _)| name.eq_ignore_ascii_case(n)) {
            let start = head.arena.len() as u32;
            head.arena.extend_from_slice(value);
            head.wanted[*want as usize] = Some((start, value.len() as u32));
        }
    }
    if !head.http10 && hosts != 1 {
        return Err(HttpError::BadRequest("HTTP/1.1 needs exactly one Host"));
    }
    head.body = match (chunked, content_length) {
        (true, Some(_)) => {
            return Err(HttpError::BadRequest(
                "content-length with transfer-encoding",
            ))
        }
        (true, None) if head.http10 => {
            return Err(HttpError::BadRequest("transfer-encoding in HTTP/1.0"))
        }
        (true, None) => BodyKind::Chunked,
        (false, None) => BodyKind::Empty,
        (false, Some(n)) => BodyKind::Length(n),
    };
    head.keep_alive = if head.http10 {
        keep_alive_token && !close
    } else {
        !close
    };
    Ok(())
}

#[cfg(test)]
mod tests {
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
        assert_eq!(head.header(Want::Range), Some(&b"bytes=0-1"[..]));
        assert_eq!(head.header(Want::IfRange), None);
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
        let chunked = "PUT /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n";
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
        assert_eq!(head.method, Method::Other);
        let (_, head) = parse_one("UNLINK /k HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.method, Method::Unlink);
    }
}
