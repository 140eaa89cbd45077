//! A child process under test: started with its output in log files, waited
//! on for its "listening on ADDR" line, killed on drop, and its logs printed
//! when the test fails.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Proc {
    pub name: String,
    pub child: Child,
    /// The address from the "listening on ADDR" line, if waited for.
    pub addr: Option<SocketAddr>,
    /// The rest of that line (driver, threads, ...).
    pub banner: String,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
}

/// A port that was free a moment ago (for programs that cannot take port
/// 0), never the same twice in this process: tests run in parallel, and two
/// of them must not be handed one port before either binds it.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = l.local_addr().expect("local addr").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr going to files in `log_dir`.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Proc {
        std::fs::create_dir_all(log_dir).expect("log dir");
        let stdout_log = log_dir.join(format!("{name}.stdout"));
        let stderr_log = log_dir.join(format!("{name}.stderr"));
        cmd.stdout(File::create(&stdout_log).expect("stdout log"));
        cmd.stderr(File::create(&stderr_log).expect("stderr log"));
        cmd.stdin(Stdio::null());
        // Its own process group, so that killing it kills its children
        // (nginx's workers) too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.into(),
            child,
            addr: None,
            banner: String::new(),
            stdout_log,
            stderr_log,
        }
    }

    /// Spawns and waits (up to 30 s) for `listening on ADDR ...` on stdout.
    pub fn start(name: &str, cmd: Command, log_dir: &Path) -> Proc {
        let mut p = Proc::spawn(name, cmd, log_dir);
        let line = p.wait_for_line("listening on ", Duration::from_secs(30));
        let rest = line.trim_start_matches("listening on ");
        let (addr, banner) = rest.split_once(' ').unwrap_or((rest, ""));
        p.addr = Some(
            addr.parse()
                .unwrap_or_else(|e| panic!("{name}: bad address in {line:?}: {e}")),
        );
        p.banner = banner.to_string();
        p
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("process has no address")
    }

    /// `host:port` for URLs and `--volumes`.
    pub fn hostport(&self) -> String {
        self.addr().to_string()
    }

    /// Waits for a stdout line starting with `prefix`; panics on timeout or exit.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.stdout().lines().find(|l| l.starts_with(prefix)) {
                return line.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before printing {prefix:?}\n{}",
                    self.name,
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not print {prefix:?} in time\n{}",
                    self.name,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_log).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        format!(
            "--- {} stdout ---\n{}--- {} stderr ---\n{}",
            self.name,
            self.stdout(),
            self.name,
            self.stderr()
        )
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                panic!("{} did not exit in time\n{}", self.name, self.logs());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL to the process and everything it started.
    /// Sends `sig` to the process's whole group (nginx's workers too).
    pub fn signal_group(&self, sig: &str) {
        let status = Command::new("kill")
            .args([
                format!("-{sig}"),
                "--".to_string(),
                format!("-{}", self.child.id()),
            ])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} of the group failed");
    }

    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// The `mkv` at `bin` on loopback, a port of its choosing, over `volumes`
/// (`host:port,...`) and the index `db`; the caller adds its flags and the
/// command (`server`, `rebuild`, ...).
pub fn mkv_command(bin: impl AsRef<std::ffi::OsStr>, volumes: &str, db: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "-port",
        "0",
        "-bind",
        "127.0.0.1",
        "-volumes",
        volumes,
        "-db",
    ]);
    cmd.arg(db);
    cmd
}
