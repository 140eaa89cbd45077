//! Writing response heads into a connection's write buffer: no allocation
//! once the buffer has grown, and one `Date` formatting per second per thread.
//!
//! A head is started with [`start`], which gives a [`Head`] that records
//! the status and the `Content-Length` as they are written, and ended with
//! [`Head::end`], which gives the [`Answer`] a service returns: what the
//! loop, the logs and the metrics know of an answer, read from what was
//! written rather than parsed back out of the bytes.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

struct DateCache {
    second: u64,
    text: [u8; 29],
}

thread_local! {
    static DATE: RefCell<DateCache> = const { RefCell::new(DateCache { second: u64::MAX, text: [0; 29] }) };
}

/// Appends the current time as an HTTP date (`Tue, 24 Nov 2026 05:07:20 GMT`).
pub fn push_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cache = cell.borrow_mut();
        if cache.second != second {
            let text = httpdate::fmt_http_date(now);
            cache.text.copy_from_slice(&text.as_bytes()[..29]);
            cache.second = second;
        }
        out.extend_from_slice(&cache.text);
    });
}

pub fn push_num(out: &mut Vec<u8>, n: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(n).as_bytes());
}

/// Appends `n` in lower-case hex, without leading zeros (chunk sizes).
pub fn push_hex(out: &mut Vec<u8>, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(DIGITS[((n >> (4 * i)) & 0xf) as usize]);
    }
}

/// What a handler answered: its status, the `Content-Length` its head
/// declared (None for a chunked body or none at all), and whether the
/// connection stays open. Only [`Head::end`] makes one, so a handler that
/// returns one has written a whole head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a service returns the answer it wrote"]
pub struct Answer {
    pub status: u16,
    pub length: Option<u64>,
    pub keep_alive: bool,
}

/// A response head being written into a buffer: started by [`start`], its
/// headers added with [`header`] and friends, its length with
/// [`Head::content_length`], ended by [`Head::end`].
#[derive(Debug)]
#[must_use = "a head is ended with Head::end"]
pub struct Head {
    status: u16,
    length: Option<u64>,
}

impl Head {
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Writes `Content-Length: n` and records it.
    pub fn content_length(&mut self, out: &mut Vec<u8>, n: u64) {
        header_num(out, "Content-Length", n);
        self.length = Some(n);
    }

    /// Ends the head: the connection header that the client needs, then the
    /// blank line.
    pub fn end(self, out: &mut Vec<u8>, keep_alive: bool, http10: bool) -> Answer {
        finish(out, keep_alive, http10);
        Answer {
            status: self.status,
            length: self.length,
            keep_alive,
        }
    }
}

/// Status line plus `Server` and `Date`.
pub fn start(out: &mut Vec<u8>, code: u16, server: &str) -> Head {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_num(out, u64::from(code));
    out.push(b' ');
    out.extend_from_slice(reason(code).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(server.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    push_date(out);
    out.extend_from_slice(b"\r\n");
    Head {
        status: code,
        length: None,
    }
}

pub fn header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

pub fn header_num(out: &mut Vec<u8>, name: &str, n: u64) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    push_num(out, n);
    out.extend_from_slice(b"\r\n");
}

/// The connection header that the client needs, then the blank line.
fn finish(out: &mut Vec<u8>, keep_alive: bool, http10: bool) {
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A whole response with a short body (an error text, a JSON document).
pub fn simple(
    out: &mut Vec<u8>,
    code: u16,
    server: &str,
    content_type: Option<&str>,
    body: &[u8],
    keep_alive: bool,
    http10: bool,
) -> Answer {
    let mut head = start(out, code, server);
    if let Some(ct) = content_type {
        header(out, "Content-Type", ct.as_bytes());
    }
    head.content_length(out, body.len() as u64);
    let answer = head.end(out, keep_alive, http10);
    out.extend_from_slice(body);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_numbers() {
        for (n, text) in [
            (0u64, "0"),
            (0xa, "a"),
            (0x1a3f, "1a3f"),
            (u64::MAX, "ffffffffffffffff"),
        ] {
            let mut out = Vec::new();
            push_hex(&mut out, n);
            assert_eq!(out, text.as_bytes());
        }
    }

    #[test]
    fn simple_response_bytes() {
        let mut out = Vec::new();
        let answer = simple(
            &mut out,
            404,
            "t",
            Some("text/plain"),
            b"nope",
            false,
            false,
        );
        let recorded = Answer {
            status: 404,
            length: Some(4),
            keep_alive: false,
        };
        assert_eq!(answer, recorded);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\nServer: t\r\nDate: "));
        assert!(text.ends_with(
            " GMT\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
        ));
    }
}
