//! The command line, as the original's: `mkv [flags] server|rebuild|rebalance`
//! with Go-style flags (`-volumes a,b -db /tmp/db`, `-md5sum=false`), so its
//! README commands run unchanged; `--flag` spellings work too. Plus `mkv dev`.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use http1::duration;

#[derive(Parser, Debug)]
#[command(
    name = "mkv",
    version,
    about = "minikeyvalue master: a distributed key-value store for big values"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub flags: Flags,
}

#[derive(Args, Debug, Clone)]
pub struct Flags {
    /// Port for the server to listen on.
    #[arg(long, default_value_t = 3000, global = true)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, global = true)]
    pub bind: Option<IpAddr>,
    /// Path of the LevelDB index.
    #[arg(long, global = true)]
    pub db: Option<PathBuf>,
    /// Volume servers, comma separated (host:port,host:port,...).
    #[arg(long, global = true)]
    pub volumes: Option<String>,
    /// How many copies of each value.
    #[arg(long, default_value_t = 3, global = true)]
    pub replicas: usize,
    /// Subvolumes (disks) per volume server.
    #[arg(long, default_value_t = 10, global = true)]
    pub subvolumes: u32,
    /// DELETE needs an UNLINK first.
    #[arg(long, global = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true")]
    pub protect: bool,
    /// Keep the md5 of each value in the index (Content-Md5).
    #[arg(long, global = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    pub md5sum: bool,
    /// Redirect missing keys to this server.
    #[arg(long, global = true)]
    pub fallback: Option<String>,
    /// A volume that does not answer a HEAD in this time counts as down (Go duration).
    #[arg(long, global = true, default_value = "1s", value_parser = duration::parse)]
    pub voltimeout: Duration,
    /// A PUT, GET or DELETE to a volume fails when the volume makes no
    /// progress (accepts no bytes, sends none, does not answer) for this
    /// long (Go duration); after a body, the wait for the answer grows by
    /// a second per 32 MiB sent, for the volume's fsync.
    #[arg(long, global = true, default_value = "10s", value_parser = duration::parse)]
    pub volume_timeout: Duration,
    /// Client connections that send nothing for this long are closed, the
    /// first request included (Go duration).
    #[arg(long, global = true, default_value = "75s", value_parser = duration::parse)]
    pub idle_timeout: Duration,
    /// Client connections open at once on each listener; past it a new
    /// one gets a 503 (default: half the process's descriptor limit).
    #[arg(long, global = true, default_value_t = 0)]
    pub max_connections: usize,
    /// Log each request.
    #[arg(short = 'v', long = "v", global = true, action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true")]
    pub verbose: bool,
    /// Runtime threads of the server (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Also serve the S3 API alone on this port (every request is S3).
    #[arg(long, global = true)]
    pub s3_port: Option<u16>,
    /// Access keys and secrets, one `KEY SECRET` pair a line: S3 requests
    /// must then be signed by one of them (SigV4).
    #[arg(long, global = true)]
    pub s3_credentials: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API.
    Server,
    /// Recreate the index from what the volumes hold.
    Rebuild(ToolArgs),
    /// Move values to the volumes that placement now names.
    Rebalance(RebalanceArgs),
    /// A master and three volume servers on loopback, for trying it out.
    Dev(DevArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ToolArgs {
    /// Requests to the volumes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

#[derive(Args, Debug, Clone)]
pub struct RebalanceArgs {
    #[command(flatten)]
    pub tool: ToolArgs,
    /// Print what would move, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DevArgs {
    /// Folder for the index and the volumes' data.
    #[arg(long, default_value = "./mkv-data")]
    pub dir: PathBuf,
}

/// Flags every command that touches a cluster needs, checked.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub db: PathBuf,
    pub volumes: Vec<String>,
    pub replicas: usize,
    pub subvolumes: u32,
    pub protect: bool,
    pub md5sum: bool,
    pub fallback: Option<String>,
    pub voltimeout: Duration,
    pub volume_timeout: Duration,
    pub verbose: bool,
}

const LONG_FLAGS: &[&str] = &[
    "port",
    "bind",
    "db",
    "volumes",
    "replicas",
    "subvolumes",
    "protect",
    "md5sum",
    "fallback",
    "voltimeout",
    "volume-timeout",
    "idle-timeout",
    "max-connections",
    "threads",
    "dir",
    "concurrency",
    "dry-run",
    "v",
    "s3-port",
    "s3-credentials",
];

/// Go's flag package takes `-name`; clap wants `--name`. Rewrites the
/// single-dash spelling of our long flags (not `-v`, a short flag already).
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut rest_literal = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || rest_literal {
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_literal = true;
        }
        let single = text.starts_with('-') && !text.starts_with("--") && text.len() > 2;
        let name = text.trim_start_matches('-').split('=').next().unwrap_or("");
        if single && LONG_FLAGS.contains(&name) {
            out.push(format!("-{text}").into());
        } else {
            out.push(arg);
        }
    }
    out
}

/// The S3 API's settings.
#[derive(Default)]
pub struct S3Config {
    /// With credentials, S3 requests must be signed by one of them.
    pub credentials: Option<crate::s3::auth::Credentials>,
}

impl Flags {
    /// The S3 API's settings: the credentials file read, if one is given.
    pub fn s3(&self) -> Result<S3Config, String> {
        let credentials = match &self.s3_credentials {
            Some(path) => Some(
                crate::s3::auth::Credentials::load(path)
                    .map_err(|e| format!("--s3-credentials {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(S3Config { credentials })
    }

    /// Checks the flags a cluster command needs; the error is for the user.
    pub fn cluster(&self) -> Result<Cluster, String> {
        let db = self
            .db
            .clone()
            .ok_or("-db is required: the path of the LevelDB index")?;
        let list = self
            .volumes
            .as_deref()
            .ok_or("-volumes is required: volume servers, comma separated")?;
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
        if self.replicas == 0 || self.subvolumes == 0 {
            return Err("-replicas and -subvolumes must be at least 1".into());
        }
        if volumes.len() < self.replicas {
            return Err(format!(
                "{} volume(s) cannot hold {} replicas: give at least as many volumes as -replicas",
                volumes.len(),
                self.replicas
            ));
        }
        Ok(Cluster {
            db,
            volumes,
            replicas: self.replicas,
            subvolumes: self.subvolumes,
            protect: self.protect,
            md5sum: self.md5sum,
            fallback: self.fallback.clone(),
            voltimeout: self.voltimeout,
            volume_timeout: self.volume_timeout,
            verbose: self.verbose,
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(normalize_args(args.iter().map(OsString::from)))
    }

    #[test]
    fn originals_readme_command() {
        let cli = parse(&[
            "mkv",
            "-volumes",
            "localhost:3001,localhost:3002",
            "-db",
            "/tmp/indexdb/",
            "server",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Server));
        let c = cli.flags.cluster().unwrap_err();
        assert!(c.contains("2 volume(s) cannot hold 3 replicas"), "{c}");
        let cli = parse(&[
            "mkv",
            "-volumes=a:1,b:2,c:3",
            "-db=/x",
            "-replicas",
            "2",
            "-md5sum=false",
            "-protect",
            "-v",
            "server",
        ])
        .unwrap();
        let c = cli.flags.cluster().unwrap();
        assert_eq!(c.volumes, ["a:1", "b:2", "c:3"]);
        assert_eq!(
            (c.replicas, c.md5sum, c.protect, c.verbose),
            (2, false, true, true)
        );
        assert_eq!(c.voltimeout, Duration::from_secs(1));
    }

    #[test]
    fn double_dash_and_flags_after_the_command() {
        let cli = parse(&[
            "mkv",
            "server",
            "--volumes",
            "a:1",
            "--db",
            "/x",
            "--replicas=1",
            "--voltimeout",
            "250ms",
        ])
        .unwrap();
        let c = cli.flags.cluster().unwrap();
        assert_eq!((c.replicas, c.voltimeout), (1, Duration::from_millis(250)));
        assert_eq!(cli.flags.port, 3000);
    }

    #[test]
    fn clear_errors() {
        assert!(
            parse(&["mkv", "-db", "/x"]).is_err(),
            "a command is required"
        );
        assert!(parse(&["mkv", "-port", "notanumber", "server"]).is_err());
        assert!(parse(&["mkv", "-voltimeout", "5", "server"]).is_err());
        let no_db = parse(&["mkv", "-volumes", "a:1", "server"])
            .unwrap()
            .flags
            .cluster()
            .unwrap_err();
        assert!(no_db.contains("-db is required"));
        let dup = parse(&[
            "mkv",
            "-volumes",
            "a:1,a:1",
            "-db",
            "x",
            "-replicas",
            "1",
            "server",
        ])
        .unwrap();
        assert!(dup.flags.cluster().unwrap_err().contains("listed twice"));
        let empty = parse(&[
            "mkv",
            "-volumes",
            "a:1,",
            "-db",
            "x",
            "-replicas",
            "1",
            "server",
        ])
        .unwrap();
        assert!(empty.flags.cluster().is_err());
    }
}
