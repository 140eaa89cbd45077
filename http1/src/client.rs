//! The client side: request heads written, response heads read, and a
//! [`Dialer`] that resolves and connects with a timeout.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use monoio::net::TcpStream;

use super::body::{BodyKind, BodyReader};
use super::conn::{Conn, Timeouts};
use super::request::parse_u64;
use super::HttpError;

/// How a request's body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// Appends a request head: the request line, `Host`, the framing header
/// and `extra` header lines.
pub fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    host: &str,
    target: &str,
    framing: Framing,
    extra: &[(&str, &[u8])],
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    match framing {
        Framing::None => {}
        Framing::Length(n) => super::response::header_num(out, "Content-Length", n),
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    for (name, value) in extra {
        super::response::header(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

/// What a response head says about the message; other header lines go to
/// the caller's `on_header` as they are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub body: BodyKind,
    pub keep_alive: bool,
    /// `Content-Length` as sent (also for HEAD, where no body follows).
    pub content_length: Option<u64>,
}

/// Parses a response head from the front of `buf`; `Ok(None)` when
/// incomplete. `head_request`: the request was a HEAD (no body follows).
/// Every header line is also handed to `on_header(name, trimmed value)`.
pub fn parse_response(
    buf: &[u8],
    head_request: bool,
    mut on_header: impl FnMut(&str, &[u8]),
) -> Result<Option<(usize, ResponseHead)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > 64 * 1024 => {
            return Err(HttpError::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpError::BadRequest("malformed response head")),
    };
    let status = resp.code.unwrap_or(0);
    let mut keep_alive = resp.version == Some(1);
    let (mut chunked, mut content_length) = (false, None);
    for h in resp.headers.iter() {
        let v = h.value.trim_ascii();
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = Some(parse_u64(v).ok_or(HttpError::BadRequest("bad content-length"))?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if v.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if v.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        }
        on_header(h.name, v);
    }
    let no_body = head_request || status == 204 || status == 304 || status / 100 == 1;
    let body = if no_body {
        BodyKind::Empty
    } else if chunked {
        BodyKind::Chunked
    } else if let Some(n) = content_length {
        BodyKind::Length(n)
    } else {
        keep_alive = false;
        BodyKind::UntilClose
    };
    let head = ResponseHead {
        status,
        body,
        keep_alive,
        content_length,
    };
    Ok(Some((n, head)))
}

/// Reads a final answer's head (interim 1xx answers are skipped).
pub async fn read_response(
    conn: &mut Conn,
    head_request: bool,
    mut on_header: impl FnMut(&str, &[u8]),
) -> Result<ResponseHead, HttpError> {
    loop {
        if let Some((n, head)) = parse_response(conn.buffered(), head_request, &mut on_header)? {
            conn.consume(n);
            if head.status / 100 == 1 {
                continue;
            }
            return Ok(head);
        }
        if conn.fill(conn.timeouts.io).await? == 0 {
            return Err(HttpError::Closed);
        }
    }
}

/// Reads a whole (small) body; more than `max` bytes is an error.
pub async fn read_body(conn: &mut Conn, kind: BodyKind, max: u64) -> Result<Vec<u8>, HttpError> {
    let mut body = BodyReader::new(kind);
    let mut out = Vec::new();
    loop {
        if out.len() as u64 > max {
            return Err(HttpError::BadRequest("answer too large"));
        }
        out.reserve(16 * 1024);
        let (res, buf) = body.read(conn, out).await;
        out = buf;
        if res? == 0 {
            return Ok(out);
        }
    }
}

/// Resolves host names (once per thread: getaddrinfo blocks) and connects.
#[derive(Default)]
pub struct Dialer {
    addrs: RefCell<HashMap<String, Vec<SocketAddr>>>,
}

impl Dialer {
    fn resolve(&self, host: &str) -> std::io::Result<Vec<SocketAddr>> {
        if let Some(a) = self.addrs.borrow().get(host) {
            return Ok(a.clone());
        }
        let addrs: Vec<SocketAddr> = host.to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(std::io::Error::other("resolves to no address"));
        }
        self.addrs
            .borrow_mut()
            .insert(host.to_string(), addrs.clone());
        Ok(addrs)
    }

    /// A new connection to `host` (`name:port`), each address tried within
    /// `timeout`; the connection gets `timeouts`.
    pub async fn connect(
        &self,
        host: &str,
        timeout: Duration,
        timeouts: Timeouts,
    ) -> std::io::Result<Conn> {
        let addrs = self
            .resolve(host)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot resolve: {e}")))?;
        let mut last = None;
        for (i, addr) in addrs.iter().enumerate() {
            let connected = monoio::time::timeout(timeout, TcpStream::connect_addr(*addr))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))?;
            match connected {
                Ok(stream) => {
                    if i > 0 {
                        // The address that works goes first next time (localhost: ::1 vs 127.0.0.1).
                        let mut rotated = addrs.clone();
                        rotated.rotate_left(i);
                        self.addrs.borrow_mut().insert(host.to_string(), rotated);
                    }
                    let _ = stream.set_nodelay(true);
                    return Ok(Conn::new(stream, timeouts));
                }
                Err(e) => last = Some(e),
            }
        }
        let why = last.map_or("no address".into(), |e| e.to_string());
        Err(std::io::Error::other(format!("cannot connect: {why}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], head: bool) -> Option<(usize, ResponseHead, Vec<String>)> {
        let mut seen = Vec::new();
        let parsed = parse_response(raw, head, |n, v| {
            seen.push(format!("{n}={}", String::from_utf8_lossy(v)))
        })
        .unwrap();
        parsed.map(|(n, h)| (n, h, seen))
    }

    #[test]
    fn nginx_style_heads() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\n";
        let (n, h, seen) = parse(raw, false).unwrap();
        assert_eq!(&raw[n..], b"5\r\n");
        assert_eq!(
            (h.status, h.body, h.keep_alive),
            (200, BodyKind::Chunked, true)
        );
        assert_eq!(seen[0], "Server=nginx");
        let raw = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nX-Crc32: 0000abcd\r\n\r\n";
        let (_, h, seen) = parse(raw, false).unwrap();
        assert_eq!((h.status, h.body), (201, BodyKind::Length(0)));
        assert!(seen.contains(&"X-Crc32=0000abcd".to_string()));
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n";
        let (_, h, _) = parse(raw, true).unwrap();
        assert_eq!((h.body, h.content_length), (BodyKind::Empty, Some(7)));
        let raw = b"HTTP/1.0 200 OK\r\n\r\nabc";
        let (_, h, _) = parse(raw, false).unwrap();
        assert_eq!((h.body, h.keep_alive), (BodyKind::UntilClose, false));
        assert!(parse(b"HTTP/1.1 200 OK\r\n", false).is_none());
        assert!(parse_response(b"SSH-2.0\r\n\r\n", false, |_, _| {}).is_err());
    }

    #[test]
    fn request_heads() {
        let mut out = Vec::new();
        write_request(
            &mut out,
            "PUT",
            "h:1",
            "/a",
            Framing::Chunked,
            &[("X-A", b"1")],
        );
        assert_eq!(
            out,
            b"PUT /a HTTP/1.1\r\nHost: h:1\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
        );
        out.clear();
        write_request(&mut out, "GET", "h:1", "/b", Framing::Length(3), &[]);
        assert_eq!(
            out,
            b"GET /b HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\n\r\n"
        );
    }
}
