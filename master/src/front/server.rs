//! A running master: its listeners and threads, each with its own `Local`.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::state::{App, Local};

/// How long a shutdown waits for requests in flight.
const GRACE: Duration = Duration::from_secs(30);

/// Binds `addr` on `threads` threads and serves the master's API there;
/// with `s3_only`, every request is taken as an S3 request (`--s3-port`).
pub fn start(
    app: Arc<App>,
    addr: SocketAddr,
    threads: usize,
    s3_only: bool,
) -> std::io::Result<http1::Server> {
    let opts = http1::server::Options {
        name: if s3_only { "mkv-s3" } else { "mkv" },
        addr,
        threads,
        grace: GRACE,
        max_connections: app.max_connections,
    };
    let shutdown = app.shutdown.clone();
    http1::Server::start(&opts, shutdown, move || {
        Rc::new(Local::new(app.clone(), s3_only))
    })
}
