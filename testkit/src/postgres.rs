//! A real PostgreSQL server for tests: Debian's binaries, a cluster made by
//! `initdb` in a temporary folder, started by `pg_ctl` on a free loopback
//! port with trust authentication, stopped (immediately) when dropped. As
//! root, the binaries run as the `postgres` user (initdb refuses root).
//! A streaming standby of a server is made with `pg_basebackup`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::free_port;

pub struct Postgres {
    /// The folder holding the data folder, the sockets and the log.
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    stopped: bool,
}

/// Where Debian keeps the server's programs (the newest version there),
/// or `pg_ctl`'s folder on the PATH.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists());
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .pop()
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// Whether this process is root (asked once).
fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

/// A command running one of the server's programs (as `postgres` when root).
fn server_program(path: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

impl Postgres {
    /// A new, empty server (fsync off: tests do not pull the power).
    pub fn start() -> Postgres {
        Postgres::start_with(&["-c", "fsync=off", "-c", "synchronous_commit=on"])
    }

    /// A new server with `settings` (`-c name=value` pairs) on its command line.
    pub fn start_with(settings: &[&str]) -> Postgres {
        let mut pg = Postgres::new_dir();
        pg.run(
            "initdb",
            &[
                "-D",
                pg.data().to_str().unwrap(),
                "-U",
                "mkv",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // Room for a standby of this one.
        std::fs::write(
            pg.data().join("postgresql.auto.conf"),
            "wal_level = replica\nmax_wal_senders = 4\nwal_keep_size = '256MB'\n",
        )
        .unwrap();
        pg.chown();
        pg.restart(settings);
        pg
    }

    /// A streaming standby of `primary`, started (hot: it answers reads).
    pub fn standby_of(primary: &Postgres, settings: &[&str]) -> Postgres {
        let mut pg = Postgres::new_dir();
        pg.run(
            "pg_basebackup",
            &[
                "-D",
                pg.data().to_str().unwrap(),
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "mkv",
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        pg.chown();
        pg.restart(settings);
        pg
    }

    fn new_dir() -> Postgres {
        let dir = tempfile::Builder::new().prefix("mkv-pg").tempdir().unwrap();
        // The postgres user must reach it (and its sockets).
        set_mode(dir.path(), 0o777);
        Postgres {
            dir,
            port: free_port(),
            bin: bin_dir(),
            stopped: true,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn chown(&self) {
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(self.dir.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "chown of the PostgreSQL folder failed");
        }
    }

    /// Runs one of the server's programs (as `postgres` when root).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut cmd = server_program(&path);
        cmd.args(args).current_dir(self.dir.path());
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (is PostgreSQL installed?)", path.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        out
    }

    fn pg_start(&self, settings: &[&str]) {
        let mut opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        for s in settings {
            opts.push(' ');
            opts.push_str(s);
        }
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                self.log_path().to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// `postgres://` URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// `postgres://` URL of the database `name` on this server.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://mkv@127.0.0.1:{}/{name}", self.port)
    }

    /// A server for a whole test process, kept in a static (which is never
    /// dropped): a watcher stops it, and removes its folder, once the
    /// process is gone.
    pub fn start_for_process() -> Postgres {
        let pg = Postgres::start();
        let data = pg.data();
        let ctl = pg.bin.join("pg_ctl");
        let as_user = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {as_user}'{ctl}' -D '{data}' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            ctl = ctl.display(),
            data = data.display(),
            dir = pg.dir.path().display(),
        );
        // It outlives this process, by design: nobody waits for it.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the PostgreSQL watcher");
        pg
    }

    /// Runs SQL with psql; its output (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(),
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server (fast: sessions are ended, the data kept).
    pub fn stop(&mut self) {
        self.ctl(&["-m", "fast", "stop"]);
        self.stopped = true;
    }

    /// Kills the server as a crash would (`immediate`).
    pub fn crash(&mut self) {
        self.ctl(&["-m", "immediate", "stop"]);
        self.stopped = true;
    }

    /// Starts a stopped server again, on the same port.
    pub fn restart(&mut self, settings: &[&str]) {
        self.pg_start(settings);
        self.stopped = false;
    }

    /// Promotes a standby to a primary; waits until it takes writes.
    pub fn promote(&self) {
        self.ctl(&["promote"]);
        let ok = crate::eventually(Duration::from_secs(30), || {
            self.psql("SELECT pg_is_in_recovery()") == "f"
        });
        assert!(ok, "the standby was not promoted:\n{}", self.log());
    }

    /// Stops every process of the server (SIGSTOP) until the guard is
    /// dropped: a database that takes connections and never answers.
    pub fn freeze(&self) -> Frozen {
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().map(str::to_string))
            .expect("postmaster.pid");
        let children = Command::new("pgrep")
            .args(["-P", &pid])
            .output()
            .expect("pgrep");
        let mut pids: Vec<String> = String::from_utf8_lossy(&children.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        pids.push(pid);
        signal("STOP", &pids);
        Frozen { pids }
    }

    fn ctl(&self, args: &[&str]) {
        let data = self.data();
        let mut all = vec!["-D", data.to_str().unwrap(), "-w", "-t", "60"];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if !self.stopped {
            let data = self.data();
            let mut cmd = server_program(&self.bin.join("pg_ctl"));
            let args = [
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ];
            let _ = cmd.args(args).output();
        }
    }
}

/// The processes [`Postgres::freeze`] stopped; continued when dropped.
pub struct Frozen {
    pids: Vec<String>,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("CONT", &self.pids);
    }
}

fn signal(sig: &str, pids: &[String]) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids)
        .status();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}
