//! Operating a cluster: metrics (parsed by Python's `prometheus_client`),
//! health and readiness, the status page (rendered in headless Chromium),
//! and `mkv verify --repair`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{fetch, venv_python, Backend, Cluster};
use testkit::client::request;
use testkit::{free_port, Proc};

/// Every sample of a Prometheus text page, by name, as Python's
/// `prometheus_client` parser reads it: `name -> [(labels, value)]`.
type Samples = HashMap<String, Vec<(HashMap<String, String>, f64)>>;

fn scrape(admin: SocketAddr) -> Samples {
    let r = request(admin, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for fam in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in fam.samples:\n\
        \x20       out.setdefault(s.name, []).append([s.labels, s.value])\n\
        print(json.dumps(out))\n";
    let mut child = Command::new(venv_python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = child.wait_with_output().expect("python ran");
    assert!(
        out.status.success(),
        "the parser refused the metrics: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        r.text()
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(s: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = s
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", s.keys().collect::<Vec<_>>()))
        .iter()
        .filter(|(l, _)| {
            labels
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {:?}", s.get(name));
    found[0]
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn admin_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn put(c: &Cluster, key: &str, body: &[u8]) {
    let r = request(c.addr(), "PUT", key, &[], body);
    assert_eq!(r.status, 201, "PUT {key}: {}", r.text());
}

#[test]
#[cfg_attr(
    not(mkv_all_tests),
    ignore = "needs prometheus_client (.ci/run's virtualenv) (MKV_ALL_TESTS=1)"
)]
fn master_metrics_count_a_known_workload() {
    let port = free_port();
    let p = port.to_string();
    let c = Cluster::start(
        Backend::VolumeUring,
        3,
        &["-admin-port", &p, "-census-every", "200ms"],
    );
    for i in 0..5 {
        put(&c, &format!("/m{i}"), &vec![b'x'; 1000 + i]);
    }
    for i in 0..3 {
        assert!(fetch(c.addr(), &format!("/m{i}")).is_some());
    }
    for i in 0..2 {
        assert_eq!(
            request(c.addr(), "GET", &format!("/none{i}"), &[], b"").status,
            404
        );
    }
    assert_eq!(request(c.addr(), "DELETE", "/m4", &[], b"").status, 204);
    let admin = admin_addr(port);
    // The census runs every 200 ms here; the health checks every 2 s.
    wait_until("the census", Duration::from_secs(10), || {
        let s = scrape(admin);
        value(&s, "mkv_index_keys", &[]) == 4.0
    });
    let s = scrape(admin);
    let req = |method: &str, status: &str| {
        value(
            &s,
            "mkv_http_requests_total",
            &[("api", "mkv"), ("method", method), ("status", status)],
        )
    };
    assert_eq!(req("PUT", "201"), 5.0);
    assert_eq!(req("GET", "302"), 3.0);
    assert_eq!(req("GET", "404"), 2.0);
    assert_eq!(req("DELETE", "204"), 1.0);
    let puts = value(
        &s,
        "mkv_http_request_duration_seconds_count",
        &[("method", "PUT")],
    );
    assert_eq!(puts, 5.0);
    let bytes_in = value(&s, "mkv_http_received_bytes_total", &[]);
    assert!(bytes_in >= (5 * 1000) as f64, "{bytes_in}");
    assert_eq!(
        value(&s, "mkv_index_value_bytes", &[]),
        (1000 + 1001 + 1002 + 1003) as f64
    );
    assert!(value(&s, "mkv_index_writes_total", &[]) >= 10.0);
    assert!(value(&s, "mkv_index_sync_duration_seconds_count", &[]) >= 5.0);
    assert!(
        value(&s, "mkv_index_filter_hits_total", &[]) >= 2.0,
        "the two misses"
    );
    for v in &c.volumes {
        assert_eq!(value(&s, "mkv_volume_up", &[("volume", &v.name())]), 1.0);
        assert!(value(&s, "mkv_volume_disk_free_bytes", &[("volume", &v.name())]) > 0.0);
    }
    assert_eq!(request(admin, "GET", "/health", &[], b"").status, 200);
    assert_eq!(request(admin, "GET", "/nothing", &[], b"").status, 404);
    // The API's port still serves keys named like the admin paths.
    assert_eq!(request(c.addr(), "GET", "/metrics", &[], b"").status, 404);
}

#[test]
#[cfg_attr(
    not(mkv_all_tests),
    ignore = "needs prometheus_client (.ci/run's virtualenv) (MKV_ALL_TESTS=1)"
)]
fn volume_metrics_and_readiness() {
    let tmp = tempfile::tempdir().unwrap();
    let admin_port = free_port();
    let start = |min_free: &str| {
        let mut cmd = Command::new(common::volume_bin());
        cmd.args(["--port", "0", "--bind", "127.0.0.1", "--threads", "1"])
            .args([
                "--admin-port",
                &admin_port.to_string(),
                "--ready-min-free",
                min_free,
            ])
            .args(["--scrub-every", "300ms"])
            .arg(tmp.path().join("data"));
        Proc::start("volume", cmd, &tmp.path().join("logs"))
    };
    let mut v = start("1m");
    let admin = admin_addr(admin_port);
    for i in 0..3 {
        let r = request(v.addr(), "PUT", &format!("/a/f{i}"), &[], &[b'v'; 4096]);
        assert_eq!(r.status, 201);
    }
    assert_eq!(request(v.addr(), "GET", "/a/f0", &[], b"").status, 200);
    assert_eq!(request(v.addr(), "DELETE", "/a/f2", &[], b"").status, 204);
    assert_eq!(request(v.addr(), "GET", "/a/f2", &[], b"").status, 404);
    wait_until("a scrub", Duration::from_secs(10), || {
        value(&scrape(admin), "volume_scrub_runs_total", &[]) >= 1.0
    });
    let s = scrape(admin);
    let req = |method: &str, status: &str| {
        value(
            &s,
            "volume_http_requests_total",
            &[("method", method), ("status", status)],
        )
    };
    assert_eq!(
        (req("PUT", "201"), req("GET", "200"), req("GET", "404")),
        (3.0, 1.0, 1.0)
    );
    assert_eq!(req("DELETE", "204"), 1.0);
    assert_eq!(value(&s, "volume_files", &[]), 2.0);
    assert!(value(&s, "volume_sync_duration_seconds_count", &[]) >= 1.0);
    assert!(value(&s, "volume_disk_free_bytes", &[]) > 0.0);
    assert!(value(&s, "volume_inodes_free", &[]) > 0.0);
    assert_eq!(
        value(&s, "volume_scrub_files", &[("result", "verified")]),
        2.0
    );
    assert_eq!(
        value(&s, "volume_scrub_files", &[("result", "mismatched")]),
        0.0
    );
    let ready = request(admin, "GET", "/ready", &[], b"");
    assert_eq!((ready.status, ready.text()), (200, "ready\n".to_string()));
    assert_eq!(request(admin, "GET", "/health", &[], b"").status, 200);
    v.kill();
    // More free space wanted than any disk has: alive, not ready.
    let v = start("1000000t");
    let ready = request(admin, "GET", "/ready", &[], b"");
    assert_eq!(ready.status, 503);
    assert!(
        ready.text().contains("under --ready-min-free"),
        "{}",
        ready.text()
    );
    assert_eq!(request(admin, "GET", "/health", &[], b"").status, 200);
    drop(v);
}

#[test]
#[cfg_attr(
    not(mkv_all_tests),
    ignore = "needs prometheus_client (.ci/run's virtualenv) (MKV_ALL_TESTS=1)"
)]
fn master_readiness_follows_the_volumes() {
    let port = free_port();
    let p = port.to_string();
    let c = Cluster::start(
        Backend::VolumeUring,
        3,
        &["-admin-port", &p, "-replicas", "2"],
    );
    let admin = admin_addr(port);
    let ready = || request(admin, "GET", "/ready", &[], b"");
    wait_until("ready", Duration::from_secs(10), || ready().status == 200);
    c.volumes[0].proc.signal_group("STOP");
    // Two of three still hold two replicas.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(ready().status, 200, "{}", ready().text());
    c.volumes[1].proc.signal_group("STOP");
    wait_until("not ready", Duration::from_secs(15), || {
        ready().status == 503
    });
    let why = ready().text();
    assert!(
        why.contains("1 of 3 volumes answer, 2 replicas need 2"),
        "{why}"
    );
    let s = scrape(admin);
    assert_eq!(
        value(&s, "mkv_volume_up", &[("volume", &c.volumes[0].name())]),
        0.0
    );
    assert_eq!(
        value(&s, "mkv_volume_up", &[("volume", &c.volumes[2].name())]),
        1.0
    );
    assert_eq!(request(admin, "GET", "/health", &[], b"").status, 200);
    c.volumes[0].proc.signal_group("CONT");
    c.volumes[1].proc.signal_group("CONT");
    wait_until("ready again", Duration::from_secs(15), || {
        ready().status == 200
    });
}

#[test]
#[cfg_attr(not(mkv_all_tests), ignore = "needs Chromium (MKV_ALL_TESTS=1)")]
fn status_page_in_headless_chromium() {
    let port = free_port();
    let p = port.to_string();
    let c = Cluster::start(
        Backend::VolumeUring,
        3,
        &["-admin-port", &p, "-census-every", "200ms"],
    );
    for i in 0..7 {
        put(&c, &format!("/page{i}"), b"status page value");
    }
    c.volumes[2].proc.signal_group("STOP");
    let admin = admin_addr(port);
    wait_until("the volume seen down", Duration::from_secs(15), || {
        request(admin, "GET", "/", &[], b"")
            .text()
            .contains("class=\"down\"")
    });
    let html = request(admin, "GET", "/", &[], b"");
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = html.text();
    for external in ["src=\"http", "href=\"http", "<script", "@import", "url("] {
        assert!(!page.contains(external), "the page loads {external}");
    }
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("status.png");
    let url = format!("http://{admin}/");
    let dom = chromium(dir.path(), &["--dump-dom", &url]);
    chromium(
        dir.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
            &url,
        ],
    );
    // What a person reads on it, tags taken out.
    let text = visible_text(&dom);
    assert!(text.contains("mkv cluster status"), "{text}");
    assert!(
        text.contains("Not ready 2 of 3 volumes answer, 3 replicas need 3"),
        "{text}"
    );
    assert!(text.contains("2 of 3 volumes up"), "{text}");
    assert!(text.contains("7 keys"), "{text}");
    for (i, v) in c.volumes.iter().enumerate() {
        // The row: after the last mention (the ready card names the one down).
        let row = text.rsplit(&v.name()).next().unwrap_or("");
        let state = if i == 2 { "down" } else { "up" };
        assert!(
            row.trim_start().starts_with(state),
            "{} should be {state}: {text}",
            v.name()
        );
        if i < 2 {
            // Files on it (the volume says) and keys on it (the index says).
            let cells: Vec<&str> = row.split(" GiB ").nth(2).unwrap_or("").split(' ').collect();
            assert_eq!(&cells[..2], ["7", "7"], "{row}");
        }
    }
    assert!(text.contains("volume-uring"), "{text}");
    assert!(
        text.contains("no answer within 1s"),
        "why the volume is down: {text}"
    );

    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    c.volumes[2].proc.signal_group("CONT");
}

/// Runs Debian's Chromium headless on `args`; its stdout.
fn chromium(profile: &Path, args: &[&str]) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("chromium").display()
        ))
        .args(args)
        .output()
        .expect("chromium (Debian's package; .ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of a document's body, tags replaced by spaces, runs of spaces
/// made one.
fn visible_text(dom: &str) -> String {
    let body = dom.split("<body>").nth(1).unwrap_or(dom);
    let mut out = String::new();
    let mut in_tag = false;
    for ch in body.chars() {
        match ch {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
