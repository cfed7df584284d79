//! Upstream health as the gateway sees it: every attempt's result is accounted to its
//! upstream; a down upstream is probed every `health_check` and comes back on any reply.

use std::time::{Duration, Instant};

use super::Gateway;
use crate::event::Event;
use crate::generation::Ref;
use crate::pending::{Owner, Target};
use crate::timers::TimerKey;
use crate::transmit::UpstreamTransport;
use crate::upstream_pool::HealthChange;
use crate::wire::{write_query, Rtype, SubQuery, EDNS_UDP_SIZE};

/// Probes wait at most this long for a reply, whatever the interval.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Gateway {
    pub(super) fn upstream_succeeded(&mut self, pool: Ref, upstream: usize) {
        if self.pools[pool].record_success(upstream) == HealthChange::CameBack {
            let addr = self.pools[pool].upstreams[upstream].addr;
            self.events.push_back(Event::UpstreamHealth {
                upstream: addr,
                healthy: true,
            });
        }
    }

    pub(super) fn upstream_failed(&mut self, now: Instant, pool: Ref, upstream: usize) {
        if self.pools[pool].record_failure(upstream) == HealthChange::WentDown {
            let addr = self.pools[pool].upstreams[upstream].addr;
            self.events.push_back(Event::UpstreamHealth {
                upstream: addr,
                healthy: false,
            });
            let at = now + self.pools[pool].health_check.interval;
            self.timers.insert(at, TimerKey::Probe { pool, upstream });
        }
    }

    /// A health verdict about `upstream` reached by another gateway of the same process (a
    /// sibling executor): every pool of the configuration in force that has it takes it
    /// over, so that a dead upstream costs one slow reply per process, not one per
    /// executor. A pool marking it down probes it itself, as after its own failures. No
    /// event: the gateway that reached the verdict has logged it.
    pub fn handle_upstream_health(
        &mut self,
        now: Instant,
        upstream: std::net::SocketAddr,
        healthy: bool,
    ) {
        for index in 0..self.pools.current().len() {
            let pool = self.pools.at(index);
            let Some(slot) = self.pools[pool]
                .upstreams
                .iter()
                .position(|u| u.addr == upstream)
            else {
                continue;
            };
            if self.pools[pool].apply_verdict(slot, healthy) == HealthChange::WentDown {
                let at = now + self.pools[pool].health_check.interval;
                self.timers.insert(
                    at,
                    TimerKey::Probe {
                        pool,
                        upstream: slot,
                    },
                );
            }
        }
    }

    /// Sends a probe to a down upstream and schedules the next one. Only the configuration
    /// in force probes: a retired one keeps no upstream alive, so its pools can go.
    pub(super) fn probe(&mut self, now: Instant, pool: Ref, upstream: usize) {
        if pool.gen != self.pools.current_gen() {
            return;
        }
        let p = &self.pools[pool];
        if !p.upstreams[upstream].down {
            return;
        }
        let interval = p.health_check.interval;
        self.send_probe(now, pool, upstream, PROBE_TIMEOUT);
        self.timers
            .insert(now + interval, TimerKey::Probe { pool, upstream });
    }

    /// Sends `health_check`'s question to one upstream as a probe attempt that times out
    /// after `timeout`. Returns the probe's address and DNS ID.
    pub(super) fn send_probe(
        &mut self,
        now: Instant,
        pool: Ref,
        upstream: usize,
        timeout: Duration,
    ) -> (std::net::SocketAddr, u16) {
        let p = &self.pools[pool];
        let addr = p.upstreams[upstream].addr;
        let check = p.health_check.clone();
        let transport = if p.force_tcp {
            UpstreamTransport::Tcp
        } else {
            UpstreamTransport::Udp(self.pending.udp_socket())
        };
        let target = Target {
            addr,
            transport,
            pool,
            upstream,
            sent: now,
        };
        let (attempt, dns_id) =
            self.pending
                .insert_attempt(Owner::Probe, target, check.domain.clone(), Rtype::NS);
        self.scratch.reserve(512);
        let probe = SubQuery {
            id: dns_id,
            qname: &check.domain,
            qtype: Rtype::NS,
            rd: check.recursion_desired,
            cd: false,
            dnssec_ok: false,
            udp_size: EDNS_UDP_SIZE,
        };
        let payload = write_query(&mut self.scratch, &probe);
        self.stats.upstream_probes += 1;
        // A probe asks whether the upstream is alive, not whether it is fast: it may take
        // longer than the interval, so probes can overlap (at most PROBE_TIMEOUT / interval).
        self.timers
            .insert(now + timeout, TimerKey::Attempt(attempt));
        self.send_upstream(now, attempt, addr, transport, payload);
        (addr, dns_id)
    }
}
