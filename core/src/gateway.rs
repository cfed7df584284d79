//! The gateway: the sans-IO state machine the runtimes drive. It dispatches client queries to
//! the gather, zone or proxy path, tracks attempts and deadlines, and queues what to send.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::answer::Answer;
use crate::block::{Block, Source};
use crate::config::{defaults, Config};
use crate::error::ConfigError;
use crate::event::Event;
use crate::gather::{self, ClusterReply, MergeQuery, Outcome};
use crate::metrics::Stats;
use crate::pending::{Kind, Part, Pending, Query};
use crate::respond::{self, ReplyMeta};
use crate::routing::{plan_gather, Router};
use crate::timers::{TimerKey, Timers};
use crate::transmit::{
    AttemptId, ClientAddr, ClientTransport, Destination, Transmit, UpstreamFailure,
    UpstreamTransport,
};
use crate::wire::{
    ede, write_query, write_reply, ClientQuery, Ede, QueryError, Rcode, Record, ReplyHeader, Rtype,
    UpstreamReply, EDNS_UDP_SIZE, MAX_MESSAGE_LEN, PLAIN_UDP_LIMIT,
};

/// Attempts per cluster part: the first try and one retry on another upstream.
const MAX_TRIES: u8 = 2;

/// The gatherdns state machine. See the crate documentation for the driving loop.
pub struct Gateway {
    router: Router,
    blocks: Vec<Block>,
    pending: Pending,
    timers: Timers,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    scratch: BytesMut,
    stats: Stats,
}

impl Gateway {
    /// Builds a gateway from a validated configuration. `seed` feeds the random number
    /// generator used for sub-query IDs; the driver takes it from the OS.
    pub fn new(config: Config, now: Instant, seed: [u8; 32]) -> Result<Gateway, ConfigError> {
        let _ = now;
        let blocks = config
            .servers
            .iter()
            .map(|b| Block::new(b, 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Gateway {
            router: Router::new(&config.servers),
            blocks,
            pending: Pending::new(seed),
            timers: Timers::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            scratch: BytesMut::with_capacity(MAX_MESSAGE_LEN),
            stats: Stats::default(),
        })
    }

    /// The addresses to listen on (UDP and TCP); a [`crate::ListenerId`] indexes this list.
    pub fn listeners(&self) -> &[SocketAddr] {
        self.router.listeners()
    }

    /// Counters since creation.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Client queries waiting for upstreams.
    pub fn queries_in_flight(&self) -> usize {
        self.pending.queries.len()
    }

    /// A message from a client.
    pub fn handle_client_message(&mut self, now: Instant, from: ClientAddr, msg: Bytes) {
        self.stats.client_messages += 1;
        let query = match ClientQuery::parse(msg) {
            Ok(query) => query,
            Err(QueryError::Drop(_)) => {
                self.stats.client_dropped += 1;
                return;
            }
            Err(QueryError::Reply {
                id,
                opcode,
                rd,
                cd,
                question,
                edns,
                rcode,
                ..
            }) => {
                let limit = match from.transport {
                    ClientTransport::Udp => edns.map_or(PLAIN_UDP_LIMIT, |e| {
                        usize::from(e.udp_size.clamp(512, EDNS_UDP_SIZE))
                    }),
                    ClientTransport::Tcp(_) => MAX_MESSAGE_LEN,
                };
                let header = ReplyHeader {
                    id,
                    opcode,
                    rd,
                    cd,
                    aa: false,
                    ra: false,
                    rcode,
                    question: question.as_ref().map(|(n, t, c)| (n, *t, *c)),
                    edns_do: edns.map(|e| e.dnssec_ok),
                    ede: &[],
                };
                self.scratch.reserve(512);
                let (payload, _) = write_reply(&mut self.scratch, &header, [&[], &[], &[]], limit);
                self.stats.replies += 1;
                self.transmits.push_back(Transmit {
                    destination: Destination::Client(from),
                    payload,
                });
                return;
            }
        };
        let Some(block) = self.router.block_for(from.listener, &query.qname) else {
            self.reply_now(
                now,
                now,
                from,
                &query,
                None,
                &Answer::empty(Rcode::REFUSED, false),
                &[],
            );
            return;
        };
        let b = &self.blocks[block];
        if let Some(g) = b
            .gather
            .as_ref()
            .filter(|g| query.qname.is_at_or_below(&g.domain))
        {
            if let Some(answer) = synthesised(g, &query) {
                self.reply_now(now, now, from, &query, Some(block), &answer, &[]);
                return;
            }
            self.start_gather(now, from, query, block);
        } else if let Some(zone) = b.zone_for(&query.qname) {
            let answer = b.zones[zone].lookup(&query.qname, query.qtype);
            self.reply_now(now, now, from, &query, Some(block), &answer, &[]);
        } else if let Some(forward) = b.forward_for(&query.qname) {
            self.start_proxy(now, from, query, block, forward);
        } else {
            self.reply_now(
                now,
                now,
                from,
                &query,
                Some(block),
                &Answer::empty(Rcode::REFUSED, false),
                &[],
            );
        }
    }

    fn start_gather(&mut self, now: Instant, client: ClientAddr, query: ClientQuery, block: usize) {
        let g = self.blocks[block]
            .gather
            .as_ref()
            .expect("checked by the caller");
        let plan = plan_gather(&g.domain, &g.cluster_names(), &query.qname);
        if plan.targets.is_empty() {
            // Every cluster name would exceed 255 bytes: no cluster can hold it.
            let mut answer = Answer::empty(Rcode::NXDOMAIN, true);
            answer.authority.push(g.soa.clone());
            self.reply_now(now, now, client, &query, Some(block), &answer, &[]);
            return;
        }
        let deadline = now + g.timeout;
        let mut parts = Vec::with_capacity(plan.targets.len());
        for (cluster, subname) in plan.targets {
            let outcome = match g.clusters[cluster].source {
                Source::Zone(z) => {
                    let a = self.blocks[block].zones[z].lookup(&subname, query.qtype);
                    Some(Outcome::Answered(ClusterReply {
                        rcode: a.rcode,
                        sections: [a.answer, a.authority, a.additional],
                    }))
                }
                Source::Forward(_) => None,
            };
            parts.push(Part {
                cluster,
                subname,
                outcome,
                attempt: None,
                tries: 0,
                flags: (false, false),
            });
        }
        let waiting = parts.iter().filter(|p| p.outcome.is_none()).count();
        let key = self.pending.insert_query(Query {
            client,
            query,
            block,
            started: now,
            kind: Kind::Gather {
                prefixed: plan.prefixed,
            },
            parts,
            waiting,
        });
        if waiting == 0 {
            self.finish(now, key);
            return;
        }
        self.timers.insert(deadline, TimerKey::Query(key));
        for part in 0..self.pending.queries[&key].parts.len() {
            if self.pending.queries[&key].parts[part].outcome.is_none() {
                self.send_attempt(now, key, part, None, None);
            }
        }
    }

    fn start_proxy(
        &mut self,
        now: Instant,
        client: ClientAddr,
        query: ClientQuery,
        block: usize,
        forward: usize,
    ) {
        let subname = query.qname.clone();
        let part = Part {
            cluster: 0,
            subname,
            outcome: None,
            attempt: None,
            tries: 0,
            flags: (false, false),
        };
        let key = self.pending.insert_query(Query {
            client,
            query,
            block,
            started: now,
            kind: Kind::Proxy { forward },
            parts: vec![part],
            waiting: 1,
        });
        self.timers
            .insert(now + defaults::TIMEOUT, TimerKey::Query(key));
        self.send_attempt(now, key, 0, None, None);
    }

    /// The forward a part's attempts go to, and the per-attempt timeout.
    fn part_route(&self, key: u64, part: usize) -> (usize, usize, Duration) {
        let q = &self.pending.queries[&key];
        let block = &self.blocks[q.block];
        match q.kind {
            Kind::Proxy { forward } => (q.block, forward, PROXY_ATTEMPT_TIMEOUT),
            Kind::Gather { .. } => {
                let g = block
                    .gather
                    .as_ref()
                    .expect("gather queries belong to gather blocks");
                match g.clusters[q.parts[part].cluster].source {
                    Source::Forward(f) => (q.block, f, g.cluster_timeout),
                    Source::Zone(_) => unreachable!("zone-backed parts are answered at once"),
                }
            }
        }
    }

    /// Sends an attempt for a part: to upstream `upstream` (default: the next in the
    /// forward's list) over `transport` (default: from the forward's options and the client).
    fn send_attempt(
        &mut self,
        now: Instant,
        key: u64,
        part: usize,
        upstream: Option<usize>,
        transport: Option<UpstreamTransport>,
    ) {
        let (block, forward, timeout) = self.part_route(key, part);
        let f = &self.blocks[block].forwards[forward];
        let q = &self.pending.queries[&key];
        let tries = q.parts[part].tries;
        let upstream = upstream.unwrap_or(usize::from(tries) % f.to.len());
        let addr = f.to[upstream];
        let transport = transport.unwrap_or(if f.force_tcp {
            UpstreamTransport::Tcp
        } else if f.prefer_udp || matches!(q.kind, Kind::Gather { .. }) {
            UpstreamTransport::Udp
        } else {
            match q.client.transport {
                ClientTransport::Udp => UpstreamTransport::Udp,
                ClientTransport::Tcp(_) => UpstreamTransport::Tcp,
            }
        });
        let (qtype, rd, cd, dnssec_ok) = (
            q.query.qtype,
            q.query.rd,
            q.query.cd,
            q.query.edns.is_some_and(|e| e.dnssec_ok),
        );
        let subname = q.parts[part].subname.clone();
        let (attempt, dns_id) = self
            .pending
            .insert_attempt(key, part, addr, transport, upstream);
        let q = self.pending.queries.get_mut(&key).expect("present");
        q.parts[part].attempt = Some(attempt);
        self.scratch.reserve(512);
        let payload = write_query(
            &mut self.scratch,
            dns_id,
            &subname,
            qtype,
            rd,
            cd,
            dnssec_ok,
        );
        self.stats.upstream_attempts += 1;
        self.timers
            .insert(now + timeout, TimerKey::Attempt(attempt));
        self.transmits.push_back(Transmit {
            destination: Destination::Upstream {
                attempt,
                addr,
                transport,
            },
            payload,
        });
    }

    /// A message from an upstream server.
    pub fn handle_upstream_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        transport: UpstreamTransport,
        msg: Bytes,
    ) {
        // Match on source and ID first: a malformed reply to a live attempt fails that
        // attempt (so it is retried at once); anything else is just counted.
        let Some(attempt_id) = (msg.len() >= 2)
            .then(|| u16::from_be_bytes([msg[0], msg[1]]))
            .and_then(|id| self.pending.match_reply(from, id))
        else {
            self.stats.upstream_unmatched += 1;
            return;
        };
        let (reply, head) = match UpstreamReply::parse(msg) {
            Ok(parsed) => parsed,
            Err(why) => {
                self.stats.upstream_malformed += 1;
                if self.pending.attempts[&attempt_id].transport != transport {
                    return;
                }
                let attempt = self
                    .pending
                    .remove_attempt(attempt_id)
                    .expect("matched above");
                self.attempt_failed(
                    now,
                    attempt.query,
                    attempt.part,
                    Outcome::Failed(format!("malformed reply from {from}: {why}")),
                );
                return;
            }
        };
        let attempt = &self.pending.attempts[&attempt_id];
        let q = &self.pending.queries[&attempt.query];
        let subname = &q.parts[attempt.part].subname;
        if attempt.transport != transport
            || head.qname != *subname
            || head.qtype != q.query.qtype
            || head.qclass != crate::wire::Class::IN
        {
            // Right source and ID but the wrong question: a spoofing attempt or a confused
            // upstream. Keep waiting for the genuine reply.
            self.stats.upstream_mismatched += 1;
            return;
        }
        let attempt = self
            .pending
            .remove_attempt(attempt_id)
            .expect("matched above");
        if head.tc && transport == UpstreamTransport::Udp {
            self.stats.upstream_tc_retries += 1;
            self.send_attempt(
                now,
                attempt.query,
                attempt.part,
                Some(attempt.upstream),
                Some(UpstreamTransport::Tcp),
            );
            return;
        }
        let sections = match reply.sections() {
            Ok(sections) => sections,
            Err(why) => {
                self.stats.upstream_malformed += 1;
                self.attempt_failed(
                    now,
                    attempt.query,
                    attempt.part,
                    Outcome::Failed(format!("malformed reply from {from}: {why}")),
                );
                return;
            }
        };
        let rcode = Rcode::checked_from_int(u8::try_from(head.rcode).unwrap_or(u8::MAX))
            .unwrap_or(Rcode::SERVFAIL);
        let q = self
            .pending
            .queries
            .get_mut(&attempt.query)
            .expect("attempts belong to live queries");
        let part = &mut q.parts[attempt.part];
        part.attempt = None;
        part.flags = (head.aa, head.ra);
        part.outcome = Some(Outcome::Answered(ClusterReply { rcode, sections }));
        q.waiting -= 1;
        if q.waiting == 0 {
            self.finish(now, attempt.query);
        }
    }

    /// An attempt that the driver could not complete.
    pub fn handle_upstream_failure(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        failure: UpstreamFailure,
    ) {
        let Some(a) = self.pending.remove_attempt(attempt) else {
            return;
        };
        self.stats.upstream_failures += 1;
        let why = match failure {
            UpstreamFailure::Unreachable => format!("{} unreachable", a.addr),
            UpstreamFailure::ConnectionLost => format!("connection to {} lost", a.addr),
        };
        self.attempt_failed(now, a.query, a.part, Outcome::Failed(why));
    }

    /// Retries on the next upstream if tries remain, else records `outcome` for the part.
    fn attempt_failed(&mut self, now: Instant, key: u64, part: usize, outcome: Outcome) {
        let Some(q) = self.pending.queries.get_mut(&key) else {
            return;
        };
        let p = &mut q.parts[part];
        p.attempt = None;
        p.tries += 1;
        if p.tries < MAX_TRIES {
            self.send_attempt(now, key, part, None, None);
            return;
        }
        if self.blocks[q.block].errors {
            let message = match &outcome {
                Outcome::TimedOut => format!("no reply for {} in time", p.subname),
                Outcome::Failed(why) => format!("{}: {why}", p.subname),
                Outcome::Answered(_) => String::new(),
            };
            let query = format!("{} {}", q.query.qname, q.query.qtype);
            self.events.push_back(Event::Error { query, message });
        }
        p.outcome = Some(outcome);
        q.waiting -= 1;
        if q.waiting == 0 {
            self.finish(now, key);
        }
    }

    /// Time has passed. Calling it early or repeatedly is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((_, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Query(key) => {
                    if self.pending.queries.contains_key(&key) {
                        self.finish(now, key);
                    }
                }
                TimerKey::Attempt(id) => {
                    if let Some(a) = self.pending.remove_attempt(id) {
                        self.stats.upstream_timeouts += 1;
                        self.attempt_failed(now, a.query, a.part, Outcome::TimedOut);
                    }
                }
            }
        }
        let pending = &self.pending;
        self.timers.prune(|k| match k {
            TimerKey::Query(q) => pending.queries.contains_key(q),
            TimerKey::Attempt(a) => pending.attempts.contains_key(a),
        });
    }

    /// Replies to a query with whatever its parts have, and forgets it.
    fn finish(&mut self, now: Instant, key: u64) {
        let Some(mut q) = self.pending.remove_query(key) else {
            return;
        };
        for part in &mut q.parts {
            if part.outcome.is_none() {
                part.outcome = Some(Outcome::TimedOut);
            }
        }
        let block = &self.blocks[q.block];
        match q.kind {
            Kind::Gather { prefixed } => {
                let g = block
                    .gather
                    .as_ref()
                    .expect("gather queries belong to gather blocks");
                let names = g.cluster_names();
                let parts: Vec<gather::Part<'_>> = q
                    .parts
                    .iter()
                    .map(|p| gather::Part {
                        cluster: crate::routing::ClusterNames {
                            suffix: names[p.cluster].suffix,
                            prefix: names[p.cluster].prefix,
                        },
                        subname: &p.subname,
                        outcome: p.outcome.as_ref().expect("filled above"),
                    })
                    .collect();
                let mq = MergeQuery {
                    domain: &g.domain,
                    qname: &q.query.qname,
                    qtype: q.query.qtype,
                    prefixed,
                    soa: &g.soa,
                };
                let merged = gather::merge(&mq, &parts);
                if !merged.ede.is_empty() && merged.answer.rcode != Rcode::SERVFAIL {
                    self.stats.partial_replies += 1;
                }
                self.reply_now(
                    now,
                    q.started,
                    q.client,
                    &q.query,
                    Some(q.block),
                    &merged.answer,
                    &merged.ede,
                );
            }
            Kind::Proxy { .. } => {
                let part = &q.parts[0];
                match part.outcome.as_ref().expect("filled above") {
                    Outcome::Answered(reply) => {
                        let [answer, authority, additional] = reply.sections.clone();
                        let a = Answer {
                            rcode: reply.rcode,
                            aa: part.flags.0,
                            answer,
                            authority,
                            additional,
                        };
                        self.reply_with_ra(
                            now,
                            q.started,
                            q.client,
                            &q.query,
                            q.block,
                            &a,
                            &[],
                            part.flags.1,
                        );
                    }
                    Outcome::TimedOut | Outcome::Failed(_) => {
                        let code = if matches!(part.outcome, Some(Outcome::TimedOut)) {
                            ede::NO_REACHABLE_AUTHORITY
                        } else {
                            ede::NETWORK_ERROR
                        };
                        let why = match &part.outcome {
                            Some(Outcome::Failed(why)) => why.clone(),
                            _ => "timed out".to_string(),
                        };
                        let e = [Ede {
                            code,
                            text: format!("no answer from upstream: {why}"),
                        }];
                        self.reply_now(
                            now,
                            q.started,
                            q.client,
                            &q.query,
                            Some(q.block),
                            &Answer::empty(Rcode::SERVFAIL, false),
                            &e,
                        );
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reply_now(
        &mut self,
        now: Instant,
        started: Instant,
        client: ClientAddr,
        query: &ClientQuery,
        block: Option<usize>,
        answer: &Answer,
        ede: &[Ede],
    ) {
        let ra = block.is_some_and(|b| self.blocks[b].recursion_available());
        match block {
            Some(b) => self.reply_with_ra(now, started, client, query, b, answer, ede, ra),
            None => {
                let (payload, _) = respond::encode(
                    &mut self.scratch,
                    &client,
                    query,
                    answer,
                    &ReplyMeta { ra, ede },
                    &mut self.stats,
                );
                self.transmits.push_back(Transmit {
                    destination: Destination::Client(client),
                    payload,
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reply_with_ra(
        &mut self,
        now: Instant,
        started: Instant,
        client: ClientAddr,
        query: &ClientQuery,
        block: usize,
        answer: &Answer,
        ede: &[Ede],
        ra: bool,
    ) {
        let (payload, truncated) = respond::encode(
            &mut self.scratch,
            &client,
            query,
            answer,
            &ReplyMeta { ra, ede },
            &mut self.stats,
        );
        if self.blocks[block].log {
            let log = respond::query_log(
                &client,
                query,
                answer,
                ra,
                truncated,
                payload.len(),
                now.saturating_duration_since(started),
            );
            self.events.push_back(Event::QueryLogged(log));
        }
        self.transmits.push_back(Transmit {
            destination: Destination::Client(client),
            payload,
        });
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event to log or count.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Gateway::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }
}

/// Per-attempt timeout of plain `forward` proxying (CoreDNS forward reads for 2 s; we retry
/// once within the overall deadline instead).
const PROXY_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers the distributed domain gives itself: SOA and NS at the apex, and RFC 8482's
/// minimal reply to ANY.
fn synthesised(g: &crate::block::GatherRt, query: &ClientQuery) -> Option<Answer> {
    let apex = query.qname == g.domain;
    let record: Record = match query.qtype {
        Rtype::SOA if apex => g.soa.with_owner(query.qname.clone()),
        Rtype::NS if apex => g.ns.with_owner(query.qname.clone()),
        Rtype::ANY => Record::rfc8482_hinfo(query.qname.clone(), 3600),
        _ => return None,
    };
    let mut answer = Answer::empty(Rcode::NOERROR, true);
    answer.answer.push(record);
    Some(answer)
}
