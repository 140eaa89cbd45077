//! `mkv [flags] server|rebuild|rebalance|dev`.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use mkv::config::{normalize_args, Cli, Command, Flags};
use mkv::index::Index;
use mkv::server::{App, Server};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    volume_uring::runtime::init_logging();
    let result = match &cli.command {
        Command::Server => cluster_or_exit(&cli.flags).and_then(|c| serve(&cli.flags, c)),
        Command::Rebuild(args) => {
            cluster_or_exit(&cli.flags).and_then(|c| mkv::rebuild::run(&c, args))
        }
        Command::Rebalance(args) => {
            cluster_or_exit(&cli.flags).and_then(|c| mkv::rebalance_tool::run(&c, args))
        }
        Command::Dev(args) => mkv::dev::run(&cli.flags, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkv: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Bad or missing flags are usage errors: a message and exit code 2.
fn cluster_or_exit(flags: &Flags) -> Result<mkv::config::Cluster, String> {
    flags.cluster().map_err(|e| {
        eprintln!("mkv: {e}");
        std::process::exit(2)
    })
}

fn serve(flags: &Flags, cluster: mkv::config::Cluster) -> Result<(), String> {
    let index = Index::open(&cluster.db, true).map_err(|e| e.to_string())?;
    let app = Arc::new(App::new(cluster, index));
    let bind = flags.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let threads = flags.threads();
    let server = Server::start(app.clone(), SocketAddr::new(bind, flags.port), threads)
        .map_err(|e| format!("cannot listen on port {}: {e}", flags.port))?;
    volume_uring::runtime::on_signal(server.shutdown_handle()).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "listening on {} ({}, {threads} threads)",
        server.local_addr(),
        server.driver()
    );
    let _ = out.flush();
    server.wait();
    app.index.close();
    Ok(())
}
