//! A volume's answer as the master reads it, and the headers of the volume
//! protocol it sends and reads (docs/volume-protocol.md). nginx sends none
//! of volume-uring's headers; the master works without them.

use http1::client::ResponseHead;

/// The CRC32 (8 hex digits) a volume-uring volume computed of what it stored.
pub const CRC_HEADER: &str = "X-Crc32";
/// Marks volume-uring's recursive folder listing (`GET /folder/?recursive`).
pub const LISTING_HEADER: &str = "X-Mkv-Listing";
/// Trailers of a chunked PUT: the CRC32 and md5 of the body sent.
pub const CRC_TRAILER: &str = "X-Mkv-Crc32";
pub const MD5_TRAILER: &str = "X-Mkv-Md5";
/// On a PUT into a staging file (`.mkv-parts/`), where in the file the body
/// goes: a ranged write instead of a whole new file (volume-uring only).
pub const OFFSET_HEADER: &str = "X-Mkv-Offset";
/// On `?mkv-assemble`: where the file replaced is kept.
pub const BACKUP_HEADER: &str = "X-Mkv-Backup";

/// A volume's answer.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    /// A recursive listing (volume-uring's `?recursive`), not nginx's.
    pub recursive_listing: bool,
    /// `X-Crc32`: volume-uring's CRC32 of what it stored or holds.
    pub crc32: Option<u32>,
    pub content_length: Option<u64>,
    /// `Last-Modified`, in seconds since the epoch.
    pub last_modified: Option<u64>,
    pub volume_uring: bool,
    pub crc_check: Option<CrcCheck>,
}

/// What the master takes from a volume's header lines beyond framing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extras {
    pub crc32: Option<u32>,
    pub recursive_listing: bool,
    pub last_modified: Option<u64>,
    /// `Server: volume-uring`: the volume speaks the extensions.
    pub volume_uring: bool,
    /// `X-Mkv-Crc32-Check`: whether the bytes matched the stored CRC, when
    /// a HEAD asked for the check.
    pub crc_check: Option<CrcCheck>,
}

/// What volume-uring found when it re-read a file for `mkv verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcCheck {
    Ok,
    Mismatch,
    /// The file has no stored CRC.
    NoCrc,
}

impl Extras {
    /// Takes what it wants of one header line (an `on_header` for http1).
    pub fn take(&mut self, name: &str, value: &[u8]) {
        if name.eq_ignore_ascii_case(CRC_HEADER) {
            self.crc32 = parse_crc(value);
        } else if name.eq_ignore_ascii_case(LISTING_HEADER) {
            self.recursive_listing = value.eq_ignore_ascii_case(b"recursive");
        } else if name.eq_ignore_ascii_case("last-modified") {
            self.last_modified = crate::time::parse_http_date(value);
        } else if name.eq_ignore_ascii_case("x-mkv-crc32-check") {
            self.crc_check = match value {
                b"ok" => Some(CrcCheck::Ok),
                b"mismatch" => Some(CrcCheck::Mismatch),
                _ => Some(CrcCheck::NoCrc),
            };
        } else if name.eq_ignore_ascii_case("server") {
            self.volume_uring = is_volume_uring(value);
        }
    }
}

/// Whether a `Server` header names volume-uring (with or without a
/// version), the volume that speaks the extensions.
pub fn is_volume_uring(server: &[u8]) -> bool {
    server.starts_with(b"volume-uring")
}

pub fn reply_of(head: &ResponseHead, extras: Extras) -> Reply {
    Reply {
        status: head.status,
        recursive_listing: extras.recursive_listing,
        crc32: extras.crc32,
        content_length: head.content_length,
        crc_check: extras.crc_check,
        last_modified: extras.last_modified,
        volume_uring: extras.volume_uring,
    }
}

/// A CRC32 as the volume protocol writes it: 8 hex digits.
pub fn crc_text(crc: u32) -> String {
    format!("{crc:08x}")
}

fn parse_crc(v: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(v).ok().filter(|t| t.len() == 8)?;
    u32::from_str_radix(text, 16)
        .ok()
        .filter(|_| text.bytes().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_headers() {
        let mut e = Extras::default();
        e.take("x-crc32", b"0000abcd");
        e.take("X-Mkv-Listing", b"recursive");
        assert_eq!((e.crc32, e.recursive_listing), (Some(0xabcd), true));
        for bad in [&b"+000abcd"[..], b"abcd", b"0000abcdz"] {
            let mut e = Extras::default();
            e.take("X-Crc32", bad);
            assert_eq!(e.crc32, None, "{bad:?}");
        }
        assert_eq!(crc_text(0xabcd), "0000abcd");
    }
}
