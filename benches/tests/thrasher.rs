//! The load generator against a real cluster: host names, `--size` and
//! `--size-max`, `--read-ratio` (counted by the master's metrics), the
//! summary lines `perf/bench.py` reads.

use std::path::PathBuf;
use std::process::Command;

use testkit::Proc;

/// A binary built beside this test by `cargo test --workspace`.
fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join(name)
}

#[test]
fn big_values_through_a_host_name() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let volumes: Vec<Proc> = (0..3)
        .map(|i| {
            let mut cmd = Command::new(sibling("volume"));
            cmd.args(["--port", "0", "--bind", "127.0.0.1", "--threads", "1"])
                .arg(tmp.path().join(format!("v{i}")));
            Proc::start(&format!("volume{i}"), cmd, &logs)
        })
        .collect();
    let names: Vec<String> = volumes
        .iter()
        .map(|v| format!("localhost:{}", v.addr().port()))
        .collect();
    let admin = testkit::free_port();
    let index = tmp.path().join("index");
    let mut cmd = testkit::proc::mkv_command(sibling("mkv"), &names.join(","), &index);
    cmd.args(["-admin-port", &admin.to_string()]).arg("server");
    let master = Proc::start("mkv", cmd, &logs);
    let out = Command::new(env!("CARGO_BIN_EXE_thrasher"))
        .args(["--master", &format!("localhost:{}", master.addr().port())])
        .args([
            "--count",
            "40",
            "--workers",
            "4",
            "--size",
            "256k",
            "--size-max",
            "1m",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("40 write/read/delete in"), "{text}");
    assert!(
        text.contains("ops/s: ") && text.contains("op latency ms: p50 "),
        "{text}"
    );
    // Four reads per write: 40 + 20 x 4 GETs redirected in all.
    let out = Command::new(env!("CARGO_BIN_EXE_thrasher"))
        .args(["--master", &format!("localhost:{}", master.addr().port())])
        .args(["--count", "20", "--workers", "2", "--read-ratio", "4"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("(4 GETs per PUT)"), "{text}");
    let metrics = testkit::client::request(
        std::net::SocketAddr::from(([127, 0, 0, 1], admin)),
        "GET",
        "/metrics",
        &[],
        b"",
    )
    .text();
    let gets = "mkv_http_requests_total{api=\"mkv\",method=\"GET\",status=\"302\"} 120\n";
    assert!(metrics.contains(gets), "{metrics}");
    let bad = Command::new(env!("CARGO_BIN_EXE_thrasher"))
        .args(["--master", "localhost:1", "--size", "lots"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
