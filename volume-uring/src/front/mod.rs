//! The front of the volume: routing (`service`) and what a handler knows of
//! a request (`request`).

pub mod request;
pub mod service;
