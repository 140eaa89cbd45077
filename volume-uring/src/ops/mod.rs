//! The handlers, one per kind of request; each writes its whole answer.

pub mod delete;
pub mod get;
pub mod listing;
pub mod put;
pub mod stage;
pub mod temp;
pub mod verify;
pub mod walk;
