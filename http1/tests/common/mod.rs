//! What the parser tests share: what a server answers first, and the body
//! reader run over a real socket.

#![allow(dead_code)] // each test file uses part of it

use std::io::Write;
use std::net::TcpListener;

use http1::{BodyKind, BodyReader, Conn, HttpError, Timeouts};

/// What a server answers first to a request: accepted, or this status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Status(u16),
}

pub fn outcome_of(e: &HttpError) -> Outcome {
    Outcome::Status(e.status().expect("a parse error has a status"))
}

/// A decoded chunked body: its bytes and its trailer fields.
pub type Decoded = (Vec<u8>, Vec<(String, String)>);

/// The body reader's view of `input` sent over a real socket in pieces
/// cut at `cuts`, the sender closing after it.
pub fn decode_over_socket(input: &[u8], cuts: &[usize]) -> Result<Decoded, HttpError> {
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
