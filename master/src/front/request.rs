//! One request as an operation sees it, and the helpers that write the
//! answers operations give.

use http1::{response, Answer, Head, RequestHead};

use crate::Store;

pub use mkv_store::SERVER;

pub struct Req<'a> {
    /// What the handler reads and writes through.
    pub store: &'a Store,
    pub head: &'a RequestHead,
    /// The decoded URL path, leading `/` included.
    pub key: &'a [u8],
    /// What the answer's head says: the client wants the connection kept,
    /// and no shutdown began.
    pub keep_alive: bool,
}

impl Req<'_> {
    /// Starts an answer in `out`: status line, `Server`, `Date`.
    pub fn start(&self, out: &mut Vec<u8>, code: u16) -> Head {
        response::start(out, code, SERVER)
    }

    /// Ends an answer's head (with `Content-Length`) and appends its body.
    pub fn finish(&self, mut head: Head, out: &mut Vec<u8>, body: &[u8]) -> Answer {
        head.content_length(out, body.len() as u64);
        let answer = head.end(out, self.keep_alive, self.head.http10);
        out.extend_from_slice(body);
        answer
    }

    /// A whole answer with no headers of its own (and, for a 204, no
    /// `Content-Length`, which a 204 must not carry).
    pub fn plain(&self, out: &mut Vec<u8>, code: u16) -> Answer {
        let head = self.start(out, code);
        if code == 204 {
            head.end(out, self.keep_alive, self.head.http10)
        } else {
            self.finish(head, out, b"")
        }
    }
}
