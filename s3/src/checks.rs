//! The checksums an S3 write announces, and their verdict on the bytes that
//! came: `Content-MD5`, `x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}`
//! in a header or (named by `x-amz-trailer`) in the trailer of an
//! `aws-chunked` body, and with credentials the signed payload's sha256. A
//! mismatch is `BadDigest` (`XAmzContentSHA256Mismatch` for the payload
//! hash), and nothing is stored.

use base64::Engine;

use super::auth::Signer;
use super::error::{Code, S3Error};
use super::request::S3Req;
use crate::digests::{Algorithm, Digests, Sums};
use crate::error::Error;
use crate::ops::put::Source;

#[derive(Debug, Default)]
pub struct Expected {
    md5: Option<Vec<u8>>,
    headers: Vec<(Algorithm, Vec<u8>)>,
    trailer: Option<Algorithm>,
    /// Computed and returned, though no value was given.
    asked: Vec<Algorithm>,
    payload_sha256: Option<Vec<u8>>,
}

fn b64(value: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
}

impl Expected {
    /// What a request's headers announce.
    pub fn of(req: &S3Req<'_>, signer: Option<&Signer>) -> Result<Expected, S3Error> {
        let mut e = Expected::default();
        if let Some(md5) = req.header("content-md5") {
            let md5 = b64(&md5).filter(|m| m.len() == 16).ok_or_else(|| {
                S3Error::new(
                    Code::InvalidDigest,
                    "The Content-MD5 you specified was invalid.",
                )
            })?;
            e.md5 = Some(md5);
        }
        for (name, value) in req.head.headers() {
            let Some(alg) = Algorithm::from_header(&String::from_utf8_lossy(name)) else {
                continue;
            };
            let value = b64(&String::from_utf8_lossy(value))
                .filter(|v| v.len() == alg.digest_len())
                .ok_or_else(|| {
                    S3Error::invalid_request(format!(
                        "Value for {} header is invalid.",
                        alg.header()
                    ))
                })?;
            e.headers.push((alg, value));
        }
        if let Some(t) = req.header("x-amz-trailer") {
            let alg = Algorithm::from_header(t.trim()).ok_or_else(|| {
                S3Error::invalid_request(format!("The trailer {t} is not a checksum."))
            })?;
            e.trailer = Some(alg);
        }
        if let Some(name) = req.header("x-amz-sdk-checksum-algorithm") {
            let alg = Algorithm::from_name(name.trim()).ok_or_else(|| {
                S3Error::invalid_request(format!("Unknown checksum algorithm {name}."))
            })?;
            e.asked.push(alg);
        }
        let sha = req.header("x-amz-content-sha256").unwrap_or_default();
        if signer.is_some() && sha.len() == 64 && sha.bytes().all(|c| c.is_ascii_hexdigit()) {
            e.payload_sha256 = (0..32)
                .map(|i| u8::from_str_radix(&sha[2 * i..2 * i + 2], 16).ok())
                .collect();
        }
        Ok(e)
    }

    /// The algorithms to compute (besides the md5, which always is).
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut all: Vec<Algorithm> = self.headers.iter().map(|(a, _)| *a).collect();
        all.extend(self.trailer);
        all.extend(&self.asked);
        if self.payload_sha256.is_some() {
            all.push(Algorithm::Sha256);
        }
        all
    }

    pub fn digests(&self) -> Digests {
        Digests::new(true, &self.algorithms())
    }

    /// The verdict on a small body read whole.
    pub fn check_body(&self, body: &[u8]) -> Result<(), Error> {
        let mut d = self.digests();
        d.update(body);
        self.check(&d.finish(), &NoTrailers)
    }

    /// The verdict on a whole value (and the trailers of its body).
    pub fn check(&self, sums: &Sums, source: &impl Source) -> Result<(), Error> {
        if let (Some(want), Some(got)) = (&self.md5, &sums.md5) {
            if want.as_slice() != got {
                return Err(S3Error::bad_digest("Content-MD5").into());
            }
        }
        for (alg, want) in &self.headers {
            if sums.get(*alg) != Some(want.as_slice()) {
                return Err(S3Error::bad_digest(alg.name()).into());
            }
        }
        if let Some(alg) = self.trailer {
            let sent = source.trailer(alg.header()).ok_or_else(|| {
                S3Error::invalid_request(format!("The trailer {} did not come.", alg.header()))
            })?;
            let sent = b64(sent)
                .ok_or_else(|| S3Error::invalid_request("A checksum trailer is not base64."))?;
            if sums.get(alg) != Some(sent.as_slice()) {
                return Err(S3Error::bad_digest(alg.name()).into());
            }
        }
        if let Some(want) = &self.payload_sha256 {
            if sums.get(Algorithm::Sha256) != Some(want.as_slice()) {
                return Err(S3Error::new(
                    Code::XAmzContentSHA256Mismatch,
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )
                .into());
            }
        }
        Ok(())
    }

    /// The checksums to give back, as headers (those the client sent or asked for).
    pub fn reply_headers(&self, sums: &Sums) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = Vec::new();
        let asked = self
            .headers
            .iter()
            .map(|(a, _)| *a)
            .chain(self.trailer)
            .chain(self.asked.iter().copied());
        for alg in asked {
            if out.iter().any(|(h, _)| *h == alg.header()) {
                continue;
            }
            if let Some(v) = sums.get(alg) {
                out.push((
                    alg.header(),
                    base64::engine::general_purpose::STANDARD.encode(v),
                ));
            }
        }
        out
    }
}

/// A body read whole, without trailers.
struct NoTrailers;

impl Source for NoTrailers {
    type Error = Error;

    async fn read_full(&mut self, _: &mut http1::Conn, buf: Vec<u8>) -> Result<Vec<u8>, Error> {
        Ok(buf)
    }

    fn is_done(&self) -> bool {
        true
    }

    fn trailer(&self, _: &str) -> Option<&str> {
        None
    }
}
