//! md5 of values hashed one at a time (the md-5 crate, and ours) against
//! several hashed side by side in SIMD lanes, as the master does when
//! uploads arrive together. Throughput is the bytes of all values.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use md5::Digest;
use mkv::md5x::{self, Md5};

const PIECE: usize = 256 * 1024;

fn md5_lanes(c: &mut Criterion) {
    let data = vec![0x5au8; PIECE];
    let mut g = c.benchmark_group("md5 of 256 KiB pieces");
    g.throughput(Throughput::Bytes(PIECE as u64));
    g.bench_function("md-5 crate, one value", |b| {
        let mut h = md5::Md5::new();
        b.iter(|| h.update(&data))
    });
    for values in [1usize, 2, 4, 8, 16] {
        g.throughput(Throughput::Bytes((values * PIECE) as u64));
        g.bench_with_input(
            BenchmarkId::new("side by side", values),
            &values,
            |b, &n| {
                let mut states = vec![Md5::new(); n];
                b.iter(|| {
                    let mut jobs: Vec<(&mut Md5, &[u8])> =
                        states.iter_mut().map(|s| (s, data.as_slice())).collect();
                    md5x::update_many(&mut jobs);
                })
            },
        );
    }
    g.finish();
    eprintln!("lanes on this machine: {}", md5x::width());
}

criterion_group!(benches, md5_lanes);
criterion_main!(benches);
