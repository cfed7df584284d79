//! Finishing a query: merging a gathered one, relaying a proxied one, and putting the reply
//! on the wire with the query log line; plus the answers the distributed domain gives itself.

use std::time::Instant;

use smallvec::SmallVec;

use super::cached::Outgoing;
use super::Gateway;
use crate::answer::Answer;
use crate::distributed_domain::{CompiledGather, GatherSet};
use crate::event::Event;
use crate::gather::{self, MergeQuery, Outcome};
use crate::generation::Ref;
use crate::pending::Kind;
use crate::respond::{self, ReplyMeta};
use crate::routing::ClusterSide;
use crate::transmit::{ClientAddr, Destination, Transmit};
use crate::wire::{ede, ClientQuery, Ede, Rcode, Record, Rtype, EDNS_UDP_SIZE};

impl Gateway {
    /// Replies to a query with whatever its parts have, and forgets it.
    pub(super) fn finish(&mut self, now: Instant, key: u64) {
        self.finish_with(now, key, false);
    }

    /// [`Gateway::finish`]; `early` when a policy decided before every part ended: the
    /// parts still waiting are not waited for, and their attempts go on for their upstreams'
    /// health alone.
    pub(super) fn finish_with(&mut self, now: Instant, key: u64, early: bool) {
        if early {
            self.pending.detach_waiting(key);
        }
        let Some((mut q, attempts)) = self.pending.remove_query(key) else {
            return;
        };
        for attempt in attempts {
            self.pools[attempt.pool].release();
        }
        for part in &mut q.parts {
            if part.outcome.is_none() && !early {
                part.outcome = Some(Outcome::TimedOut);
            }
        }
        let shaped = match q.kind {
            Kind::Gather { prefixed, set } => self.shape_gathered(now, &mut q, prefixed, set),
            Kind::Proxy { .. } => Default::default(),
        };
        self.observe_gathered(&q, &shaped.stale);
        let block = &self.blocks[q.block];
        match q.kind {
            Kind::Gather { prefixed, set } => {
                let g = block
                    .gather_set(set)
                    .expect("gather queries belong to gather blocks");
                let mut parts: SmallVec<[gather::Part<'_>; 8]> = q
                    .parts
                    .iter_mut()
                    .zip(&shaped.include)
                    .filter_map(|(p, include)| include.then_some(p))
                    .map(|p| gather::Part {
                        cluster: g.clusters[p.cluster].names(),
                        subname: &p.subname,
                        outcome: p.outcome.take().unwrap_or(Outcome::TimedOut),
                    })
                    .collect();
                let mq = MergeQuery {
                    naming: g.naming,
                    domain: &g.domain,
                    qname: &q.query.qname,
                    qtype: q.query.qtype,
                    prefixed,
                    soa: &g.soa,
                    seed: self.pending.hash_seed,
                };
                let pending = &mut self.pending;
                let merged = gather::merge(&mq, &mut parts, &mut pending.names, &mut pending.vecs);
                // The parts borrow the block's clusters, which `conclude` must not see borrowed.
                drop(parts);
                let (mut answer, ede) = (merged.answer, merged.ede);
                if let (GatherSet::Multicluster(zone), Some(m)) = (set, &block.multicluster) {
                    m.finish(zone, &mut answer);
                }
                if !ede.is_empty() && answer.rcode != Rcode::SERVFAIL {
                    self.stats.partial_replies += 1;
                }
                let ede = [ede, shaped.ede.into_iter().collect()].concat();
                let stage = set.stage();
                self.conclude(
                    now, q.started, q.client, q.query, q.block, stage, answer, &ede,
                );
            }
            Kind::Proxy { .. } => {
                self.observe_forward();
                let part = &mut q.parts[0];
                let outcome = part.outcome.take().unwrap_or(Outcome::TimedOut);
                let (answer, ede, ra) = proxied(outcome, part.flags);
                self.send_reply(
                    now,
                    q.started,
                    q.client,
                    &q.query,
                    Some(q.block),
                    &answer,
                    &ede,
                    ra,
                );
                self.pending.vecs.give_answer(answer);
            }
        }
        self.pending.part_vecs.give(q.parts);
    }

    /// Sends a reply of gatherdns's own (gathered, authoritative or refused), with RA=0:
    /// RA says the server would recurse for the client, and for these names it does not. A
    /// gathered answer is the server's own authoritative data, however it came by it; only a
    /// proxied reply (`send_reply` from `finish`) is recursion, and it carries the upstream's
    /// RA, as CoreDNS's `forward` does.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reply_now(
        &mut self,
        now: Instant,
        started: Instant,
        client: ClientAddr,
        query: &ClientQuery,
        block: Option<Ref>,
        answer: &Answer,
        ede: &[Ede],
    ) {
        self.send_reply(now, started, client, query, block, answer, ede, false);
    }

    /// Sends a reply through the block's `cache` and `loadbalance` (see `cached.rs`).
    #[allow(clippy::too_many_arguments)]
    fn send_reply(
        &mut self,
        now: Instant,
        started: Instant,
        client: ClientAddr,
        query: &ClientQuery,
        block: Option<Ref>,
        answer: &Answer,
        ede: &[Ede],
        ra: bool,
    ) {
        let outgoing = match block {
            Some(b) => self.outgoing(now, &client, query, b, answer, ede, ra),
            None => Outgoing::Unchanged,
        };
        match outgoing {
            Outgoing::Unchanged => {
                self.emit_reply(now, started, client, query, block, answer, ede, ra)
            }
            Outgoing::Replaced(answer, ede, ra) => {
                self.emit_reply(now, started, client, query, block, &answer, &ede, ra)
            }
            Outgoing::Swallowed => {}
        }
    }

    /// Puts a reply on the wire, with its log line and metrics.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit_reply(
        &mut self,
        now: Instant,
        started: Instant,
        client: ClientAddr,
        query: &ClientQuery,
        block: Option<Ref>,
        answer: &Answer,
        ede: &[Ede],
        ra: bool,
    ) {
        let udp_size = block.map_or(EDNS_UDP_SIZE, |b| self.blocks[b].bufsize);
        let meta = ReplyMeta { ra, ede, udp_size };
        let (payload, truncated) = respond::encode(
            &mut self.scratch,
            &client,
            query,
            answer,
            &meta,
            &mut self.stats,
        );
        if block.is_some_and(|b| self.blocks[b].log) {
            let took = now.saturating_duration_since(started);
            let log =
                respond::query_log(&client, query, answer, ra, truncated, payload.len(), took);
            self.events.push_back(Event::QueryLogged(log));
        }
        let (size, rcode) = (payload.len(), u16::from(answer.rcode.to_int()));
        self.transmits.push_back(Transmit {
            destination: Destination::Client(client),
            payload,
        });
        self.observe_reply(now, started, &client, query, block, size, rcode);
    }
}

/// A proxied reply: the upstream's answer with its AA and RA, or SERVFAIL with an EDE.
fn proxied(outcome: Outcome, (aa, ra): (bool, bool)) -> (Answer, Vec<Ede>, bool) {
    let (code, why) = match outcome {
        Outcome::Answered(reply) => {
            let [answer, authority, additional] = reply.sections;
            return (
                Answer {
                    rcode: reply.rcode,
                    aa,
                    answer,
                    authority,
                    additional,
                    sources: Default::default(),
                },
                Vec::new(),
                ra,
            );
        }
        Outcome::Refused(why) => {
            let e = Ede {
                code: ede::OTHER,
                text: why,
            };
            return (Answer::empty(Rcode::REFUSED, false), vec![e], true);
        }
        Outcome::TimedOut => (ede::NO_REACHABLE_AUTHORITY, "timed out".to_string()),
        Outcome::Down(why) => (ede::NO_REACHABLE_AUTHORITY, why),
        Outcome::Failed(why) => (ede::NETWORK_ERROR, why),
    };
    let e = Ede {
        code,
        text: format!("no answer from upstream: {why}"),
    };
    (Answer::empty(Rcode::SERVFAIL, false), vec![e], true)
}

/// Answers the distributed domain gives itself: RFC 8482's minimal reply to ANY, SOA and NS
/// at the apex, and its name server's addresses.
pub(super) fn synthesised(g: &CompiledGather, query: &ClientQuery) -> Option<Answer> {
    if query.qtype == Rtype::ANY {
        let mut answer = Answer::empty(Rcode::NOERROR, true);
        let hinfo = Record::rfc8482_hinfo(query.qname.clone(), 3600);
        answer.answer.push(hinfo);
        return Some(answer);
    }
    g.own_answer(&query.qname, query.qtype)
}
