//! Upstream TCP as outputs and inputs of the gateway: TCP attempts go into the connection pool
//! (`tcp_pool`), whose decisions come out as connection commands and framed transmits, and
//! whose deadlines are timers of the gateway; what happens on a connection comes back in as
//! `handle_connection_*` calls.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::Gateway;
use crate::tcp_pool::Action;
use crate::timers::TimerKey;
use crate::transmit::{
    AttemptId, Closed, ConnId, ConnectionCommand, Destination, Transmit, UpstreamFailure,
    UpstreamTransport,
};

impl Gateway {
    /// What the driver must do with its upstream TCP connections next.
    #[must_use]
    pub fn poll_connection(&mut self) -> Option<ConnectionCommand> {
        self.settle_decided();
        self.connections.pop_front()
    }

    /// A connection of a [`ConnectionCommand::Open`] is open: the queries waiting for it
    /// come out as transmits to it.
    pub fn handle_connection_opened(&mut self, now: Instant, conn: ConnId) {
        self.tcp.connected(now, conn);
        self.write_connection(now, conn);
        // From now on it has deadlines (an idle one at least).
        self.arm_connection(conn);
        self.settle_connections(now);
    }

    /// One DNS message read from the connection (length prefix removed).
    pub fn handle_connection_message(&mut self, now: Instant, conn: ConnId, msg: Bytes) {
        let Some(addr) = self.tcp.addr(conn) else {
            // From a connection the gateway has closed: nothing waits for it any more.
            self.stats.upstream_unmatched += 1;
            return;
        };
        if !self.tcp.reply(now, conn, &msg) {
            self.close_connection(conn);
        }
        self.upstream_message(now, addr, UpstreamTransport::Tcp, msg);
        self.settle_connections(now);
        self.release_retired();
    }

    /// The connection ended as the driver saw it: EOF, a read or write error or a write
    /// timeout is [`Closed::Lost`], a zero-length frame [`Closed::Broken`], a connect that
    /// failed or timed out [`Closed::ConnectFailed`]. Its queries are retried or fail as
    /// [`Closed`] says. Unknown or already closed connections are ignored.
    pub fn handle_connection_closed(&mut self, now: Instant, conn: ConnId, how: Closed) {
        self.conn_deadlines.remove(&conn);
        self.tcp.closed(now, conn, how);
        self.settle_connections(now);
        self.release_retired();
    }

    /// Sends an attempt's query: a datagram for the driver's UDP sockets, or into the pool.
    /// A full pool fails the attempt before the input returns, as an unreachable upstream.
    pub(super) fn send_upstream(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        addr: SocketAddr,
        transport: UpstreamTransport,
        payload: Bytes,
    ) {
        match transport {
            UpstreamTransport::Udp(socket) => self.transmits.push_back(Transmit {
                destination: Destination::Upstream {
                    attempt,
                    addr,
                    socket,
                },
                payload,
            }),
            UpstreamTransport::Tcp => {
                if self.tcp.submit(now, attempt, addr, payload).is_err() {
                    self.tcp_refused.push_back(attempt);
                }
            }
        }
    }

    /// Carries out what the pool decided during an input, until it has nothing more to say:
    /// connections to open, queries to write, attempts that failed (whose retries may give
    /// it more to do). Called at the end of every input that can touch the pool.
    pub(super) fn settle_connections(&mut self, now: Instant) {
        loop {
            if let Some(action) = self.tcp.poll_action() {
                match action {
                    Action::Connect { conn, addr } => {
                        self.connections
                            .push_back(ConnectionCommand::Open { conn, addr });
                    }
                    Action::Write(conn) => self.write_connection(now, conn),
                    Action::Fail { attempt, failure } => {
                        self.upstream_failure(now, attempt, failure);
                    }
                }
            } else if let Some(attempt) = self.tcp_refused.pop_front() {
                self.upstream_failure(now, attempt, UpstreamFailure::Unreachable);
            } else {
                return;
            }
        }
    }

    /// Everything queued for an open connection, as one transmit.
    fn write_connection(&mut self, now: Instant, conn: ConnId) {
        self.scratch.clear();
        if !self.tcp.take_writes(now, conn, &mut self.scratch) {
            return;
        }
        self.transmits.push_back(Transmit {
            destination: Destination::Connection(conn),
            payload: self.scratch.split().freeze(),
        });
        // The queries just written may bring its deadline forward; replies only move it later.
        self.arm_connection(conn);
    }

    /// Makes sure a timer entry exists at or before the connection's deadline. Called when a
    /// connection opens, after every write (every query the pool puts on an open connection
    /// is written within the same input) and after a timeout that kept it: the only times its
    /// deadline can come forward. A deadline that moved later leaves the entry where it is:
    /// it fires early, harmlessly, and is set again.
    fn arm_connection(&mut self, conn: ConnId) {
        let Some(at) = self.tcp.deadline(conn) else {
            return;
        };
        if self
            .conn_deadlines
            .get(&conn)
            .is_some_and(|armed| *armed <= at)
        {
            return;
        }
        self.conn_deadlines.insert(conn, at);
        self.timers.insert(at, TimerKey::Connection(conn));
    }

    /// A connection's timer entry for `at` is due: the pool forgets queries past their
    /// limit and closes the connection if it is idle or stalled (its queries then fail).
    pub(super) fn connection_timeout(&mut self, now: Instant, at: Instant, conn: ConnId) {
        if self.conn_deadlines.get(&conn) != Some(&at) || self.tcp.addr(conn).is_none() {
            return; // Superseded by an earlier entry, or the connection is gone.
        }
        self.conn_deadlines.remove(&conn);
        if self.tcp.timeout(now, conn) {
            self.arm_connection(conn);
        } else {
            self.close_connection(conn);
        }
    }

    /// The pool has let go of a connection: the driver closes it.
    fn close_connection(&mut self, conn: ConnId) {
        self.conn_deadlines.remove(&conn);
        self.connections.push_back(ConnectionCommand::Close(conn));
    }
}
