//! What a handler knows about a request beyond its head, and the answers
//! without a body that several handlers give.

use http1::{response, Answer, Conn, Head, HttpError, RequestHead};

use crate::state::Ctx;
use crate::store::checksum;

/// The `Server` header of every answer.
pub const SERVER: &str = "volume-uring";

pub struct Request<'a> {
    pub head: &'a RequestHead,
    /// The decoded path, relative to the root (`a/b/c`; empty for the root).
    pub rel: &'a [u8],
    /// The URL ended with `/`.
    pub dir_wanted: bool,
    pub ctx: &'a Ctx,
}

impl Request<'_> {
    /// Whether the answer may leave the connection open: the client wants it,
    /// and no shutdown began while the request was served.
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive && !self.ctx.shutdown.is_triggered()
    }

    /// Sends `100 Continue` if the client waits for it before its body.
    pub async fn continue_if_expected(&self, conn: &mut Conn) -> Result<(), HttpError> {
        if self.head.expect_continue {
            conn.wbuf.extend_from_slice(response::CONTINUE);
            conn.flush().await?;
        }
        Ok(())
    }

    /// Starts an answer in `out`: status line, `Server`, `Date`.
    pub fn start(&self, out: &mut Vec<u8>, code: u16) -> Head {
        response::start(out, code, SERVER)
    }

    /// Ends an answer's head, keeping the connection open if it may.
    pub fn finish(&self, head: Head, out: &mut Vec<u8>) -> Answer {
        head.end(out, self.keep_alive(), self.head.http10)
    }

    /// A whole answer with no body, with the file's CRC when there is one.
    pub fn empty(&self, out: &mut Vec<u8>, code: u16, crc: Option<u32>) -> Answer {
        let mut head = self.start(out, code);
        if let Some(crc) = crc {
            response::header(out, checksum::CRC_HEADER, &checksum::to_hex(crc));
        }
        if code != 204 {
            head.content_length(out, 0);
        }
        self.finish(head, out)
    }
}
