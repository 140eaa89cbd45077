//! Placement and the record codec: run on every GET (Key-Balance) and PUT.

use criterion::{criterion_group, criterion_main, Criterion};
use mkv::placement::{key2path, key2volume};
use mkv::record::Record;
use std::hint::black_box;

fn placement(c: &mut Criterion) {
    let volumes: Vec<String> = (1..=5).map(|i| format!("localhost:300{i}")).collect();
    c.bench_function("key2path", |b| {
        b.iter(|| key2path(black_box(b"/benchmark-123456789")))
    });
    c.bench_function("key2volume 5 volumes, 3 replicas", |b| {
        b.iter(|| key2volume(black_box(b"/benchmark-123456789"), &volumes, 3, 10))
    });
}

fn record(c: &mut Criterion) {
    let raw = b"HASH022562cbfc8b12f9ae7b291a7b21f2e8localhost:3001/sv07,localhost:3005/sv04,localhost:3004/sv04";
    let rec = Record::decode(raw).unwrap();
    c.bench_function("record decode", |b| {
        b.iter(|| Record::decode(black_box(raw)))
    });
    c.bench_function("record encode", |b| b.iter(|| black_box(&rec).encode()));
}

criterion_group!(benches, placement, record);
criterion_main!(benches);
