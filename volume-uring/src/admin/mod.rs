//! The volume's admin listener (`--admin-port`): `/metrics` (Prometheus),
//! `/health` (the process answers) and `/ready` (its folder takes writes
//! and has room). Also the background scrub (`--scrub-every`).

pub mod metrics;

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http1::admin::{AdminAnswer, AdminHandler, AdminRequest};
use http1::service::ConnLimit;
use http1::Shutdown;

use crate::store::place::{space, Space};
use crate::store::upload::TEMP_PREFIX;
use metrics::METRICS;

pub struct VolumeAdmin {
    pub dir: PathBuf,
    /// `/ready` wants at least this many bytes free.
    pub min_free: u64,
    pub connections: Arc<ConnLimit>,
    pub shutdown: Arc<Shutdown>,
}

impl AdminHandler for VolumeAdmin {
    fn answer(&self, req: &AdminRequest) -> AdminAnswer {
        match req.path {
            "/metrics" => self.metrics(),
            "/health" => AdminAnswer::text(200, "ok\n"),
            "/ready" => match self.not_ready() {
                None => AdminAnswer::text(200, "ready\n"),
                Some(why) => AdminAnswer::text(503, format!("not ready: {why}\n")),
            },
            _ => AdminAnswer::text(404, "not found: try /metrics, /health or /ready\n"),
        }
    }
}

impl VolumeAdmin {
    fn metrics(&self) -> AdminAnswer {
        let m = &*METRICS;
        m.http.connections.set(self.connections.open() as i64);
        if let Ok(s) = space(&self.dir) {
            m.disk_total.set(s.total as i64);
            m.disk_free.set(s.free as i64);
            m.inodes_total.set(s.inodes_total as i64);
            m.inodes_free.set(s.inodes_free as i64);
        }
        AdminAnswer::metrics(&m.registry)
    }

    /// Why the volume should not take writes now, if it should not.
    fn not_ready(&self) -> Option<String> {
        if self.shutdown.is_triggered() {
            return Some("shutting down".into());
        }
        // A real write: a read-only remount or a full inode table shows here.
        let mut probe = TEMP_PREFIX.to_vec();
        probe.extend_from_slice(format!("{}-ready", std::process::id()).as_bytes());
        let probe = self.dir.join(std::ffi::OsStr::from_bytes(&probe));
        if let Err(e) = std::fs::write(&probe, b"") {
            return Some(format!("{} is not writable: {e}", self.dir.display()));
        }
        let _ = std::fs::remove_file(&probe);
        match space(&self.dir) {
            Ok(Space { free, .. }) if free < self.min_free => Some(format!(
                "{free} bytes free, under --ready-min-free ({} bytes)",
                self.min_free
            )),
            Ok(_) => None,
            Err(e) => Some(format!("cannot read free space: {e}")),
        }
    }
}

/// Scrubs `dir` every `every` on a thread of its own, from `every` after
/// start; what it finds goes to the metrics and the log.
pub fn spawn_scrub(dir: PathBuf, every: Duration, shutdown: Arc<Shutdown>) {
    let spawned = std::thread::Builder::new()
        .name("scrub".into())
        .spawn(move || loop {
            let mut waited = Duration::ZERO;
            while waited < every {
                if shutdown.is_triggered() {
                    return;
                }
                let step = Duration::from_secs(1).min(every - waited);
                std::thread::sleep(step);
                waited += step;
            }
            let report = crate::scrub::scrub_with(&dir, true);
            scrubbed(&report);
            tracing::info!(
                files = report.files,
                verified = report.verified,
                mismatched = report.mismatched.len(),
                unreadable = report.unreadable.len(),
                "scrub finished"
            );
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the background scrub");
    }
}

/// Takes what a scrub found into the metrics.
fn scrubbed(report: &crate::scrub::Report) {
    let results = [
        ("verified", report.verified),
        ("without_crc", report.without_crc),
        ("mismatched", report.mismatched.len() as u64),
        ("unreadable", report.unreadable.len() as u64),
        ("partial_upload", report.partial_uploads.len() as u64),
    ];
    for (result, n) in results {
        METRICS
            .scrub_files
            .get_or_create(&metrics::ResultLabel { result })
            .set(n as i64);
    }
    METRICS.scrub_runs.inc();
    METRICS.scrub_last_end.set(metrics::unix_now() as i64);
}
