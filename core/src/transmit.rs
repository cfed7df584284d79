//! What the core asks its driver to send, and the addresses it talks about.

use std::net::SocketAddr;

use bytes::Bytes;

/// A listening address. When the gateway starts, `ListenerId(i)` is the address at index `i`
/// of [`crate::Gateway::listeners`]. [`crate::Gateway::reconfigure`] keeps the id of every
/// address that stays and gives an added address a number never used before, so a reply to a
/// query in flight always names the socket the query came in on;
/// [`crate::Gateway::listener_ids`] gives the id of each current address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub usize);

/// How a client reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientTransport {
    /// A UDP datagram.
    Udp,
    /// A TCP connection, identified by the driver.
    Tcp(u64),
}

/// Who sent a client query, and therefore where its reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr {
    /// The listener it arrived on.
    pub listener: ListenerId,
    /// The client's address.
    pub remote: SocketAddr,
    /// UDP, or which TCP connection.
    pub transport: ClientTransport,
}

/// UDP sockets a driver keeps towards each upstream, each on its own random port. The gateway
/// picks the one a sub-query leaves from ([`Destination::Upstream`]) and accepts its reply
/// only on that socket ([`crate::Gateway::handle_upstream_message`]), so that a spoofer must
/// guess the one port as well as the ID (RFC 5452). Two, not more: a port serves as many
/// sub-queries before it is replaced whatever the count (`SOCKET_USES` in the host), fewer
/// open ports give a blind spoofer fewer targets, and fewer sockets mean larger batches per
/// system call and fewer upstream threads woken: 4 sockets cost gatherdns-smol 13% more CPU
/// per gathered query than 2 under `benches/load/run`'s load (35 µs against 30).
pub const UPSTREAM_SOCKETS: usize = 2;

/// One of the driver's UDP sockets towards an upstream: `0..UPSTREAM_SOCKETS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketIndex(pub usize);

/// Transport of an upstream attempt: the core keeps it to match replies (a UDP reply never
/// answers a TCP attempt, nor one sent from another socket) and to retry a truncated UDP
/// reply over TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum UpstreamTransport {
    /// One datagram each way, from this one of the driver's sockets towards the upstream.
    Udp(SocketIndex),
    /// A pooled TCP connection, shared with other attempts to the same upstream.
    Tcp,
}

/// One pooled upstream TCP connection, named by the gateway (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Identifies one sub-query attempt, so that the driver can report its failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u64);

/// Where a [`Transmit`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A reply to a client.
    Client(ClientAddr),
    /// A UDP sub-query datagram from the driver's upstream sockets.
    Upstream {
        /// Report a failure to send it with this id
        /// ([`crate::Gateway::handle_upstream_failure`]).
        attempt: AttemptId,
        /// The upstream server.
        addr: SocketAddr,
        /// Which of the driver's sockets towards `addr` it leaves from; the reply counts
        /// only when it arrives on the same one.
        socket: SocketIndex,
    },
    /// Bytes to write, in order, on a pooled upstream TCP connection: one or more DNS
    /// messages, already framed with their 2-byte length prefix.
    Connection(ConnId),
}

/// A message to send.
#[must_use]
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: Destination,
    /// One DNS message without a length prefix (to a client, or a UDP sub-query); for a
    /// [`Destination::Connection`], framed messages to write as they are.
    pub payload: Bytes,
}

impl std::fmt::Debug for Transmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transmit")
            .field("destination", &self.destination)
            .field("len", &self.payload.len())
            .finish()
    }
}

/// Why an upstream attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The datagram could not be sent, or no connection could be opened (or had room).
    Unreachable,
    /// A TCP connection closed or broke before the reply arrived.
    ConnectionLost,
}

/// What the driver must do with its upstream TCP connections, drained with
/// [`crate::Gateway::poll_connection`]. The gateway decides which connection a sub-query goes
/// on, how many there are and when one is closed; the driver only moves the bytes.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionCommand {
    /// Open a TCP connection to `addr`, then report
    /// [`crate::Gateway::handle_connection_opened`], or
    /// [`crate::Gateway::handle_connection_closed`] with [`Closed::ConnectFailed`] if it
    /// cannot be opened in reasonable time.
    Open {
        /// The new connection.
        conn: ConnId,
        /// The upstream.
        addr: SocketAddr,
    },
    /// Close the connection (idle, stalled, or retired by the pool). The gateway has already
    /// forgotten it: report nothing more about it.
    Close(ConnId),
}

/// How an upstream TCP connection ended, as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The connection could not be opened (refused, unreachable, timed out).
    ConnectFailed,
    /// EOF, a read or write error or timeout: the queries outstanding are retried once on a
    /// new connection (the server may have closed an idle connection as they were written,
    /// or closed after replying to an earlier query; either way it never looked at them).
    Lost,
    /// The peer broke the framing (a zero-length frame): it is not speaking DNS, and its
    /// queries fail.
    Broken,
}
