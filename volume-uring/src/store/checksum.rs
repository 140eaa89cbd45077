//! What a volume keeps about a stored file, in one xattr, `user.mkv`:
//! - its CRC32 (IEEE, as crc32fast computes it), as 8 lower-case hex digits:
//!   computed while a PUT streams in, sent as `X-Crc32` on PUT, GET and HEAD
//!   answers; a PUT whose chunked body ends with an `X-Mkv-Crc32` trailer
//!   that disagrees is refused.
//! - then, when the master sent it in an `X-Mkv-Md5` trailer (it knows it
//!   only once the body is sent), a space and its md5 as 32 lower-case hex
//!   digits; listed by `GET /folder/?recursive`, so a rebuilt index gets its
//!   hashes back.
//!
//! One short value (41 bytes at most) fits inside an ext4 inode with the
//! default 256-byte inodes; two xattrs do not, and would cost every file an
//! extra 4 KiB block to allocate, write, sync and free.

use std::os::fd::AsFd;

pub const CRC_HEADER: &str = "X-Crc32";
pub const XATTR: &str = "user.mkv";
pub const CRC_TRAILER: &str = "X-Mkv-Crc32";
pub const MD5_TRAILER: &str = "X-Mkv-Md5";

/// The longest `user.mkv` value: CRC, space, md5.
pub(crate) const XATTR_MAX: usize = 8 + 1 + 32;

pub fn to_hex(crc: u32) -> [u8; 8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 8];
    for (i, b) in out.iter_mut().enumerate() {
        *b = DIGITS[((crc >> (28 - 4 * i)) & 0xf) as usize];
    }
    out
}

pub fn parse_hex(v: &[u8]) -> Option<u32> {
    if v.len() != 8 || !v.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let s = std::str::from_utf8(v).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// Whether `v` is an md5 in hex (32 hex digits).
pub fn is_md5_hex(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|c| c.is_ascii_hexdigit())
}

/// What `user.mkv` holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sums {
    pub crc: Option<u32>,
    /// Lower-case hex.
    pub md5: Option<String>,
}

/// A `user.mkv` value cut into its CRC and, when there is one, its md5.
fn split(v: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    match v.split_at_checked(8)? {
        (crc, b"") => Some((crc, None)),
        (crc, [b' ', md5 @ ..]) => Some((crc, Some(md5))),
        _ => None,
    }
}

impl Sums {
    pub(crate) fn parse(v: &[u8]) -> Sums {
        let Some((crc, md5)) = split(v) else {
            return Sums::default();
        };
        Sums {
            crc: parse_hex(crc),
            md5: md5
                .and_then(|m| std::str::from_utf8(m).ok())
                .filter(|m| is_md5_hex(m))
                .map(str::to_ascii_lowercase),
        }
    }
}

/// What an open file's xattr holds (files written by nginx have none).
pub fn read_sums<Fd: AsFd>(fd: Fd) -> Sums {
    let mut buf = [0u8; XATTR_MAX];
    match rustix::fs::fgetxattr(fd, XATTR, &mut buf[..]) {
        Ok(n) => Sums::parse(&buf[..n]),
        Err(_) => Sums::default(),
    }
}

/// The stored CRC of an open file, if it has one (GET and HEAD: the md5
/// is not parsed).
pub fn read<Fd: AsFd>(fd: Fd) -> Option<u32> {
    let mut buf = [0u8; XATTR_MAX];
    let n = rustix::fs::fgetxattr(fd, XATTR, &mut buf[..]).ok()?;
    split(&buf[..n]).and_then(|(crc, _)| parse_hex(crc))
}

/// Stores the CRC, and the md5 when there is one (32 hex digits; anything
/// else is left out). `Ok(false)` when the filesystem has no user xattrs.
pub fn write<Fd: AsFd>(fd: Fd, crc: u32, md5: Option<&str>) -> std::io::Result<bool> {
    let mut value = [0u8; XATTR_MAX];
    value[..8].copy_from_slice(&to_hex(crc));
    let len = match md5.filter(|m| is_md5_hex(m)) {
        Some(m) => {
            value[8] = b' ';
            value[9..].copy_from_slice(m.as_bytes());
            value[9..].make_ascii_lowercase();
            XATTR_MAX
        }
        None => 8,
    };
    match rustix::fs::fsetxattr(fd, XATTR, &value[..len], rustix::fs::XattrFlags::empty()) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::OPNOTSUPP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(&to_hex(0x0000abcd), b"0000abcd");
        assert_eq!(&to_hex(crc32fast::hash(b"hello")), b"3610a686");
        assert_eq!(parse_hex(b"3610a686"), Some(0x3610a686));
        assert_eq!(parse_hex(b"3610A686"), Some(0x3610a686));
        assert_eq!(parse_hex(b"3610a68"), None);
        assert_eq!(parse_hex(b"+610a686"), None);
    }

    #[test]
    fn sums_parse() {
        let md5 = "5d41402abc4b2a76b9719d911017c592";
        assert_eq!(
            Sums::parse(format!("3610a686 {}", md5.to_uppercase()).as_bytes()),
            Sums {
                crc: Some(0x3610a686),
                md5: Some(md5.to_string())
            }
        );
        assert_eq!(
            Sums::parse(b"3610a686"),
            Sums {
                crc: Some(0x3610a686),
                md5: None
            }
        );
        assert_eq!(
            Sums::parse(b"3610a686 xyz"),
            Sums {
                crc: Some(0x3610a686),
                md5: None
            }
        );
        assert_eq!(Sums::parse(b"3610a6"), Sums::default());
        assert_eq!(Sums::parse(b""), Sums::default());
    }
}
