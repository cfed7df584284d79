//! The name server the synthesised NS record names, `ns.dns.DOMAIN`, lies inside the domain,
//! so the domain answers its addresses itself (RFC 1034 §4.2.1, RFC 2181 §5.4.1): `ns_ip`
//! when given, else the block's specific `bind` addresses; NODATA when neither says where the
//! server is. The clusters are never asked about these names.

use domain::base::iana::Rtype;
use gatherdns_tests::message::{QuerySpec, Reply};
use gatherdns_tests::sim::Sim;

use crate::fixtures::{zone, UPSTREAM_A, UPSTREAM_B};
use crate::multicluster::mcs_sim;

const SOA: &str = "distributed.local. 5 SOA ns.dns.distributed.local. hostmaster.distributed.local. 1 7200 1800 86400 5";

/// The SPEC §1 setup with `options` in gathersrv's block and `extra` directives.
fn sim(options: &str, extra: &str) -> Sim {
    let corefile = format!(
        "distributed.local.:53 {{
  gathersrv distributed.local. {{
    cluster-a.local. a-
    cluster-b.local. b-
{options}
  }}
  forward cluster-a.local. 10.8.0.1:53
  forward cluster-b.local. 10.9.0.1:53
{extra}
}}
"
    );
    let mut sim = Sim::new(&corefile, &[]);
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, ""));
    sim.upstream(UPSTREAM_B, "cluster-b.local.", &zone("b", 9, ""));
    sim
}

fn ask(sim: &mut Sim, name: &str, qtype: Rtype) -> Reply {
    sim.ask(&QuerySpec::new(name, qtype).edns(1232, false))
}

fn nothing_asked(sim: &Sim) -> bool {
    sim.upstreams.values().all(|u| u.received.is_empty())
}

#[test]
fn ns_ip_gives_the_addresses_of_ns_dns_domain() {
    let mut sim = sim("    ns_ip 192.0.2.53 2001:db8::53", "");
    let reply = ask(&mut sim, "NS.dns.distributed.local.", Rtype::A);
    assert_eq!(reply.rcode, "NOERROR");
    assert!(reply.aa && !reply.ra);
    assert_eq!(reply.answer, ["NS.dns.distributed.local. 5 A 192.0.2.53"]);
    let reply = ask(&mut sim, "ns.dns.distributed.local.", Rtype::AAAA);
    assert_eq!(
        reply.answer,
        ["ns.dns.distributed.local. 5 AAAA 2001:db8::53"]
    );
    for qtype in [Rtype::TXT, Rtype::MX, Rtype::CNAME] {
        let reply = ask(&mut sim, "ns.dns.distributed.local.", qtype);
        assert_eq!(
            (reply.rcode.as_str(), reply.answer.len()),
            ("NOERROR", 0),
            "{qtype}"
        );
        assert_eq!(reply.authority, [SOA], "NODATA with the SOA for {qtype}");
    }
    // `dns.DOMAIN` is the empty non-terminal above it: NODATA, not NXDOMAIN (RFC 8020).
    let reply = ask(&mut sim, "dns.distributed.local.", Rtype::A);
    assert_eq!((reply.rcode.as_str(), reply.answer.len()), ("NOERROR", 0));
    assert_eq!(reply.authority, [SOA]);
    assert!(nothing_asked(&sim), "the clusters are not asked");
}

#[test]
fn apex_ns_answer_carries_the_name_server_addresses() {
    let mut sim = sim("    ns_ip 192.0.2.53 2001:db8::53", "");
    let reply = ask(&mut sim, "distributed.local.", Rtype::NS);
    assert_eq!(
        reply
            .answer
            .iter()
            .map(|r| r.to_lowercase())
            .collect::<Vec<_>>(),
        ["distributed.local. 5 ns ns.dns.distributed.local."]
    );
    assert_eq!(
        reply
            .additional
            .iter()
            .map(|r| r.to_lowercase())
            .collect::<Vec<_>>(),
        [
            "ns.dns.distributed.local. 5 a 192.0.2.53",
            "ns.dns.distributed.local. 5 aaaa 2001:db8::53"
        ]
    );
}

#[test]
fn without_ns_ip_the_specific_bind_addresses_are_used() {
    let mut sim = sim("", "  bind 127.0.0.10 ::");
    let reply = ask(&mut sim, "ns.dns.distributed.local.", Rtype::A);
    assert_eq!(reply.answer, ["ns.dns.distributed.local. 5 A 127.0.0.10"]);
    let reply = ask(&mut sim, "ns.dns.distributed.local.", Rtype::AAAA);
    assert!(
        reply.answer.is_empty() && reply.rcode == "NOERROR",
        ":: says nothing about where the server is: {reply:?}"
    );
    // ns_ip wins over bind.
    let mut sim = sim_with_both();
    let reply = ask(&mut sim, "ns.dns.distributed.local.", Rtype::A);
    assert_eq!(reply.answer, ["ns.dns.distributed.local. 5 A 192.0.2.53"]);
}

fn sim_with_both() -> Sim {
    sim("    ns_ip 192.0.2.53", "  bind 127.0.0.10")
}

#[test]
fn without_any_address_the_name_still_exists() {
    let mut sim = sim("", "");
    let reply = ask(&mut sim, "ns.dns.distributed.local.", Rtype::A);
    assert_eq!((reply.rcode.as_str(), reply.answer.len()), ("NOERROR", 0));
    assert_eq!(reply.authority, [SOA]);
    assert!(nothing_asked(&sim));
}

#[test]
fn multicluster_zones_answer_their_name_server_too() {
    let mut sim = mcs_sim("    ns_ip 192.0.2.54", "", &[]);
    let reply = ask(&mut sim, "ns.dns.clusterset.local.", Rtype::A);
    assert_eq!(reply.answer, ["ns.dns.clusterset.local. 5 A 192.0.2.54"]);
    let reply = ask(&mut sim, "clusterset.local.", Rtype::NS);
    assert_eq!(
        reply.additional,
        ["ns.dns.clusterset.local. 5 A 192.0.2.54"]
    );
}
