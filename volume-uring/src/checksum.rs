//! The CRC32 (IEEE, as crc32fast computes it) of a stored file: computed while
//! a PUT streams in, kept in the `user.mkv.crc32` xattr as 8 lower-case hex
//! digits, and sent as `X-Crc32` on PUT, GET and HEAD answers.

use std::os::fd::AsFd;

pub const CRC_HEADER: &str = "X-Crc32";
pub const XATTR: &str = "user.mkv.crc32";

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
