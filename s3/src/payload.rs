//! An S3 request's body, decoded as it streams: plain, or `aws-chunked`
//! (`Content-Encoding: aws-chunked`, `x-amz-content-sha256:
//! STREAMING-...`): chunks of `SIZE[;chunk-signature=SIG]\r\nDATA\r\n`, a
//! last chunk of size 0, then trailer fields (`x-amz-checksum-*`, and for
//! signed streams `x-amz-trailer-signature`). With credentials, each chunk's
//! signature is checked as it ends, chained from the request's signature.
//! A body that fails a check fails the request before anything is stored.

use http1::chunked::parse_chunk_size;
use http1::{BodyKind, BodyReader, Conn};
use sha2::{Digest, Sha256};

use super::auth::Signer;
use super::error::{Code, S3Error};
use super::sigv4;
use crate::error::Error;

/// A chunk-size line or a trailer line longer than this is refused.
const MAX_LINE: usize = 4096;
/// All trailer lines together.
const MAX_TRAILERS: usize = 16 * 1024;
const RAW_BUF: usize = 64 * 1024;

/// How the body is framed above HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Plain,
    AwsChunked { signed: bool, trailer: bool },
}

/// The framing a request says its body has, and its decoded length when given.
pub fn framing(req: &super::request::S3Req<'_>) -> Result<(Framing, Option<u64>), S3Error> {
    let sha = req.header("x-amz-content-sha256").unwrap_or_default();
    let aws_chunked = req.header("content-encoding").is_some_and(|e| {
        e.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("aws-chunked"))
    });
    let framing = match sha.as_str() {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Framing::AwsChunked {
            signed: true,
            trailer: false,
        },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => Framing::AwsChunked {
            signed: true,
            trailer: true,
        },
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Framing::AwsChunked {
            signed: false,
            trailer: true,
        },
        s if s.starts_with("STREAMING-") => {
            return Err(S3Error::not_implemented(&format!(
                "The payload signing {s}"
            )))
        }
        _ if aws_chunked => Framing::AwsChunked {
            signed: false,
            trailer: req.head.header("x-amz-trailer").is_some(),
        },
        _ => Framing::Plain,
    };
    let decoded = match req.header("x-amz-decoded-content-length") {
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            S3Error::invalid_argument("x-amz-decoded-content-length must be a number")
        })?),
        None => None,
    };
    Ok((framing, decoded))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data { remaining: u64 },
    DataEnd,
    Trailers { seen: usize },
    Done,
}

pub struct Payload<'s> {
    body: BodyReader,
    framing: Framing,
    signer: Option<&'s Signer>,
    /// Bytes read from the HTTP body and not decoded yet, from `pos`.
    raw: Vec<u8>,
    pos: usize,
    state: State,
    previous_signature: String,
    chunk_signature: String,
    chunk_hash: Option<Sha256>,
    trailers: Vec<(String, String)>,
    decoded: u64,
    expect: Option<u64>,
}

fn malformed(why: &str) -> Error {
    S3Error::new(
        Code::IncompleteBody,
        format!("The aws-chunked body is malformed: {why}"),
    )
    .into()
}

impl<'s> Payload<'s> {
    /// `expect`: the decoded length the request announced, checked at the end.
    pub fn new(
        kind: BodyKind,
        framing: Framing,
        signer: Option<&'s Signer>,
        expect: Option<u64>,
    ) -> Payload<'s> {
        let checks_chunks =
            matches!(framing, Framing::AwsChunked { signed: true, .. }) && signer.is_some();
        Payload {
            body: BodyReader::new(kind),
            framing,
            signer: signer.filter(|_| checks_chunks),
            raw: Vec::new(),
            pos: 0,
            state: if framing == Framing::Plain {
                State::Done
            } else {
                State::Size
            },
            previous_signature: signer
                .map(|s| s.claim.signature.clone())
                .unwrap_or_default(),
            chunk_signature: String::new(),
            chunk_hash: None,
            trailers: Vec::new(),
            decoded: 0,
            expect,
        }
    }

    pub fn is_done(&self) -> bool {
        match self.framing {
            Framing::Plain => self.body.is_done(),
            Framing::AwsChunked { .. } => self.state == State::Done,
        }
    }

    /// A trailer field of an `aws-chunked` body, once it has been read.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Decoded bytes into `buf` until it is full or the body ends.
    pub async fn read_full(&mut self, conn: &mut Conn, mut buf: Vec<u8>) -> Result<Vec<u8>, Error> {
        if self.framing == Framing::Plain {
            let before = buf.len();
            let buf = self.body.read_full(conn, buf).await?;
            self.decoded += (buf.len() - before) as u64;
            if self.body.is_done() {
                self.check_length()?;
            }
            return Ok(buf);
        }
        while buf.len() < buf.capacity() && self.state != State::Done {
            self.step(conn, &mut buf).await?;
        }
        Ok(buf)
    }

    fn check_length(&self) -> Result<(), Error> {
        match self.expect {
            Some(n) if n != self.decoded => Err(S3Error::new(
                Code::IncompleteBody,
                format!(
                    "The body had {} bytes, not the {n} announced.",
                    self.decoded
                ),
            )
            .into()),
            _ => Ok(()),
        }
    }

    async fn step(&mut self, conn: &mut Conn, buf: &mut Vec<u8>) -> Result<(), Error> {
        match self.state {
            State::Size => {
                let line = self.line(conn).await?;
                self.chunk_header(&line)
            }
            State::Data { remaining } => {
                if self.pos == self.raw.len() {
                    self.fill(conn).await?;
                }
                let spare = buf.capacity() - buf.len();
                let n = (self.raw.len() - self.pos)
                    .min(spare)
                    .min(remaining as usize);
                let data = &self.raw[self.pos..self.pos + n];
                if let Some(h) = &mut self.chunk_hash {
                    h.update(data);
                }
                buf.extend_from_slice(data);
                self.pos += n;
                self.decoded += n as u64;
                let left = remaining - n as u64;
                self.state = if left == 0 {
                    State::DataEnd
                } else {
                    State::Data { remaining: left }
                };
                Ok(())
            }
            State::DataEnd => {
                if !self.line(conn).await?.is_empty() {
                    return Err(malformed("chunk data longer than its size"));
                }
                self.end_chunk()?;
                self.state = State::Size;
                Ok(())
            }
            State::Trailers { seen } => {
                let line = self.line(conn).await?;
                self.trailer_line(conn, &line, seen).await
            }
            State::Done => Ok(()),
        }
    }

    /// `SIZE[;chunk-signature=SIG]`.
    fn chunk_header(&mut self, line: &[u8]) -> Result<(), Error> {
        let size = parse_chunk_size(line).ok_or_else(|| malformed("bad chunk size"))?;
        if self.signer.is_some() {
            let text = String::from_utf8_lossy(line);
            let sig = text
                .split(';')
                .find_map(|ext| ext.trim().strip_prefix("chunk-signature="))
                .ok_or_else(|| malformed("a chunk without its signature"))?;
            self.chunk_signature = sig.to_ascii_lowercase();
            self.chunk_hash = Some(Sha256::new());
        }
        if size > 0 {
            self.state = State::Data { remaining: size };
            return Ok(());
        }
        self.end_chunk()?;
        self.check_length()?;
        // Trailer fields (for a stream without, none), then a blank line.
        self.state = State::Trailers { seen: 0 };
        Ok(())
    }

    /// Checks the signature of the chunk that just ended.
    fn end_chunk(&mut self) -> Result<(), Error> {
        let (Some(signer), Some(hash)) = (self.signer, self.chunk_hash.take()) else {
            return Ok(());
        };
        let digest = sigv4::hex(&hash.finalize());
        let want = sigv4::chunk_signature(
            &signer.key,
            &signer.claim,
            &self.previous_signature,
            &digest,
        );
        if !sigv4::same_signature(&want, &self.chunk_signature) {
            return Err(S3Error::signature_mismatch().into());
        }
        self.previous_signature = std::mem::take(&mut self.chunk_signature);
        Ok(())
    }

    /// One line after the last chunk: a trailer field, or the blank line
    /// that ends the body.
    async fn trailer_line(
        &mut self,
        conn: &mut Conn,
        line: &[u8],
        seen: usize,
    ) -> Result<(), Error> {
        let seen = seen + line.len() + 2;
        if seen > MAX_TRAILERS {
            return Err(malformed("trailers too large"));
        }
        if !line.is_empty() {
            let (name, value) = http1::chunked::parse_trailer(line)?;
            self.trailers.push((name, value));
            self.state = State::Trailers { seen };
            return Ok(());
        }
        self.check_trailer_signature()?;
        self.state = State::Done;
        // What follows the aws-chunked body within the HTTP body: nothing.
        let mut rest = Vec::with_capacity(16);
        let rest = self.body.read_full(conn, std::mem::take(&mut rest)).await?;
        if self.pos < self.raw.len() || !rest.is_empty() {
            return Err(malformed("bytes after the end"));
        }
        Ok(())
    }

    fn check_trailer_signature(&mut self) -> Result<(), Error> {
        let Some(signer) = self.signer else {
            return Ok(());
        };
        if !matches!(self.framing, Framing::AwsChunked { trailer: true, .. }) {
            return Ok(());
        }
        let sig = self
            .trailer("x-amz-trailer-signature")
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| malformed("signed trailers without x-amz-trailer-signature"))?;
        let mut canonical = String::new();
        for (n, v) in self
            .trailers
            .iter()
            .filter(|(n, _)| n != "x-amz-trailer-signature")
        {
            canonical.push_str(n);
            canonical.push(':');
            canonical.push_str(v);
            canonical.push('\n');
        }
        let want = sigv4::trailer_signature(
            &signer.key,
            &signer.claim,
            &self.previous_signature,
            &canonical,
        );
        if !sigv4::same_signature(&want, &sig) {
            return Err(S3Error::signature_mismatch().into());
        }
        Ok(())
    }

    /// Reads more of the HTTP body into `raw`.
    async fn fill(&mut self, conn: &mut Conn) -> Result<(), Error> {
        if self.pos > 0 && self.pos == self.raw.len() {
            self.raw.clear();
            self.pos = 0;
        } else if self.pos > RAW_BUF / 2 {
            self.raw.drain(..self.pos);
            self.pos = 0;
        }
        if self.raw.capacity() - self.raw.len() < 1024 {
            self.raw.reserve(RAW_BUF);
        }
        let raw = std::mem::take(&mut self.raw);
        let (res, raw) = self.body.read(conn, raw).await;
        self.raw = raw;
        if res? == 0 {
            return Err(malformed("the body ended early"));
        }
        Ok(())
    }

    /// The next line of the framing, without its CRLF.
    async fn line(&mut self, conn: &mut Conn) -> Result<Vec<u8>, Error> {
        loop {
            let framed = http1::chunked::split_line(&self.raw[self.pos..])
                .map_err(|_| malformed("a line not ended by CRLF"))?;
            if let Some((len, consumed)) = framed {
                let line = self.raw[self.pos..self.pos + len].to_vec();
                self.pos += consumed;
                return Ok(line);
            }
            if self.raw.len() - self.pos > MAX_LINE {
                return Err(malformed("a line too long"));
            }
            self.fill(conn).await?;
        }
    }
}

impl crate::ops::put::Source for Payload<'_> {
    type Error = Error;

    async fn read_full(&mut self, conn: &mut Conn, buf: Vec<u8>) -> Result<Vec<u8>, Error> {
        Payload::read_full(self, conn, buf).await
    }

    fn is_done(&self) -> bool {
        Payload::is_done(self)
    }

    fn trailer(&self, name: &str) -> Option<&str> {
        Payload::trailer(self, name)
    }
}
