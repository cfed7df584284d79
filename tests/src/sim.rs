//! Deterministic simulation of a gateway and its upstreams: a simulated clock, a network
//! with fixed latency (datagrams and pooled TCP connections), and upstreams that answer from
//! zones or misbehave on purpose. Nothing sleeps and nothing touches a socket;
//! `drive_bounded` fails a test that never goes idle.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatherdns_core::corefile::{parse_corefile_text, ParseOptions};
use gatherdns_core::framing::FrameDecoder;
use gatherdns_core::loader::MemLoader;
use gatherdns_core::wire::{ClientQuery, Name, MAX_MESSAGE_LEN};
use gatherdns_core::zone::Zone;
use gatherdns_core::{
    AttemptId, ClientAddr, ClientTransport, Closed, ConnId, ConnectionCommand, Destination, Event,
    Gateway, ListenerId, SocketIndex, UpstreamFailure, UPSTREAM_SOCKETS,
};

use crate::message::{QuerySpec, Reply};
use crate::upstream_reply::{self, Head};

/// How a simulated upstream behaves.
pub enum Behaviour {
    /// Answers from its zone.
    Answer,
    /// Never answers.
    Silent,
    /// The driver reports every datagram to it as unreachable, and no connection to it opens.
    Unreachable,
    /// Its host refuses every datagram (ICMP port unreachable), which the gateway's socket
    /// towards it reports as a refusal; connections to it open (and go unanswered).
    Refusing,
    /// Replies with these bytes (ID patched in unless `keep_id`).
    Raw { bytes: Vec<u8>, keep_id: bool },
    /// Answers from its zone, but first sends a reply with the wrong ID and one for another
    /// question, one from another source address and, over UDP, the genuine reply to
    /// another of the gateway's sockets.
    Spoofed,
    /// Over UDP, sends its genuine reply to another of the gateway's sockets than the one the
    /// query left from (the only difference from `Answer`).
    WrongSocket,
}

/// A simulated upstream DNS server.
pub struct Upstream {
    pub zone: Option<Zone>,
    pub behaviour: Behaviour,
    /// Extra delay before answering.
    pub delay: Duration,
    /// Over UDP, replies larger than this are sent truncated (TC=1, no records).
    pub udp_limit: usize,
    /// Every query it received, health probes aside.
    pub received: Vec<(Transport, Bytes)>,
    /// Health probes it received.
    pub probes: usize,
}

/// How a query reached a simulated upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A pooled upstream TCP connection, as the simulated network saw it. Kept after it closes,
/// so that tests can look back at every connection the gateway asked for.
#[derive(Clone, Debug)]
pub struct Conn {
    pub addr: SocketAddr,
    /// When the gateway asked for it.
    pub requested: Instant,
    /// When it opened, if it did.
    pub opened: Option<Instant>,
    /// When it closed, and who closed it.
    pub closed: Option<(Instant, ClosedBy)>,
    /// Transmits written on it, and the queries they carried.
    pub writes: usize,
    pub queries: usize,
}

/// Who ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosedBy {
    /// A `ConnectionCommand::Close` from the gateway.
    Gateway,
    /// The simulated network, reported to the gateway as this.
    Network(Closed),
}

impl Conn {
    pub fn is_live(&self) -> bool {
        self.closed.is_none()
    }
}

/// A message (or a failure report) on its way to the gateway.
struct Scheduled {
    at: Instant,
    seq: u64,
    /// Traffic of a health probe, which never ends while an upstream is down.
    probe: bool,
    delivery: Delivery,
}

enum Delivery {
    /// A datagram from an upstream, to one of the gateway's sockets towards it.
    ToGateway {
        from: SocketAddr,
        via: SocketIndex,
        msg: Bytes,
    },
    /// A datagram that could not be sent.
    Failure(AttemptId),
    /// A refusal, reported by the gateway's socket `via` towards `from`.
    Refused { from: SocketAddr, via: SocketIndex },
    /// The outcome of a connect: open, or failed.
    Connected { conn: ConnId, ok: bool },
    /// A message read from a connection.
    OnConnection { conn: ConnId, msg: Bytes },
    /// A datagram the gateway sent to its own listening address, arriving there.
    ToListener { client: ClientAddr, msg: Bytes },
}

/// The way a query reached an upstream, and so the way its reply goes back.
#[derive(Clone, Copy)]
enum Via {
    Udp(AttemptId, SocketIndex),
    Connection(ConnId),
}

/// A reply the client received.
#[derive(Clone, Debug)]
pub struct ClientReply {
    pub client: ClientAddr,
    pub bytes: Bytes,
    pub at: Instant,
}

impl ClientReply {
    pub fn parse(&self) -> Reply {
        Reply::parse(&self.bytes)
    }
}

pub struct Sim {
    pub gw: Gateway,
    pub epoch: Instant,
    pub now: Instant,
    pub upstreams: BTreeMap<SocketAddr, Upstream>,
    pub replies: Vec<ClientReply>,
    pub events: Vec<Event>,
    pub latency: Duration,
    /// Every upstream TCP connection the gateway asked for.
    pub conns: BTreeMap<ConnId, Conn>,
    /// Datagrams the gateway sends here reach its own listener as client queries, and its
    /// replies to them come back from here (the `loop` probe, a forward to ourselves).
    pub own_address: Option<SocketAddr>,
    /// Clients that are the gateway itself, through `own_address`.
    own_clients: BTreeSet<SocketAddr>,
    queue: Vec<Scheduled>,
    seq: u64,
    next_port: u16,
}

/// Parses a Corefile held in memory, with zone files as extra in-memory files.
pub fn config(corefile: &str, files: &[(&str, &str)]) -> gatherdns_core::Config {
    let mut loader = MemLoader::new();
    for (path, text) in files {
        loader = loader.file(path, *text);
    }
    parse_corefile_text(
        Path::new("Corefile"),
        corefile,
        &loader,
        &ParseOptions { default_port: 53 },
    )
    .unwrap_or_else(|e| panic!("test Corefile does not parse: {e}"))
}

impl Sim {
    pub fn new(corefile: &str, files: &[(&str, &str)]) -> Sim {
        Sim::with_config(config(corefile, files))
    }

    pub fn with_config(config: gatherdns_core::Config) -> Sim {
        let epoch = Instant::now();
        let gw = Gateway::new(config, [42; 32]).unwrap_or_else(|e| panic!("gateway: {e}"));
        Sim {
            gw,
            epoch,
            now: epoch,
            upstreams: BTreeMap::new(),
            replies: Vec::new(),
            events: Vec::new(),
            latency: Duration::from_millis(1),
            conns: BTreeMap::new(),
            own_address: None,
            own_clients: BTreeSet::new(),
            queue: Vec::new(),
            seq: 0,
            next_port: 40000,
        }
    }

    /// Adds an upstream at `addr` answering from a zone file.
    pub fn upstream(&mut self, addr: &str, origin: &str, zonefile: &str) -> &mut Upstream {
        let origin = Name::parse(origin).expect("valid origin");
        let records = gatherdns_core::wire::parse_zonefile(zonefile, &origin)
            .unwrap_or_else(|e| panic!("zone: {e}"));
        let zone = Zone::new(origin, records).unwrap_or_else(|e| panic!("zone: {e}"));
        self.add_upstream(
            addr,
            Upstream {
                zone: Some(zone),
                behaviour: Behaviour::Answer,
                delay: Duration::ZERO,
                udp_limit: MAX_MESSAGE_LEN,
                received: Vec::new(),
                probes: 0,
            },
        )
    }

    /// Adds an upstream at `addr` with only a behaviour.
    pub fn bare_upstream(&mut self, addr: &str, behaviour: Behaviour) -> &mut Upstream {
        self.add_upstream(
            addr,
            Upstream {
                zone: None,
                behaviour,
                delay: Duration::ZERO,
                udp_limit: MAX_MESSAGE_LEN,
                received: Vec::new(),
                probes: 0,
            },
        )
    }

    fn add_upstream(&mut self, addr: &str, upstream: Upstream) -> &mut Upstream {
        let addr: SocketAddr = addr.parse().expect("socket address");
        self.upstreams.insert(addr, upstream);
        self.upstreams.get_mut(&addr).expect("just inserted")
    }

    pub fn client(&mut self, transport: ClientTransport) -> ClientAddr {
        self.next_port += 1;
        ClientAddr {
            listener: ListenerId(0),
            remote: SocketAddr::from(([127, 0, 0, 9], self.next_port)),
            transport,
        }
    }

    /// Sends a query from a new UDP client.
    pub fn send(&mut self, spec: &QuerySpec) -> ClientAddr {
        let client = self.client(ClientTransport::Udp);
        self.send_from(client, spec.build());
        client
    }

    pub fn send_from(&mut self, client: ClientAddr, msg: Bytes) {
        self.gw.handle_client_message(self.now, client, msg);
        self.drain();
    }

    /// Sends a query and drives until idle; returns the one reply (panics on zero or two).
    pub fn ask(&mut self, spec: &QuerySpec) -> Reply {
        let client = self.send(spec);
        self.drive_bounded(10_000);
        self.only_reply(client).parse()
    }

    /// The single reply `client` got.
    pub fn only_reply(&self, client: ClientAddr) -> ClientReply {
        let got: Vec<&ClientReply> = self.replies.iter().filter(|r| r.client == client).collect();
        assert_eq!(
            got.len(),
            1,
            "expected exactly one reply to {client:?}, got {}",
            got.len()
        );
        got[0].clone()
    }

    /// The server is up: the gateway's startup checks (the `loop` probe) go out.
    pub fn start(&mut self) {
        self.gw.handle_start(self.now);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(command) = self.gw.poll_connection() {
            self.connection_command(command);
        }
        while let Some(t) = self.gw.poll_transmit() {
            match t.destination {
                Destination::Client(client) if self.own_clients.contains(&client.remote) => {
                    let from = self.own_address.expect("own clients come through it");
                    let msg = t.payload;
                    // The loop probe's reply: no attempt waits for it, on whatever socket.
                    let via = SocketIndex(0);
                    let delivery = Delivery::ToGateway { from, via, msg };
                    self.schedule(self.latency, false, delivery);
                }
                Destination::Client(client) => self.replies.push(ClientReply {
                    client,
                    bytes: t.payload,
                    at: self.now,
                }),
                Destination::Upstream { addr, .. } if Some(addr) == self.own_address => {
                    let client = self.client(ClientTransport::Udp);
                    self.own_clients.insert(client.remote);
                    let msg = t.payload;
                    self.schedule(self.latency, false, Delivery::ToListener { client, msg });
                }
                Destination::Upstream {
                    attempt,
                    addr,
                    socket,
                } => self.upstream_receives(Via::Udp(attempt, socket), addr, t.payload),
                Destination::Connection(conn) => self.written(conn, &t.payload),
            }
        }
        while let Some(e) = self.gw.poll_event() {
            self.events.push(e);
        }
    }

    /// Opens (after the network's latency) or closes a connection.
    fn connection_command(&mut self, command: ConnectionCommand) {
        match command {
            ConnectionCommand::Open { conn, addr } => {
                let fresh = Conn {
                    addr,
                    requested: self.now,
                    opened: None,
                    closed: None,
                    writes: 0,
                    queries: 0,
                };
                assert!(
                    self.conns.insert(conn, fresh).is_none(),
                    "{conn:?} opened twice"
                );
                let ok = self
                    .upstreams
                    .get(&addr)
                    .is_some_and(|up| !matches!(up.behaviour, Behaviour::Unreachable));
                self.schedule(self.latency, false, Delivery::Connected { conn, ok });
            }
            ConnectionCommand::Close(conn) => {
                let c = self.conns.get_mut(&conn).expect("a connection it opened");
                assert!(c.is_live(), "{conn:?} closed twice");
                c.closed = Some((self.now, ClosedBy::Gateway));
            }
        }
    }

    /// Bytes the gateway wrote on a connection: its queries reach the upstream.
    fn written(&mut self, conn: ConnId, bytes: &[u8]) {
        let c = self.conns.get_mut(&conn).expect("a connection it opened");
        assert!(
            c.opened.is_some() && c.is_live(),
            "a write on {conn:?}, which is not open"
        );
        c.writes += 1;
        let addr = c.addr;
        let mut frames = FrameDecoder::new();
        let mut queries = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = &rest[frames.push(rest)..];
            while let Some(msg) = frames
                .next_message()
                .expect("the gateway frames its queries")
            {
                queries.push(msg);
            }
        }
        assert!(!frames.is_mid_frame(), "a write of whole frames only");
        c.queries += queries.len();
        for msg in queries {
            self.upstream_receives(Via::Connection(conn), addr, msg);
        }
    }

    /// Connections still open (or opening) to `addr`.
    pub fn live_conns(&self, addr: SocketAddr) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.addr == addr && c.is_live())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The network ends a connection (the peer reset it, or sent a zero-length frame) and
    /// reports it to the gateway; what was on its way over it is lost.
    pub fn break_conn(&mut self, conn: ConnId, how: Closed) {
        let c = self.conns.get_mut(&conn).expect("a connection it opened");
        assert!(c.is_live(), "{conn:?} is already closed");
        c.closed = Some((self.now, ClosedBy::Network(how)));
        self.gw.handle_connection_closed(self.now, conn, how);
        self.drain();
    }

    fn schedule(&mut self, after: Duration, probe: bool, delivery: Delivery) {
        self.seq += 1;
        let at = self.now + after;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            probe,
            delivery,
        });
    }

    fn upstream_receives(&mut self, via: Via, addr: SocketAddr, payload: Bytes) {
        let latency = self.latency;
        let query = ClientQuery::parse(payload.clone()).expect("the gateway sends valid queries");
        let probe = query.qname == Name::root() && query.qtype == domain::base::iana::Rtype::NS;
        let transport = match via {
            Via::Udp(..) => Transport::Udp,
            Via::Connection(_) => Transport::Tcp,
        };
        let up = match (self.upstreams.get_mut(&addr), via) {
            (Some(up), _) => up,
            (None, Via::Udp(attempt, _)) => {
                self.schedule(latency, probe, Delivery::Failure(attempt));
                return;
            }
            (None, Via::Connection(_)) => unreachable!("connections open only to upstreams"),
        };
        if probe {
            up.probes += 1;
        } else {
            up.received.push((transport, payload.clone()));
        }
        let delay = latency * 2 + up.delay;
        // Replies with their source, and the socket they go to when not the query's own.
        let mut out: Vec<(SocketAddr, Option<SocketIndex>, Bytes)> = Vec::new();
        match &up.behaviour {
            Behaviour::Silent => {}
            Behaviour::Unreachable => {
                if let Via::Udp(attempt, _) = via {
                    self.schedule(latency, probe, Delivery::Failure(attempt));
                }
                return;
            }
            Behaviour::Refusing => {
                if let Via::Udp(_, socket) = via {
                    let refused = Delivery::Refused {
                        from: addr,
                        via: socket,
                    };
                    self.schedule(latency * 2, probe, refused);
                }
                return;
            }
            Behaviour::Raw { bytes, keep_id } => {
                let mut b = bytes.clone();
                if !keep_id && b.len() >= 2 {
                    b[..2].copy_from_slice(&query.id.to_be_bytes());
                }
                out.push((addr, None, Bytes::from(b)));
            }
            Behaviour::WrongSocket => {
                let reply = answer_from_zone(up, &query, transport);
                out.push((addr, other_socket(via), reply));
            }
            Behaviour::Answer | Behaviour::Spoofed => {
                let reply = answer_from_zone(up, &query, transport);
                if matches!(up.behaviour, Behaviour::Spoofed) {
                    let mut wrong_id = reply.to_vec();
                    wrong_id[..2].copy_from_slice(&query.id.wrapping_add(1).to_be_bytes());
                    out.push((addr, None, Bytes::from(wrong_id)));
                    let other = QuerySpec::new("evil.example.", query.qtype)
                        .id(query.id)
                        .build();
                    let mut other = other.to_vec();
                    other[2] |= 0x80; // a response for another question
                    out.push((addr, None, Bytes::from(other)));
                    // Over TCP the source is the connection itself.
                    if transport == Transport::Udp {
                        let elsewhere = SocketAddr::new(addr.ip(), addr.port().wrapping_add(1));
                        out.push((elsewhere, None, reply.clone()));
                        out.push((addr, other_socket(via), reply.clone()));
                    }
                }
                out.push((addr, None, reply));
            }
        }
        for (from, to, msg) in out {
            let delivery = match via {
                Via::Udp(_, socket) => Delivery::ToGateway {
                    from,
                    via: to.unwrap_or(socket),
                    msg,
                },
                Via::Connection(conn) => Delivery::OnConnection { conn, msg },
            };
            self.schedule(delay, probe, delivery);
        }
    }

    /// Delivers everything the network has due at its next delivery time in one input
    /// batch, as a driver hands a received batch to the gateway, then drains once. Returns
    /// false when nothing is on its way.
    pub fn step_together(&mut self) -> bool {
        let Some(at) = self.queue.iter().map(|d| d.at).min() else {
            return false;
        };
        self.now = self.now.max(at);
        let mut due: Vec<Scheduled> = Vec::new();
        let mut index = 0;
        while index < self.queue.len() {
            if self.queue[index].at == at {
                due.push(self.queue.remove(index));
            } else {
                index += 1;
            }
        }
        due.sort_by_key(|d| d.seq);
        for scheduled in due {
            self.deliver(scheduled.delivery);
        }
        self.drain();
        true
    }

    /// Advances to the next network delivery or gateway deadline and handles it.
    /// Returns false when there is nothing left to do.
    pub fn step(&mut self) -> bool {
        let next_delivery = self.queue.iter().map(|d| (d.at, d.seq)).min();
        let next_timer = self.gw.poll_timeout();
        let delivery_first = match (next_delivery, next_timer) {
            (None, None) => return false,
            (Some((d, _)), Some(t)) => d <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if delivery_first {
            let (at, seq) = next_delivery.expect("some");
            let index = self
                .queue
                .iter()
                .position(|d| d.at == at && d.seq == seq)
                .expect("present");
            let scheduled = self.queue.remove(index);
            self.now = self.now.max(scheduled.at);
            self.deliver(scheduled.delivery);
        } else {
            self.now = self.now.max(next_timer.expect("some"));
            self.gw.handle_timeout(self.now);
        }
        self.drain();
        true
    }

    fn deliver(&mut self, delivery: Delivery) {
        let now = self.now;
        match delivery {
            Delivery::ToGateway { from, via, msg } => {
                self.gw.handle_upstream_message(now, from, via, msg)
            }
            Delivery::ToListener { client, msg } => self.gw.handle_client_message(now, client, msg),
            Delivery::Failure(attempt) => {
                self.gw
                    .handle_upstream_failure(now, attempt, UpstreamFailure::Unreachable)
            }
            Delivery::Refused { from, via } => self.gw.handle_upstream_refused(now, from, via),
            Delivery::Connected { conn, ok } => {
                let c = self.conns.get_mut(&conn).expect("a connection it opened");
                if !c.is_live() {
                    return;
                }
                if ok {
                    c.opened = Some(now);
                    self.gw.handle_connection_opened(now, conn);
                } else {
                    c.closed = Some((now, ClosedBy::Network(Closed::ConnectFailed)));
                    self.gw
                        .handle_connection_closed(now, conn, Closed::ConnectFailed);
                }
            }
            Delivery::OnConnection { conn, msg } => {
                let c = self.conns.get_mut(&conn).expect("a connection it opened");
                if !c.is_live() {
                    return; // A closed connection loses what was still on its way.
                }
                if msg.is_empty() {
                    // A zero-length frame, as a driver's frame decoder reports it.
                    c.closed = Some((now, ClosedBy::Network(Closed::Broken)));
                    self.gw.handle_connection_closed(now, conn, Closed::Broken);
                } else {
                    self.gw.handle_connection_message(now, conn, msg);
                }
            }
        }
    }

    /// Steps until no client query is in flight and only health-probe traffic is left (probes
    /// of down upstreams go on for ever); panics after `max` steps.
    pub fn drive_bounded(&mut self, max: usize) {
        for _ in 0..max {
            if self.gw.queries_in_flight() == 0 && self.queue.iter().all(|d| d.probe) {
                return;
            }
            if !self.step() {
                return;
            }
        }
        panic!("simulation did not go idle within {max} steps");
    }

    /// Advances the clock by `d`, handling everything due on the way.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let next_delivery = self.queue.iter().map(|d| d.at).min();
            let next = [next_delivery, self.gw.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = until;
        self.gw.handle_timeout(self.now);
        self.drain();
    }

    /// Milliseconds since the simulation started.
    pub fn elapsed_ms(&self, at: Instant) -> u128 {
        at.duration_since(self.epoch).as_millis()
    }
}

/// A reply from the upstream's zone, truncated over UDP beyond its limit, encoded by
/// `domain` (see `upstream_reply.rs`).
fn answer_from_zone(up: &Upstream, query: &ClientQuery, transport: Transport) -> Bytes {
    let zone = up.zone.as_ref().expect("answering upstreams have a zone");
    let answer = zone.lookup(&query.qname, query.qtype);
    let head = Head {
        id: query.id,
        rd: query.rd,
        cd: query.cd,
        aa: answer.aa,
        ra: false,
        tc: false,
        rcode: answer.rcode,
        question: (&query.qname, query.qtype, query.qclass),
        edns: query.edns.map(|e| (1232, e.dnssec_ok)),
    };
    let limit = match transport {
        Transport::Udp => up.udp_limit,
        Transport::Tcp => MAX_MESSAGE_LEN,
    };
    upstream_reply::build(
        &head,
        [&answer.answer, &answer.authority, &answer.additional],
        limit,
    )
}

/// Another of the gateway's sockets towards the upstream than the one a UDP query left from.
fn other_socket(via: Via) -> Option<SocketIndex> {
    match via {
        Via::Udp(_, SocketIndex(i)) => Some(SocketIndex((i + 1) % UPSTREAM_SOCKETS)),
        Via::Connection(_) => None,
    }
}
