//! The hashing thread. Every runtime thread hands it the large pieces of
//! the values it streams; each round takes all the pieces waiting and
//! hashes their md5s side by side in SIMD lanes (`md5x::update_many`),
//! then their other checksums one by one. Under load, pieces pile up while
//! a round runs, so the next round fills more lanes: 16 uploads cost about
//! what 1.5 do one after another. When fewer pieces wait than uploads are
//! under way, a round waits up to `GATHER` for more. There is one thread
//! for every 8 cores; without vector lanes (fewer than 8), one per core.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::oneshot;

use super::Digests;
use crate::error::MasterError;
use crate::md5x;

/// How long a round waits for the pieces of other uploads under way: a
/// fraction of the time one piece takes to hash alone (256 KiB: ~0.4 ms).
const GATHER: Duration = Duration::from_micros(100);

/// Uploads under way that have had a piece hashed here.
static STREAMS: AtomicUsize = AtomicUsize::new(0);

/// Counts one upload under way while it lives (see `STREAMS`).
pub struct Stream(());

impl Stream {
    pub fn new() -> Stream {
        STREAMS.fetch_add(1, Ordering::Relaxed);
        Stream(())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Job {
    digests: Digests,
    piece: Bytes,
    done: oneshot::Sender<Digests>,
}

#[derive(Default)]
struct Queue {
    jobs: Mutex<Vec<Job>>,
    more: Condvar,
}

/// Feeds `piece` to `digests` on the hashing thread (inline, should no
/// hashing thread have started).
pub async fn hash(mut digests: Digests, piece: Bytes) -> Result<Digests, MasterError> {
    let Some(queue) = queue() else {
        digests.update(&piece);
        return Ok(digests);
    };
    let (done, hashed) = oneshot::channel();
    queue
        .jobs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Job {
            digests,
            piece,
            done,
        });
    queue.more.notify_one();
    hashed.await.map_err(|_| MasterError::Pool("hashing"))
}

/// The queue, with its threads started on first use: one for every 8
/// cores with vector lanes (one thread fills its lanes best; a machine
/// with many cores may hash more than one can), else one per core.
fn queue() -> Option<&'static Queue> {
    static QUEUE: OnceLock<Option<Arc<Queue>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let queue = Arc::new(Queue::default());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = if md5x::width() >= 8 {
            cores.div_ceil(8)
        } else {
            cores
        };
        let mut started = 0;
        for _ in 0..threads {
            let q = queue.clone();
            match std::thread::Builder::new()
                .name("hashing".into())
                .spawn(move || serve(&q))
            {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "a hashing thread could not start"),
            }
        }
        (started > 0).then_some(queue)
    });
    queue.as_deref()
}

fn serve(queue: &Queue) {
    let width = md5x::width();
    loop {
        let jobs = {
            let mut waiting = queue.jobs.lock().unwrap_or_else(|e| e.into_inner());
            while waiting.is_empty() {
                waiting = queue.more.wait(waiting).unwrap_or_else(|e| e.into_inner());
            }
            let want = STREAMS.load(Ordering::Relaxed).min(width);
            let deadline = Instant::now() + GATHER;
            while waiting.len() < want {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                waiting = queue
                    .more
                    .wait_timeout(waiting, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::take(&mut *waiting)
        };
        round(jobs);
    }
}

/// Hashes every job's piece and hands its digests back.
fn round(mut jobs: Vec<Job>) {
    let mut md5s: Vec<(&mut md5x::Md5, &[u8])> = jobs
        .iter_mut()
        .filter_map(|j| j.digests.md5.as_mut().map(|m| (m, &j.piece[..])))
        .collect();
    md5x::update_many(&mut md5s);
    for mut job in jobs {
        job.digests.update_others(&job.piece);
        // The uploader may have gone: its digests are dropped.
        let _ = job.done.send(job.digests);
    }
}
