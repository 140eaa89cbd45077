//! The request-head parser and the chunked decoder against simple
//! references, on generated and mutated input (proptest, a bounded number
//! of cases), and on the committed corpus of hostile requests
//! (`tests/corpus/`, which the servers' own tests also send them).

use std::io::Write;
use std::net::TcpListener;

use http1::request::{parse, HeadLimits};
use http1::{BodyKind, BodyReader, Conn, HttpError, RequestHead, Timeouts};
use proptest::prelude::*;

/// What a server answers first to a request: accepted, or this status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Status(u16),
}

fn outcome_of(e: &HttpError) -> Outcome {
    Outcome::Status(e.status().expect("a parse error has a status"))
}

// ---------------------------------------------------------------------
// Chunked bodies: the reference.

/// A decoded chunked body: its bytes and its trailer fields.
type Decoded = (Vec<u8>, Vec<(String, String)>);

/// A whole chunked body decoded the strict way (CRLF line ends, hex sizes
/// of at most 16 digits then nothing or `;` extensions, `token: value`
/// trailers): its bytes and trailers, or `None` when it is malformed or
/// ends early.
fn reference_chunked(mut input: &[u8]) -> Option<Decoded> {
    fn line<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
        let lf = input.iter().position(|&c| c == b'\n')?;
        let line = &input[..lf];
        let line = line.strip_suffix(b"\r")?;
        if line.contains(&b'\r') {
            return None;
        }
        *input = &input[lf + 1..];
        Some(line)
    }
    let mut body = Vec::new();
    loop {
        let l = line(&mut input)?;
        let digits = l.iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 16 {
            return None;
        }
        let rest = l[digits..].trim_ascii_start();
        if !(rest.is_empty() || rest[0] == b';') || l.contains(&0) {
            return None;
        }
        let size = u64::from_str_radix(std::str::from_utf8(&l[..digits]).ok()?, 16).ok()?;
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).ok()?;
        if input.len() < size + 2 || &input[size..size + 2] != b"\r\n" {
            return None;
        }
        body.extend_from_slice(&input[..size]);
        input = &input[size + 2..];
    }
    let mut trailers = Vec::new();
    loop {
        let l = line(&mut input)?;
        if l.is_empty() {
            return Some((body, trailers));
        }
        let colon = l.iter().position(|&c| c == b':')?;
        let name = &l[..colon];
        let tchar = |c: &u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(c);
        let value = l[colon + 1..].trim_ascii();
        if name.is_empty()
            || !name.iter().all(tchar)
            || value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f)
        {
            return None;
        }
        trailers.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
}

/// The body reader's view of `input` sent over a real socket in pieces
/// cut at `cuts`, the sender closing after it.
fn decode_over_socket(input: &[u8], cuts: &[usize]) -> Result<Decoded, HttpError> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let data = input.to_vec();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let sender = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut at = 0;
        for cut in cuts.into_iter().chain([data.len()]) {
            let _ = s.write_all(&data[at..cut]);
            let _ = s.flush();
            at = cut;
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
    });
    let (std_stream, _) = listener.accept().unwrap();
    std_stream.set_nonblocking(true).unwrap();
    let (mut rt, _) = http1::runtime::build().unwrap();
    let result = rt.block_on(async move {
        let stream = monoio::net::TcpStream::from_std(std_stream).unwrap();
        let mut conn = Conn::new(stream, Timeouts::default());
        let mut reader = BodyReader::new(BodyKind::Chunked);
        let mut body = Vec::new();
        loop {
            let (res, buf) = reader.read(&mut conn, Vec::with_capacity(64)).await;
            match res {
                Ok(0) => break,
                Ok(_) => body.extend_from_slice(&buf),
                Err(e) => return Err(e),
            }
        }
        let mut trailers = Vec::new();
        for name in ["x-a", "x-b", "x-note", "x-mkv-crc32"] {
            if let Some(v) = reader.trailer(name) {
                trailers.push((name.to_string(), v.to_string()));
            }
        }
        Ok(body).map(|b| (b, trailers))
    });
    sender.join().unwrap();
    result
}

/// The trailers the reader reports, for the names the generator uses.
fn known_trailers(all: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for name in ["x-a", "x-b", "x-note", "x-mkv-crc32"] {
        if let Some((n, v)) = all.iter().find(|(n, _)| n == name) {
            out.push((n.clone(), v.clone()));
        }
    }
    out
}

/// A well-formed chunked encoding of pieces, with varied spellings.
fn encoded() -> impl Strategy<Value = Vec<u8>> {
    let piece = (
        prop::collection::vec(any::<u8>(), 1..200),
        0usize..3,
        any::<bool>(),
        prop::option::of(("[a-z]{1,6}", "[a-z0-9]{0,6}", any::<bool>())),
    );
    let trailer = (
        prop::sample::select(vec!["X-A", "x-b", "X-Note", "X-Mkv-Crc32"]),
        "[ -~]{0,20}",
    );
    (
        prop::collection::vec(piece, 0..6),
        prop::collection::vec(trailer, 0..3),
        0usize..3,
    )
        .prop_map(|(pieces, trailers, last_zeros)| {
            let mut out = Vec::new();
            for (data, zeros, upper, ext) in pieces {
                let hex = format!("{:x}", data.len());
                let hex = if upper { hex.to_uppercase() } else { hex };
                out.extend_from_slice("0".repeat(zeros).as_bytes());
                out.extend_from_slice(hex.as_bytes());
                if let Some((name, value, bws)) = ext {
                    let sep = if bws { " ; " } else { ";" };
                    out.extend_from_slice(format!("{sep}{name}={value}").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&data);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice("0".repeat(last_zeros + 1).as_bytes());
            out.extend_from_slice(b"\r\n");
            let mut seen = std::collections::HashSet::new();
            for (name, value) in trailers {
                if seen.insert(name.to_ascii_lowercase()) {
                    out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
            }
            out.extend_from_slice(b"\r\n");
            out
        })
}

/// One change to an encoding: a byte replaced, removed or inserted, or the
/// end cut off.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let interesting = prop::sample::select(vec![
        b'\r', b'\n', b' ', b'\t', b';', b':', b'0', b'f', b'g', b'x', 0u8,
    ]);
    (encoded(), any::<prop::sample::Index>(), 0u8..4, interesting).prop_map(
        |(mut enc, at, how, byte)| {
            if enc.is_empty() {
                return enc;
            }
            let i = at.index(enc.len());
            match how {
                0 => enc[i] = byte,
                1 => {
                    enc.remove(i);
                }
                2 => enc.insert(i, byte),
                _ => enc.truncate(i),
            }
            enc
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn chunked_bodies_decode_as_the_reference(
        enc in encoded(),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let want = reference_chunked(&enc).expect("the generator makes valid encodings");
        let got = decode_over_socket(&enc, &cuts).expect("a valid encoding is accepted");
        prop_assert_eq!(got.0, want.0);
        prop_assert_eq!(known_trailers(got.1), known_trailers(want.1));
    }

    #[test]
    fn mutated_chunked_bodies_are_judged_as_the_reference(
        enc in mutated(),
        cuts in prop::collection::vec(any::<usize>(), 0..3),
    ) {
        let want = reference_chunked(&enc);
        let got = decode_over_socket(&enc, &cuts);
        match (want, got) {
            (Some(w), Ok(g)) => {
                prop_assert_eq!(g.0, w.0);
                prop_assert_eq!(known_trailers(g.1), known_trailers(w.1));
            }
            (None, Err(_)) => {}
            (w, g) => prop_assert!(false, "reference {:?}, reader {:?} for {:?}", w.is_some(), g.map(|_| ()), String::from_utf8_lossy(&enc)),
        }
    }
}

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
