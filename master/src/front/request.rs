//! One request as an operation sees it, and the helpers that write the
//! answers operations give.

use http1::{response, RequestHead};

/// The `Server` header of every answer.
pub const SERVER: &str = "mkv";

pub struct Req<'a> {
    pub head: &'a RequestHead,
    /// The decoded URL path, leading `/` included.
    pub key: &'a [u8],
    /// What the answer's head says: the client wants the connection kept,
    /// and no shutdown began.
    pub keep_alive: bool,
}

impl Req<'_> {
    /// Starts an answer in `out`: status line, `Server`, `Date`.
    pub fn start(&self, out: &mut Vec<u8>, code: u16) {
        response::start(out, code, SERVER);
    }

    /// Ends an answer's head (with `Content-Length`) and appends its body.
    pub fn finish(&self, out: &mut Vec<u8>, body: &[u8]) {
        response::header_num(out, "Content-Length", body.len() as u64);
        response::finish(out, self.keep_alive, self.head.http10);
        out.extend_from_slice(body);
    }

    /// A whole answer with no headers of its own (and, for a 204, no
    /// `Content-Length`, which a 204 must not carry).
    pub fn plain(&self, out: &mut Vec<u8>, code: u16) {
        self.start(out, code);
        if code == 204 {
            response::finish(out, self.keep_alive, self.head.http10);
        } else {
            self.finish(out, b"");
        }
    }
}
