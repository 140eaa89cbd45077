//! A running server: one runtime and one `SO_REUSEPORT` listener per thread,
//! each serving its connections with a service built on that thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::runtime::{self, DriverKind, Shutdown};
use super::service::{accept_loop, ConnLimit, Service};

pub struct Server {
    addr: SocketAddr,
    driver: DriverKind,
    threads: Vec<JoinHandle<()>>,
    shutdown: Arc<Shutdown>,
    limit: Arc<ConnLimit>,
}

/// How to start a [`Server`].
pub struct Options {
    /// Names the threads (`name-0`, `name-1`, ...).
    pub name: &'static str,
    pub addr: SocketAddr,
    pub threads: usize,
    /// On shutdown, how long requests in flight may take to finish.
    pub grace: Duration,
    /// Connections open at once, across threads; past it a new one gets a
    /// 503 and is closed. 0: [`default_max_connections`].
    pub max_connections: usize,
}

/// Half the descriptors this process may open (after
/// [`runtime::raise_fd_limit`]): the other half stays for files and the
/// server's own connections.
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX).min(1 << 20);
    (soft / 2).max(16) as usize
}

impl Server {
    /// Binds and starts serving; returns once every thread accepts. `make`
    /// runs on each thread and gives the service its connections share (an
    /// `Rc` of per-thread state, or an `Arc` of shared state). `shutdown`
    /// stops the server when triggered.
    pub fn start<S, R, F>(
        opts: &Options,
        shutdown: Arc<Shutdown>,
        make: F,
    ) -> std::io::Result<Server>
    where
        S: Service + 'static,
        R: std::ops::Deref<Target = S> + Clone + 'static,
        F: Fn() -> R + Send + Sync + 'static,
    {
        runtime::raise_fd_limit();
        let listeners = runtime::bind_listeners(opts.addr, opts.threads)?;
        let addr = listeners[0].local_addr()?;
        let grace = opts.grace;
        let max = match opts.max_connections {
            0 => default_max_connections(),
            n => n,
        };
        let limit = Arc::new(ConnLimit::new(max));
        let shared = limit.clone();
        let (threads, driver) =
            runtime::spawn_workers(opts.name, listeners, &shutdown, move |listener| {
                accept_loop(listener, make(), grace, shared.clone())
            })?;
        Ok(Server {
            addr,
            driver,
            threads,
            shutdown,
            limit,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn driver(&self) -> DriverKind {
        self.driver
    }

    /// Its connections open now, for metrics.
    pub fn connections(&self) -> Arc<ConnLimit> {
        self.limit.clone()
    }

    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    pub fn shutdown_handle(&self) -> Arc<Shutdown> {
        self.shutdown.clone()
    }

    /// Blocks until a shutdown has been triggered and every thread is done.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}
