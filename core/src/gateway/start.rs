//! Starting work for a query: the clusters of a gathered query (zone-backed ones answered at
//! once), the upstream of a proxied one, and each attempt with its deadline and retry.

use std::time::{Duration, Instant};

use super::Gateway;
use crate::answer::Answer;
use crate::config::defaults;
use crate::distributed_domain::{GatherSet, Source};
use crate::gather::{ClusterReply, Outcome};
use crate::generation::Ref;
use crate::pending::{Attempt, Kind, Owner, Part, Query, Target};
use crate::routing::plan_gather;
use crate::timers::TimerKey;
use crate::transmit::{ClientAddr, ClientTransport, UpstreamTransport};
use crate::wire::{write_query, ClientQuery, SubQuery};

/// Attempts per part: the first try and one retry on another upstream.
const MAX_TRIES: u8 = 2;

/// Per-attempt timeout of plain `forward` proxying; the overall deadline allows one retry.
const PROXY_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

impl Gateway {
    pub(super) fn start_gather(
        &mut self,
        now: Instant,
        started: Instant,
        client: ClientAddr,
        query: ClientQuery,
        block: Ref,
        set: GatherSet,
    ) {
        let b = &self.blocks[block];
        let g = b
            .gather_set(set)
            .expect("the chain decided on this gathering");
        let names = &mut self.pending.names;
        let plan = plan_gather(g.naming, &g.domain, &g.clusters, &query.qname, names);
        if plan.targets.is_empty() {
            // No cluster can hold the name (too long, or it names no configured cluster).
            let answer = Answer::negative(false, &g.soa);
            self.conclude(now, started, client, query, block, set.stage(), answer, &[]);
            return;
        }
        let deadline = now + g.timeout;
        let mut parts = self.pending.part_vecs.take(plan.targets.len());
        parts.extend(plan.targets.into_iter().map(|(cluster, subname)| {
            let outcome = match g.clusters[cluster].source {
                Source::Zone(z) => {
                    let a = b.zones[z].lookup(&subname, query.qtype);
                    let sections = [a.answer, a.authority, a.additional];
                    Some(Outcome::Answered(ClusterReply {
                        rcode: a.rcode,
                        sections,
                    }))
                }
                Source::Forward(_) => None,
            };
            Part {
                cluster,
                subname,
                outcome,
                attempt: None,
                tries: 0,
                upstream: 0,
                flags: (false, false),
            }
        }));
        let waiting = parts.iter().filter(|p| p.outcome.is_none()).count();
        let count = parts.len();
        let kind = Kind::Gather {
            prefixed: plan.prefixed,
            set,
        };
        let key = self.pending.insert_query(Query {
            client,
            query,
            block,
            started,
            kind,
            parts,
            waiting,
        });
        if waiting == 0 {
            self.finish(now, key);
            return;
        }
        self.add_deadline(deadline, TimerKey::Query(key));
        for part in 0..count {
            // A part that fails at once (its cluster is down) may finish the query.
            let Some(q) = self.pending.queries.get(&key) else {
                break;
            };
            if q.parts[part].outcome.is_none() {
                self.send_first_attempt(now, key, part);
            }
        }
    }

    pub(super) fn start_proxy(
        &mut self,
        now: Instant,
        started: Instant,
        client: ClientAddr,
        query: ClientQuery,
        block: Ref,
        forward: usize,
    ) {
        let subname = query.qname.clone();
        let part = Part {
            cluster: 0,
            subname,
            outcome: None,
            attempt: None,
            tries: 0,
            upstream: 0,
            flags: (false, false),
        };
        let kind = Kind::Proxy { forward };
        let parts = vec![part];
        let key = self.pending.insert_query(Query {
            client,
            query,
            block,
            started,
            kind,
            parts,
            waiting: 1,
        });
        self.timers
            .insert(now + defaults::TIMEOUT, TimerKey::Query(key));
        self.send_first_attempt(now, key, 0);
    }

    /// The pool a part's attempts go through, and the per-attempt timeout.
    fn part_pool(&self, key: u64, part: usize) -> (Ref, Duration) {
        let q = &self.pending.queries[&key];
        let block = &self.blocks[q.block];
        let pool = |forward: usize| q.block.sibling(block.forwards[forward].pool);
        match q.kind {
            Kind::Proxy { forward } => (pool(forward), PROXY_ATTEMPT_TIMEOUT),
            Kind::Gather { set, .. } => {
                let g = block
                    .gather_set(set)
                    .expect("gather queries belong to gather blocks");
                match g.clusters[q.parts[part].cluster].source {
                    Source::Forward(f) => (pool(f), g.cluster_timeout),
                    Source::Zone(_) => unreachable!("zone-backed parts are answered at once"),
                }
            }
        }
    }

    /// First attempt of a part: a healthy upstream by the pool's policy. A gathered cluster
    /// whose upstreams are all down is skipped at once; a proxied query tries one anyway, as
    /// CoreDNS's forward does.
    fn send_first_attempt(&mut self, now: Instant, key: u64, part: usize) {
        let (pool, _) = self.part_pool(key, part);
        let proxy = matches!(self.pending.queries[&key].kind, Kind::Proxy { .. });
        let random = self.pending.random();
        let upstream = match self.pools[pool].first(random) {
            Some(upstream) => upstream,
            None if proxy => random as usize % self.pools[pool].upstreams.len(),
            None => {
                self.stats.skipped_down += 1;
                self.part_done(
                    now,
                    key,
                    part,
                    Outcome::Down("every upstream is down".into()),
                );
                return;
            }
        };
        self.send_attempt(now, key, part, upstream, None);
    }

    /// Sends an attempt for a part to `upstream` (index in its pool) over `transport`
    /// (default: from the forward's options and the client's transport). A pool at
    /// `max_concurrent` refuses it, whether it is a first attempt, a retry or a TCP retry:
    /// the attempt before it has given its place back, so within one gateway a retry only
    /// meets a full pool when another executor took that place in between.
    pub(super) fn send_attempt(
        &mut self,
        now: Instant,
        key: u64,
        part: usize,
        upstream: usize,
        transport: Option<UpstreamTransport>,
    ) {
        let (pool_index, timeout) = self.part_pool(key, part);
        if !self.pools[pool_index].acquire() {
            self.stats.refused_max_concurrent += 1;
            let why = format!("max_concurrent reached for {}", self.pools[pool_index].from);
            self.part_done(now, key, part, Outcome::Refused(why));
            return;
        }
        let socket = self.pending.udp_socket();
        let pool = &self.pools[pool_index];
        let q = &self.pending.queries[&key];
        let transport = transport.unwrap_or(if pool.force_tcp {
            UpstreamTransport::Tcp
        } else if pool.prefer_udp || matches!(q.kind, Kind::Gather { .. }) {
            UpstreamTransport::Udp(socket)
        } else {
            match q.client.transport {
                ClientTransport::Udp => UpstreamTransport::Udp(socket),
                ClientTransport::Tcp(_) => UpstreamTransport::Tcp,
            }
        });
        let addr = pool.upstreams[upstream].addr;
        let query = &q.query;
        let (qtype, rd, cd) = (query.qtype, query.rd, query.cd);
        let dnssec_ok = query.edns.is_some_and(|e| e.dnssec_ok);
        let udp_size = self.blocks[q.block].bufsize;
        let subname = q.parts[part].subname.clone();
        let target = Target {
            addr,
            transport,
            pool: pool_index,
            upstream,
            sent: now,
        };
        let owner = Owner::Part { query: key, part };
        let (attempt, dns_id) = self
            .pending
            .insert_attempt(owner, target, subname.clone(), qtype);
        let p = &mut self.pending.queries.get_mut(&key).expect("present").parts[part];
        p.attempt = Some(attempt);
        p.upstream = upstream;
        self.scratch.reserve(512);
        let sub = SubQuery {
            id: dns_id,
            qname: &subname,
            qtype,
            rd,
            cd,
            dnssec_ok,
            udp_size,
        };
        let payload = write_query(&mut self.scratch, &sub);
        self.stats.upstream_attempts += 1;
        self.add_deadline(now + timeout, TimerKey::Attempt(attempt));
        self.send_upstream(now, attempt, addr, transport, payload);
    }

    /// An attempt failed or timed out: account it to the upstream's health, then retry the
    /// part on another upstream if it has tries left, else record `outcome` for it.
    pub(super) fn attempt_failed(&mut self, now: Instant, attempt: Attempt, outcome: Outcome) {
        self.observe_attempt_failed(&attempt);
        let Owner::Part { query: key, part } = attempt.owner else {
            return; // A probe that failed: the upstream stays down until one succeeds.
        };
        self.upstream_failed(now, attempt.pool, attempt.upstream);
        let Some(q) = self.pending.queries.get_mut(&key) else {
            return;
        };
        let p = &mut q.parts[part];
        p.attempt = None;
        p.tries += 1;
        if p.tries < MAX_TRIES {
            let next = self.pools[attempt.pool].after(attempt.upstream);
            self.send_attempt(now, key, part, next, None);
            return;
        }
        if self.blocks[q.block].errors {
            let message = match &outcome {
                Outcome::TimedOut => format!("no reply for {} in time", p.subname),
                Outcome::Failed(why) | Outcome::Down(why) | Outcome::Refused(why) => {
                    format!("{}: {why}", p.subname)
                }
                Outcome::Answered(_) => String::new(),
            };
            let query = format!("{} {}", q.query.qname, q.query.qtype);
            self.events
                .push_back(crate::event::Event::Error { query, message });
        }
        self.part_done(now, key, part, outcome);
    }

    /// Records how a part ended; the query is finished when no part is left waiting.
    pub(super) fn part_done(&mut self, now: Instant, key: u64, part: usize, outcome: Outcome) {
        self.observe_part_done(now, key, part, &outcome);
        let Some(q) = self.pending.queries.get_mut(&key) else {
            return;
        };
        let p = &mut q.parts[part];
        if p.outcome.is_some() {
            return;
        }
        p.outcome = Some(outcome);
        p.attempt = None;
        q.waiting -= 1;
        if q.waiting == 0 {
            self.finish(now, key);
        } else if self.decides_early(key) {
            self.note_decided(now, key);
        }
    }
}
