//! The original's thrasher, as a load generator for `perf/bench.py mix`:
//! 16 workers, each taking keys from a shared counter and doing a PUT of a
//! small value, a GET that follows the 302 to the volume and checks the
//! value, and a DELETE — one "op". Connections are kept alive (to the
//! master and to each volume), as Go's default client keeps them.
//! `--size` (and `--size-max`, for sizes drawn between the two) sets the
//! values' size, for the big values this store is for; `--read-ratio` how
//! many GETs an op does per PUT; the summary gives the ops' latency
//! percentiles.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use testkit::Client;

#[derive(Parser)]
struct Args {
    /// The master, host:port (a name or an address).
    #[arg(long, value_parser = resolve)]
    master: SocketAddr,
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Ops in all (each a PUT, a GET with its redirect, a DELETE).
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Only PUT keys `/fill/N` (to fill a cluster for the rebuild and
    /// rebalance benchmarks), each with a value of this many bytes.
    #[arg(long)]
    fill: Option<usize>,
    /// Each value's size in bytes (`64k`, `1m`, `1g` work too); without it,
    /// small values as the original's thrasher writes.
    #[arg(long, value_parser = parse_size)]
    size: Option<usize>,
    /// With `--size`, sizes drawn at random between the two.
    #[arg(long, value_parser = parse_size)]
    size_max: Option<usize>,
    /// GETs per PUT: each op writes a key once, reads it this many times
    /// (each read follows the redirect and checks the value), deletes it.
    #[arg(long, default_value_t = 1)]
    read_ratio: usize,
}

fn resolve(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("{text}: {e}"))?
        .next()
        .ok_or_else(|| format!("{text}: no address"))
}

fn parse_size(text: &str) -> Result<usize, String> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.trim_end_matches('b').char_indices().last() {
        Some((i, 'k')) => (&lower[..i], 1 << 10),
        Some((i, 'm')) => (&lower[..i], 1 << 20),
        Some((i, 'g')) => (&lower[..i], 1 << 30),
        _ => (lower.as_str(), 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text}: not a size (bytes, or with k, m, g)"))
}

/// The value of op `i`: small text, or `size` bytes of a pattern of `i`.
fn value_of(i: usize, size: Option<(usize, usize)>) -> Vec<u8> {
    let Some((min, max)) = size else {
        return format!("value-{}", i.wrapping_mul(2654435761)).into_bytes();
    };
    let mix = i.wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as usize);
    let len = min + mix % (max - min + 1);
    (0..len).map(|j| (j.wrapping_mul(31) ^ mix) as u8).collect()
}

fn fill(master: SocketAddr, next: &AtomicUsize, count: usize, size: usize) -> Result<(), String> {
    let mut m = Client::connect(master);
    let value = vec![b'x'; size];
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            return Ok(());
        }
        let r = m.request("PUT", &format!("/fill/{i}"), &[], &value);
        if r.status != 201 {
            return Err(format!("PUT /fill/{i}: {}", r.status));
        }
    }
}

/// What one worker does: ops until the counter passes `count`; returns each
/// op's time in microseconds.
fn worker(
    master: SocketAddr,
    next: &AtomicUsize,
    count: usize,
    seed: usize,
    (size, reads): (Option<(usize, usize)>, usize),
) -> Result<Vec<u64>, String> {
    let mut m = Client::connect(master);
    let mut volumes: HashMap<SocketAddr, Client> = HashMap::new();
    let mut times = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            return Ok(times);
        }
        let started = Instant::now();
        let key = format!("/benchmark-{seed}-{i}");
        let value = value_of(i, size);
        let r = m.request("PUT", &key, &[], &value);
        if r.status != 201 {
            return Err(format!("PUT {key}: {}", r.status));
        }
        for _ in 0..reads {
            read(&mut m, &mut volumes, &key, &value)?;
        }
        let r = m.request("DELETE", &key, &[], b"");
        if r.status != 204 {
            return Err(format!("DELETE {key}: {}", r.status));
        }
        times.push(started.elapsed().as_micros() as u64);
    }
}

/// A GET of `key` from the master, its redirect followed to the volume,
/// the value checked.
fn read(
    m: &mut Client,
    volumes: &mut HashMap<SocketAddr, Client>,
    key: &str,
    value: &[u8],
) -> Result<(), String> {
    let r = m.request("GET", key, &[], b"");
    let location = r
        .header("location")
        .ok_or(format!("GET {key}: {}", r.status))?;
    let (addr, path) = location
        .strip_prefix("http://")
        .and_then(|l| l.split_once('/'))
        .ok_or(format!("bad location {location}"))?;
    let addr = resolve(addr)?;
    let v = volumes.entry(addr).or_insert_with(|| Client::connect(addr));
    let got = v.request("GET", &format!("/{path}"), &[], b"");
    if got.status != 200 || got.body != value {
        return Err(format!(
            "GET {location}: {}, {} bytes",
            got.status,
            got.body.len()
        ));
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let next = Arc::new(AtomicUsize::new(0));
    let seed = std::process::id() as usize;
    let start = Instant::now();
    let size = match (args.size, args.size_max) {
        (Some(min), Some(max)) if max >= min => Some((min, max)),
        (Some(min), None) => Some((min, min)),
        (None, None) => None,
        _ => {
            eprintln!("thrasher: --size-max needs a --size no larger than it");
            std::process::exit(2);
        }
    };
    let workers: Vec<_> = (0..args.workers)
        .map(|_| {
            let next = next.clone();
            let fill_size = args.fill;
            std::thread::spawn(move || match fill_size {
                Some(bytes) => fill(args.master, &next, args.count, bytes).map(|()| Vec::new()),
                None => worker(
                    args.master,
                    &next,
                    args.count,
                    seed,
                    (size, args.read_ratio),
                ),
            })
        })
        .collect();
    let mut times = Vec::new();
    for w in workers {
        match w.join().expect("worker panicked") {
            Ok(t) => times.extend(t),
            Err(e) => {
                eprintln!("thrasher: {e}");
                std::process::exit(1);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let what = if args.fill.is_some() {
        "PUTs"
    } else {
        "write/read/delete"
    };
    println!("{} {what} in {secs:.3}s", args.count);
    println!("ops/s: {:.1}", args.count as f64 / secs);
    if args.fill.is_none() {
        // An op is a PUT, its reads (master and volume) and a DELETE.
        let requests = args.count * (2 + 2 * args.read_ratio);
        println!(
            "requests/s: {:.1} ({} GETs per PUT)",
            requests as f64 / secs,
            args.read_ratio
        );
    }
    if !times.is_empty() {
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize] as f64 / 1e3;
        println!(
            "op latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        );
    }
}
