//! `mkv dev`: a master and three volume servers in one process, on
//! loopback, with everything under one folder — the README's first command.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http1::Timeouts;

use crate::config::{Cluster, DevArgs, ListenArgs, S3Config};
use crate::error::ToolError;
use crate::index::Index;
use crate::state::App;
use crate::tools::serve;

pub fn run(args: &DevArgs, verbose: bool) -> Result<(), ToolError> {
    if !(1..=3).contains(&args.replicas) {
        return Err(ToolError::Usage(
            "--replicas: 1 to 3 for three volumes".into(),
        ));
    }
    let loopback = args.bind;
    let (volumes, names) = start_volumes(loopback, args.port, args)?;
    let cluster = Cluster {
        db: args.dir.join("index"),
        volumes: names.clone(),
        replicas: args.replicas,
        subvolumes: 10,
        protect: args.values.protect,
        md5sum: args.values.md5sum,
        fallback: args.values.fallback.clone(),
        voltimeout: Duration::from_secs(1),
        volume_timeout: Duration::from_secs(10),
        verbose,
    };
    let index = Index::serve(&cluster.db, cluster.volume_timeout)?;
    let listen = listen_args(args);
    let app = Arc::new(App::with_flags(
        cluster,
        index,
        S3Config::default(),
        &listen,
    ));
    let masters = serve::start(&app, &listen, loopback)?;
    let volume_shutdowns: Vec<_> = volumes.iter().map(|v| v.shutdown_handle()).collect();
    println!(
        "volumes {} with data under {}",
        names.join(","),
        args.dir.display()
    );
    let url = format!("localhost:{}", masters[0].local_addr().port());
    println!("try:  curl -L -X PUT -d bigswag {url}/wehave && curl -L {url}/wehave");
    for master in masters {
        master.wait();
    }
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

/// The master's listener settings: the defaults, on `--port` and `--bind`.
fn listen_args(args: &DevArgs) -> ListenArgs {
    ListenArgs {
        port: args.port,
        bind: Some(args.bind),
        idle_timeout: Duration::from_secs(75),
        max_connections: 0,
        threads: None,
        s3_port: None,
        s3_credentials: None,
        admin_port: args.admin_port,
        census_every: Duration::from_secs(60),
    }
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
            admin: None,
            ready_min_free: 0,
            scrub_every: None,
        };
        let volume = volume_uring::Server::start(&config)
            .map_err(ToolError::io(format!("volume {i} on port {port}")))?;
        names.push(format!("localhost:{port}"));
        volumes.push(volume);
    }
    Ok((volumes, names))
}
