//! The journal thread of `mkv server` and `mkv dev`: at start, and every
//! `INTERVAL` while the master runs, it undoes the writes crashes and
//! failures left (`ops::intent`). Writes under way (their key's lock held)
//! are left alone and not reported; what waits for a volume that does not
//! answer is logged, key by key.

use std::sync::Arc;
use std::time::Duration;

use crate::client::VolumeClient;
use crate::error::MasterError;
use crate::ops::intent;
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
        if let Err(e) = settle(&app, &client).await {
            tracing::warn!(error = %e, "the journal could not settle unfinished writes");
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

/// Undoes every unfinished write no request holds; logs what is stuck.
async fn settle(app: &App, client: &VolumeClient) -> Result<(), MasterError> {
    let index = app.index.clone();
    let found = monoio::spawn_blocking(move || intent::scan(&index))
        .await
        .map_err(|_| MasterError::Pool("the intent scan"))??;
    if found.is_empty() {
        return Ok(());
    }
    let settled = intent::settle_all(&app.index, client, Some(&app.locks), found).await;
    crate::ops::locks::released().await;
    let settled = settled?;
    for (key, replicas) in &settled.stuck {
        tracing::warn!(key = %String::from_utf8_lossy(key), replicas = %replicas.join(","), "an unfinished write waits for its volumes");
    }
    Ok(())
}
