//! The reference model behind `gateway_ops` and the model-based property test (firezone's
//! reference-state style): a harness plays clients, upstreams, connections and the clock for
//! a gateway, one [`Op`] at a time, and after every step checks the gateway's own invariants
//! and what the model says must have happened by then.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::base::Message;
use domain::rdata::AllRecordData;

use super::fixtures::{caps, configs, hosts_address, COREFILES, HOSTS_TEXTS, MAX_INFLIGHT};
use super::ops::{Op, ReplyKind, Target};
use super::reply::{Encode, ReplySpec};
use crate::config::defaults;
use crate::framing::FrameDecoder;
use crate::gateway::TIMER_HORIZON;
use crate::wire::{ClientQuery, Name, Rcode, Rtype};
use crate::{
    AttemptId, ClientAddr, ClientTransport, Closed, ConnId, ConnectionCommand, Destination,
    Gateway, ListenerId, SocketIndex, UpstreamFailure, UPSTREAM_SOCKETS,
};

/// A proxied attempt's own timeout (`PROXY_ATTEMPT_TIMEOUT` in `gateway/start.rs`).
const PROXY_ATTEMPT: Duration = Duration::from_secs(1);

/// The longest an attempt lives: a health probe's timeout (`gateway/health.rs`). Attempts of
/// a retired configuration are all gone this long after its last query.
const LONGEST_ATTEMPT: Duration = Duration::from_secs(2);

/// Runs `ops` against a fresh gateway; `Err` names the first step whose checks failed.
pub fn run(ops: &[Op], encode: Encode) -> Result<(), String> {
    let mut harness = Harness::new(encode);
    harness
        .check()
        .map_err(|why| format!("at the start: {why}"))?;
    for (step, op) in ops.iter().enumerate() {
        harness
            .apply(op)
            .and_then(|()| harness.check())
            .map_err(|why| format!("step {step} ({op:?}): {why}"))?;
    }
    Ok(())
}

/// A client query and what became of it.
struct Asked {
    target: Target,
    client: ClientAddr,
    id: u16,
    qname: Name,
    qtype: Rtype,
    /// The configuration generation it started under.
    generation: u32,
    /// It must be answered by then.
    deadline: Instant,
    replies: usize,
    /// The reply's RCODE and A addresses.
    answer: Option<(Rcode, Vec<Ipv4Addr>)>,
}

/// A sub-query an upstream received.
struct Sub {
    via: Via,
    addr: SocketAddr,
    id: u16,
    qname: Name,
    qtype: Rtype,
    sent: Instant,
    /// The client query it is for (by the query's number in its first label), if any.
    query: Option<usize>,
    /// Its attempt has ended from the harness's point of view: its send was reported failed,
    /// or a reply that matches it came (a retry over TCP may then wait unseen in the pool).
    ended: bool,
}

#[derive(Clone, Copy, Debug)]
enum Via {
    Udp {
        attempt: AttemptId,
        socket: SocketIndex,
    },
    Conn(ConnId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    Opening,
    Open,
    Gone,
}

struct Harness {
    gw: Gateway,
    encode: Encode,
    now: Instant,
    generation: u32,
    /// The configuration of each generation.
    variants: BTreeMap<u32, usize>,
    asked: Vec<Asked>,
    subs: Vec<Sub>,
    conns: BTreeMap<ConnId, ConnState>,
    /// The upstream of each connection.
    conn_addrs: BTreeMap<ConnId, SocketAddr>,
    hosts_path: PathBuf,
    hosts_version: usize,
    /// When the last query of a retired configuration was answered (or the last reload).
    retired_settled: Instant,
    /// When each recent input was handed over, for the bound on stale timers.
    inputs: VecDeque<Instant>,
    /// What the step in progress must bring: a reply to this query with this RCODE (and
    /// address, for an A answer).
    expect: Option<(usize, Rcode, Option<Ipv4Addr>)>,
}

impl Harness {
    fn new(encode: Encode) -> Harness {
        let gw = Gateway::new(configs()[0].clone(), [3; 32]).expect("a valid configuration");
        let hosts_path = gw.watched_files()[0].path.clone();
        let now = super::epoch();
        Harness {
            gw,
            encode,
            now,
            generation: 1,
            variants: BTreeMap::from([(1, 0)]),
            asked: Vec::new(),
            subs: Vec::new(),
            conns: BTreeMap::new(),
            conn_addrs: BTreeMap::new(),
            hosts_path,
            hosts_version: 0,
            retired_settled: now,
            inputs: VecDeque::new(),
            expect: None,
        }
    }

    fn input(&mut self) {
        self.inputs.push_back(self.now);
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        self.expect = None;
        match op {
            Op::Query { target, tcp, srv } => self.query(*target, *tcp, *srv)?,
            Op::Reply { pick, kind } => self.reply(*pick, kind)?,
            Op::Fail { pick } => {
                let udp: Vec<usize> = (0..self.subs.len())
                    .filter(|i| matches!(self.subs[*i].via, Via::Udp { .. }))
                    .collect();
                if let Some(&index) = newest(&udp, *pick) {
                    let sub = &mut self.subs[index];
                    sub.ended = true;
                    let Via::Udp { attempt, .. } = sub.via else {
                        unreachable!("picked among UDP sub-queries")
                    };
                    self.input();
                    self.gw.handle_upstream_failure(
                        self.now,
                        attempt,
                        UpstreamFailure::Unreachable,
                    );
                }
            }
            Op::Open { pick } => {
                if let Some(conn) = self.pick_conn(ConnState::Opening, *pick) {
                    self.conns.insert(conn, ConnState::Open);
                    self.input();
                    self.gw.handle_connection_opened(self.now, conn);
                }
            }
            Op::Close { pick, how } => {
                let state = match how {
                    Closed::ConnectFailed => ConnState::Opening,
                    Closed::Lost | Closed::Broken => ConnState::Open,
                };
                if let Some(conn) = self.pick_conn(state, *pick) {
                    self.conns.insert(conn, ConnState::Gone);
                    self.input();
                    self.gw.handle_connection_closed(self.now, conn, *how);
                }
            }
            Op::Advance { ms } => {
                let until = self.now + Duration::from_millis(u64::from(*ms));
                // Each deadline is a step of its own, checked like any other.
                for _ in 0..10_000 {
                    match self.gw.poll_timeout() {
                        Some(at) if at <= until => {
                            self.timeout(at)?;
                            self.check()?;
                        }
                        _ => {
                            self.now = until;
                            return Ok(());
                        }
                    }
                }
                return Err("deadlines keep falling due".into());
            }
            Op::NextTimeout => {
                if let Some(at) = self.gw.poll_timeout() {
                    self.timeout(at)?;
                }
            }
            Op::Reconfigure { variant } => {
                let variant = usize::from(*variant) % COREFILES.len();
                self.input();
                self.gw
                    .reconfigure(self.now, configs()[variant].clone())
                    .map_err(|e| format!("a valid configuration refused: {e}"))?;
                self.generation += 1;
                self.variants.insert(self.generation, variant);
                // Each configuration reads the hosts file as it was when it was parsed.
                self.hosts_version = 0;
                self.retired_settled = self.now;
                self.drain()?;
            }
            Op::UpdateFile { variant } => {
                let variant = usize::from(*variant) % (HOSTS_TEXTS.len() + 1);
                let (path, text) = match HOSTS_TEXTS.get(variant) {
                    Some(text) => (self.hosts_path.clone(), *text),
                    None => (PathBuf::from("elsewhere.txt"), HOSTS_TEXTS[1]),
                };
                let valid = variant + 1 < HOSTS_TEXTS.len();
                match (self.gw.update_file(&path, text), valid) {
                    (Ok(()), true) => self.hosts_version = variant,
                    (Err(_), false) => {}
                    (result, _) => {
                        return Err(format!("update_file({path:?}) gave {result:?}"));
                    }
                }
            }
        }
        self.drain()?;
        self.expected()?;
        // An input may leave a deadline already due (a connection that opens after its
        // queries' limit): a driver wakes at once for it, so the harness does too.
        if self.gw.poll_timeout().is_some_and(|at| at <= self.now) {
            self.timeout(self.now)?;
        }
        Ok(())
    }

    fn timeout(&mut self, at: Instant) -> Result<(), String> {
        self.now = self.now.max(at);
        self.input();
        self.gw.handle_timeout(self.now);
        self.drain()
    }

    fn pick_conn(&self, state: ConnState, pick: u8) -> Option<ConnId> {
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, s)| **s == state)
            .map(|(c, _)| *c)
            .collect();
        newest(&conns, pick).copied()
    }

    fn query(&mut self, target: Target, tcp: bool, srv: bool) -> Result<(), String> {
        let number = self.asked.len();
        let qname = match target {
            Target::Gather => format!("q{number}.distributed.local."),
            Target::Proxy => format!("q{number}.fwd.test."),
            Target::Hosts => "h.hosts.test.".to_string(),
            Target::Refused => format!("q{number}.elsewhere.example."),
        };
        let qname = Name::parse(&qname).map_err(|e| e.to_string())?;
        let qtype = if srv { Rtype::SRV } else { Rtype::A };
        let transport = if tcp {
            ClientTransport::Tcp(number as u64)
        } else {
            ClientTransport::Udp
        };
        let port = 10_000 + u16::try_from(number).map_err(|_| "too many queries")?;
        let client = ClientAddr {
            listener: ListenerId(0),
            remote: SocketAddr::from(([198, 18, 0, 1], port)),
            transport,
        };
        let id = (number as u16).wrapping_mul(7919);
        let pending = self.asked.iter().filter(|a| a.replies == 0).count();
        self.expect = match target {
            Target::Refused => Some((number, Rcode::REFUSED, None)),
            Target::Hosts => {
                let addr = (!srv).then(|| hosts_address(self.hosts_version));
                Some((number, Rcode::NOERROR, addr))
            }
            // At the cap, a query that would wait is refused at once.
            Target::Gather | Target::Proxy if pending >= MAX_INFLIGHT => {
                Some((number, Rcode::REFUSED, None))
            }
            Target::Gather | Target::Proxy => None,
        };
        self.asked.push(Asked {
            target,
            client,
            id,
            qname: qname.clone(),
            qtype,
            generation: self.generation,
            deadline: self.now + defaults::TIMEOUT,
            replies: 0,
            answer: None,
        });
        self.input();
        let msg = super::plain_query(id, &qname, qtype);
        self.gw.handle_client_message(self.now, client, msg);
        Ok(())
    }

    fn reply(&mut self, pick: u8, kind: &ReplyKind) -> Result<(), String> {
        let all: Vec<usize> = (0..self.subs.len()).collect();
        let Some(&index) = newest(&all, pick) else {
            return Ok(());
        };
        let sub = &self.subs[index];
        let marker = sub.query.map(marker);
        let mut spec = ReplySpec {
            id: sub.id,
            qname: sub.qname.clone(),
            qtype: sub.qtype,
            rd: true,
            tc: false,
            rcode: Rcode::NOERROR,
            answers: marker
                .filter(|_| sub.qtype == Rtype::A)
                .into_iter()
                .collect(),
        };
        let (mut from, mut via) = (sub.addr, sub.via);
        match kind {
            ReplyKind::Right => {}
            ReplyKind::ServFail => {
                spec.rcode = Rcode::SERVFAIL;
                spec.answers.clear();
            }
            ReplyKind::WrongId => spec.id = spec.id.wrapping_add(1),
            ReplyKind::WrongQuestion => {
                spec.qname = Name::parse("forged.example.").map_err(|e| e.to_string())?;
            }
            ReplyKind::WrongSource => match via {
                Via::Udp { .. } => from.set_port(from.port().wrapping_add(1)),
                Via::Conn(_) => {
                    let attempt = AttemptId(u64::MAX);
                    via = Via::Udp {
                        attempt,
                        socket: SocketIndex(0),
                    };
                }
            },
            ReplyKind::WrongSocket => match via {
                Via::Udp { attempt, socket } => {
                    let socket = SocketIndex((socket.0 + 1) % UPSTREAM_SOCKETS);
                    via = Via::Udp { attempt, socket };
                }
                Via::Conn(conn) => {
                    let other = self
                        .conns
                        .iter()
                        .find(|(c, s)| **c != conn && **s == ConnState::Open);
                    if let Some((other, _)) = other {
                        via = Via::Conn(*other);
                    }
                }
            },
            ReplyKind::Truncated => {
                spec.tc = true;
                spec.answers.clear();
            }
            ReplyKind::Malformed(_) => {}
        }
        let msg = match kind {
            ReplyKind::Malformed(bytes) => {
                let mut bytes = bytes.clone();
                if bytes.len() >= 2 {
                    bytes[..2].copy_from_slice(&sub.id.to_be_bytes());
                }
                bytes
            }
            _ => (self.encode)(&spec),
        };
        // A genuine reply to the attempt a proxied query waits for ends that query now.
        let genuine = matches!(kind, ReplyKind::Right | ReplyKind::ServFail);
        if genuine && self.awaited(index) {
            let query = sub.query.expect("awaited sub-queries have a query");
            let addr = marker.filter(|_| *kind == ReplyKind::Right && sub.qtype == Rtype::A);
            self.expect = Some((query, spec.rcode, addr));
        }
        let matching = matches!(
            kind,
            ReplyKind::Right | ReplyKind::ServFail | ReplyKind::Truncated | ReplyKind::Malformed(_)
        );
        if matching {
            self.subs[index].ended = true;
        }
        match via {
            Via::Udp { socket, .. } => {
                self.input();
                let msg = Bytes::from(msg);
                self.gw.handle_upstream_message(self.now, from, socket, msg);
            }
            Via::Conn(conn) => {
                // A driver reads nothing more from a connection that has ended.
                if self.conns.get(&conn) == Some(&ConnState::Open) {
                    self.input();
                    let msg = Bytes::from(msg);
                    self.gw.handle_connection_message(self.now, conn, msg);
                }
            }
        }
        Ok(())
    }

    /// Whether sub-query `index` is the UDP attempt a proxied query is waiting for: the
    /// latest sent for the query, not failed, not timed out.
    fn awaited(&self, index: usize) -> bool {
        let sub = &self.subs[index];
        let Some(query) = sub.query else {
            return false;
        };
        let asked = &self.asked[query];
        let proxied = asked.target == Target::Proxy;
        let latest = self.subs[index + 1..]
            .iter()
            .all(|s| s.query != Some(query));
        proxied
            && asked.replies == 0
            && latest
            && !sub.ended
            && matches!(sub.via, Via::Udp { .. })
            && self.now < sub.sent + PROXY_ATTEMPT
    }

    /// Hands every output of the gateway to the simulated network, checking the driver's side
    /// of the contract on the way.
    fn drain(&mut self) -> Result<(), String> {
        loop {
            let mut any = false;
            while let Some(command) = self.gw.poll_connection() {
                any = true;
                match command {
                    ConnectionCommand::Open { conn, addr } => {
                        if self.conns.insert(conn, ConnState::Opening).is_some() {
                            return Err(format!("{conn:?} opened twice"));
                        }
                        self.conn_addrs.insert(conn, addr);
                    }
                    ConnectionCommand::Close(conn) => match self.conns.get(&conn) {
                        Some(ConnState::Opening | ConnState::Open) => {
                            self.conns.insert(conn, ConnState::Gone);
                        }
                        state => return Err(format!("close of {conn:?}, which is {state:?}")),
                    },
                }
            }
            while let Some(transmit) = self.gw.poll_transmit() {
                any = true;
                match transmit.destination {
                    Destination::Client(client) => self.client_reply(client, &transmit.payload)?,
                    Destination::Upstream {
                        attempt,
                        addr,
                        socket,
                    } => self.received(Via::Udp { attempt, socket }, addr, transmit.payload)?,
                    Destination::Connection(conn) => {
                        if self.conns.get(&conn) != Some(&ConnState::Open) {
                            return Err(format!("a write on {conn:?}, which is not open"));
                        }
                        let addr = self.conn_addrs[&conn];
                        let mut frames = FrameDecoder::new();
                        let mut rest = &transmit.payload[..];
                        while !rest.is_empty() {
                            rest = &rest[frames.push(rest)..];
                            while let Some(msg) =
                                frames.next_message().map_err(|e| e.to_string())?
                            {
                                self.received(Via::Conn(conn), addr, msg)?;
                            }
                        }
                        if frames.is_mid_frame() {
                            return Err("a write that ends mid-frame".into());
                        }
                    }
                }
            }
            if !any {
                break;
            }
        }
        while self.gw.poll_event().is_some() {}
        Ok(())
    }

    /// A sub-query reaches its upstream.
    fn received(&mut self, via: Via, addr: SocketAddr, msg: Bytes) -> Result<(), String> {
        let query = ClientQuery::parse(msg)
            .map_err(|e| format!("a sub-query that does not parse: {e:?}"))?;
        // Sub-queries of the model's queries start with `q<number>`; probes ask for `.`.
        let number = query
            .qname
            .labels()
            .next()
            .and_then(|l| std::str::from_utf8(l).ok()?.strip_prefix('q')?.parse().ok())
            .filter(|n: &usize| *n < self.asked.len());
        self.subs.push(Sub {
            via,
            addr,
            id: query.id,
            qname: query.qname,
            qtype: query.qtype,
            sent: self.now,
            query: number,
            ended: false,
        });
        Ok(())
    }

    /// A reply reaches a client: the one that asked, once, echoing its ID and question.
    fn client_reply(&mut self, client: ClientAddr, payload: &[u8]) -> Result<(), String> {
        let Some(asked) = self.asked.iter_mut().find(|a| a.client == client) else {
            return Err(format!("a reply to {client:?}, who never asked"));
        };
        asked.replies += 1;
        if asked.replies > 1 {
            return Err(format!("{} answered twice", asked.qname));
        }
        if client.transport == ClientTransport::Udp && payload.len() > 512 {
            return Err(format!(
                "a UDP reply of {} bytes without EDNS",
                payload.len()
            ));
        }
        let msg = Message::from_octets(payload)
            .map_err(|e| format!("a reply that does not parse: {e}"))?;
        let header = msg.header();
        let question = msg
            .sole_question()
            .map_err(|e| format!("a reply without its question: {e}"))?;
        let qname = Name::parse(&format!("{}.", question.qname())).map_err(|e| e.to_string())?;
        if header.id() != asked.id
            || !header.qr()
            || qname != asked.qname
            || question.qtype() != asked.qtype
        {
            return Err(format!(
                "the reply to {} {} has ID {} and question {} {}",
                asked.qname,
                asked.qtype,
                header.id(),
                qname,
                question.qtype()
            ));
        }
        let mut addresses = Vec::new();
        let answer = msg.answer().map_err(|e| e.to_string())?;
        for record in answer {
            let record = record.map_err(|e| e.to_string())?;
            if let Ok(Some(r)) = record.to_record::<AllRecordData<_, _>>() {
                if let AllRecordData::A(a) = r.data() {
                    addresses.push(a.addr());
                }
            }
        }
        asked.answer = Some((header.rcode(), addresses));
        if asked.generation < self.generation {
            self.retired_settled = self.now;
        }
        Ok(())
    }

    /// The reply the step in progress had to bring.
    fn expected(&self) -> Result<(), String> {
        let Some((query, rcode, addr)) = self.expect else {
            return Ok(());
        };
        let asked = &self.asked[query];
        let Some((got, addresses)) = &asked.answer else {
            return Err(format!(
                "{} {} not answered at once",
                asked.qname, asked.qtype
            ));
        };
        if *got != rcode || addr.is_some_and(|a| !addresses.contains(&a)) {
            return Err(format!(
                "{} {} answered {got} {addresses:?}, expected {rcode} {addr:?}",
                asked.qname, asked.qtype
            ));
        }
        Ok(())
    }

    /// The invariants, after every step.
    fn check(&mut self) -> Result<(), String> {
        let now = self.now;
        self.gw.check_invariants(now)?;
        // What handle_timeout leaves is in the future: else a driver would spin.
        let next = self.gw.poll_timeout();
        if next.is_some_and(|at| at <= now) {
            return Err(format!(
                "a deadline {:?} overdue is left after handle_timeout",
                now - next.unwrap_or(now)
            ));
        }
        // Each client query is answered once, or waits with a deadline that will answer it.
        let mut waiting = 0;
        for a in self.asked.iter().filter(|a| a.replies == 0) {
            waiting += 1;
            if now >= a.deadline || next.is_none_or(|at| at > a.deadline) {
                return Err(format!(
                    "{} {} unanswered, {:?} past its deadline, next timeout {:?}",
                    a.qname,
                    a.qtype,
                    now.saturating_duration_since(a.deadline),
                    next.map(|at| at.saturating_duration_since(now))
                ));
            }
        }
        let census = self.gw.census();
        if census.queries != waiting {
            return Err(format!(
                "the gateway holds {} queries, {waiting} wait for a reply",
                census.queries
            ));
        }
        if census.generation != self.generation {
            return Err(format!(
                "generation {} in force, expected {}",
                census.generation, self.generation
            ));
        }
        // max_concurrent, pool by pool, in each pool's own configuration: every attempt of a
        // client query counts (retries and TCP retries too), health probes do not.
        for load in &census.pools {
            let variant = self.variants[&load.generation];
            let cap = caps(&configs()[variant])[load.index];
            if cap.is_some_and(|cap| load.in_flight > cap) {
                return Err(format!("{load:?} over its max_concurrent {cap:?}"));
            }
        }
        // A retired configuration goes once its queries and their attempts have.
        let old_waiting = self
            .asked
            .iter()
            .any(|a| a.replies == 0 && a.generation < self.generation);
        if !old_waiting && now >= self.retired_settled + LONGEST_ATTEMPT && census.retired > 0 {
            return Err(format!("{} retired configurations kept", census.retired));
        }
        // Stale timer entries come only from recent work.
        while self
            .inputs
            .front()
            .is_some_and(|at| *at + TIMER_HORIZON < now)
        {
            self.inputs.pop_front();
        }
        let bound =
            census.queries + census.attempts + census.connections + 16 + 8 * self.inputs.len();
        if census.timers > bound {
            return Err(format!("{} timer entries, bound {bound}", census.timers));
        }
        Ok(())
    }
}

/// The address an upstream answers with for client query `number`.
fn marker(number: usize) -> Ipv4Addr {
    let [.., hi, lo] = (number as u32).to_be_bytes();
    Ipv4Addr::new(10, 77, hi, lo)
}

/// The item `pick` places back from the newest, wrapping around.
fn newest<T>(items: &[T], pick: u8) -> Option<&T> {
    let n = items.len();
    (n > 0).then(|| &items[n - 1 - usize::from(pick) % n])
}
