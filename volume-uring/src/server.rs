//! A volume server: the listeners, one runtime per thread, and a shutdown
//! that lets requests in flight finish (or removes what they left behind).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::fspath::Root;
use crate::group_sync::GroupSync;
use crate::http::Timeouts;
use crate::runtime::{self, DriverKind, Shutdown};

#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub addr: SocketAddr,
    pub threads: usize,
    /// A 201/204 means the bytes are on disk (see `group_sync`).
    pub fsync: bool,
    pub timeouts: Timeouts,
    /// How long a shutdown waits for requests in flight before cutting them off.
    pub grace: Duration,
}

/// Shared, read-only state of a running volume.
pub struct Ctx {
    pub root: Root,
    /// Where durable writes wait to be on disk; `None` with `--no-fsync`.
    pub sync: Option<GroupSync>,
    pub timeouts: Timeouts,
    pub grace: Duration,
    pub shutdown: Arc<Shutdown>,
    pub temp_files: TempFiles,
}

/// Temporary files of PUTs in progress, so that a shutdown that cannot wait
/// for them any longer still removes them.
#[derive(Default)]
pub struct TempFiles(Mutex<HashSet<PathBuf>>);

impl TempFiles {
    pub fn add(&self, path: PathBuf) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path);
    }

    pub fn remove(&self, path: &PathBuf) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
    }

    fn remove_all(&self) {
        for path in self.0.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

pub struct Server {
    addr: SocketAddr,
    driver: DriverKind,
    threads: Vec<JoinHandle<()>>,
    ctx: Arc<Ctx>,
}

impl Server {
    /// Binds and starts serving; returns once every thread accepts.
    pub fn start(config: &Config) -> std::io::Result<Server> {
        let root = Root::open(&config.dir).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot open volume folder {}: {e}", config.dir.display()),
            )
        })?;
        let listeners = runtime::bind_listeners(config.addr, config.threads)?;
        let addr = listeners[0].local_addr()?;
        let shutdown = Shutdown::new();
        let sync = if config.fsync {
            Some(GroupSync::start(root.fd().try_clone_to_owned()?)?)
        } else {
            None
        };
        let ctx = Arc::new(Ctx {
            root,
            sync,
            timeouts: config.timeouts,
            grace: config.grace,
            shutdown: shutdown.clone(),
            temp_files: TempFiles::default(),
        });
        let serve_ctx = ctx.clone();
        let (threads, driver) =
            runtime::spawn_workers("volume", listeners, &shutdown, move |listener| {
                crate::http::serve::accept_loop(listener, serve_ctx.clone(), serve_ctx.grace)
            })?;
        Ok(Server {
            addr,
            driver,
            threads,
            ctx,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn driver(&self) -> DriverKind {
        self.driver
    }

    pub fn shutdown_handle(&self) -> Arc<Shutdown> {
        self.ctx.shutdown.clone()
    }

    /// Blocks until a shutdown has been triggered and every thread is done.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
        self.ctx.temp_files.remove_all();
    }
}
