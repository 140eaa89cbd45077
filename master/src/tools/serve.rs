//! `mkv server`: the index opened, the API served (and the S3 API alone on
//! `--s3-port`, the admin listener on `--admin-port`) until SIGINT or
//! SIGTERM, the index closed once the requests in flight are done. The
//! journal thread undoes installs a crash left; the health thread checks
//! the volumes.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::admin::Admin;
use crate::config::{Cluster, ListenArgs, ServerArgs};
use crate::error::ToolError;
use crate::front::server;
use crate::health::{self, CheckFailed};
use crate::index::Index;
use crate::state::App;
use crate::tools::journal;

pub fn run(args: &ServerArgs, cluster: Cluster) -> Result<(), ToolError> {
    let listen = &args.listen;
    let s3 = listen.s3().map_err(ToolError::Usage)?;
    check_volumes(&cluster)?;
    let index = Index::serve(&cluster.db, cluster.volume_timeout)?;
    let app = Arc::new(App::with_flags(cluster, index, s3, listen));
    let bind = listen.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let servers = start(&app, listen, bind)?;
    for s in servers {
        s.wait();
    }
    app.index.close();
    Ok(())
}

/// Starts the listeners and the threads of a master (`server` and `dev`),
/// and says where it listens.
pub fn start(
    app: &Arc<App>,
    listen: &ListenArgs,
    bind: IpAddr,
) -> Result<Vec<http1::Server>, ToolError> {
    let threads = listen.threads();
    let servers = start_listeners(app, listen, bind, threads)?;
    journal::spawn(app.clone()).map_err(ToolError::io("cannot start the journal thread"))?;
    let (health, index) = (app.health.clone(), app.index.clone());
    let every = (app.cluster.voltimeout, listen.census_every);
    health::spawn(health, index, app.shutdown.clone(), every)
        .map_err(ToolError::io("cannot start the health thread"))?;
    let admin = match listen.admin_port {
        Some(port) => {
            let handler = Arc::new(Admin {
                app: app.clone(),
                listen: servers[0].local_addr().to_string(),
                connections: servers.iter().map(http1::Server::connections).collect(),
                census_every: listen.census_every,
            });
            let addr = SocketAddr::new(bind, port);
            Some(http1::admin::start(addr, "mkv", handler).map_err(ToolError::io("admin port"))?)
        }
        None => None,
    };
    http1::runtime::on_signal(app.shutdown.clone())
        .map_err(ToolError::io("cannot wait for signals"))?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "listening on {} ({}, {threads} threads)",
        servers[0].local_addr(),
        servers[0].driver()
    );
    if let Some(s3) = servers.get(1) {
        let _ = writeln!(out, "s3 listening on {}", s3.local_addr());
    }
    if let Some(admin) = admin {
        let _ = writeln!(
            out,
            "admin listening on {admin} (status page, /metrics, /health, /ready)"
        );
    }
    let _ = out.flush();
    Ok(servers)
}

/// Each of `-volumes` that answers must be a volume server: a master
/// given another master's address would write its keys into that
/// cluster. One that does not answer yet is only reported.
fn check_volumes(cluster: &Cluster) -> Result<(), ToolError> {
    let timeout = cluster.voltimeout.max(std::time::Duration::from_secs(1));
    let results: Vec<_> = std::thread::scope(|s| {
        let checks: Vec<_> = cluster
            .volumes
            .iter()
            .map(|v| s.spawn(move || health::check(v, timeout)))
            .collect();
        checks.into_iter().map(|c| c.join()).collect()
    });
    for (volume, result) in cluster.volumes.iter().zip(results) {
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(CheckFailed::NotAVolume(why))) => {
                return Err(ToolError::Usage(format!("-volumes: {volume} is {why}")));
            }
            Ok(Err(CheckFailed::NoAnswer(why))) => {
                tracing::warn!(volume = %volume, error = %why, "volume does not answer yet");
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// The API's listeners, and the S3 API's own when asked for.
fn start_listeners(
    app: &Arc<App>,
    listen: &ListenArgs,
    bind: IpAddr,
    threads: usize,
) -> Result<Vec<http1::Server>, ToolError> {
    let mut servers = Vec::new();
    let ports = [
        Some((listen.port, false)),
        listen.s3_port.map(|p| (p, true)),
    ];
    for (port, s3_only) in ports.into_iter().flatten() {
        let addr = SocketAddr::new(bind, port);
        let server = server::start(app.clone(), addr, threads, s3_only)
            .map_err(ToolError::io(format!("cannot listen on port {port}")))?;
        servers.push(server);
    }
    Ok(servers)
}
