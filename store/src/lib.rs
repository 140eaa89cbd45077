//! mkv-store: what the master keeps and how it writes it — the index, the
//! stored formats, the volumes' client and the multi-step writes — for the
//! master's plain API, its S3 API (the `mkv-s3` crate) and its tools. Every
//! module, layer by layer (each uses only the layers below it):
//! - [`Store`]: what one runtime thread reads and writes through.
//! - `ops`: the writes — `put` (a new value streamed to its replicas),
//!   `install` (a staged value put in a live key's place), `delete`,
//!   `rebalance` (one key's replicas moved) — `locks`, the per-key write
//!   locks they take, and `intent`, the one write-intent protocol every
//!   multi-step write follows and the one function that undoes each kind.
//! - `index`: the only code that touches LevelDB (API, core, read views,
//!   writer thread, durable env, miss filter, record cache).
//! - `record` (the original's `/` records) and `meta` (every other record:
//!   S3 metadata, buckets, uploads, parts, intents; the hand-read form a
//!   listing decodes): the only code that reads or writes stored formats.
//! - `client`: the HTTP client for volumes — pooled connections, replies,
//!   pipelined HEADs, streaming transfers, volume-to-volume `copy`, and
//!   `fanout` (one stream to several volumes).
//! - `digests` (md5 and S3 checksums of a streaming value, on a hashing
//!   thread), `md5x` (md5 of many values at once, one per SIMD lane),
//!   `placement` (key2path, key2volume, the replicas' read order), `time`
//!   (S3's date formats), `cluster` (the checked flags every command
//!   shares).
//! - `error` (the store's errors and their plain-API statuses) and
//!   `metrics` (the Prometheus metrics every layer counts into).

pub mod client;
pub mod cluster;
pub mod digests;
pub mod error;
pub mod index;
pub mod md5x;
pub mod meta;
pub mod metrics;
pub mod ops;
pub mod placement;
pub mod record;
pub mod time;

use std::rc::Rc;
use std::sync::Arc;

use client::VolumeClient;
use cluster::Cluster;
use index::Index;
use ops::locks::KeyLocks;

/// The `Server` header of every answer the master gives.
pub const SERVER: &str = "mkv";

/// What one runtime thread reads and writes through: the index, the
/// cluster and the key locks every thread shares, and this thread's pooled
/// connections to the volumes. The plain API, the S3 API and the tools
/// reach values only through it and `ops`.
#[derive(Clone)]
pub struct Store {
    pub cluster: Arc<Cluster>,
    pub index: Arc<Index>,
    pub locks: Arc<KeyLocks>,
    pub client: Rc<VolumeClient>,
}

impl Store {
    /// A thread's store over shared parts, with connections of its own.
    pub fn new(cluster: Arc<Cluster>, index: Arc<Index>, locks: Arc<KeyLocks>) -> Store {
        let client = VolumeClient::new(cluster.voltimeout, cluster.volume_timeout);
        Store {
            cluster,
            index,
            locks,
            client: Rc::new(client),
        }
    }

    /// Runs `f` on the index on the blocking pool (scans take a while; the
    /// runtime thread serves on meanwhile).
    /// `what` names it in the error if its thread panics.
    pub async fn blocking<T, E, F>(&self, what: &'static str, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<error::MasterError> + Send + 'static,
        F: FnOnce(&Index) -> Result<T, E> + Send + 'static,
    {
        let index = self.index.clone();
        monoio::spawn_blocking(move || f(&index))
            .await
            .map_err(|_| E::from(error::MasterError::Pool(what)))?
    }
}
