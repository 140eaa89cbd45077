//! Stock nginx as minikeyvalue's volume server: WebDAV PUT/DELETE with
//! `create_full_put_path`, JSON autoindex, sendfile — the configuration of the
//! original's `volume` script, on loopback, in a temporary folder.

use std::path::Path;
use std::process::Command;

use crate::proc::{free_port, Proc};

/// The configuration, from the template shared with `perf/`.
pub fn config(root: &Path, prefix: &Path, port: u16, workers: usize) -> String {
    include_str!("../nginx-volume.conf")
        .replace("{workers}", &workers.to_string())
        .replace("{prefix}", &prefix.display().to_string())
        .replace("{root}", &root.display().to_string())
        .replace("{port}", &port.to_string())
        // As root, workers would run as nobody and could not write the folder.
        .replace("{user}", if is_root() { "user root;" } else { "" })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Starts nginx serving `root`; waits until it accepts connections. The
/// port was free a moment before nginx binds it, and a server of another
/// test bound to port 0 may take it in between: then this nginx, after
/// retrying, exits, and the port answers for someone else. So the answer
/// is checked to come from this nginx, and another port tried if not.
pub fn start(root: &Path, prefix: &Path) -> Proc {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect(
            "nginx is not installed (apt-get install -y nginx); the compatibility tests need it",
        );
    std::fs::create_dir_all(root).expect("nginx root");
    std::fs::create_dir_all(prefix).expect("nginx prefix");
    let mut why = String::new();
    for _ in 0..5 {
        match try_start(nginx, root, prefix) {
            Ok(proc) => return proc,
            Err(e) => why = e,
        }
    }
    panic!("nginx did not start on any of 5 ports: {why}");
}

/// One try of [`start`] on a fresh port; its nginx is stopped on failure.
fn try_start(nginx: &str, root: &Path, prefix: &Path) -> Result<Proc, String> {
    let port = free_port();
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, config(root, prefix, port, 2)).expect("nginx.conf");
    let mut cmd = Command::new(nginx);
    cmd.arg("-c").arg(&conf).arg("-p").arg(prefix);
    let mut proc = Proc::spawn("nginx", cmd, prefix);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = proc.child.try_wait() {
            return Err(format!("nginx exited ({status})\n{}", proc.logs()));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nginx did not start\n{}",
            proc.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Answering is not enough: make sure it is this nginx that answers.
    std::thread::sleep(std::time::Duration::from_millis(50));
    if let Ok(Some(status)) = proc.child.try_wait() {
        return Err(format!(
            "nginx exited ({status}) after starting\n{}",
            proc.logs()
        ));
    }
    if proc.logs().contains("Address already in use") || !answers_as_nginx(addr) {
        return Err(format!("port {port} was taken\n{}", proc.logs()));
    }
    proc.addr = Some(addr);
    Ok(proc)
}

/// Whether `addr` answers `HEAD /` with `Server: nginx`.
fn answers_as_nginx(addr: std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    if s.write_all(b"HEAD / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut head = Vec::new();
    let _ = s.read_to_end(&mut head);
    String::from_utf8_lossy(&head)
        .to_ascii_lowercase()
        .contains("\r\nserver: nginx")
}
