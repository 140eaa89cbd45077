//! Request heads: httparse does the tokenising; this module applies the rules
//! that keep a server safe (one framing, one Host, bounded sizes) and keeps
//! the method, target and header lines in one buffer that is reused from one
//! request to the next.

use std::time::Instant;

use super::body::BodyKind;
use super::conn::Conn;
pub use super::conn::HeadLimits;
use super::HttpError;

/// The methods HTTP itself defines that servers commonly route on; any
/// other token is `Other`, and [`RequestHead::method_name`] tells which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Options,
    Patch,
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
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }
}

/// The most header lines a request may carry; one more is a 431.
pub const MAX_HEADERS: usize = 100;

/// Where one piece of the head sits in the arena.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    len: u32,
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
    /// The head's length on the wire.
    pub wire_len: usize,
    arena: Vec<u8>,
    method_span: Span,
    target: Span,
    /// Name and (trimmed) value of every header line, in order.
    headers: Vec<(Span, Span)>,
}

impl Default for RequestHead {
    fn default() -> Self {
        RequestHead {
            method: Method::Other,
            http10: false,
            keep_alive: false,
            body: BodyKind::Empty,
            expect_continue: false,
            wire_len: 0,
            arena: Vec::with_capacity(1024),
            method_span: Span::default(),
            target: Span::default(),
            headers: Vec::with_capacity(16),
        }
    }
}

impl RequestHead {
    fn slice(&self, s: Span) -> &[u8] {
        &self.arena[s.start as usize..(s.start + s.len) as usize]
    }

    fn push(&mut self, bytes: &[u8]) -> Span {
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(bytes);
        Span {
            start,
            len: bytes.len() as u32,
        }
    }

    /// The method token as sent (`GET`, `UNLINK`, ...).
    pub fn method_name(&self) -> &str {
        // httparse admits only token characters, which are ASCII.
        std::str::from_utf8(self.slice(self.method_span)).unwrap_or("")
    }

    /// The request target as sent (origin form), still percent-encoded.
    pub fn target(&self) -> &[u8] {
        self.slice(self.target)
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

    /// The value of the first header line named `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| self.slice(*n).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| self.slice(*v))
    }

    /// Every header line as (name, trimmed value), in the order sent.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers
            .iter()
            .map(|(n, v)| (self.slice(*n), self.slice(*v)))
    }

    /// Waits for the next request head on `conn` and parses it into `self`. `Ok(false)` means the peer
    /// closed the connection cleanly between requests.
    pub async fn read(&mut self, conn: &mut Conn) -> Result<bool, HttpError> {
        let mut deadline: Option<Instant> = None;
        loop {
            if !conn.buffered().is_empty() {
                if let Some(n) = parse(conn.buffered(), self, &conn.limits)? {
                    conn.consume(n);
                    return Ok(true);
                }
            }
            let wait = match deadline {
                None if conn.buffered().is_empty() => conn.timeouts.idle,
                None => {
                    let d = Instant::now() + conn.timeouts.header;
                    deadline = Some(d);
                    conn.timeouts.header
                }
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            if conn.fill(wait).await? == 0 {
                return if conn.buffered().is_empty() {
                    Ok(false)
                } else {
                    Err(HttpError::Closed)
                };
            }
            if deadline.is_none() {
                deadline = Some(Instant::now() + conn.timeouts.header);
            }
        }
    }

    fn reset(&mut self) {
        self.arena.clear();
        self.headers.clear();
        self.body = BodyKind::Empty;
        self.expect_continue = false;
    }
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
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

/// Whether a comma-separated header value lists `token` (any case).
pub fn has_token(list: &[u8], token: &str) -> bool {
    list.split(|&c| c == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
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
    let method = req.method.unwrap_or("");
    head.method = Method::parse(method);
    head.method_span = head.push(method.as_bytes());
    head.http10 = req.version == Some(0);
    let target = origin_form(req.path.unwrap_or(""))?;
    head.target = head.push(target.as_bytes());
    for h in req.headers.iter() {
        let name = head.push(h.name.as_bytes());
        let value = head.push(h.value.trim_ascii());
        head.headers.push((name, value));
    }
    apply_framing(head)?;
    head.wire_len = n;
    Ok(Some(n))
}

/// Framing and connection rules over the header lines.
fn apply_framing(head: &mut RequestHead) -> Result<(), HttpError> {
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for (name, value) in head.headers() {
        if name.eq_ignore_ascii_case(b"content-length") {
            if content_length.is_some() {
                return Err(HttpError::BadRequest("duplicate content-length"));
            }
            content_length =
                Some(parse_u64(value).ok_or(HttpError::BadRequest("bad content-length"))?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if chunked || !value.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::UnsupportedTransferEncoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= has_token(value, "close");
            keep_alive_token |= has_token(value, "keep-alive");
        } else if name.eq_ignore_ascii_case(b"expect") {
            // Other expectations are ignored, as nginx and Go's server do.
            expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    head.expect_continue = expect_continue && !head.http10;
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
mod tests;
