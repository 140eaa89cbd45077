//! The original's thrasher, as a load generator for `perf/bench.py mix`:
//! 16 workers, each taking keys from a shared counter and doing a PUT of a
//! small value, a GET that follows the 302 to the volume and checks the
//! value, and a DELETE — one "op". Connections are kept alive (to the
//! master and to each volume), as Go's default client keeps them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use testkit::Client;

#[derive(Parser)]
struct Args {
    /// The master, host:port.
    #[arg(long)]
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

fn worker(master: SocketAddr, next: &AtomicUsize, count: usize, seed: usize) -> Result<(), String> {
    let mut m = Client::connect(master);
    let mut volumes: HashMap<SocketAddr, Client> = HashMap::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            return Ok(());
        }
        let key = format!("/benchmark-{seed}-{i}");
        let value = format!("value-{}", i.wrapping_mul(2654435761));
        let r = m.request("PUT", &key, &[], value.as_bytes());
        if r.status != 201 {
            return Err(format!("PUT {key}: {}", r.status));
        }
        let r = m.request("GET", &key, &[], b"");
        let location = r
            .header("location")
            .ok_or(format!("GET {key}: {}", r.status))?;
        let (addr, path) = location
            .strip_prefix("http://")
            .and_then(|l| l.split_once('/'))
            .ok_or(format!("bad location {location}"))?;
        let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
        let v = volumes.entry(addr).or_insert_with(|| Client::connect(addr));
        let got = v.request("GET", &format!("/{path}"), &[], b"");
        if got.status != 200 || got.body != value.as_bytes() {
            return Err(format!("GET {location}: {} {:?}", got.status, got.text()));
        }
        let r = m.request("DELETE", &key, &[], b"");
        if r.status != 204 {
            return Err(format!("DELETE {key}: {}", r.status));
        }
    }
}

fn main() {
    let args = Args::parse();
    let next = Arc::new(AtomicUsize::new(0));
    let seed = std::process::id() as usize;
    let start = Instant::now();
    let workers: Vec<_> = (0..args.workers)
        .map(|_| {
            let next = next.clone();
            let fill_size = args.fill;
            std::thread::spawn(move || match fill_size {
                Some(size) => fill(args.master, &next, args.count, size),
                None => worker(args.master, &next, args.count, seed),
            })
        })
        .collect();
    for w in workers {
        if let Err(e) = w.join().expect("worker panicked") {
            eprintln!("thrasher: {e}");
            std::process::exit(1);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{} write/read/delete in {secs:.3}s", args.count);
    println!("ops/s: {:.1}", args.count as f64 / secs);
}
