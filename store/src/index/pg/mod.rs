//! The PostgreSQL backend: one table of keys and values, in the order
//! LevelDB keeps them (bytea compares byte by byte), so that every record
//! and every scan above is the same; the key locks of every master in a
//! second table (`locks`).
//!
//! tokio-postgres needs a tokio runtime; the master's threads run monoio.
//! So the backend owns one thread running a current-thread tokio runtime
//! with a pool of connections (deadpool-postgres). Callers on any thread
//! hand it a job over a channel and wait for the answer on a oneshot:
//! monoio tasks await it, the tools and the blocking pool block on it.
//! Each job is bounded by the master's volume timeout, pool wait included:
//! a database that does not answer is an `Unavailable` error (503), never
//! a hang; a connection that failed or timed out leaves the pool, and new
//! ones go to whichever host of the URL takes writes now.

mod groups;
mod live;
pub(super) mod scan;
mod schema;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_channel::oneshot;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};
use tokio_postgres::{NoTls, Row};

use super::{Claim, IndexError, Locked, Write};

/// Connections each master (or tool) keeps to the database at most.
const POOL_SIZE: usize = 16;
/// Lookups answered by one query at most.
const GET_BATCH: usize = 256;
/// Keys read per query of a scan.
pub(super) const PAGE_ROWS: i64 = 1024;
/// A failed unlock is tried again after this, then twice as long, up to
/// `UNLOCK_PAUSE_MAX`, until it succeeds.
const UNLOCK_PAUSE: Duration = Duration::from_millis(100);
const UNLOCK_PAUSE_MAX: Duration = Duration::from_secs(5);

/// Who opens the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A master (`mkv server`): one of any number, each with key locks.
    Serve,
    /// A tool (`mkv rebuild`, `rebalance`, `verify`, `migrate`): alone, as
    /// over LevelDB; no master may run meanwhile.
    Tool,
}

/// Whether `db` names a PostgreSQL database rather than a LevelDB folder.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// What the backend's thread shares with the callers.
pub(super) struct Shared {
    pool: Pool,
    config: tokio_postgres::Config,
    timeout: Duration,
    /// This process's id in the locks table: a random number whose
    /// advisory lock the process holds while it is connected.
    owner: i64,
    role: Role,
    name: String,
    /// Why the database does not answer now (`None`: it does).
    trouble: Mutex<Option<String>>,
    /// Why this process's session (`live`) is not open, if it is not.
    session: Mutex<Option<String>>,
    /// A tool lost the session that kept other users out.
    lost: AtomicBool,
    /// The session whose locks say this process is alive (`live`).
    live: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
    closing: AtomicBool,
}

enum Job {
    Get {
        key: Vec<u8>,
        done: oneshot::Sender<Result<Option<Bytes>, IndexError>>,
    },
    Apply(groups::ApplyJob),
    Page {
        from: Vec<u8>,
        end: Option<Vec<u8>>,
        done: oneshot::Sender<Result<Vec<Row>, IndexError>>,
    },
    Lock(groups::LockJob),
    Unlock {
        key: Vec<u8>,
        token: i64,
        done: oneshot::Sender<()>,
    },
    /// Lets go of the session's locks, then stops the thread.
    Close {
        done: oneshot::Sender<()>,
    },
}

pub(super) struct Pg {
    shared: Arc<Shared>,
    jobs: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    http1::runtime::block_on(f)
}

impl Pg {
    /// Connects, creates the schema if it is missing, and takes this
    /// process's place among the database's users (`role`).
    pub(super) fn open(url: &str, role: Role, timeout: Duration) -> Result<Pg, IndexError> {
        let name = redact(url);
        let open_err = |msg: String| IndexError::Open {
            path: name.clone(),
            msg,
        };
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| open_err(e.to_string()))?;
        config.application_name("mkv");
        let options = match config.get_options() {
            Some(own) => format!("{own} {}", schema::SESSION_OPTIONS),
            None => schema::SESSION_OPTIONS.to_string(),
        };
        config.options(&options);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(timeout);
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(5));
        config.keepalives_interval(Duration::from_secs(1));
        config.keepalives_retries(3);
        let owner = random_owner();
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let thread_name = name.clone();
        let thread = std::thread::Builder::new()
            .name("index-pg".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = opened_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    let manager = Manager::from_config(
                        config.clone(),
                        NoTls,
                        ManagerConfig {
                            recycling_method: RecyclingMethod::Fast,
                        },
                    );
                    let pool = Pool::builder(manager)
                        .max_size(POOL_SIZE)
                        .runtime(Runtime::Tokio1)
                        .wait_timeout(Some(timeout))
                        .create_timeout(Some(timeout))
                        .recycle_timeout(Some(timeout))
                        .build();
                    let pool = match pool {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = opened_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let shared = Arc::new(Shared {
                        pool,
                        config,
                        timeout,
                        owner,
                        role,
                        name: thread_name,
                        trouble: Mutex::new(None),
                        session: Mutex::new(None),
                        lost: AtomicBool::new(false),
                        live: tokio::sync::Mutex::new(None),
                        closing: AtomicBool::new(false),
                    });
                    match live::start(&shared).await {
                        Ok(()) => {
                            let _ = opened_tx.send(Ok(shared.clone()));
                        }
                        Err(e) => {
                            let _ = opened_tx.send(Err(e));
                            return;
                        }
                    }
                    serve(shared, jobs_rx).await;
                });
            })
            .map_err(|e| open_err(e.to_string()))?;
        let shared = match opened_rx.recv() {
            Ok(Ok(shared)) => shared,
            Ok(Err(msg)) => {
                let _ = thread.join();
                return Err(open_err(msg));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(open_err("the database thread stopped".into()));
            }
        };
        Ok(Pg {
            shared,
            jobs: Mutex::new(Some(jobs_tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn send(&self, job: Job) -> bool {
        match self.jobs.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        }
    }

    /// Sends the job `make` builds around an answer's sender; the answer's
    /// receiver, or an error if the backend is closed.
    fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, IndexError>>) -> Job,
    ) -> Result<oneshot::Receiver<Result<T, IndexError>>, IndexError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(make(tx)) {
            return Err(IndexError::Unavailable("the index is closed".into()));
        }
        Ok(rx)
    }

    async fn answer<T>(rx: oneshot::Receiver<Result<T, IndexError>>) -> Result<T, IndexError> {
        rx.await.unwrap_or_else(|_| {
            Err(IndexError::Unavailable(
                "the database thread stopped".into(),
            ))
        })
    }

    pub(super) async fn get_raw(&self, key: &[u8]) -> Result<Option<Bytes>, IndexError> {
        let key = key.to_vec();
        Self::answer(self.ask(|done| Job::Get { key, done })?).await
    }

    pub(super) fn get_raw_blocking(&self, key: &[u8]) -> Result<Option<Bytes>, IndexError> {
        block_on(self.get_raw(key))
    }

    /// Queues a batch; with `fence`, it applies only while this master
    /// holds that key's lock, and with `release` too, the lock goes in
    /// the same commit.
    pub(super) fn submit(
        &self,
        ops: Vec<Write>,
        relaxed: bool,
        fence: Option<&[u8]>,
        release: Option<i64>,
    ) -> Result<oneshot::Receiver<Result<(), IndexError>>, IndexError> {
        // A tool runs alone: nothing to fence against.
        let fence = fence.filter(|_| self.shared.role == Role::Serve);
        let release = release.filter(|_| fence.is_some());
        let fence = fence.map(<[u8]>::to_vec);
        self.ask(|done| {
            Job::Apply(groups::ApplyJob {
                ops,
                relaxed,
                fence,
                release,
                done,
            })
        })
    }

    /// Up to [`PAGE_ROWS`] keys from `from` (inclusive) to `end`
    /// (exclusive), in order.
    pub(super) fn page_blocking(
        &self,
        from: Vec<u8>,
        end: Option<Vec<u8>>,
    ) -> Result<Vec<Row>, IndexError> {
        block_on(Self::answer(self.ask(|done| Job::Page {
            from,
            end,
            done,
        })?))
    }

    /// Takes the key's lock in the database for this master (`token` names
    /// this hold), reads `reads` under it and makes the `claim`'s writes
    /// if the keys they write hold no record, in one round trip; `None` if
    /// a live master holds it.
    pub(super) async fn lock(
        &self,
        key: &[u8],
        token: i64,
        reads: Vec<Vec<u8>>,
        claim: Claim,
    ) -> Result<Option<Locked>, IndexError> {
        let key = key.to_vec();
        Self::answer(self.ask(|done| {
            Job::Lock(groups::LockJob {
                key,
                token,
                reads,
                claim,
                done,
            })
        })?)
        .await
    }

    /// Lets go of the key's lock (kept trying in the background until the
    /// database answers); the receiver hears once the first try is over.
    pub(super) fn unlock(&self, key: Vec<u8>, token: i64) -> Option<oneshot::Receiver<()>> {
        let (done, rx) = oneshot::channel();
        self.send(Job::Unlock { key, token, done }).then_some(rx)
    }

    /// Why the database does not answer, if it does not.
    pub(super) fn trouble(&self) -> Option<String> {
        self.shared.trouble()
    }

    pub(super) fn name(&self) -> &str {
        &self.shared.name
    }

    pub(super) fn close(&self) {
        self.shared.closing.store(true, Ordering::Release);
        let (done, rx) = oneshot::channel();
        if self.send(Job::Close { done }) {
            let _ = block_on(rx);
        }
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.close();
    }
}

fn random_owner() -> i64 {
    let mut random = [0u8; 8];
    let _ = rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty());
    let mixed = u64::from_le_bytes(random)
        ^ crate::time::now_ms().rotate_left(20)
        ^ u64::from(std::process::id());
    (mixed >> 1) as i64
}

/// Runs jobs until every sender is gone; each job is a task of its own,
/// so slow ones do not hold up the rest. The lookups waiting together are
/// one query (`GET_MANY`): under load, many wait while the thread works,
/// and one statement for many keys costs the database and this thread
/// far less than a statement each. Batches and lock takings go to their
/// lanes (`groups`), which do the same for them.
async fn serve(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let lanes = groups::Lanes::start(&shared);
    let mut gets = Vec::new();
    while let Some(first) = jobs.recv().await {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Close { done } => {
                    live::end(&shared).await;
                    let _ = done.send(());
                    return;
                }
                Job::Get { key, done } => gets.push((key, done)),
                Job::Apply(job) => lanes.apply(job),
                Job::Lock(job) => lanes.lock(job),
                other => {
                    tokio::task::spawn_local(run_job(shared.clone(), other));
                }
            }
            if gets.len() < GET_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        if !gets.is_empty() {
            let batch = std::mem::take(&mut gets);
            tokio::task::spawn_local(get_many(shared.clone(), batch));
        }
    }
}

type GetDone = oneshot::Sender<Result<Option<Bytes>, IndexError>>;

/// Looks up every key of `batch` (one query for more than one) and answers
/// each asker.
async fn get_many(sh: Arc<Shared>, batch: Vec<(Vec<u8>, GetDone)>) {
    if batch.len() == 1 {
        let (key, done) = batch.into_iter().next().expect("one");
        let got = sh
            .run(async |c: &Object| {
                let stmt = c.prepare_cached(schema::GET).await?;
                c.query_opt(&stmt, &[&key]).await
            })
            .await;
        let _ = done.send(got.map(|row| row.map(|r| Bytes::copy_from_slice(r.get(0)))));
        return;
    }
    let (keys, dones): (Vec<Vec<u8>>, Vec<GetDone>) = batch.into_iter().unzip();
    let rows = sh
        .run(async |c: &Object| {
            let stmt = c.prepare_cached(schema::GET_MANY).await?;
            c.query(&stmt, &[&keys]).await
        })
        .await;
    match rows {
        Ok(rows) => {
            for (v, done) in in_order(&keys, &rows).into_iter().zip(dones) {
                let _ = done.send(Ok(v));
            }
        }
        Err(e) => {
            for done in dones {
                let _ = done.send(Err(e.same()));
            }
        }
    }
}

async fn run_job(sh: Arc<Shared>, job: Job) {
    match job {
        Job::Get { key, done } => get_many(sh, vec![(key, done)]).await,
        Job::Page { from, end, done } => {
            let rows = sh
                .run(async |c: &Object| match &end {
                    Some(end) => {
                        let stmt = c.prepare_cached(schema::PAGE).await?;
                        c.query(&stmt, &[&from, end, &PAGE_ROWS]).await
                    }
                    None => {
                        let stmt = c.prepare_cached(schema::PAGE_TO_END).await?;
                        c.query(&stmt, &[&from, &PAGE_ROWS]).await
                    }
                })
                .await;
            let _ = done.send(rows);
        }
        Job::Apply(_) | Job::Lock(_) | Job::Close { .. } => {}
        Job::Unlock { key, token, done } => {
            let mut done = Some(done);
            let mut pause = UNLOCK_PAUSE;
            loop {
                let res = sh
                    .run(async |c: &Object| {
                        let stmt = c.prepare_cached(schema::UNLOCK).await?;
                        c.execute(&stmt, &[&key, &token]).await
                    })
                    .await;
                if let Some(d) = done.take() {
                    let _ = d.send(());
                }
                if res.is_ok() || sh.closing.load(Ordering::Acquire) {
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(UNLOCK_PAUSE_MAX);
            }
        }
    }
}

/// The value of each key of `keys` among `rows` (key, value), in order.
fn in_order(keys: &[Vec<u8>], rows: &[Row]) -> Vec<Option<Bytes>> {
    let found: std::collections::HashMap<&[u8], &[u8]> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    keys.iter()
        .map(|k| found.get(k.as_slice()).map(|v| Bytes::copy_from_slice(v)))
        .collect()
}

impl Shared {
    /// Runs `op` on a pooled connection, the whole bounded by the timeout.
    async fn run<T>(
        &self,
        op: impl AsyncFnOnce(&Object) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, IndexError> {
        if self.lost.load(Ordering::Acquire) {
            return Err(IndexError::Unavailable(
                "the tool lost its exclusive session with the database".into(),
            ));
        }
        let deadline = Instant::now() + self.timeout;
        let client = match timeout_at(deadline, self.pool.get()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(self.failed(format!(
                    "cannot connect to {}: {}",
                    self.name,
                    pool_error(&e)
                )))
            }
            Err(_) => return Err(self.failed(self.no_answer())),
        };
        match timeout_at(deadline, op(&client)).await {
            Ok(Ok(v)) => {
                self.recovered();
                Ok(v)
            }
            Ok(Err(e)) => {
                let why = describe(&e);
                match e.code().map(|c| c.code()) {
                    Some("40P01") | Some("40001") => return Err(IndexError::Retry(why)),
                    _ => {}
                }
                if broken(&e) {
                    let _ = Object::take(client);
                }
                Err(self.failed(why))
            }
            Err(_) => {
                let _ = Object::take(client);
                Err(self.failed(self.no_answer()))
            }
        }
    }

    fn no_answer(&self) -> String {
        format!(
            "the database {} did not answer within {:?}",
            self.name, self.timeout
        )
    }

    /// Notes why the database failed (for `/ready`); the error to answer.
    fn failed(&self, why: String) -> IndexError {
        let mut t = self.trouble.lock().unwrap_or_else(|e| e.into_inner());
        match t.as_deref() {
            None => tracing::warn!(error = %why, "the index database failed"),
            Some(was) if was != why => tracing::debug!(error = %why, "the index database failed"),
            Some(_) => {}
        }
        *t = Some(why.clone());
        IndexError::Unavailable(why)
    }

    /// Notes why the session is not open (`None`: it is again).
    fn session_trouble(&self, why: Option<String>) {
        let mut s = self.session.lock().unwrap_or_else(|e| e.into_inner());
        match (&*s, &why) {
            (None, Some(w)) => tracing::warn!(error = %w, "the index session is lost"),
            (Some(_), None) => tracing::info!(db = %self.name, "the index session is back"),
            _ => {}
        }
        *s = why;
    }

    fn recovered(&self) {
        let mut t = self.trouble.lock().unwrap_or_else(|e| e.into_inner());
        if t.take().is_some() {
            tracing::info!(db = %self.name, "the index database answers again");
        }
    }

    fn trouble(&self) -> Option<String> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        session.clone().or_else(|| {
            self.trouble
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        })
    }
}

/// Whether the connection `e` came from can no longer be used: closed, a
/// socket error, the server shutting down, or one that takes no writes
/// (a standby: after a failover, a new connection finds the primary).
fn broken(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code().map(|c| c.code()) {
        None => true,
        Some(code) => code.starts_with("08") || code.starts_with("57P") || code == "25006",
    }
}

/// An error's message with its cause (tokio-postgres's own say little).
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => describe(e),
        other => other.to_string(),
    }
}
