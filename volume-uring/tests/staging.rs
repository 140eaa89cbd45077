//! The staging area (docs/volume-api.md, "The volume protocol extensions"):
//! ranged writes into `.mkv-parts/`, and `?mkv-assemble` moving or copying
//! staged bytes over a target, keeping the old file when asked.

mod common;

use common::{pattern, Driver, Volume};
use testkit::client::request;

fn crc(b: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(b))
}

fn assemble(v: &Volume, target: &str, list: &str, backup: Option<&str>) -> testkit::Response {
    let headers: Vec<(&str, &str)> = backup.map(|b| ("X-Mkv-Backup", b)).into_iter().collect();
    request(
        v.addr(),
        "POST",
        &format!("{target}?mkv-assemble"),
        &headers,
        list.as_bytes(),
    )
}

fn ranged_writes_and_a_move(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let a = v.addr();
    let (p1, p2) = (pattern(1, 5000), pattern(2, 3000));
    // Part 2 first, into its slot; then part 1 at the start.
    let r = request(
        a,
        "PUT",
        "/sv01/.mkv-parts/up.data",
        &[("X-Mkv-Offset", "8192")],
        &p2,
    );
    assert_eq!(
        (r.status, r.header("x-crc32")),
        (201, Some(crc(&p2).as_str()))
    );
    let r = request(
        a,
        "PUT",
        "/sv01/.mkv-parts/up.data",
        &[("X-Mkv-Offset", "0")],
        &p1,
    );
    assert_eq!(
        (r.status, r.header("x-crc32")),
        (204, Some(crc(&p1).as_str()))
    );
    assert_eq!(
        std::fs::metadata(v.path("sv01/.mkv-parts/up.data"))
            .unwrap()
            .len(),
        11192
    );
    // Ranged writes go only into the staging area.
    let r = request(a, "PUT", "/sv01/ab/cd/x", &[("X-Mkv-Offset", "0")], b"x");
    assert_eq!(r.status, 403);
    assert!(!v.path("sv01/ab/cd/x").exists());

    // The whole file is one range: cut to it and moved, no copy.
    let mut whole = p1.clone();
    whole.extend_from_slice(&vec![0; 8192 - 5000]);
    whole.extend_from_slice(&p2);
    let list = format!(
        "/sv01/.mkv-parts/up.data 0 {} {}\n",
        whole.len(),
        crc(&whole)
    );
    let r = assemble(&v, "/sv01/ab/cd/obj", &list, None);
    assert_eq!(
        (r.status, r.header("x-crc32")),
        (201, Some(crc(&whole).as_str()))
    );
    assert!(
        !v.path("sv01/.mkv-parts/up.data").exists(),
        "moved, not copied"
    );
    let r = request(a, "GET", "/sv01/ab/cd/obj", &[], b"");
    assert_eq!(
        (r.status, r.header("x-crc32")),
        (200, Some(crc(&whole).as_str()))
    );
    assert_eq!(r.body, whole);

    // An overwrite that keeps the old file: linked at the backup name, then
    // replaced.
    let new = pattern(3, 1234);
    assert_eq!(
        request(a, "PUT", "/sv01/.mkv-parts/s1.stage", &[], &new).status,
        201
    );
    let list = format!("/sv01/.mkv-parts/s1.stage 0 1234 {}\n", crc(&new));
    let r = assemble(
        &v,
        "/sv01/ab/cd/obj",
        &list,
        Some("/sv01/.mkv-parts/s1.old"),
    );
    assert_eq!(r.status, 204);
    assert_eq!(request(a, "GET", "/sv01/ab/cd/obj", &[], b"").body, new);
    assert_eq!(
        std::fs::read(v.path("sv01/.mkv-parts/s1.old")).unwrap(),
        whole
    );
    // And back (a rollback is the same request).
    let list = format!(
        "/sv01/.mkv-parts/s1.old 0 {} {}\n",
        whole.len(),
        crc(&whole)
    );
    assert_eq!(assemble(&v, "/sv01/ab/cd/obj", &list, None).status, 204);
    assert_eq!(request(a, "GET", "/sv01/ab/cd/obj", &[], b"").body, whole);
    // Listings never show the staging area.
    let listing = request(a, "GET", "/sv01/", &[], b"").text();
    assert!(!listing.contains("mkv-parts"), "{listing}");
}

fn assembled_by_copy(driver: Driver) {
    let v = Volume::start(driver, &[]);
    let a = v.addr();
    let parts: Vec<Vec<u8>> = (0..3)
        .map(|i| pattern(10 + i, 100_000 + i as usize))
        .collect();
    let mut list = String::new();
    for (i, p) in parts.iter().enumerate() {
        let path = format!("/.mkv-parts/up.{i}");
        assert_eq!(request(a, "PUT", &path, &[], p).status, 201);
        list += &format!("{path} 0 {} {}\n", p.len(), crc(p));
    }
    // A range that does not start its file forces a copy too.
    list += &format!("/.mkv-parts/up.0 10 20 {}\n", crc(&parts[0][10..30]));
    let mut want: Vec<u8> = parts.concat();
    want.extend_from_slice(&parts[0][10..30]);
    let r = assemble(&v, "/xy/zz/obj", &list, None);
    assert_eq!(
        (r.status, r.header("x-crc32")),
        (201, Some(crc(&want).as_str()))
    );
    let got = request(a, "GET", "/xy/zz/obj", &[], b"");
    assert_eq!(
        (got.body == want, got.header("x-crc32")),
        (true, Some(crc(&want).as_str()))
    );
    assert!(v.path(".mkv-parts/up.1").exists(), "copied sources stay");

    // Refused: sources outside the staging area, ranges past a file's end,
    // a malformed list, no list; nothing is written.
    for bad in [
        format!("/xy/zz/obj 0 1 {}\n", crc(b"x")),
        format!("/.mkv-parts/up.1 0 999999 {}\n", crc(b"x")),
        "/.mkv-parts/up.1 zero 1 00000000\n".to_string(),
        String::new(),
    ] {
        let r = assemble(&v, "/xy/zz/other", &bad, None);
        assert!(matches!(r.status, 400 | 403 | 409), "{bad:?}: {}", r.status);
    }
    assert!(!v.path("xy/zz/other").exists());
    assert_eq!(request(a, "POST", "/xy/zz/other", &[], b"x").status, 405);
}

on_both_drivers!(ranged_writes_and_a_move, assembled_by_copy);
