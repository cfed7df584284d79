//! One rule for CNAMEs on a fan-out, for every type: the asked name is never a CNAME in the
//! merged answer (a name holds a CNAME or data, RFC 1034 §3.6.2, RFC 2181 §10.1). A chain
//! that ends in records of the asked type is flattened into them; one that ends elsewhere
//! gives NODATA with the SOA, never one cluster's CNAME. A prefixed host (one cluster) keeps
//! its renamed chain.

use domain::base::iana::Rtype;
use gatherdns_tests::message::{QuerySpec, Reply};
use gatherdns_tests::sim::Sim;

use crate::fixtures::{sim, sim_with};

const SOA: &str = "distributed.local. 5 SOA ns.dns.distributed.local. hostmaster.distributed.local. 1 7200 1800 86400 5";

/// Every cluster: `alias` → `demo-service` (A and TXT, no AAAA), an SRV name and an MX name
/// that are aliases too, and aliases that end outside the zone, nowhere, or in a loop.
const CHAINS: &str = "
_http._tcp.alias.default.svc IN CNAME _http._tcp.demo-service.default.svc
_http._tcp.demo-service.default.svc IN SRV 0 50 80 demo-service-0.default.svc
mx-alias.default.svc IN CNAME mail.default.svc
mail.default.svc IN MX 10 demo-service-1.default.svc
ext.svc IN CNAME www.example.com.
dangling.svc IN CNAME missing.default.svc
loop-1.svc IN CNAME loop-2.svc
loop-2.svc IN CNAME loop-1.svc
";

fn chains() -> Sim {
    sim_with(CHAINS, CHAINS)
}

fn ask(sim: &mut Sim, name: &str, qtype: Rtype) -> Reply {
    sim.ask(&QuerySpec::new(name, qtype).edns(1232, false))
}

/// No record at the asked name is a CNAME, and nothing says clusters disagree.
fn assert_no_cname_at(reply: &Reply, name: &str) {
    assert!(
        !reply
            .answer
            .iter()
            .any(|r| r.starts_with(&format!("{name} ")) && r.contains(" CNAME ")),
        "a CNAME at {name}: {reply:?}"
    );
    assert!(reply.ede.is_empty(), "{:?}", reply.ede);
}

fn assert_nodata(reply: &Reply, name: &str) {
    assert_no_cname_at(reply, name);
    assert_eq!(reply.rcode, "NOERROR", "{name}: {reply:?}");
    assert!(reply.answer.is_empty(), "{name}: {reply:?}");
    assert_eq!(reply.authority, [SOA], "{name}: NODATA carries the SOA");
}

#[test]
fn a_chain_ending_in_the_asked_type_is_flattened_for_a_txt_srv_and_mx() {
    let mut sim = chains();
    let alias = "alias.default.svc.distributed.local.";
    let reply = ask(&mut sim, alias, Rtype::A);
    assert_no_cname_at(&reply, alias);
    assert_eq!(
        reply.answer,
        [
            format!("{alias} 30 A 10.8.0.10"),
            format!("{alias} 30 A 10.9.0.10")
        ]
    );
    let reply = ask(&mut sim, alias, Rtype::TXT);
    assert_no_cname_at(&reply, alias);
    assert_eq!(
        reply.answer,
        [
            format!("{alias} 30 TXT \"cluster=a\""),
            format!("{alias} 30 TXT \"cluster=b\"")
        ]
    );
    let srv = "_http._tcp.alias.default.svc.distributed.local.";
    let reply = ask(&mut sim, srv, Rtype::SRV);
    assert_no_cname_at(&reply, srv);
    assert_eq!(
        reply.answer,
        [
            format!("{srv} 30 SRV 0 50 80 a-demo-service-0.default.svc.distributed.local."),
            format!("{srv} 30 SRV 0 50 80 b-demo-service-0.default.svc.distributed.local.")
        ]
    );
    assert_eq!(
        reply.additional,
        [
            "a-demo-service-0.default.svc.distributed.local. 30 A 10.8.1.2",
            "b-demo-service-0.default.svc.distributed.local. 30 A 10.9.1.2"
        ],
        "the targets' addresses stay"
    );
    let mx = "mx-alias.default.svc.distributed.local.";
    let reply = ask(&mut sim, mx, Rtype::MX);
    assert_no_cname_at(&reply, mx);
    assert_eq!(
        reply.answer,
        [
            format!("{mx} 30 MX 10 a-demo-service-1.default.svc.distributed.local."),
            format!("{mx} 30 MX 10 b-demo-service-1.default.svc.distributed.local.")
        ]
    );
}

#[test]
fn a_chain_ending_without_the_asked_type_is_nodata_for_every_other_type() {
    // The case: an A query was flattened while AAAA got cluster A's CNAME, so a
    // cache following it lost cluster B.
    let mut sim = chains();
    let alias = "alias.default.svc.distributed.local.";
    for qtype in [
        Rtype::AAAA,
        Rtype::CNAME,
        Rtype::SRV,
        Rtype::MX,
        Rtype::PTR,
        Rtype::NS,
        Rtype::CAA,
        Rtype::HTTPS,
        Rtype::from_int(65280),
    ] {
        let reply = ask(&mut sim, alias, qtype);
        assert_nodata(&reply, alias);
    }
    // ANY gets RFC 8482's answer, not the alias.
    let reply = ask(&mut sim, alias, Rtype::ANY);
    assert_eq!(
        reply.answer,
        [format!("{alias} 3600 HINFO \"RFC8482\" \"\"")]
    );
}

#[test]
fn unresolved_dangling_and_looping_chains_are_nodata() {
    let mut sim = chains();
    for name in [
        "ext.svc.distributed.local.",
        "dangling.svc.distributed.local.",
        "loop-1.svc.distributed.local.",
    ] {
        for qtype in [Rtype::A, Rtype::AAAA, Rtype::TXT, Rtype::CNAME] {
            let reply = ask(&mut sim, name, qtype);
            assert_nodata(&reply, name);
        }
    }
}

#[test]
fn clusters_that_disagree_on_a_cname_merge_without_one() {
    // Cluster A aliases the name to different targets than cluster B, which has data.
    let mut sim = sim_with(
        "ext.svc IN CNAME www.example.com.\nmixed.svc IN CNAME demo-service.default.svc",
        "ext.svc IN CNAME www.example.org.\nmixed.svc IN A 10.9.7.7\nmixed.svc IN AAAA fd00::7",
    );
    let ext = "ext.svc.distributed.local.";
    assert_nodata(&ask(&mut sim, ext, Rtype::A), ext);
    let mixed = "mixed.svc.distributed.local.";
    let reply = ask(&mut sim, mixed, Rtype::A);
    assert_no_cname_at(&reply, mixed);
    assert_eq!(
        reply.answer,
        [
            format!("{mixed} 30 A 10.8.0.10"),
            format!("{mixed} 30 A 10.9.7.7")
        ]
    );
    let reply = ask(&mut sim, mixed, Rtype::AAAA);
    assert_no_cname_at(&reply, mixed);
    assert_eq!(reply.answer, [format!("{mixed} 30 AAAA fd00::7")]);
    assert!(reply.authority.is_empty());
}

#[test]
fn prefixed_host_keeps_the_renamed_cname_chain() {
    let mut sim = sim();
    let reply = sim.ask(&QuerySpec::new(
        "a-alias.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert_eq!(
        reply.answer,
        vec![
            "a-alias.default.svc.distributed.local. 30 CNAME a-demo-service.default.svc.distributed.local.",
            "a-demo-service.default.svc.distributed.local. 30 A 10.8.0.10"
        ]
    );
}
