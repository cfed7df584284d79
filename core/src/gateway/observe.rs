//! What the gateway tells about itself besides its replies: Prometheus metrics (the recorder
//! of [`crate::metrics`], fed by the one-line `observe_*` hooks on the query path, plus
//! gauges read at scrape time), readiness (every configured upstream tried once), and the
//! switch that stops taking queries when the server stops.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::chain::Stage;
use super::Gateway;
use crate::distributed_domain::{GatherSet, Source};
use crate::gather::Outcome;
use crate::generation::Ref;
use crate::metrics::families;
use crate::metrics::recorder::{PartResult, Plugin, Reply};
use crate::metrics::Snapshot;
use crate::pending::{Attempt, Kind, Owner, Query};
use crate::transmit::{ClientAddr, ListenerId};
use crate::wire::{ClientQuery, QueryError};

/// How long a readiness probe waits for its reply before it counts as tried (and failed).
const READINESS_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Gateway {
    /// This gateway's metrics now. gatherdns-glommio adds up its executors' snapshots
    /// ([`Snapshot::merge`]); the process-wide families (the host's `admin::metrics`)
    /// are added once by the runtime.
    pub fn metrics(&self) -> Snapshot {
        let mut s = Snapshot::default();
        s.gauge(&families::BUILD_INFO, &[crate::VERSION, "", ""], 1.0);
        // Shown at zero from the start; the driver adds the panics it recovered from while
        // the gateway handled an input (a panic is caught outside the gateway).
        s.counter(&families::PANICS, &[], 0);
        self.recorder.snapshot(&mut s);
        self.cache_counters.snapshot(&mut s);
        let st = &self.stats;
        s.counter(
            &families::FORWARD_MAX_CONCURRENT_REJECTS,
            &[],
            st.refused_max_concurrent,
        );
        s.counter(&families::UPSTREAM_TIMEOUTS, &[], st.upstream_timeouts);
        s.counter(&families::UPSTREAM_FAILURES, &[], st.upstream_failures);
        s.counter(&families::UPSTREAM_TC_RETRIES, &[], st.upstream_tc_retries);
        for (reason, count) in [
            ("unmatched", st.upstream_unmatched),
            ("mismatched", st.upstream_mismatched),
            ("malformed", st.upstream_malformed),
        ] {
            s.counter(&families::UPSTREAM_DROPPED, &[reason], count);
        }
        s.counter(&families::TRUNCATED, &[], st.truncated_replies);
        s.counter(&families::PARTIAL, &[], st.partial_replies);
        s.counter(&families::REFUSED_INFLIGHT, &[], st.refused_overload);
        s.counter(&families::CLIENT_DROPPED, &[], st.client_dropped);
        s.gauge(&families::INFLIGHT, &[], self.pending.queries.len() as f64);
        let pools = self.pools.current();
        for upstream in pools.iter().flat_map(|p| &p.upstreams) {
            let up = if upstream.down { 0.0 } else { 1.0 };
            s.gauge(&families::UPSTREAM_UP, &[&upstream.addr.to_string()], up);
        }
        for block in self.blocks.current() {
            let mut sets = vec![GatherSet::Gathersrv];
            if let Some(m) = &block.multicluster {
                sets.extend((0..m.sets.len()).map(GatherSet::Multicluster));
            }
            for g in sets.into_iter().filter_map(|set| block.gather_set(set)) {
                let domain = g.domain.to_string();
                for cluster in &g.clusters {
                    let up = match cluster.source {
                        Source::Zone(_) => true,
                        Source::Forward(f) => pools
                            .get(block.forwards[f].pool)
                            .is_some_and(|p| p.upstreams.iter().any(|u| !u.down)),
                    };
                    let labels = [domain.as_str(), &cluster.suffix.to_string()];
                    s.gauge(&families::CLUSTER_UP, &labels, if up { 1.0 } else { 0.0 });
                }
            }
        }
        s
    }

    /// What keeps this gateway from being ready (empty when ready): every upstream of the
    /// configuration in force must have answered or failed once — a query, a health check or
    /// a readiness probe ([`Gateway::probe_upstreams`]) — and every Kubernetes source must
    /// have been listed once.
    pub fn not_ready(&self) -> Vec<String> {
        let mut waiting: Vec<SocketAddr> = Vec::new();
        for upstream in self.pools.current().iter().flat_map(|p| &p.upstreams) {
            if !self.recorder.tried(&upstream.addr) && !waiting.contains(&upstream.addr) {
                waiting.push(upstream.addr);
            }
        }
        let mut missing: Vec<String> = waiting
            .into_iter()
            .map(|addr| format!("forward: upstream {addr} not tried yet"))
            .collect();
        missing.extend(self.kubernetes_not_ready());
        missing
    }

    /// Sends one probe (`health_check`'s question) to every upstream of the configuration in
    /// force, so that readiness does not wait for traffic. Its replies and timeouts count only
    /// for readiness: no health check failure, no upstream marked down.
    pub fn probe_upstreams(&mut self, now: Instant) {
        let mut probed: Vec<SocketAddr> = Vec::new();
        for index in 0..self.pools.current().len() {
            let pool = self.pools.at(index);
            for upstream in 0..self.pools[pool].upstreams.len() {
                let p = &self.pools[pool];
                let addr = p.upstreams[upstream].addr;
                if probed.contains(&addr) {
                    continue;
                }
                probed.push(addr);
                let (addr, dns_id) = self.send_probe(now, pool, upstream, READINESS_PROBE_TIMEOUT);
                self.recorder.readiness_probe(addr, dns_id);
            }
        }
        self.settle_connections(now);
    }

    /// The server is stopping: queries in flight are still answered, new client messages
    /// are dropped (counted as dropped), so that [`Gateway::queries_in_flight`] reaches zero.
    /// Clients retry elsewhere, as they would with a closed listener.
    pub fn stop_accepting(&mut self) {
        self.stopping = true;
    }

    /// The address a listener id stands for (ids outlive reloads; positions do not).
    pub(super) fn listener_addr(&self, id: ListenerId) -> Option<SocketAddr> {
        let ids = self.router.ids();
        let slot = match ids.get(id.0) {
            Some(found) if *found == id => id.0,
            _ => ids.iter().position(|i| *i == id)?,
        };
        self.router.listeners().get(slot).copied()
    }

    /// The plugin that answers the reply about to be sent.
    pub(super) fn observe_stage(&mut self, stage: Stage) {
        self.recorder.answered_by(match stage {
            Stage::Gathersrv => Plugin::Gathersrv,
            Stage::Hosts => Plugin::Hosts,
            Stage::MulticlusterGw => Plugin::MulticlusterGw,
            Stage::Multicluster => Plugin::Multicluster,
            Stage::File => Plugin::File,
            Stage::Forward => Plugin::Forward,
        });
    }

    /// A proxied reply is about to be sent.
    pub(super) fn observe_forward(&mut self) {
        self.recorder.answered_by(Plugin::Forward);
    }

    /// A reply to a client was queued: `coredns_dns_*` for blocks with `prometheus`, and
    /// always for queries no block took (`zone="dropped"`, as CoreDNS's server reports).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn observe_reply(
        &mut self,
        now: Instant,
        started: Instant,
        client: &ClientAddr,
        query: &ClientQuery,
        block: Option<Ref>,
        response_size: usize,
        rcode: u16,
    ) {
        if block.is_some_and(|b| !self.blocks[b].prometheus) {
            // Not counted, but its plugin must not be left for the next reply.
            self.recorder.forget_plugin();
            return;
        }
        let Some(server) = self.listener_addr(client.listener) else {
            return;
        };
        let zone = match block {
            Some(_) => self.router.zone_for(client.listener, &query.qname).cloned(),
            None => None,
        };
        self.recorder.reply(&Reply {
            server,
            zone: zone.as_ref(),
            client,
            qtype: query.qtype.to_int(),
            dnssec_ok: query.edns.is_some_and(|e| e.dnssec_ok),
            request_size: query.size,
            response_size,
            rcode,
            duration: now.saturating_duration_since(started),
        });
    }

    /// An error reply to a query that could not be taken as is (queued just before): CoreDNS
    /// counts only its REFUSED for a class other than IN, under `zone="dropped"`.
    pub(super) fn observe_malformed(&mut self, from: &ClientAddr, error: &QueryError, size: usize) {
        let QueryError::Reply {
            question: Some((_, qtype, _)),
            edns,
            rcode: 5,
            ..
        } = error
        else {
            return;
        };
        let Some(response_size) = self.transmits.back().map(|t| t.payload.len()) else {
            return;
        };
        let Some(server) = self.listener_addr(from.listener) else {
            return;
        };
        self.recorder.reply(&Reply {
            server,
            zone: None,
            client: from,
            qtype: qtype.to_int(),
            dnssec_ok: edns.is_some_and(|e| e.dnssec_ok),
            request_size: size,
            response_size,
            rcode: 5,
            duration: Duration::ZERO,
        });
    }

    /// A query enters a block: gathersrv counts every query of its block, qualified when the
    /// name is at or below its domain.
    pub(super) fn observe_gathersrv_request(
        &mut self,
        client: &ClientAddr,
        query: &ClientQuery,
        block: Ref,
    ) {
        let Some(g) = self.blocks[block].gather.as_ref() else {
            return;
        };
        let qualified = query.qname.is_at_or_below(&g.domain);
        if let Some(server) = self.listener_addr(client.listener) {
            self.recorder
                .gathersrv_request(server, qualified, query.qtype.to_int());
        }
    }

    /// A gathered query is finished: each part per cluster, and gathersrv's sub-request
    /// counter. Parts in `stale` did not answer and a kept earlier part stood in; parts
    /// without an outcome were not waited for (a policy decided first) and are not counted.
    pub(super) fn observe_gathered(&mut self, q: &Query, stale: &[usize]) {
        let Kind::Gather { set, .. } = q.kind else {
            return;
        };
        let server = self.listener_addr(q.client.listener);
        let Some(g) = self.blocks[q.block].gather_set(set) else {
            return;
        };
        for (index, part) in q.parts.iter().enumerate() {
            let Some(cluster) = g.clusters.get(part.cluster) else {
                continue;
            };
            let (result, code) = match part.outcome {
                _ if stale.contains(&index) => (PartResult::Stale, 2),
                Some(Outcome::Answered(_)) => (PartResult::Answered, 0),
                Some(Outcome::Refused(_)) => (PartResult::Refused, 5),
                Some(Outcome::Down(_)) => (PartResult::Down, 2),
                Some(Outcome::Failed(_)) => (PartResult::Failed, 2),
                Some(Outcome::TimedOut) => (PartResult::Timeout, 2),
                None => continue,
            };
            self.recorder
                .cluster_part(&g.domain, &cluster.suffix, result);
            if let (GatherSet::Gathersrv, Some(server)) = (set, server) {
                self.recorder.gathersrv_sub_request(
                    server,
                    &cluster.mark,
                    q.query.qtype.to_int(),
                    code,
                );
            }
        }
    }

    /// A part of a query is about to end with `outcome`: a cluster that answered through its
    /// upstreams adds to its latency histogram.
    pub(super) fn observe_part_done(
        &mut self,
        now: Instant,
        key: u64,
        part: usize,
        outcome: &Outcome,
    ) {
        if !matches!(outcome, Outcome::Answered(_)) {
            return;
        }
        let Some(q) = self.pending.queries.get(&key) else {
            return;
        };
        let Kind::Gather { set, .. } = q.kind else {
            return;
        };
        let Some(p) = q.parts.get(part).filter(|p| p.outcome.is_none()) else {
            return;
        };
        let Some(g) = self.blocks[q.block].gather_set(set) else {
            return;
        };
        if let Some(cluster) = g.clusters.get(p.cluster) {
            let took = now.saturating_duration_since(q.started);
            self.recorder
                .cluster_latency(&g.domain, &cluster.suffix, took);
        }
    }

    /// An upstream's reply matched an attempt (source, ID and question).
    pub(super) fn observe_upstream_reply(&mut self, now: Instant, attempt: &Attempt, rcode: u16) {
        match attempt.owner {
            Owner::Probe => self.recorder.probe_reply(attempt.addr, attempt.dns_id),
            Owner::Part { .. } => {
                let took = now.saturating_duration_since(attempt.sent);
                self.recorder.upstream_reply(attempt.addr, rcode, took);
            }
        }
    }

    /// An attempt failed, timed out or got a malformed reply.
    pub(super) fn observe_attempt_failed(&mut self, attempt: &Attempt) {
        let probe = attempt.owner == Owner::Probe;
        self.recorder
            .attempt_failed(attempt.addr, attempt.dns_id, probe);
    }
}
