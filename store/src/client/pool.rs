//! Idle keep-alive connections to volumes, per thread and volume.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use http1::client::Dialer;
use http1::{Conn, Timeouts};

/// Idle connections kept per volume on each thread.
const MAX_IDLE: usize = 64;
/// Older idle connections are closed rather than reused (servers close
/// theirs after 75 s; this stays well clear of that race).
pub const MAX_IDLE_AGE: Duration = Duration::from_secs(30);

struct Idle {
    conn: Conn,
    since: Instant,
}

pub struct Pool {
    pub dialer: Rc<Dialer>,
    idle: RefCell<HashMap<String, Vec<Idle>>>,
}

/// The timeouts of a connection to a volume whose steps may take `io`.
pub fn timeouts(io: Duration) -> Timeouts {
    Timeouts {
        idle: MAX_IDLE_AGE,
        header: io,
        io,
    }
}

impl Pool {
    pub fn new(dialer: Rc<Dialer>) -> Pool {
        Pool {
            dialer,
            idle: RefCell::default(),
        }
    }

    /// A pooled connection that still looks alive, or a new one (within
    /// `timeout`); and whether it was pooled.
    pub async fn checkout(&self, host: &str, timeout: Duration) -> std::io::Result<(Conn, bool)> {
        loop {
            let idle = self.idle.borrow_mut().get_mut(host).and_then(Vec::pop);
            match idle {
                Some(i) if i.since.elapsed() < MAX_IDLE_AGE && !i.conn.peer_closed() => {
                    let mut conn = i.conn;
                    conn.timeouts = timeouts(timeout);
                    return Ok((conn, true));
                }
                Some(_) => continue,
                None => {
                    let conn = self
                        .dialer
                        .connect(host, timeout, timeouts(timeout))
                        .await?;
                    return Ok((conn, false));
                }
            }
        }
    }

    /// Keeps a connection whose last answer was read to its end.
    pub fn checkin(&self, host: &str, conn: Conn) {
        let mut idle = self.idle.borrow_mut();
        let pool = idle.entry(host.to_string()).or_default();
        if pool.len() < MAX_IDLE {
            pool.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }
}
