//! The request loop both servers run on each connection: read a head, let
//! the service answer it, turn an error into a status, and go on while the
//! connection may be kept alive.

use std::cell::Cell;
use std::fmt::Display;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use super::{Conn, Method, RequestHead, Timeouts};

/// What a server does with one request.
#[allow(async_fn_in_trait)] // the services run on one thread: no Send needed
pub trait Service {
    type Error: Display;

    /// The `Server` header.
    fn name(&self) -> &'static str;
    fn timeouts(&self) -> Timeouts;
    /// A shutdown began: answer what is in flight, then close.
    fn shutting_down(&self) -> bool;

    /// Answers one request. `Ok(true)` keeps the connection open.
    /// An `Err` must come before any byte of the answer was written.
    async fn call(&self, conn: &mut Conn, head: &RequestHead) -> Result<bool, Self::Error>;

    /// The status an error is answered with; `None` closes the connection.
    fn error_status(&self, e: &Self::Error) -> Option<u16>;

    /// Writes the whole answer for an error into `out`.
    fn write_error(
        &self,
        out: &mut Vec<u8>,
        code: u16,
        e: &dyn Display,
        keep_alive: bool,
        http10: bool,
    );
}

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
pub async fn accept_loop<S, R>(listener: monoio::net::TcpListener, svc: R, grace: Duration)
where
    S: Service,
    R: std::ops::Deref<Target = S> + Clone + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let svc = svc.clone();
                monoio::spawn(async move { serve(stream, &*svc).await });
            }
            Err(_) if svc.shutting_down() => break,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
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

fn strip_body(out: &mut Vec<u8>, answer_start: usize) {
    if let Some(end) = out[answer_start..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
    {
        out.truncate(answer_start + end + 4);
    }
}

pub async fn serve<S: Service>(stream: TcpStream, svc: &S) {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream, svc.timeouts());
    let mut head = RequestHead::default();
    loop {
        match conn.read_head(&mut head).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                if let Some(code) = e.status() {
                    svc.write_error(&mut conn.wbuf, code, &e, false, false);
                    let _ = conn.flush().await;
                }
                break;
            }
        }
        let _busy = Busy::enter();
        // Answers to earlier pipelined requests may still be in the buffer.
        let mark = conn.wbuf.len();
        match svc.call(&mut conn, &head).await {
            Ok(true) if !svc.shutting_down() => {}
            Ok(_) => {
                let _ = conn.flush().await;
                break;
            }
            Err(e) => {
                let Some(code) = svc.error_status(&e) else {
                    break;
                };
                if code >= 500 {
                    tracing::warn!(error = %e, "request failed");
                }
                // A body we did not read would be taken for the next request.
                let keep = head.keep_alive && !svc.shutting_down() && !head.body.has_bytes();
                conn.wbuf.truncate(mark);
                svc.write_error(&mut conn.wbuf, code, &e, keep, head.http10);
                if head.method == Method::Head {
                    // The head says how long the body would be; none follows.
                    strip_body(&mut conn.wbuf, mark);
                }
                if conn.flush().await.is_err() || !keep {
                    break;
                }
            }
        }
    }
    conn.close().await;
}
