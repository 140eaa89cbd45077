//! Percent-decoding (RFC 3986 §2.1), one rule for every caller: `%` must be
//! followed by two hex digits, and decodes to that byte — any byte, NUL
//! included; what a decoded byte may mean (a file name cannot hold NUL) is
//! the caller's to judge. Query values may also use form encoding, where
//! `+` is a space.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid percent-encoding")]
pub struct BadEscape;

/// Decodes a path into `out` (cleared first).
pub fn decode(raw: &[u8], out: &mut Vec<u8>) -> Result<(), BadEscape> {
    decode_into(raw, out, false)
}

/// Decodes a query name or value into `out` (cleared first); `+` is a space.
pub fn decode_form(raw: &[u8], out: &mut Vec<u8>) -> Result<(), BadEscape> {
    decode_into(raw, out, true)
}

fn decode_into(raw: &[u8], out: &mut Vec<u8>, plus_is_space: bool) -> Result<(), BadEscape> {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or(BadEscape)?;
                let digit = |c: u8| (c as char).to_digit(16).ok_or(BadEscape);
                out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(())
}

/// The `name=value` pairs of a raw query, still encoded, in order; a pair
/// without `=` has an empty value.
pub fn query_pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&c| c == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.iter().position(|&c| c == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(raw: &str, form: bool) -> Result<Vec<u8>, BadEscape> {
        let mut out = b"left over".to_vec();
        if form {
            decode_form(raw.as_bytes(), &mut out)?;
        } else {
            decode(raw.as_bytes(), &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn one_rule() {
        assert_eq!(dec("/a%20b+c%2F%3f", false).unwrap(), b"/a b+c/?");
        assert_eq!(dec("/a%20b+c", true).unwrap(), b"/a b c");
        assert_eq!(dec("%00%ff", false).unwrap(), [0, 0xff]);
        assert_eq!(dec("", false).unwrap(), b"");
        for bad in ["%", "%2", "%zz", "a%g0", "%+1", "%-1"] {
            assert_eq!(dec(bad, false), Err(BadEscape), "{bad}");
            assert_eq!(dec(bad, true), Err(BadEscape), "{bad}");
        }
    }

    #[test]
    fn pairs() {
        let got: Vec<_> = query_pairs(b"list&limit=10&&start=%2Fa=b&").collect();
        assert_eq!(
            got,
            [
                (&b"list"[..], &b""[..]),
                (b"limit", b"10"),
                (b"start", b"%2Fa=b")
            ]
        );
    }
}
