//! Request-head parsing: the first thing every request costs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http1::request::{self, HeadLimits, RequestHead};
use std::hint::black_box;

const WRK_GET: &[u8] = b"GET /5d/41/aGVsbG8= HTTP/1.1\r\nHost: localhost:3001\r\n\r\n";
const CURL_PUT: &[u8] = b"PUT /wehave HTTP/1.1\r\nHost: localhost:3000\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Length: 7\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n";
const BROWSER_GET: &[u8] = b"GET /sv03/5d/41/aGVsbG8= HTTP/1.1\r\nHost: volume1:3001\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\nRange: bytes=0-1023\r\nIf-None-Match: \"6b0537d0-a\"\r\nConnection: keep-alive\r\n\r\n";

fn parse(c: &mut Criterion) {
    let limits = HeadLimits::default();
    let mut group = c.benchmark_group("request_head");
    for (name, raw) in [
        ("wrk_get", WRK_GET),
        ("curl_put", CURL_PUT),
        ("browser_get", BROWSER_GET),
    ] {
        let mut parsed = RequestHead::default();
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| request::parse(black_box(raw), &mut parsed, &limits).map(|n| n.is_some()))
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
