//! `volume [--port N] [--threads N] DIR` serves DIR; `volume scrub DIR`
//! re-checks the CRCs of what it stored.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use http1::{duration, runtime, Timeouts};
use volume_uring::{scrub, Config, Server};

#[derive(Parser)]
#[command(
    name = "volume",
    version,
    about = "minikeyvalue volume server on io_uring"
)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
    /// Log lines as text or as one JSON object each.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Re-read every file and report those whose bytes no longer match their CRC32.
    Scrub { dir: PathBuf },
}

#[derive(Args)]
struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 3001)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Runtime threads, each with its own listener (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Answer PUT and DELETE before the bytes are on disk (faster, not durable).
    #[arg(long)]
    no_fsync: bool,
    /// How long a kept-alive connection may wait for its next request.
    #[arg(long, default_value = "75s", value_parser = duration::parse)]
    idle_timeout: Duration,
    /// How long a client may take to send a request head.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    header_timeout: Duration,
    /// How long one read of a body or one write may wait.
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    io_timeout: Duration,
    /// On SIGINT/SIGTERM, how long requests in flight may take to finish.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    shutdown_grace: Duration,
    /// Connections open at once; past it a new one gets a 503 (default:
    /// half the process's descriptor limit).
    #[arg(long, default_value_t = 0)]
    max_connections: usize,
    /// Serve metrics (/metrics), /health and /ready on this port.
    #[arg(long)]
    admin_port: Option<u16>,
    /// /ready answers 503 with less free space than this (k, m, g, t).
    #[arg(long, default_value = "1g", value_parser = duration::parse_bytes)]
    ready_min_free: u64,
    /// Re-check every stored file's CRC this often, in the background
    /// (Go duration: 24h); off by default.
    #[arg(long, value_parser = duration::parse)]
    scrub_every: Option<Duration>,
    /// The folder to serve (created if missing).
    #[arg(required = true)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::keep_freed_memory();
    runtime::init_logging(cli.log_format == LogFormat::Json);
    match cli.command {
        Some(Command::Scrub { dir }) => run_scrub(&dir),
        None => match serve(cli.serve) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("volume: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(args: ServeArgs) -> std::io::Result<()> {
    let Some(dir) = args.dir else {
        eprintln!("volume: missing DIR (usage: volume [--port N] DIR)");
        std::process::exit(2);
    };
    let made = !dir.exists();
    std::fs::create_dir_all(&dir)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = Config {
        dir,
        addr: SocketAddr::new(args.bind, args.port),
        threads,
        fsync: !args.no_fsync,
        timeouts: Timeouts {
            idle: args.idle_timeout,
            header: args.header_timeout,
            io: args.io_timeout,
        },
        grace: args.shutdown_grace,
        max_connections: args.max_connections,
        admin: args.admin_port.map(|p| SocketAddr::new(args.bind, p)),
        ready_min_free: args.ready_min_free,
        scrub_every: args.scrub_every.filter(|d| !d.is_zero()),
    };
    let server = match Server::start(&config) {
        Ok(s) => s,
        Err(e) => {
            // A failed start leaves no empty folder behind.
            if made {
                let _ = std::fs::remove_dir(&config.dir);
            }
            return Err(e);
        }
    };
    runtime::on_signal(server.shutdown_handle())?;
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "listening on {} ({}, {} threads, fsync {})",
        server.local_addr(),
        server.driver(),
        threads,
        if config.fsync { "on" } else { "off" }
    )?;
    if let Some(admin) = server.admin_addr() {
        writeln!(stdout, "admin listening on {admin}")?;
    }
    stdout.flush()?;
    server.wait();
    Ok(())
}

fn run_scrub(dir: &std::path::Path) -> ExitCode {
    if !dir.is_dir() {
        eprintln!("volume scrub: {} is not a folder", dir.display());
        return ExitCode::from(2);
    }
    let report = scrub::scrub(dir);
    for path in &report.partial_uploads {
        println!(
            "PARTIAL {} (left by an upload that never finished; a volume removes these when it starts)",
            path.display()
        );
    }
    for (path, err) in &report.unreadable {
        println!("UNREADABLE {}: {err}", path.display());
    }
    println!(
        "scrubbed {} files ({} bytes): {} verified, {} without a CRC, {} mismatched, {} unreadable, {} partial uploads",
        report.files,
        report.bytes,
        report.verified,
        report.without_crc,
        report.mismatched.len(),
        report.unreadable.len(),
        report.partial_uploads.len()
    );
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
