//! docs/s3.md against the real S3 clients: the Python suites in tests/s3
//! (boto3, the aws CLI, pyarrow, s3fs, rclone, the original's s3test
//! cases, signatures) run against a real `mkv` over volume-uring volumes
//! and again over stock nginx volumes. The clients come from the
//! virtualenv `.ci/run` makes (`.venv`, or `MKV_PYTHON`) and Debian's rclone.
//! The `restart` tests need only our binaries: a master killed under a
//! multipart upload and under overlapping writers.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{fetch, Backend, Cluster};
use testkit::client::{request, Client};

/// Runs `python -m unittest SUITE` in tests/s3 against the cluster's master.
fn run_suite(c: &Cluster, suite: &str, env: &[(&str, String)]) {
    let py = common::venv_python();
    let bin = py.parent().expect("venv bin");
    let dirs: Vec<String> = c
        .volumes
        .iter()
        .map(|v| v.dir.display().to_string())
        .collect();
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
    // unittest reports to stderr; a suite that found no test passes too.
    let report = String::from_utf8_lossy(&out.stderr);
    let ran = report.lines().find(|l| l.starts_with("Ran ")).unwrap_or("");
    eprintln!("{suite}: {ran}");
    assert!(!ran.is_empty() && ran != "Ran 0 tests", "{suite}: {report}");
}

fn boto3_operations(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    run_suite(&c, "test_boto3", &[]);
}

fn semantics(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    run_suite(&c, "test_semantics", &[]);
}

fn keys(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    run_suite(&c, "test_keys", &[]);
}

fn post_object(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    run_suite(&c, "test_post", &[]);
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

/// An upload outlives its master: parts sent before a SIGKILL and after the
/// restart complete into one whole object, and no part is left behind.
fn multipart_survives_a_master_restart(backend: Backend) {
    let mut c = Cluster::start(backend, 3, &[]);
    let part = |n: u8| -> Vec<u8> { (0..5 << 20).map(|i: u32| (i % 251) as u8 ^ n).collect() };
    let created = request(
        c.addr(),
        "PUT",
        "/restart",
        &[("x-amz-acl", "private")],
        b"",
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let start = request(c.addr(), "POST", "/restart/big?uploads", &[], b"");
    assert_eq!(start.status, 200, "{}", start.text());
    let id = between(&start.text(), "<UploadId>", "</UploadId>").to_string();
    let upload = |c: &Cluster, n: u8| -> String {
        let target = format!("/restart/big?partNumber={n}&uploadId={id}");
        let r = request(c.addr(), "PUT", &target, &[], &part(n));
        assert_eq!(r.status, 200, "part {n}: {}", r.text());
        r.header("etag").expect("part etag").to_string()
    };
    let mut etags = vec![upload(&c, 1), upload(&c, 2)];

    c.kill_master();
    c.start_master();
    etags.push(upload(&c, 3));
    let listed = request(
        c.addr(),
        "GET",
        &format!("/restart/big?uploadId={id}"),
        &[],
        b"",
    );
    assert_eq!(
        listed.text().matches("<Part>").count(),
        3,
        "{}",
        listed.text()
    );

    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, etag) in etags.iter().enumerate() {
        xml += &format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
            i + 1
        );
    }
    xml += "</CompleteMultipartUpload>";
    let done = request(
        c.addr(),
        "POST",
        &format!("/restart/big?uploadId={id}"),
        &[],
        xml.as_bytes(),
    );
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(
        done.text().contains("-3&quot;") || done.text().contains("-3\""),
        "{}",
        done.text()
    );

    let whole: Vec<u8> = (1..=3).flat_map(part).collect();
    let got = request(
        c.addr(),
        "GET",
        "/restart/big",
        &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
        b"",
    );
    assert_eq!(got.status, 200);
    assert!(got.body == whole, "object differs from its parts");
    assert_eq!(fetch(c.addr(), "/restart/big").as_deref(), Some(&whole[..]));
    let files = c.files();
    assert_eq!(
        files.len(),
        3,
        "one file per replica, no part left: {files:?}"
    );
    assert!(files.iter().all(|f| !f.contains(".mkv-parts")), "{files:?}");
}

/// Two PutObjects of one key overlap (the second waits for the first) and
/// the master is killed with both bodies half sent: after the restart the
/// key holds its old value whole, no replica keeps a byte of either write
/// once the journal has settled, and a rebuild from the volumes agrees.
fn overlapping_writers_survive_a_master_kill(backend: Backend) {
    let mut c = Cluster::start(backend, 3, &[]);
    let s3 = [("x-amz-content-sha256", "UNSIGNED-PAYLOAD")];
    assert_eq!(request(c.addr(), "PUT", "/crash", &s3, b"").status, 200);
    let old = b"the old value".to_vec();
    assert_eq!(request(c.addr(), "PUT", "/crash/k", &s3, &old).status, 200);
    let size = 8 << 20;
    let mut writers: Vec<Client> = (0..2u8)
        .map(|w| {
            let mut client = Client::connect(c.addr());
            let head = format!(
                "PUT /crash/k HTTP/1.1\r\nHost: x\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nContent-Length: {size}\r\n\r\n"
            );
            client.send(head.as_bytes());
            // The first is being read; the second waits for the key, so
            // only what the socket buffers of it is sent.
            let sent = if w == 0 { size / 2 } else { 64 << 10 };
            client.send(&vec![b'a' + w; sent]);
            client
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    c.kill_master();
    writers.clear();
    c.start_master();

    let got = request(c.addr(), "GET", "/crash/k", &s3, b"");
    assert_eq!((got.status, &got.body), (200, &old));
    let only_the_old = |c: &Cluster| {
        let files = c.files();
        files.len() == 3 && files.iter().all(|f| !f.contains(".mkv-parts"))
    };
    let settled = testkit::eventually(Duration::from_secs(30), || only_the_old(&c));
    assert!(settled, "left behind: {:?}", c.files());

    c.kill_master();
    let rebuilt = c.tmp.path().join("rebuilt");
    let (status, out, err) = c.run_tool(&[0, 1, 2], &rebuilt, &["rebuild"]);
    assert!(status.success(), "{out}{err}");
    c.start_master_on(&[0, 1, 2], &rebuilt);
    assert_eq!(fetch(c.addr(), "/crash/k").as_deref(), Some(&old[..]));
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).expect(open) + open.len();
    let end = text[start..].find(close).expect(close);
    &text[start..start + end]
}

on_both_backends!(
    needs "needs the Python S3 clients (.ci/run's virtualenv) and rclone (MKV_ALL_TESTS=1)":
    boto3_operations,
    semantics,
    keys,
    post_object,
    other_clients,
    signatures,
);

mod restart {
    use super::*;
    on_both_backends!(
        multipart_survives_a_master_restart,
        overlapping_writers_survive_a_master_kill,
    );
}
