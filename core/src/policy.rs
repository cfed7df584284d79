//! Answer policies of a gathered query: which clusters' parts make up the reply (the union,
//! the preferred clusters when one of them has the name, or the first positive answer), when
//! a reply may go before every cluster has answered, and SRV priorities by cluster. Pure
//! decisions over the parts' outcomes; the gateway applies them (`gateway/answers.rs`).

use crate::cache::parts::StaleStore;
use crate::config::{AnswerOptions, AnswerPolicy};
use crate::gather::Outcome;
use crate::wire::Rcode;

/// A policy with its clusters resolved to indices in configuration order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    Union,
    /// `true` for each preferred cluster.
    Prefer(Vec<bool>),
    FirstPositive,
}

/// The answer options of one distributed domain, compiled.
pub(crate) struct CompiledAnswers {
    pub(crate) policy: Policy,
    /// Added to the priority of each cluster's SRV records (configuration order).
    pub(crate) srv_priority: Vec<u16>,
    /// Each cluster's last good parts, when `serve_stale` is on.
    pub(crate) stale: Option<StaleStore>,
}

impl CompiledAnswers {
    /// gathersrv's behaviour: the union, nothing kept.
    pub(crate) fn union(clusters: usize) -> CompiledAnswers {
        CompiledAnswers {
            policy: Policy::Union,
            srv_priority: vec![0; clusters],
            stale: None,
        }
    }

    /// `options` for clusters with these prefixes (the parser checked that each prefix it
    /// names is one of them).
    pub(crate) fn new(options: &AnswerOptions, prefixes: &[&[u8]], seed: u64) -> CompiledAnswers {
        let index = |prefix: &str| {
            prefixes
                .iter()
                .position(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
        };
        let policy = match &options.policy {
            AnswerPolicy::Union => Policy::Union,
            AnswerPolicy::FirstPositive => Policy::FirstPositive,
            AnswerPolicy::Prefer(listed) => {
                let mut preferred = vec![false; prefixes.len()];
                for i in listed.iter().filter_map(|p| index(p)) {
                    preferred[i] = true;
                }
                Policy::Prefer(preferred)
            }
        };
        let mut srv_priority = vec![0; prefixes.len()];
        for (prefix, add) in &options.srv_priority {
            if let Some(i) = index(prefix) {
                srv_priority[i] = *add;
            }
        }
        CompiledAnswers {
            policy,
            srv_priority,
            stale: options
                .stale_parts
                .map(|settings| StaleStore::new(settings, seed)),
        }
    }
}

/// A cluster's answer that holds the name: NOERROR with records in the answer section.
pub(crate) fn positive(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Answered(r) if r.rcode == Rcode::NOERROR && !r.sections[0].is_empty())
}

/// A cluster that gave no usable answer (no reply, skipped, failed, or an RCODE other than
/// NOERROR and NXDOMAIN): a gap that a stale part may fill. NXDOMAIN and NODATA are answers.
pub(crate) fn missing(outcome: &Outcome) -> bool {
    !matches!(outcome, Outcome::Answered(r) if r.rcode == Rcode::NOERROR || r.rcode == Rcode::NXDOMAIN)
}

/// True if a gathered query may be answered now, before every cluster has: `first_positive`
/// once a cluster answered positively; `prefer` once every preferred cluster has ended and one
/// of them answered positively. `parts` is each part's cluster and outcome so far.
pub(crate) fn decided(policy: &Policy, parts: &[(usize, Option<&Outcome>)]) -> bool {
    match policy {
        Policy::Union => false,
        Policy::FirstPositive => parts.iter().any(|(_, o)| o.is_some_and(positive)),
        Policy::Prefer(preferred) => {
            let listed: Vec<_> = parts.iter().filter(|(c, _)| preferred[*c]).collect();
            !listed.is_empty()
                && listed.iter().all(|(_, o)| o.is_some())
                && listed.iter().any(|(_, o)| o.is_some_and(positive))
        }
    }
}

/// Which parts a reply is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selection {
    /// Per part: its records are in the reply.
    pub(crate) include: Vec<bool>,
    /// Per part: if it is a gap, a stale part may fill it.
    pub(crate) stale_allowed: Vec<bool>,
}

/// The parts of the reply, decided on the clusters' live answers (`parts`: each part's
/// cluster and outcome; `None` for a part that was not waited for). A prefixed host asks one
/// cluster, which no policy changes.
pub(crate) fn select(
    policy: &Policy,
    prefixed: bool,
    parts: &[(usize, Option<&Outcome>)],
) -> Selection {
    let n = parts.len();
    let answered: Vec<bool> = parts.iter().map(|(_, o)| o.is_some()).collect();
    let is_positive: Vec<bool> = parts.iter().map(|(_, o)| o.is_some_and(positive)).collect();
    let all = Selection {
        include: answered.clone(),
        stale_allowed: answered.clone(),
    };
    if prefixed {
        return all;
    }
    match policy {
        Policy::Union => all,
        Policy::FirstPositive => match is_positive.iter().position(|p| *p) {
            Some(winner) => Selection {
                include: (0..n).map(|i| i == winner).collect(),
                stale_allowed: vec![false; n],
            },
            // No live positive answer: the gaps may be filled, and `first_stale_positive`
            // then picks among those.
            None => all,
        },
        Policy::Prefer(preferred) => {
            let listed = |i: usize| preferred[parts[i].0];
            if (0..n).any(|i| listed(i) && is_positive[i]) {
                Selection {
                    include: (0..n).map(|i| listed(i) && answered[i]).collect(),
                    stale_allowed: (0..n).map(|i| listed(i) && answered[i]).collect(),
                }
            } else {
                // The others' union; a preferred cluster that did not answer stays a gap.
                Selection {
                    include: answered.clone(),
                    stale_allowed: (0..n).map(|i| !listed(i) && answered[i]).collect(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::ClusterReply;
    use crate::wire::{Name, Record};

    fn answered(rcode: Rcode, records: usize) -> Outcome {
        let owner = Name::parse("x.example.").expect("valid");
        let answer = (0..records)
            .map(|i| Record::a(owner.clone(), 30, [10, 0, 0, i as u8].into()))
            .collect();
        Outcome::Answered(ClusterReply {
            rcode,
            sections: [answer, Vec::new(), Vec::new()],
        })
    }

    #[test]
    fn positive_and_missing() {
        assert!(positive(&answered(Rcode::NOERROR, 1)));
        assert!(!positive(&answered(Rcode::NOERROR, 0)), "NODATA");
        assert!(!positive(&answered(Rcode::NXDOMAIN, 0)));
        assert!(
            !missing(&answered(Rcode::NXDOMAIN, 0)),
            "an answer, not a gap"
        );
        assert!(!missing(&answered(Rcode::NOERROR, 0)));
        assert!(missing(&answered(Rcode::SERVFAIL, 0)));
        assert!(missing(&Outcome::TimedOut));
        assert!(missing(&Outcome::Down("down".into())));
    }

    #[test]
    fn first_positive_decides_on_the_first_positive_answer() {
        let yes = answered(Rcode::NOERROR, 1);
        let no = answered(Rcode::NXDOMAIN, 0);
        let p = Policy::FirstPositive;
        assert!(!decided(&p, &[(0, Some(&no)), (1, None)]));
        assert!(decided(&p, &[(0, None), (1, Some(&yes))]));
        let s = select(&p, false, &[(0, Some(&yes)), (1, Some(&yes))]);
        assert_eq!(
            s.include,
            vec![true, false],
            "configuration order breaks ties"
        );
        let s = select(&p, false, &[(0, Some(&no)), (1, Some(&Outcome::TimedOut))]);
        assert_eq!(s.include, vec![true, true], "no positive: the union");
        assert_eq!(s.stale_allowed, vec![true, true]);
    }

    #[test]
    fn prefer_waits_for_every_preferred_cluster() {
        let yes = answered(Rcode::NOERROR, 1);
        let no = answered(Rcode::NXDOMAIN, 0);
        let p = Policy::Prefer(vec![true, true, false]);
        assert!(!decided(&p, &[(0, Some(&yes)), (1, None), (2, None)]));
        assert!(decided(&p, &[(0, Some(&yes)), (1, Some(&no)), (2, None)]));
        assert!(!decided(&p, &[(0, Some(&no)), (1, Some(&no)), (2, None)]));
        let s = select(
            &p,
            false,
            &[(0, Some(&no)), (1, Some(&yes)), (2, Some(&yes))],
        );
        assert_eq!(s.include, vec![true, true, false]);
        let down = Outcome::Down("down".into());
        let s = select(
            &p,
            false,
            &[(0, Some(&down)), (1, Some(&no)), (2, Some(&yes))],
        );
        assert_eq!(s.include, vec![true, true, true], "the others' union");
        assert_eq!(
            s.stale_allowed,
            vec![false, false, true],
            "a preferred cluster that is down counts as not answering"
        );
        let s = select(&p, true, &[(2, Some(&yes))]);
        assert_eq!(s.include, vec![true], "a prefixed host is its cluster's");
    }
}
