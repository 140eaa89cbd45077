//! A real cluster for a test: volume servers (volume-uring or stock nginx)
//! and the `mkv` binary, on loopback, with their data in a temporary folder.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::Proc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    VolumeUring,
    Nginx,
}

/// Generates `volume_uring_volumes::name` and `nginx_volumes::name` tests
/// calling `name(backend)`, and `postgres_index::name`, the volume-uring
/// one over a PostgreSQL index; the nginx and PostgreSQL ones are of the
/// full tier (testkit's docs). With `needs "WHY":` first, all are, ignored
/// outside it for WHY.
#[macro_export]
macro_rules! on_both_backends {
    (needs $why:literal: $($name:ident),* $(,)?) => {
        mod volume_uring_volumes {
            $(
                #[test]
                #[cfg_attr(not(mkv_all_tests), ignore = $why)]
                fn $name() { super::$name($crate::common::Backend::VolumeUring) }
            )*
        }
        mod nginx_volumes {
            $(
                #[test]
                #[cfg_attr(not(mkv_all_tests), ignore = $why)]
                fn $name() { super::$name($crate::common::Backend::Nginx) }
            )*
        }
        mod postgres_index {
            $(
                #[test]
                #[cfg_attr(not(mkv_all_tests), ignore = $why)]
                fn $name() {
                    $crate::common::over_postgres(|| super::$name($crate::common::Backend::VolumeUring))
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod volume_uring_volumes {
            $( #[test] fn $name() { super::$name($crate::common::Backend::VolumeUring) } )*
        }
        mod nginx_volumes {
            $(
                #[test]
                #[cfg_attr(not(mkv_all_tests), ignore = "needs nginx (MKV_ALL_TESTS=1)")]
                fn $name() { super::$name($crate::common::Backend::Nginx) }
            )*
        }
        mod postgres_index {
            $(
                #[test]
                #[cfg_attr(not(mkv_all_tests), ignore = "needs PostgreSQL (MKV_ALL_TESTS=1)")]
                fn $name() {
                    $crate::common::over_postgres(|| super::$name($crate::common::Backend::VolumeUring))
                }
            )*
        }
    };
}

thread_local! {
    /// Set while a test runs over a PostgreSQL index ([`over_postgres`]).
    static OVER_POSTGRES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `test` with every cluster it starts on this thread indexed in a
/// database of its own on this test process's PostgreSQL server.
pub fn over_postgres(test: impl FnOnce()) {
    OVER_POSTGRES.with(|p| p.set(true));
    test();
    OVER_POSTGRES.with(|p| p.set(false));
}

/// Whether clusters started on this thread are indexed in PostgreSQL.
pub fn is_over_postgres() -> bool {
    OVER_POSTGRES.with(|p| p.get())
}

/// The URL of a new, empty database on this test process's PostgreSQL
/// server (started on first use, stopped when the process ends).
pub fn new_database() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SERVER: std::sync::OnceLock<testkit::postgres::Postgres> = std::sync::OnceLock::new();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let pg = SERVER.get_or_init(testkit::postgres::Postgres::start_for_process);
    let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
    pg.psql(&format!("CREATE DATABASE {name}"));
    pg.url_of(&name)
}

/// The virtualenv's python (`.ci/run` makes `.venv`; or `MKV_PYTHON`),
/// with the S3 clients and `prometheus_client`.
pub fn venv_python() -> PathBuf {
    let path = std::env::var_os("MKV_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: .ci/run makes the virtualenv the tests use",
        path.display()
    );
    path
}

/// The `volume` binary, built alongside this package's tests by
/// `cargo test --workspace`.
pub fn volume_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("volume");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

pub struct Volume {
    pub proc: Proc,
    pub dir: PathBuf,
}

impl Volume {
    pub fn name(&self) -> String {
        self.proc.hostport()
    }
}

pub struct Cluster {
    pub backend: Backend,
    pub volumes: Vec<Volume>,
    pub master: Option<Proc>,
    pub db: PathBuf,
    pub tmp: tempfile::TempDir,
    master_args: Vec<String>,
}

impl Cluster {
    /// `n` volumes and a master with `args` (besides -volumes and -db).
    pub fn start(backend: Backend, n: usize, args: &[&str]) -> Cluster {
        Cluster::start_mixed(&vec![backend; n], args)
    }

    /// One volume per entry of `backends`, and a master.
    pub fn start_mixed(backends: &[Backend], args: &[&str]) -> Cluster {
        let mut c = Cluster::volumes_only(backends, args);
        c.start_master();
        c
    }

    /// The volumes, and no master yet.
    pub fn volumes_only(backends: &[Backend], args: &[&str]) -> Cluster {
        Cluster::volumes_in(tempfile::tempdir().expect("tempdir"), backends, args)
    }

    /// [`Cluster::volumes_only`] in `tmp`, where volume `i` serves
    /// `volume{i}` (made ready beforehand, if the test wants: a mount).
    pub fn volumes_in(tmp: tempfile::TempDir, backends: &[Backend], args: &[&str]) -> Cluster {
        let volumes = backends
            .iter()
            .enumerate()
            .map(|(i, b)| start_volume(*b, tmp.path(), i))
            .collect();
        let db = if is_over_postgres() {
            PathBuf::from(new_database())
        } else {
            tmp.path().join("index")
        };
        let master_args = args.iter().map(|s| s.to_string()).collect();
        Cluster {
            backend: backends[0],
            volumes,
            master: None,
            db,
            tmp,
            master_args,
        }
    }

    /// Runs `mkv` with this cluster's flags and `command`, on `volumes`
    /// (indexes into this cluster's volumes) and `db`.
    pub fn run_tool(
        &self,
        volumes: &[usize],
        db: &Path,
        command: &[&str],
    ) -> (std::process::ExitStatus, String, String) {
        self.run_tool_with_env(volumes, db, command, &[])
    }

    /// `run_tool`, with these environment variables set.
    pub fn run_tool_with_env(
        &self,
        volumes: &[usize],
        db: &Path,
        command: &[&str],
        env: &[(&str, &str)],
    ) -> (std::process::ExitStatus, String, String) {
        let names: Vec<String> = volumes.iter().map(|&i| self.volumes[i].name()).collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mkv"));
        cmd.envs(env.iter().copied());
        cmd.arg("-volumes").arg(names.join(",")).arg("-db").arg(db);
        cmd.args(&self.master_args).args(command);
        let out = cmd.output().expect("run mkv");
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (out.status, text(out.stdout), text(out.stderr))
    }

    /// A master on `volumes` (indexes) and `db`, replacing any running one.
    pub fn start_master_on(&mut self, volumes: &[usize], db: &Path) {
        self.kill_master();
        let names: Vec<String> = volumes.iter().map(|&i| self.volumes[i].name()).collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mkv"));
        cmd.args(["-port", "0", "-bind", "127.0.0.1", "-threads", "2"]);
        cmd.arg("-volumes").arg(names.join(",")).arg("-db").arg(db);
        cmd.args(&self.master_args).arg("server");
        self.master = Some(Proc::start("mkv", cmd, &self.tmp.path().join("logs")));
    }

    pub fn volume_list(&self) -> String {
        self.volumes
            .iter()
            .map(Volume::name)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Another master on this cluster's volumes and index (a shared
    /// index: PostgreSQL), with `extra` flags; the caller keeps it.
    pub fn another_master(&self, extra: &[&str]) -> Proc {
        let mut cmd = self.mkv(&[]);
        cmd.arg("server").args(extra);
        Proc::start("mkv", cmd, &self.tmp.path().join("logs"))
    }

    pub fn start_master(&mut self) {
        let cmd = self.mkv(&["server"]);
        let proc = Proc::start("mkv", cmd, &self.tmp.path().join("logs"));
        self.master = Some(proc);
    }

    /// An `mkv` command with this cluster's -volumes, -db and flags.
    pub fn mkv(&self, command: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mkv"));
        cmd.args(["-port", "0", "-bind", "127.0.0.1", "-threads", "2"]);
        cmd.arg("-volumes")
            .arg(self.volume_list())
            .arg("-db")
            .arg(&self.db);
        cmd.args(&self.master_args).args(command);
        cmd
    }

    pub fn addr(&self) -> SocketAddr {
        self.master.as_ref().expect("master running").addr()
    }

    pub fn url(&self, key: &str) -> String {
        format!("http://{}{key}", self.addr())
    }

    pub fn kill_master(&mut self) {
        if let Some(mut m) = self.master.take() {
            m.kill();
        }
    }

    /// Every file on every volume (nginx's body_temp left out), as
    /// `volume-index:relative/path`.
    pub fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, v) in self.volumes.iter().enumerate() {
            walk(&v.dir, &v.dir, &mut |rel| {
                if !rel.starts_with("body_temp") {
                    out.push(format!("{i}:{rel}"))
                }
            });
        }
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(String)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_dir() {
            walk(root, &e.path(), f);
        } else {
            f(e.path()
                .strip_prefix(root)
                .expect("prefix")
                .display()
                .to_string());
        }
    }
}

pub fn start_volume(backend: Backend, tmp: &Path, i: usize) -> Volume {
    let dir = tmp.join(format!("volume{i}"));
    std::fs::create_dir_all(&dir).expect("volume dir");
    let proc = match backend {
        Backend::VolumeUring => {
            let mut cmd = Command::new(volume_bin());
            cmd.args(["--port", "0", "--bind", "127.0.0.1", "--threads", "1"])
                .arg(&dir);
            Proc::start(&format!("volume{i}"), cmd, &tmp.join("logs"))
        }
        Backend::Nginx => testkit::nginx::start(&dir, &tmp.join(format!("nginx{i}"))),
    };
    Volume { proc, dir }
}

/// Follows a master's 302 to the volume and returns the value.
pub fn fetch(master: SocketAddr, key: &str) -> Option<Vec<u8>> {
    let r = testkit::client::request(master, "GET", key, &[], b"");
    if r.status != 302 {
        return None;
    }
    let location = r.header("location").expect("302 with a Location");
    let (addr, path) = split_url(location);
    let v = testkit::client::request(addr, "GET", &path, &[], b"");
    assert_eq!(
        v.status, 200,
        "the 302 pointed at {location}, which answered {}",
        v.status
    );
    Some(v.body)
}

/// `http://127.0.0.1:3001/sv01/x` → (address, `/sv01/x`).
pub fn split_url(url: &str) -> (SocketAddr, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let slash = rest.find('/').expect("path");
    (
        rest[..slash].parse().expect("address"),
        rest[slash..].to_string(),
    )
}

/// A URL path for `key`, percent-encoding what a URL cannot carry raw.
pub fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds tests/goleveldb-dump with Debian's Go and goleveldb packages.
pub fn build_goleveldb_dumper(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goleveldb-dump/main.go");
    let out = dir.join("goleveldb-dump");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(&src)
        .env("GOPATH", "/usr/share/gocode")
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", dir.join("gocache"))
        .status()
        .expect("`go` is needed: apt-get install -y golang-go golang-github-syndtr-goleveldb-dev");
    assert!(
        status.success(),
        "building the goleveldb reader failed (is golang-github-syndtr-goleveldb-dev installed?)"
    );
    out
}

pub fn goleveldb_dump(dumper: &Path, db: &Path) -> std::collections::BTreeMap<String, String> {
    let out = Command::new(dumper).arg(db).output().unwrap();
    assert!(
        out.status.success(),
        "goleveldb could not read our index: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
