//! The journal thread of `mkv server` and `mkv dev`: at start, and every
//! `INTERVAL` while the master runs, it undoes the writes crashes and
//! failures left (`ops::intent`). Writes under way (their key's lock held)
//! are left alone and not reported; what waits for a volume that does not
//! answer is logged, key by key.
//!
//! Past the first pass over a LevelDB index (at start, before this master
//! has written), an intent is settled only once a pass found it unchanged
//! since the pass before: a write that has just finished would otherwise
//! find its key's lock held by the journal for a moment, and a client's
//! next write of the key a 409. Over a shared index another master may be
//! writing at any time, so every pass waits for that.

use std::sync::Arc;
use std::time::Duration;

use crate::client::VolumeClient;
use crate::error::MasterError;
use crate::meta::Intent;
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
    let mut seen: Option<Vec<(Vec<u8>, Intent)>> = (!app.index.is_shared()).then(Vec::new);
    while !app.shutdown.is_triggered() {
        if let Err(e) = settle(&app, &client, &mut seen).await {
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

/// Undoes every unfinished write no request holds and the pass before
/// found as it is now (`seen`: what that pass found; `None` before the
/// first pass over an unshared index: all of them); logs what is stuck.
async fn settle(
    app: &App,
    client: &VolumeClient,
    seen: &mut Option<Vec<(Vec<u8>, Intent)>>,
) -> Result<(), MasterError> {
    let index = app.index.clone();
    let found = monoio::spawn_blocking(move || intent::scan(&index))
        .await
        .map_err(|_| MasterError::Pool("the intent scan"))??;
    let now: Vec<(Vec<u8>, Intent)> = found
        .iter()
        .map(|f| (f.key.clone(), f.intent.clone()))
        .collect();
    let found: Vec<intent::Found> = match seen.replace(now) {
        None => found,
        Some(before) => found
            .into_iter()
            .filter(|f| before.iter().any(|(k, i)| *k == f.key && *i == f.intent))
            .collect(),
    };
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
