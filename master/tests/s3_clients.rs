//! docs/s3.md against the real S3 clients: the Python suites in tests/s3
//! (boto3, the aws CLI, pyarrow, s3fs, rclone, the original's s3test
//! cases, signatures) run against a real `mkv` over volume-uring volumes
//! and again over stock nginx volumes. The clients come from the
//! virtualenv `.ci/run` makes (`.venv`, or `MKV_PYTHON`) and Debian's rclone.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Backend, Cluster};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The virtualenv's python, with boto3, awscli, pyarrow and s3fs.
fn python() -> PathBuf {
    let path = std::env::var_os("MKV_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: .ci/run makes the virtualenv the S3 tests use",
        path.display()
    );
    path
}

/// Runs `python -m unittest SUITE` in tests/s3 against the cluster's master.
fn run_suite(c: &Cluster, suite: &str, env: &[(&str, String)]) {
    let py = python();
    let bin = py.parent().expect("venv bin");
    let dirs: Vec<String> = c.volumes.iter().map(|v| v.dir.display().to_string()).collect();
    let out = Command::new(&py)
        .args(["-m", "unittest", "-v", suite])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3"))
        .env("MKV_ENDPOINT", format!("http://{}", c.addr()))
        .env("MKV_VOLUME_DIRS", dirs.join(":"))
        .env("MKV_AWS", bin.join("aws"))
        .env("MKV_BACKEND", format!("{:?}", c.backend))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run python");
    let master = c.master.as_ref().map(|m| m.logs()).unwrap_or_default();
    assert!(
        out.status.success(),
        "{suite} failed:\n{}\n{}\n{master}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn boto3_operations(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    run_suite(&c, "test_boto3", &[]);
}

fn other_clients(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    run_suite(&c, "test_tools", &[]);
}

fn signatures(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("credentials");
    std::fs::write(&creds, "# for the tests\nuser password\n").unwrap();
    let port = testkit::free_port();
    let args = [
        "--s3-credentials".to_string(),
        creds.display().to_string(),
        "--s3-port".to_string(),
        port.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let c = Cluster::start(backend, 3, &args);
    let s3_port = format!("http://127.0.0.1:{port}");
    run_suite(&c, "test_auth", &[("MKV_S3_ENDPOINT", s3_port)]);
}

on_both_backends!(boto3_operations, other_clients, signatures);
