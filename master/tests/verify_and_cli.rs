//! `mkv verify [--repair]` on a cluster with a deleted replica, a damaged
//! file, an orphan and a temporary file; and the command line's messages
//! and exit codes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::{fetch, Backend, Cluster};
use mkv::placement::key2path;
use testkit::client::request;

fn touch_old(path: &Path) {
    let ok = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(path)
        .status()
        .expect("touch");
    assert!(ok.success());
}

/// The files holding `key` (as `volume-index`, path).
fn replicas_of(c: &Cluster, key: &str) -> Vec<(usize, PathBuf)> {
    let name = base64::engine::general_purpose::STANDARD.encode(key);
    c.files()
        .into_iter()
        .filter(|f| f.ends_with(&name))
        .map(|f| {
            let (i, rel) = f.split_once(':').unwrap();
            let i: usize = i.parse().unwrap();
            (i, c.volumes[i].dir.join(rel))
        })
        .collect()
}

fn verify(c: &Cluster, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["verify"];
    args.extend_from_slice(extra);
    let out = c.mkv(&args).output().expect("mkv verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn verify_finds_and_repairs(backend: Backend) {
    let mut c = Cluster::start(backend, 3, &[]);
    let keys: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| (format!("/v/{i}"), vec![b'a' + i as u8; 3000 + i]))
        .collect();
    for (k, v) in &keys {
        assert_eq!(request(c.addr(), "PUT", k, &[], v).status, 201);
    }
    c.kill_master();
    let (code, out) = verify(&c, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("verified 12 keys (36 replicas) and 36 files"),
        "{out}"
    );
    assert!(out.ends_with("clean\n"), "{out}");

    // A deleted replica, a damaged one (same size), an orphan, a temp file.
    let (_, gone) = &replicas_of(&c, "/v/1")[0];
    std::fs::remove_file(gone).unwrap();
    let (damaged_on, damaged) = replicas_of(&c, "/v/2")[1].clone();
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&damaged, &bytes).unwrap();
    let orphan = c.volumes[0]
        .dir
        .join(format!("sv00{}", key2path(b"/orphan")));
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"left behind").unwrap();
    touch_old(&orphan);
    let temp = c.volumes[1].dir.join("sv01/.mkv-tmp-1-2-3");
    if backend == Backend::VolumeUring {
        std::fs::create_dir_all(temp.parent().unwrap()).unwrap();
        std::fs::write(&temp, b"cut off").unwrap();
        touch_old(&temp);
    }

    let (code, out) = verify(&c, &[]);
    assert_eq!(code, 1, "problems left: {out}");
    assert!(out.contains("MISSING /v/1 on "), "{out}");
    let damaged_on = c.volumes[damaged_on].name();
    assert!(
        out.contains(&format!("DAMAGED /v/2 on {damaged_on}")),
        "{out}"
    );
    assert!(out.contains("ORPHAN /orphan on "), "{out}");
    assert!(out.contains("no record (11 bytes"), "{out}");
    if backend == Backend::VolumeUring {
        assert!(out.contains("its bytes do not match the CRC32"), "{out}");
        assert!(
            out.contains("TEMP ") && out.contains(".mkv-tmp-1-2-3"),
            "{out}"
        );
        assert!(out.contains("1 temporary files"), "{out}");
    } else {
        assert!(
            out.contains("md5 "),
            "nginx: the bytes are read here: {out}"
        );
    }
    // A young orphan is left alone.
    let (code, out) = verify(&c, &["--grace", "100h"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("0 orphans (1 younger than --grace left alone)"),
        "{out}"
    );

    let (code, out) = verify(&c, &["--repair"]);
    assert_eq!(code, 3, "all repaired: {out}");
    assert!(out.contains("repaired 2 keys"), "{out}");
    let (code, out) = verify(&c, &[]);
    assert_eq!(code, 0, "a second run is clean: {out}");
    assert!(!orphan.exists() && !temp.exists());
    assert_eq!(
        std::fs::read(&damaged).unwrap(),
        keys[2].1,
        "the damaged copy restored"
    );
    c.start_master();
    for (k, v) in &keys {
        assert_eq!(fetch(c.addr(), k).as_deref(), Some(v.as_slice()), "{k}");
    }
}

on_both_backends!(verify_finds_and_repairs);

fn mkv(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mkv"))
        .args(args)
        .output()
        .expect("mkv");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn command_line_messages_and_exit_codes() {
    let (code, _, err) = mkv(&["-volume", "a:1", "-db", "x", "server"]);
    assert_eq!(
        (code, err.as_str()),
        (2, "mkv: unknown flag -volume (did you mean -volumes?)\n")
    );
    let (code, _, err) = mkv(&["-volumes", "a:1", "server"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("required arguments were not provided") && err.contains("--db <DB>"),
        "{err}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-index");
    let db = missing.to_str().unwrap();
    for tool in ["rebalance", "verify"] {
        let (code, _, err) = mkv(&["-volumes", "a:1", "-db", db, "-replicas", "1", tool]);
        assert_eq!(code, 2, "{tool}: {err}");
        assert!(err.contains("no index there"), "{tool}: {err}");
        assert!(!missing.exists(), "{tool} made an index");
    }
    let (code, out, _) = mkv(&["rebuild", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Usage: mkv rebuild [OPTIONS] --db <DB> --volumes <VOLUMES>"),
        "{out}"
    );
    assert!(!out.contains("--port") && !out.contains("--bind"), "{out}");
    let (_, out, _) = mkv(&["dev", "--help"]);
    assert!(!out.contains("--db") && !out.contains("--volumes"), "{out}");
    assert!(
        out.contains("the three volumes take the next three"),
        "{out}"
    );

    let out = Command::new(common::volume_bin()).output().expect("volume");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("<DIR>"));
}

#[test]
fn a_master_is_not_a_volume() {
    let c = Cluster::start(Backend::VolumeUring, 1, &["-replicas", "1"]);
    let db = c.tmp.path().join("other-index");
    let master = c.addr().to_string();
    let (code, _, err) = mkv(&[
        "-md5sum",
        "false",
        "-volumes",
        &master,
        "-db",
        db.to_str().unwrap(),
        "-replicas",
        "1",
        "-port",
        "0",
        "server",
    ]);
    assert_eq!(code, 2, "{err}");
    let want = format!(
        "mkv: -volumes: {master} is not a volume server: it answered HEAD / with 404 (Server: mkv)"
    );
    assert!(err.starts_with(&want), "{err}");
    assert!(!db.exists(), "no index made");

    // The original's master names no server: refused too. An nginx without
    // autoindex (403) is a volume all the same.
    let go_master = canned(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let (code, _, err) = mkv(&[
        "-volumes",
        &go_master,
        "-db",
        db.to_str().unwrap(),
        "-replicas",
        "1",
        "-port",
        "0",
        "server",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("(Server: none)"), "{err}");
    let nginx =
        canned(b"HTTP/1.1 403 Forbidden\r\nServer: nginx/1.22.1\r\nContent-Length: 0\r\n\r\n");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mkv"));
    cmd.args([
        "-volumes",
        &nginx,
        "-replicas",
        "1",
        "-port",
        "0",
        "-bind",
        "127.0.0.1",
    ])
    .arg("-db")
    .arg(&db)
    .arg("server");
    let started = testkit::Proc::start("mkv-over-nginx", cmd, &c.tmp.path().join("logs"));
    drop(started);
}

/// A server answering every connection's first request with `answer`;
/// its host:port.
fn canned(answer: &'static [u8]) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 1024];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = std::io::Write::write_all(&mut s, answer);
        }
    });
    addr
}

#[test]
fn bind_errors_name_the_port_and_logs_can_be_json() {
    let c = Cluster::start(
        Backend::VolumeUring,
        1,
        &["-replicas", "1", "-v", "--log-format", "json"],
    );
    let taken = c.volumes[0].proc.addr().port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(common::volume_bin())
        .args(["--port", &taken, "--bind", "127.0.0.1"])
        .arg(tmp.path().join("v"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(&format!(":{taken}")),
        "{err}"
    );
    assert!(
        !tmp.path().join("v").exists(),
        "a failed start leaves no folder"
    );

    assert_eq!(request(c.addr(), "GET", "/nothing", &[], b"").status, 404);
    std::thread::sleep(Duration::from_millis(300));
    let logs = c.master.as_ref().unwrap().stderr();
    assert!(!logs.contains('\u{1b}'), "no colour into a file: {logs}");
    let line: serde_json::Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["key"] == "/nothing")
        .unwrap_or_else(|| panic!("no JSON line for the request: {logs}"));
    assert_eq!(line["status"], 404);
    assert_eq!(line["method"], "GET");
    assert!(
        line["ms"].as_str().is_some() && line["level"] == "INFO",
        "{line}"
    );
}

#[test]
fn rebalance_says_once_that_a_volume_is_down() {
    let mut c = Cluster::start(Backend::VolumeUring, 3, &["-replicas", "2"]);
    for i in 0..40 {
        assert_eq!(
            request(c.addr(), "PUT", &format!("/r/{i}"), &[], b"v").status,
            201
        );
    }
    c.kill_master();
    let down = c.volumes[2].name();
    c.volumes[2].proc.kill();
    let (status, out, err) = c.run_tool(&[0, 1], &c.db.clone(), &["rebalance"]);
    assert!(!status.success(), "{out}{err}");
    let fails: Vec<&str> = err.lines().filter(|l| l.contains(" fails (")).collect();
    assert_eq!(fails.len(), 1, "one line for the volume down: {err}");
    assert!(
        fails[0].starts_with(&format!("mkv rebalance: volume {down} fails")),
        "{err}"
    );
    assert!(
        err.contains(&format!("mkv rebalance: volume {down}: ")),
        "{err}"
    );
    assert!(err.contains(" keys not moved"), "{err}");
}
