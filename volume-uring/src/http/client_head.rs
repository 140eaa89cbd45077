//! Response heads, as the master's volume client reads them from volume-uring
//! or nginx.

use super::body::BodyKind;
use super::head::parse_u64;
use super::HttpError;

#[derive(Debug, Default)]
pub struct ResponseHead {
    pub status: u16,
    pub body: Option<BodyKind>,
    pub keep_alive: bool,
    /// `X-Crc32`: the CRC32 volume-uring computed of what it stored.
    pub crc32: Option<u32>,
    /// `Content-Length` as sent (also for HEAD, where there is no body).
    pub content_length: Option<u64>,
    /// `X-Mkv-Listing: recursive`: volume-uring's recursive folder listing.
    pub recursive_listing: bool,
}

/// Parses a response head from the front of `buf`; `Ok(None)` when incomplete.
/// `head_request` tells that the request was a HEAD (no body follows).
pub fn parse(buf: &[u8], head_request: bool) -> Result<Option<(usize, ResponseHead)>, HttpError> {
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
    let mut out = ResponseHead {
        status: resp.code.unwrap_or(0),
        keep_alive: resp.version == Some(1),
        ..Default::default()
    };
    let mut chunked = false;
    for h in resp.headers.iter() {
        let v = h.value.trim_ascii();
        if h.name.eq_ignore_ascii_case("content-length") {
            out.content_length =
                Some(parse_u64(v).ok_or(HttpError::BadRequest("bad content-length"))?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if v.eq_ignore_ascii_case(b"close") {
                out.keep_alive = false;
            } else if v.eq_ignore_ascii_case(b"keep-alive") {
                out.keep_alive = true;
            }
        } else if h.name.eq_ignore_ascii_case(crate::checksum::CRC_HEADER) {
            out.crc32 = crate::checksum::parse_hex(v);
        } else if h.name.eq_ignore_ascii_case("x-mkv-listing") {
            out.recursive_listing = v.eq_ignore_ascii_case(b"recursive");
        }
    }
    let no_body = head_request || out.status == 204 || out.status == 304 || out.status / 100 == 1;
    out.body = Some(if no_body {
        BodyKind::Empty
    } else if chunked {
        BodyKind::Chunked
    } else if let Some(n) = out.content_length {
        BodyKind::Length(n)
    } else {
        out.keep_alive = false;
        BodyKind::UntilClose
    });
    Ok(Some((n, out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_style_heads() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\n";
        let (n, h) = parse(raw, false).unwrap().unwrap();
        assert_eq!(&raw[n..], b"5\r\n");
        assert_eq!(
            (h.status, h.body, h.keep_alive),
            (200, Some(BodyKind::Chunked), true)
        );
        let raw = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nX-Crc32: 0000abcd\r\n\r\n";
        let (_, h) = parse(raw, false).unwrap().unwrap();
        assert_eq!(
            (h.status, h.crc32, h.body),
            (201, Some(0xabcd), Some(BodyKind::Length(0)))
        );
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n";
        let (_, h) = parse(raw, true).unwrap().unwrap();
        assert_eq!((h.body, h.content_length), (Some(BodyKind::Empty), Some(7)));
        let raw = b"HTTP/1.0 200 OK\r\n\r\nabc";
        let (_, h) = parse(raw, false).unwrap().unwrap();
        assert_eq!((h.body, h.keep_alive), (Some(BodyKind::UntilClose), false));
        assert!(parse(b"HTTP/1.1 200 OK\r\n", false).unwrap().is_none());
        assert!(parse(b"SSH-2.0\r\n\r\n", false).is_err());
    }
}
