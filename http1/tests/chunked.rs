//! The chunked decoder against a simple reference, on generated and mutated
//! input (proptest, a bounded number of cases), over a real socket cut in
//! pieces.

mod common;

use common::{decode_over_socket, Decoded};
use proptest::prelude::*;

// ---------------------------------------------------------------------
// Chunked bodies: the reference.

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
