//! The `file` directive on its own and as a cluster source inside a gathering block, and the
//! header rules that depend on the block (RA only when a `forward` is there).

use domain::base::iana::Rtype;
use gatherdns_tests::message::QuerySpec;
use gatherdns_tests::sim::Sim;

use crate::fixtures::zone;

#[test]
fn file_block_answers_authoritatively_without_ra() {
    let zone_a = zone("a", 8, "");
    let mut sim = Sim::new(
        "cluster-a.local.:53 {\n  file a.zone\n}\n",
        &[("a.zone", &zone_a)],
    );
    let reply = sim.ask(&QuerySpec::new(
        "demo-service-0.default.svc.cluster-a.local.",
        Rtype::A,
    ));
    assert_eq!(
        reply.answer,
        vec!["demo-service-0.default.svc.cluster-a.local. 30 A 10.8.1.2"]
    );
    assert!(reply.aa && !reply.ra);
    let reply = sim.ask(&QuerySpec::new("nope.cluster-a.local.", Rtype::A));
    assert_eq!(reply.rcode, "NXDOMAIN");
    assert_eq!(reply.authority.len(), 1);
    assert!(
        reply.authority[0].starts_with("cluster-a.local. 30 SOA "),
        "{:?}",
        reply.authority
    );
}

#[test]
fn gathering_from_zones_in_the_same_block_needs_no_network() {
    let corefile = "
distributed.local.:53 {
  gathersrv distributed.local. {
    cluster-a.local. a-
    cluster-b.local. b-
    negative_ttl 30
  }
  file a.zone cluster-a.local.
  file b.zone cluster-b.local.
}
";
    let (a, b) = (zone("a", 8, ""), zone("b", 9, ""));
    let mut sim = Sim::new(corefile, &[("a.zone", &a), ("b.zone", &b)]);
    let reply = sim.ask(&QuerySpec::new(
        "_demo._tcp.demo-service.default.svc.distributed.local.",
        Rtype::SRV,
    ));
    assert_eq!(reply.answer.len(), 4);
    assert!(reply.aa && !reply.ra, "no forward in the block: RA=0");
    let reply = sim.ask(&QuerySpec::new("missing.distributed.local.", Rtype::A));
    assert_eq!(reply.rcode, "NXDOMAIN");
    assert_eq!(
        reply.authority,
        vec!["distributed.local. 30 SOA ns.dns.distributed.local. hostmaster.distributed.local. 1 7200 1800 86400 30"]
    );
}

#[test]
fn plain_forward_relays_the_upstream_answer() {
    let corefile = "cluster-a.local.:53 {\n  forward . 10.8.0.1:53\n}\n";
    let mut sim = Sim::new(corefile, &[]);
    sim.upstream("10.8.0.1:53", "cluster-a.local.", &zone("a", 8, ""));
    let reply = sim.ask(
        &QuerySpec::new("Demo-Service-0.default.svc.cluster-a.local.", Rtype::A).edns(1232, false),
    );
    assert_eq!(
        reply.question,
        vec!["Demo-Service-0.default.svc.cluster-a.local A"]
    );
    assert_eq!(
        reply.answer,
        vec!["Demo-Service-0.default.svc.cluster-a.local. 30 A 10.8.1.2"]
    );
    assert!(reply.aa, "AA is the upstream's");
    assert_eq!(reply.edns, Some((1232, false)));
}
