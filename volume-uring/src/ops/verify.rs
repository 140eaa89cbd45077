//! `HEAD` with `X-Mkv-Verify: crc32` (for `mkv verify`): the volume re-reads
//! the whole file and answers `X-Mkv-Crc32-Check: ok`, `mismatch` or `none`
//! (no CRC was kept), so that a replica's bytes are checked where they
//! are, without crossing the network. nginx ignores the header; the master
//! then reads the bytes itself.

use std::os::fd::OwnedFd;

use monoio::buf::IoBufMut;

use crate::error::VolumeError;
use crate::store::checksum;

pub const VERIFY_HEADER: &str = "x-mkv-verify";
pub const CHECK_HEADER: &str = "X-Mkv-Crc32-Check";

/// Reads are this long.
const CHUNK: usize = 1 << 20;

/// Whether the stored CRC of the file matches its bytes.
pub async fn check(fd: &OwnedFd, size: u64) -> Result<&'static str, VolumeError> {
    let Some(stored) = checksum::read(fd) else {
        return Ok("none");
    };
    let file = monoio::fs::File::from_std(std::fs::File::from(fd.try_clone()?))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = Vec::with_capacity(CHUNK);
    let mut offset = 0u64;
    while offset < size {
        let want = ((size - offset) as usize).min(CHUNK);
        let (res, slice) = file.read_at(buf.slice_mut(0..want), offset).await;
        buf = slice.into_inner();
        let n = res?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(if hasher.finalize() == stored && offset == size {
        "ok"
    } else {
        "mismatch"
    })
}
