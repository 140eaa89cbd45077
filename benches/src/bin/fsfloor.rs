//! The filesystem work of one mix op (see `thrasher`), as bare syscalls in
//! a loop on one thread, with nothing else: no HTTP, no index, no runtime.
//! For `perf/bench.py mix-floor`, which adds it to the cost of the op's
//! HTTP exchanges to get a lower bound on the CPU an op needs on this box.
//!
//! One op, as the volumes see it: each of 3 replicas makes the key's folders
//! (when new), writes the value into a temporary file with its checksum
//! xattr and renames it into place; one replica answers the master's HEAD
//! (a stat) and the client's GET (open and read); then each replica unlinks
//! the file. `--fsync` adds a volume's syncs (the file's data before the
//! rename, the folder after it and after the unlink), one at a time.
//!
//! Prints the CPU time (user + system) and wall time per op.

use std::os::fd::OwnedFd;
use std::time::Instant;

use clap::Parser;
use rustix::fs::{AtFlags, Mode, OFlags, XattrFlags};

#[derive(Parser)]
struct Args {
    /// An empty folder on the filesystem to measure; `v0`..`v2` are made in it.
    dir: std::path::PathBuf,
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Sync as a durable volume does.
    #[arg(long)]
    fsync: bool,
}

/// CPU time this (one-threaded) process has run, user and system, from
/// the scheduler's nanosecond count.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 / 1e9)
}

fn open_dir(at: &OwnedFd, path: &str) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        at,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn mkdir(at: &OwnedFd, path: &str) -> rustix::io::Result<()> {
    match rustix::fs::mkdirat(at, path, Mode::from_raw_mode(0o755)) {
        Err(rustix::io::Errno::EXIST) => Ok(()),
        other => other,
    }
}

fn op(replicas: &[OwnedFd], i: usize, sync: bool) -> rustix::io::Result<()> {
    let key = format!("benchmark-{i}");
    let path = mkv::placement::key2path(key.as_bytes());
    let (folder, name) = path[1..].rsplit_once('/').expect("xx/yy/name");
    let value = format!("value-{}", i.wrapping_mul(2654435761));
    let mut folders = Vec::with_capacity(replicas.len());
    for root in replicas {
        mkdir(root, &folder[..2])?;
        mkdir(root, folder)?;
        let dir = open_dir(root, folder)?;
        let temp = format!(".{name}.tmp");
        let file = rustix::fs::openat(
            &dir,
            &temp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        rustix::io::write(&file, value.as_bytes())?;
        rustix::fs::fsetxattr(&file, "user.mkv", b"0123abcd", XattrFlags::empty())?;
        if sync {
            rustix::fs::fdatasync(&file)?;
        }
        rustix::fs::renameat(&dir, &temp, &dir, name)?;
        if sync {
            rustix::fs::fsync(&dir)?;
        }
        folders.push(dir);
    }
    rustix::fs::statat(&folders[0], name, AtFlags::empty())?;
    let file = rustix::fs::openat(
        &folders[0],
        name,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [0u8; 64];
    rustix::io::read(&file, &mut buf)?;
    for dir in &folders {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
        if sync {
            rustix::fs::fsync(dir)?;
        }
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let run = || -> Result<(f64, f64), String> {
        let top = rustix::fs::open(&args.dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .map_err(|e| format!("{}: {e}", args.dir.display()))?;
        let replicas = (0..3)
            .map(|r| {
                mkdir(&top, &format!("v{r}"))?;
                open_dir(&top, &format!("v{r}"))
            })
            .collect::<rustix::io::Result<Vec<_>>>()
            .map_err(|e| e.to_string())?;
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        for i in 0..args.count {
            op(&replicas, i, args.fsync).map_err(|e| format!("op {i}: {e}"))?;
        }
        Ok((cpu_seconds() - cpu, wall.elapsed().as_secs_f64()))
    };
    match run() {
        Ok((cpu, wall)) => {
            let per = |s: f64| s * 1e6 / args.count as f64;
            println!("cpu us/op: {:.1}", per(cpu));
            println!("wall us/op: {:.1}", per(wall));
        }
        Err(e) => {
            eprintln!("fsfloor: {e}");
            std::process::exit(1);
        }
    }
}
