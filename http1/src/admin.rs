//! The admin listener (`--admin-port`): metrics, health and status pages on
//! a port of their own, so that no key or file path is ever shadowed.
//!
//! It is small and blocking on purpose: a thread accepts, and each
//! connection is served on a thread of its own (at most [`MAX_OPEN`] at
//! once), one GET or HEAD per connection, so a scrape is answered even
//! while the runtimes are saturated. Bodies are not read; heads are bounded
//! and time out.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Connections served at once; past it, a 503.
pub const MAX_OPEN: usize = 32;
/// The longest request head read.
const HEAD_MAX: usize = 16 * 1024;
/// How long a client may take to send its head, and to read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One admin request: only its method and target are read.
pub struct AdminRequest<'a> {
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    pub query: &'a str,
}

/// An answer: status, content type and the whole body.
pub struct AdminAnswer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl AdminAnswer {
    /// A registry's metrics in the Prometheus text format.
    pub fn metrics(registry: &prometheus_client::registry::Registry) -> AdminAnswer {
        AdminAnswer {
            status: 200,
            content_type: super::metrics::CONTENT_TYPE,
            body: super::metrics::render(registry).into_bytes(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> AdminAnswer {
        AdminAnswer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }
}

/// What an admin listener serves.
pub trait AdminHandler: Send + Sync + 'static {
    /// Answers a GET or HEAD (a HEAD's body is dropped).
    fn answer(&self, req: &AdminRequest) -> AdminAnswer;
}

/// Binds `addr` and serves `handler` there on threads of its own, for as
/// long as the process runs; returns the bound address.
pub fn start(
    addr: SocketAddr,
    name: &str,
    handler: Arc<dyn AdminHandler>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (admin port): {e}"),
        )
    })?;
    let local = listener.local_addr()?;
    let open = Arc::new(AtomicUsize::new(0));
    let thread_name = format!("{name}-admin");
    std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || accept(&listener, &thread_name, &handler, &open))?;
    Ok(local)
}

fn accept(
    listener: &TcpListener,
    name: &str,
    handler: &Arc<dyn AdminHandler>,
    open: &Arc<AtomicUsize>,
) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of descriptors, say: give connections a moment to close.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        if open.fetch_add(1, Ordering::Relaxed) >= MAX_OPEN {
            open.fetch_sub(1, Ordering::Relaxed);
            let busy = AdminAnswer::text(503, "too many admin connections\n");
            let _ = write_answer(&stream, &busy, false);
            continue;
        }
        let (handler, open2) = (handler.clone(), open.clone());
        let spawned = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                serve(stream, &*handler);
                open2.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Reads one head, answers it, closes.
fn serve(mut stream: TcpStream, handler: &dyn AdminHandler) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let answer = loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => break answer_head(&req, handler),
            Ok(httparse::Status::Partial) if buf.len() < HEAD_MAX => {}
            Ok(httparse::Status::Partial) => {
                break (AdminAnswer::text(431, "request head too large\n"), false)
            }
            Err(_) => break (AdminAnswer::text(400, "malformed request\n"), false),
        }
    };
    let (answer, head_only) = answer;
    let _ = write_answer(&stream, &answer, head_only);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Let the client read the answer before the socket goes away.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    while matches!(stream.read(&mut chunk), Ok(n) if n > 0) {}
}

fn answer_head(req: &httparse::Request, handler: &dyn AdminHandler) -> (AdminAnswer, bool) {
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" && method != "HEAD" {
        return (AdminAnswer::text(405, "only GET and HEAD\n"), false);
    }
    let answer = handler.answer(&AdminRequest {
        method,
        path,
        query,
    });
    (answer, method == "HEAD")
}

fn write_answer(
    mut stream: &TcpStream,
    answer: &AdminAnswer,
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(256 + answer.body.len());
    let mut head = super::response::start(&mut out, answer.status, "mkv-admin");
    super::response::header(&mut out, "Content-Type", answer.content_type.as_bytes());
    super::response::header(&mut out, "Cache-Control", b"no-store");
    head.content_length(&mut out, answer.body.len() as u64);
    let _ = head.end(&mut out, false, false);
    if !head_only {
        out.extend_from_slice(&answer.body);
    }
    stream.write_all(&out)
}

/// What a [`probe`] got back: the status and the headers (names in lower
/// case).
pub struct Probe {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Probe {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A blocking `HEAD path` to `host` (`name:port`), for health checks: the
/// connection, the request and the answer's head each within `timeout`.
pub fn probe(host: &str, path: &str, timeout: Duration) -> std::io::Result<Probe> {
    use std::net::ToSocketAddrs;
    let addr = host
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!("HEAD {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before answering"));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let headers = resp
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).into_owned();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect();
                let status = resp.code.unwrap_or(0);
                return Ok(Probe { status, headers });
            }
            Ok(httparse::Status::Partial) if buf.len() < HEAD_MAX => {}
            _ => return Err(std::io::Error::other("not an HTTP answer")),
        }
    }
}
