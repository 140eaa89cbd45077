//! The request-head parser against a simple reference, on generated input
//! (proptest, a bounded number of cases), and on the committed corpus of
//! hostile requests (`tests/corpus/`, which the servers' own tests also
//! send them).

mod common;

use common::{decode_over_socket, outcome_of, Outcome};
use http1::request::{parse, HeadLimits};
use http1::{BodyKind, HttpError, RequestHead};
use proptest::prelude::*;

// ---------------------------------------------------------------------
// Request heads.

/// A request head: method, target, header lines, version.
#[derive(Clone, Debug)]
struct Req {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    http10: bool,
}

impl Req {
    fn bytes(&self) -> Vec<u8> {
        let version = if self.http10 { "1.0" } else { "1.1" };
        let mut out = format!("{} {} HTTP/{version}\r\n", self.method, self.target);
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// The reference: the framing a server must read, or its refusal.
    fn expected(&self) -> Result<BodyKind, u16> {
        let named = |name: &str| {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        let (lengths, codings, hosts) = (
            named("content-length"),
            named("transfer-encoding"),
            named("host"),
        );
        let mut length = None;
        let mut chunked = false;
        // Header lines are judged in order, as they come.
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case("content-length") {
                if length.is_some() {
                    return Err(400);
                }
                let ok = !v.is_empty() && v.len() <= 19 && v.bytes().all(|c| c.is_ascii_digit());
                match v.parse::<u64>() {
                    Ok(n) if ok => length = Some(n),
                    _ => return Err(400),
                }
            } else if n.eq_ignore_ascii_case("transfer-encoding") {
                if chunked || !v.eq_ignore_ascii_case("chunked") {
                    return Err(501);
                }
                chunked = true;
            }
        }
        let _ = (lengths, codings);
        if !self.http10 && hosts.len() != 1 {
            return Err(400);
        }
        match (chunked, length) {
            (true, Some(_)) => Err(400),
            (true, None) if self.http10 => Err(400),
            (true, None) => Ok(BodyKind::Chunked),
            (false, Some(n)) => Ok(BodyKind::Length(n)),
            (false, None) => Ok(BodyKind::Empty),
        }
    }
}

fn request() -> impl Strategy<Value = Req> {
    let method = prop::sample::select(vec![
        "GET",
        "HEAD",
        "PUT",
        "DELETE",
        "UNLINK",
        "POST",
        "REBALANCE",
    ]);
    let target = "/[a-zA-Z0-9/_.%-]{0,30}(\\?[a-z=&]{0,10})?";
    let length = prop::sample::select(vec![
        "0",
        "5",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "+5",
        "0x5",
        "5 5",
        "",
        "1,1",
        "007",
    ]);
    let coding = prop::sample::select(vec![
        "chunked",
        "Chunked",
        "gzip",
        "chunked, chunked",
        "identity",
    ]);
    let header = prop_oneof![
        length.prop_map(|v| ("Content-Length".to_string(), v.to_string())),
        coding.prop_map(|v| ("Transfer-Encoding".to_string(), v.to_string())),
        Just(("Host".to_string(), "x".to_string())),
        Just(("Connection".to_string(), "close".to_string())),
        "[a-zA-Z-]{1,10}".prop_map(|n| (format!("X-{n}"), "v".to_string())),
    ];
    (
        method,
        target,
        prop::collection::vec(header, 0..5),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(method, target, mut headers, with_host, http10)| {
            if with_host {
                headers.insert(0, ("Host".to_string(), "x".to_string()));
            }
            Req {
                method,
                target,
                headers,
                http10,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn request_heads_are_framed_as_the_reference(req in request()) {
        let bytes = req.bytes();
        let mut head = RequestHead::default();
        let got = parse(&bytes, &mut head, &HeadLimits::default());
        match (req.expected(), got) {
            (Ok(kind), Ok(Some(n))) => {
                prop_assert_eq!(n, bytes.len());
                prop_assert_eq!(head.body, kind);
                prop_assert_eq!(head.method_name(), req.method);
                prop_assert_eq!(head.target(), req.target.as_bytes());
            }
            (Err(status), Err(e)) => prop_assert_eq!(e.status(), Some(status)),
            (want, got) => prop_assert!(false, "reference {:?}, parser {:?}", want, got.map(|_| head.body)),
        }
        // Every proper prefix of a head is incomplete, or already refused.
        for cut in 0..bytes.len() {
            let mut h = RequestHead::default();
            if let Ok(Some(_)) = parse(&bytes[..cut], &mut h, &HeadLimits::default()) {
                prop_assert!(false, "a prefix of {} bytes parsed as a whole head", cut);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut head = RequestHead::default();
        if let Ok(Some(n)) = parse(&bytes, &mut head, &HeadLimits::default()) {
            prop_assert!(n <= bytes.len());
        }
        let _ = http1::chunked::parse_chunk_size(&bytes);
        let _ = http1::chunked::parse_trailer(&bytes);
        let _ = http1::chunked::split_line(&bytes);
        let _ = http1::percent::decode(&bytes, &mut Vec::new());
    }
}

// ---------------------------------------------------------------------
// The corpus.

/// Each case of `tests/corpus/`, with what a server answers first.
pub fn corpus() -> Vec<(String, Vec<u8>, Outcome)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let expect = std::fs::read_to_string(dir.join("EXPECT")).unwrap();
    expect
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, want) = l.split_once(' ').unwrap();
            let raw = std::fs::read(dir.join(format!("{name}.http"))).unwrap();
            let want = match want {
                "ok" => Outcome::Ok,
                s => Outcome::Status(s.parse().unwrap()),
            };
            (name.to_string(), raw, want)
        })
        .collect()
}

/// Parses `raw` as a server does: 16 KiB more each time it reads.
fn parse_as_it_arrives(raw: &[u8], head: &mut RequestHead) -> Result<Option<usize>, HttpError> {
    let mut have = 0;
    loop {
        have = (have + 16 * 1024).min(raw.len());
        match parse(&raw[..have], head, &HeadLimits::default())? {
            None if have < raw.len() => continue,
            done => return Ok(done),
        }
    }
}

#[test]
fn the_corpus_is_judged_as_expected() {
    let cases = corpus();
    assert!(cases.len() >= 40);
    let mut wrong = Vec::new();
    for (name, raw, want) in cases {
        let mut head = RequestHead::default();
        let got = match parse_as_it_arrives(&raw, &mut head) {
            Err(e) => outcome_of(&e),
            Ok(None) => panic!("{name}: the head is incomplete"),
            Ok(Some(n)) => match head.body {
                BodyKind::Chunked => match decode_over_socket(&raw[n..], &[]) {
                    Ok(_) => Outcome::Ok,
                    Err(e) => outcome_of(&e),
                },
                _ => Outcome::Ok,
            },
        };
        if got != want {
            wrong.push(format!("{name}: {got:?}, expected {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
