//! The volume's files: paths under the root, the checksums kept beside the
//! bytes, how uploads are written and made durable, and the sweep of
//! temporary files that cut-off uploads left.

pub mod aligned;
pub mod checksum;
pub mod fspath;
pub mod group_sync;
pub mod place;
pub mod sweep;
pub mod upload;
pub mod xattr_at;
