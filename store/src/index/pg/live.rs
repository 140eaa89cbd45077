//! The session that says this process is alive. A master holds, on a
//! connection of its own, the advisory lock of its owner id (while it is
//! held, no other master takes over the key locks it owns) and a shared
//! hold of the users' lock (a tool takes that one exclusively: it runs
//! alone). The database ends the session when the process dies — at once
//! for a killed process, after the keepalive probes for a lost machine —
//! and with it the locks: then another master may take over this one's
//! key locks and settle its unfinished writes.
//!
//! When the session is lost while the process lives (the database
//! restarted, a failover), a master reconnects and takes its locks again
//! under the same id; meanwhile others may take over its key locks, and
//! its writes under them then fail at commit (the fence of every batch, `schema::APPLY`).
//! A tool that loses its session stops using the database.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::schema::{CLASS, SCHEMA, SCHEMA_SQL, USERS};
use super::{describe, Role, Shared};

const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
const RECONNECT_PAUSE_MAX: Duration = Duration::from_secs(2);

/// Creates the schema and opens the session; then keeps it open.
pub(super) async fn start(sh: &Arc<Shared>) -> Result<(), String> {
    let (client, ended) = connect(sh).await?;
    create_schema(&client).await?;
    take_locks(sh, &client).await?;
    *sh.live.lock().await = Some(client);
    tokio::task::spawn_local(keep(sh.clone(), ended));
    Ok(())
}

/// Lets go of the session's locks (at once, not when the database notices
/// the connection closed: a tool that runs next must find them free).
pub(super) async fn end(sh: &Shared) {
    if let Some(client) = sh.live.lock().await.take() {
        let unlocked = client.batch_execute("SELECT pg_advisory_unlock_all()");
        let _ = tokio::time::timeout(sh.timeout, unlocked).await;
    }
}

type Ended = tokio::task::JoinHandle<()>;

async fn connect(sh: &Shared) -> Result<(Client, Ended), String> {
    let connecting = sh.config.connect(NoTls);
    let (client, connection) = tokio::time::timeout(sh.timeout, connecting)
        .await
        .map_err(|_| format!("no answer within {:?}", sh.timeout))?
        .map_err(|e| describe(&e))?;
    let ended = tokio::task::spawn_local(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "the index session ended");
        }
    });
    // The server's side of this session notices a vanished machine soon:
    // its end releases this process's locks for the other masters.
    client
        .batch_execute(
            "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 1; \
             SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000",
        )
        .await
        .map_err(|e| describe(&e))?;
    Ok((client, ended))
}

async fn create_schema(client: &Client) -> Result<(), String> {
    let sql = format!(
        "SET client_min_messages TO warning; BEGIN; SELECT pg_advisory_xact_lock({CLASS}, {SCHEMA}); \
         {SCHEMA_SQL} COMMIT;"
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| format!("cannot create the index's tables: {}", describe(&e)))
}

async fn take_locks(sh: &Shared, client: &Client) -> Result<(), String> {
    let row = match sh.role {
        Role::Serve => {
            client
                .query_one(
                    "SELECT pg_try_advisory_lock_shared($1, $2), pg_try_advisory_lock($3)",
                    &[&CLASS, &USERS, &sh.owner],
                )
                .await
        }
        Role::Tool => {
            client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, $2), true",
                    &[&CLASS, &USERS],
                )
                .await
        }
    }
    .map_err(|e| describe(&e))?;
    let (users, owner): (bool, bool) = (row.get(0), row.get(1));
    if !users {
        return Err(match sh.role {
            Role::Serve => "it is in use by a tool (mkv rebuild, rebalance, verify or migrate)",
            Role::Tool => "it is in use by another process (a running mkv server or a tool)",
        }
        .into());
    }
    if !owner {
        return Err("another session still holds this master's id".into());
    }
    Ok(())
}

/// Waits for the session to end; then, for a master, opens it again until
/// it is back (the trouble meanwhile is what `/ready` says).
async fn keep(sh: Arc<Shared>, mut ended: Ended) {
    loop {
        let _ = (&mut ended).await;
        if sh.closing.load(Ordering::Acquire) {
            return;
        }
        if sh.role == Role::Tool {
            sh.lost.store(true, Ordering::Release);
            sh.session_trouble(Some("lost the exclusive session with the database".into()));
            return;
        }
        sh.session_trouble(Some(format!(
            "lost the session with {} that holds this master's locks; reconnecting",
            sh.name
        )));
        let mut pause = RECONNECT_PAUSE;
        loop {
            tokio::time::sleep(pause).await;
            if sh.closing.load(Ordering::Acquire) {
                return;
            }
            pause = (pause * 2).min(RECONNECT_PAUSE_MAX);
            let (client, now_ended) = match connect(&sh).await {
                Ok(c) => c,
                Err(e) => {
                    sh.session_trouble(Some(format!("cannot reconnect to {}: {e}", sh.name)));
                    continue;
                }
            };
            if let Err(e) = take_locks(&sh, &client).await {
                sh.session_trouble(Some(format!("reconnected to {}, but {e}", sh.name)));
                continue;
            }
            sh.session_trouble(None);
            *sh.live.lock().await = Some(client);
            ended = now_ended;
            break;
        }
    }
}
