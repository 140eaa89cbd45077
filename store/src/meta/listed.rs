//! The part of an object's metadata record (`meta::ObjectMeta`, JSON) that a
//! listing reads: size, time, ETag and the record's md5. A page decodes a
//! thousand of them, so the form `ObjectMeta` writes — `{"s":N,"t":N`, then
//! `"e"` and `"h"` as strings without escapes, in that order — is read by
//! hand, and stops at the first field a listing does not show (content type,
//! headers, user metadata). Anything else goes through serde_json.

use std::borrow::Cow;

#[derive(serde::Deserialize, Debug, PartialEq, Eq)]
pub struct Listed<'a> {
    #[serde(rename = "s")]
    pub size: u64,
    #[serde(rename = "t")]
    pub mtime_ms: u64,
    #[serde(rename = "e", borrow, default)]
    pub etag: Cow<'a, str>,
    #[serde(rename = "h", borrow, default)]
    pub hash: Option<Cow<'a, str>>,
}

impl<'a> Listed<'a> {
    /// None when the record is not an object's metadata.
    pub fn decode(raw: &'a [u8]) -> Option<Listed<'a>> {
        quick(raw).or_else(|| serde_json::from_slice(raw).ok())
    }
}

/// The hand-read form; None sends the record to serde_json.
fn quick(raw: &[u8]) -> Option<Listed<'_>> {
    let mut r = Reader(raw);
    r.literal(b"{\"s\":")?;
    let size = r.number()?;
    r.literal(b",\"t\":")?;
    let mtime_ms = r.number()?;
    let mut out = Listed {
        size,
        mtime_ms,
        etag: Cow::Borrowed(""),
        hash: None,
    };
    if r.literal(b",\"e\":").is_some() {
        out.etag = Cow::Borrowed(r.string()?);
    }
    if r.literal(b",\"h\":").is_some() {
        out.hash = Some(Cow::Borrowed(r.string()?));
    }
    // The end, or fields a listing does not read.
    (r.0 == b"}" || r.0.starts_with(b",\"")).then_some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn literal(&mut self, what: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(what)?;
        Some(())
    }

    /// An unsigned integer as JSON writes it (no leading zeros).
    fn number(&mut self) -> Option<u64> {
        let len = self.0.iter().take_while(|c| c.is_ascii_digit()).count();
        let (digits, rest) = self.0.split_at(len);
        if digits.is_empty() || (digits[0] == b'0' && len > 1) {
            return None;
        }
        // Up to 19 digits cannot overflow; more are checked.
        let n = if len <= 19 {
            digits
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'))
        } else {
            digits.iter().try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })?
        };
        self.0 = rest;
        Some(n)
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.0.strip_prefix(b"\"")?;
        let end = rest.iter().position(|&c| c == b'"')?;
        let text = &rest[..end];
        // One pass without early exits, which the compiler vectorises.
        let special = text
            .iter()
            .fold(false, |sp, &c| sp | (c == b'\\') | (c < 0x20));
        if special {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        self.0 = &rest[end + 1..];
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ObjectMeta;

    fn serde(raw: &[u8]) -> Option<Listed<'_>> {
        serde_json::from_slice(raw).ok()
    }

    #[test]
    fn written_records_are_read_by_hand_as_serde_reads_them() {
        let full = ObjectMeta {
            size: 1 << 40,
            mtime_ms: 1_764_763_200_123,
            etag: "0123456789abcdef0123456789abcdef-12".into(),
            hash: Some("0123456789abcdef0123456789abcdef".into()),
            content_type: Some("text/plain; charset=\"utf-8\"".into()),
            headers: vec![("cache-control".into(), "no-cache".into())],
            user: vec![("a\\b".into(), "é}".into())],
            upload: Some("0a1b".into()),
        };
        let bare = ObjectMeta::default();
        let no_hash = ObjectMeta {
            hash: None,
            ..full.clone()
        };
        let no_etag = ObjectMeta {
            etag: String::new(),
            ..full.clone()
        };
        for m in [full, bare, no_hash, no_etag] {
            let raw = serde_json::to_vec(&m).unwrap();
            let by_hand = quick(&raw).expect("the written form");
            assert_eq!(Some(&by_hand), serde(&raw).as_ref());
            assert_eq!(by_hand.size, m.size);
            assert_eq!(by_hand.etag, m.etag);
            assert_eq!(by_hand.hash.as_deref(), m.hash.as_deref());
        }
    }

    #[test]
    fn other_forms_go_through_serde() {
        for raw in [
            &br#"{ "s":1,"t":2}"#[..],
            br#"{"t":2,"s":1}"#,
            br#"{"s":1,"t":2,"e":"a\"b"}"#,
            br#"{"s":1,"t":2,"h":null}"#,
            br#"{"s":01,"t":2}"#,
            br#"{"s":18446744073709551616,"t":2}"#,
            br#"{"s":1,"t":2} "#,
            br#"{"s":-1,"t":2}"#,
            br#"{"s":1,"t":2"#,
            b"{\"s\":1,\"t\":2,\"e\":\"\xff\"}",
            b"",
            b"a:1,b:2",
        ] {
            assert_eq!(quick(raw), None, "{}", String::from_utf8_lossy(raw));
            assert_eq!(Listed::decode(raw), serde(raw));
        }
        let escaped = br#"{"s":1,"t":2,"e":"a\"b"}"#;
        assert_eq!(Listed::decode(escaped).unwrap().etag, "a\"b");
        let spaced = br#"{ "s":1,"t":2}"#;
        assert_eq!(Listed::decode(spaced).unwrap().size, 1);
    }
}
