//! Chunked transfer coding (RFC 9112 §7.1): the framing both sides write,
//! and the pieces of it that [`crate::body::BodyReader`] parses.

use super::response::push_hex;
use super::HttpError;

/// The end of a chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";

/// Appends a chunk's size line; its `len` bytes of data follow, then
/// [`CHUNK_END`]. A size of 0 would end the body: use [`push_last`].
pub fn push_size(out: &mut Vec<u8>, len: usize) {
    debug_assert!(len > 0, "a chunk of 0 bytes ends the body");
    push_hex(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends a whole chunk holding `data` (nothing when it is empty).
pub fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    push_size(out, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(CHUNK_END);
}

/// Appends the last chunk, the trailer fields and the blank line that end
/// a chunked body.
pub fn push_last(out: &mut Vec<u8>, trailers: &[(&str, &str)]) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        super::response::header(out, name, value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `1a3f;ext=1` → 0x1a3f. At most 16 hex digits.
pub fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let end = line
        .iter()
        .position(|&c| c == b';' || c == b' ' || c == b'\t')
        .unwrap_or(line.len());
    let digits = &line[..end];
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(16)?;
        n = (n << 4) | u64::from(d);
    }
    Some(n)
}

/// One trailer field line: its name in lower case, its value trimmed.
pub fn parse_trailer(line: &[u8]) -> Result<(String, String), HttpError> {
    let text = String::from_utf8_lossy(line);
    let (name, value) = text
        .split_once(':')
        .ok_or(HttpError::BadRequest("bad trailer field"))?;
    Ok((name.trim().to_ascii_lowercase(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        assert_eq!(parse_chunk_size(b"1a3F"), Some(0x1a3f));
        assert_eq!(parse_chunk_size(b"10;name=value"), Some(16));
        assert_eq!(parse_chunk_size(b""), None);
        assert_eq!(parse_chunk_size(b"-1"), None);
        assert_eq!(parse_chunk_size(b"0x10"), None);
        assert_eq!(parse_chunk_size(b"11111111111111111"), None);
    }

    #[test]
    fn framing_written() {
        let mut out = Vec::new();
        push_chunk(&mut out, b"hello, world");
        push_chunk(&mut out, b"");
        push_last(&mut out, &[("X-Sum", "abc")]);
        assert_eq!(out, b"c\r\nhello, world\r\n0\r\nX-Sum: abc\r\n\r\n");
    }

    #[test]
    fn trailer_lines() {
        assert_eq!(
            parse_trailer(b"X-Mkv-Crc32: 0000abcd ").unwrap(),
            ("x-mkv-crc32".to_string(), "0000abcd".to_string())
        );
        assert!(parse_trailer(b"no colon").is_err());
    }
}
