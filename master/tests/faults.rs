//! Faults and hostile input (docs/crash-safety.md, docs/master-api.md):
//! bodies never run as requests, volumes that stop answering, full disks,
//! a master killed under writers.

mod common;

use common::{Backend, Cluster};
use testkit::client::{request, Client};

/// A body on GET, HEAD, DELETE or UNLINK is framed and dropped: the request
/// hidden in it never runs.
fn bodies_are_never_requests(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    assert_eq!(request(a, "PUT", "/victim", &[], b"v").status, 201);
    testkit::hostile::bodies_stay_bodies(a, "/elsewhere", "/victim", &["UNLINK"]);
    assert_eq!(request(a, "GET", "/victim", &[], b"").status, 302);
    assert_eq!(common::fetch(a, "/victim").as_deref(), Some(&b"v"[..]));
}

/// A PUT refused before its body is read (403: the key exists) still
/// reaches its client, which is sending 8 MiB when the answer comes: the
/// master reads and drops the rest before it closes.
fn early_answers_reach_the_client(backend: Backend) {
    let c = Cluster::start(backend, 3, &[]);
    let a = c.addr();
    assert_eq!(request(a, "PUT", "/taken", &[], b"v").status, 201);
    let senders: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = Client::connect(a);
                let body = vec![b'x'; 8 << 20];
                client.send(
                    format!(
                        "PUT /taken HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                std::io::Write::write_all(&mut client.stream, &body).expect("the body was cut off");
                client.read_response(false).status
            })
        })
        .collect();
    for s in senders {
        assert_eq!(s.join().unwrap(), 403);
    }
    assert_eq!(common::fetch(a, "/taken").as_deref(), Some(&b"v"[..]));
}

on_both_backends!(bodies_are_never_requests, early_answers_reach_the_client);
