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

/// Where the next line of chunked framing ends in `buf`: `Ok(Some((len,
/// consumed)))` for a line of `len` bytes ended by CRLF, `Ok(None)` when no
/// line end has arrived yet. A line ended by a bare LF, or with a CR inside,
/// is refused: a parser that accepted it where another does not would let
/// one body be read as two different messages.
pub fn split_line(buf: &[u8]) -> Result<Option<(usize, usize)>, HttpError> {
    let Some(lf) = buf.iter().position(|&c| c == b'\n') else {
        return match buf.iter().position(|&c| c == b'\r') {
            Some(cr) if cr + 1 < buf.len() => {
                Err(HttpError::BadRequest("a bare CR in chunk framing"))
            }
            _ => Ok(None),
        };
    };
    if lf == 0 || buf[lf - 1] != b'\r' {
        return Err(HttpError::BadRequest("chunk framing line without CRLF"));
    }
    if buf[..lf - 1].contains(&b'\r') {
        return Err(HttpError::BadRequest("a bare CR in chunk framing"));
    }
    Ok(Some((lf - 1, lf + 1)))
}

/// `1a3f;ext=1` → 0x1a3f: 1 to 16 hex digits, then nothing, or optional
/// spaces or tabs and a `;` that starts the extensions (RFC 9112 §7.1.1).
pub fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let end = line
        .iter()
        .position(|c| !c.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let digits = &line[..end];
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let rest = line[end..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') || line[end..].contains(&0) {
        return None;
    }
    let mut n: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(16)?;
        n = (n << 4) | u64::from(d);
    }
    Some(n)
}

/// One trailer field line: its name (a token, no space before the colon)
/// in lower case, its value with spaces and tabs trimmed.
pub fn parse_trailer(line: &[u8]) -> Result<(String, String), HttpError> {
    let bad = HttpError::BadRequest("bad trailer field");
    let colon = line.iter().position(|&c| c == b':').ok_or(bad)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
        return Err(HttpError::BadRequest("bad trailer field"));
    }
    let value = value.trim_ascii();
    if value.iter().any(|&c| c < 0x20 && c != b'\t' || c == 0x7f) {
        return Err(HttpError::BadRequest("bad trailer field"));
    }
    Ok((
        String::from_utf8_lossy(name).to_ascii_lowercase(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

/// A character of a token (RFC 9110 §5.6.2).
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
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
        assert_eq!(parse_chunk_size(b"10 ;ext"), Some(16));
        assert_eq!(parse_chunk_size(b"10 garbage"), None);
        assert_eq!(parse_chunk_size(b"1 0"), None);
        assert_eq!(parse_chunk_size(b"10\x00"), None);
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
        assert!(parse_trailer(b"X-Sum : abc").is_err());
        assert!(parse_trailer(b": abc").is_err());
        assert!(parse_trailer(b"X-Sum: a\x01b").is_err());
        assert_eq!(split_line(b"5\r\nhello").unwrap(), Some((1, 3)));
        assert_eq!(split_line(b"5\r").unwrap(), None);
        assert!(split_line(b"5\nhello").is_err());
        assert!(split_line(b"5\r;x\r\n").is_err());
    }
}
