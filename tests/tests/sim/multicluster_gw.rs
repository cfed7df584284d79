//! `multicluster_gw`: `<svc>.<ns>.ZONE` answered with the gateway addresses, TTL 5, AA=1;
//! every other name and type NXDOMAIN or NODATA with an SOA — and always a reply, where the
//! original plugin sends none (NXDOMAIN) or panics (the apex).

use domain::base::iana::Rtype;
use gatherdns_tests::message::{QuerySpec, Reply};
use gatherdns_tests::sim::Sim;

const SOA: &str = "svc.clusterset.local. 5 SOA ns.dns.svc.clusterset.local. \
                   hostmaster.svc.clusterset.local. 1 7200 1800 86400 5";

fn gw_sim(ips: &str, extra: &str) -> Sim {
    let corefile = format!(
        "svc.clusterset.local.:53 {{\n  multicluster_gw {{\n    gateway_ip {ips}\n{extra}\n  }}\n}}\n"
    );
    Sim::new(&corefile, &[])
}

fn ask(sim: &mut Sim, name: &str, qtype: Rtype) -> Reply {
    sim.ask(&QuerySpec::new(name, qtype))
}

fn negative(reply: &Reply) -> (&str, usize, Vec<String>) {
    (
        reply.rcode.as_str(),
        reply.answer.len(),
        reply.authority.clone(),
    )
}

#[test]
fn a_and_aaaa_are_the_gateway_addresses_with_ttl_5() {
    let mut sim = gw_sim("10.1.0.1 fd00::1 10.1.0.2", "");
    let q = "Web.Default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::A);
    assert_eq!(reply.rcode, "NOERROR");
    assert!(reply.aa && !reply.ra, "AA=1; no forward, so RA=0");
    assert_eq!(
        reply.answer,
        vec![format!("{q} 5 A 10.1.0.1"), format!("{q} 5 A 10.1.0.2")]
    );
    assert!(reply.authority.is_empty());
    let reply = ask(&mut sim, q, Rtype::AAAA);
    assert_eq!(reply.answer, vec![format!("{q} 5 AAAA fd00::1")]);
}

#[test]
fn aaaa_without_an_ipv6_gateway_is_nodata() {
    let mut sim = gw_sim("10.1.0.1", "");
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::AAAA);
    assert_eq!(negative(&reply), ("NOERROR", 0, vec![SOA.to_string()]));
    assert!(reply.aa);
}

#[test]
fn other_types_and_shapes_are_negative_with_soa() {
    let mut sim = gw_sim("10.1.0.1", "");
    let nodata = ("NOERROR", 0, vec![SOA.to_string()]);
    let nxdomain = ("NXDOMAIN", 0, vec![SOA.to_string()]);
    for (q, qtype, want) in [
        ("web.default.svc.clusterset.local.", Rtype::TXT, &nodata),
        ("web.default.svc.clusterset.local.", Rtype::SRV, &nodata),
        ("default.svc.clusterset.local.", Rtype::A, &nodata),
        (
            "_http._tcp.web.default.svc.clusterset.local.",
            Rtype::SRV,
            &nxdomain,
        ),
        ("a.web.default.svc.clusterset.local.", Rtype::A, &nxdomain),
    ] {
        let reply = ask(&mut sim, q, qtype);
        assert_eq!(&negative(&reply), want, "{q} {qtype}");
        assert!(reply.aa, "{q}");
    }
}

#[test]
fn the_apex_gets_a_reply() {
    // The original slices the empty remainder and panics (SERVFAIL at best).
    let mut sim = gw_sim("10.1.0.1", "");
    let reply = ask(&mut sim, "svc.clusterset.local.", Rtype::A);
    assert_eq!(negative(&reply), ("NOERROR", 0, vec![SOA.to_string()]));
    let reply = ask(&mut sim, "svc.clusterset.local.", Rtype::SOA);
    assert_eq!(reply.answer, vec![SOA.to_string()]);
    let reply = ask(&mut sim, "svc.clusterset.local.", Rtype::NS);
    assert_eq!(
        reply.answer,
        vec!["svc.clusterset.local. 5 NS ns.dns.svc.clusterset.local."]
    );
}

#[test]
fn fallthrough_passes_nxdomain_to_forward() {
    let corefile = "svc.clusterset.local.:53 {
  multicluster_gw {
    gateway_ip 10.1.0.1
    fallthrough
  }
  forward . 10.7.0.1:53
}
";
    let zone = "$ORIGIN svc.clusterset.local.
@ 60 IN SOA ns hostmaster 7 7200 1800 86400 60
_http._tcp.web.default 60 IN SRV 0 0 80 web.default
";
    let mut sim = Sim::new(corefile, &[]);
    sim.upstream("10.7.0.1:53", "svc.clusterset.local.", zone);
    let reply = ask(
        &mut sim,
        "_http._tcp.web.default.svc.clusterset.local.",
        Rtype::SRV,
    );
    assert_eq!(
        reply.answer,
        vec!["_http._tcp.web.default.svc.clusterset.local. 60 SRV 0 0 80 web.default.svc.clusterset.local."]
    );
    // The gateway's own answers do not reach the forward.
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(
        reply.answer,
        vec!["web.default.svc.clusterset.local. 5 A 10.1.0.1"]
    );
    let up = &sim.upstreams[&"10.7.0.1:53".parse().expect("addr")];
    assert_eq!(up.received.len(), 1);
}
