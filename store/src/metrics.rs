//! The master's metrics, one set per process: requests (http1's), replica
//! failures, the index (writes, syncs, the miss filter, keys), and what the
//! health checks see of each volume.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use http1::metrics::{latency_buckets, HttpMetrics};

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub volume: String,
    /// `timeout`, or `error` (refused, broken, or a failing answer).
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VolumeLabel {
    pub volume: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub http: HttpMetrics,
    pub replica_failures: Family<FailureLabels, Counter>,
    /// Their sum, for the status page (a family cannot be summed).
    replica_failures_sum: Counter,
    pub index_writes: Counter,
    pub index_sync_seconds: Histogram,
    /// Writes made durable by one sync of the index log.
    pub index_sync_batch: Histogram,
    pub filter_hits: Counter,
    pub cache_hits: Counter,
    /// Scans whose view lost a table to a compaction, finished under the lock.
    pub scan_fallbacks: Counter,
    /// Keys and bytes, as the last census of the index counted them.
    pub index_keys: Gauge,
    pub index_bytes: Gauge,
    pub volume_up: Family<VolumeLabel, Gauge>,
    pub volume_check_seconds: Family<VolumeLabel, Histogram>,
    pub volume_disk_total: Family<VolumeLabel, Gauge>,
    pub volume_disk_free: Family<VolumeLabel, Gauge>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mkv");
        let http = HttpMetrics::new(&mut registry);
        let m = Metrics {
            http,
            replica_failures: Family::default(),
            replica_failures_sum: Counter::default(),
            index_writes: Counter::default(),
            index_sync_seconds: Histogram::new(latency_buckets()),
            index_sync_batch: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            filter_hits: Counter::default(),
            cache_hits: Counter::default(),
            scan_fallbacks: Counter::default(),
            index_keys: Gauge::default(),
            index_bytes: Gauge::default(),
            volume_up: Family::default(),
            volume_check_seconds: Family::new_with_constructor(
                || Histogram::new(latency_buckets()),
            ),
            volume_disk_total: Family::default(),
            volume_disk_free: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        http1::register_metrics!(
            r,
            "replica_failures", "Requests to volumes that failed, by volume and kind", m.replica_failures;
            "index_writes", "Records written to (or deleted from) the index", m.index_writes;
            "index_sync_duration_seconds", "Time one sync of the index log took", m.index_sync_seconds;
            "index_sync_batch_writes", "Writes made durable by one sync of the index log", m.index_sync_batch;
            "index_filter_hits", "Lookups of missing keys the miss filter answered without LevelDB", m.filter_hits;
            "index_cache_hits", "Lookups the record cache answered", m.cache_hits;
            "index_scan_fallbacks", "Scans that finished under the index lock because a compaction removed a table they were to read", m.scan_fallbacks;
            "index_keys", "Keys in the index (live and unlinked), as last counted", m.index_keys;
            "index_value_bytes", "Bytes of the values the index records, as last counted", m.index_bytes;
            "volume_up", "Whether the volume answered its last health check", m.volume_up;
            "volume_check_duration_seconds", "Time a volume took to answer a health check", m.volume_check_seconds;
            "volume_disk_total_bytes", "Size of the volume's filesystem (volume-uring volumes)", m.volume_disk_total;
            "volume_disk_free_bytes", "Bytes free on the volume's filesystem (volume-uring volumes)", m.volume_disk_free;
        );
        Metrics { registry, ..m }
    }

    /// Counts a request to a volume that failed.
    pub fn replica_failed(&self, volume: &str, timed_out: bool) {
        let labels = FailureLabels {
            volume: volume.to_string(),
            kind: if timed_out { "timeout" } else { "error" },
        };
        self.replica_failures.get_or_create(&labels).inc();
        self.replica_failures_sum.inc();
    }

    /// Replica failures so far, summed over volumes.
    pub fn replica_failures_total(&self) -> u64 {
        self.replica_failures_sum.get()
    }
}
