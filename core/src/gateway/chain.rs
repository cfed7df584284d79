//! The plugin chain of a server block: its handlers in CoreDNS's fixed order (gathersrv,
//! hosts, multicluster_gw, multicluster, file, forward), the first that takes a query
//! answers it, and `fallthrough` hands a plugin's NXDOMAIN on to the next one that can.

use std::time::Instant;

use super::finish::synthesised;
use super::Gateway;
use crate::answer::Answer;
use crate::block::Block;
use crate::config::Fallthrough;
use crate::distributed_domain::GatherSet;
use crate::generation::Ref;
use crate::mcs::McsStep;
use crate::transmit::ClientAddr;
use crate::wire::{ClientQuery, Ede, Name, Rcode, Rtype};

/// A handler of a block, in plugin order (`Ord` is that order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    Gathersrv,
    Hosts,
    MulticlusterGw,
    Multicluster,
    File,
    Forward,
}

const ORDER: [Stage; 6] = [
    Stage::Gathersrv,
    Stage::Hosts,
    Stage::MulticlusterGw,
    Stage::Multicluster,
    Stage::File,
    Stage::Forward,
];

impl GatherSet {
    /// The handler whose gathering this is.
    pub(crate) fn stage(self) -> Stage {
        match self {
            GatherSet::Gathersrv => Stage::Gathersrv,
            GatherSet::Multicluster(_) => Stage::Multicluster,
        }
    }
}

/// What a handler does with a query.
enum Decision {
    /// Not its query: the next handler's.
    Pass,
    Reply(Answer),
    Gather(GatherSet),
    /// Through the block's forward with this index.
    Proxy(usize),
}

impl Gateway {
    /// Hands the query to the block's first handler after `after` (from the start if
    /// `None`) that takes it; REFUSED if none does.
    pub(super) fn route(
        &mut self,
        now: Instant,
        started: Instant,
        client: ClientAddr,
        query: ClientQuery,
        block: Ref,
        after: Option<Stage>,
    ) {
        if after.is_none() {
            self.observe_gathersrv_request(&client, &query, block);
            self.observe_loop(&client, &query, block);
            if self.answer_from_cache(now, started, client, &query, block) {
                return;
            }
        }
        for stage in ORDER.into_iter().filter(|s| after.is_none_or(|a| *s > a)) {
            match self.blocks[block].decide(stage, &query) {
                Decision::Pass => {}
                Decision::Reply(answer) => {
                    self.conclude(now, started, client, query, block, stage, answer, &[]);
                    return;
                }
                Decision::Gather(set) => {
                    if !self.overloaded(now, client, &query, block) {
                        self.start_gather(now, started, client, query, block, set);
                    }
                    return;
                }
                Decision::Proxy(forward) => {
                    if !self.overloaded(now, client, &query, block) {
                        self.start_proxy(now, started, client, query, block, forward);
                    }
                    return;
                }
            }
        }
        let refused = Answer::empty(Rcode::REFUSED, false);
        self.reply_now(now, started, client, &query, Some(block), &refused, &[]);
    }

    /// Sends a handler's answer, or hands the query on: an NXDOMAIN for a name its
    /// `fallthrough` covers goes to the next handler that takes the name. With no such
    /// handler the answer stands (CoreDNS would fail the query).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conclude(
        &mut self,
        now: Instant,
        started: Instant,
        client: ClientAddr,
        query: ClientQuery,
        block: Ref,
        stage: Stage,
        answer: Answer,
        ede: &[Ede],
    ) {
        let b = &self.blocks[block];
        let falls = answer.rcode == Rcode::NXDOMAIN && b.hands_on(stage, &query.qname, query.qtype);
        if falls {
            self.route(now, started, client, query, block, Some(stage));
        } else {
            self.observe_stage(stage);
            self.reply_now(now, started, client, &query, Some(block), &answer, ede);
        }
        self.pending.vecs.give_answer(answer);
    }
}

impl Block {
    fn decide(&self, stage: Stage, query: &ClientQuery) -> Decision {
        let (qname, qtype) = (&query.qname, query.qtype);
        let reply_or_pass = |answer: Option<Answer>| answer.map_or(Decision::Pass, Decision::Reply);
        match stage {
            Stage::Gathersrv => match self.gather.as_ref() {
                Some(g) if qname.is_at_or_below(&g.domain) => synthesised(g, query)
                    .map_or(Decision::Gather(GatherSet::Gathersrv), Decision::Reply),
                _ => Decision::Pass,
            },
            Stage::Hosts => reply_or_pass(self.hosts.as_ref().and_then(|h| h.lookup(qname, qtype))),
            Stage::MulticlusterGw => reply_or_pass(
                self.multicluster_gw
                    .as_ref()
                    .and_then(|g| g.lookup(qname, qtype)),
            ),
            Stage::Multicluster => match self
                .multicluster
                .as_ref()
                .and_then(|m| m.step(qname, qtype))
            {
                None => Decision::Pass,
                Some(McsStep::Answer(answer)) => Decision::Reply(answer),
                Some(McsStep::Gather(zone)) => Decision::Gather(GatherSet::Multicluster(zone)),
                // Before the first list of its Kubernetes source: SERVFAIL, unless the name
                // falls through (coredns/multicluster hands it on without checking the sync).
                Some(McsStep::Unsynced(servfail)) => {
                    if self.hands_on(stage, qname, qtype) {
                        Decision::Pass
                    } else {
                        Decision::Reply(servfail)
                    }
                }
            },
            Stage::File => self.zone_for(qname).map_or(Decision::Pass, |z| {
                Decision::Reply(self.zones[z].lookup(qname, qtype))
            }),
            Stage::Forward => self
                .forward_for(qname)
                .map_or(Decision::Pass, Decision::Proxy),
        }
    }

    /// True if the handler would take the query (without answering it).
    fn takes(&self, stage: Stage, qname: &Name, qtype: Rtype) -> bool {
        match stage {
            Stage::Gathersrv => self
                .gather
                .as_ref()
                .is_some_and(|g| qname.is_at_or_below(&g.domain)),
            Stage::Hosts => self.hosts.as_ref().is_some_and(|h| h.covers(qname, qtype)),
            Stage::MulticlusterGw => self
                .multicluster_gw
                .as_ref()
                .is_some_and(|g| g.covers(qname)),
            Stage::Multicluster => self.multicluster.as_ref().is_some_and(|m| m.covers(qname)),
            Stage::File => self.zone_for(qname).is_some(),
            Stage::Forward => self.forward_for(qname).is_some(),
        }
    }

    /// True if the handler's `fallthrough` covers the name and a later handler takes it.
    fn hands_on(&self, stage: Stage, qname: &Name, qtype: Rtype) -> bool {
        self.fallthrough(stage).is_some_and(|f| f.covers(qname))
            && ORDER
                .iter()
                .any(|s| *s > stage && self.takes(*s, qname, qtype))
    }

    fn fallthrough(&self, stage: Stage) -> Option<&Fallthrough> {
        match stage {
            Stage::Hosts => self.hosts.as_ref()?.fallthrough.as_ref(),
            Stage::MulticlusterGw => self.multicluster_gw.as_ref()?.fallthrough.as_ref(),
            Stage::Multicluster => self.multicluster.as_ref()?.fallthrough.as_ref(),
            Stage::Gathersrv | Stage::File | Stage::Forward => None,
        }
    }
}
