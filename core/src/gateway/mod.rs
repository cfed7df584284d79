//! The gateway: the sans-IO state machine the runtimes drive. This file holds the state and
//! the `handle_*`/`poll_*` API; starting queries, finishing them, upstream health and upstream
//! TCP connections live in the submodules.

mod answers;
mod cached;
mod chain;
mod connections;
mod files;
mod finish;
mod health;
#[cfg(feature = "fuzzing")]
mod invariants;
mod kubernetes;
mod loop_check;
mod observe;
mod reconfigure;
mod start;

pub use files::WatchedFile;
#[cfg(feature = "fuzzing")]
pub use invariants::{Census, PoolLoad, TIMER_HORIZON};

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::answer::Answer;
use crate::block::Block;
use crate::config::Config;
use crate::error::ConfigError;
use crate::event::Event;
use crate::gather::{ClusterReply, Outcome};
use crate::generation::{Generations, Ref};
use crate::metrics::Stats;
use crate::pending::{Attempt, Owner, Pending};
use crate::routing::Router;
use crate::tcp_pool::{Limits, TcpPool};
use crate::timers::{TimerKey, Timers};
use crate::transmit::{
    AttemptId, ClientAddr, ClientTransport, ConnId, ConnectionCommand, Destination, SocketIndex,
    Transmit, UpstreamFailure, UpstreamTransport,
};
use crate::upstream_pool::Pool;
use crate::wire::{
    write_reply, Class, ClientQuery, QueryError, Rcode, ReplyHeader, UpstreamReply, EDNS_UDP_SIZE,
    MAX_MESSAGE_LEN, PLAIN_UDP_LIMIT,
};

/// The gatherdns state machine. See the crate documentation for the driving loop.
///
/// Methods come in three groups: `handle_*` feed it input (always with the current time),
/// `poll_*` drain its output, and getters report on it. After every `handle_*` call the
/// driver drains `poll_connection`, `poll_transmit` and `poll_event`, then waits until
/// `poll_timeout`.
pub struct Gateway {
    router: Router,
    /// Server blocks and upstream pools of the configuration in force, and of earlier ones
    /// while queries started under them are in flight.
    blocks: Generations<Block>,
    pools: Generations<Pool>,
    pending: Pending,
    timers: Timers,
    /// Upstream TCP connections: which query goes on which, and when each opens and closes.
    tcp: TcpPool,
    /// The deadline each connection has a live timer entry for (see `connections.rs`).
    conn_deadlines: BTreeMap<ConnId, Instant>,
    /// TCP attempts the pool had no room for, failed before the input returns.
    tcp_refused: VecDeque<AttemptId>,
    connections: VecDeque<ConnectionCommand>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    scratch: BytesMut,
    stats: Stats,
    max_inflight: usize,
    /// Prometheus counters, updated on the query path (see `observe.rs`).
    recorder: crate::metrics::recorder::Recorder,
    /// The server is stopping: new client queries are dropped (see `observe.rs`).
    stopping: bool,
    /// Gathered queries whose policy decided during the input in progress, and when; they
    /// are answered at the next `poll_*` (see `answers.rs`).
    decided: Vec<(u64, Instant)>,
    /// The cache's counters, which outlive reloads (see `cached.rs`).
    cache_counters: crate::cache::counters::CacheCounters,
    /// The last view of each Kubernetes source, for the blocks of a reload (`kubernetes.rs`).
    kube_views:
        BTreeMap<crate::config::KubernetesSource, std::sync::Arc<crate::kube_view::KubernetesView>>,
}

impl Gateway {
    /// Builds a gateway from a validated configuration. `seed` feeds the random number
    /// generator used for sub-query IDs and upstream choice; the driver takes it from the OS.
    pub fn new(config: Config, seed: [u8; 32]) -> Result<Gateway, ConfigError> {
        let mut pools = Vec::new();
        let pending = Pending::new(seed);
        let blocks = config
            .servers
            .iter()
            .map(|b| Block::new(b, 1, &mut pools, pending.hash_seed.rotate_left(1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Gateway {
            router: Router::new(&config.servers),
            blocks: Generations::new(blocks),
            pools: Generations::new(pools),
            pending,
            timers: Timers::default(),
            tcp: TcpPool::new(Limits::default()),
            conn_deadlines: BTreeMap::new(),
            tcp_refused: VecDeque::new(),
            connections: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            scratch: BytesMut::with_capacity(MAX_MESSAGE_LEN),
            stats: Stats::default(),
            max_inflight: config.max_inflight,
            recorder: Default::default(),
            stopping: false,
            decided: Vec::new(),
            cache_counters: Default::default(),
            kube_views: BTreeMap::new(),
        })
    }

    /// The addresses to listen on (UDP and TCP), in configuration order. At startup a
    /// [`crate::ListenerId`] indexes this list; after a [`Gateway::reconfigure`], take each
    /// address's id from [`Gateway::listener_ids`].
    pub fn listeners(&self) -> &[SocketAddr] {
        self.router.listeners()
    }

    /// The id of each address of [`Gateway::listeners`], in the same order.
    pub fn listener_ids(&self) -> &[crate::ListenerId] {
        self.router.ids()
    }

    /// Counters since creation.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Client queries waiting for upstreams.
    pub fn queries_in_flight(&self) -> usize {
        self.pending.queries.len()
    }

    /// Every upstream with whether it is currently considered healthy, in configuration order.
    pub fn upstream_health(&self) -> Vec<(SocketAddr, bool)> {
        self.pools
            .current()
            .iter()
            .flat_map(|p| p.upstreams.iter().map(|u| (u.addr, !u.down)))
            .collect()
    }

    /// A message from a client.
    pub fn handle_client_message(&mut self, now: Instant, from: ClientAddr, msg: Bytes) {
        self.stats.client_messages += 1;
        if self.stopping {
            self.stats.client_dropped += 1;
            return;
        }
        let size = msg.len();
        let query = match ClientQuery::parse(msg) {
            Ok(query) => query,
            Err(QueryError::Drop(_)) => {
                self.stats.client_dropped += 1;
                return;
            }
            Err(error) => {
                self.reply_to_malformed(from, &error);
                self.observe_malformed(&from, &error, size);
                return;
            }
        };
        let Some(index) = self.router.block_for(from.listener, &query.qname) else {
            let refused = Answer::empty(Rcode::REFUSED, false);
            self.reply_now(now, now, from, &query, None, &refused, &[]);
            return;
        };
        let block = self.blocks.at(index);
        self.route(now, now, from, query, block, None);
        self.settle_connections(now);
    }

    /// Refuses the query at once if the gateway already holds `max_inflight` queries, so
    /// memory stays bounded whatever the load.
    fn overloaded(
        &mut self,
        now: Instant,
        from: ClientAddr,
        query: &ClientQuery,
        block: Ref,
    ) -> bool {
        if self.pending.queries.len() < self.max_inflight {
            return false;
        }
        self.stats.refused_overload += 1;
        let refused = Answer::empty(Rcode::REFUSED, false);
        self.reply_now(now, now, from, query, Some(block), &refused, &[]);
        true
    }

    /// FORMERR, NOTIMP, REFUSED or BADVERS for a query that could not be taken as is.
    fn reply_to_malformed(&mut self, from: ClientAddr, error: &QueryError) {
        let QueryError::Reply {
            id,
            opcode,
            rd,
            cd,
            question,
            edns,
            rcode,
            ..
        } = error
        else {
            return;
        };
        let limit = match from.transport {
            ClientTransport::Udp => edns.map_or(PLAIN_UDP_LIMIT, |e| {
                usize::from(e.udp_size.clamp(512, EDNS_UDP_SIZE))
            }),
            ClientTransport::Tcp(_) => MAX_MESSAGE_LEN,
        };
        let header = ReplyHeader {
            id: *id,
            opcode: *opcode,
            rd: *rd,
            cd: *cd,
            aa: false,
            ra: false,
            rcode: *rcode,
            question: question.as_ref().map(|(n, t, c)| (n, *t, *c)),
            edns_do: edns.map(|e| e.dnssec_ok),
            udp_size: EDNS_UDP_SIZE,
            ede: &[],
        };
        self.scratch.reserve(512);
        let (payload, _) = write_reply(&mut self.scratch, &header, [&[], &[], &[]], limit);
        self.stats.replies += 1;
        self.transmits.push_back(Transmit {
            destination: Destination::Client(from),
            payload,
        });
    }

    /// A datagram from an upstream server, received on `via`, one of the driver's sockets
    /// towards `from`. (Messages read from upstream TCP connections go to
    /// [`Gateway::handle_connection_message`].)
    pub fn handle_upstream_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        via: SocketIndex,
        msg: Bytes,
    ) {
        self.upstream_message(now, from, UpstreamTransport::Udp(via), msg);
        self.settle_connections(now);
        self.release_retired();
    }

    fn upstream_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        transport: UpstreamTransport,
        msg: Bytes,
    ) {
        // Match on source and ID first: a malformed reply to a live attempt fails that
        // attempt (so it is retried at once); anything else is only counted.
        let matched = (msg.len() >= 2)
            .then(|| u16::from_be_bytes([msg[0], msg[1]]))
            .and_then(|id| self.pending.match_reply(from, id))
            .filter(|id| self.pending.attempts[id].transport == transport);
        let Some(attempt_id) = matched else {
            let id = (msg.len() >= 2).then(|| u16::from_be_bytes([msg[0], msg[1]]));
            if id.is_some_and(|id| self.loop_reply(from, id)) {
                return;
            }
            self.stats.upstream_unmatched += 1;
            return;
        };
        let (reply, head) = match UpstreamReply::parse(msg) {
            Ok(parsed) => parsed,
            Err(why) => {
                self.stats.upstream_malformed += 1;
                let attempt = self.drop_attempt(attempt_id).expect("matched above");
                let why = format!("malformed reply from {from}: {why}");
                self.attempt_failed(now, attempt, Outcome::Failed(why));
                return;
            }
        };
        let expected = &self.pending.attempts[&attempt_id];
        if head.qname != expected.qname || head.qtype != expected.qtype || head.qclass != Class::IN
        {
            // Right source and ID but another question: a spoofing attempt or a confused
            // upstream. Keep waiting for the genuine reply.
            self.stats.upstream_mismatched += 1;
            return;
        }
        let attempt = self.drop_attempt(attempt_id).expect("matched above");
        self.observe_upstream_reply(now, &attempt, head.rcode);
        self.upstream_succeeded(attempt.pool, attempt.upstream);
        let Owner::Part { query, part } = attempt.owner else {
            return; // A probe: any well-formed reply means the upstream is alive.
        };
        if !self.pending.queries.contains_key(&query) {
            // Its query was answered without it (a policy decided): the reply only counted
            // for the upstream's health.
            return;
        }
        if head.tc && matches!(transport, UpstreamTransport::Udp(_)) {
            self.stats.upstream_tc_retries += 1;
            self.send_attempt(
                now,
                query,
                part,
                attempt.upstream,
                Some(UpstreamTransport::Tcp),
            );
            return;
        }
        let vecs = &mut self.pending.vecs;
        let sections = match reply.sections_into(|n| vecs.take(n)) {
            Ok(sections) => sections,
            Err(why) => {
                self.stats.upstream_malformed += 1;
                let why = format!("malformed reply from {from}: {why}");
                self.attempt_failed(now, attempt, Outcome::Failed(why));
                return;
            }
        };
        let rcode = Rcode::checked_from_int(u8::try_from(head.rcode).unwrap_or(u8::MAX))
            .unwrap_or(Rcode::SERVFAIL);
        if let Some(p) = self
            .pending
            .queries
            .get_mut(&query)
            .map(|q| &mut q.parts[part])
        {
            p.attempt = None;
            p.flags = (head.aa, head.ra);
        }
        self.part_done(
            now,
            query,
            part,
            Outcome::Answered(ClusterReply { rcode, sections }),
        );
    }

    /// A UDP sub-query ([`Destination::Upstream`]) that the driver could not send.
    pub fn handle_upstream_failure(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        failure: UpstreamFailure,
    ) {
        self.upstream_failure(now, attempt, failure);
        self.settle_connections(now);
        self.release_retired();
    }

    /// The upstream `from` refused a datagram sent on socket `via`: an ICMP port unreachable,
    /// which a socket connected to it reports as an error. Every UDP attempt to it on that
    /// socket fails now rather than at its timeout (each went to the same closed port; which
    /// one the refusal answered cannot be told), so a cluster whose DNS is down but whose
    /// host is up costs a retry, not `cluster_timeout`.
    pub fn handle_upstream_refused(&mut self, now: Instant, from: SocketAddr, via: SocketIndex) {
        // Sorted, so that the failures (and their retries) come in one order.
        #[allow(clippy::disallowed_methods)]
        let mut refused: Vec<AttemptId> = self
            .pending
            .attempts
            .iter()
            .filter(|(_, a)| a.addr == from && a.transport == UpstreamTransport::Udp(via))
            .map(|(id, _)| *id)
            .collect();
        refused.sort_unstable();
        for id in refused {
            self.upstream_failure(now, id, UpstreamFailure::Unreachable);
        }
        self.settle_connections(now);
        self.release_retired();
    }

    /// Fails an attempt that could not be completed; unknown attempts are ignored.
    fn upstream_failure(&mut self, now: Instant, attempt: AttemptId, failure: UpstreamFailure) {
        let Some(a) = self.drop_attempt(attempt) else {
            self.loop_failure(now, attempt);
            return;
        };
        self.stats.upstream_failures += 1;
        let why = match failure {
            UpstreamFailure::Unreachable => format!("{} unreachable", a.addr),
            UpstreamFailure::ConnectionLost => format!("connection to {} lost", a.addr),
        };
        self.attempt_failed(now, a, Outcome::Failed(why));
    }

    /// Time has passed. Calling it early or repeatedly is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Query(key) => {
                    if self.pending.queries.contains_key(&key) {
                        self.finish(now, key);
                    }
                }
                TimerKey::Attempt(id) => {
                    if let Some(a) = self.drop_attempt(id) {
                        self.stats.upstream_timeouts += 1;
                        self.attempt_failed(now, a, Outcome::TimedOut);
                    }
                }
                TimerKey::Probe { pool, upstream } => self.probe(now, pool, upstream),
                TimerKey::Connection(conn) => self.connection_timeout(now, at, conn),
                TimerKey::Loop(block) => self.loop_timer(now, block),
            }
        }
        self.settle_connections(now);
        let gen = self.blocks.current_gen();
        let loops: Vec<Ref> = (0..self.blocks.current().len())
            .map(|index| Ref { gen, index })
            .filter(|b| self.loop_timer_live(*b))
            .collect();
        let pending = &self.pending;
        let pools = &self.pools;
        let conns = &self.conn_deadlines;
        self.timers.prune(|at, k| match k {
            TimerKey::Query(_) | TimerKey::Attempt(_) => pending.owns(k) == Some(true),
            TimerKey::Probe { pool, upstream } => pools
                .get(*pool)
                .is_some_and(|p| p.upstreams[*upstream].down),
            TimerKey::Connection(conn) => conns.get(conn) == Some(&at),
            TimerKey::Loop(block) => loops.contains(block),
        });
        self.release_retired();
    }

    /// Sets the deadline of a query or an attempt, and compacts the timers when the
    /// deadlines of finished ones outnumber those in flight (`timers.rs`): memory follows the
    /// queries in flight, not the rate times the timeout.
    pub(crate) fn add_deadline(&mut self, at: Instant, key: TimerKey) {
        self.timers.insert(at, key);
        let pending = &self.pending;
        if self
            .timers
            .needs_compacting(pending.queries.len() + pending.attempts.len())
        {
            self.timers
                .compact(|key| pending.owns(&key).unwrap_or(true));
        }
    }

    /// Forgets an attempt and gives back its place in its pool (probes hold none).
    fn drop_attempt(&mut self, id: AttemptId) -> Option<Attempt> {
        let attempt = self.pending.remove_attempt(id)?;
        if attempt.owner != Owner::Probe {
            self.pools[attempt.pool].release();
        }
        Some(attempt)
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.settle_decided();
        self.transmits.pop_front()
    }

    /// The next event to log or count.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.settle_decided();
        self.events.pop_front()
    }

    /// When [`Gateway::handle_timeout`] should next be called: the deadlines of queries,
    /// attempts, health probes and upstream TCP connections alike.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Queries a policy decided on are answered by the next `poll_*`; a driver that asks
        // for the deadline first is woken at once.
        let decided = self.decided.iter().map(|(_, at)| *at).min();
        [self.timers.next(), decided].into_iter().flatten().min()
    }
}
