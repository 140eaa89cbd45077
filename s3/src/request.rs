//! One S3 request as the operations see it: bucket, key, decoded query,
//! its request id; and how an answer starts and ends.

use http1::{percent, response, Answer, Head, RequestHead};

use super::error::{Code, S3Error};
use mkv_store::SERVER;

pub struct S3Req<'a> {
    pub head: &'a RequestHead,
    /// Decoded; empty for the service (`GET /`).
    pub bucket: String,
    /// The object key, decoded; empty for bucket requests.
    pub key: Vec<u8>,
    /// The mkv key of the object: `/bucket/key` (or `/bucket` for a bucket).
    pub mkv_key: Vec<u8>,
    /// The whole path, decoded.
    pub path: Vec<u8>,
    /// Query parameters, form-decoded, in order.
    pub query: Vec<(String, String)>,
    pub id: String,
    pub keep_alive: bool,
}

impl<'a> S3Req<'a> {
    /// Splits the path into bucket and key (path-style addressing).
    pub fn parse(head: &'a RequestHead, keep_alive: bool) -> Result<S3Req<'a>, S3Error> {
        let mut path = Vec::new();
        percent::decode(head.path(), &mut path)
            .map_err(|_| S3Error::invalid_argument("invalid percent-encoding in the path"))?;
        let rest = path.strip_prefix(b"/").unwrap_or(&path);
        let (bucket, key) = match rest.iter().position(|&c| c == b'/') {
            Some(i) => (rest[..i].to_vec(), rest[i + 1..].to_vec()),
            None => (rest.to_vec(), Vec::new()),
        };
        let bucket = String::from_utf8(bucket)
            .map_err(|_| S3Error::new(Code::InvalidBucketName, "The bucket name is not UTF-8."))?;
        let mut mkv_key = Vec::with_capacity(path.len());
        mkv_key.push(b'/');
        mkv_key.extend_from_slice(bucket.as_bytes());
        if !key.is_empty() {
            mkv_key.push(b'/');
            mkv_key.extend_from_slice(&key);
        }
        Ok(S3Req {
            head,
            bucket,
            key,
            mkv_key,
            path,
            query: decode_query(head.query().unwrap_or_default())?,
            id: super::error::request_id(),
            keep_alive,
        })
    }

    /// A query parameter's value (`Some("")` when present without one).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.param(name).is_some()
    }

    /// A request header as text (lossy).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head
            .header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The key as text, for XML and messages.
    pub fn key_text(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }

    /// Status line, `Server`, `Date` and `x-amz-request-id`.
    pub fn start(&self, out: &mut Vec<u8>, code: u16) -> Head {
        let head = response::start(out, code, SERVER);
        response::header(out, "x-amz-request-id", self.id.as_bytes());
        head
    }

    /// Ends the head without a length (a chunked body, or one whose
    /// `Content-Length` was written with [`Head::content_length`]).
    pub fn end(&self, head: Head, out: &mut Vec<u8>) -> Answer {
        head.end(out, self.keep_alive, self.head.http10)
    }

    /// Ends the head with `Content-Length` and appends the body.
    pub fn finish(&self, mut head: Head, out: &mut Vec<u8>, body: &[u8]) -> Answer {
        head.content_length(out, body.len() as u64);
        let answer = self.end(head, out);
        out.extend_from_slice(body);
        answer
    }

    /// A whole answer with an XML body.
    pub fn xml(&self, out: &mut Vec<u8>, code: u16, body: &[u8]) -> Answer {
        let head = self.start(out, code);
        response::header(out, "Content-Type", b"application/xml");
        self.finish(head, out, body)
    }

    /// A whole answer with no body (a 204 carries no `Content-Length`).
    pub fn empty(&self, out: &mut Vec<u8>, code: u16) -> Answer {
        let head = self.start(out, code);
        if code == 204 {
            self.end(head, out)
        } else {
            self.finish(head, out, b"")
        }
    }
}

fn decode_query(raw: &[u8]) -> Result<Vec<(String, String)>, S3Error> {
    let bad = || S3Error::invalid_argument("invalid percent-encoding in the query");
    let mut out = Vec::new();
    let (mut name, mut value) = (Vec::new(), Vec::new());
    for (n, v) in percent::query_pairs(raw) {
        percent::decode_form(n, &mut name).map_err(|_| bad())?;
        percent::decode_form(v, &mut value).map_err(|_| bad())?;
        out.push((
            String::from_utf8_lossy(&name).into_owned(),
            String::from_utf8_lossy(&value).into_owned(),
        ));
    }
    Ok(out)
}
