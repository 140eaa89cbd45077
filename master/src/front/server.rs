//! A running master: its listeners and threads, each with its own `Local`.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::state::{App, Local};

/// How long a shutdown waits for requests in flight.
const GRACE: Duration = Duration::from_secs(30);

/// Binds `addr` on `threads` threads and serves the master's API there.
pub fn start(app: Arc<App>, addr: SocketAddr, threads: usize) -> std::io::Result<http1::Server> {
    let opts = http1::server::Options {
        name: "mkv",
        addr,
        threads,
        grace: GRACE,
    };
    let shutdown = app.shutdown.clone();
    http1::Server::start(&opts, shutdown, move || Rc::new(Local::new(app.clone())))
}
