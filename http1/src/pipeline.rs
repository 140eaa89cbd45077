//! HEAD requests, pipelined: the HEADs a thread has for one host share a
//! connection ("lane"). While an answer is awaited, new requests queue up
//! and leave together in one write; the server answers them in order
//! (HTTP/1.1 pipelining; a HEAD's answer has no body, so answers are told
//! apart by their heads alone).
//!
//! A lane's connection that fails before its first answer (an idle one the
//! server closed meanwhile) is replaced once and the queued HEADs are sent
//! again — they are idempotent. A connection the server closes after some
//! answers is replaced and the rest sent again. Any other failure, or no
//! answer within the timeout, fails every HEAD in flight on the lane.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;

use super::client::{read_response, write_request, Dialer, Framing, ResponseHead};
use super::conn::{Conn, Timeouts};

/// HEADs queued on one lane at most; more fail at once (the server is not
/// keeping up, and each of them would time out anyway).
const MAX_QUEUED: usize = 4096;
/// An idle lane connection is kept this long at most between bursts.
const IDLE: Duration = Duration::from_secs(30);

/// What a caller learns of its HEAD: the head, and what `extract` took
/// from its header lines.
type Answer<R> = Result<(ResponseHead, R), String>;

struct LaneState<R> {
    /// In request order: first those written to the connection, then those
    /// not yet written (from `written` on).
    waiting: VecDeque<(String, oneshot::Sender<Answer<R>>)>,
    written: usize,
    /// The connection between bursts.
    idle: Option<Conn>,
    pumping: bool,
}

impl<R> Default for LaneState<R> {
    fn default() -> Self {
        LaneState {
            waiting: VecDeque::new(),
            written: 0,
            idle: None,
            pumping: false,
        }
    }
}

/// The lanes of one thread, one per host. `R` is what a caller wants of an
/// answer's header lines, filled in by `extract(&mut r, name, value)`.
pub struct HeadLanes<R> {
    dialer: Rc<Dialer>,
    extract: fn(&mut R, &str, &[u8]),
    lanes: RefCell<HashMap<String, Rc<RefCell<LaneState<R>>>>>,
}

impl<R: Default + 'static> HeadLanes<R> {
    pub fn new(dialer: Rc<Dialer>, extract: fn(&mut R, &str, &[u8])) -> HeadLanes<R> {
        HeadLanes {
            dialer,
            extract,
            lanes: RefCell::default(),
        }
    }

    /// `HEAD target` on `host`, answered within `timeout` (connecting included).
    pub async fn head(
        self: &Rc<Self>,
        host: &str,
        target: String,
        timeout: Duration,
    ) -> std::io::Result<(ResponseHead, R)> {
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
                return Err(std::io::Error::other("too many HEADs waiting"));
            }
            st.waiting.push_back((target, tx));
            !std::mem::replace(&mut st.pumping, true)
        };
        if start_pump {
            monoio::spawn(self.clone().pump(host.to_string(), lane, timeout));
        }
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        match monoio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Ok(Err(why))) => Err(std::io::Error::other(why)),
            Ok(Err(_)) => Err(std::io::Error::other("lane closed")),
            Err(_) => Err(timed_out()),
        }
    }

    /// Writes what is queued, reads answers in order, until the lane is
    /// empty; then parks the connection in the lane and ends.
    async fn pump(
        self: Rc<Self>,
        host: String,
        lane: Rc<RefCell<LaneState<R>>>,
        timeout: Duration,
    ) {
        // One that fails before any answer is replaced once, if it was an
        // idle one; a fresh one that fails means the host is not well.
        let mut fresh_failures = 0;
        loop {
            let idle = lane.borrow_mut().idle.take();
            let (mut conn, reused) = match idle.filter(|c| !c.peer_closed()) {
                Some(c) => (c, true),
                None => {
                    let timeouts = Timeouts {
                        idle: IDLE,
                        header: timeout,
                        io: timeout,
                    };
                    match self.dialer.connect(&host, timeout, timeouts).await {
                        Ok(c) => (c, false),
                        Err(e) => return fail_all(&lane, &e.to_string()),
                    }
                }
            };
            conn.timeouts.io = timeout;
            lane.borrow_mut().written = 0;
            let (answered, failure) = match self.burst(&host, &lane, conn).await {
                Burst::Drained => return,
                Burst::Ended { answered, failure } => (answered, failure),
            };
            match failure {
                // Closed after answering: go on with a new connection.
                None => {}
                Some(_) if answered > 0 => {}
                Some(_) if reused && fresh_failures == 0 => fresh_failures += 1,
                Some(e) => return fail_all(&lane, &e),
            }
            if lane.borrow().waiting.is_empty() {
                lane.borrow_mut().pumping = false;
                return;
            }
        }
    }

    /// Serves the lane on `conn` until it is empty (the connection is then
    /// parked) or the connection ends.
    async fn burst(&self, host: &str, lane: &RefCell<LaneState<R>>, mut conn: Conn) -> Burst {
        let mut answered = 0;
        loop {
            {
                let mut st = lane.borrow_mut();
                for (target, _) in st.waiting.iter().skip(st.written) {
                    write_request(&mut conn.wbuf, "HEAD", host, target, Framing::None, &[]);
                }
                st.written = st.waiting.len();
                if st.waiting.is_empty() {
                    st.idle = Some(conn);
                    st.pumping = false;
                    return Burst::Drained;
                }
            }
            let mut extra = R::default();
            let answer = async {
                conn.flush().await?;
                read_response(&mut conn, true, |n, v| (self.extract)(&mut extra, n, v)).await
            };
            match answer.await {
                Ok(head) => {
                    answered += 1;
                    if let Some((_, tx)) = lane.borrow_mut().pop_answered() {
                        let _ = tx.send(Ok((head, extra)));
                    }
                    if !head.keep_alive {
                        return Burst::Ended {
                            answered,
                            failure: None,
                        };
                    }
                }
                Err(e) => {
                    return Burst::Ended {
                        answered,
                        failure: Some(e.to_string()),
                    }
                }
            }
        }
    }
}

enum Burst {
    /// Every HEAD was answered; the connection is parked in the lane.
    Drained,
    Ended {
        answered: usize,
        failure: Option<String>,
    },
}

impl<R> LaneState<R> {
    fn pop_answered(&mut self) -> Option<(String, oneshot::Sender<Answer<R>>)> {
        let front = self.waiting.pop_front();
        self.written = self.written.saturating_sub(1);
        front
    }
}

fn fail_all<R>(lane: &RefCell<LaneState<R>>, why: &str) {
    let mut st = lane.borrow_mut();
    for (_, tx) in st.waiting.drain(..) {
        let _ = tx.send(Err(why.to_string()));
    }
    st.written = 0;
    st.pumping = false;
}
