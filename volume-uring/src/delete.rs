//! DELETE of one file. Folders are never deleted over HTTP (409), where
//! nginx would remove a whole tree given a trailing slash.

use crate::conn::{self, Request};
use crate::error::VolumeError;
use crate::fspath::split_parent;
use crate::http::Conn;
use crate::server::Ctx;

pub async fn serve(conn: &mut Conn, req: &Request<'_>, ctx: &Ctx) -> Result<bool, VolumeError> {
    if req.dir_wanted || req.rel.is_empty() {
        return Err(VolumeError::Conflict("folders are not deleted"));
    }
    let (dir, _) = ctx.root.open_parent(req.rel, false)?;
    let (_, name) = split_parent(req.rel);
    rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty())?;
    if let Some(sync) = &ctx.sync {
        sync.sync(&[&dir]).await?;
    }
    conn::empty_response(conn, req, 204, None);
    conn.end_response().await?;
    Ok(req.keep_alive())
}
