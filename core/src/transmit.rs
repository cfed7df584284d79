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

/// Transport towards an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpstreamTransport {
    /// One datagram each way, from the driver's upstream socket.
    Udp,
    /// A TCP connection carrying this one query.
    Tcp,
}

/// Identifies one sub-query attempt, so that the driver can report its failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u64);

/// Where a [`Transmit`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A reply to a client.
    Client(ClientAddr),
    /// A sub-query to an upstream server.
    Upstream {
        /// Report failures of this attempt with this id.
        attempt: AttemptId,
        /// The upstream server.
        addr: SocketAddr,
        /// UDP or TCP.
        transport: UpstreamTransport,
    },
}

/// A message to send.
#[must_use]
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: Destination,
    /// The DNS message (without a TCP length prefix).
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

/// Why an upstream attempt failed, as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The datagram or connection was refused or could not be sent.
    Unreachable,
    /// A TCP connection closed or broke before the reply arrived.
    ConnectionLost,
}
