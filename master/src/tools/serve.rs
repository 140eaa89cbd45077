//! `mkv server`: the index opened, the API served (and the S3 API alone on
//! `--s3-port`) until SIGINT or SIGTERM, the index closed once the requests
//! in flight are done. The journal thread undoes installs a crash left.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::config::{Cluster, Flags};
use crate::error::ToolError;
use crate::front::server;
use crate::index::Index;
use crate::state::App;
use crate::tools::journal;

pub fn run(flags: &Flags, cluster: Cluster) -> Result<(), ToolError> {
    let s3 = flags.s3().map_err(ToolError::Usage)?;
    let index = Index::open(&cluster.db, true)?;
    let app = Arc::new(App::with_flags(cluster, index, s3, flags));
    let bind = flags.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let threads = flags.threads();
    let servers = start(&app, flags, bind, threads)?;
    journal::spawn(app.clone()).map_err(ToolError::io("cannot start the journal thread"))?;
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
    let _ = out.flush();
    for s in servers {
        s.wait();
    }
    app.index.close();
    Ok(())
}

/// The API's listeners, and the S3 API's own when asked for.
fn start(
    app: &Arc<App>,
    flags: &Flags,
    bind: IpAddr,
    threads: usize,
) -> Result<Vec<http1::Server>, ToolError> {
    let mut servers = Vec::new();
    let ports = [Some((flags.port, false)), flags.s3_port.map(|p| (p, true))];
    for (port, s3_only) in ports.into_iter().flatten() {
        let addr = SocketAddr::new(bind, port);
        let server = server::start(app.clone(), addr, threads, s3_only)
            .map_err(ToolError::io(format!("cannot listen on port {port}")))?;
        servers.push(server);
    }
    Ok(servers)
}
