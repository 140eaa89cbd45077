//! mkv
pub mod index;
pub mod placement;
pub mod record;
