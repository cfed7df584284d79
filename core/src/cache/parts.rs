//! gathersrv's `serve_stale`: each cluster's last complete part of each gathered answer, kept
//! for a configured age so that it can stand in for that cluster while the cluster does not
//! answer. Bounded by a capacity, least recently used out.

use std::time::Instant;

use crate::config::{stale_defaults, StaleParts};
use crate::gather::ClusterReply;
use crate::seeded::Seeded;
use crate::wire::{compact, Name, Rcode, Record};

use super::lru::Lru;

/// A cluster's part of one question: the name it was asked (which carries the cluster's
/// suffix, so names one cluster), the type, DO and CD.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PartKey {
    pub(crate) subname: Name,
    pub(crate) qtype: u16,
    pub(crate) dnssec_ok: bool,
    pub(crate) cd: bool,
}

struct Kept {
    reply: ClusterReply,
    at: Instant,
}

/// The stale parts of one distributed domain.
pub(crate) struct StaleStore {
    pub(crate) settings: StaleParts,
    parts: Lru<PartKey, Kept>,
}

impl StaleStore {
    pub(crate) fn new(settings: StaleParts, seed: u64) -> StaleStore {
        StaleStore {
            parts: Lru::new(settings.capacity, Seeded::new(seed)),
            settings,
        }
    }

    /// Takes over the parts `old` kept (a reload of the same domain), under these settings.
    pub(crate) fn take_over(&mut self, old: StaleStore) {
        self.parts = old.parts;
        self.parts.set_capacity(self.settings.capacity);
    }

    /// A cluster answered `reply`: a positive part replaces the one kept; an NXDOMAIN or
    /// NODATA (or a referral) means the cluster has nothing for the question, so nothing is
    /// kept that could stand in for it later.
    pub(crate) fn keep(&mut self, now: Instant, key: PartKey, reply: &ClusterReply) {
        let positive = reply.rcode == Rcode::NOERROR && !reply.sections[0].is_empty();
        if !positive {
            self.parts.remove(&key);
            return;
        }
        let [a, b, c] = &reply.sections;
        match compact([a, b, c]) {
            Some(sections) => {
                let reply = ClusterReply {
                    rcode: reply.rcode,
                    sections,
                };
                self.parts.insert(key, Kept { reply, at: now });
            }
            None => {
                self.parts.remove(&key);
            }
        }
    }

    /// The part kept for `key` if it is younger than the configured age, its records with
    /// RFC 8767's TTL of 30 seconds. An older part is dropped.
    pub(crate) fn recall(&mut self, now: Instant, key: &PartKey) -> Option<ClusterReply> {
        let max_age = self.settings.max_age;
        let kept = self.parts.get_mut(key)?;
        if now.saturating_duration_since(kept.at) > max_age {
            self.parts.remove(key);
            return None;
        }
        let ttl = |records: &Vec<Record>| -> Vec<Record> {
            records
                .iter()
                .map(|r| r.clone().with_ttl(stale_defaults::TTL))
                .collect()
        };
        let [a, b, c] = &kept.reply.sections;
        Some(ClusterReply {
            rcode: kept.reply.rcode,
            sections: [ttl(a), ttl(b), ttl(c)],
        })
    }
}
