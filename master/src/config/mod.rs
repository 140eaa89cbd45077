//! The command line, as the original's: `mkv [flags] server|rebuild|rebalance`
//! with Go-style flags (`-volumes a,b -db /tmp/db`, `-md5sum=false`), so its
//! README commands run unchanged; `--flag` spellings work too. Plus `mkv
//! verify` and `mkv dev`.
//!
//! Each command takes the flags that apply to it (`args::normalize` moves
//! flags given before the command after it). The original had one flag set
//! for every command, so the tools also take the server's flags, hidden
//! from their help and ignored: a script that passes the same flags to
//! `server` and `rebuild` keeps working.

pub mod args;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use http1::duration;
pub use mkv_s3::Config as S3Config;
pub use mkv_store::cluster::Cluster;

pub use args::normalize;

#[derive(Parser, Debug)]
#[command(
    name = "mkv",
    version,
    about = "minikeyvalue master: a distributed key-value store for big values",
    after_help = "Flags may come before the command, as in the original: mkv -volumes localhost:3001,localhost:3002,localhost:3003 -db /tmp/indexdb/ server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// Log each request (method, key, status, bytes, milliseconds).
    #[arg(short = 'v', long = "v", global = true, action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true")]
    pub verbose: bool,
    /// Log lines as text or as one JSON object each.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API (and S3).
    Server(ServerArgs),
    /// Recreate the index from what the volumes hold (master stopped).
    Rebuild(ToolArgs),
    /// Move values to the volumes that placement now names (master stopped).
    Rebalance(RebalanceArgs),
    /// Check every replica and every file of the cluster; --repair fixes
    /// what it can (master stopped).
    Verify(VerifyArgs),
    /// Copy an index to another, LevelDB or PostgreSQL, either way (every
    /// master of both stopped).
    Migrate(MigrateArgs),
    /// A master and three volume servers on loopback, for trying it out.
    Dev(DevArgs),
}

#[derive(Args, Debug, Clone)]
pub struct MigrateArgs {
    /// The index to copy: a LevelDB folder or a postgres:// URL.
    #[arg(long, required = true)]
    pub from: PathBuf,
    /// The index to copy it into (empty, or new): a LevelDB folder or a
    /// postgres:// URL.
    #[arg(long, required = true)]
    pub to: PathBuf,
}

/// Which cluster: the index and the volumes.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// The index: a LevelDB folder, or a PostgreSQL database
    /// (postgres://user@host:port/db; several hosts, comma separated, with
    /// target_session_attrs=read-write, follow a failover).
    #[arg(long, required = true)]
    pub db: Option<PathBuf>,
    /// Volume servers, comma separated (host:port,host:port,...).
    #[arg(long, required = true)]
    pub volumes: Option<String>,
    /// How many copies of each value.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Subvolumes (disks) per volume server.
    #[arg(long, default_value_t = 10)]
    pub subvolumes: u32,
    /// A volume that does not answer a HEAD in this time counts as down (Go duration).
    #[arg(long, default_value = "1s", value_parser = duration::parse)]
    pub voltimeout: Duration,
    /// A PUT, GET or DELETE to a volume fails when the volume makes no
    /// progress (accepts no bytes, sends none, does not answer) for this
    /// long (Go duration); after a body, the wait for the answer grows by
    /// a second per 32 MiB sent, for the volume's fsync.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub volume_timeout: Duration,
}

/// How the server treats values.
#[derive(Args, Debug, Clone)]
pub struct ValueArgs {
    /// DELETE needs an UNLINK first.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true")]
    pub protect: bool,
    /// Keep the md5 of each value in the index (Content-Md5).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    pub md5sum: bool,
    /// Redirect missing keys to this server.
    #[arg(long)]
    pub fallback: Option<String>,
}

/// The server's listeners.
#[derive(Args, Debug, Clone)]
pub struct ListenArgs {
    /// Port for the server to listen on.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Address to listen on (default: all).
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// Client connections that send nothing for this long are closed, the
    /// first request included (Go duration).
    #[arg(long, default_value = "75s", value_parser = duration::parse)]
    pub idle_timeout: Duration,
    /// Client connections open at once on each listener; past it a new
    /// one gets a 503 (default: half the process's descriptor limit).
    #[arg(long, default_value_t = 0)]
    pub max_connections: usize,
    /// Runtime threads of the server (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also serve the S3 API alone on this port (every request is S3).
    #[arg(long)]
    pub s3_port: Option<u16>,
    /// Access keys and secrets, one `KEY SECRET` pair a line: S3 requests
    /// must then be signed by one of them (SigV4).
    #[arg(long)]
    pub s3_credentials: Option<PathBuf>,
    /// Serve the status page, /metrics, /health and /ready on this port.
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// How often the index is counted for the status page and metrics (Go
    /// duration).
    #[arg(long, default_value = "1m", value_parser = duration::parse)]
    pub census_every: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub values: ValueArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
}

/// The server's flags, taken by the tools and ignored (see the module doc).
#[derive(Args, Debug, Clone, Default)]
pub struct IgnoredServerFlags {
    #[arg(long, hide = true)]
    port: Option<u16>,
    #[arg(long, hide = true)]
    bind: Option<IpAddr>,
    #[arg(long, hide = true)]
    threads: Option<usize>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    protect: Option<bool>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    md5sum: Option<bool>,
    #[arg(long, hide = true)]
    fallback: Option<String>,
    #[arg(long, hide = true)]
    idle_timeout: Option<String>,
    #[arg(long, hide = true)]
    max_connections: Option<usize>,
    #[arg(long, hide = true)]
    s3_port: Option<u16>,
    #[arg(long, hide = true)]
    s3_credentials: Option<PathBuf>,
    #[arg(long, hide = true)]
    admin_port: Option<u16>,
    #[arg(long, hide = true)]
    census_every: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ToolArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Requests to the volumes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    #[command(flatten)]
    pub ignored: IgnoredServerFlags,
}

#[derive(Args, Debug, Clone)]
pub struct RebalanceArgs {
    #[command(flatten)]
    pub tool: ToolArgs,
    /// Print what would move (keys and bytes), change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub tool: ToolArgs,
    /// Copy missing or damaged replicas from a good one, remove orphan
    /// files and leftover temporary files older than --grace.
    #[arg(long)]
    pub repair: bool,
    /// Files with no record, and temporary files, younger than this are
    /// left alone: a write may be in flight (Go duration).
    #[arg(long, default_value = "1h", value_parser = duration::parse)]
    pub grace: Duration,
    /// Check presence and sizes only; do not re-read the bytes.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DevArgs {
    /// Folder for the index and the volumes' data.
    #[arg(long, default_value = "./mkv-data")]
    pub dir: PathBuf,
    /// The master's port; the three volumes take the next three
    /// (3001-3003 by default).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Serve the status page, /metrics, /health and /ready on this port.
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// How many copies of each value (1 to 3).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    #[command(flatten)]
    pub values: ValueArgs,
}

impl ListenArgs {
    /// The S3 API's settings: the credentials file read, if one is given.
    pub fn s3(&self) -> Result<S3Config, String> {
        let credentials = match &self.s3_credentials {
            Some(path) => Some(
                mkv_s3::auth::Credentials::load(path)
                    .map_err(|e| format!("--s3-credentials {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(S3Config { credentials })
    }

    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl ClusterArgs {
    /// Checks the flags; the error is for the user. `values` are the
    /// server's (the tools use the defaults).
    pub fn cluster(&self, values: Option<&ValueArgs>, verbose: bool) -> Result<Cluster, String> {
        let db = self
            .db
            .clone()
            .ok_or("-db is required: the LevelDB index's folder, or a postgres:// URL")?;
        let list = self
            .volumes
            .as_deref()
            .ok_or("-volumes is required: volume servers, comma separated")?;
        let volumes = check_volumes(list, self.replicas, self.subvolumes)?;
        Ok(Cluster {
            db,
            volumes,
            replicas: self.replicas,
            subvolumes: self.subvolumes,
            protect: values.is_some_and(|v| v.protect),
            md5sum: values.is_none_or(|v| v.md5sum),
            fallback: values.and_then(|v| v.fallback.clone()),
            voltimeout: self.voltimeout,
            volume_timeout: self.volume_timeout,
            verbose,
        })
    }
}

fn check_volumes(list: &str, replicas: usize, subvolumes: u32) -> Result<Vec<String>, String> {
    let volumes: Vec<String> = list.split(',').map(str::to_string).collect();
    if let Some(bad) = volumes
        .iter()
        .find(|v| v.is_empty() || v.contains('/') || v.contains(char::is_whitespace))
    {
        return Err(format!("-volumes: {bad:?} is not a host:port"));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = volumes.iter().find(|v| !seen.insert(v.as_str())) {
        return Err(format!("-volumes: {dup} is listed twice"));
    }
    if replicas == 0 || subvolumes == 0 {
        return Err("-replicas and -subvolumes must be at least 1".into());
    }
    if volumes.len() < replicas {
        return Err(format!(
            "{} volume(s) cannot hold {replicas} replicas: give at least as many volumes as -replicas",
            volumes.len(),
        ));
    }
    Ok(volumes)
}
