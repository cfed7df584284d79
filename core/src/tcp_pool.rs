//! Persistent, pipelined TCP connections to the upstreams, as plain data: which connection a
//! sub-query goes on, which queries are outstanding on which connection, and when to open,
//! retire or expire one. The gateway drives it; its driver only moves the bytes.
//!
//! One connection per attempt overflowed the upstreams' listen backlogs under load (a lost
//! SYN costs a 1 s retransmission, longer than a cluster's deadline); CoreDNS's `forward`
//! reuses connections for the same reason.
//!
//! # What the driver sees
//!
//! The pool's decisions come out of the gateway with its other outputs: opening and closing
//! connections from [`crate::Gateway::poll_connection`], queries to write as
//! [`crate::Destination::Connection`] transmits. What happens on a connection goes back in as
//! `handle_connection_*` inputs, and its deadlines are the gateway's own timers.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use gatherdns_core::corefile::{parse_corefile_text, ParseOptions};
//! use gatherdns_core::framing::FrameDecoder;
//! use gatherdns_core::loader::MemLoader;
//! use gatherdns_core::{
//!     ClientAddr, ClientTransport, ConnectionCommand, Destination, Gateway, ListenerId,
//! };
//!
//! let corefile = ". {\n  forward . 192.0.2.1:53 {\n    force_tcp\n  }\n}\n";
//! let options = ParseOptions { default_port: 53 };
//! let config = parse_corefile_text("Corefile".as_ref(), corefile, &MemLoader::new(), &options)
//!     .expect("valid Corefile");
//! let mut gateway = Gateway::new(config, [7; 32]).expect("valid config");
//! let now = Instant::now();
//! let client = ClientAddr {
//!     listener: ListenerId(0),
//!     remote: "198.51.100.7:4000".parse().expect("address"),
//!     transport: ClientTransport::Udp,
//! };
//! let query = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, b'e', b'x', 0, 0, 1, 0, 1];
//! gateway.handle_client_message(now, client, Bytes::copy_from_slice(&query));
//! // The first sub-query to an upstream opens a connection; it waits until the driver
//! // reports the connection open.
//! let Some(ConnectionCommand::Open { conn, addr }) = gateway.poll_connection() else {
//!     panic!("a connection to open")
//! };
//! assert_eq!(addr, "192.0.2.1:53".parse().expect("address"));
//! assert!(gateway.poll_transmit().is_none());
//! gateway.handle_connection_opened(now, conn);
//! // Now its queries come out, framed, to be written on it as they are.
//! let written = gateway.poll_transmit().expect("the sub-query");
//! assert_eq!(written.destination, Destination::Connection(conn));
//! let mut frames = FrameDecoder::new();
//! assert_eq!(frames.push(&written.payload), written.payload.len(), "one frame");
//! let sub = frames.next_message().expect("framed").expect("whole");
//! // The driver reads the reply off the connection and hands it over, unframed.
//! let mut reply = sub.to_vec();
//! reply[2] |= 0x80;
//! gateway.handle_connection_message(now, conn, Bytes::from(reply));
//! let answer = gateway.poll_transmit().expect("the reply to the client");
//! assert_eq!(answer.destination, Destination::Client(client));
//! // An idle connection is closed by the gateway's own timer.
//! let later = now + Duration::from_secs(60);
//! assert!(gateway.poll_timeout().is_some_and(|at| at <= later));
//! gateway.handle_timeout(later);
//! assert_eq!(gateway.poll_connection(), Some(ConnectionCommand::Close(conn)));
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::framing::encode_frame;
use crate::transmit::{AttemptId, Closed, ConnId, UpstreamFailure};

/// The pool's bounds. The defaults follow CoreDNS's `forward` where it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Connections to one upstream at most.
    pub(crate) conns_per_upstream: usize,
    /// Queries outstanding on one connection at most; another connection is opened only
    /// when every open one has this many.
    pub(crate) pipeline: usize,
    /// Queries held by the pool (outstanding or waiting for a connection) at most; beyond
    /// it a query fails at once and the gateway moves on.
    pub(crate) max_queries: usize,
    /// A connection with nothing outstanding is closed after this long (CoreDNS `expire`).
    pub(crate) idle: Duration,
    /// A connection with queries outstanding but no traffic for this long is closed, and
    /// its queries fail.
    pub(crate) stall: Duration,
    /// A query not answered (or not sent) after this long is forgotten: the gateway's own
    /// deadline has long passed, and it must not hold a pipeline slot for ever.
    pub(crate) query_limit: Duration,
    /// How long an upstream stays in one-query-per-connection mode after it was seen to
    /// close connections right after replying.
    pub(crate) one_shot_memory: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            conns_per_upstream: 4,
            pipeline: 64,
            max_queries: 512,
            idle: Duration::from_secs(10),
            stall: Duration::from_secs(30),
            query_limit: Duration::from_secs(5),
            one_shot_memory: Duration::from_secs(60),
        }
    }
}

/// A connection close this soon after a reply is taken for a server that closes after every
/// reply, rather than for one that closed an idle connection.
const CLOSE_AFTER_REPLY: Duration = Duration::from_secs(1);

/// What the gateway must do. Drain with [`TcpPool::poll_action`] after every call.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Have a connection to `addr` opened; report the outcome with [`TcpPool::connected`]
    /// or [`TcpPool::closed`].
    Connect {
        /// The new connection.
        conn: ConnId,
        /// The upstream.
        addr: SocketAddr,
    },
    /// The connection has bytes to write ([`TcpPool::take_writes`] once it is open).
    Write(ConnId),
    /// `attempt` failed.
    Fail {
        /// The attempt.
        attempt: AttemptId,
        /// Why.
        failure: UpstreamFailure,
    },
}

/// A sub-query the pool holds.
#[derive(Clone)]
struct Query {
    attempt: AttemptId,
    payload: Bytes,
    /// When it was submitted.
    since: Instant,
    /// Already moved once from a connection that closed.
    retried: bool,
}

impl Query {
    fn dns_id(&self) -> u16 {
        dns_id(&self.payload)
    }
}

struct Conn {
    addr: SocketAddr,
    open: bool,
    /// Queries written or waiting to be, by DNS ID.
    outstanding: BTreeMap<u16, Query>,
    /// Framed queries not yet taken by the writer.
    unwritten: BytesMut,
    /// Queries ever assigned to it.
    assigned: u64,
    /// Replies read from it.
    replies: u64,
    last_activity: Instant,
    last_reply: Option<Instant>,
}

#[derive(Default)]
struct Upstream {
    /// Its connections, oldest first: queries fill the oldest with room, so that under a
    /// light load the newer ones go idle and expire.
    conns: Vec<ConnId>,
    /// Queries waiting for room on a connection.
    queue: VecDeque<Query>,
    /// Until when it gets one query per connection.
    one_shot_until: Option<Instant>,
}

/// The TCP connections of every upstream, as plain data.
pub(crate) struct TcpPool {
    limits: Limits,
    upstreams: BTreeMap<SocketAddr, Upstream>,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    /// Queries outstanding or queued, over all upstreams.
    held: usize,
    actions: VecDeque<Action>,
}

impl std::fmt::Debug for TcpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpPool")
            .field("upstreams", &self.upstreams.len())
            .field("conns", &self.conns.len())
            .field("held", &self.held)
            .finish()
    }
}

impl TcpPool {
    /// An empty pool.
    pub(crate) fn new(limits: Limits) -> TcpPool {
        TcpPool {
            limits,
            upstreams: BTreeMap::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            held: 0,
            actions: VecDeque::new(),
        }
    }

    /// Takes a sub-query for `addr`: it goes on a connection with room, on a new one, or
    /// waits for one. `Err` when the pool is full: report it to the gateway.
    pub(crate) fn submit(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        addr: SocketAddr,
        payload: Bytes,
    ) -> Result<(), UpstreamFailure> {
        if self.held >= self.limits.max_queries {
            return Err(UpstreamFailure::Unreachable);
        }
        self.held += 1;
        self.upstreams
            .entry(addr)
            .or_default()
            .queue
            .push_back(Query {
                attempt,
                payload,
                since: now,
                retried: false,
            });
        self.dispatch(now, addr);
        Ok(())
    }

    /// The next action, if any.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The connection is open: its writer may start.
    pub(crate) fn connected(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.open = true;
            c.last_activity = now;
        }
    }

    /// Appends the connection's unwritten queries, framed, to `out` (one write for all of
    /// them). False when there is nothing to write, or the connection is not the pool's.
    pub(crate) fn take_writes(&mut self, now: Instant, conn: ConnId, out: &mut BytesMut) -> bool {
        match self.conns.get_mut(&conn) {
            Some(c) if c.open && !c.unwritten.is_empty() => {
                out.extend_from_slice(&c.unwritten);
                c.unwritten.clear();
                c.last_activity = now;
                true
            }
            _ => false,
        }
    }

    /// A message read from the connection. The gateway matches it with its attempt in any
    /// case; this only settles the pool's accounting. False when the pool has retired the
    /// connection: it must be closed.
    pub(crate) fn reply(&mut self, now: Instant, conn: ConnId, msg: &[u8]) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if c.outstanding.remove(&dns_id(msg)).is_some() {
            self.held -= 1;
        }
        c.replies += 1;
        c.last_activity = now;
        c.last_reply = Some(now);
        let (addr, replies, idle) = (c.addr, c.replies, c.outstanding.is_empty());
        let retire = self.upstreams.get_mut(&addr).is_some_and(|up| {
            // A second reply on one connection proves that the server keeps them open.
            if replies >= 2 {
                up.one_shot_until = None;
            }
            idle && is_one_shot(up, now)
        });
        if retire {
            // The server closes it anyway; retire it now so that it frees its place.
            let _ = self.forget(conn);
        }
        self.dispatch(now, addr);
        !retire
    }

    /// When [`TcpPool::timeout`] is due for this connection; `None` while it connects (the
    /// driver bounds that) or once the pool has forgotten it.
    pub(crate) fn deadline(&self, conn: ConnId) -> Option<Instant> {
        let c = self.conns.get(&conn).filter(|c| c.open)?;
        let oldest = c.outstanding.values().map(|q| q.since).min();
        Some(match oldest {
            None => c.last_activity + self.limits.idle,
            Some(since) => {
                (c.last_activity + self.limits.stall).min(since + self.limits.query_limit)
            }
        })
    }

    /// The connection's deadline has passed (an early call is harmless): forgets queries
    /// past their limit, and closes the connection when it is idle or stalled. False when
    /// the pool has closed it (or never knew it): it must be closed.
    pub(crate) fn timeout(&mut self, now: Instant, conn: ConnId) -> bool {
        let limits = self.limits;
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let before = c.outstanding.len();
        c.outstanding
            .retain(|_, q| now < q.since + limits.query_limit);
        self.held -= before - c.outstanding.len();
        let addr = c.addr;
        let keep = if c.outstanding.is_empty() {
            now < c.last_activity + limits.idle
        } else {
            now < c.last_activity + limits.stall
        };
        if !keep {
            for q in self.forget(conn) {
                self.fail(q, UpstreamFailure::ConnectionLost);
            }
        }
        self.dispatch(now, addr);
        keep
    }

    /// The connection has ended (the driver has closed or will close it). Its queries fail
    /// or are retried as `how` says. Unknown connections are ignored, so reporting twice is
    /// harmless.
    pub(crate) fn closed(&mut self, now: Instant, conn: ConnId, how: Closed) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let addr = c.addr;
        // Closed right after a reply with more outstanding: a server that answers one
        // query per connection. Give it one query per connection for a while.
        let one_shot = how == Closed::Lost
            && !c.outstanding.is_empty()
            && c.last_reply
                .is_some_and(|at| now.saturating_duration_since(at) < CLOSE_AFTER_REPLY);
        let orphans = self.forget(conn);
        match how {
            Closed::ConnectFailed => {
                // The upstream cannot be reached: what waits for it would only wait longer.
                let queued = self
                    .upstreams
                    .get_mut(&addr)
                    .map(|up| std::mem::take(&mut up.queue))
                    .unwrap_or_default();
                for q in orphans.into_iter().chain(queued) {
                    self.fail(q, UpstreamFailure::Unreachable);
                }
            }
            Closed::Broken => {
                for q in orphans {
                    self.fail(q, UpstreamFailure::ConnectionLost);
                }
            }
            Closed::Lost => {
                let limit = self.limits.query_limit;
                let up = self.upstreams.entry(addr).or_default();
                if one_shot {
                    up.one_shot_until = Some(now + self.limits.one_shot_memory);
                }
                let mut failed = Vec::new();
                // In reverse, so that they keep their order at the front of the queue.
                for mut q in orphans.into_iter().rev() {
                    if q.retried || now >= q.since + limit {
                        failed.push(q);
                    } else {
                        q.retried = true;
                        up.queue.push_front(q);
                    }
                }
                for q in failed.into_iter().rev() {
                    self.fail(q, UpstreamFailure::ConnectionLost);
                }
            }
        }
        self.dispatch(now, addr);
    }

    /// The upstream of a connection the pool knows.
    pub(crate) fn addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conns.get(&conn).map(|c| c.addr)
    }

    /// Checks the pool's bookkeeping and bounds: every connection listed under its upstream
    /// and no more of them than the limit, and `held` equal to the queries actually held and
    /// within its limit. Returns the connections and queries held (for the invariant checks).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn check(&self) -> Result<(usize, usize), String> {
        let mut held = 0;
        let mut listed = 0;
        for (addr, up) in &self.upstreams {
            if up.conns.len() > self.limits.conns_per_upstream {
                return Err(format!("{} connections to {addr}", up.conns.len()));
            }
            for conn in &up.conns {
                if self.conns.get(conn).is_none_or(|c| c.addr != *addr) {
                    return Err(format!("{conn:?} listed under {addr} but not its"));
                }
            }
            listed += up.conns.len();
            held += up.queue.len();
        }
        if listed != self.conns.len() {
            return Err(format!("{} connections, {listed} listed", self.conns.len()));
        }
        for (conn, c) in &self.conns {
            if c.outstanding.len() > self.limits.pipeline {
                return Err(format!("{conn:?} holds {} queries", c.outstanding.len()));
            }
            held += c.outstanding.len();
        }
        if held != self.held || held > self.limits.max_queries {
            return Err(format!(
                "the TCP pool counts {} queries held, holds {held}, limit {}",
                self.held, self.limits.max_queries
            ));
        }
        Ok((self.conns.len(), held))
    }

    /// Connections open or opening, over all upstreams.
    #[cfg(test)]
    pub(crate) fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Queries outstanding or waiting, over all upstreams.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Queries outstanding on one connection (0 for an unknown one).
    #[cfg(test)]
    pub(crate) fn outstanding(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.outstanding.len())
    }

    /// Puts queued queries of `addr` on connections, opening connections as needed and
    /// allowed; forgets the queued ones past their limit.
    fn dispatch(&mut self, now: Instant, addr: SocketAddr) {
        let limits = self.limits;
        let Some(up) = self.upstreams.get_mut(&addr) else {
            return;
        };
        let before = up.queue.len();
        up.queue.retain(|q| now < q.since + limits.query_limit);
        self.held -= before - up.queue.len();
        let one_shot = is_one_shot(up, now);
        while let Some(q) = up.queue.front() {
            let fits = |c: &Conn| {
                if one_shot {
                    c.assigned == 0
                } else {
                    // A retry goes to a connection that has not proved to close on us.
                    c.outstanding.len() < limits.pipeline && !(q.retried && c.replies > 0)
                }
            };
            let conns = &self.conns;
            let found = up
                .conns
                .iter()
                .copied()
                .find(|id| conns.get(id).is_some_and(&fits));
            let conn = match found {
                Some(conn) => conn,
                None if up.conns.len() < limits.conns_per_upstream => {
                    let conn = ConnId(self.next_conn);
                    self.next_conn += 1;
                    self.conns.insert(
                        conn,
                        Conn {
                            addr,
                            open: false,
                            outstanding: BTreeMap::new(),
                            unwritten: BytesMut::new(),
                            assigned: 0,
                            replies: 0,
                            last_activity: now,
                            last_reply: None,
                        },
                    );
                    up.conns.push(conn);
                    self.actions.push_back(Action::Connect { conn, addr });
                    conn
                }
                None => break,
            };
            let Some(q) = up.queue.pop_front() else { break };
            let Some(c) = self.conns.get_mut(&conn) else {
                break;
            };
            if c.unwritten.is_empty() {
                self.actions.push_back(Action::Write(conn));
            }
            encode_frame(&q.payload, &mut c.unwritten);
            c.assigned += 1;
            // The gateway never has two live attempts with one ID to one upstream, so an
            // entry with this ID is one it has given up on.
            if c.outstanding.insert(q.dns_id(), q).is_some() {
                self.held -= 1;
            }
        }
        if up.conns.is_empty() && up.queue.is_empty() && up.one_shot_until.is_none() {
            self.upstreams.remove(&addr);
        }
    }

    /// Removes a connection and returns what was outstanding on it, oldest first.
    fn forget(&mut self, conn: ConnId) -> Vec<Query> {
        let Some(c) = self.conns.remove(&conn) else {
            return Vec::new();
        };
        if let Some(up) = self.upstreams.get_mut(&c.addr) {
            up.conns.retain(|id| *id != conn);
        }
        let mut orphans: Vec<Query> = c.outstanding.into_values().collect();
        orphans.sort_by_key(|q| (q.since, q.attempt.0));
        // Still held: the caller fails or requeues them.
        orphans
    }

    fn fail(&mut self, q: Query, failure: UpstreamFailure) {
        self.held -= 1;
        self.actions.push_back(Action::Fail {
            attempt: q.attempt,
            failure,
        });
    }
}

/// Whether `up` is (still) in one-query-per-connection mode.
fn is_one_shot(up: &mut Upstream, now: Instant) -> bool {
    match up.one_shot_until {
        Some(until) if now < until => true,
        Some(_) => {
            up.one_shot_until = None;
            false
        }
        None => false,
    }
}

/// A DNS message's ID: its first two bytes (0 for a runt, which nothing outstanding has).
fn dns_id(msg: &[u8]) -> u16 {
    match msg {
        [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // any epoch will do for a test
    fn epoch() -> Instant {
        Instant::now()
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    fn query(id: u16) -> Bytes {
        let mut q = vec![0u8; 12];
        q[..2].copy_from_slice(&id.to_be_bytes());
        Bytes::from(q)
    }

    fn reply(id: u16) -> Vec<u8> {
        let mut r = query(id).to_vec();
        r[2] = 0x80;
        r
    }

    fn actions(pool: &mut TcpPool) -> Vec<Action> {
        std::iter::from_fn(|| pool.poll_action()).collect()
    }

    fn connects(actions: &[Action]) -> Vec<ConnId> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Connect { conn, .. } => Some(*conn),
                _ => None,
            })
            .collect()
    }

    fn fails(actions: &[Action]) -> Vec<(u64, UpstreamFailure)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Fail { attempt, failure } => Some((attempt.0, *failure)),
                _ => None,
            })
            .collect()
    }

    /// The DNS IDs of the framed queries taken from `conn`.
    fn written(pool: &mut TcpPool, now: Instant, conn: ConnId) -> Vec<u16> {
        let mut out = BytesMut::new();
        let _ = pool.take_writes(now, conn, &mut out);
        let mut decoder = crate::framing::FrameDecoder::new();
        let mut rest = &out[..];
        let mut ids = Vec::new();
        while !rest.is_empty() {
            let used = decoder.push(rest);
            rest = &rest[used..];
            while let Some(msg) = decoder.next_message().expect("framed") {
                ids.push(dns_id(&msg));
            }
        }
        ids
    }

    fn small() -> Limits {
        Limits {
            conns_per_upstream: 2,
            pipeline: 3,
            max_queries: 10,
            ..Limits::default()
        }
    }

    #[test]
    fn queries_share_one_connection_until_it_is_full() {
        let now = epoch();
        let mut pool = TcpPool::new(small());
        for id in 1..=3 {
            pool.submit(now, AttemptId(id.into()), addr(53), query(id))
                .expect("room");
        }
        let first = actions(&mut pool);
        assert_eq!(connects(&first), vec![ConnId(0)]);
        assert_eq!(first.len(), 2, "one connect and one wake: {first:?}");
        pool.connected(now, ConnId(0));
        assert_eq!(written(&mut pool, now, ConnId(0)), vec![1, 2, 3]);
        assert!(!pool.take_writes(now, ConnId(0), &mut BytesMut::new()));
        // The fourth opens a second connection, the seventh waits.
        for id in 4..=7 {
            pool.submit(now, AttemptId(id.into()), addr(53), query(id))
                .expect("room");
        }
        assert_eq!(connects(&actions(&mut pool)), vec![ConnId(1)]);
        assert_eq!(pool.connections(), 2);
        assert_eq!(pool.outstanding(ConnId(1)), 3);
        assert_eq!(pool.held(), 7);
        // A reply frees a slot: the waiting query goes on the first connection.
        assert!(pool.reply(now, ConnId(0), &reply(2)));
        assert_eq!(actions(&mut pool), vec![Action::Write(ConnId(0))]);
        assert_eq!(written(&mut pool, now, ConnId(0)), vec![7]);
        assert_eq!(pool.held(), 6);
    }

    #[test]
    fn the_limit_fails_at_once() {
        let now = epoch();
        let mut pool = TcpPool::new(small());
        for id in 0..10 {
            pool.submit(now, AttemptId(id), addr(53), query(id as u16))
                .expect("room");
        }
        assert_eq!(
            pool.submit(now, AttemptId(10), addr(53), query(10)),
            Err(UpstreamFailure::Unreachable)
        );
    }

    #[test]
    fn upstreams_have_their_own_connections() {
        let now = epoch();
        let mut pool = TcpPool::new(small());
        pool.submit(now, AttemptId(1), addr(53), query(1))
            .expect("room");
        pool.submit(now, AttemptId(2), addr(54), query(1))
            .expect("room");
        let got = actions(&mut pool);
        assert_eq!(connects(&got).len(), 2);
    }

    #[test]
    fn broken_connection_retries_once_then_fails() {
        let now = epoch();
        let mut pool = TcpPool::new(small());
        pool.submit(now, AttemptId(1), addr(53), query(1))
            .expect("room");
        let _ = actions(&mut pool);
        pool.connected(now, ConnId(0));
        let _ = written(&mut pool, now, ConnId(0));
        pool.closed(now, ConnId(0), Closed::Lost);
        let got = actions(&mut pool);
        assert!(fails(&got).is_empty(), "retried, not failed: {got:?}");
        assert_eq!(connects(&got), vec![ConnId(1)]);
        pool.connected(now, ConnId(1));
        assert_eq!(written(&mut pool, now, ConnId(1)), vec![1]);
        pool.closed(now, ConnId(1), Closed::Lost);
        assert_eq!(
            fails(&actions(&mut pool)),
            vec![(1, UpstreamFailure::ConnectionLost)]
        );
        assert_eq!(pool.held(), 0);
        assert_eq!(pool.connections(), 0);
    }

    #[test]
    fn zero_length_frame_fails_without_retry() {
        let now = epoch();
        let mut pool = TcpPool::new(small());
        pool.submit(now, AttemptId(1), addr(53), query(1))
            .expect("room");
        let _ = actions(&mut pool);
        pool.connected(now, ConnId(0));
        pool.closed(now, ConnId(0), Closed::Broken);
        assert_eq!(
            fails(&actions(&mut pool)),
            vec![(1, UpstreamFailure::ConnectionLost)]
        );
        pool.closed(now, ConnId(0), Closed::Broken);
        assert!(actions(&mut pool).is_empty(), "a second report is ignored");
    }

    #[test]
    fn connect_failure_fails_the_connection_and_the_queue() {
        let now = epoch();
        let mut pool = TcpPool::new(Limits {
            conns_per_upstream: 1,
            pipeline: 1,
            ..small()
        });
        for id in 1..=3 {
            pool.submit(now, AttemptId(id.into()), addr(53), query(id))
                .expect("room");
        }
        let _ = actions(&mut pool);
        pool.closed(now, ConnId(0), Closed::ConnectFailed);
        let got = actions(&mut pool);
        assert_eq!(
            fails(&got),
            vec![
                (1, UpstreamFailure::Unreachable),
                (2, UpstreamFailure::Unreachable),
                (3, UpstreamFailure::Unreachable)
            ]
        );
        assert!(connects(&got).is_empty(), "no reconnect loop");
        assert_eq!(pool.held(), 0);
    }

    #[test]
    fn replies_are_matched_by_id_and_strays_are_harmless() {
        let now = epoch();
        let mut pool = TcpPool::new(small());
        pool.submit(now, AttemptId(1), addr(53), query(7))
            .expect("room");
        let _ = actions(&mut pool);
        pool.connected(now, ConnId(0));
        assert!(pool.reply(now, ConnId(0), &reply(8)), "a stray");
        assert_eq!(pool.outstanding(ConnId(0)), 1);
        assert!(pool.reply(now, ConnId(0), &reply(7)));
        assert_eq!(pool.outstanding(ConnId(0)), 0);
        assert!(pool.reply(now, ConnId(0), &[1]), "a runt");
        pool.closed(now, ConnId(0), Closed::Lost);
        assert!(fails(&actions(&mut pool)).is_empty(), "nothing outstanding");
    }

    #[test]
    fn idle_connection_expires_and_busy_one_stalls() {
        let t0 = epoch();
        let limits = small();
        let mut pool = TcpPool::new(limits);
        pool.submit(t0, AttemptId(1), addr(53), query(1))
            .expect("room");
        let _ = actions(&mut pool);
        pool.connected(t0, ConnId(0));
        let _ = written(&mut pool, t0, ConnId(0));
        let _ = pool.reply(t0, ConnId(0), &reply(1));
        let idle_at = pool.deadline(ConnId(0)).expect("open");
        assert_eq!(idle_at, t0 + limits.idle);
        assert!(
            pool.timeout(t0 + Duration::from_secs(1), ConnId(0)),
            "early"
        );
        assert!(!pool.timeout(idle_at, ConnId(0)));
        assert_eq!(pool.connections(), 0);
        assert_eq!(pool.deadline(ConnId(0)), None);

        // Outstanding queries past their limit are forgotten, not failed: the gateway has
        // given up on them already.
        pool.submit(t0, AttemptId(2), addr(53), query(2))
            .expect("room");
        let _ = actions(&mut pool);
        pool.connected(t0, ConnId(1));
        let at = pool.deadline(ConnId(1)).expect("open");
        assert_eq!(at, t0 + limits.query_limit);
        assert!(pool.timeout(at, ConnId(1)), "idle only from now on");
        assert_eq!(pool.held(), 0);
        assert!(fails(&actions(&mut pool)).is_empty());
    }

    #[test]
    fn stalled_connection_fails_its_queries() {
        let t0 = epoch();
        let limits = Limits {
            query_limit: Duration::from_secs(60),
            ..small()
        };
        let mut pool = TcpPool::new(limits);
        pool.submit(t0, AttemptId(1), addr(53), query(1))
            .expect("room");
        let _ = actions(&mut pool);
        pool.connected(t0, ConnId(0));
        let at = pool.deadline(ConnId(0)).expect("open");
        assert_eq!(at, t0 + limits.stall);
        assert!(!pool.timeout(at, ConnId(0)));
        assert_eq!(
            fails(&actions(&mut pool)),
            vec![(1, UpstreamFailure::ConnectionLost)]
        );
    }

    #[test]
    fn a_server_that_closes_after_each_reply_gets_one_query_per_connection() {
        let now = epoch();
        let mut pool = TcpPool::new(Limits {
            conns_per_upstream: 4,
            pipeline: 64,
            ..small()
        });
        for id in 1..=3 {
            pool.submit(now, AttemptId(id.into()), addr(53), query(id))
                .expect("room");
        }
        let _ = actions(&mut pool);
        pool.connected(now, ConnId(0));
        assert_eq!(written(&mut pool, now, ConnId(0)), vec![1, 2, 3]);
        let _ = pool.reply(now, ConnId(0), &reply(1));
        pool.closed(now, ConnId(0), Closed::Lost);
        // 2 and 3 are retried, each on a connection of its own.
        let got = actions(&mut pool);
        assert!(fails(&got).is_empty());
        let new = connects(&got);
        assert_eq!(new.len(), 2, "{got:?}");
        for (conn, id) in new.iter().zip([2, 3]) {
            pool.connected(now, *conn);
            assert_eq!(written(&mut pool, now, *conn), vec![id]);
            assert!(
                !pool.reply(now, *conn, &reply(id)),
                "retired after its reply"
            );
        }
        assert_eq!(pool.connections(), 0);
        assert_eq!(pool.held(), 0);
        // Later queries too, until the mode is forgotten.
        pool.submit(now, AttemptId(4), addr(53), query(4))
            .expect("room");
        pool.submit(now, AttemptId(5), addr(53), query(5))
            .expect("room");
        assert_eq!(connects(&actions(&mut pool)).len(), 2);
    }

    #[test]
    fn a_server_idle_close_does_not_switch_to_one_shot() {
        let t0 = epoch();
        let mut pool = TcpPool::new(small());
        pool.submit(t0, AttemptId(1), addr(53), query(1))
            .expect("room");
        let _ = actions(&mut pool);
        pool.connected(t0, ConnId(0));
        let _ = written(&mut pool, t0, ConnId(0));
        let _ = pool.reply(t0, ConnId(0), &reply(1));
        // Written just as the server closed the idle connection.
        let later = t0 + Duration::from_secs(8);
        pool.submit(later, AttemptId(2), addr(53), query(2))
            .expect("room");
        pool.submit(later, AttemptId(3), addr(53), query(3))
            .expect("room");
        let _ = actions(&mut pool);
        pool.closed(later, ConnId(0), Closed::Lost);
        let got = actions(&mut pool);
        assert_eq!(
            connects(&got),
            vec![ConnId(1)],
            "both on one new connection"
        );
        pool.connected(later, ConnId(1));
        assert_eq!(written(&mut pool, later, ConnId(1)), vec![2, 3]);
    }

    #[test]
    fn a_reused_id_replaces_the_forgotten_entry() {
        let now = epoch();
        let mut pool = TcpPool::new(small());
        pool.submit(now, AttemptId(1), addr(53), query(9))
            .expect("room");
        pool.submit(now, AttemptId(2), addr(53), query(9))
            .expect("room");
        assert_eq!(pool.held(), 1);
        assert_eq!(pool.outstanding(ConnId(0)), 1);
    }
}
