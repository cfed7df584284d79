//! `multicluster`: the MCS DNS specification for clusterset.local. gathered from two clusters'
//! DNS (the zones of examples/multicluster): unions, per-endpoint names, the forbidden
//! cluster-level names, dns-version, SOAs, `noendpoints` and `fallthrough`.

use domain::base::iana::Rtype;
use gatherdns_tests::message::{QuerySpec, Reply};
use gatherdns_tests::sim::{Behaviour, Sim};

pub(crate) const ZONE_A: &str = include_str!("../../../examples/multicluster/cluster-a.local.zone");
pub(crate) const ZONE_B: &str = include_str!("../../../examples/multicluster/cluster-b.local.zone");

/// The negative-answer SOA of coredns/multicluster's shape.
pub(crate) const SOA: &str =
    "clusterset.local. 5 SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 1 7200 1800 86400 5";

fn corefile(options: &str, extra: &str) -> String {
    format!(
        "clusterset.local.:53 {{
  multicluster clusterset.local. {{
    cluster-a.local. cluster-a
    cluster-b.local. cluster-b
{options}
  }}
  forward cluster-a.local. 10.8.0.1:53
  forward cluster-b.local. 10.9.0.1:53
{extra}
}}
"
    )
}

pub(crate) fn mcs_sim(options: &str, extra: &str, files: &[(&str, &str)]) -> Sim {
    let mut sim = Sim::new(&corefile(options, extra), files);
    sim.upstream("10.8.0.1:53", "cluster-a.local.", ZONE_A);
    sim.upstream("10.9.0.1:53", "cluster-b.local.", ZONE_B);
    sim
}

fn ask(sim: &mut Sim, name: &str, qtype: Rtype) -> Reply {
    sim.ask(&QuerySpec::new(name, qtype).edns(1232, false))
}

/// Queries each cluster's upstream has received so far.
fn asked(sim: &Sim) -> (usize, usize) {
    let count = |addr: &str| sim.upstreams[&addr.parse().expect("addr")].received.len();
    (count("10.8.0.1:53"), count("10.9.0.1:53"))
}

#[test]
fn headless_service_addresses_are_the_union_under_the_question_name() {
    let mut sim = mcs_sim("", "", &[]);
    let q = "DB.default.svc.ClusterSet.local.";
    let reply = ask(&mut sim, q, Rtype::A);
    assert_eq!(reply.rcode, "NOERROR");
    assert!(
        reply.aa && !reply.ra,
        "authoritative; no recursion for the client"
    );
    assert_eq!(
        reply.question,
        vec![format!("{} A", q.trim_end_matches('.'))]
    );
    let a = |ip: &str| format!("{q} 30 A {ip}");
    assert_eq!(
        reply.answer,
        vec![a("10.8.1.1"), a("10.8.1.2"), a("10.9.1.1"), a("10.9.1.2")]
    );
}

#[test]
fn clusterip_service_addresses_are_the_union() {
    let mut sim = mcs_sim("", "", &[]);
    let q = "web.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::A);
    assert_eq!(
        reply.answer,
        vec![format!("{q} 30 A 10.8.0.10"), format!("{q} 30 A 10.9.0.10")]
    );
    // A service in one cluster only: the other cluster's NXDOMAIN does not hide it.
    let q = "cache.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::A);
    assert_eq!(
        (reply.rcode.as_str(), reply.answer.clone()),
        ("NOERROR", vec![format!("{q} 30 A 10.9.0.20")])
    );
}

#[test]
fn headless_srv_targets_are_per_endpoint_names_with_the_cluster_id() {
    let mut sim = mcs_sim("", "", &[]);
    for q in [
        "_postgres._tcp.db.default.svc.clusterset.local.",
        "db.default.svc.clusterset.local.",
    ] {
        let reply = ask(&mut sim, q, Rtype::SRV);
        let srv =
            |host: &str| format!("{q} 30 SRV 0 50 5432 {host}.db.default.svc.clusterset.local.");
        assert_eq!(
            reply.answer,
            vec![
                srv("db-0.cluster-a"),
                srv("db-1.cluster-a"),
                srv("db-0.cluster-b"),
                srv("db-1.cluster-b")
            ],
            "{q}"
        );
        let a = |host: &str, ip: &str| format!("{host}.db.default.svc.clusterset.local. 30 A {ip}");
        assert_eq!(
            reply.additional,
            vec![
                a("db-0.cluster-a", "10.8.1.1"),
                a("db-1.cluster-a", "10.8.1.2"),
                a("db-0.cluster-b", "10.9.1.1"),
                a("db-1.cluster-b", "10.9.1.2")
            ],
            "{q}"
        );
    }
}

#[test]
fn clusterip_srv_target_stays_the_service_name() {
    let mut sim = mcs_sim("", "", &[]);
    let q = "_http._tcp.web.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::SRV);
    // Both clusters give the same SRV once renamed: it is kept once.
    assert_eq!(
        reply.answer,
        vec![format!(
            "{q} 30 SRV 0 100 80 web.default.svc.clusterset.local."
        )]
    );
    assert_eq!(
        reply.additional,
        vec![
            "web.default.svc.clusterset.local. 30 A 10.8.0.10",
            "web.default.svc.clusterset.local. 30 A 10.9.0.10"
        ]
    );
    // The plain service name: the target equals the question and keeps its spelling.
    let q = "Web.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::SRV);
    assert_eq!(reply.answer, vec![format!("{q} 30 SRV 0 100 80 {q}")]);
}

#[test]
fn endpoint_name_is_asked_of_its_cluster_only() {
    let mut sim = mcs_sim("", "", &[]);
    let q = "db-0.Cluster-B.db.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::A);
    assert_eq!(reply.answer, vec![format!("{q} 30 A 10.9.1.1")]);
    assert_eq!(asked(&sim), (0, 1));
    let (_, query) = &sim.upstreams[&"10.9.0.1:53".parse().expect("addr")].received[0];
    let sub = gatherdns_core::wire::ClientQuery::parse(query.clone()).expect("valid");
    assert_eq!(
        sub.qname.to_string(),
        "db-0.db.default.svc.cluster-b.local."
    );
    let reply = ask(
        &mut sim,
        "db-7.cluster-b.db.default.svc.clusterset.local.",
        Rtype::A,
    );
    assert_eq!(
        (reply.rcode.as_str(), reply.authority.clone()),
        ("NXDOMAIN", vec![SOA.to_string()])
    );
}

#[test]
fn cluster_level_and_unknown_names_are_nxdomain_without_asking() {
    let mut sim = mcs_sim("", "", &[]);
    for q in [
        "cluster-a.db.default.svc.clusterset.local.",
        "db-0.cluster-z.db.default.svc.clusterset.local.",
        "a.b.db-0.cluster-a.db.default.svc.clusterset.local.",
        "x.default.pod.clusterset.local.",
        "nothing.clusterset.local.",
    ] {
        let reply = ask(&mut sim, q, Rtype::A);
        assert_eq!(reply.rcode, "NXDOMAIN", "{q}");
        assert!(reply.aa, "{q}");
        assert_eq!(reply.authority, vec![SOA.to_string()], "{q}");
    }
    assert_eq!(asked(&sim), (0, 0));
}

#[test]
fn names_no_cluster_has_are_nxdomain_with_our_soa() {
    let mut sim = mcs_sim("", "", &[]);
    let reply = ask(&mut sim, "nope.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(
        (reply.rcode.as_str(), reply.authority.clone()),
        ("NXDOMAIN", vec![SOA.to_string()])
    );
    assert_eq!(asked(&sim), (1, 1));
    // A namespace exists in the clusters (an empty non-terminal): NODATA, with the SOA.
    let reply = ask(&mut sim, "default.svc.clusterset.local.", Rtype::A);
    assert_eq!(
        (
            reply.rcode.as_str(),
            reply.answer.len(),
            reply.authority.clone()
        ),
        ("NOERROR", 0, vec![SOA.to_string()])
    );
    // A name that exists with no records of the type: NODATA.
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::AAAA);
    assert_eq!(
        (
            reply.rcode.as_str(),
            reply.answer.len(),
            reply.authority.clone()
        ),
        ("NOERROR", 0, vec![SOA.to_string()])
    );
}

#[test]
fn dns_version_and_the_apex_are_answered_locally() {
    let mut sim = mcs_sim("", "", &[]);
    let reply = ask(&mut sim, "dns-version.clusterset.local.", Rtype::TXT);
    assert_eq!(
        reply.answer,
        vec!["dns-version.clusterset.local. 28800 TXT \"1.1.0\""]
    );
    let reply = ask(&mut sim, "clusterset.local.", Rtype::SOA);
    assert_eq!(reply.answer, vec![SOA.to_string()]);
    let reply = ask(&mut sim, "clusterset.local.", Rtype::NS);
    assert_eq!(
        reply.answer,
        vec!["clusterset.local. 5 NS ns.dns.clusterset.local."]
    );
    for (q, qtype) in [
        ("clusterset.local.", Rtype::A),
        ("svc.clusterset.local.", Rtype::A),
        ("dns-version.clusterset.local.", Rtype::A),
    ] {
        let reply = ask(&mut sim, q, qtype);
        assert_eq!(
            (
                reply.rcode.as_str(),
                reply.answer.len(),
                reply.authority.clone()
            ),
            ("NOERROR", 0, vec![SOA.to_string()]),
            "{q}"
        );
    }
    assert_eq!(asked(&sim), (0, 0));
}

#[test]
fn a_silent_cluster_costs_a_partial_answer_with_an_ede() {
    let mut sim = Sim::new(&corefile("", ""), &[]);
    sim.upstream("10.8.0.1:53", "cluster-a.local.", ZONE_A);
    sim.bare_upstream("10.9.0.1:53", Behaviour::Silent);
    let q = "db.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::A);
    assert_eq!(
        reply.answer,
        vec![format!("{q} 30 A 10.8.1.1"), format!("{q} 30 A 10.8.1.2")]
    );
    assert_eq!(reply.ede.len(), 1, "{:?}", reply.ede);
    assert!(
        reply.ede[0].1.contains("cluster-b.local."),
        "{:?}",
        reply.ede
    );
}

#[test]
fn clusters_may_be_file_zones_in_the_block() {
    let corefile = "clusterset.local.:53 {
  multicluster {
    cluster-a.local. cluster-a
    cluster-b.local. cluster-b
  }
  file a.zone cluster-a.local.
  file b.zone cluster-b.local.
}
";
    let mut sim = Sim::new(corefile, &[("a.zone", ZONE_A), ("b.zone", ZONE_B)]);
    let reply = ask(
        &mut sim,
        "_postgres._tcp.db.default.svc.clusterset.local.",
        Rtype::SRV,
    );
    assert_eq!(reply.answer.len(), 4);
    assert!(reply.aa && !reply.ra);
}

#[test]
fn noendpoints_hides_endpoints_but_not_services() {
    let mut sim = mcs_sim("    noendpoints", "", &[]);
    let reply = ask(
        &mut sim,
        "db-0.cluster-a.db.default.svc.clusterset.local.",
        Rtype::A,
    );
    assert_eq!(
        (reply.rcode.as_str(), reply.authority.clone()),
        ("NXDOMAIN", vec![SOA.to_string()])
    );
    assert_eq!(asked(&sim), (0, 0));
    let reply = ask(
        &mut sim,
        "_postgres._tcp.db.default.svc.clusterset.local.",
        Rtype::SRV,
    );
    assert_eq!(
        (
            reply.rcode.as_str(),
            reply.answer.len(),
            reply.additional.len()
        ),
        ("NXDOMAIN", 0, 0)
    );
    let q = "_http._tcp.web.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::SRV);
    assert_eq!(
        reply.answer,
        vec![format!(
            "{q} 30 SRV 0 100 80 web.default.svc.clusterset.local."
        )]
    );
}

const LEGACY: &str = "$ORIGIN clusterset.local.
@ 60 IN SOA ns hostmaster 7 7200 1800 86400 60
legacy.default.svc 60 IN A 10.7.7.7
";

#[test]
fn fallthrough_hands_nxdomain_to_the_next_plugin() {
    let files = [("legacy.zone", LEGACY)];
    let mut sim = mcs_sim("    fallthrough", "  file legacy.zone", &files);
    // Gathered NXDOMAIN from both clusters, then the file zone answers.
    let reply = ask(&mut sim, "legacy.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(
        reply.answer,
        vec!["legacy.default.svc.clusterset.local. 60 A 10.7.7.7"]
    );
    assert_eq!(asked(&sim), (1, 1));
    // A local NXDOMAIN (outside the grammar) falls through too: the file's own NXDOMAIN.
    let reply = ask(&mut sim, "other.clusterset.local.", Rtype::A);
    assert_eq!(reply.rcode, "NXDOMAIN");
    assert!(
        reply.authority[0].starts_with("clusterset.local. 60 SOA ns.clusterset.local."),
        "{:?}",
        reply.authority
    );
    // NODATA never falls through; positive answers neither.
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::AAAA);
    assert_eq!(reply.authority, vec![SOA.to_string()]);
}

#[test]
fn fallthrough_only_for_its_zones_and_not_without_it() {
    let files = [("legacy.zone", LEGACY)];
    for options in ["    fallthrough example.org.", ""] {
        let mut sim = mcs_sim(options, "  file legacy.zone", &files);
        let reply = ask(&mut sim, "legacy.default.svc.clusterset.local.", Rtype::A);
        assert_eq!(
            (reply.rcode.as_str(), reply.authority.clone()),
            ("NXDOMAIN", vec![SOA.to_string()]),
            "{options}"
        );
    }
}

#[test]
fn fallthrough_with_nothing_after_keeps_the_answer() {
    let mut sim = mcs_sim("    fallthrough", "", &[]);
    let reply = ask(&mut sim, "legacy.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(
        (reply.rcode.as_str(), reply.authority.clone()),
        ("NXDOMAIN", vec![SOA.to_string()])
    );
}
