//! What every server counts about its requests, in the Prometheus text
//! format (`prometheus-client`): requests by API, method and status,
//! latency histograms, bytes in and out, and connections open.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::{Answer, Conn, Method, RequestHead};

/// Registers each metric (cloned) in a registry under its name with its
/// help text: `register_metrics!(registry, "name", "help", metric; ...)`.
#[macro_export]
macro_rules! register_metrics {
    ($r:expr, $($name:literal, $help:literal, $metric:expr;)*) => {
        $( $r.register($name, $help, $metric.clone()); )*
    };
}

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Latency buckets: 0.25 ms to about 8 s, doubling.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_25, 2.0, 16)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    api: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    api: &'static str,
    method: &'static str,
}

/// The request metrics of one server.
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
    /// Sums for [`HttpMetrics::totals`]: `[all, 4xx, 5xx or broken]`.
    classes: [Counter; 3],
    /// Set from the servers' [`crate::service::ConnLimit`]s when scraped.
    pub connections: Gauge,
}

impl HttpMetrics {
    /// Registers the request metrics in `registry`.
    pub fn new(registry: &mut Registry) -> HttpMetrics {
        let m = HttpMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            connections: Gauge::default(),
            classes: Default::default(),
        };
        crate::register_metrics!(
            registry,
            "http_requests", "Requests answered, by API, method and status (0: the connection broke first)", m.requests;
            "http_request_duration_seconds", "Time from a request's head to the end of its answer", m.latency;
            "http_received_bytes", "Bytes received from clients (heads and bodies)", m.bytes_in;
            "http_sent_bytes", "Bytes sent to clients (heads and bodies)", m.bytes_out;
            "connections_open", "Client connections open now", m.connections;
        );
        m
    }

    pub fn observe(&self, api: &'static str, method: &'static str, done: &Finished) {
        self.count(api, method, done.status, done.secs);
        self.classes[0].inc();
        match done.status {
            400..=499 => {
                self.classes[1].inc();
            }
            0 | 500..=599 => {
                self.classes[2].inc();
            }
            _ => {}
        }
        self.bytes_in.inc_by(done.bytes_in);
        self.bytes_out.inc_by(done.bytes_out);
    }

    /// Counts a request in its series, found in this thread's cache: the
    /// families' own lookup takes a lock and hashes the labels.
    fn count(&self, api: &'static str, method: &'static str, status: u16, secs: f64) {
        let me = self as *const HttpMetrics as usize;
        SERIES.with(|cache| {
            let mut cache = cache.borrow_mut();
            let at = cache.iter().position(|s| {
                s.owner == me
                    && s.status == status
                    && std::ptr::eq(s.api, api)
                    && std::ptr::eq(s.method, method)
            });
            let at = at.unwrap_or_else(|| {
                cache.push(Series {
                    owner: me,
                    api,
                    method,
                    status,
                    count: self.requests.get_or_create_owned(&RequestLabels {
                        api,
                        method,
                        status,
                    }),
                    latency: self
                        .latency
                        .get_or_create_owned(&LatencyLabels { api, method }),
                });
                cache.len() - 1
            });
            cache[at].count.inc();
            cache[at].latency.observe(secs);
        })
    }

    /// Requests counted so far, in all and by failing status class,
    /// summed over APIs and methods: for status pages.
    pub fn totals(&self) -> RequestTotals {
        RequestTotals {
            all: self.classes[0].get(),
            client_errors: self.classes[1].get(),
            server_errors: self.classes[2].get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
        }
    }
}

/// A series of one [`HttpMetrics`] (by address: `mkv dev` runs a master's
/// and volumes' in one process), as a thread found it.
struct Series {
    owner: usize,
    api: &'static str,
    method: &'static str,
    status: u16,
    count: Counter,
    latency: Histogram,
}

thread_local! {
    static SERIES: std::cell::RefCell<Vec<Series>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Sums of the request counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RequestTotals {
    pub all: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A method as a label: the known ones, `UNLINK`, or `other`, so that no
/// client can make up new series.
pub fn method_label(head: &RequestHead) -> &'static str {
    match head.method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Put => "PUT",
        Method::Post => "POST",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Patch => "PATCH",
        Method::Other if head.method_name() == "UNLINK" => "UNLINK",
        Method::Other => "other",
    }
}

/// Measures one request: started when its head was read.
pub struct Timer {
    started: Instant,
    bytes_in: u64,
    bytes_out: u64,
}

/// What [`Timer::finish`] measured.
pub struct Finished {
    /// 0 when the request failed with no answer (the connection broke).
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub secs: f64,
}

impl Timer {
    /// Starts measuring the request whose head `conn` just read; marks
    /// where its answer starts, to count its bytes.
    pub fn start(conn: &mut Conn, head: &RequestHead) -> Timer {
        conn.mark_answer();
        Timer {
            started: Instant::now(),
            // The head was taken from the connection already.
            bytes_in: conn.bytes_in - head.wire_len as u64,
            bytes_out: conn.bytes_out,
        }
    }

    /// `outcome`: the answer the service wrote, or, when it failed, the
    /// status the error will be answered with (its answer is not written
    /// yet, so no bytes out are counted; None for a broken connection).
    pub fn finish(&self, conn: &Conn, outcome: Result<&Answer, Option<u16>>) -> Finished {
        let (status, bytes_out) = match outcome {
            Ok(answer) => (answer.status, conn.answer_bytes(self.bytes_out)),
            Err(code) => (code.unwrap_or(0), 0),
        };
        Finished {
            status,
            bytes_in: conn.bytes_in - self.bytes_in,
            bytes_out,
            secs: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// The registry's metrics in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
}
