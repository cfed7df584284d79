//! Turning the clusters' replies into one: renaming every record into the distributed domain,
//! flattening CNAME chains on fan-outs, and merging (RCODE rule, configuration order, dedupe,
//! negative SOA, Extended DNS Errors for clusters that did not answer or disagreed).

use crate::answer::Answer;
use crate::routing::{rename_from_cluster, ClusterNames, Naming};
use crate::wire::{ede, Ede, Name, Rcode, Record, Rtype};

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
}

/// One cluster's part: its names, the name it was asked, and how it went.
pub(crate) struct Part<'a> {
    pub(crate) cluster: ClusterNames<'a>,
    pub(crate) subname: &'a Name,
    pub(crate) outcome: &'a Outcome,
}

/// The merged reply content and the EDEs to attach.
#[derive(Debug)]
pub(crate) struct Merged {
    pub(crate) answer: Answer,
    pub(crate) ede: Vec<Ede>,
}

/// Merges the parts, which come in configuration order.
pub(crate) fn merge(q: &MergeQuery<'_>, parts: &[Part<'_>]) -> Merged {
    let mut ede = Vec::new();
    let answered: Vec<(usize, [Vec<Record>; 3], Rcode)> = parts
        .iter()
        .enumerate()
        .filter_map(|(i, part)| match part.outcome {
            Outcome::Answered(reply) => Some((i, rename_reply(q, part, reply), reply.rcode)),
            _ => None,
        })
        .collect();
    if let Some(e) = missing_clusters_ede(parts) {
        ede.push(e);
    }
    if answered.is_empty() {
        return Merged {
            answer: Answer::empty(Rcode::SERVFAIL, true),
            ede,
        };
    }
    let rcode = if answered.iter().any(|(_, _, r)| *r == Rcode::NOERROR) {
        Rcode::NOERROR
    } else if answered.iter().any(|(_, _, r)| *r == Rcode::NXDOMAIN) {
        Rcode::NXDOMAIN
    } else {
        Rcode::SERVFAIL
    };
    // Only clusters whose RCODE agrees with the merged one contribute records, so a
    // cluster's NXDOMAIN chain cannot leak into another cluster's positive answer.
    let mut contributing: Vec<(usize, [Vec<Record>; 3])> = answered
        .into_iter()
        .filter(|(_, _, r)| *r == rcode)
        .map(|(i, s, _)| (i, s))
        .collect();
    if rcode == Rcode::SERVFAIL {
        return Merged {
            answer: Answer::empty(Rcode::SERVFAIL, true),
            ede,
        };
    }
    if let Some(e) = resolve_cname_conflict(q, parts, &mut contributing) {
        ede.push(e);
    }
    let mut answer = Answer::empty(rcode, true);
    for (_, [ans, auth, add]) in contributing {
        push_unique(&mut answer.answer, ans);
        push_unique(&mut answer.authority, auth);
        push_unique(&mut answer.additional, add);
    }
    answer
        .additional
        .retain(|r| !answer.answer.iter().any(|a| a.same_rr(r)));
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
fn rename_reply(q: &MergeQuery<'_>, part: &Part<'_>, reply: &ClusterReply) -> [Vec<Record>; 3] {
    let flatten = !q.prefixed && q.qtype != Rtype::CNAME && q.qtype != Rtype::ANY;
    let answer = if flatten {
        flatten_cname_chain(&reply.sections[0], part.subname, q.qtype)
    } else {
        reply.sections[0].clone()
    };
    let rename = |records: &[Record], drop_soa: bool| -> Vec<Record> {
        records
            .iter()
            .filter(|r| !(drop_soa && r.rtype() == Rtype::SOA))
            .filter_map(|r| {
                r.rename(|name| {
                    rename_from_cluster(
                        q.naming,
                        name,
                        part.subname,
                        q.qname,
                        &part.cluster,
                        q.domain,
                    )
                })
            })
            .collect()
    };
    [
        rename(&answer, false),
        rename(&reply.sections[1], true),
        rename(&reply.sections[2], true),
    ]
}

/// If the chain from `subname` through CNAMEs ends in records of `qtype`, returns the
/// answer with those records moved under `subname` and the CNAMEs of the chain removed.
/// Otherwise returns the answer unchanged.
fn flatten_cname_chain(answer: &[Record], subname: &Name, qtype: Rtype) -> Vec<Record> {
    const MAX_HOPS: usize = 16;
    let mut current = subname.clone();
    let mut chain: Vec<Name> = Vec::new();
    for _ in 0..=MAX_HOPS {
        if answer
            .iter()
            .any(|r| r.rtype() == qtype && *r.owner() == current)
        {
            if chain.is_empty() {
                return answer.to_vec();
            }
            let terminal = current;
            let mut out: Vec<Record> = answer
                .iter()
                .filter(|r| r.rtype() == qtype && *r.owner() == terminal)
                .map(|r| r.with_owner(subname.clone()))
                .collect();
            out.extend(
                answer
                    .iter()
                    .filter(|r| {
                        let in_chain = r.rtype() == Rtype::CNAME && chain.contains(r.owner());
                        let is_terminal = r.rtype() == qtype && *r.owner() == terminal;
                        !in_chain && !is_terminal
                    })
                    .cloned(),
            );
            return out;
        }
        let next = answer
            .iter()
            .find(|r| r.rtype() == Rtype::CNAME && *r.owner() == current)
            .and_then(Record::cname_target);
        match next {
            Some(target) if !chain.contains(&target) => {
                chain.push(current);
                current = target;
            }
            _ => break,
        }
    }
    answer.to_vec()
}

/// What a cluster says at the question name.
#[derive(PartialEq)]
enum Head {
    Cname(Name),
    Data,
}

fn head_of(records: &[Record], qname: &Name) -> Option<Head> {
    if let Some(target) = records
        .iter()
        .find(|r| r.rtype() == Rtype::CNAME && r.owner() == qname)
        .and_then(Record::cname_target)
    {
        return Some(Head::Cname(target));
    }
    records
        .iter()
        .any(|r| r.owner() == qname)
        .then_some(Head::Data)
}

/// A name holds one CNAME and nothing else: when clusters disagree at the question name
/// and a CNAME is involved, the first cluster in configuration order wins.
fn resolve_cname_conflict(
    q: &MergeQuery<'_>,
    parts: &[Part<'_>],
    contributing: &mut Vec<(usize, [Vec<Record>; 3])>,
) -> Option<Ede> {
    let heads: Vec<Option<Head>> = contributing
        .iter()
        .map(|(_, s)| head_of(&s[0], q.qname))
        .collect();
    let any_cname = heads.iter().any(|h| matches!(h, Some(Head::Cname(_))));
    let winner = heads.iter().position(Option::is_some)?;
    if !any_cname || heads.iter().all(|h| h.is_none() || *h == heads[winner]) {
        return None;
    }
    let losers: Vec<usize> = heads
        .iter()
        .enumerate()
        .filter(|(i, h)| h.is_some() && **h != heads[winner] && *i != winner)
        .map(|(i, _)| i)
        .collect();
    let names = |idx: &[usize]| -> String {
        idx.iter()
            .map(|&i| parts[contributing[i].0].cluster.suffix.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        "clusters disagree on the CNAME at {}: answered from {}, ignored {}",
        q.qname,
        parts[contributing[winner].0].cluster.suffix,
        names(&losers)
    );
    let mut index = 0;
    contributing.retain(|_| {
        let keep = !losers.contains(&index);
        index += 1;
        keep
    });
    Some(Ede {
        code: ede::OTHER,
        text,
    })
}

fn missing_clusters_ede(parts: &[Part<'_>]) -> Option<Ede> {
    let mut failed = false;
    let missing: Vec<String> = parts
        .iter()
        .filter_map(|p| match p.outcome {
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

fn push_unique(into: &mut Vec<Record>, records: Vec<Record>) {
    for r in records {
        if !into.iter().any(|e| e.same_rr(&r)) {
            into.push(r);
        }
    }
}
