//! `mkv dev`: a master and three volume servers in one process, on
//! loopback, with everything under one folder — the README's first command.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http1::Timeouts;

use crate::config::{Cluster, DevArgs, Flags};
use crate::error::ToolError;
use crate::front::server;
use crate::index::Index;
use crate::state::App;
use crate::tools::journal;

pub fn run(flags: &Flags, args: &DevArgs) -> Result<(), ToolError> {
    let loopback = flags.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let base = flags.port;
    let (volumes, names) = start_volumes(loopback, base, args)?;
    let cluster = Cluster {
        db: args.dir.join("index"),
        volumes: names.clone(),
        replicas: flags.replicas.min(3),
        subvolumes: flags.subvolumes,
        protect: flags.protect,
        md5sum: flags.md5sum,
        fallback: flags.fallback.clone(),
        voltimeout: flags.voltimeout,
        volume_timeout: flags.volume_timeout,
        verbose: flags.verbose,
    };
    let index = Index::open(&cluster.db, true)?;
    let s3 = flags.s3().map_err(ToolError::Usage)?;
    let app = Arc::new(App::with_flags(cluster, index, s3, flags));
    let addr = SocketAddr::new(loopback, base);
    let master = server::start(app.clone(), addr, flags.threads(), false)
        .map_err(ToolError::io(format!("master on port {base}")))?;
    journal::spawn(app.clone()).map_err(ToolError::io("cannot start the journal thread"))?;
    let shutdown = master.shutdown_handle();
    let volume_shutdowns: Vec<_> = volumes.iter().map(|v| v.shutdown_handle()).collect();
    http1::runtime::on_signal(shutdown.clone())
        .map_err(ToolError::io("cannot wait for signals"))?;
    println!(
        "listening on {} ({}, {} threads)",
        master.local_addr(),
        master.driver(),
        flags.threads()
    );
    println!(
        "volumes {} with data under {}",
        names.join(","),
        args.dir.display()
    );
    let url = format!("localhost:{}", master.local_addr().port());
    println!("try:  curl -L -X PUT -d bigswag {url}/wehave && curl -L {url}/wehave");
    master.wait();
    // The master has drained; now the volumes it was writing to.
    for s in volume_shutdowns {
        s.trigger();
    }
    for v in volumes {
        v.wait();
    }
    app.index.close();
    Ok(())
}

/// Three volume servers on the ports after `base`, with their data under
/// the dev folder; and their names for `-volumes`.
fn start_volumes(
    loopback: IpAddr,
    base: u16,
    args: &DevArgs,
) -> Result<(Vec<volume_uring::Server>, Vec<String>), ToolError> {
    let mut volumes = Vec::new();
    let mut names = Vec::new();
    for i in 1..=3u16 {
        let port = base.checked_add(i).ok_or_else(|| {
            ToolError::Usage("--port is too high for three volumes after it".into())
        })?;
        let dir = args.dir.join(format!("volume{i}"));
        std::fs::create_dir_all(&dir)
            .map_err(ToolError::io(format!("cannot create {}", dir.display())))?;
        let config = volume_uring::Config {
            dir,
            addr: SocketAddr::new(loopback, port),
            threads: 1,
            fsync: true,
            timeouts: Timeouts::default(),
            grace: Duration::from_secs(30),
            max_connections: 0,
        };
        let volume = volume_uring::Server::start(&config)
            .map_err(ToolError::io(format!("volume {i} on port {port}")))?;
        names.push(format!("localhost:{port}"));
        volumes.push(volume);
    }
    Ok((volumes, names))
}
