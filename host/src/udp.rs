//! Client UDP and the outbox: one receive task per listening address hands each received
//! batch to the gateway as one input, and the datagrams of a drain (client replies and
//! upstream sub-queries) go out together when it ends, a batch per socket. Only a full socket
//! buffer costs more: a reply then queues for its socket ([`WaitingReplies`]), a sub-query
//! waits in a task of its own, both bounded in number and time.

use std::cell::Cell;
use std::cmp::Reverse;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::future;
use gatherdns_core::{AttemptId, ClientAddr, ClientTransport, ListenerId, UpstreamFailure};

use crate::budget::Budget;
use crate::driver::Driver;
use crate::runtime::{Runtime, UdpSocket};
use crate::waiting::WaitingReplies;

/// Sends allowed to wait for a full socket buffer, per driver and direction; beyond this a
/// reply is dropped (and counted), as the network would drop it, and a sub-query fails at
/// once.
pub(crate) const MAX_BACKLOG: usize = 1024;

/// Client replies waiting for a full socket buffer at which the driver stops reading client
/// datagrams: back-pressure, so that queries wait (or are dropped) in the kernel's receive
/// buffer, before they are owed a reply, rather than as replies after they were answered.
/// Well below [`MAX_BACKLOG`]: what still arrives then is upstream replies finishing queries
/// already taken.
pub(crate) const PAUSE_READING_AT: usize = 64;

/// How often a paused receive loop looks at the backlog again.
const PAUSE_TICK: Duration = Duration::from_millis(1);

/// How long a backlogged send may wait before it is given up.
pub(crate) const SEND_WAIT: Duration = Duration::from_secs(1);

/// Pause after a receive error, so that a persistent error cannot spin the loop.
pub(crate) const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Receives client queries on the socket of listener `id` for as long as it is open: a
/// batch per wake, handed to the gateway as one input (one drain, one batch of replies).
pub(crate) async fn serve<R: Runtime>(driver: Rc<Driver<R>>, id: ListenerId, socket: Rc<R::Udp>) {
    let mut buf = <R::Udp as UdpSocket>::RecvBuf::default();
    let mut batch = Vec::new();
    let mut budget = Budget::<R>::new();
    loop {
        while driver.replies_waiting() >= PAUSE_READING_AT {
            R::sleep_until(Instant::now() + PAUSE_TICK).await;
        }
        match socket.recv(&mut buf, &mut batch).await {
            Ok(()) => {
                let count = batch.len();
                driver.handle_client_messages(batch.drain(..).map(|(remote, msg)| {
                    let from = ClientAddr {
                        listener: id,
                        remote,
                        transport: ClientTransport::Udp,
                    };
                    (from, msg)
                }));
                budget.spend(count.max(1)).await;
            }
            // ICMP errors of earlier sends surface here on some systems; they concern one
            // peer, not the socket, so the loop goes on.
            Err(_) => {
                R::sleep_until(Instant::now() + ERROR_PAUSE).await;
                budget.spend(1).await;
            }
        }
    }
}

/// The UDP datagrams of one drain, sent together when it ends.
pub(crate) struct Outbox<R: Runtime> {
    queued: Vec<Queued<R>>,
    /// Sub-queries that failed before reaching a socket (no socket could be opened).
    failed: Vec<(AttemptId, UpstreamFailure)>,
    /// Client replies waiting for a full socket buffer, in order, per socket.
    replies: WaitingReplies<R>,
    /// Sub-queries waiting in background tasks for a full socket buffer.
    query_backlog: Rc<Cell<usize>>,
}

impl<R: Runtime> Default for Outbox<R> {
    fn default() -> Self {
        Outbox {
            queued: Vec::new(),
            failed: Vec::new(),
            replies: WaitingReplies::default(),
            query_backlog: Rc::default(),
        }
    }
}

struct Queued<R: Runtime> {
    socket: Rc<R::Udp>,
    /// `None` on a socket connected to its one peer.
    to: Option<SocketAddr>,
    payload: Bytes,
    /// The sub-query's attempt; `None` for a client reply.
    attempt: Option<AttemptId>,
}

impl<R: Runtime> Outbox<R> {
    pub(crate) fn push(
        &mut self,
        socket: Rc<R::Udp>,
        to: Option<SocketAddr>,
        payload: Bytes,
        attempt: Option<AttemptId>,
    ) {
        self.queued.push(Queued {
            socket,
            to,
            payload,
            attempt,
        });
    }

    /// Client replies waiting for room in a full socket buffer.
    pub(crate) fn replies_waiting(&self) -> usize {
        self.replies.waiting()
    }

    /// Client replies given up so far.
    pub(crate) fn replies_dropped(&self) -> u64 {
        self.replies.dropped()
    }

    /// Client replies that waited for room in a full socket buffer so far.
    pub(crate) fn replies_waited(&self) -> u64 {
        self.replies.waited()
    }

    /// A sub-query that cannot be sent, reported with the next flush.
    pub(crate) fn fail(&mut self, attempt: AttemptId, failure: UpstreamFailure) {
        self.failed.push((attempt, failure));
    }

    /// Sends what is queued, a batch per system call and socket, and empties the outbox
    /// (keeping its allocation). What a socket cannot take now waits in the background
    /// (bounded); sub-queries that cannot be sent at all are appended to `failed`.
    pub(crate) fn flush(
        &mut self,
        driver: &Rc<Driver<R>>,
        failed: &mut Vec<(AttemptId, UpstreamFailure)>,
    ) {
        failed.append(&mut self.failed);
        // Each socket's datagrams together, and on it those to one peer, longest first: alike
        // datagrams (sub-queries for one name, replies to a client that asked it again) then
        // follow each other and go out as one GSO send (`batch::Sender`). Datagrams to one peer
        // may leave out of order: UDP never promised otherwise.
        self.queued.sort_by_key(|q| {
            let socket = Rc::as_ptr(&q.socket) as usize;
            (socket, q.to, Reverse(q.payload.len()))
        });
        for run in self
            .queued
            .chunk_by(|a, b| Rc::ptr_eq(&a.socket, &b.socket))
        {
            let socket = &run[0].socket;
            let mut sent = 0;
            // Replies already waiting on this socket go first: these queue behind them.
            if self.replies.holds(socket) {
                sent = run.len();
                for q in run {
                    self.replies.push(socket, q.to, q.payload.clone());
                }
            }
            while sent < run.len() {
                let batch = run[sent..].iter().map(|q| (q.to, &q.payload[..]));
                match socket.try_send(batch) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sent += n,
                }
            }
            for q in &run[sent..] {
                self.send_later(driver, q, failed);
            }
        }
        self.queued.clear();
    }

    /// A datagram the socket did not take at once. A reply queues behind the socket's
    /// other waiting replies ([`WaitingReplies`]). A sub-query is sent from a background task
    /// that waits for room (bounded), or fails now; it fails from the task when the wait
    /// runs out.
    fn send_later(
        &self,
        driver: &Rc<Driver<R>>,
        q: &Queued<R>,
        failed: &mut Vec<(AttemptId, UpstreamFailure)>,
    ) {
        let Some(attempt) = q.attempt else {
            self.replies.push(&q.socket, q.to, q.payload.clone());
            return;
        };
        let backlog = &self.query_backlog;
        if backlog.get() >= MAX_BACKLOG {
            failed.push((attempt, UpstreamFailure::Unreachable));
            return;
        }
        backlog.set(backlog.get() + 1);
        let (backlog, socket, to, payload) =
            (backlog.clone(), q.socket.clone(), q.to, q.payload.clone());
        let driver = driver.clone();
        R::detach(R::spawn(async move {
            let send = async { socket.send(&payload, to).await.is_ok() };
            let timeout = async {
                R::sleep_until(Instant::now() + SEND_WAIT).await;
                false
            };
            let sent = future::or(send, timeout).await;
            backlog.set(backlog.get() - 1);
            if !sent {
                driver.handle(|gateway, now| {
                    gateway.handle_upstream_failure(now, attempt, UpstreamFailure::Unreachable)
                });
            }
        }));
    }
}
