//! The walk behind `GET /?recursive`, off the runtime: [`WALKERS`] threads
//! take folders from a shared queue, read them (entries, `stat`, the kept
//! md5) and hand back JSON lines in pieces of about [`CHUNK`] bytes. On a
//! cold disk every `stat` may wait for an inode block; many folders read
//! at once keep many such reads in flight, where one thread walking alone
//! waited on one at a time (and held up its runtime's other requests).
//! Pieces go through a bounded channel, so a slow reader stops the walk
//! rather than filling memory; a reader that goes away stops it too.
//! Entries come in no particular order.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use futures_channel::mpsc;
use futures_util::StreamExt;

use super::listing::{push_file_with_md5, read_below};

/// Threads walking one listing.
pub const WALKERS: usize = 16;
/// Recursive listings walked at once (a rebuild or a verify takes one per
/// volume); past it, a 503: no client can make the volume start threads
/// without end.
pub const MAX_WALKS: usize = 4;

static WALKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A place among the [`MAX_WALKS`] walks, held until the walk is dropped.
pub struct Permit(());

impl Permit {
    pub fn take() -> Option<Permit> {
        use std::sync::atomic::Ordering::Relaxed;
        if WALKS.fetch_add(1, Relaxed) >= MAX_WALKS {
            WALKS.fetch_sub(1, Relaxed);
            return None;
        }
        Some(Permit(()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        WALKS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
/// A piece of the listing is sent once it holds this many bytes.
pub const CHUNK: usize = 64 * 1024;

/// A folder to read, and its path under the listed one (`ab/cd/`).
type Folder = (OwnedFd, Vec<u8>);

#[derive(Default)]
struct Work {
    folders: Vec<Folder>,
    /// Folders being read now: the walk is over when none is left to read
    /// and none is being read.
    busy: usize,
    stop: bool,
}

#[derive(Default)]
struct Queue {
    work: Mutex<Work>,
    changed: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Work> {
        self.work.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next folder to read; `None` once the walk is over or stopped.
    fn next(&self) -> Option<Folder> {
        let mut work = self.lock();
        loop {
            if work.stop {
                return None;
            }
            if let Some(folder) = work.folders.pop() {
                work.busy += 1;
                return Some(folder);
            }
            if work.busy == 0 {
                return None;
            }
            work = self.changed.wait(work).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A folder was read; its subfolders join the queue.
    fn done(&self, subfolders: Vec<Folder>) {
        let mut work = self.lock();
        work.busy -= 1;
        work.folders.extend(subfolders);
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }
}

/// A walk in progress: its pieces, each a run of `,\r\n{entry}` lines, or
/// the error that ended it.
pub struct Walk {
    pieces: mpsc::Receiver<Piece>,
    queue: Arc<Queue>,
    _permit: Permit,
}

impl Walk {
    /// Starts walking below `dir`.
    pub fn start(dir: OwnedFd, permit: Permit) -> std::io::Result<Walk> {
        let queue = Arc::new(Queue::default());
        queue.lock().folders.push((dir, Vec::new()));
        let (tx, pieces) = mpsc::channel(WALKERS);
        for i in 0..WALKERS {
            let (queue, tx) = (queue.clone(), tx.clone());
            std::thread::Builder::new()
                .name(format!("walk-{i}"))
                .spawn(move || walker(&queue, tx))?;
        }
        Ok(Walk {
            pieces,
            queue,
            _permit: permit,
        })
    }

    /// The next piece; `None` at the end.
    pub async fn next(&mut self) -> Option<Piece> {
        self.pieces.next().await
    }
}

impl Drop for Walk {
    fn drop(&mut self) {
        self.queue.stop();
    }
}

fn walker(queue: &Queue, mut tx: mpsc::Sender<Piece>) {
    let mut piece = Vec::with_capacity(CHUNK + 1024);
    while let Some((folder, prefix)) = queue.next() {
        let mut subfolders = Vec::new();
        let read = read_below(&folder, &prefix, &mut subfolders);
        queue.done(subfolders);
        let files = match read {
            Ok(files) => files,
            Err(e) => {
                let path = String::from_utf8_lossy(&prefix).into_owned();
                send(&mut tx, Err(format!("/{path}: {e}")));
                return queue.stop();
            }
        };
        for entry in &files {
            piece.extend_from_slice(b",\r\n");
            push_file_with_md5(&mut piece, &folder, &prefix, entry);
            if piece.len() >= CHUNK {
                let full = std::mem::replace(&mut piece, Vec::with_capacity(CHUNK + 1024));
                if !send(&mut tx, Ok(full)) {
                    // The reader went away.
                    return queue.stop();
                }
            }
        }
    }
    if !piece.is_empty() {
        send(&mut tx, Ok(piece));
    }
}

type Piece = Result<Vec<u8>, String>;

/// Sends a piece, waiting while the channel is full; false if the reader
/// went away.
fn send(tx: &mut mpsc::Sender<Piece>, piece: Piece) -> bool {
    let ready = http1::runtime::block_on(std::future::poll_fn(|cx| tx.poll_ready(cx)));
    ready.is_ok() && tx.start_send(piece).is_ok()
}
