//! The front of the master: listeners (`server`), the service that routes
//! each request to an operation (`service`, `router`), and the per-request
//! state operations see (`request`).

pub mod request;
pub mod router;
pub mod server;
pub mod service;
