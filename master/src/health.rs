//! What the master knows of its cluster's health, kept fresh by one thread:
//! every [`CHECK_EVERY`], each volume gets a `HEAD /` (volume-uring's answer
//! carries its disk space and file count); every `--census-every` (a
//! minute), the index is counted (keys, unlinked keys, bytes, keys per volume). The
//! readiness check, the status page and the metrics read it from here.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use http1::admin::{probe, Probe};
use http1::metrics::RequestTotals;
use http1::Shutdown;

use crate::index::Index;
use crate::meta;
use crate::metrics::{VolumeLabel, METRICS};
use crate::record::Record;

pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Request counts are kept this long, for rates.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// What kind of server answered at a volume's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    VolumeUring,
    /// nginx, or another server that lists folders as JSON.
    Nginx,
}

/// One volume as last checked.
#[derive(Clone, Debug, Default)]
pub struct VolumeState {
    pub name: String,
    pub up: bool,
    pub kind: Option<Kind>,
    /// Why it is down.
    pub error: Option<String>,
    pub latency: Option<Duration>,
    pub disk_total: Option<u64>,
    pub disk_free: Option<u64>,
    pub files: Option<u64>,
    /// When it last changed from up to down or back.
    pub since: Option<SystemTime>,
    pub checked: bool,
}

/// The index as last counted.
#[derive(Clone, Debug, Default)]
pub struct Census {
    pub keys: u64,
    pub unlinked: u64,
    pub bytes: u64,
    /// Live keys with a replica on each volume.
    pub per_volume: HashMap<String, u64>,
    pub at: Option<SystemTime>,
    pub took: Duration,
}

pub struct Health {
    pub started: SystemTime,
    volumes: Mutex<Vec<VolumeState>>,
    census: Mutex<Census>,
    /// Request totals sampled at each check, newest last.
    samples: Mutex<VecDeque<(Instant, RequestTotals)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Health {
    pub fn new(volumes: &[String]) -> Health {
        let states = volumes
            .iter()
            .map(|v| VolumeState {
                name: v.clone(),
                ..VolumeState::default()
            })
            .collect();
        Health {
            started: SystemTime::now(),
            volumes: Mutex::new(states),
            census: Mutex::new(Census::default()),
            samples: Mutex::new(VecDeque::new()),
        }
    }

    pub fn volumes(&self) -> Vec<VolumeState> {
        lock(&self.volumes).clone()
    }

    pub fn census(&self) -> Census {
        lock(&self.census).clone()
    }

    /// How long the last count of the index took.
    fn census_took(&self) -> Duration {
        lock(&self.census).took
    }

    /// Volumes that answered their last check.
    pub fn volumes_up(&self) -> usize {
        lock(&self.volumes).iter().filter(|v| v.up).count()
    }

    /// Requests per second over the last minute: all, 4xx, 5xx; bytes in
    /// and out per second.
    pub fn rates(&self) -> Option<[f64; 5]> {
        let samples = lock(&self.samples);
        let ((t0, a), (t1, b)) = (samples.front()?, samples.back()?);
        let secs = t1.duration_since(*t0).as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        let per = |x: u64, y: u64| y.saturating_sub(x) as f64 / secs;
        Some([
            per(a.all, b.all),
            per(a.client_errors, b.client_errors),
            per(a.server_errors, b.server_errors),
            per(a.bytes_in, b.bytes_in),
            per(a.bytes_out, b.bytes_out),
        ])
    }

    fn sample(&self) {
        let now = Instant::now();
        let mut samples = lock(&self.samples);
        samples.push_back((now, METRICS.http.totals()));
        while samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            samples.pop_front();
        }
    }

    /// Checks every volume at once; each takes at most `timeout`.
    fn check_all(&self, timeout: Duration) {
        let names: Vec<String> = lock(&self.volumes).iter().map(|v| v.name.clone()).collect();
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = names
                .iter()
                .map(|name| s.spawn(move || check(name, timeout)))
                .collect();
            handles.into_iter().map(|h| h.join().ok()).collect()
        });
        let mut states = lock(&self.volumes);
        for (state, result) in states.iter_mut().zip(results) {
            let failed = || Err(CheckFailed::NoAnswer("the check failed".into()));
            let result = result.unwrap_or_else(failed);
            update(state, result);
        }
    }

    fn count(&self, index: &Index) {
        match census(index) {
            Ok(c) => {
                METRICS.index_keys.set((c.keys + c.unlinked) as i64);
                METRICS.index_bytes.set(c.bytes as i64);
                *lock(&self.census) = c;
            }
            Err(e) => tracing::warn!(error = %e, "counting the index failed"),
        }
    }
}

/// A volume's answer to `HEAD /`: what it is and what it says of itself.
pub struct Checked {
    pub kind: Kind,
    pub latency: Duration,
    pub probe: Probe,
}

/// Why a check failed: no answer, or an answer that is not a volume's.
#[derive(Debug)]
pub enum CheckFailed {
    NoAnswer(String),
    NotAVolume(String),
}

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckFailed::NoAnswer(why) | CheckFailed::NotAVolume(why) => f.write_str(why),
        }
    }
}

/// `HEAD /` on `host`: a volume answers 200 with a JSON listing's head, or
/// says it is nginx or volume-uring. Anything else that answers is not a
/// volume (a master: ours says `Server: mkv`, the original none).
pub fn check(host: &str, timeout: Duration) -> Result<Checked, CheckFailed> {
    let started = Instant::now();
    let probe = probe(host, "/", timeout).map_err(|e| {
        CheckFailed::NoAnswer(match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("no answer within {timeout:?}")
            }
            _ => e.to_string(),
        })
    })?;
    let latency = started.elapsed();
    let server = probe.header("server").unwrap_or("").to_string();
    let json = probe
        .header("content-type")
        .is_some_and(|t| t.contains("json"));
    // An nginx without autoindex answers 403 here: still a volume (rebuild
    // and verify cannot list it, but PUTs and GETs work).
    let uring = crate::client::reply::is_volume_uring(server.as_bytes());
    let volume_server = uring || server.starts_with("nginx");
    if !(volume_server || probe.status == 200 && json) {
        let server = if server.is_empty() {
            "none".into()
        } else {
            server
        };
        return Err(CheckFailed::NotAVolume(format!(
            "not a volume server: it answered HEAD / with {} (Server: {server}), where a volume lists its folder as JSON",
            probe.status
        )));
    }
    let kind = if uring {
        Kind::VolumeUring
    } else {
        Kind::Nginx
    };
    Ok(Checked {
        kind,
        latency,
        probe,
    })
}

fn update(state: &mut VolumeState, result: Result<Checked, CheckFailed>) {
    let was_up = state.up;
    let label = VolumeLabel {
        volume: state.name.clone(),
    };
    let num = |p: &Probe, name: &str| p.header(name).and_then(|v| v.trim().parse::<u64>().ok());
    match result {
        Ok(c) => {
            state.up = true;
            state.error = None;
            state.kind = Some(c.kind);
            state.latency = Some(c.latency);
            state.disk_total = num(&c.probe, "x-volume-disk-total");
            state.disk_free = num(&c.probe, "x-volume-disk-free");
            state.files = num(&c.probe, "x-volume-files");
            METRICS
                .volume_check_seconds
                .get_or_create(&label)
                .observe(c.latency.as_secs_f64());
            if let (Some(t), Some(f)) = (state.disk_total, state.disk_free) {
                METRICS
                    .volume_disk_total
                    .get_or_create(&label)
                    .set(t as i64);
                METRICS.volume_disk_free.get_or_create(&label).set(f as i64);
            }
        }
        Err(e) => {
            state.up = false;
            state.latency = None;
            // What it said of itself may be stale now.
            (state.disk_total, state.disk_free, state.files) = (None, None, None);
            state.error = Some(e.to_string());
        }
    }
    METRICS
        .volume_up
        .get_or_create(&label)
        .set(i64::from(state.up));
    if was_up != state.up || !state.checked {
        state.since = Some(SystemTime::now());
        if state.checked || !state.up {
            match &state.error {
                None => tracing::info!(volume = %state.name, "volume is up"),
                Some(e) => tracing::warn!(volume = %state.name, error = %e, "volume is down"),
            }
        }
    }
    state.checked = true;
}

/// Counts the index: one pass over the records and the object metadata.
pub fn census(index: &Index) -> Result<Census, crate::index::IndexError> {
    let started = Instant::now();
    let mut c = Census::default();
    index.scan(b"/", b"", |_, v| {
        if Record::is_deleted_raw(v) {
            c.unlinked += 1;
            return true;
        }
        c.keys += 1;
        if let Ok(rec) = Record::decode(v) {
            for replica in rec.volumes {
                // `host:port/sv07`: counted for the volume server.
                let host = replica.split('/').next().unwrap_or_default();
                *c.per_volume.entry(host.to_string()).or_default() += 1;
            }
        }
        true
    })?;
    index.scan(&meta::object_key(b"/"), b"", |_, v| {
        c.bytes += meta::Listed::decode(v).map_or(0, |m| m.size);
        true
    })?;
    c.at = Some(SystemTime::now());
    c.took = started.elapsed();
    Ok(c)
}

/// Starts the thread that checks the volumes (each within `timeout`) and
/// counts `index` every `census_every` (or ten times as long as counting
/// took, if that is longer), until `shutdown`.
pub fn spawn(
    health: Arc<Health>,
    index: Arc<Index>,
    shutdown: Arc<Shutdown>,
    (timeout, census_every): (Duration, Duration),
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("health".into())
        .spawn(move || {
            let mut last_census: Option<Instant> = None;
            while !shutdown.is_triggered() {
                let tick = Instant::now();
                health.sample();
                index.probe();
                health.check_all(timeout);
                // A big index is counted less often: at most a tenth of the
                // time goes to counting.
                let every = census_every.max(health.census_took() * 10);
                if last_census.is_none_or(|t| t.elapsed() >= every) {
                    health.count(&index);
                    last_census = Some(Instant::now());
                }
                let rest = CHECK_EVERY.saturating_sub(tick.elapsed());
                std::thread::sleep(rest);
            }
        })?;
    Ok(())
}
