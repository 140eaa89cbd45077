//! The recursive listing, walked by many threads: every file exactly once
//! across many pieces, and a reader that leaves stops the walk without
//! harm to the volume.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::Duration;

use common::{Driver, Volume};
use testkit::client::request;

/// 40 folders of 100 files each, two levels down (written straight to disk).
fn many_files(v: &Volume) -> HashSet<String> {
    let mut names = HashSet::new();
    for d in 0..40 {
        let dir = v.path(&format!("sv{:02x}/{:02x}/{:02x}", d % 4, d, d * 3 % 256));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            let name = format!("file-with-a-longish-name-{d}-{f}");
            std::fs::write(dir.join(&name), b"x").unwrap();
            let rel = dir.strip_prefix(v.path("")).unwrap().join(name);
            names.insert(rel.to_string_lossy().into_owned());
        }
    }
    names
}

fn every_file_once(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let want = many_files(&v);
    let r = request(v.addr(), "GET", "/?recursive", &[], b"");
    assert_eq!(r.status, 200);
    assert!(
        r.body.len() > 4 * 64 * 1024,
        "several pieces: {} bytes",
        r.body.len()
    );
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&r.body).expect("JSON");
    let names: Vec<String> = listed
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<String> = names.iter().cloned().collect();
    assert_eq!(names.len(), unique.len(), "a file listed twice");
    assert_eq!(unique, want);
    // An empty folder is an empty array.
    std::fs::create_dir_all(v.path("empty")).unwrap();
    let r = request(v.addr(), "GET", "/empty/?recursive", &[], b"");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap(),
        serde_json::json!([])
    );
}

fn a_reader_that_leaves(driver: Driver) {
    let v = Volume::start(driver, &[]);
    many_files(&v);
    for _ in 0..5 {
        let mut s = std::net::TcpStream::connect(v.addr()).unwrap();
        s.write_all(b"GET /?recursive HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut some = [0u8; 1024];
        let _ = s.read(&mut some).unwrap();
        drop(s);
    }
    std::thread::sleep(Duration::from_millis(200));
    // The volume still answers, and lists whole.
    let r = request(v.addr(), "GET", "/?recursive", &[], b"");
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(listed.len(), 4000);
}

/// Four listings at once; a fifth waits its turn with a 503.
fn at_most_four_walks(driver: Driver) {
    let v = Volume::start(driver, &[]);
    // About 12 MB of listing: more than the sockets between can hold.
    for d in 0..100 {
        let dir = v.path(&format!("{:02x}/{:02x}", d, d));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..1000 {
            std::fs::File::create(dir.join(format!("a-file-name-long-enough-to-fill-{f}")))
                .unwrap();
        }
    }
    let stalled: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(v.addr()).unwrap();
            s.write_all(b"GET /?recursive HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut head = [0u8; 64];
            s.read_exact(&mut head).unwrap();
            assert!(head.starts_with(b"HTTP/1.1 200"));
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = request(v.addr(), "GET", "/?recursive", &[], b"");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("too many recursive listings"),
        "{}",
        r.text()
    );
    drop(stalled);
    std::thread::sleep(Duration::from_millis(500));
    let r = request(v.addr(), "GET", "/?recursive", &[], b"");
    assert_eq!(r.status, 200);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(listed.len(), 100_000);
}

/// Only regular files are listed, with their size and kept md5: not
/// symlinks (to files or folders, which are not followed), FIFOs or
/// dot-files; folders are entered whatever their depth.
fn only_regular_files(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let dir = v.path("sv01/ab/cd");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("kept"), b"hello").unwrap();
    let md5 = "5d41402abc4b2a76b9719d911017c592";
    let sums = format!("3610a686 {md5}");
    let has_xattrs = rustix::fs::setxattr(
        dir.join("kept"),
        "user.mkv",
        sums.as_bytes(),
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok();
    std::fs::write(dir.join("plain"), b"abc").unwrap();
    std::fs::write(dir.join(".hidden"), b"x").unwrap();
    std::os::unix::fs::symlink("kept", dir.join("link-to-file")).unwrap();
    std::fs::create_dir_all(v.path("elsewhere")).unwrap();
    std::fs::write(v.path("elsewhere/inside"), b"y").unwrap();
    std::os::unix::fs::symlink(v.path("elsewhere"), dir.join("link-to-folder")).unwrap();
    let fifo = dir.join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
    let r = request(v.addr(), "GET", "/sv01/?recursive", &[], b"");
    assert_eq!(r.status, 200);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&r.body).expect("JSON");
    let mut names: Vec<&str> = listed.iter().map(|e| e["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["ab/cd/kept", "ab/cd/plain"]);
    let kept = listed.iter().find(|e| e["name"] == "ab/cd/kept").unwrap();
    let plain = listed.iter().find(|e| e["name"] == "ab/cd/plain").unwrap();
    assert_eq!(
        (kept["size"].as_u64(), plain["size"].as_u64()),
        (Some(5), Some(3))
    );
    assert_eq!(kept["type"], "file");
    assert!(plain.get("md5").is_none());
    if has_xattrs {
        assert_eq!(kept["md5"], md5);
    }
    // From the root, the folder outside the symlink is listed once.
    let r = request(v.addr(), "GET", "/?recursive", &[], b"");
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&r.body).expect("JSON");
    let mut names: Vec<&str> = listed.iter().map(|e| e["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        ["elsewhere/inside", "sv01/ab/cd/kept", "sv01/ab/cd/plain"]
    );
}

on_both_drivers!(
    every_file_once,
    a_reader_that_leaves,
    at_most_four_walks,
    only_regular_files
);
