//! Hostile requests both servers must withstand, shared by their tests.

use std::net::SocketAddr;

use crate::client::Client;

/// The request a smuggler hides in a body.
fn smuggled(victim: &str) -> String {
    format!("DELETE {victim} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// Requests whose bodies carry a request of their own (`DELETE victim`),
/// framed by `Content-Length` or chunked, on GET, HEAD, DELETE and
/// `extra_methods`, aimed at `elsewhere`. Each answer must be followed by
/// the answer to a probe on the same connection (or by the connection
/// closing): never by the answer to the hidden request. The caller then
/// checks that `victim` is untouched.
pub fn bodies_stay_bodies(addr: SocketAddr, elsewhere: &str, victim: &str, extra_methods: &[&str]) {
    let inner = smuggled(victim);
    let chunked = format!("{:x}\r\n{inner}\r\n0\r\n\r\n", inner.len());
    let methods = ["GET", "HEAD", "DELETE"].iter().chain(extra_methods);
    for method in methods {
        let framings = [
            format!("Content-Length: {}\r\n\r\n{inner}", inner.len()),
            format!("Transfer-Encoding: chunked\r\n\r\n{chunked}"),
        ];
        for framing in &framings {
            let mut c = Client::connect(addr);
            let probe = format!("HEAD {elsewhere} HTTP/1.1\r\nHost: x\r\n\r\n");
            c.send(
                format!("{method} {elsewhere} HTTP/1.1\r\nHost: x\r\n{framing}{probe}").as_bytes(),
            );
            let first = c.read_response(*method == "HEAD");
            assert!(first.status < 500, "{method} with a body: {}", first.status);
            if let Some(second) = c.try_read_response(true).ok().flatten() {
                assert_ne!(
                    second.status, 204,
                    "{method} {framing:?}: the body was run as a request"
                );
            }
        }
    }
    // A body too long to read and drop: answered, then closed.
    let mut c = Client::connect(addr);
    let junk = vec![b'x'; 4 << 20];
    let head = format!(
        "GET {elsewhere} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        junk.len() + inner.len()
    );
    c.send(head.as_bytes());
    let status = c.read_response(false).status;
    assert!(status < 500, "GET with a long body: {status}");
    // The server reads and drops what still arrives before it closes.
    let _ = std::io::Write::write_all(&mut c.stream, &junk);
    let _ = std::io::Write::write_all(&mut c.stream, inner.as_bytes());
    assert!(c.closed_within(std::time::Duration::from_secs(10)));
}

/// The committed corpus of hostile requests (`http1/tests/corpus/`): each
/// case's name, bytes, and the status a server answers first (`None`:
/// accepted).
pub fn corpus() -> Vec<(String, Vec<u8>, Option<u16>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../http1/tests/corpus");
    let expect = std::fs::read_to_string(dir.join("EXPECT")).expect("corpus/EXPECT");
    expect
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, want) = l.split_once(' ').expect("<case> <status>");
            let raw = std::fs::read(dir.join(format!("{name}.http"))).expect("a corpus case");
            (name.to_string(), raw, want.parse().ok())
        })
        .collect()
}

/// Sends every case of the corpus on a connection of its own: a refused
/// case gets exactly its status, an accepted one no 5xx; `still_serving`
/// runs after each.
pub fn send_corpus(addr: SocketAddr, mut still_serving: impl FnMut()) {
    for (name, raw, want) in corpus() {
        let mut c = Client::connect(addr);
        c.send(&raw);
        let head = raw.starts_with(b"HEAD ");
        let got = c.read_response(head).status;
        match want {
            Some(status) => assert_eq!(got, status, "{name}"),
            None => assert!(got < 500, "{name}: {got}"),
        }
        still_serving();
    }
}
