//! What a volume keeps about a stored file, in xattrs:
//! - its CRC32 (IEEE, as crc32fast computes it): computed while a PUT streams
//!   in, kept in `user.mkv.crc32` as 8 lower-case hex digits, sent as
//!   `X-Crc32` on PUT, GET and HEAD answers; a PUT whose chunked body ends
//!   with an `X-Mkv-Crc32` trailer that disagrees is refused.
//! - its md5, when the master sends it in an `X-Mkv-Md5` trailer (it knows
//!   it only once the body is sent): kept in `user.mkv.md5`, and listed by
//!   `GET /folder/?recursive`, so a rebuilt index gets its hashes back.

use std::os::fd::AsFd;

pub const CRC_HEADER: &str = "X-Crc32";
pub const XATTR: &str = "user.mkv.crc32";
pub const CRC_TRAILER: &str = "X-Mkv-Crc32";
pub const MD5_TRAILER: &str = "X-Mkv-Md5";
pub const MD5_XATTR: &str = "user.mkv.md5";

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

/// The stored CRC of an open file, if it has one (files written by nginx do not).
pub fn read<Fd: AsFd>(fd: Fd) -> Option<u32> {
    let mut buf = [0u8; 8];
    match rustix::fs::fgetxattr(fd, XATTR, &mut buf[..]) {
        Ok(8) => parse_hex(&buf),
        _ => None,
    }
}

/// Stores the CRC. `Ok(false)` when the filesystem has no user xattrs.
pub fn write<Fd: AsFd>(fd: Fd, crc: u32) -> std::io::Result<bool> {
    match rustix::fs::fsetxattr(fd, XATTR, &to_hex(crc), rustix::fs::XattrFlags::empty()) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::OPNOTSUPP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether `v` is an md5 in hex (32 hex digits).
pub fn is_md5_hex(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|c| c.is_ascii_hexdigit())
}

/// The stored md5 (lower-case hex) of an open file, if it has one.
pub fn read_md5<Fd: AsFd>(fd: Fd) -> Option<String> {
    let mut buf = [0u8; 32];
    match rustix::fs::fgetxattr(fd, MD5_XATTR, &mut buf[..]) {
        Ok(32) => std::str::from_utf8(&buf)
            .ok()
            .filter(|s| is_md5_hex(s))
            .map(str::to_string),
        _ => None,
    }
}

/// Stores the md5. `Ok(false)` when the filesystem has no user xattrs.
pub fn write_md5<Fd: AsFd>(fd: Fd, md5: &str) -> std::io::Result<bool> {
    let lower = md5.to_ascii_lowercase();
    match rustix::fs::fsetxattr(
        fd,
        MD5_XATTR,
        lower.as_bytes(),
        rustix::fs::XattrFlags::empty(),
    ) {
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
}
