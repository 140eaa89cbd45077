//! PUT: the body streams to every replica at once, through a bounded buffer,
//! with its md5 and CRC32 computed on the way. [`write_new`] does the work
//! for S3's PutObject and multipart completions too, for keys that hold no
//! live value.
//!
//! Crash ordering (the intent protocol of `ops::intent`, kind PUT):
//! 1. the record is written soft-deleted with the new replicas, and beside
//!    it the intent naming them and the old record, in one synced batch: a
//!    crash from here on leaves the key invisible, never half-visible, and
//!    the journal removes what landed;
//! 2. every replica receives the value (volume-uring and nginx both store a
//!    PUT whole or not at all; volume-uring fsyncs before answering, and
//!    stores nothing whose client hung up first);
//! 3. the record is written live with its md5, with the object's metadata,
//!    and the intent removed, in one synced batch; then the 201.
//!
//! If any replica fails (or stores bytes whose CRC32 differs from what was
//! sent, or the value fails the caller's check), the key's file is deleted
//! on every replica and the record goes back to what it was (none, or the
//! old soft-deleted one); replicas that do not answer the delete stay in
//! the intent (as a failed write's) until they do. Then the 5xx (or the
//! check's error).

use http1::{BodyReader, Conn, HttpError};

use crate::client::fanout::{Fanout, Sent, Target};
use crate::digests::{Digests, Sums};
use crate::error::MasterError;
use crate::index::{Claim, Durability, Write};
use crate::meta::{self, Intent, ObjectMeta};
use crate::ops::intent::{self, Earlier};
use crate::ops::locks::KeyGuard;
use crate::placement::{key2path, key2volume, unstorable};
use crate::record::Record;
use crate::Store;

/// Bytes read from the client before each round of sends to the replicas.
pub const CHUNK: usize = 512 * 1024;

/// Where a value's bytes come from: a request body, plain or decoded.
#[allow(async_fn_in_trait)] // one thread: no Send needed
pub trait Source {
    /// Why a read or a check of the value failed: the store's errors, or
    /// the caller's own (an S3 payload's signature, say).
    type Error: From<MasterError>;
    /// Bytes into `buf` until it is full or the value ends.
    async fn read_full(&mut self, conn: &mut Conn, buf: Vec<u8>) -> Result<Vec<u8>, Self::Error>;
    fn is_done(&self) -> bool;
    /// A trailer field that came after the value, once it has all been read.
    fn trailer(&self, name: &str) -> Option<&str>;
}

impl Source for BodyReader {
    type Error = MasterError;

    async fn read_full(&mut self, conn: &mut Conn, buf: Vec<u8>) -> Result<Vec<u8>, MasterError> {
        let read: Result<Vec<u8>, HttpError> = BodyReader::read_full(self, conn, buf).await;
        Ok(read?)
    }

    fn is_done(&self) -> bool {
        BodyReader::is_done(self)
    }

    fn trailer(&self, name: &str) -> Option<&str> {
        BodyReader::trailer(self, name)
    }
}

/// A value about to be written to a key that holds no live one.
pub struct NewValue<'k> {
    pub key: &'k [u8],
    /// Where the write starts: step 1 to do, or done with the lock.
    pub start: Start,
    /// The caller's hold of the key's lock, if the write's commit is the
    /// last thing it writes under it: the lock then goes with the commit.
    pub ends: Option<&'k KeyGuard<'k>>,
    /// Content type and metadata; size, time and ETag are filled in.
    pub meta: ObjectMeta,
    /// More writes for the batch that makes the value live.
    pub extra: Vec<Write>,
}

/// Where a new value's write starts.
pub enum Start {
    /// Step 1 to do: the key's record (soft-deleted) if it has one, and
    /// what the caller knows of its intent.
    Begin {
        old: Option<Record>,
        earlier: Earlier,
    },
    /// Step 1 done in the commit that took the key's lock: the intent
    /// [`claim`] gave, which the lock's claim wrote.
    Claimed(Intent),
}

/// Step 1 of a write of a key with no record and no intent, as a claim
/// of the key's lock ([`crate::ops::locks::KeyLocks::try_lock_claiming`]):
/// the intent, and the records to write (the soft record, the intent).
pub fn claim(key: &[u8], replicas: &[String]) -> (Intent, Claim) {
    let intent = Intent::put(replicas, None);
    let rows = vec![
        (key.to_vec(), soft_record(replicas).encode()),
        (meta::intent_key(key), meta::encode(&intent)),
    ];
    (intent, rows)
}

/// The record a PUT writes first: soft-deleted, naming the new replicas.
fn soft_record(replicas: &[String]) -> Record {
    Record {
        deleted: true,
        hash: None,
        volumes: replicas.to_vec(),
    }
}

/// Streams `source` to the key's replicas and makes it live, as above; the
/// caller holds the key's lock. Returns what was sent and the metadata
/// recorded.
pub async fn write_new<S: Source>(
    store: &Store,
    conn: &mut Conn,
    new: NewValue<'_>,
    source: &mut S,
    digests: Digests,
    check: impl FnOnce(&Sums, &S) -> Result<(), S::Error>,
) -> Result<(Sent, ObjectMeta), S::Error> {
    if let Some(why) = unstorable(new.key) {
        return Err(MasterError::Unstorable(why).into());
    }
    let c = &store.cluster;
    let replicas = key2volume(new.key, &c.volumes, c.replicas, c.subvolumes);
    let writing = match new.start {
        Start::Begin { old, earlier } => begin(store, new.key, &replicas, old, earlier).await?,
        Start::Claimed(intent) => intent,
    };
    let mut landed = Vec::new();
    let targets = Target::each(&replicas, &key2path(new.key));
    let sent = match replicate(store, conn, &targets, source, digests, check, &mut landed).await {
        Ok(sent) => sent,
        Err(e) => {
            undo(store, new.key, &writing).await;
            return Err(e);
        }
    };
    let hash = sent.md5().filter(|_| c.md5sum);
    let meta = meta_of(new.meta, &sent, hash.clone());
    let mut ops = vec![
        Write::Put(
            new.key.to_vec(),
            Record::live(replicas.clone(), hash).encode(),
        ),
        meta::put_op(meta::object_key(new.key), &meta),
        intent::done_op(new.key),
    ];
    ops.extend(new.extra);
    let index = &store.index;
    let committed = match new.ends {
        Some(hold) if hold.key() == new.key => {
            hold.commit_last(index, ops, Durability::Synced).await
        }
        _ => index.apply_held(new.key, ops, Durability::Synced).await,
    };
    if let Err(e) = committed {
        undo(store, new.key, &writing).await;
        return Err(MasterError::from(e).into());
    }
    Ok((sent, meta))
}

/// Step 1 of a write to a key that holds no live value (the caller holds
/// its lock): the soft record and the intent, synced. The intent says what
/// undoing the write puts back.
pub async fn begin(
    store: &Store,
    key: &[u8],
    replicas: &[String],
    old: Option<Record>,
    earlier: Earlier,
) -> Result<Intent, MasterError> {
    let soft = soft_record(replicas);
    let (writing, _) = intent::begin(&store.index, &store.client, key, old, earlier, |old| {
        let also = vec![Write::Put(key.to_vec(), soft.encode())];
        (Intent::put(replicas, old), also)
    })
    .await?;
    Ok(writing)
}

/// The metadata of a value just sent.
pub fn meta_of(mut meta: ObjectMeta, sent: &Sent, hash: Option<String>) -> ObjectMeta {
    meta.size = sent.bytes;
    meta.mtime_ms = crate::time::now_ms();
    meta.etag = sent.md5().unwrap_or_default();
    meta.hash = hash;
    meta
}

/// Streams a value to every target; the targets that stored it are pushed
/// to `landed` as they answer.
pub async fn replicate<S: Source>(
    store: &Store,
    conn: &mut Conn,
    targets: &[Target],
    source: &mut S,
    digests: Digests,
    check: impl FnOnce(&Sums, &S) -> Result<(), S::Error>,
    landed: &mut Vec<String>,
) -> Result<Sent, S::Error> {
    let mut fanout = Fanout::open(&store.client, targets, digests).await?;
    // The next chunk is read from the client while this one goes out; the
    // last one goes with the trailers.
    let mut chunk = source.read_full(conn, Vec::with_capacity(CHUNK)).await?;
    while !source.is_done() {
        let next = source.read_full(conn, Vec::with_capacity(CHUNK));
        let (sent, next) = monoio::join!(fanout.send(chunk), next);
        sent?;
        chunk = next?;
    }
    let source: &S = source;
    fanout
        .finish_checked(chunk, landed, |sums| check(sums, source))
        .await
}

/// After a failed PUT: deletes the key's file on every replica it went to
/// (a volume that timed out may still commit it) and puts the old record
/// back; replicas that do not answer stay in the intent, for the journal.
pub async fn undo(store: &Store, key: &[u8], writing: &Intent) {
    if let Err(e) = intent::undo(&store.index, &store.client, key, writing).await {
        tracing::error!(error = %e, key = %String::from_utf8_lossy(key), "could not restore the record after a failed write");
    }
}
