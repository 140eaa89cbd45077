//! DELETE of one file. Folders are never deleted over HTTP (409), where
//! nginx would remove a whole tree given a trailing slash.
//!
//! With fsync on, the 204 comes after the unlink is on disk (the folder is
//! synced through the group commit).

use http1::{Answer, Conn};

use crate::error::VolumeError;
use crate::front::request::Request;
use crate::store::fspath::split_parent;

pub async fn serve(conn: &mut Conn, req: &Request<'_>) -> Result<Answer, VolumeError> {
    if req.dir_wanted || req.rel.is_empty() {
        return Err(VolumeError::Conflict("folders are not deleted"));
    }
    let (dir, _) = req.ctx.root.open_parent(req.rel, false)?;
    let (_, name) = split_parent(req.rel);
    rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty())?;
    crate::admin::metrics::METRICS.files.dec();
    if let Some(sync) = &req.ctx.sync {
        sync.sync(&[&dir]).await?;
    }
    Ok(req.empty(&mut conn.wbuf, 204, None))
}
