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
//! Relaxed and synced batches share a lane: a group commits synced if any
//! of its batches asks it (a relaxed batch then waits for the disk too,
//! which it may), relaxed if all of them are relaxed.
//!
//! A group applies whole or not at all: when one of its fences is not
//! held (a lock taken over), nothing of it is written and its batches go
//! again one by one, so that only the batch whose lock was lost fails.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use deadpool_postgres::Object;
use futures_channel::oneshot;
use futures_util::future::join;
use tokio::sync::{mpsc, Mutex};
use tokio_postgres::types::ToSql;

use super::{in_order, schema, Shared};
use crate::index::{IndexError, Write};

/// Statements of one kind in flight at once, at most: batches, lock
/// takings. One of each did best in the mix (docs/postgres.md): while a
/// group waits for the disk the next one gathers, and every statement
/// saved is CPU the database and the volumes get back. A second lane
/// halved the groups' sizes and cost throughput on one master and on two.
const BATCH_LANES: usize = 1;
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

/// A key's lock to take, and keys to read once it is taken.
pub(super) struct LockJob {
    pub key: Vec<u8>,
    pub token: i64,
    pub reads: Vec<Vec<u8>>,
    pub done: oneshot::Sender<Result<Option<Vec<Option<Bytes>>>, IndexError>>,
}

/// Where the backend's thread hands batches and lock takings.
pub(super) struct Lanes {
    batches: mpsc::UnboundedSender<ApplyJob>,
    locks: mpsc::UnboundedSender<LockJob>,
}

impl Lanes {
    /// Starts the lanes as tasks of the thread's local set.
    pub(super) fn start(sh: &Arc<Shared>) -> Lanes {
        let (batches, rx) = mpsc::unbounded_channel();
        spawn_lanes(sh, rx, BATCH_LANES, apply_group);
        let (locks, rx) = mpsc::unbounded_channel();
        spawn_lanes(sh, rx, LOCK_LANES, lock_group);
        Lanes { batches, locks }
    }

    pub(super) fn apply(&self, job: ApplyJob) {
        if let Err(mpsc::error::SendError(job)) = self.batches.send(job) {
            let _ = job.done.send(Err(stopped()));
        }
    }

    pub(super) fn lock(&self, job: LockJob) {
        if let Err(mpsc::error::SendError(job)) = self.locks.send(job) {
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

impl JobSize for ApplyJob {
    fn size(&self) -> usize {
        self.ops.len().max(1)
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

/// Applies a group of batches as one statement; if some fence was not
/// held, each batch again on its own.
async fn apply_group(sh: &Shared, jobs: Vec<ApplyJob>) {
    let m = &*crate::metrics::METRICS;
    let started = std::time::Instant::now();
    // One batch per fenced key in a statement (a key's writes are under
    // its lock, one at a time, so a second is rare: it waits for the next).
    let (jobs, mut later) = first_of_each(jobs, |j| j.fence.as_deref());
    let relaxed = jobs.iter().all(|j| j.relaxed);
    let res = apply(sh, &jobs, relaxed).await;
    let alone = matches!(res, Err(IndexError::LockLost)) && jobs.len() > 1;
    if !relaxed {
        m.index_sync_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    if alone {
        later.extend(jobs);
    } else {
        for j in jobs {
            m.index_writes.inc_by(j.ops.len() as u64);
            let _ = j
                .done
                .send(res.as_ref().map(|_| ()).map_err(IndexError::same));
        }
    }
    for j in later {
        let res = apply(sh, std::slice::from_ref(&j), j.relaxed).await;
        m.index_writes.inc_by(j.ops.len() as u64);
        let _ = j.done.send(res);
    }
}

/// The batches `jobs` as one statement (see [`schema::APPLY`]): the last
/// write of each key, in key order (so that statements over the same keys
/// lock them in one order). `LockLost` if a fence was not held: nothing
/// applied. A deadlock with another master's statement is tried again.
async fn apply(sh: &Shared, jobs: &[ApplyJob], relaxed: bool) -> Result<(), IndexError> {
    let mut last: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
    for op in jobs.iter().flat_map(|j| &j.ops) {
        match op {
            Write::Put(k, v) => last.insert(k, Some(v)),
            Write::Delete(k) => last.insert(k, None),
        };
    }
    let (mut dels, mut ks, mut vs) = (Vec::new(), Vec::new(), Vec::new());
    for (k, v) in last {
        match v {
            Some(v) => {
                ks.push(k);
                vs.push(v);
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
    let (fences, releases): (Vec<&[u8]>, Vec<Option<i64>>) = fenced.into_iter().unzip();
    let mut tries = 0;
    loop {
        tries += 1;
        let res = sh
            .run(async |c: &Object| {
                let stmt = c.prepare_cached(schema::APPLY).await?;
                let args: [&(dyn ToSql + Sync); 7] =
                    [&fences, &sh.owner, &releases, &relaxed, &dels, &ks, &vs];
                c.query_one(&stmt, &args).await
            })
            .await;
        return match res {
            Err(IndexError::Retry(_)) if tries < TRIES => continue,
            Err(IndexError::Retry(msg)) => Err(IndexError::Unavailable(msg)),
            Err(e) => Err(e),
            Ok(row) if row.get::<_, bool>(0) => Ok(()),
            Ok(_) => Err(IndexError::LockLost),
        };
    }
}

/// Takes a group of keys' locks as one statement and reads what each
/// asks under it, pipelined behind it on the same connection (its own
/// transaction, so its snapshot sees all the keys' last holders
/// committed; wasted for a key whose lock is taken).
async fn lock_group(sh: &Shared, mut jobs: Vec<LockJob>) {
    // A key once per statement (its own writers here ask one at a time,
    // so a second is rare: it waits for the next); in key order, so that
    // two masters' statements lock rows in one order.
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    let (kept, later) = first_of_each(jobs, |j| Some(j.key.as_slice()));
    lock_keys(sh, kept).await;
    for j in later {
        lock_keys(sh, vec![j]).await;
    }
}

async fn lock_keys(sh: &Shared, jobs: Vec<LockJob>) {
    let keys: Vec<&[u8]> = jobs.iter().map(|j| j.key.as_slice()).collect();
    let tokens: Vec<i64> = jobs.iter().map(|j| j.token).collect();
    let mut reads: Vec<&[u8]> = jobs
        .iter()
        .flat_map(|j| j.reads.iter().map(Vec::as_slice))
        .collect();
    reads.sort_unstable();
    reads.dedup();
    let mut tries = 0;
    let got = loop {
        tries += 1;
        let got = sh
            .run(async |c: &Object| {
                let lock = c.prepare_cached(schema::LOCK).await?;
                let args: [&(dyn ToSql + Sync); 3] = [&keys, &sh.owner, &tokens];
                if reads.is_empty() {
                    return Ok((c.query(&lock, &args).await?, Vec::new()));
                }
                let read = c.prepare_cached(schema::GET_MANY).await?;
                let (taken, rows) = join(c.query(&lock, &args), c.query(&read, &[&reads])).await;
                Ok((taken?, rows?))
            })
            .await;
        match got {
            Err(IndexError::Retry(_)) if tries < TRIES => continue,
            Err(IndexError::Retry(msg)) => break Err(IndexError::Unavailable(msg)),
            other => break other,
        }
    };
    match got {
        Ok((taken, rows)) => {
            let taken: HashSet<&[u8]> = taken.iter().map(|r| r.get(0)).collect();
            for j in jobs {
                let answer = taken
                    .contains(j.key.as_slice())
                    .then(|| in_order(&j.reads, &rows));
                let _ = j.done.send(Ok(answer));
            }
        }
        Err(e) => {
            for j in jobs {
                let _ = j.done.send(Err(e.same()));
            }
        }
    }
}
