//! A tiny blocking DNS client for end-to-end tests: queries built and replies read by
//! [`crate::message`] (on `domain`), sent to loopback over UDP or framed TCP with timeouts, so
//! that a server that never answers fails a test instead of hanging it.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

pub use crate::message::{QuerySpec, Reply};

/// How long a test waits for one reply by default.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How a query travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub const BOTH: [Transport; 2] = [Transport::Udp, Transport::Tcp];
}

/// One record of a reply section, split into its presentation fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    /// Owner name with its trailing dot, case as sent.
    pub owner: String,
    pub ttl: u32,
    /// Type mnemonic (`SRV`, `A`, …).
    pub rtype: String,
    /// Record data in presentation format (names without a trailing dot, as `domain` prints them).
    pub rdata: String,
}

impl Rr {
    fn parse(line: &str) -> Rr {
        let mut parts = line.splitn(4, ' ');
        let mut next = || parts.next().unwrap_or_default().to_string();
        let owner = next();
        let ttl = next().parse().unwrap_or(u32::MAX);
        let rtype = next();
        let rdata = next();
        Rr {
            owner,
            ttl,
            rtype,
            rdata,
        }
    }
}

/// Convenience readers over [`Reply`].
pub trait ReplyExt {
    fn answer_rrs(&self) -> Vec<Rr>;
    fn authority_rrs(&self) -> Vec<Rr>;
    fn additional_rrs(&self) -> Vec<Rr>;
    /// `(owner, type, rdata)` of every answer record, for compact assertions.
    fn answer_triples(&self) -> Vec<(String, String, String)>;
    /// `(owner, type, rdata)` of every additional record (OPT excluded).
    fn additional_triples(&self) -> Vec<(String, String, String)>;
    /// The first EDE, if any.
    fn first_ede(&self) -> Option<(u16, String)>;
}

fn triples(rrs: Vec<Rr>) -> Vec<(String, String, String)> {
    rrs.into_iter()
        .map(|r| (r.owner, r.rtype, r.rdata))
        .collect()
}

impl ReplyExt for Reply {
    fn answer_rrs(&self) -> Vec<Rr> {
        self.answer.iter().map(|l| Rr::parse(l)).collect()
    }
    fn authority_rrs(&self) -> Vec<Rr> {
        self.authority.iter().map(|l| Rr::parse(l)).collect()
    }
    fn additional_rrs(&self) -> Vec<Rr> {
        self.additional.iter().map(|l| Rr::parse(l)).collect()
    }
    fn answer_triples(&self) -> Vec<(String, String, String)> {
        triples(self.answer_rrs())
    }
    fn additional_triples(&self) -> Vec<(String, String, String)> {
        triples(self.additional_rrs())
    }
    fn first_ede(&self) -> Option<(u16, String)> {
        self.ede.first().cloned()
    }
}

/// A local address of the server's family, port chosen by the OS.
fn local_for(server: SocketAddr) -> SocketAddr {
    match server.ip() {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
    }
}

fn timed_out(what: &str, server: SocketAddr) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no {what} reply from {server}"),
    )
}

/// Sends raw bytes over UDP and returns the first response whose ID matches the query's (the
/// first two bytes), or any response if the message is shorter than an ID.
pub fn udp_exchange(server: SocketAddr, msg: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let socket = UdpSocket::bind(local_for(server))?;
    socket.connect(server)?;
    socket.send(msg)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out("UDP", server));
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv(&mut buf) {
            // Only a response counts (QR set): a client socket that the kernel happened to
            // bind to the very port it sends to (free before the server took it) receives its
            // own query, which must not pass for a server's reply.
            Ok(len) if len >= 3 && buf[2] & 0x80 != 0 => {
                if msg.len() < 2 || buf[..2] == msg[..2] {
                    return Ok(buf[..len].to_vec());
                }
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out("UDP", server));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends bytes over UDP and reports whether anything at all came back within `wait`.
pub fn udp_silence(server: SocketAddr, msg: &[u8], wait: Duration) -> io::Result<bool> {
    let socket = UdpSocket::bind(local_for(server))?;
    socket.connect(server)?;
    socket.send(msg)?;
    socket.set_read_timeout(Some(wait))?;
    let mut buf = vec![0u8; 65535];
    match socket.recv(&mut buf) {
        Ok(_) => Ok(false),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// A TCP connection speaking framed DNS, for single and pipelined exchanges.
pub struct TcpClient {
    stream: TcpStream,
    server: SocketAddr,
}

impl TcpClient {
    pub fn connect(server: SocketAddr, timeout: Duration) -> io::Result<TcpClient> {
        let stream = TcpStream::connect_timeout(&server, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(TcpClient { stream, server })
    }

    /// Writes one framed message.
    pub fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.stream.write_all(&gatherdns_core::framing::frame(msg))
    }

    /// Writes raw bytes (no framing), for malformed-stream tests.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one framed message; `UnexpectedEof` if the server closed the connection.
    pub fn recv(&mut self) -> io::Result<Vec<u8>> {
        let mut prefix = [0u8; 2];
        self.stream
            .read_exact(&mut prefix)
            .map_err(|e| self.explain(e))?;
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        self.stream
            .read_exact(&mut msg)
            .map_err(|e| self.explain(e))?;
        Ok(msg)
    }

    /// True if the server closed the connection (EOF or reset) within the read timeout.
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        }
    }

    fn explain(&self, e: io::Error) -> io::Error {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out("TCP", self.server),
            _ => e,
        }
    }
}

/// One query, one reply, over the chosen transport.
pub fn exchange(server: SocketAddr, transport: Transport, msg: &[u8]) -> io::Result<Vec<u8>> {
    match transport {
        Transport::Udp => udp_exchange(server, msg, REPLY_TIMEOUT),
        Transport::Tcp => {
            let mut client = TcpClient::connect(server, REPLY_TIMEOUT)?;
            client.send(msg)?;
            client.recv()
        }
    }
}

/// Sends `query` and parses the reply, panicking with the server and query on failure.
pub fn ask(server: SocketAddr, transport: Transport, query: &QuerySpec) -> Reply {
    let bytes = exchange(server, transport, &query.build()).unwrap_or_else(|e| {
        panic!(
            "{transport:?} query {} {} to {server}: {e}",
            query.name, query.qtype
        )
    });
    let reply = Reply::parse(&bytes);
    assert_eq!(reply.id, query.id, "reply ID does not match the query's");
    reply
}

/// A query with the same question twice (QDCOUNT = 2), which servers must refuse with FORMERR.
pub fn two_questions(query: &QuerySpec) -> Vec<u8> {
    let single = QuerySpec {
        edns: None,
        ..query.clone()
    }
    .build();
    let question = &single[12..];
    let mut msg = single[..12].to_vec();
    msg[4..6].copy_from_slice(&2u16.to_be_bytes());
    msg.extend_from_slice(question);
    msg.extend_from_slice(question);
    msg
}
