//! A volume server: its folder opened, its listeners bound, one runtime per
//! thread, and a shutdown that lets requests in flight finish (or removes
//! what they left behind).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http1::server::Options;
use http1::{DriverKind, Shutdown, Timeouts};

use crate::admin::VolumeAdmin;
use crate::state::{Ctx, TempFiles};
use crate::store::fspath::Root;
use crate::store::group_sync::GroupSync;

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
    /// Connections open at once; 0: half the process's descriptor limit.
    pub max_connections: usize,
    /// Where the admin listener (metrics, health, readiness) binds.
    pub admin: Option<SocketAddr>,
    /// `/ready` wants this many bytes free.
    pub ready_min_free: u64,
    /// The background scrub's period; `None`: no background scrub.
    pub scrub_every: Option<Duration>,
}

pub struct Server {
    http: http1::Server,
    ctx: Arc<Ctx>,
    admin: Option<SocketAddr>,
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
        let sync = if config.fsync {
            Some(GroupSync::start(root.fd().try_clone_to_owned()?)?)
        } else {
            None
        };
        let shutdown = Shutdown::new();
        let ctx = Arc::new(Ctx {
            root,
            sync,
            timeouts: config.timeouts,
            grace: config.grace,
            shutdown: shutdown.clone(),
            temp_files: TempFiles::default(),
        });
        let opts = Options {
            name: "volume",
            addr: config.addr,
            threads: config.threads,
            grace: config.grace,
            max_connections: config.max_connections,
        };
        let shared = ctx.clone();
        let http = http1::Server::start(&opts, shutdown.clone(), move || shared.clone())?;
        let admin = match config.admin {
            Some(addr) => {
                let handler = Arc::new(VolumeAdmin {
                    dir: config.dir.clone(),
                    min_free: config.ready_min_free,
                    connections: http.connections(),
                    shutdown: shutdown.clone(),
                });
                Some(http1::admin::start(addr, "volume", handler)?)
            }
            None => None,
        };
        crate::store::sweep::spawn(config.dir.clone());
        if let Some(every) = config.scrub_every {
            crate::admin::spawn_scrub(config.dir.clone(), every, shutdown);
        }
        Ok(Server { http, ctx, admin })
    }

    /// Where the admin listener listens, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    pub fn driver(&self) -> DriverKind {
        self.http.driver()
    }

    pub fn shutdown_handle(&self) -> Arc<Shutdown> {
        self.http.shutdown_handle()
    }

    /// Blocks until a shutdown has been triggered and every thread is done;
    /// removes the temporary files of uploads that were cut off.
    pub fn wait(self) {
        self.http.wait();
        self.ctx.temp_files.remove_all();
    }
}
