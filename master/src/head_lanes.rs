//! HEADs to a volume, pipelined: every GET of an existing key asks a volume
//! whether it holds the file, and at load most of the cost is loopback or
//! network segments, not work. So the HEADs that one thread has for one
//! volume share a connection ("lane"): while an answer is awaited, new
//! requests queue up and leave together in one write; the volume answers
//! them in order (HTTP/1.1 pipelining, which nginx and volume-uring both
//! serve, volume-uring coalescing its answers into one send).
//!
//! A lane's connection that fails before its first answer (an idle one the
//! volume closed meanwhile) is replaced once and the queued HEADs are sent
//! again — they are idempotent. Any other failure, or no answer within
//! `--voltimeout`, fails every HEAD in flight on it: their GETs try another
//! replica, as when a volume is down.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use volume_uring::http::Conn;

use crate::volume_client::{read_reply, reply_of, write_head, ClientError, Reply, VolumeClient};

/// HEADs queued on one lane at most; more fail at once (the volume is not
/// keeping up, and each of them would time out anyway).
const MAX_QUEUED: usize = 4096;

type Answer = oneshot::Sender<Result<Reply, String>>;

#[derive(Default)]
struct LaneState {
    /// In request order: first those written to the connection, then those
    /// not yet written (from `written` on).
    waiting: VecDeque<(String, Answer)>,
    written: usize,
    /// The connection between bursts.
    idle: Option<Conn>,
    pumping: bool,
}

#[derive(Default)]
pub struct HeadLanes {
    lanes: RefCell<HashMap<String, Rc<RefCell<LaneState>>>>,
}

impl HeadLanes {
    /// A HEAD of `url` on `host`, answered within `timeout`.
    pub async fn head(
        &self,
        client: Rc<VolumeClient>,
        host: &str,
        url: String,
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        let lane = self
            .lanes
            .borrow_mut()
            .entry(host.to_string())
            .or_default()
            .clone();
        let (tx, rx) = oneshot::channel();
        let start_pump = {
            let mut st = lane.borrow_mut();
            if st.waiting.len() >= MAX_QUEUED {
                return Err(ClientError::new(host, "too many HEADs waiting"));
            }
            st.waiting.push_back((url, tx));
            !std::mem::replace(&mut st.pumping, true)
        };
        if start_pump {
            monoio::spawn(pump(client, host.to_string(), lane, timeout));
        }
        match monoio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(why))) => Err(ClientError::new(host, why)),
            Ok(Err(_)) => Err(ClientError::new(host, "lane closed")),
            Err(_) => Err(ClientError::new(host, "timed out")),
        }
    }
}

/// Writes what is queued, reads answers in order, until the lane is empty;
/// then parks the connection in the lane and ends.
async fn pump(
    client: Rc<VolumeClient>,
    host: String,
    lane: Rc<RefCell<LaneState>>,
    timeout: Duration,
) {
    // A connection the volume closes after answering some HEADs (nginx does
    // after `keepalive_requests`, or when idle) is replaced and the rest are
    // sent again. One that fails before any answer is replaced once, if it
    // was an idle one; a fresh one that fails means the volume is not well.
    let mut fresh_failures = 0;
    loop {
        let idle = lane.borrow_mut().idle.take();
        let (mut conn, reused) = match idle.filter(|c| !c.peer_closed()) {
            Some(c) => (c, true),
            None => match client.connect(&host, timeout).await {
                Ok(c) => (c, false),
                Err(e) => return fail_all(&lane, &e.to_string()),
            },
        };
        conn.timeouts.io = timeout;
        lane.borrow_mut().written = 0;
        let mut answered = 0;
        let ended = loop {
            let urls: Vec<String> = {
                let mut st = lane.borrow_mut();
                let unsent = st
                    .waiting
                    .iter()
                    .skip(st.written)
                    .map(|(u, _)| u.clone())
                    .collect();
                st.written = st.waiting.len();
                unsent
            };
            for url in &urls {
                write_head(&mut conn, "HEAD", &host, url, None);
            }
            if lane.borrow().waiting.is_empty() {
                let mut st = lane.borrow_mut();
                st.idle = Some(conn);
                st.pumping = false;
                return;
            }
            let answer = async {
                conn.flush().await?;
                read_reply(&mut conn, true).await
            };
            match answer.await {
                Ok(head) => {
                    answered += 1;
                    if let Some((_, tx)) = lane.borrow_mut().pop_answered() {
                        let _ = tx.send(Ok(reply_of(&head)));
                    }
                    if !head.keep_alive {
                        break None;
                    }
                }
                Err(e) => break Some(e),
            }
        };
        match ended {
            // Closed after answering: go on with a new connection.
            None => {}
            Some(_) if answered > 0 => {}
            Some(_) if reused && fresh_failures == 0 => fresh_failures += 1,
            Some(e) => return fail_all(&lane, &e.to_string()),
        }
        if lane.borrow().waiting.is_empty() {
            lane.borrow_mut().pumping = false;
            return;
        }
    }
}

impl LaneState {
    fn pop_answered(&mut self) -> Option<(String, Answer)> {
        let front = self.waiting.pop_front();
        self.written = self.written.saturating_sub(1);
        front
    }
}

fn fail_all(lane: &RefCell<LaneState>, why: &str) {
    let mut st = lane.borrow_mut();
    for (_, tx) in st.waiting.drain(..) {
        let _ = tx.send(Err(why.to_string()));
    }
    st.written = 0;
    st.pumping = false;
}
