//! Group commit: the batches (and the lock takings) that wait while the
//! database works on earlier ones go to it together, as one statement.
//!
//! Each kind of job has its lane; a lane takes every job of its kind
//! waiting when it is free and runs them as one statement. While the
//! database keeps up, each job is a statement of its own, at once, as
//! before; once the lane is busy, the jobs arriving meanwhile share the
//! next statement, and its commit (and for synced batches, its wait for
//! the disk). A statement costs the database and this thread much the
//! same for one key as for a few, so under load the statements, commits
//! and wakeups per write fall with the load. LevelDB's writer thread does
//! the same with its log.
//!
//! The writes' lane takes batches, and lock takings with a claim (a new
//! key's first writes, made in the commit that takes its lock): both
//! commit synced; a group's claims are one transaction and its batches one
//! statement, sent at once on two connections. The locks' lane takes the
//! other lock takings, whose commits need not wait for the disk. Relaxed and synced batches share the writes' lane: a
//! group commits synced if any of its jobs asks it (a relaxed batch then
//! waits for the disk too, which it may), relaxed if all are relaxed.
//!
//! A group's batches apply whole or not at all: when one of their fences
//! is not held (a lock taken over), none of them is written and they go
//! again one by one, so that only the batch whose lock was lost fails. A
//! claim is written or not by itself (`schema::CLAIM`).

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use deadpool_postgres::Object;
use futures_channel::oneshot;
use futures_util::future::{join, join4};
use tokio::sync::{mpsc, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{in_order, schema, Shared};
use crate::index::{Claim, IndexError, Locked, Write};

/// Statements of one kind in flight at once, at most: writes, lock
/// takings. One of each did best in the mix (docs/postgres.md): while a
/// group waits for the disk the next one gathers, and every statement
/// saved is CPU the database and the volumes get back. A second lane
/// halved the groups' sizes and cost throughput on one master and on two.
const WRITE_LANES: usize = 1;
const LOCK_LANES: usize = 1;
/// Jobs in one group at most, and (batches) writes: a tool's large batch
/// goes alone.
const GROUP_JOBS: usize = 64;
const GROUP_WRITES: usize = 4096;
/// A statement that deadlocked with another master's is tried this many
/// times in all.
const TRIES: usize = 3;

/// A batch of writes, as [`super::Pg::submit`] queued it.
pub(super) struct ApplyJob {
    pub ops: Vec<Write>,
    pub relaxed: bool,
    /// The key whose lock this master must hold for the batch to apply.
    pub fence: Option<Vec<u8>>,
    /// The hold of the fence's lock this batch ends, if it does.
    pub release: Option<i64>,
    pub done: oneshot::Sender<Result<(), IndexError>>,
}

/// A key's lock to take, keys to read once it is taken, and writes to
/// make in the same commit if the keys they write hold no record then
/// (the claim: puts of the key's own records).
pub(super) struct LockJob {
    pub key: Vec<u8>,
    pub token: i64,
    pub reads: Vec<Vec<u8>>,
    pub claim: Claim,
    pub done: oneshot::Sender<Result<Option<Locked>, IndexError>>,
}

/// A job of the writes' lane.
enum WriteJob {
    Batch(ApplyJob),
    Claim(LockJob),
}

/// Where the backend's thread hands batches and lock takings.
pub(super) struct Lanes {
    writes: mpsc::UnboundedSender<WriteJob>,
    locks: mpsc::UnboundedSender<LockJob>,
}

impl Lanes {
    /// Starts the lanes as tasks of the thread's local set.
    pub(super) fn start(sh: &Arc<Shared>) -> Lanes {
        let (writes, rx) = mpsc::unbounded_channel();
        spawn_lanes(sh, rx, WRITE_LANES, write_group);
        let (locks, rx) = mpsc::unbounded_channel();
        spawn_lanes(sh, rx, LOCK_LANES, lock_group);
        Lanes { writes, locks }
    }

    pub(super) fn apply(&self, job: ApplyJob) {
        if let Err(mpsc::error::SendError(WriteJob::Batch(job))) =
            self.writes.send(WriteJob::Batch(job))
        {
            let _ = job.done.send(Err(stopped()));
        }
    }

    pub(super) fn lock(&self, job: LockJob) {
        let refused = match job.claim.is_empty() {
            true => self.locks.send(job).err().map(|e| e.0),
            false => match self.writes.send(WriteJob::Claim(job)) {
                Err(mpsc::error::SendError(WriteJob::Claim(job))) => Some(job),
                _ => None,
            },
        };
        if let Some(job) = refused {
            let _ = job.done.send(Err(stopped()));
        }
    }
}

fn stopped() -> IndexError {
    IndexError::Unavailable("the database thread stopped".into())
}

/// The size of a job, for the group's bound on writes.
trait JobSize {
    fn size(&self) -> usize;
}

impl JobSize for WriteJob {
    fn size(&self) -> usize {
        match self {
            WriteJob::Batch(j) => j.ops.len().max(1),
            WriteJob::Claim(j) => j.claim.len().max(1),
        }
    }
}

impl JobSize for LockJob {
    fn size(&self) -> usize {
        1
    }
}

/// `lanes` tasks taking groups of jobs from `rx` and running each with
/// `run`: a free lane takes every job waiting, up to a group's bounds.
fn spawn_lanes<J: JobSize + 'static>(
    sh: &Arc<Shared>,
    rx: mpsc::UnboundedReceiver<J>,
    lanes: usize,
    run: impl AsyncFn(&Shared, Vec<J>) + Copy + 'static,
) {
    let rx = Rc::new(Mutex::new(rx));
    for _ in 0..lanes {
        let (sh, rx) = (sh.clone(), rx.clone());
        tokio::task::spawn_local(async move {
            // A job that did not fit in the group starts the next one.
            let mut first = None;
            loop {
                let group = {
                    let mut rx = rx.lock().await;
                    let Some(job) = (match first.take() {
                        Some(j) => Some(j),
                        None => rx.recv().await,
                    }) else {
                        return;
                    };
                    let mut size = job.size();
                    let mut group = vec![job];
                    while group.len() < GROUP_JOBS && size < GROUP_WRITES {
                        let Ok(job) = rx.try_recv() else { break };
                        if size + job.size() > GROUP_WRITES {
                            first = Some(job);
                            break;
                        }
                        size += job.size();
                        group.push(job);
                    }
                    group
                };
                run(&sh, group).await;
            }
        });
    }
}

/// The jobs whose key (if they have one) no earlier job has, in order;
/// and the others, to go on their own after them.
fn first_of_each<J>(jobs: Vec<J>, key: impl Fn(&J) -> Option<&[u8]>) -> (Vec<J>, Vec<J>) {
    let mut seen = HashSet::new();
    let (mut kept, mut later) = (Vec::with_capacity(jobs.len()), Vec::new());
    for j in jobs {
        match key(&j) {
            Some(k) if !seen.insert(k.to_vec()) => later.push(j),
            _ => kept.push(j),
        }
    }
    (kept, later)
}

/// Lock takings in key order (so that two masters' statements lock rows
/// in one order), a key once (its own writers here ask one at a time, so
/// a second is rare: it goes after, on its own).
fn in_key_order(mut jobs: Vec<LockJob>) -> (Vec<LockJob>, Vec<LockJob>) {
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    first_of_each(jobs, |j| Some(j.key.as_slice()))
}

/// `f` until it does not deadlock with another master's statement, up to
/// [`TRIES`] times.
async fn retrying<T>(mut f: impl AsyncFnMut() -> Result<T, IndexError>) -> Result<T, IndexError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match f().await {
            Err(IndexError::Retry(_)) if tries < TRIES => continue,
            Err(IndexError::Retry(msg)) => return Err(IndexError::Unavailable(msg)),
            other => return other,
        }
    }
}

/// Runs a group of the writes' lane: its claims as one transaction, its
/// batches as one statement, the two at once on two connections; if some
/// batch's fence was not held, its batches again each on its own.
///
/// The claims' transaction and the batches' statement stay apart: a
/// transaction that took rows' locks (its `LOCK`, in key order) and then
/// waited for more in a second statement (an `APPLY`'s fences) could
/// deadlock with another master's doing the same the other way round.
async fn write_group(sh: &Shared, jobs: Vec<WriteJob>) {
    let m = &*crate::metrics::METRICS;
    let started = std::time::Instant::now();
    let (mut batches, mut claims) = (Vec::new(), Vec::new());
    for j in jobs {
        match j {
            WriteJob::Batch(b) => batches.push(b),
            WriteJob::Claim(c) => claims.push(c),
        }
    }
    let (claims, later_claims) = in_key_order(claims);
    // One batch per fenced key in a statement (a key's writes are under
    // its lock, one at a time, so a second is rare: it waits for the next).
    let (batches, mut later) = first_of_each(batches, |j| j.fence.as_deref());
    let relaxed = batches.iter().all(|j| j.relaxed);
    let (taken, applied) = join(
        async {
            match claims.is_empty() {
                true => None,
                false => Some(retrying(async || claim_locks(sh, &claims).await).await),
            }
        },
        async {
            match batches.is_empty() {
                true => None,
                false => Some(retrying(async || apply(sh, &batches, relaxed).await).await),
            }
        },
    )
    .await;
    if !claims.is_empty() || !relaxed {
        m.index_sync_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    if let Some(taken) = taken {
        answer_locks(claims, taken.as_ref());
    }
    match applied {
        None => {}
        Some(Ok(false)) if batches.len() > 1 => later.extend(batches),
        Some(res) => answer_batches(batches, res),
    }
    for c in later_claims {
        let one = std::slice::from_ref(&c);
        let res = retrying(async || claim_locks(sh, one).await).await;
        answer_locks(vec![c], res.as_ref());
    }
    for j in later {
        let one = std::slice::from_ref(&j);
        let res = retrying(async || apply(sh, one, j.relaxed).await).await;
        answer_batches(vec![j], res);
    }
}

/// Answers batches with whether they applied (false: a fence was not
/// held, nothing was written).
fn answer_batches(jobs: Vec<ApplyJob>, applied: Result<bool, IndexError>) {
    let m = &*crate::metrics::METRICS;
    for j in jobs {
        m.index_writes.inc_by(j.ops.len() as u64);
        let res = match &applied {
            Ok(true) => Ok(()),
            Ok(false) => Err(IndexError::LockLost),
            Err(e) => Err(e.same()),
        };
        let _ = j.done.send(res);
    }
}

/// The arguments of [`schema::APPLY`] for `jobs`: the last write of each
/// key, in key order (so that statements over the same keys lock them in
/// one order); the fences, sorted, and the holds they end.
struct ApplyArgs<'j> {
    fences: Vec<&'j [u8]>,
    releases: Vec<Option<i64>>,
    dels: Vec<&'j [u8]>,
    keys: Vec<&'j [u8]>,
    values: Vec<&'j [u8]>,
}

impl<'j> ApplyArgs<'j> {
    fn of(jobs: &'j [ApplyJob]) -> ApplyArgs<'j> {
        let mut last: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for op in jobs.iter().flat_map(|j| &j.ops) {
            match op {
                Write::Put(k, v) => last.insert(k, Some(v)),
                Write::Delete(k) => last.insert(k, None),
            };
        }
        let (mut dels, mut keys, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for (k, v) in last {
            match v {
                Some(v) => {
                    keys.push(k);
                    values.push(v);
                }
                None => dels.push(k),
            }
        }
        // A tool's batches carry no fence (`Pg::submit`).
        let mut fenced: Vec<(&[u8], Option<i64>)> = jobs
            .iter()
            .filter_map(|j| Some((j.fence.as_deref()?, j.release)))
            .collect();
        fenced.sort_unstable();
        let (fences, releases) = fenced.into_iter().unzip();
        ApplyArgs {
            fences,
            releases,
            dels,
            keys,
            values,
        }
    }
}

/// The batches `jobs` as one statement ([`schema::APPLY`]); whether they
/// applied (false: some fence was not held, and none was written).
async fn apply(sh: &Shared, jobs: &[ApplyJob], relaxed: bool) -> Result<bool, IndexError> {
    let a = ApplyArgs::of(jobs);
    let args: [&(dyn ToSql + Sync); 7] = [
        &a.fences,
        &sh.owner,
        &a.releases,
        &relaxed,
        &a.dels,
        &a.keys,
        &a.values,
    ];
    let row = sh
        .run(async |c: &Object| {
            let apply = c.prepare_cached(schema::APPLY).await?;
            c.query_one(&apply, &args).await
        })
        .await?;
    Ok(row.get::<_, bool>(0))
}

/// The claims' locks taken ([`schema::LOCK`]) and their writes made
/// ([`schema::CLAIM`]) in one transaction, pipelined: one round trip, one
/// synced commit. What the locks took and read, and what was written.
async fn claim_locks(sh: &Shared, claims: &[LockJob]) -> Result<Taken, IndexError> {
    let cl = Claims::of(claims);
    let lock_args: [&(dyn ToSql + Sync); 4] = [&cl.locks, &sh.owner, &cl.tokens, &false];
    let claim_args: [&(dyn ToSql + Sync); 6] = [
        &cl.rows_lock,
        &cl.rows_token,
        &cl.keys,
        &cl.values,
        &cl.reads,
        &sh.owner,
    ];
    sh.run(async |c: &Object| {
        let lock = c.prepare_cached(schema::LOCK).await?;
        let claim = c.prepare_cached(schema::CLAIM).await?;
        let (begun, locks, rows, committed) = join4(
            c.batch_execute("BEGIN"),
            c.query(&lock, &lock_args),
            c.query(&claim, &claim_args),
            c.batch_execute("COMMIT"),
        )
        .await;
        // The first error is the one that counts: after it, the
        // transaction's other statement fails, and COMMIT rolls back.
        begun?;
        let (locks, rows) = (locks?, rows?);
        committed?;
        let (written, read): (Vec<Row>, Vec<Row>) =
            rows.into_iter().partition(|r| r.get::<_, bool>(2));
        let written = written
            .iter()
            .map(|r| r.get::<_, &[u8]>(0).to_vec())
            .collect();
        Ok(Taken {
            locks,
            read,
            written,
        })
    })
    .await
}

/// What a lock statement answered: the keys whose locks it took, the rows
/// read under them, the keys the claims wrote.
#[derive(Default)]
struct Taken {
    locks: Vec<Row>,
    read: Vec<Row>,
    written: HashSet<Vec<u8>>,
}

/// Answers lock takings with what their statement took and read.
fn answer_locks(jobs: Vec<LockJob>, got: Result<&Taken, &IndexError>) {
    let taken: HashSet<&[u8]> = match got {
        Ok(t) => t.locks.iter().map(|r| r.get(0)).collect(),
        Err(_) => HashSet::new(),
    };
    for j in jobs {
        let answer = match got {
            Ok(t) => Ok(taken.contains(j.key.as_slice()).then(|| Locked {
                vals: in_order(&j.reads, &t.read),
                claimed: j.claim.first().is_some_and(|(k, _)| t.written.contains(k)),
            })),
            Err(e) => Err(e.same()),
        };
        let _ = j.done.send(answer);
    }
}

/// The locks, reads and claimed rows of lock takings, as [`schema::LOCK`],
/// [`schema::GET_MANY`] and [`schema::CLAIM`] take them.
struct Claims<'j> {
    locks: Vec<&'j [u8]>,
    tokens: Vec<i64>,
    /// Every key the takings read, once, sorted.
    reads: Vec<&'j [u8]>,
    /// For each row written, its lock's key and hold's token.
    rows_lock: Vec<&'j [u8]>,
    rows_token: Vec<i64>,
    keys: Vec<&'j [u8]>,
    values: Vec<&'j [u8]>,
}

impl<'j> Claims<'j> {
    fn of(jobs: &'j [LockJob]) -> Claims<'j> {
        let mut c = Claims {
            locks: Vec::with_capacity(jobs.len()),
            tokens: Vec::with_capacity(jobs.len()),
            reads: Vec::new(),
            rows_lock: Vec::new(),
            rows_token: Vec::new(),
            keys: Vec::new(),
            values: Vec::new(),
        };
        for j in jobs {
            c.locks.push(&j.key);
            c.tokens.push(j.token);
            c.reads.extend(j.reads.iter().map(Vec::as_slice));
            for (k, v) in &j.claim {
                c.rows_lock.push(&j.key);
                c.rows_token.push(j.token);
                c.keys.push(k);
                c.values.push(v);
            }
        }
        c.reads.sort_unstable();
        c.reads.dedup();
        c
    }
}

/// Takes a group of keys' locks as one statement and reads what each
/// asks under it, pipelined behind it on the same connection (its own
/// transaction, so its snapshot sees all the keys' last holders
/// committed; wasted for a key whose lock is taken).
async fn lock_group(sh: &Shared, jobs: Vec<LockJob>) {
    let (kept, later) = in_key_order(jobs);
    lock_keys(sh, kept).await;
    for j in later {
        lock_keys(sh, vec![j]).await;
    }
}

async fn lock_keys(sh: &Shared, jobs: Vec<LockJob>) {
    let cl = Claims::of(&jobs);
    let got = retrying(async || {
        sh.run(async |c: &Object| {
            let lock = c.prepare_cached(schema::LOCK).await?;
            let args: [&(dyn ToSql + Sync); 4] = [&cl.locks, &sh.owner, &cl.tokens, &true];
            let mut taken = Taken::default();
            if cl.reads.is_empty() {
                taken.locks = c.query(&lock, &args).await?;
                return Ok(taken);
            }
            let read = c.prepare_cached(schema::GET_MANY).await?;
            let (locks, rows) = join(c.query(&lock, &args), c.query(&read, &[&cl.reads])).await;
            (taken.locks, taken.read) = (locks?, rows?);
            Ok(taken)
        })
        .await
    })
    .await;
    answer_locks(jobs, got.as_ref());
}
