//! A distributed domain as a server block compiles it: the clusters it is gathered from,
//! where each cluster's answers come from (a `forward` or `file` of the block), and the SOA,
//! NS and name server addresses synthesised for it. `block` builds these; `mcs` and the
//! gateway read them.

use std::net::IpAddr;
use std::time::Duration;

use crate::answer::Answer;
use crate::policy::CompiledAnswers;
use crate::routing::{ClusterNames, ClusterSide, Naming};
use crate::wire::{Name, NameError, Record, Rtype};

/// Where a cluster's answers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Index into the block's forwards.
    Forward(usize),
    /// Index into the block's zones.
    Zone(usize),
}

/// One cluster of the domain: the suffix its names have there, and who answers for it.
pub(crate) struct CompiledCluster {
    pub(crate) suffix: Name,
    /// The cluster's prefix (gathersrv) or cluster ID (multicluster).
    pub(crate) mark: Vec<u8>,
    pub(crate) source: Source,
}

/// One distributed domain gathered from the clusters: gathersrv's, or one zone of
/// multicluster's. The naming scheme is all that differs between the two.
pub(crate) struct CompiledGather {
    pub(crate) naming: Naming,
    pub(crate) domain: Name,
    pub(crate) clusters: Vec<CompiledCluster>,
    pub(crate) timeout: Duration,
    pub(crate) cluster_timeout: Duration,
    /// SOA for negative answers and apex SOA queries.
    pub(crate) soa: Record,
    /// NS for apex NS queries.
    pub(crate) ns: Record,
    /// The name server the NS names (`ns.dns.DOMAIN`) and its A/AAAA records.
    pub(crate) name_server: NameServer,
    /// Which clusters' parts a reply holds, SRV priorities, stale parts.
    pub(crate) answers: CompiledAnswers,
}

/// The name server a synthesised NS record names: `ns.dns.ZONE`, inside the zone, so the zone
/// must answer its addresses itself (RFC 1034 §4.2.1, RFC 2181 §5.4.1) — they are what a
/// parent zone's glue for a delegation repeats.
pub(crate) struct NameServer {
    pub(crate) name: Name,
    /// Its addresses, IPv4 (A) before IPv6 (AAAA), TTL as the NS record's.
    pub(crate) addrs: Vec<Record>,
}

impl NameServer {
    /// `ns.dns.ZONE` with `ips` as its addresses.
    pub(crate) fn new(zone: &Name, ips: &[IpAddr], ttl: u32) -> Result<NameServer, NameError> {
        let name = Name::from_labels([b"ns".as_slice(), b"dns".as_slice()], zone)?;
        let v4 = ips.iter().filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(Record::a(name.clone(), ttl, *v4)),
            IpAddr::V6(_) => None,
        });
        let v6 = ips.iter().filter_map(|ip| match ip {
            IpAddr::V6(v6) => Some(Record::aaaa(name.clone(), ttl, *v6)),
            IpAddr::V4(_) => None,
        });
        let addrs = v4.chain(v6).collect();
        Ok(NameServer { name, addrs })
    }

    /// Its addresses of `qtype` (both kinds for ANY, as RFC 8482 §4.1 allows), owned by
    /// `owner`.
    fn addresses(&self, owner: &Name, qtype: Rtype) -> Vec<Record> {
        self.addrs
            .iter()
            .filter(|r| qtype == Rtype::ANY || r.rtype() == qtype)
            .map(|r| r.with_owner(owner.clone()))
            .collect()
    }
}

impl CompiledGather {
    /// What the domain answers about itself without asking the clusters: SOA and NS at the
    /// apex (the name server's addresses as additional data), the name server `ns.dns.DOMAIN`
    /// (its addresses, NODATA for other types) and the empty non-terminal `dns.DOMAIN` above
    /// it (NODATA). `None` for any other question, and for other types at the apex, which
    /// each directive treats in its own way.
    pub(crate) fn own_answer(&self, qname: &Name, qtype: Rtype) -> Option<Answer> {
        if *qname == self.domain {
            let mut answer = Answer::empty(crate::wire::Rcode::NOERROR, true);
            match qtype {
                Rtype::SOA => answer.answer.push(self.soa.with_owner(qname.clone())),
                Rtype::NS => {
                    answer.answer.push(self.ns.with_owner(qname.clone()));
                    answer.additional = self.name_server.addrs.clone();
                }
                _ => return None,
            }
            return Some(answer);
        }
        if *qname == self.name_server.name {
            let records = self.name_server.addresses(qname, qtype);
            return Some(Answer::records_or_nodata(records, &self.soa));
        }
        if self.name_server.name.parent().is_some_and(|p| p == *qname) {
            return Some(Answer::negative(true, &self.soa));
        }
        None
    }
}

impl ClusterSide for CompiledCluster {
    fn names(&self) -> ClusterNames<'_> {
        ClusterNames {
            suffix: &self.suffix,
            mark: &self.mark,
        }
    }
}

/// Which gathering of its block a gathered query belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GatherSet {
    Gathersrv,
    /// The index of the zone in the `multicluster` directive.
    Multicluster(usize),
}
