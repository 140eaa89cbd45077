//! The digests of a value as it streams through the master: its md5 (the
//! record's hash, S3's ETag) and the checksums an S3 client may ask to be
//! checked (`x-amz-checksum-*`, the payload's sha256). Large pieces are
//! hashed by the hashing thread (`pool`), while they are being sent, side
//! by side with the pieces of other uploads.

mod pool;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::error::MasterError;
use crate::md5x::Md5;

/// Pieces this large or larger are hashed off the runtime thread.
const OFFLOAD_FROM: usize = 64 * 1024;

/// The `x-amz-checksum-*` algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

pub const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::Crc32,
    Algorithm::Crc32c,
    Algorithm::Crc64Nvme,
    Algorithm::Sha1,
    Algorithm::Sha256,
];

impl Algorithm {
    /// `x-amz-checksum-crc32`, ...
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// `CRC32`, ... (as in `x-amz-sdk-checksum-algorithm` and XML).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    pub fn from_header(name: &str) -> Option<Algorithm> {
        ALGORITHMS
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name))
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        ALGORITHMS
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64Nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }
}

enum Hasher {
    Crc32(crc32fast::Hasher),
    Fast(crc_fast::Digest, usize),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Hasher {
    fn new(a: Algorithm) -> Hasher {
        match a {
            Algorithm::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
            Algorithm::Crc32c => {
                Hasher::Fast(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi), 4)
            }
            Algorithm::Crc64Nvme => {
                Hasher::Fast(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme), 8)
            }
            Algorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(h) => h.update(data),
            Hasher::Fast(h, _) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// The digest in network byte order, as S3 encodes it (base64 of these).
    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Hasher::Fast(h, 4) => (h.finalize() as u32).to_be_bytes().to_vec(),
            Hasher::Fast(h, _) => h.finalize().to_be_bytes().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// What is computed of a value.
pub struct Digests {
    md5: Option<Md5>,
    others: Vec<(Algorithm, Hasher)>,
    len: u64,
    /// Set once a piece went to the hashing thread.
    stream: Option<pool::Stream>,
}

/// The digests of a whole value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sums {
    pub md5: Option<[u8; 16]>,
    pub checksums: Vec<(Algorithm, Vec<u8>)>,
    pub len: u64,
}

impl Sums {
    pub fn md5_hex(&self) -> Option<String> {
        self.md5.map(|m| hex(&m))
    }

    pub fn get(&self, a: Algorithm) -> Option<&[u8]> {
        self.checksums
            .iter()
            .find(|(x, _)| *x == a)
            .map(|(_, v)| v.as_slice())
    }
}

impl Digests {
    /// The md5 when `md5`, and each of `others` (duplicates ignored).
    pub fn new(md5: bool, others: &[Algorithm]) -> Digests {
        let mut list: Vec<(Algorithm, Hasher)> = Vec::new();
        for &a in others {
            if !list.iter().any(|(x, _)| *x == a) {
                list.push((a, Hasher::new(a)));
            }
        }
        Digests {
            md5: md5.then(Md5::new),
            others: list,
            len: 0,
            stream: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.md5.is_none() && self.others.is_empty()
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some(m) = &mut self.md5 {
            m.update(data);
        }
        self.update_others(data);
    }

    /// Everything but the md5 (which the hashing thread does in lanes).
    fn update_others(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        for (_, h) in &mut self.others {
            h.update(data);
        }
    }

    /// Hashes `piece` while `alongside` (its sends, say) runs: a large
    /// piece on the hashing thread, a small one inline.
    pub async fn update_while<F: std::future::Future>(
        &mut self,
        piece: bytes::Bytes,
        alongside: F,
    ) -> Result<F::Output, MasterError> {
        if self.is_empty() {
            self.len += piece.len() as u64;
            return Ok(alongside.await);
        }
        if piece.len() < OFFLOAD_FROM {
            self.update(&piece);
            return Ok(alongside.await);
        }
        self.stream.get_or_insert_with(pool::Stream::new);
        let moved = std::mem::replace(self, Digests::new(false, &[]));
        let (hashed, out) = monoio::join!(pool::hash(moved, piece), alongside);
        *self = hashed?;
        Ok(out)
    }

    pub fn finish(self) -> Sums {
        Sums {
            md5: self.md5.map(Md5::finalize),
            checksums: self
                .others
                .into_iter()
                .map(|(a, h)| (a, h.finish()))
                .collect(),
            len: self.len,
        }
    }
}

/// Lowercase hex, as md5s and S3's signatures are written.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn b64(v: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(v)
    }

    /// The values boto3, the aws CLI and pyarrow sent for these bodies.
    #[test]
    fn hex_digits() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn checksums_as_clients_send_them() {
        let mut d = Digests::new(true, &ALGORITHMS);
        d.update(b"hello ");
        d.update(b"world");
        let sums = d.finish();
        assert_eq!(sums.len, 11);
        assert_eq!(sums.md5_hex().unwrap(), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(b64(sums.get(Algorithm::Crc32).unwrap()), "DUoRhQ==");
        assert_eq!(
            b64(sums.get(Algorithm::Sha256).unwrap()),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
        assert_eq!(b64(sums.get(Algorithm::Crc32c).unwrap()), "yZRlqg==");
        assert_eq!(
            b64(sums.get(Algorithm::Sha1).unwrap()),
            "Kq5sNclPz7QV2+lfQIuc6R7oRu0="
        );
        let mut p = Digests::new(false, &[Algorithm::Crc64Nvme]);
        p.update(b"hello pyarrow");
        assert_eq!(
            b64(p.finish().get(Algorithm::Crc64Nvme).unwrap()),
            "e/8VMN58b7o="
        );
        assert_eq!(
            Algorithm::from_header("X-Amz-Checksum-CRC32C"),
            Some(Algorithm::Crc32c)
        );
        assert_eq!(
            Algorithm::from_name("crc64nvme"),
            Some(Algorithm::Crc64Nvme)
        );
    }
}
