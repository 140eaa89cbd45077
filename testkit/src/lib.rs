//! Test support shared by the integration tests: real processes on loopback
//! (`proc`), hostile requests both servers must withstand (`hostile`), a blocking HTTP/1.1 client that sends exact bytes (`client`), and
//! stock nginx configured as minikeyvalue's volume server (`nginx`).

pub mod client;
pub mod hostile;
pub mod nginx;
pub mod proc;

pub use client::{Client, Response};
pub use proc::{free_port, Proc};
