//! The master as a [`Service`]: shared state (`App`), per-thread state
//! (`Local`: the pooled volume client), routing to the operation modules,
//! and the listeners.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use volume_uring::http::{response, Conn, RequestHead, Service, Timeouts};
use volume_uring::runtime::{self, DriverKind, Shutdown};

use crate::config::Cluster;
use crate::error::MasterError;
use crate::index::Index;
use crate::locks::{KeyGuard, KeyLocks};
use crate::record::Record;
use crate::router::{self, Op};
use crate::volume_client::VolumeClient;
use crate::{delete, get, list, put, rebalance};

pub const SERVER: &str = "mkv";
/// How long a shutdown waits for requests in flight.
const GRACE: Duration = Duration::from_secs(30);
/// Any single step against a volume (other than `--voltimeout` HEADs).
const VOLUME_IO_TIMEOUT: Duration = Duration::from_secs(60);

/// State shared by every thread.
pub struct App {
    pub cluster: Cluster,
    pub index: Arc<Index>,
    pub locks: KeyLocks,
    pub shutdown: Arc<Shutdown>,
    pub timeouts: Timeouts,
}

impl App {
    pub fn new(cluster: Cluster, index: Arc<Index>) -> App {
        App {
            cluster,
            index,
            locks: KeyLocks::default(),
            shutdown: Shutdown::new(),
            timeouts: Timeouts::default(),
        }
    }
}

/// State of one runtime thread.
pub struct Local {
    pub app: Arc<App>,
    pub client: Rc<VolumeClient>,
}

impl Local {
    /// The key's write lock (409 if taken) and its live record (404 if
    /// missing or unlinked).
    pub async fn lock_live(&self, key: &[u8]) -> Result<(KeyGuard<'_>, Record), MasterError> {
        let lock = self.app.locks.try_lock(key).ok_or(MasterError::Busy)?;
        let rec = self
            .app
            .index
            .get(key)
            .await?
            .filter(|r| !r.deleted)
            .ok_or(MasterError::NotFound)?;
        Ok((lock, rec))
    }

    pub fn new(app: Arc<App>) -> Local {
        let client = VolumeClient::new(app.cluster.voltimeout, VOLUME_IO_TIMEOUT);
        Local {
            app,
            client: Rc::new(client),
        }
    }
}

/// One request, as the operation modules see it.
pub struct Req<'a> {
    pub head: &'a RequestHead,
    /// The decoded URL path, leading `/` included.
    pub key: &'a [u8],
    pub keep_alive: bool,
}

impl Req<'_> {
    /// Starts an answer in `out`: status line, `Server`, `Date`.
    pub fn start(&self, out: &mut Vec<u8>, code: u16) {
        response::start(out, code, SERVER);
    }

    /// Ends an answer's head (with `Content-Length`) and appends its body.
    pub fn finish(&self, out: &mut Vec<u8>, body: &[u8]) {
        response::header_num(out, "Content-Length", body.len() as u64);
        response::finish(out, self.keep_alive, self.head.http10);
        out.extend_from_slice(body);
    }

    /// A whole answer with no headers of its own (and, for a 204, no
    /// `Content-Length`, which a 204 must not carry).
    pub fn plain(&self, out: &mut Vec<u8>, code: u16) {
        self.start(out, code);
        if code == 204 {
            response::finish(out, self.keep_alive, self.head.http10);
        } else {
            self.finish(out, b"");
        }
    }
}

impl Service for Local {
    type Error = MasterError;

    fn name(&self) -> &'static str {
        SERVER
    }

    fn timeouts(&self) -> Timeouts {
        self.app.timeouts
    }

    fn shutting_down(&self) -> bool {
        self.app.shutdown.is_triggered()
    }

    fn error_status(&self, e: &MasterError) -> Option<u16> {
        e.status()
    }

    /// The original answers most refusals with an empty body; the rest get
    /// a line saying why.
    fn write_error(
        &self,
        out: &mut Vec<u8>,
        code: u16,
        e: &dyn std::fmt::Display,
        keep_alive: bool,
        http10: bool,
    ) {
        let (content_type, text) = match code {
            403 | 404 | 405 | 409 | 411 => (None, String::new()),
            _ => (Some("text/plain"), format!("{e}\n")),
        };
        response::simple(
            out,
            code,
            SERVER,
            content_type,
            text.as_bytes(),
            keep_alive,
            http10,
        );
    }

    async fn call(&self, conn: &mut Conn, head: &RequestHead) -> Result<bool, MasterError> {
        let mut key = std::mem::take(&mut conn.scratch);
        let started = Instant::now();
        let result = self.dispatch(conn, head, &mut key).await;
        if self.app.cluster.verbose {
            let key = String::from_utf8_lossy(&key);
            match &result {
                Ok(_) => {
                    tracing::info!(method = ?head.method, %key, elapsed = ?started.elapsed(), "ok")
                }
                Err(e) => {
                    tracing::info!(method = ?head.method, %key, status = ?e.status(), error = %e, "failed")
                }
            }
        }
        conn.scratch = key;
        result
    }
}

impl Local {
    async fn dispatch(
        &self,
        conn: &mut Conn,
        head: &RequestHead,
        key: &mut Vec<u8>,
    ) -> Result<bool, MasterError> {
        let op = router::route(head, key)?;
        let keep_alive = head.keep_alive && !self.shutting_down();
        let req = Req {
            head,
            key,
            keep_alive,
        };
        match op {
            // A HEAD's answer is a GET's (a 302 has no body either way).
            Op::Get | Op::Head => get::serve(self, conn, &req).await?,
            Op::Put => put::serve(self, conn, &req).await?,
            Op::Delete => delete::delete(self, conn, &req).await?,
            Op::Unlink => delete::unlink(self, conn, &req).await?,
            Op::Rebalance => rebalance::serve(self, conn, &req).await?,
            Op::List {
                unlinked,
                start,
                limit,
            } => list::serve(self, conn, &req, unlinked, &start, limit).await?,
        }
        conn.end_response().await?;
        Ok(keep_alive)
    }
}

/// A running master.
pub struct Server {
    addr: SocketAddr,
    driver: DriverKind,
    threads: Vec<JoinHandle<()>>,
    app: Arc<App>,
}

impl Server {
    pub fn start(app: Arc<App>, addr: SocketAddr, threads: usize) -> std::io::Result<Server> {
        let listeners = runtime::bind_listeners(addr, threads)?;
        let addr = listeners[0].local_addr()?;
        let shared = app.clone();
        let (threads, driver) =
            runtime::spawn_workers("mkv", listeners, &app.shutdown, move |listener| {
                let local = Rc::new(Local::new(shared.clone()));
                volume_uring::http::serve::accept_loop(listener, local, GRACE)
            })?;
        Ok(Server {
            addr,
            driver,
            threads,
            app,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn driver(&self) -> DriverKind {
        self.driver
    }

    pub fn shutdown_handle(&self) -> Arc<Shutdown> {
        self.app.shutdown.clone()
    }

    /// Blocks until a shutdown has been triggered and every thread is done.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}
