//! The journal thread of `mkv server` and `mkv dev`: at start, and every
//! `INTERVAL` while the master runs, it finishes what crashes and failures
//! left: S3 installs cut short (`s3::install`) and writes whose copies were
//! not all removed (`ops::pending`).

use std::sync::Arc;
use std::time::Duration;

use crate::client::VolumeClient;
use crate::error::MasterError;
use crate::ops::pending;
use crate::s3::install;
use crate::state::App;

pub const INTERVAL: Duration = Duration::from_secs(10);

pub fn spawn(app: Arc<App>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("journal".into())
        .spawn(move || {
            let Ok((mut rt, _)) = http1::runtime::build() else {
                return tracing::error!("the journal thread could not start a runtime");
            };
            rt.block_on(run(app));
        })?;
    Ok(())
}

async fn run(app: Arc<App>) {
    let c = &app.cluster;
    let client = VolumeClient::new(c.voltimeout, c.volume_timeout);
    while !app.shutdown.is_triggered() {
        match install::recover(&app, &client).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(left = n, "installs left unfinished wait for their volumes"),
            Err(e) => tracing::warn!(error = %e, "the journal could not be read"),
        }
        match settle_writes(&app, &client).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(left = n, "copies of failed writes wait for their volumes"),
            Err(e) => tracing::warn!(error = %e, "pending writes could not be read"),
        }
        let mut slept = Duration::ZERO;
        while slept < INTERVAL {
            if app.shutdown.is_triggered() {
                return;
            }
            monoio::time::sleep(Duration::from_millis(250)).await;
            slept += Duration::from_millis(250);
        }
    }
}

/// Resolves every pending write whose key is not being written; returns how
/// many are left.
async fn settle_writes(app: &App, client: &VolumeClient) -> Result<usize, MasterError> {
    let index = app.index.clone();
    let found = monoio::spawn_blocking(move || pending::scan(&index))
        .await
        .map_err(|_| MasterError::Pool("the pending-write scan"))??;
    let mut left = 0;
    for (key, _) in found {
        let Some(_lock) = app.locks.try_lock(&key) else {
            left += 1;
            continue;
        };
        // Read again under the lock: a PUT may have finished it meanwhile.
        let Some(p) = pending::get(&app.index, &key).await? else {
            continue;
        };
        if pending::resolve(&app.index, client, &key, &p).await? {
            tracing::info!(key = %String::from_utf8_lossy(&key), failed = p.failed, "removed the copies of an unfinished write");
        } else {
            left += 1;
        }
    }
    Ok(left)
}
