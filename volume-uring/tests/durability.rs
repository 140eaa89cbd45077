//! What happens to data (docs/crash-safety.md, "Volumes"): big values, many
//! clients at once, uploads cut off, shutdowns mid-upload, a full disk, and
//! scrub finding rot.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use common::{pattern, Driver, Volume};
use md5::{Digest, Md5};
use testkit::client::{request, Client};
use testkit::reference;

fn one_gib_round_trip(driver: Driver) {
    let v = Volume::start(driver, &[]);
    const SIZE: usize = 1 << 30;
    let piece = pattern(42, 1 << 20);
    let mut c = Client::connect(v.addr());
    c.send(
        format!("PUT /big/value HTTP/1.1\r\nHost: x\r\nContent-Length: {SIZE}\r\n\r\n").as_bytes(),
    );
    let (mut sent_md5, mut crc) = (Md5::new(), reference::Crc::new());
    for i in 0..SIZE / piece.len() {
        let mut p = piece.clone();
        p[..8].copy_from_slice(&(i as u64).to_le_bytes());
        sent_md5.update(&p);
        crc.update(&p);
        c.stream.write_all(&p).unwrap();
    }
    let r = c.read_response(false);
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("x-crc32"),
        Some(format!("{:08x}", crc.finalize()).as_str())
    );
    assert_eq!(
        std::fs::metadata(v.path("big/value")).unwrap().len(),
        SIZE as u64
    );

    // Stream the GET back without holding it in memory.
    c.send(b"GET /big/value HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {SIZE}\r\n")),
        "{head}"
    );
    let mut got_md5 = Md5::new();
    let mut left = SIZE;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = c.stream.read(&mut buf[..left.min(1 << 20)]).unwrap();
        assert!(n > 0, "closed with {left} bytes to go");
        got_md5.update(&buf[..n]);
        left -= n;
    }
    assert_eq!(
        got_md5.finalize(),
        sent_md5.finalize(),
        "bytes came back changed"
    );
    // A range deep inside the value, on the same connection.
    let start = 512 * (1 << 20) + 5;
    let r = c.request(
        "GET",
        "/big/value",
        &[("Range", &format!("bytes={start}-{}", start + 99))],
        b"",
    );
    assert_eq!(r.status, 206);
    let mut expected = piece.clone();
    expected[..8].copy_from_slice(&512u64.to_le_bytes());
    assert_eq!(r.body, &expected[5..105]);
}

/// Values past 8 MiB are written partly with O_DIRECT: sizes that are not
/// whole blocks, chunked bodies with odd chunk sizes and trailers, and a
/// smaller overwrite all come back byte for byte, with the right CRC and md5.
fn large_values_with_odd_sizes(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let mut c = Client::connect(v.addr());
    let sizes = [
        (8 << 20) + 3 * (512 << 10) + 1234,
        (9 << 20) + 4096,
        (8 << 20) + 100,
    ];
    for (i, &size) in sizes.iter().enumerate() {
        let body = pattern(i as u64 + 7, size);
        let mut crc = reference::Crc::new();
        crc.update(&body);
        let want_crc = format!("{:08x}", crc.finalize());
        // The same path each time: the last two replace the first.
        let path = "/sv01/ab/cd/bGFyZ2U=";
        if i == 1 {
            let md5: String = Md5::digest(&body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            c.send(
                format!("PUT {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .as_bytes(),
            );
            for piece in body.chunks(300_007) {
                c.send(format!("{:x}\r\n", piece.len()).as_bytes());
                c.send(piece);
                c.send(b"\r\n");
            }
            c.send(format!("0\r\nX-Mkv-Crc32: {want_crc}\r\nX-Mkv-Md5: {md5}\r\n\r\n").as_bytes());
            let r = c.read_response(false);
            assert_eq!(
                (r.status, r.header("x-crc32")),
                (204, Some(want_crc.as_str()))
            );
            let listing = request(v.addr(), "GET", "/sv01/?recursive", &[], b"").text();
            assert!(listing.contains(&format!("\"md5\":\"{md5}\"")), "{listing}");
        } else {
            let r = c.request("PUT", path, &[], &body);
            assert_eq!(r.status, if i == 0 { 201 } else { 204 });
            assert_eq!(r.header("x-crc32"), Some(want_crc.as_str()));
        }
        assert_eq!(
            std::fs::read(v.path(&path[1..])).unwrap(),
            body,
            "size {size}"
        );
        let r = c.request("GET", path, &[], b"");
        assert_eq!((r.status, r.body.len()), (200, size));
        assert!(r.body == body, "GET of size {size} came back changed");
        assert_eq!(r.header("x-crc32"), Some(want_crc.as_str()));
    }
}

fn concurrent_clients(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let addr = v.addr();
    let workers: Vec<_> = (0..16)
        .map(|w| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in 0..40 {
                    let path = format!("/w{w}/{:02x}/key{i}", i % 4);
                    let body = pattern((w * 1000 + i) as u64, 1000 + i * 97);
                    assert_eq!(c.request("PUT", &path, &[], &body).status, 201);
                    let r = c.request("GET", &path, &[], b"");
                    assert_eq!((r.status, r.body == body), (200, true), "{path}");
                    // All workers fight over one shared key too.
                    let shared = c.request("PUT", "/shared/key", &[], &body);
                    assert!(shared.status == 201 || shared.status == 204, "{shared:?}");
                    let r = c.request("GET", "/shared/key", &[], b"");
                    assert_eq!(r.status, 200);
                    let len: usize = r.header("content-length").unwrap().parse().unwrap();
                    assert_eq!(r.body.len(), len, "a reader saw a partial shared value");
                    if i % 2 == 0 {
                        assert_eq!(c.request("DELETE", &path, &[], b"").status, 204);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker failed");
    }
    let files = v.all_files();
    assert_eq!(files.len(), 16 * 20 + 1, "{files:?}");
    assert!(files.iter().all(|f| !f.contains(".mkv-tmp-")));
}

fn cut_off_upload_leaves_nothing(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let a = v.addr();
    assert_eq!(request(a, "PUT", "/keep", &[], b"old value").status, 201);
    for (path, framing) in [
        ("/new", "Content-Length: 1048576"),
        ("/keep", "Content-Length: 1048576"),
        ("/chunked", "Transfer-Encoding: chunked"),
    ] {
        let mut c = Client::connect(a);
        c.send(format!("PUT {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n").as_bytes());
        if framing.contains("chunked") {
            c.send(b"80000\r\n");
        }
        c.send(&vec![b'x'; 300_000]);
        std::thread::sleep(Duration::from_millis(200));
        drop(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(request(a, "GET", "/new", &[], b"").status, 404);
    assert_eq!(request(a, "GET", "/chunked", &[], b"").status, 404);
    assert_eq!(request(a, "GET", "/keep", &[], b"").body, b"old value");
    assert_eq!(v.all_files(), ["keep"], "temporary files left behind");
}

fn sigterm_lets_uploads_finish(driver: Driver) {
    let mut v = Volume::start(driver, &[]);
    let mut c = Client::connect(v.addr());
    c.send(b"PUT /during HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello");
    std::thread::sleep(Duration::from_millis(200));
    v.proc.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused once the listeners are shut.
    assert!(std::net::TcpStream::connect(v.addr()).is_err());
    c.send(b"world");
    let r = c.read_response(false);
    assert_eq!((r.status, r.header("connection")), (201, Some("close")));
    assert!(v.proc.wait_exit(Duration::from_secs(10)).success());
    assert_eq!(std::fs::read(v.path("during")).unwrap(), b"helloworld");
}

fn sigterm_grace_removes_unfinished_uploads(driver: Driver) {
    let mut v = Volume::start(driver, &["--shutdown-grace", "1s"]);
    let mut idle = Client::connect(v.addr());
    assert_eq!(idle.request("PUT", "/done", &[], b"x").status, 201);
    let mut c = Client::connect(v.addr());
    c.send(b"PUT /never HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhello");
    std::thread::sleep(Duration::from_millis(200));
    v.proc.signal("INT");
    let start = std::time::Instant::now();
    assert!(v.proc.wait_exit(Duration::from_secs(10)).success());
    assert!(start.elapsed() < Duration::from_secs(5));
    let mut files = Vec::new();
    for e in std::fs::read_dir(&v.dir).unwrap() {
        files.push(e.unwrap().file_name().into_string().unwrap());
    }
    assert_eq!(files, ["done"], "the cut-off upload left something behind");
}

fn full_disk_is_507(driver: Driver) {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let _unmount = testkit::mount::Tmpfs::mount(&mnt, "12m");
    let v = Volume::start_at(tmp, mnt.clone(), driver, &[]);
    // Known length: refused before a byte is read.
    let mut c = Client::connect(v.addr());
    c.send(b"PUT /too/big HTTP/1.1\r\nHost: x\r\nContent-Length: 16777216\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(c.read_response(false).status, 507);
    // Unknown length: fails when the disk fills (past 8 MiB, in the part
    // written with O_DIRECT), and cleans up.
    let mut c = Client::connect(v.addr());
    c.send(b"PUT /also/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let piece = vec![b'z'; 1 << 20];
    for _ in 0..16 {
        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(&piece);
        chunk.extend_from_slice(b"\r\n");
        if c.stream.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = c.stream.write_all(b"0\r\n\r\n");
    assert_eq!(c.read_response(false).status, 507);
    assert_eq!(request(v.addr(), "PUT", "/small", &[], b"fits").status, 201);
    assert_eq!(
        v.all_files(),
        ["small"],
        "the failed uploads left files behind"
    );
}

fn scrub_finds_corruption(driver: Driver) {
    let v = Volume::start(driver, &[]);
    for (path, body) in [
        ("/sv00/aa/bb/a2V5MQ==", "first value"),
        ("/sv00/cc/dd/a2V5Mg==", "second value"),
    ] {
        assert_eq!(
            request(v.addr(), "PUT", path, &[], body.as_bytes()).status,
            201
        );
    }
    std::fs::write(v.path("from-nginx"), b"no crc here").unwrap();
    let scrub = |dir: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_volume"))
            .arg("scrub")
            .arg(dir)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = scrub(&v.dir);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("scrubbed 3 files (34 bytes): 2 verified, 1 without a CRC, 0 mismatched"),
        "{text}"
    );
    // Rot one byte in place, keeping the file's xattr.
    let rotten = v.path("sv00/cc/dd/a2V5Mg==");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&rotten)
        .unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(3)).unwrap();
    f.write_all(b"X").unwrap();
    drop(f);
    let (code, text) = scrub(&v.dir);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("MISMATCH {}", rotten.display())),
        "{text}"
    );
    assert!(
        text.contains("1 verified, 1 without a CRC, 1 mismatched"),
        "{text}"
    );
}

/// Temporary files of uploads a crash cut off: scrub reports them and
/// fails; a volume removes them when it starts.
fn cut_off_temp_files_removed_at_start(driver: Driver) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let folder = dir.join("sv00/aa/bb");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(".mkv-tmp-1-2-3"), b"cut off").unwrap();
    std::fs::write(folder.join("a2V5"), b"kept").unwrap();
    let scrub = || {
        let out = Command::new(env!("CARGO_BIN_EXE_volume"))
            .arg("scrub")
            .arg(&dir)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = scrub();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("PARTIAL") && text.contains("1 partial uploads"),
        "{text}"
    );
    let v = Volume::start_at(tmp, dir.clone(), driver, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while folder.join(".mkv-tmp-1-2-3").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(v.all_files(), ["sv00/aa/bb/a2V5"]);
    let (code, text) = scrub();
    assert_eq!(code, Some(0), "{text}");
}

on_both_drivers!(
    cut_off_temp_files_removed_at_start,
    one_gib_round_trip,
    large_values_with_odd_sizes,
    concurrent_clients,
    cut_off_upload_leaves_nothing,
    sigterm_lets_uploads_finish,
    sigterm_grace_removes_unfinished_uploads,
    scrub_finds_corruption,
);

mod root {
    use super::*;
    on_both_drivers!(needs "needs root for a tmpfs (MKV_ALL_TESTS=1)": full_disk_is_507);
}
