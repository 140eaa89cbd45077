//! The request loop every connection runs: read a head, let the service
//! answer it, turn an error into an answer and a log line, and go on while
//! the connection may be kept alive.
//!
//! Who writes and who sends: a service writes its whole answer into the
//! connection (the head into `wbuf`, a long body sent piece by piece as it
//! goes) and returns; the loop then ends the answer ([`Conn::end_response`]:
//! sent now, or held back a moment to leave with the answers to pipelined
//! requests).

use std::cell::Cell;
use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use super::{
    Answer, BodyKind, BodyReader, BodyState, Conn, HttpError, Method, RequestHead, Timeouts,
};

/// A body a service left unread is read and dropped, and the connection
/// kept, when it is no longer than this; a longer one closes the connection.
pub const DISCARD_MAX: u64 = 256 * 1024;
/// How long, at most, a connection closed while its peer may still be
/// sending reads what arrives ([`Conn::linger`]), and the longest pause.
pub const LINGER_TOTAL: Duration = Duration::from_secs(5);
pub const LINGER_GAP: Duration = Duration::from_secs(2);

/// What a server does with one request.
#[allow(async_fn_in_trait)] // the services run on one thread: no Send needed
pub trait Service {
    type Error: Display + From<HttpError>;

    fn timeouts(&self) -> Timeouts;
    /// A shutdown began: answer what is in flight, then close.
    fn shutting_down(&self) -> bool;

    /// Writes the answer to one request and returns what it wrote (its
    /// `keep_alive` keeps the connection open). An `Err` must come before
    /// any byte of the answer was sent; it is then answered by
    /// [`Service::write_error`].
    async fn call(&self, conn: &mut Conn, head: &RequestHead) -> Result<Answer, Self::Error>;

    /// The status an error is answered with; `None` only when the
    /// connection is broken (the peer is gone, or part of an answer was
    /// already sent) and can just be closed.
    fn error_status(&self, e: &Self::Error) -> Option<u16>;

    /// Writes the whole answer for an error into `out`. `head` is the
    /// request's, when it could be parsed.
    fn write_error(
        &self,
        out: &mut Vec<u8>,
        code: u16,
        e: &Self::Error,
        head: Option<&RequestHead>,
        keep_alive: bool,
    );
}

/// Connections open at once, across a server's threads, and the most
/// allowed.
pub struct ConnLimit {
    open: AtomicUsize,
    max: usize,
}

impl ConnLimit {
    pub fn new(max: usize) -> ConnLimit {
        ConnLimit {
            open: AtomicUsize::new(0),
            max,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn try_enter(self: &Arc<Self>) -> Option<Open> {
        let was = self.open.fetch_add(1, Ordering::Relaxed);
        if was >= self.max {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Open(self.clone()))
    }
}

/// One connection counted in its [`ConnLimit`] while alive.
struct Open(Arc<ConnLimit>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The answer past `--max-connections`.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections\n";

/// Failures to accept (out of descriptors, say) and refusals past the
/// connection limit are logged at most this often.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

thread_local! {
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// Requests being answered on this thread; a shutdown waits for them.
pub fn in_flight() -> usize {
    IN_FLIGHT.with(Cell::get)
}

struct Busy;

impl Busy {
    fn enter() -> Busy {
        IN_FLIGHT.with(|c| c.set(c.get() + 1));
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        IN_FLIGHT.with(|c| c.set(c.get() - 1));
    }
}

/// Accepts connections and serves each on its own task until a shutdown
/// begins; then waits up to `grace` for the requests in flight.
/// `svc` is shared by the connections of this thread (an `Rc` or an `Arc`).
pub async fn accept_loop<S, R>(
    listener: monoio::net::TcpListener,
    svc: R,
    grace: Duration,
    limit: Arc<ConnLimit>,
) where
    S: Service,
    R: std::ops::Deref<Target = S> + Clone + 'static,
{
    let mut accept_failures = Throttled::new("accept failed");
    let mut refusals = Throttled::new("connection refused with a 503: --max-connections reached");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => match limit.try_enter() {
                Some(open) => {
                    let svc = svc.clone();
                    monoio::spawn(async move {
                        serve(stream, &*svc).await;
                        drop(open);
                    });
                }
                None => {
                    refusals.warn(&limit.max);
                    monoio::spawn(refuse(stream, svc.timeouts().io));
                }
            },
            Err(_) if svc.shutting_down() => break,
            Err(e) => {
                accept_failures.warn(&e);
                // Out of descriptors: give connections a moment to close.
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let deadline = Instant::now() + grace;
    while in_flight() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A warning that repeats under load, logged at most every
/// `ACCEPT_WARN_EVERY` with how many times it happened meanwhile.
struct Throttled {
    what: &'static str,
    last: Option<Instant>,
    times: u64,
}

impl Throttled {
    fn new(what: &'static str) -> Throttled {
        Throttled {
            what,
            last: None,
            times: 0,
        }
    }

    fn warn(&mut self, detail: &dyn Display) {
        self.times += 1;
        if self.last.is_none_or(|t| t.elapsed() >= ACCEPT_WARN_EVERY) {
            tracing::warn!(times = self.times, detail = %detail, "{} (logged at most every 10 s)", self.what);
            self.last = Some(Instant::now());
            self.times = 0;
        }
    }
}

/// Answers a connection past the limit with a 503 and closes it.
async fn refuse(stream: TcpStream, io: Duration) {
    let mut conn = Conn::new(
        stream,
        Timeouts {
            idle: io,
            header: io,
            io,
        },
    );
    conn.wbuf.extend_from_slice(TOO_MANY);
    conn.linger(Duration::from_millis(500), Duration::from_millis(100))
        .await;
}

/// Serves one connection until it closes, fails, or a shutdown begins.
pub async fn serve<S: Service>(stream: TcpStream, svc: &S) {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream, svc.timeouts());
    let mut head = RequestHead::default();
    loop {
        match head.read(&mut conn).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let e = S::Error::from(e);
                if let Some(code) = failed(svc, &e, None) {
                    svc.write_error(&mut conn.wbuf, code, &e, None, false);
                    // The peer may still be sending what we could not parse.
                    return conn.linger(LINGER_TOTAL, LINGER_GAP).await;
                }
                break;
            }
        }
        let _busy = Busy::enter();
        conn.body = if head.body.has_bytes() {
            BodyState::Unread
        } else {
            BodyState::Done
        };
        // Answers to earlier pipelined requests may still be in the buffer.
        let mark = conn.wbuf.len();
        let keep = match svc.call(&mut conn, &head).await {
            Ok(answer) => {
                conn.end_response().await.is_ok()
                    && answer.keep_alive
                    && !svc.shutting_down()
                    && settle_body(&mut conn, &head).await
            }
            Err(e) => answer_error(svc, &mut conn, &head, mark, &e).await,
        };
        if !keep {
            break;
        }
    }
    if conn.body == BodyState::Done {
        let _ = conn.flush().await;
        conn.close().await;
    } else {
        conn.linger(LINGER_TOTAL, LINGER_GAP).await;
    }
}

/// Reads and drops a body the service did not read (a GET's, say), so that
/// its bytes are never parsed as the next request; `false` when the
/// connection must close instead: the body is long, partly read, or its
/// client waits for a `100 Continue` that was not sent.
async fn settle_body(conn: &mut Conn, head: &RequestHead) -> bool {
    match conn.body {
        BodyState::Done => true,
        BodyState::Partial => false,
        BodyState::Unread if head.expect_continue => false,
        BodyState::Unread => {
            if let BodyKind::Length(n) = head.body {
                if n > DISCARD_MAX {
                    return false;
                }
            }
            let mut body = BodyReader::new(head.body);
            matches!(body.discard(conn, DISCARD_MAX).await, Ok(true))
        }
    }
}

/// Answers a failed request; whether the connection stays open.
async fn answer_error<S: Service>(
    svc: &S,
    conn: &mut Conn,
    head: &RequestHead,
    mark: usize,
    e: &S::Error,
) -> bool {
    let Some(code) = failed(svc, e, Some(head)) else {
        return false;
    };
    // A body not read to its end would be taken for the next request.
    let keep = head.keep_alive && !svc.shutting_down() && conn.body == BodyState::Done;
    conn.wbuf.truncate(mark);
    svc.write_error(&mut conn.wbuf, code, e, Some(head), keep);
    if head.method == Method::Head {
        // The head says how long the body would be; none follows.
        strip_body(&mut conn.wbuf, mark);
    }
    conn.flush().await.is_ok() && keep
}

/// The status for an error, and its log line: failures of the server (5xx)
/// are warnings, refusals (4xx) and broken connections are for debugging.
fn failed<S: Service>(svc: &S, e: &S::Error, head: Option<&RequestHead>) -> Option<u16> {
    let code = svc.error_status(e);
    let method = head.map_or("", RequestHead::method_name);
    let target = head.map(|h| String::from_utf8_lossy(h.target()));
    let target = target.as_deref().unwrap_or("");
    match code {
        Some(code) if code >= 500 => {
            tracing::warn!(status = code, method, target, error = %e, "request failed")
        }
        Some(code) => tracing::debug!(status = code, method, target, error = %e, "request refused"),
        None => tracing::debug!(method, target, error = %e, "connection closed"),
    }
    code
}

fn strip_body(out: &mut Vec<u8>, answer_start: usize) {
    if let Some(end) = out[answer_start..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
    {
        out.truncate(answer_start + end + 4);
    }
}
