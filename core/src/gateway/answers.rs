//! Gathered replies under the answer options of their domain: the policy picks the parts a
//! reply holds (and may let it go before every cluster has answered), a cluster that gave
//! no answer is stood in for by its last good part (gathersrv's `serve_stale`), and SRV
//! priorities are raised per cluster. Queries a policy decided on during an input are
//! finished at the first `poll_*` after it, so that every reply that input brought counts and
//! configuration order breaks ties between them.

use std::time::Instant;

use smallvec::SmallVec;

use super::Gateway;
use crate::cache::parts::PartKey;
use crate::distributed_domain::GatherSet;
use crate::gather::{ClusterReply, Outcome};
use crate::pending::{Kind, Query};
use crate::policy::{self, Policy};
use crate::wire::{ede, Ede, Record};

/// How the parts of a finished gathered query make up its reply.
#[derive(Debug, Default)]
pub(super) struct Shaped {
    /// Per part: its records are in the reply (inline for up to eight parts).
    pub(super) include: SmallVec<[bool; 8]>,
    /// The parts a stale part stood in for.
    pub(super) stale: Vec<usize>,
    /// EDE 3 naming the clusters whose stale part is in the reply.
    pub(super) ede: Option<Ede>,
}

impl Gateway {
    /// A reload: each distributed domain that keeps stale parts in the new configuration
    /// takes over those the same domain kept in the old one, so that a reload during an
    /// outage does not forget what stands in for the dead cluster.
    pub(super) fn carry_stale_parts(&mut self, blocks: &mut [crate::block::Block]) {
        for new in blocks.iter_mut().filter_map(|b| b.gather.as_mut()) {
            let Some(store) = new.answers.stale.as_mut() else {
                continue;
            };
            let old = self
                .blocks
                .current_mut()
                .iter_mut()
                .filter_map(|b| b.gather.as_mut())
                .find(|g| g.domain == new.domain)
                .and_then(|g| g.answers.stale.take());
            if let Some(old) = old {
                store.take_over(old);
            }
        }
    }

    /// True if the policy of the gathered query `key` lets it be answered now, before every
    /// cluster has.
    pub(super) fn decides_early(&self, key: u64) -> bool {
        let Some(q) = self.pending.queries.get(&key) else {
            return false;
        };
        let Kind::Gather {
            prefixed: false,
            set,
        } = q.kind
        else {
            return false;
        };
        let Some(g) = self.blocks[q.block].gather_set(set) else {
            return false;
        };
        if g.answers.policy == Policy::Union {
            return false;
        }
        let parts: Vec<(usize, Option<&Outcome>)> = q
            .parts
            .iter()
            .map(|p| (p.cluster, p.outcome.as_ref()))
            .collect();
        policy::decided(&g.answers.policy, &parts)
    }

    /// Remembers that query `key` may be answered (at `now`) once the input is over.
    pub(super) fn note_decided(&mut self, now: Instant, key: u64) {
        if !self.decided.iter().any(|(k, _)| *k == key) {
            self.decided.push((key, now));
        }
    }

    /// Answers the queries decided on during the last input. Called by every `poll_*`.
    pub(super) fn settle_decided(&mut self) {
        if self.decided.is_empty() {
            return;
        }
        let mut last = None;
        for (key, at) in std::mem::take(&mut self.decided) {
            if self.pending.queries.contains_key(&key) {
                self.finish_with(at, key, true);
                last = Some(at);
            }
        }
        if let Some(at) = last {
            self.settle_connections(at);
            self.release_retired();
        }
    }

    /// The parts of a finished gathered query, shaped for its reply: every cluster's live
    /// answer is kept as its stale part (when `serve_stale` is on), the policy picks the
    /// parts, gaps among them are filled by stale parts, and SRV priorities are raised.
    pub(super) fn shape_gathered(
        &mut self,
        now: Instant,
        q: &mut Query,
        prefixed: bool,
        set: GatherSet,
    ) -> Shaped {
        let (qtype, cd) = (q.query.qtype.to_int(), q.query.cd);
        let dnssec_ok = q.query.edns.is_some_and(|e| e.dnssec_ok);
        let all = |q: &Query| Shaped {
            include: smallvec::smallvec![true; q.parts.len()],
            ..Shaped::default()
        };
        let Some(g) = self.blocks[q.block].gather_set_mut(set) else {
            return all(q);
        };
        let plain = g.answers.policy == Policy::Union
            && g.answers.stale.is_none()
            && g.answers.srv_priority.iter().all(|p| *p == 0);
        if plain {
            // gathersrv's union, nothing kept: every part as it is.
            return all(q);
        }
        let key = |subname: &crate::wire::Name| PartKey {
            subname: subname.clone(),
            qtype,
            dnssec_ok,
            cd,
        };
        if let Some(store) = g.answers.stale.as_mut() {
            for p in &q.parts {
                if let Some(Outcome::Answered(reply)) = &p.outcome {
                    if !policy::missing(p.outcome.as_ref().expect("matched")) {
                        store.keep(now, key(&p.subname), reply);
                    }
                }
            }
        }
        let outcomes: Vec<(usize, Option<&Outcome>)> = q
            .parts
            .iter()
            .map(|p| (p.cluster, p.outcome.as_ref()))
            .collect();
        let live_positive = outcomes
            .iter()
            .any(|(_, o)| o.is_some_and(policy::positive));
        let mut selection = policy::select(&g.answers.policy, prefixed, &outcomes);
        let mut stale: Vec<(usize, String)> = Vec::new();
        if let Some(store) = g.answers.stale.as_mut() {
            for (i, p) in q.parts.iter_mut().enumerate() {
                let gap = p.outcome.as_ref().is_some_and(policy::missing);
                if !(selection.include[i] && selection.stale_allowed[i] && gap) {
                    continue;
                }
                if let Some(reply) = store.recall(now, &key(&p.subname)) {
                    let why = p.outcome.as_ref().map(why_missing).unwrap_or_default();
                    p.outcome = Some(Outcome::Answered(reply));
                    stale.push((i, why));
                }
            }
        }
        if g.answers.policy == Policy::FirstPositive && !prefixed && !live_positive {
            // No cluster answered positively: the first stale part that does, alone.
            let first = q
                .parts
                .iter()
                .position(|p| p.outcome.as_ref().is_some_and(policy::positive));
            if let Some(winner) = first {
                selection.include = (0..q.parts.len()).map(|i| i == winner).collect();
                stale.retain(|(i, _)| *i == winner);
            }
        }
        if !prefixed {
            for (i, p) in q.parts.iter_mut().enumerate() {
                let add = g.answers.srv_priority.get(p.cluster).copied().unwrap_or(0);
                if let (true, true, Some(Outcome::Answered(reply))) =
                    (add > 0, selection.include[i], &mut p.outcome)
                {
                    raise_srv_priorities(reply, add);
                }
            }
        }
        let ede = (!stale.is_empty()).then(|| {
            let named: Vec<String> = stale
                .iter()
                .map(|(i, why)| format!("{} ({why})", g.clusters[q.parts[*i].cluster].suffix))
                .collect();
            Ede {
                code: ede::STALE_ANSWER,
                text: format!("stale answer from {}", named.join(", ")),
            }
        });
        Shaped {
            include: SmallVec::from_vec(selection.include),
            stale: stale.into_iter().map(|(i, _)| i).collect(),
            ede,
        }
    }
}

/// Why a cluster's part is missing, for the EDE.
fn why_missing(outcome: &Outcome) -> String {
    match outcome {
        Outcome::TimedOut => "timed out".to_string(),
        Outcome::Down(why) | Outcome::Refused(why) | Outcome::Failed(why) => why.clone(),
        Outcome::Answered(reply) => format!("answered {}", reply.rcode),
    }
}

fn raise_srv_priorities(reply: &mut ClusterReply, add: u16) {
    for section in &mut reply.sections {
        let records = std::mem::take(section);
        *section = records
            .into_iter()
            .map(|r: Record| r.with_srv_priority_added(add))
            .collect();
    }
}
