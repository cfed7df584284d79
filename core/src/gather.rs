//! Turning the clusters' replies into one: flattening CNAME chains on fan-outs, renaming every
//! record into the distributed domain, and merging (RCODE rule, configuration order, dedupe,
//! negative SOA, Extended DNS Errors for clusters that did not answer).

use crate::answer::Answer;
use crate::routing::{rename_from_cluster, ClusterNames, Naming};
use crate::vec_pool::VecPool;
use crate::wire::{ede, Ede, Name, NameArena, Rcode, Record, Rtype};

/// A cluster's reply, as decoded at the boundary.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClusterReply {
    pub(crate) rcode: Rcode,
    pub(crate) sections: [Vec<Record>; 3],
}

/// How one cluster's part of a gathered query ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    Answered(ClusterReply),
    /// No reply in time.
    TimedOut,
    /// Skipped at once: the cluster's upstreams are all down.
    Down(String),
    /// Not asked: its forward is at `max_concurrent`.
    Refused(String),
    /// The transport failed or the reply was malformed.
    Failed(String),
}

/// Everything the merge needs to know about the query.
pub(crate) struct MergeQuery<'a> {
    pub(crate) naming: Naming,
    pub(crate) domain: &'a Name,
    pub(crate) qname: &'a Name,
    pub(crate) qtype: Rtype,
    pub(crate) prefixed: bool,
    /// The synthesised SOA for negative answers.
    pub(crate) soa: &'a Record,
    /// Keys the record hashes of deduplication.
    pub(crate) seed: u64,
}

/// One cluster's part: its names, the name it was asked, and how it went (the merge takes
/// the records out of it).
pub(crate) struct Part<'a> {
    pub(crate) cluster: ClusterNames<'a>,
    pub(crate) subname: &'a Name,
    pub(crate) outcome: Outcome,
}

/// The merged reply content and the EDEs to attach.
#[derive(Debug)]
pub(crate) struct Merged {
    pub(crate) answer: Answer,
    pub(crate) ede: Vec<Ede>,
}

/// Merges the parts, which come in configuration order; renamed names are built in `names`.
pub(crate) fn merge(
    q: &MergeQuery<'_>,
    parts: &mut [Part<'_>],
    names: &mut NameArena,
    vecs: &mut VecPool<Record>,
) -> Merged {
    let mut ede = Vec::new();
    if let Some(e) = missing_clusters_ede(parts) {
        ede.push(e);
    }
    if !q.prefixed {
        // First, as a chain decides whether the asked name exists in that cluster.
        for part in parts.iter_mut() {
            if let Outcome::Answered(reply) = &mut part.outcome {
                let answer = std::mem::take(&mut reply.sections[0]);
                let (answer, chained) = flatten_cname_chain(answer, part.subname, q.qtype);
                reply.sections[0] = answer;
                if chained && reply.rcode == Rcode::NXDOMAIN {
                    // The name is an alias whose target does not exist (RFC 6604 §2): the
                    // name itself exists, without data of this type.
                    reply.rcode = Rcode::NOERROR;
                }
            }
        }
    }
    let rcodes = || {
        parts.iter().filter_map(|p| match &p.outcome {
            Outcome::Answered(reply) => Some(reply.rcode),
            _ => None,
        })
    };
    let rcode = if rcodes().any(|r| r == Rcode::NOERROR) {
        Rcode::NOERROR
    } else if rcodes().any(|r| r == Rcode::NXDOMAIN) {
        Rcode::NXDOMAIN
    } else {
        Rcode::SERVFAIL
    };
    if rcode == Rcode::SERVFAIL {
        // Nothing answered, or nothing but failures.
        return Merged {
            answer: Answer::empty(Rcode::SERVFAIL, true),
            ede,
        };
    }
    // Only clusters whose RCODE agrees with the merged one contribute records, so a
    // cluster's NXDOMAIN chain cannot leak into another cluster's positive answer. Each
    // is renamed in place, then moved into the answer, its vectors given back.
    let mut contributing = 0;
    let mut totals = [0usize; 3];
    for part in parts.iter_mut() {
        if let Outcome::Answered(reply) = &mut part.outcome {
            if reply.rcode == rcode {
                let sections = std::mem::take(&mut reply.sections);
                reply.sections = rename_reply(q, &part.cluster, part.subname, sections, names);
                for (total, section) in totals.iter_mut().zip(&reply.sections) {
                    *total += section.len();
                }
                contributing += 1;
            }
        }
    }
    let mut answer = Answer::empty(rcode, true);
    let mut unique = totals.map(|total| Unique::new(q.seed, total));
    answer.answer = vecs.take(totals[0]);
    answer.authority = vecs.take(totals[1]);
    answer.additional = vecs.take(totals[2]);
    let several = contributing > 1;
    for part in parts.iter_mut() {
        let Outcome::Answered(reply) = &mut part.outcome else {
            continue;
        };
        if reply.rcode != rcode {
            continue;
        }
        let [mut ans, mut auth, mut add] = std::mem::take(&mut reply.sections);
        for r in ans.drain(..) {
            unique[0].push(&mut answer.answer, r);
        }
        for r in auth.drain(..) {
            unique[1].push(&mut answer.authority, r);
        }
        for r in add.drain(..) {
            if !unique[0].contains(&answer.answer, &r) {
                unique[2].push(&mut answer.additional, r);
            }
        }
        for v in [ans, auth, add] {
            vecs.give(v);
        }
        if several {
            answer
                .sources
                .push([answer.answer.len(), answer.additional.len()]);
        }
    }
    let referral =
        answer.answer.is_empty() && answer.authority.iter().any(|r| r.rtype() == Rtype::NS);
    if referral && rcode == Rcode::NOERROR {
        // A cluster delegates the name: pass the (renamed) delegation on, as a referral.
        answer.aa = false;
    } else if rcode == Rcode::NXDOMAIN || answer.answer.is_empty() {
        answer.authority = vec![q.soa.clone()];
    }
    Merged { answer, ede }
}

/// Renames one cluster's reply; upstream SOAs are dropped (negative answers get ours).
fn rename_reply(
    q: &MergeQuery<'_>,
    cluster: &ClusterNames<'_>,
    subname: &Name,
    [answer, authority, additional]: [Vec<Record>; 3],
    names: &mut NameArena,
) -> [Vec<Record>; 3] {
    // A reply names a host twice (SRV target, then A owner): in a small reply, the few
    // latest renames are remembered so that the second costs a comparison, not a new name.
    // (In a large one the two are too far apart for that to pay.)
    let remember = answer.len() + additional.len() <= 8;
    let mut recent: [Option<(Name, Name)>; 4] = Default::default();
    let mut next = 0;
    let mut rename_name = |name: &Name| {
        if let Some((_, to)) = recent
            .iter()
            .flatten()
            .find(|(from, _)| from.eq_exact(name))
        {
            return Some(Ok(to.clone()));
        }
        let renamed =
            rename_from_cluster(q.naming, name, subname, q.qname, cluster, q.domain, names);
        if let (true, Some(Ok(to))) = (remember, &renamed) {
            recent[next % recent.len()] = Some((name.clone(), to.clone()));
            next += 1;
        }
        renamed
    };
    // Collecting a vector's own `into_iter` reuses its allocation.
    let mut rename = |records: Vec<Record>, drop_soa: bool| -> Vec<Record> {
        records
            .into_iter()
            .filter(|r| !(drop_soa && r.rtype() == Rtype::SOA))
            .filter_map(|r| r.renamed(&mut rename_name))
            .collect()
    };
    [
        rename(answer, false),
        rename(authority, true),
        rename(additional, true),
    ]
}

/// One rule for CNAMEs on a fan-out, whatever the type asked: a name holds a CNAME or data,
/// never both (RFC 1034 §3.6.2, RFC 2181 §10.1), and the clusters' chains for one name differ,
/// so the asked name is never a CNAME in the merged answer. A cluster's chain from `subname`
/// is replaced by what it ends in: its records of `qtype`, moved under `subname`, or nothing
/// when the chain ends without them (unresolved, in a loop, or `qtype` is CNAME itself), which
/// makes the name NODATA for that type unless another cluster has data. The chain's other
/// records and DNAMEs that synthesised it go with it. Returns the answer, and whether a chain
/// started at `subname` (then the name exists in that cluster).
fn flatten_cname_chain(answer: Vec<Record>, subname: &Name, qtype: Rtype) -> (Vec<Record>, bool) {
    const MAX_HOPS: usize = 16;
    let cname_at = |name: &Name| {
        answer
            .iter()
            .find(|r| r.rtype() == Rtype::CNAME && r.owner() == name)
            .and_then(Record::cname_target)
    };
    let Some(mut end) = cname_at(subname) else {
        return (answer, false);
    };
    let mut chain = vec![subname.clone()];
    while chain.len() <= MAX_HOPS && !chain.contains(&end) {
        match cname_at(&end) {
            Some(next) => chain.push(std::mem::replace(&mut end, next)),
            None => break,
        }
    }
    // `end` holds the data unless the chain looped back or was cut short (it is a CNAME then).
    let resolved = qtype != Rtype::CNAME && !chain.contains(&end) && cname_at(&end).is_none();
    let mut out: Vec<Record> = Vec::with_capacity(answer.len());
    if resolved {
        out.extend(
            answer
                .iter()
                .filter(|r| r.rtype() == qtype && *r.owner() == end)
                .map(|r| r.with_owner(subname.clone())),
        );
    }
    out.extend(answer.into_iter().filter(|r| {
        let on_chain = *r.owner() == end || chain.contains(r.owner());
        !on_chain && r.rtype() != Rtype::DNAME
    }));
    (out, true)
}

/// The records a merged section already holds, so that each RR is taken once (TTL aside)
/// in time linear in the number of records: an open-addressing table of positions in the
/// section, by [`Record::rr_hash`]. Small sections are searched directly.
struct Unique {
    seed: u64,
    /// Position + 1 in the section; 0 is a free slot. Empty for small sections.
    slots: Vec<u32>,
}

/// Up to this many records, a direct search is cheaper than hashing.
const DIRECT_SEARCH: usize = 16;

impl Unique {
    /// For a section that will be offered at most `expected` records.
    fn new(seed: u64, expected: usize) -> Unique {
        let slots = if expected <= DIRECT_SEARCH {
            Vec::new()
        } else {
            // At most half full: probes stay short and always end.
            vec![0; (expected * 2).next_power_of_two()]
        };
        Unique { seed, slots }
    }

    /// Where `record` is in `section`, or the free slot it would take.
    fn find(&self, section: &[Record], record: &Record) -> Result<(), usize> {
        if self.slots.is_empty() {
            return match section.iter().any(|r| r.same_rr(record)) {
                true => Ok(()),
                false => Err(0),
            };
        }
        let mask = self.slots.len() - 1;
        let mut index = record.rr_hash(self.seed) as usize & mask;
        loop {
            match self.slots[index] {
                0 => return Err(index),
                taken if section[taken as usize - 1].same_rr(record) => return Ok(()),
                _ => index = (index + 1) & mask,
            }
        }
    }

    fn contains(&self, section: &[Record], record: &Record) -> bool {
        self.find(section, record).is_ok()
    }

    /// Appends `record` unless `section` holds the same RR already.
    fn push(&mut self, section: &mut Vec<Record>, record: Record) {
        if let Err(slot) = self.find(section, &record) {
            section.push(record);
            if let Some(s) = self.slots.get_mut(slot) {
                *s = section.len() as u32;
            }
        }
    }
}

fn missing_clusters_ede(parts: &[Part<'_>]) -> Option<Ede> {
    let mut failed = false;
    let missing: Vec<String> = parts
        .iter()
        .filter_map(|p| match &p.outcome {
            Outcome::Answered(_) => None,
            Outcome::TimedOut => Some(format!("{} (timed out)", p.cluster.suffix)),
            Outcome::Down(why) | Outcome::Refused(why) => {
                Some(format!("{} ({why})", p.cluster.suffix))
            }
            Outcome::Failed(why) => {
                failed = true;
                Some(format!("{} ({why})", p.cluster.suffix))
            }
        })
        .collect();
    if missing.is_empty() {
        return None;
    }
    // Some clusters answered and the rest did not reply or were skipped: their servers
    // are unreachable (22). Nothing answered, or a transport failed: a network error (23).
    let all_missing = missing.len() == parts.len();
    let code = if all_missing || failed {
        ede::NETWORK_ERROR
    } else {
        ede::NO_REACHABLE_AUTHORITY
    };
    Some(Ede {
        code,
        text: format!("no answer from {}", missing.join(", ")),
    })
}
