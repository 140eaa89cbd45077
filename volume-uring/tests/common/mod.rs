//! Starting the real `volume` binary for a test, on either driver.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::Proc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    IoUring,
    Epoll,
}

/// Generates `io_uring::name` and `epoll::name` tests calling `name(driver)`;
/// with `needs "WHY":` first, of the full tier (testkit's docs), ignored
/// outside it for WHY.
#[macro_export]
macro_rules! on_both_drivers {
    (needs $why:literal: $($name:ident),* $(,)?) => {
        mod io_uring {
            $(
                #[test]
                #[cfg_attr(not(mkv_all_tests), ignore = $why)]
                fn $name() { super::$name($crate::common::Driver::IoUring) }
            )*
        }
        mod epoll {
            $(
                #[test]
                #[cfg_attr(not(mkv_all_tests), ignore = $why)]
                fn $name() { super::$name($crate::common::Driver::Epoll) }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod io_uring {
            $( #[test] fn $name() { super::$name($crate::common::Driver::IoUring) } )*
        }
        mod epoll {
            $( #[test] fn $name() { super::$name($crate::common::Driver::Epoll) } )*
        }
    };
}

pub struct Volume {
    pub proc: Proc,
    pub dir: PathBuf,
    pub tmp: tempfile::TempDir,
}

impl Volume {
    pub fn start(driver: Driver, args: &[&str]) -> Volume {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        Volume::start_at(tmp, dir, driver, args)
    }

    /// Starts on an existing folder, keeping `tmp` alive with it.
    pub fn start_at(tmp: tempfile::TempDir, dir: PathBuf, driver: Driver, args: &[&str]) -> Volume {
        let proc = spawn(&dir, tmp.path(), driver, args);
        Volume { proc, dir, tmp }
    }

    pub fn addr(&self) -> SocketAddr {
        self.proc.addr()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Every name under the data folder, hidden ones included, sorted.
    pub fn all_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.dir, &self.dir, &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        if e.file_type().expect("type").is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).expect("prefix").display().to_string());
        }
    }
}

pub fn spawn(dir: &Path, log_dir: &Path, driver: Driver, args: &[&str]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_volume"));
    cmd.args(["--port", "0", "--bind", "127.0.0.1", "--threads", "2"])
        .args(args)
        .arg(dir);
    if driver == Driver::Epoll {
        cmd.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
    }
    let proc = Proc::start("volume", cmd, log_dir);
    let expected = match driver {
        Driver::IoUring => "(io_uring,",
        Driver::Epoll => "(epoll,",
    };
    assert!(
        proc.banner.starts_with(expected),
        "wanted {driver:?}, got {:?}",
        proc.banner
    );
    proc
}

/// Deterministic pseudo-random bytes (xorshift), so big values need no storage.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
