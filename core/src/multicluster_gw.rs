//! `multicluster_gw`: every `<svc>.<ns>.ZONE` resolves to the gateway address(es), as
//! itay-nakash/multicluster_gw answers ServiceImports — but every query gets a reply, with
//! an SOA on negative ones, where the original sends none (NXDOMAIN) or panics (the apex).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::answer::{synthesised_soa_ns, Answer};
use crate::config::{Fallthrough, MulticlusterGw};
use crate::wire::{Name, NameError, Record, Rtype};

/// TTL of every answer, as the original's.
const TTL: u32 = 5;

/// A `multicluster_gw` directive, compiled.
pub(crate) struct CompiledMulticlusterGw {
    /// Each zone with its SOA and NS.
    zones: Vec<(Name, Record, Record)>,
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
    pub(crate) fallthrough: Option<Fallthrough>,
}

impl CompiledMulticlusterGw {
    pub(crate) fn new(
        config: &MulticlusterGw,
        serial: u32,
    ) -> Result<CompiledMulticlusterGw, NameError> {
        let zones = config
            .zones
            .iter()
            .map(|z| synthesised_soa_ns(z, TTL, serial).map(|(soa, ns)| (z.clone(), soa, ns)))
            .collect::<Result<Vec<_>, _>>()?;
        let v4 = config.ips.iter().filter_map(|ip| match ip {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        });
        let v6 = config.ips.iter().filter_map(|ip| match ip {
            IpAddr::V6(a) => Some(*a),
            IpAddr::V4(_) => None,
        });
        Ok(CompiledMulticlusterGw {
            zones,
            v4: v4.collect(),
            v6: v6.collect(),
            fallthrough: config.fallthrough.clone(),
        })
    }

    /// The longest zone holding `name`.
    fn zone_of(&self, name: &Name) -> Option<&(Name, Record, Record)> {
        self.zones
            .iter()
            .filter(|(z, _, _)| name.is_at_or_below(z))
            .max_by_key(|(z, _, _)| z.label_count())
    }

    pub(crate) fn covers(&self, qname: &Name) -> bool {
        self.zone_of(qname).is_some()
    }

    /// The answer for a name in one of the zones; `None` outside them. Two labels below
    /// the zone name a service; one label (a namespace) is an empty non-terminal.
    pub(crate) fn lookup(&self, qname: &Name, qtype: Rtype) -> Option<Answer> {
        let (zone, soa, ns) = self.zone_of(qname)?;
        let depth = qname.label_count() - zone.label_count();
        let records: Vec<Record> = match (depth, qtype) {
            (0, Rtype::SOA) => vec![soa.with_owner(qname.clone())],
            (0, Rtype::NS) => vec![ns.with_owner(qname.clone())],
            (0 | 1, _) => Vec::new(),
            (2, _) => {
                let a = || self.v4.iter().map(|ip| Record::a(qname.clone(), TTL, *ip));
                let aaaa = || {
                    self.v6
                        .iter()
                        .map(|ip| Record::aaaa(qname.clone(), TTL, *ip))
                };
                match qtype {
                    Rtype::A => a().collect(),
                    Rtype::AAAA => aaaa().collect(),
                    Rtype::ANY => a().chain(aaaa()).collect(),
                    _ => Vec::new(),
                }
            }
            _ => return Some(Answer::negative(false, soa)),
        };
        Some(Answer::records_or_nodata(records, soa))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Rcode;

    fn gw(ips: &[&str]) -> CompiledMulticlusterGw {
        let config = MulticlusterGw {
            zones: vec![Name::parse("svc.clusterset.local.").expect("valid")],
            ips: ips.iter().map(|ip| ip.parse().expect("ip")).collect(),
            fallthrough: None,
            location: Default::default(),
        };
        CompiledMulticlusterGw::new(&config, 1).expect("fits")
    }

    fn ask(
        g: &CompiledMulticlusterGw,
        name: &str,
        qtype: Rtype,
    ) -> Option<(Rcode, Vec<String>, Vec<String>)> {
        let show = |rs: &[Record]| rs.iter().map(ToString::to_string).collect::<Vec<_>>();
        g.lookup(&Name::parse(name).expect("valid"), qtype)
            .map(|a| (a.rcode, show(&a.answer), show(&a.authority)))
    }

    const SOA: &str =
        "svc.clusterset.local. 5 IN SOA ns.dns.svc.clusterset.local. hostmaster.svc.clusterset.local. 1 7200 1800 86400 5";

    #[test]
    fn gateway_addresses_by_family_with_ttl_5() {
        let g = gw(&["10.1.0.1", "fd00::1", "10.1.0.2"]);
        let (rcode, answer, _) =
            ask(&g, "Web.Default.svc.clusterset.local.", Rtype::A).expect("ours");
        assert_eq!(rcode, Rcode::NOERROR);
        assert_eq!(
            answer,
            vec![
                "Web.Default.svc.clusterset.local. 5 IN A 10.1.0.1",
                "Web.Default.svc.clusterset.local. 5 IN A 10.1.0.2"
            ]
        );
        let (_, answer, _) =
            ask(&g, "web.default.svc.clusterset.local.", Rtype::AAAA).expect("ours");
        assert_eq!(
            answer,
            vec!["web.default.svc.clusterset.local. 5 IN AAAA fd00::1"]
        );
    }

    #[test]
    fn gateway_nodata_without_an_address_of_the_family() {
        let g = gw(&["10.1.0.1"]);
        let got = ask(&g, "web.default.svc.clusterset.local.", Rtype::AAAA);
        assert_eq!(got, Some((Rcode::NOERROR, vec![], vec![SOA.to_string()])));
        let got = ask(&g, "web.default.svc.clusterset.local.", Rtype::TXT);
        assert_eq!(got, Some((Rcode::NOERROR, vec![], vec![SOA.to_string()])));
    }

    #[test]
    fn gateway_other_shapes_are_negative_with_soa() {
        let g = gw(&["10.1.0.1"]);
        let deep = ask(
            &g,
            "_http._tcp.web.default.svc.clusterset.local.",
            Rtype::SRV,
        );
        assert_eq!(deep, Some((Rcode::NXDOMAIN, vec![], vec![SOA.to_string()])));
        let namespace = ask(&g, "default.svc.clusterset.local.", Rtype::A);
        assert_eq!(
            namespace,
            Some((Rcode::NOERROR, vec![], vec![SOA.to_string()]))
        );
        let apex = ask(&g, "svc.clusterset.local.", Rtype::A);
        assert_eq!(apex, Some((Rcode::NOERROR, vec![], vec![SOA.to_string()])));
        assert_eq!(
            ask(&g, "svc.clusterset.local.", Rtype::SOA).map(|a| a.1),
            Some(vec![SOA.to_string()])
        );
        assert_eq!(ask(&g, "clusterset.local.", Rtype::A), None);
    }
}
