//! Test support shared by the integration tests: real processes on loopback
//! (`proc`), hostile requests both servers must withstand (`hostile`), a
//! blocking HTTP/1.1 client that sends exact bytes (`client`), stock nginx
//! configured as minikeyvalue's volume server (`nginx`), a real PostgreSQL
//! server in a temporary folder (`postgres`), and a tmpfs for tests
//! that fill a disk (`mount`), and independent references (a CRC32, an HTTP
//! date) to check answers against (`reference`).
//!
//! Tests in tiers: plain `cargo test` runs the unit tests and every
//! integration test that needs only this workspace's binaries. The tests
//! that need more — stock nginx, Go with goleveldb, the Python S3 clients
//! and `prometheus_client` (the virtualenv `.ci/run` makes), rclone,
//! Chromium, or root (a tmpfs mount) — carry
//! `#[cfg_attr(not(mkv_all_tests), ignore = "needs ...")]`, so cargo lists
//! them as ignored with what they need. `MKV_ALL_TESTS=1` at build time
//! (`.ci/run` sets it; `tiers_build.rs`, the build script of the crates with
//! such tests, turns it into the `mkv_all_tests` cfg) runs them all;
//! `cargo test -- --include-ignored` does too, for one run. The cfg is a
//! build setting: switching it rebuilds master and volume-uring.

pub mod client;
pub mod hostile;
pub mod mount;
pub mod nginx;
pub mod postgres;
pub mod proc;
pub mod reference;

pub use client::{Client, Response};
pub use proc::{free_port, Proc};

use std::time::{Duration, Instant};

/// Polls `cond` (every 100 ms) until it holds or `within` passes; whether
/// it held.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}
