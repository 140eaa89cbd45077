//! `mkv server`: the index opened, the API served until SIGINT or SIGTERM,
//! the index closed once the requests in flight are done.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::config::{Cluster, Flags};
use crate::error::ToolError;
use crate::front::server;
use crate::index::Index;
use crate::state::App;

pub fn run(flags: &Flags, cluster: Cluster) -> Result<(), ToolError> {
    let index = Index::open(&cluster.db, true)?;
    let app = Arc::new(App::new(cluster, index));
    let bind = flags.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let threads = flags.threads();
    let addr = SocketAddr::new(bind, flags.port);
    let server = server::start(app.clone(), addr, threads).map_err(ToolError::io(format!(
        "cannot listen on port {}",
        flags.port
    )))?;
    http1::runtime::on_signal(server.shutdown_handle())
        .map_err(ToolError::io("cannot wait for signals"))?;
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
