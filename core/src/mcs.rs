//! What the MCS DNS specification (KEP-1645) adds to gathering, as coredns/multicluster
//! answers it: the name grammar below the clusterset zone (what is gathered, what is
//! NXDOMAIN), `dns-version`, the apex SOA and NS, and `noendpoints`.

use crate::answer::Answer;
use crate::config::{Fallthrough, Multicluster};
use crate::distributed_domain::CompiledGather;
use crate::wire::{Name, Rcode, Record, Rtype};

/// The schema version coredns/multicluster reports, and the TTL it gives it.
const DNS_VERSION: &str = "1.1.0";
const DNS_VERSION_TTL: u32 = 28800;

/// A `multicluster` directive, compiled: one gathering per zone.
pub(crate) struct CompiledMulticluster {
    pub(crate) sets: Vec<CompiledGather>,
    pub(crate) noendpoints: bool,
    pub(crate) fallthrough: Option<Fallthrough>,
}

/// What to do with a query in a clusterset zone.
pub(crate) enum McsStep {
    /// Answered without asking the clusters.
    Answer(Answer),
    /// Gathered from the clusters, through the zone's gathering (index in `sets`).
    Gather(usize),
}

impl CompiledMulticluster {
    pub(crate) fn new(config: &Multicluster, sets: Vec<CompiledGather>) -> CompiledMulticluster {
        CompiledMulticluster {
            sets,
            noendpoints: config.noendpoints,
            fallthrough: config.fallthrough.clone(),
        }
    }

    /// The longest zone holding `name`.
    fn zone_of(&self, name: &Name) -> Option<usize> {
        self.sets
            .iter()
            .enumerate()
            .filter(|(_, g)| name.is_at_or_below(&g.domain))
            .max_by_key(|(_, g)| g.domain.label_count())
            .map(|(i, _)| i)
    }

    pub(crate) fn covers(&self, qname: &Name) -> bool {
        self.zone_of(qname).is_some()
    }

    /// Sorts a query by coredns/multicluster's grammar (`svc` below the zone, then the
    /// namespace, the service, then nothing, `_<port>._<proto>` or `<host>.<cluster-id>`).
    /// `None` outside the zones.
    pub(crate) fn step(&self, qname: &Name, qtype: Rtype) -> Option<McsStep> {
        let zone = self.zone_of(qname)?;
        let g = &self.sets[zone];
        if let Some(answer) = g.own_answer(qname, qtype) {
            // SOA and NS at the apex, the name server `ns.dns.ZONE` and `dns.ZONE`.
            return Some(McsStep::Answer(answer));
        }
        let labels = qname.labels_below(&g.domain)?;
        let is = |l: &[u8], word: &[u8]| l.eq_ignore_ascii_case(word);
        let negative = |exists| McsStep::Answer(Answer::negative(exists, &g.soa));
        let gather = || match qtype {
            Rtype::ANY => McsStep::Answer(rfc8482(qname)),
            _ => McsStep::Gather(zone),
        };
        let step = match labels.as_slice() {
            [] => McsStep::Answer(apex(g, qname, qtype)),
            [v] if is(v, b"dns-version") => {
                let txt = Record::txt(qname.clone(), DNS_VERSION_TTL, DNS_VERSION);
                let records = if qtype == Rtype::TXT {
                    vec![txt]
                } else {
                    Vec::new()
                };
                McsStep::Answer(Answer::records_or_nodata(records, &g.soa))
            }
            [v] if is(v, b"svc") || is(v, b"pod") => negative(true),
            // A namespace or a service: whether it exists is the clusters' to say.
            [_, v] | [_, _, v] if is(v, b"svc") => gather(),
            [_, proto, _, _, v] if is(v, b"svc") && proto.starts_with(b"_") => gather(),
            [_, id, _, _, v] if is(v, b"svc") => {
                let known = g.clusters.iter().any(|c| c.mark.eq_ignore_ascii_case(id));
                if self.noendpoints || !known {
                    negative(false)
                } else {
                    gather()
                }
            }
            // `<cluster-id>.<svc>.<ns>.svc` (the spec forbids cluster-level names), the
            // unserved `pod` tree, other top labels, and anything deeper.
            _ => negative(false),
        };
        Some(step)
    }

    /// `noendpoints` on a gathered answer: SRV records pointing at endpoints, and their
    /// addresses, are left out; an answer left empty is NXDOMAIN, as for a headless
    /// service in coredns/multicluster.
    pub(crate) fn finish(&self, zone: usize, answer: &mut Answer) {
        let Some(g) = self.sets.get(zone) else { return };
        if !self.noendpoints || answer.rcode != Rcode::NOERROR || answer.answer.is_empty() {
            return;
        }
        let endpoint = |name: &Name| is_endpoint_name(name, &g.domain);
        answer.answer.retain(|r| {
            !(r.rtype() == Rtype::SRV && r.additional_target().is_some_and(|t| endpoint(&t)))
        });
        answer.additional.retain(|r| !endpoint(r.owner()));
        // The clusters' spans no longer hold; a truncated reply takes records in order.
        answer.sources.clear();
        if answer.answer.is_empty() {
            *answer = Answer::negative(false, &g.soa);
        }
    }
}

/// `<host>.<cluster-id>.<svc>.<ns>.svc.ZONE`.
fn is_endpoint_name(name: &Name, zone: &Name) -> bool {
    matches!(
        name.labels_below(zone).as_deref(),
        Some([_, id, _, _, v]) if v.eq_ignore_ascii_case(b"svc") && !id.starts_with(b"_")
    )
}

/// The zone apex apart from SOA and NS ([`CompiledGather::own_answer`]): NODATA, or
/// RFC 8482's answer to ANY.
fn apex(g: &CompiledGather, qname: &Name, qtype: Rtype) -> Answer {
    match qtype {
        Rtype::ANY => rfc8482(qname),
        _ => Answer::negative(true, &g.soa),
    }
}

/// RFC 8482's minimal answer to ANY, as gathersrv domains give it.
fn rfc8482(qname: &Name) -> Answer {
    let mut answer = Answer::empty(Rcode::NOERROR, true);
    answer
        .answer
        .push(Record::rfc8482_hinfo(qname.clone(), 3600));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributed_domain::{CompiledCluster, NameServer, Source};
    use crate::routing::Naming;
    use std::time::Duration;

    fn n(s: &str) -> Name {
        Name::parse(s).expect("valid")
    }

    fn mcs(noendpoints: bool) -> CompiledMulticluster {
        let zone = n("clusterset.local.");
        let (soa, ns) = crate::answer::synthesised_soa_ns(&zone, 5, 1).expect("fits");
        let ips = [
            "192.0.2.53".parse().expect("ip"),
            "2001:db8::53".parse().expect("ip"),
        ];
        let name_server = NameServer::new(&zone, &ips, 5).expect("fits");
        let cluster = |s: &str, id: &str| CompiledCluster {
            suffix: n(s),
            mark: id.as_bytes().to_vec(),
            source: Source::Forward(0),
        };
        let set = CompiledGather {
            naming: Naming::ClusterLabel,
            domain: zone,
            clusters: vec![
                cluster("cluster-a.local.", "east"),
                cluster("cluster-b.local.", "west"),
            ],
            timeout: Duration::from_secs(2),
            cluster_timeout: Duration::from_millis(500),
            soa,
            ns,
            name_server,
            answers: crate::policy::CompiledAnswers::union(2),
        };
        CompiledMulticluster {
            sets: vec![set],
            noendpoints,
            fallthrough: None,
        }
    }

    /// `gather`, or the RCODE and answer of a local reply.
    fn step(m: &CompiledMulticluster, name: &str, qtype: Rtype) -> String {
        match m.step(&n(name), qtype) {
            None => "not ours".into(),
            Some(McsStep::Gather(zone)) => format!("gather {zone}"),
            Some(McsStep::Answer(a)) => {
                let records: Vec<String> = a.answer.iter().map(ToString::to_string).collect();
                format!(
                    "{} {} soa={}",
                    a.rcode,
                    records.join("|"),
                    a.authority.len()
                )
            }
        }
    }

    #[test]
    fn mcs_grammar() {
        let m = mcs(false);
        let z = "clusterset.local.";
        let cases = [
            ("web.default.svc", Rtype::A, "gather 0"),
            ("default.svc", Rtype::A, "gather 0"),
            ("_http._tcp.web.default.svc", Rtype::SRV, "gather 0"),
            ("web-0.WEST.web.default.svc", Rtype::A, "gather 0"),
            ("web-0.north.web.default.svc", Rtype::A, "NXDOMAIN  soa=1"),
            ("west.web.default.svc", Rtype::A, "NXDOMAIN  soa=1"),
            ("a.b.c.web.default.svc", Rtype::A, "NXDOMAIN  soa=1"),
            ("svc", Rtype::A, "NOERROR  soa=1"),
            ("pod", Rtype::A, "NOERROR  soa=1"),
            ("x.default.pod", Rtype::A, "NXDOMAIN  soa=1"),
            ("other", Rtype::A, "NXDOMAIN  soa=1"),
            ("dns-version", Rtype::A, "NOERROR  soa=1"),
        ];
        for (name, qtype, want) in cases {
            assert_eq!(
                step(&m, &format!("{name}.{z}"), qtype),
                want,
                "{name} {qtype}"
            );
        }
        assert_eq!(step(&m, "cluster-a.local.", Rtype::A), "not ours");
    }

    #[test]
    fn mcs_dns_version_apex_and_any() {
        let m = mcs(false);
        assert_eq!(
            step(&m, "dns-version.clusterset.local.", Rtype::TXT),
            "NOERROR dns-version.clusterset.local. 28800 IN TXT \"1.1.0\" soa=0"
        );
        assert_eq!(
            step(&m, "ClusterSet.local.", Rtype::SOA),
            "NOERROR ClusterSet.local. 5 IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 1 7200 1800 86400 5 soa=0"
        );
        assert_eq!(
            step(&m, "clusterset.local.", Rtype::NS),
            "NOERROR clusterset.local. 5 IN NS ns.dns.clusterset.local. soa=0"
        );
        assert_eq!(step(&m, "clusterset.local.", Rtype::A), "NOERROR  soa=1");
        assert!(step(&m, "web.default.svc.clusterset.local.", Rtype::ANY).contains("HINFO"));
    }

    #[test]
    fn mcs_name_server_resolves_inside_the_zone() {
        let m = mcs(false);
        assert_eq!(
            step(&m, "NS.dns.clusterset.local.", Rtype::A),
            "NOERROR NS.dns.clusterset.local. 5 IN A 192.0.2.53 soa=0"
        );
        assert_eq!(
            step(&m, "ns.dns.clusterset.local.", Rtype::AAAA),
            "NOERROR ns.dns.clusterset.local. 5 IN AAAA 2001:db8::53 soa=0"
        );
        assert_eq!(
            step(&m, "ns.dns.clusterset.local.", Rtype::TXT),
            "NOERROR  soa=1"
        );
        assert_eq!(
            step(&m, "dns.clusterset.local.", Rtype::A),
            "NOERROR  soa=1"
        );
        assert_eq!(
            step(&m, "x.ns.dns.clusterset.local.", Rtype::A),
            "NXDOMAIN  soa=1"
        );
        let Some(McsStep::Answer(ns)) = m.step(&n("clusterset.local."), Rtype::NS) else {
            panic!("the apex NS is ours");
        };
        let glue: Vec<String> = ns.additional.iter().map(ToString::to_string).collect();
        assert_eq!(
            glue,
            [
                "ns.dns.clusterset.local. 5 IN A 192.0.2.53",
                "ns.dns.clusterset.local. 5 IN AAAA 2001:db8::53"
            ]
        );
    }

    #[test]
    fn mcs_noendpoints_refuses_endpoint_names_and_targets() {
        let m = mcs(true);
        assert_eq!(
            step(&m, "web-0.west.web.default.svc.clusterset.local.", Rtype::A),
            "NXDOMAIN  soa=1"
        );
        let q = n("_http._tcp.web.default.svc.clusterset.local.");
        let endpoint = n("web-0.west.web.default.svc.clusterset.local.");
        let mut answer = Answer::empty(Rcode::NOERROR, true);
        answer
            .answer
            .push(Record::srv(q.clone(), 30, 0, 50, 80, endpoint.clone()));
        answer.additional.push(Record::a(
            endpoint,
            30,
            std::net::Ipv4Addr::new(10, 0, 0, 1),
        ));
        let mut headless = answer.clone();
        m.finish(0, &mut headless);
        assert_eq!(
            (
                headless.rcode,
                headless.answer.len(),
                headless.authority.len()
            ),
            (Rcode::NXDOMAIN, 0, 1)
        );
        let service = n("web.default.svc.clusterset.local.");
        answer.answer.push(Record::srv(q, 30, 0, 50, 80, service));
        m.finish(0, &mut answer);
        assert_eq!(
            (answer.rcode, answer.answer.len(), answer.additional.len()),
            (Rcode::NOERROR, 1, 0)
        );
    }
}
