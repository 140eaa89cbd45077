//! `multipart/form-data` as a POST Object sends it (RFC 7578): the fields
//! before `file` read whole (at most [`MAX_FIELDS`] bytes of them), then the
//! file's bytes streamed as a [`Source`] up to the delimiter that ends them,
//! then what follows drained. The file is never held whole.

use http1::{BodyKind, BodyReader, Conn};

use crate::error::{Code, Error, S3Error};
use crate::ops::put::Source;

/// The most bytes of fields (names, values, part headers) before `file`.
pub const MAX_FIELDS: usize = 64 * 1024;
/// The most bytes after the file's end that are read and dropped.
const MAX_AFTER: usize = 64 * 1024;
/// Bytes read from the connection at a time.
const READ: usize = 256 * 1024;

/// The file part's own headers.
#[derive(Debug, Default)]
pub struct FileHead {
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

pub struct Form {
    body: BodyReader,
    /// `\r\n--` + the boundary: what ends a part.
    delim: Vec<u8>,
    pending: Vec<u8>,
    /// How much of `pending` is consumed.
    at: usize,
    file_done: bool,
    file_len: u64,
    /// The sizes the policy allows the file.
    pub min_len: u64,
    pub max_len: u64,
}

pub fn malformed(why: &str) -> Error {
    S3Error::new(
        Code::MalformedPOSTRequest,
        format!("The body of your POST request is not well-formed multipart/form-data: {why}."),
    )
    .into()
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        let value = value.trim().trim_matches('"');
        let ok = name.trim().eq_ignore_ascii_case("boundary") && (1..=70).contains(&value.len());
        ok.then(|| value.to_string())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Form {
    pub fn new(kind: BodyKind, boundary: &str) -> Form {
        Form {
            body: BodyReader::new(kind),
            delim: format!("\r\n--{boundary}").into_bytes(),
            // The first delimiter may open the body: a line end before it
            // makes every delimiter look alike.
            pending: b"\r\n".to_vec(),
            at: 0,
            file_done: false,
            file_len: 0,
            min_len: 0,
            max_len: u64::MAX,
        }
    }

    /// More bytes of the body into `pending`; false at its end.
    async fn more(&mut self, conn: &mut Conn) -> Result<bool, Error> {
        if self.body.is_done() {
            return Ok(false);
        }
        self.pending.drain(..self.at);
        self.at = 0;
        let before = self.pending.len();
        // Read straight into `pending`, after what it holds.
        let mut buf = std::mem::take(&mut self.pending);
        buf.reserve(READ);
        self.pending = self.body.read_full(conn, buf).await?;
        Ok(self.pending.len() > before || !self.body.is_done())
    }

    /// Where `needle` starts in what is not consumed, reading more as
    /// needed while fewer than `limit` bytes were consumed before it.
    async fn seek(&mut self, conn: &mut Conn, needle: &[u8], limit: usize) -> Result<usize, Error> {
        loop {
            if let Some(i) = find(&self.pending[self.at..], needle) {
                return Ok(self.at + i);
            }
            if self.pending.len() - self.at > limit {
                return Err(S3Error::new(
                    Code::MaxPostPreDataLengthExceeded,
                    "Your POST request fields preceding the upload file were too large.",
                )
                .into());
            }
            if !self.more(conn).await? {
                return Err(malformed("it ends early"));
            }
        }
    }

    /// The fields before `file` (names lower-case) and the file's headers;
    /// the form is then at the file's first byte.
    pub async fn fields(
        &mut self,
        conn: &mut Conn,
    ) -> Result<(Vec<(String, String)>, FileHead), Error> {
        let delim = self.delim.clone();
        let mut fields = Vec::new();
        let first = self.seek(conn, &delim, MAX_FIELDS).await?;
        self.at = first + delim.len();
        loop {
            let end = self.seek(conn, b"\r\n\r\n", MAX_FIELDS).await?;
            let head = &self.pending[self.at..end];
            // After the delimiter: `--` ends the form, else the line ends.
            let head = match head.strip_prefix(b"\r\n") {
                Some(h) => h,
                None if head.starts_with(b"--") => return Err(malformed("it has no file field")),
                None => return Err(malformed("a part does not start on its own line")),
            };
            let (name, file) = part_head(head)?;
            self.at = end + 4;
            if name == "file" {
                return Ok((fields, file));
            }
            let close = self.seek(conn, &delim, MAX_FIELDS).await?;
            let value = String::from_utf8(self.pending[self.at..close].to_vec())
                .map_err(|_| malformed("a field is not UTF-8"))?;
            fields.push((name, value));
            if fields.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() > MAX_FIELDS {
                return Err(S3Error::new(
                    Code::MaxPostPreDataLengthExceeded,
                    "Your POST request fields preceding the upload file were too large.",
                )
                .into());
            }
            self.at = close + delim.len();
        }
    }

    /// Reads what follows the file (the closing delimiter, fields S3
    /// ignores), so the connection can serve on; past [`MAX_AFTER`] bytes
    /// it stops, and the connection closes after the answer (the value is
    /// stored by then: what follows cannot make it fail).
    pub async fn drain(&mut self, conn: &mut Conn) {
        let mut after = self.pending.len() - self.at;
        while after <= MAX_AFTER {
            self.at = self.pending.len();
            match self.more(conn).await {
                Ok(true) => after += self.pending.len(),
                _ => return,
            }
        }
    }

    fn took(&mut self, n: usize) -> Result<(), Error> {
        self.at += n;
        self.file_len += n as u64;
        if self.file_len > self.max_len {
            return Err(S3Error::new(
                Code::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size.",
            )
            .into());
        }
        Ok(())
    }
}

/// A part's `Content-Disposition` name (lower-case) and, for the file,
/// its file name and content type.
fn part_head(head: &[u8]) -> Result<(String, FileHead), Error> {
    let text = std::str::from_utf8(head).map_err(|_| malformed("a part's head is not UTF-8"))?;
    let (mut name, mut file) = (None, FileHead::default());
    for line in text.split("\r\n") {
        let Some((h, value)) = line.split_once(':') else {
            return Err(malformed("a part's header has no colon"));
        };
        if h.trim().eq_ignore_ascii_case("content-type") {
            file.content_type = Some(value.trim().to_string());
        } else if h.trim().eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"').to_string();
                match k.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(v.to_ascii_lowercase()),
                    "filename" => file.filename = Some(v),
                    _ => {}
                }
            }
        }
    }
    let name = name.ok_or_else(|| malformed("a part has no name"))?;
    Ok((name, file))
}

impl Source for Form {
    type Error = Error;

    async fn read_full(&mut self, conn: &mut Conn, mut buf: Vec<u8>) -> Result<Vec<u8>, Error> {
        let want = buf.capacity().max(1);
        let keep = self.delim.len() - 1;
        while buf.len() < want && !self.file_done {
            let rest = &self.pending[self.at..];
            if let Some(end) = find(rest, &self.delim) {
                let take = end.min(want - buf.len());
                buf.extend_from_slice(&rest[..take]);
                self.took(take)?;
                if take == end {
                    self.file_done = true;
                    self.at += self.delim.len();
                    if self.file_len < self.min_len {
                        return Err(S3Error::new(
                            Code::EntityTooSmall,
                            "Your proposed upload is smaller than the minimum allowed size.",
                        )
                        .into());
                    }
                }
                continue;
            }
            // Hold back what could be the start of the delimiter.
            let safe = rest.len().saturating_sub(keep);
            let take = safe.min(want - buf.len());
            buf.extend_from_slice(&rest[..take]);
            self.took(take)?;
            if take == safe && !self.more(conn).await? {
                return Err(malformed("it ends inside the file"));
            }
        }
        Ok(buf)
    }

    fn is_done(&self) -> bool {
        self.file_done
    }

    fn trailer(&self, _: &str) -> Option<&str> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_part_heads() {
        let b = boundary("multipart/form-data; boundary=\"abc def\"").unwrap();
        assert_eq!(b, "abc def");
        assert_eq!(boundary("multipart/form-data;boundary=x").unwrap(), "x");
        assert!(boundary("text/plain; boundary=x").is_none());
        assert!(boundary("multipart/form-data").is_none());
        let (name, file) = part_head(
            b"Content-Disposition: form-data; name=\"File\"; filename=\"a b.png\"\r\nContent-Type: image/png",
        )
        .unwrap();
        assert_eq!(name, "file");
        assert_eq!(file.filename.as_deref(), Some("a b.png"));
        assert_eq!(file.content_type.as_deref(), Some("image/png"));
        assert!(part_head(b"Content-Type: x").is_err());
    }
}
