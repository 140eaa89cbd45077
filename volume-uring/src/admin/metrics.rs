//! The volume's metrics, one set per process: requests (http1's), syncs,
//! files, disk space and inodes (read when scraped), and what the
//! background scrub found.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use http1::metrics::{latency_buckets, HttpMetrics};

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

pub struct Metrics {
    pub registry: Registry,
    pub http: HttpMetrics,
    /// One group commit: how long its fsyncs (or syncfs) took.
    pub sync_seconds: Histogram,
    /// Files and folders made durable by one group commit.
    pub sync_batch: Histogram,
    pub sync_failures: Counter,
    /// Files stored: counted at start, then kept as PUTs add and DELETEs
    /// remove them.
    pub files: Gauge,
    pub disk_total: Gauge,
    pub disk_free: Gauge,
    pub inodes_total: Gauge,
    pub inodes_free: Gauge,
    pub temp_removed: Counter,
    pub scrub_runs: Counter,
    /// Files the last finished scrub found, by result.
    pub scrub_files: Family<ResultLabel, Gauge>,
    pub scrub_last_end: Gauge,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("volume");
        let http = HttpMetrics::new(&mut registry);
        let m = Metrics {
            http,
            sync_seconds: Histogram::new(latency_buckets()),
            sync_batch: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            sync_failures: Counter::default(),
            files: Gauge::default(),
            disk_total: Gauge::default(),
            disk_free: Gauge::default(),
            inodes_total: Gauge::default(),
            inodes_free: Gauge::default(),
            temp_removed: Counter::default(),
            scrub_runs: Counter::default(),
            scrub_files: Family::default(),
            scrub_last_end: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        http1::register_metrics!(
            r,
            "sync_duration_seconds", "Time one group commit (fsyncs or syncfs) took", m.sync_seconds;
            "sync_batch_files", "Files and folders made durable by one group commit", m.sync_batch;
            "sync_failures", "Group commits that failed", m.sync_failures;
            "files", "Files stored (counted at start, then kept up to date)", m.files;
            "disk_total_bytes", "Size of the volume's filesystem", m.disk_total;
            "disk_free_bytes", "Bytes free on the volume's filesystem for the volume", m.disk_free;
            "inodes_total", "Inodes of the volume's filesystem", m.inodes_total;
            "inodes_free", "Inodes free on the volume's filesystem", m.inodes_free;
            "temp_files_removed", "Temporary files of cut-off uploads removed", m.temp_removed;
            "scrub_runs", "Background scrubs finished", m.scrub_runs;
            "scrub_files", "Files the last finished scrub found, by result", m.scrub_files;
            "scrub_last_end_timestamp_seconds", "When the last scrub finished (0: none yet)", m.scrub_last_end;
        );
        Metrics { registry, ..m }
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
