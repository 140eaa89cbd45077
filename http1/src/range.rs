//! `Range` and the validators (`ETag`, `Last-Modified`) of a file, with the
//! answers nginx (and S3) give: one range is served as a 206, a malformed or
//! unsatisfiable one is a 416, a unit other than `bytes` is ignored, and so is
//! any range on an empty file. Several ranges at once are served as the whole
//! file (a 200), which HTTP allows.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    Full,
    /// `start..=end`, both inside the file.
    Part {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

pub fn resolve(header: Option<&[u8]>, size: u64) -> Span {
    let Some(value) = header else {
        return Span::Full;
    };
    if size == 0 {
        return Span::Full;
    }
    let Some(spec) = strip_prefix_ignore_case(value, b"bytes=") else {
        return Span::Full;
    };
    if spec.contains(&b',') {
        return Span::Full;
    }
    let spec = spec.trim_ascii();
    let Some(dash) = spec.iter().position(|&c| c == b'-') else {
        return Span::Unsatisfiable;
    };
    let (first, last) = (spec[..dash].trim_ascii(), spec[dash + 1..].trim_ascii());
    let number = crate::request::parse_u64;
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Span::Unsatisfiable,
        (true, false) => match number(last) {
            Some(0) | None => Span::Unsatisfiable,
            Some(n) => Span::Part {
                start: size - n.min(size),
                end: size - 1,
            },
        },
        (false, _) => {
            let Some(start) = number(first) else {
                return Span::Unsatisfiable;
            };
            let end = if last.is_empty() {
                Some(u64::MAX)
            } else {
                number(last)
            };
            match end {
                Some(end) if end >= start && start < size => Span::Part {
                    start,
                    end: end.min(size - 1),
                },
                _ => Span::Unsatisfiable,
            }
        }
    }
}

fn strip_prefix_ignore_case<'a>(v: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if v.len() >= prefix.len() && v[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&v[prefix.len()..])
    } else {
        None
    }
}

/// A file's validators, formatted on the stack as nginx formats them.
pub struct Validators {
    etag: [u8; 40],
    etag_len: usize,
    last_modified: [u8; 29],
}

impl Validators {
    pub fn new(mtime_secs: i64, size: u64) -> Validators {
        let mut etag = [0u8; 40];
        let mut cursor = std::io::Cursor::new(&mut etag[..]);
        let _ = write!(cursor, "\"{:x}-{:x}\"", mtime_secs.max(0), size);
        let etag_len = cursor.position() as usize;
        let mut last_modified = [0u8; 29];
        let when = UNIX_EPOCH + Duration::from_secs(mtime_secs.max(0) as u64);
        let _ = write!(&mut last_modified[..], "{}", httpdate::HttpDate::from(when));
        Validators {
            etag,
            etag_len,
            last_modified,
        }
    }

    pub fn etag(&self) -> &[u8] {
        &self.etag[..self.etag_len]
    }

    pub fn last_modified(&self) -> &[u8] {
        &self.last_modified
    }

    /// `If-None-Match` (any listed tag, or `*`) or an exact `If-Modified-Since`.
    pub fn not_modified(
        &self,
        if_none_match: Option<&[u8]>,
        if_modified_since: Option<&[u8]>,
    ) -> bool {
        if let Some(inm) = if_none_match {
            return inm.trim_ascii() == b"*"
                || inm
                    .split(|&c| c == b',')
                    .any(|t| strip_weak(t.trim_ascii()) == self.etag());
        }
        if_modified_since == Some(self.last_modified())
    }

    /// `If-Range`: the range applies only if the validator still matches.
    pub fn range_applies(&self, if_range: Option<&[u8]>) -> bool {
        match if_range {
            None => true,
            Some(v) => v == self.etag() || v == self.last_modified(),
        }
    }
}

fn strip_weak(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(h: &str, size: u64) -> Span {
        resolve(Some(h.as_bytes()), size)
    }

    #[test]
    fn ranges_like_nginx() {
        assert_eq!(r("bytes=2-5", 10), Span::Part { start: 2, end: 5 });
        assert_eq!(r("bytes=2-", 10), Span::Part { start: 2, end: 9 });
        assert_eq!(r("bytes=-3", 10), Span::Part { start: 7, end: 9 });
        assert_eq!(r("bytes=-30", 10), Span::Part { start: 0, end: 9 });
        assert_eq!(r("bytes=5-100", 10), Span::Part { start: 5, end: 9 });
        assert_eq!(r("bytes= 1-2", 10), Span::Part { start: 1, end: 2 });
        for bad in [
            "bytes=10-",
            "bytes=10-20",
            "bytes=-0",
            "bytes=abc",
            "bytes=5-2",
            "bytes=-",
            "bytes=1",
        ] {
            assert_eq!(r(bad, 10), Span::Unsatisfiable, "{bad}");
        }
        assert_eq!(r("chars=0-1", 10), Span::Full);
        assert_eq!(r("bytes=0-1,3-4", 10), Span::Full);
        assert_eq!(r("bytes=0-1", 0), Span::Full);
        assert_eq!(resolve(None, 10), Span::Full);
    }

    #[test]
    fn validators_like_nginx() {
        let v = Validators::new(0x6b0537d0, 10);
        assert_eq!(v.etag(), b"\"6b0537d0-a\"");
        assert_eq!(v.last_modified(), b"Tue, 24 Nov 2026 07:08:00 GMT");
        assert!(v.not_modified(Some(b"\"6b0537d0-a\""), None));
        assert!(v.not_modified(Some(b"\"x\", W/\"6b0537d0-a\""), None));
        assert!(!v.not_modified(Some(b"\"x\""), Some(b"Tue, 24 Nov 2026 07:08:00 GMT")));
        assert!(v.not_modified(None, Some(b"Tue, 24 Nov 2026 07:08:00 GMT")));
        assert!(v.range_applies(Some(b"\"6b0537d0-a\"")));
        assert!(!v.range_applies(Some(b"\"old\"")));
    }
}
