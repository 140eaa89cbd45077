//! The master's admin listener (`--admin-port`): `/metrics` (Prometheus),
//! `/health` (the process answers), `/ready` (the index is open and enough
//! volumes answer for the replica count), and the status page at `/`.
//! `crate::health` keeps what they show fresh; `status` draws the page.

pub mod status;

use std::sync::Arc;

use http1::admin::{AdminAnswer, AdminHandler, AdminRequest};
use http1::service::ConnLimit;

use crate::metrics::METRICS;
use crate::state::App;

pub struct Admin {
    pub app: Arc<App>,
    /// The API's address, for the page.
    pub listen: String,
    /// The connections of each API listener.
    pub connections: Vec<Arc<ConnLimit>>,
    /// How often the index is counted.
    pub census_every: std::time::Duration,
}

impl AdminHandler for Admin {
    fn answer(&self, req: &AdminRequest) -> AdminAnswer {
        match req.path {
            "/" | "/status" => AdminAnswer {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: status::page(self).into_bytes(),
            },
            "/metrics" => self.metrics(),
            "/health" => AdminAnswer::text(200, "ok\n"),
            "/ready" => match self.not_ready() {
                None => AdminAnswer::text(200, "ready\n"),
                Some(why) => AdminAnswer::text(503, format!("not ready: {why}\n")),
            },
            _ => AdminAnswer::text(
                404,
                "not found: try / (status), /metrics, /health or /ready\n",
            ),
        }
    }
}

impl Admin {
    fn metrics(&self) -> AdminAnswer {
        let open: usize = self.connections.iter().map(|c| c.open()).sum();
        METRICS.http.connections.set(open as i64);
        AdminAnswer::metrics(&METRICS.registry)
    }

    /// Why the master should not take requests now, if it should not.
    pub fn not_ready(&self) -> Option<String> {
        let app = &self.app;
        if app.shutdown.is_triggered() {
            return Some("shutting down".into());
        }
        if let Some(why) = app.index.trouble() {
            return Some(format!("the index does not answer: {why}"));
        }
        let volumes = app.health.volumes();
        if volumes.iter().any(|v| !v.checked) {
            return Some("volumes not checked yet".into());
        }
        let up = volumes.iter().filter(|v| v.up).count();
        if up < app.cluster.replicas {
            let down: Vec<&str> = volumes
                .iter()
                .filter(|v| !v.up)
                .map(|v| v.name.as_str())
                .collect();
            return Some(format!(
                "{up} of {} volumes answer, {} replicas need {}; down: {}",
                volumes.len(),
                app.cluster.replicas,
                app.cluster.replicas,
                down.join(", ")
            ));
        }
        None
    }
}
