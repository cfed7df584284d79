//! The block's `cache` and `loadbalance` on the query path: a query the cache can answer is
//! answered before any handler sees it (and a popular or expired entry refreshed by a query
//! of the gateway's own, which has no client); every other reply of the block is stored on
//! its way out, with CoreDNS's single TTL. `loadbalance` shuffles what goes out either way.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;

use super::Gateway;
use crate::answer::Answer;
use crate::cache::counters::slot;
use crate::cache::response::{Found, Key};
use crate::generation::Ref;
use crate::metrics::recorder::Plugin;
use crate::transmit::{ClientAddr, ClientTransport, ListenerId};
use crate::wire::{ClientQuery, Ede, Rcode, Record, Rtype};

/// The client of a query the gateway asks itself (a prefetch, a refresh of an expired entry):
/// its reply updates the cache and goes nowhere. Over "TCP", so that nothing is truncated.
pub(super) const BACKGROUND: ClientAddr = ClientAddr {
    listener: ListenerId(usize::MAX),
    remote: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
    transport: ClientTransport::Tcp(u64::MAX),
};

fn is_background(client: &ClientAddr) -> bool {
    *client == BACKGROUND
}

impl Key {
    fn of(query: &ClientQuery) -> Key {
        Key {
            qname: query.qname.clone(),
            qtype: query.qtype.to_int(),
            dnssec_ok: query.edns.is_some_and(|e| e.dnssec_ok),
            cd: query.cd,
        }
    }
}

/// What happens to a reply on its way out.
pub(super) enum Outgoing {
    /// Sent as it is.
    Unchanged,
    /// Sent as this instead (TTLs set by the cache, records shuffled, an expired entry).
    Replaced(Answer, Vec<Ede>, bool),
    /// Not sent: the reply to a query of the gateway's own.
    Swallowed,
}

impl Gateway {
    /// The address the cache's metrics name for `client` (the block's own for queries of the
    /// gateway's own).
    fn cache_server(&self, client: &ClientAddr, block: Ref) -> Option<SocketAddr> {
        if is_background(client) {
            return self.blocks[block].cache.as_ref().and_then(|c| c.server);
        }
        self.listener_addr(client.listener)
    }

    /// Answers `query` from the block's cache if it can; `true` if it did. A fresh entry
    /// that is popular and nearly expired is fetched again in the background (`prefetch`);
    /// an expired one is served (`serve_stale immediate`) and refreshed, or asked for first
    /// (`verify`), in which case this returns `false` and the reply decides.
    pub(super) fn answer_from_cache(
        &mut self,
        now: Instant,
        started: Instant,
        client: ClientAddr,
        query: &ClientQuery,
        block: Ref,
    ) -> bool {
        let covered = self.blocks[block]
            .cache
            .as_ref()
            .is_some_and(|c| c.covers(&query.qname));
        if !covered || is_background(&client) {
            return false;
        }
        let server = self.cache_server(&client, block);
        let Some(cache) = self.blocks[block]
            .cache
            .as_mut()
            .filter(|c| c.covers(&query.qname))
        else {
            return false;
        };
        let key = Key::of(query);
        let found = cache.find(now, &key);
        let (kind, fresh_ttl) = match found {
            Found::Miss => {
                if let Some(server) = server {
                    let c = self.cache_counters.of(server, &cache.zones_label);
                    c.requests += 1;
                    c.misses += 1;
                }
                return false;
            }
            Found::Fresh { kind, ttl } => (kind, Some(ttl)),
            Found::Stale { kind } => (kind, None),
        };
        let stale = cache.settings.serve_stale;
        let mut refresh = false;
        match fresh_ttl {
            Some(_) => {
                if cache.wants_prefetch(now, kind, &key) {
                    refresh = cache.begin_refresh(now, kind, &key);
                }
            }
            None => {
                let verify = stale.is_some_and(|s| s.verify);
                let tracked = stale.is_some_and(|s| !s.failure_recheck.is_zero());
                if verify && (!tracked || cache.begin_refresh(now, kind, &key)) {
                    // Asked first: the reply, or this entry if asking fails (`outgoing`).
                    if let Some(server) = server {
                        let c = self.cache_counters.of(server, &cache.zones_label);
                        c.requests += 1;
                        c.hits[slot(kind)] += 1;
                    }
                    return false;
                }
                if !verify {
                    refresh = cache.begin_refresh(now, kind, &key);
                }
            }
        }
        let (mut answer, ede, ra) = cache
            .reply(kind, &key, &query.qname, fresh_ttl)
            .expect("just found");
        if let Some(server) = server {
            let c = self.cache_counters.of(server, &cache.zones_label);
            c.requests += 1;
            c.hits[slot(kind)] += 1;
            c.served_stale += u64::from(fresh_ttl.is_none());
            c.prefetches += u64::from(refresh);
        }
        if self.blocks[block].loadbalance {
            self.shuffle(&mut answer, query.qtype);
        }
        self.recorder.answered_by(Plugin::Cache);
        self.emit_reply(now, started, client, query, Some(block), &answer, &ede, ra);
        if refresh {
            self.route(now, now, BACKGROUND, query.clone(), block, None);
        }
        true
    }

    /// A reply of `block` on its way out: stored in the cache (every record with the TTL the
    /// cache gives it, as CoreDNS writes it), replaced by an expired entry when `verify`
    /// found the source failing, shuffled by `loadbalance`, and swallowed if nobody asked.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn outgoing(
        &mut self,
        now: Instant,
        client: &ClientAddr,
        query: &ClientQuery,
        block: Ref,
        answer: &Answer,
        ede: &[Ede],
        ra: bool,
    ) -> Outgoing {
        let background = is_background(client);
        let b = &self.blocks[block];
        if b.cache.is_none() && !b.loadbalance && !background {
            return Outgoing::Unchanged;
        }
        let server = self.cache_server(client, block);
        let loadbalance = self.blocks[block].loadbalance;
        let Some(cache) = self.blocks[block]
            .cache
            .as_mut()
            .filter(|c| c.covers(&query.qname))
        else {
            if background {
                self.recorder.forget_plugin();
                return Outgoing::Swallowed;
            }
            if loadbalance && shuffles(answer, query.qtype) {
                let mut shuffled = answer.clone();
                self.shuffle(&mut shuffled, query.qtype);
                return Outgoing::Replaced(shuffled, ede.to_vec(), ra);
            }
            return Outgoing::Unchanged;
        };
        let key = Key::of(query);
        let refreshed = answer.rcode == Rcode::NOERROR || answer.rcode == Rcode::NXDOMAIN;
        let stale = cache.settings.serve_stale;
        let verify = stale.is_some_and(|s| s.verify);
        // `serve_stale verify`: the source failed, so the expired entry answers instead.
        if !refreshed && verify && !background {
            cache.end_refresh(now, &key, false);
            let found = match cache.find(now, &key) {
                Found::Stale { kind } => Some((kind, None)),
                Found::Fresh { kind, ttl } => Some((kind, Some(ttl))),
                Found::Miss => None,
            };
            if let Some((kind, fresh)) = found {
                let (mut answer, ede, ra) = cache
                    .reply(kind, &key, &query.qname, fresh)
                    .expect("just found");
                if let Some(server) = server {
                    self.cache_counters
                        .of(server, &cache.zones_label)
                        .served_stale += 1;
                }
                if loadbalance {
                    self.shuffle(&mut answer, query.qtype);
                }
                return Outgoing::Replaced(answer, ede, ra);
            }
        }
        let (ttl, class) = cache.duration(answer, query.qtype, !ede.is_empty());
        let with_ttl = |records: &[Record]| -> Vec<Record> {
            records.iter().map(|r| r.clone().with_ttl(ttl)).collect()
        };
        let mut out = Answer {
            rcode: answer.rcode,
            aa: answer.aa,
            answer: with_ttl(&answer.answer),
            authority: with_ttl(&answer.authority),
            additional: with_ttl(&answer.additional),
            sources: answer.sources.clone(),
        };
        // A refresh that failed leaves the entry it refreshes as it was (RFC 8767 §4).
        if !background || refreshed {
            let stored = cache.store(now, key.clone(), &out, ede, ra, ttl, class);
            if let (Some(server), true) = (server, stored.kind.is_some() || stored.dropped) {
                let entries = [
                    cache.len(crate::cache::response::Kind::Success),
                    cache.len(crate::cache::response::Kind::Denial),
                ];
                let c = self.cache_counters.of(server, &cache.zones_label);
                c.drops += u64::from(stored.dropped);
                if let Some(kind) = stored.kind {
                    c.evictions[slot(kind)] += u64::from(stored.evicted);
                    c.entries = entries.map(Some);
                }
            }
        }
        let cache = self.blocks[block].cache.as_mut().expect("checked above");
        if background || (verify && !stale.is_some_and(|s| s.failure_recheck.is_zero())) {
            cache.end_refresh(now, &key, refreshed);
        }
        if background {
            self.recorder.forget_plugin();
            return Outgoing::Swallowed;
        }
        if loadbalance {
            self.shuffle(&mut out, query.qtype);
        }
        Outgoing::Replaced(out, ede.to_vec(), ra)
    }

    /// CoreDNS's `loadbalance round_robin`: in a NOERROR reply, the A and AAAA records of each
    /// section are shuffled, and MX records among themselves; CNAMEs go first.
    fn shuffle(&mut self, answer: &mut Answer, qtype: Rtype) {
        if !shuffles(answer, qtype) {
            return;
        }
        let pending = &mut self.pending;
        for section in [
            &mut answer.answer,
            &mut answer.authority,
            &mut answer.additional,
        ] {
            crate::loadbalance::round_robin(section, |n| pending.random() as usize % n);
        }
        // The records are no longer grouped by cluster: a reply that does not fit keeps the
        // first of the shuffled order, which already samples every cluster in proportion.
        answer.sources.clear();
    }
}

/// Whether `loadbalance` touches a reply: NOERROR, and not a zone transfer.
fn shuffles(answer: &Answer, qtype: Rtype) -> bool {
    answer.rcode == Rcode::NOERROR && qtype != Rtype::AXFR && qtype != Rtype::IXFR
}
