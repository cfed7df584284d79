//! Classification, routing, sub-queries, renaming and merging (SPEC §1 and §3); CNAMEs are in
//! `cname.rs`.

use domain::base::iana::Rtype;
use gatherdns_core::wire::ClientQuery;
use gatherdns_core::Event;
use gatherdns_tests::message::QuerySpec;
use gatherdns_tests::sim::Behaviour;

use crate::fixtures::{sim, sim_with, UPSTREAM_A, UPSTREAM_B};

const SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";

#[test]
fn spec_example_merges_both_clusters_in_order() {
    let mut sim = sim();
    let reply = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV));
    assert_eq!(reply.rcode, "NOERROR");
    assert!(reply.qr && reply.aa && !reply.ra && reply.rd && !reply.ad && !reply.tc);
    assert_eq!(
        reply.question,
        vec![format!("{} SRV", SRV_NAME.trim_end_matches('.'))]
    );
    let owner = SRV_NAME;
    assert_eq!(
        reply.answer,
        vec![
            format!("{owner} 30 SRV 0 50 8080 a-demo-service-0.default.svc.distributed.local."),
            format!("{owner} 30 SRV 0 50 8080 a-demo-service-1.default.svc.distributed.local."),
            format!("{owner} 30 SRV 0 50 8080 b-demo-service-0.default.svc.distributed.local."),
            format!("{owner} 30 SRV 0 50 8080 b-demo-service-1.default.svc.distributed.local."),
        ]
    );
    assert_eq!(
        reply.additional,
        vec![
            "a-demo-service-0.default.svc.distributed.local. 30 A 10.8.1.2",
            "a-demo-service-1.default.svc.distributed.local. 30 A 10.8.1.2",
            "b-demo-service-0.default.svc.distributed.local. 30 A 10.9.1.2",
            "b-demo-service-1.default.svc.distributed.local. 30 A 10.9.1.2",
        ]
    );
    // Positive answers carry the clusters' NS renamed, never their SOA.
    assert!(
        reply.authority.iter().all(|r| !r.contains(" SOA ")),
        "{:?}",
        reply.authority
    );
}

#[test]
fn prefixed_host_is_asked_of_its_cluster_only() {
    let mut sim = sim();
    let reply = sim.ask(&QuerySpec::new(
        "a-demo-service-0.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert_eq!(
        reply.answer,
        vec!["a-demo-service-0.default.svc.distributed.local. 30 A 10.8.1.2"]
    );
    let asked_a = &sim.upstreams[&UPSTREAM_A.parse().unwrap()].received;
    assert_eq!(asked_a.len(), 1);
    let sub = ClientQuery::parse(asked_a[0].1.clone()).unwrap();
    assert_eq!(
        sub.qname.to_string(),
        "demo-service-0.default.svc.cluster-a.local."
    );
    assert!(sim.upstreams[&UPSTREAM_B.parse().unwrap()]
        .received
        .is_empty());
}

#[test]
fn prefixed_service_under_underscore_labels_routes_to_one_cluster() {
    let mut sim = sim();
    let reply = sim.ask(&QuerySpec::new(
        "_demo._tcp.b-demo-service.default.svc.distributed.local.",
        Rtype::SRV,
    ));
    assert_eq!(reply.answer.len(), 2, "{:?}", reply.answer);
    assert!(reply
        .answer
        .iter()
        .all(|r| r.starts_with("_demo._tcp.b-demo-service.default.svc.distributed.local. ")));
    assert!(reply.answer.iter().all(|r| r.contains("b-demo-service-")));
    assert!(sim.upstreams[&UPSTREAM_A.parse().unwrap()]
        .received
        .is_empty());
}

#[test]
fn unprefixed_address_query_answers_under_the_question_name() {
    // gathersrv returns these under a-/b- names that do not match the question.
    let mut sim = sim();
    let reply = sim.ask(&QuerySpec::new(
        "demo-service.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert_eq!(
        reply.answer,
        vec![
            "demo-service.default.svc.distributed.local. 30 A 10.8.0.10",
            "demo-service.default.svc.distributed.local. 30 A 10.9.0.10"
        ]
    );
}

#[test]
fn question_case_is_echoed_and_used_for_owners() {
    let mut sim = sim();
    let name = "_DeMo._TCP.Demo-Service.default.SVC.Distributed.LOCAL.";
    let reply = sim.ask(&QuerySpec::new(name, Rtype::SRV));
    assert_eq!(
        reply.question,
        vec![format!("{} SRV", name.trim_end_matches('.'))]
    );
    assert_eq!(reply.answer.len(), 4, "{reply:?}");
    assert!(
        reply.answer.iter().all(|r| r.starts_with(name)),
        "{:?}",
        reply.answer
    );
}

#[test]
fn label_aware_case_insensitive_classification() {
    let mut sim = sim();
    // Not below the domain (gathersrv would take it: its match is a string suffix).
    let reply = sim.ask(&QuerySpec::new("xdistributed.local.", Rtype::A));
    assert_eq!(reply.rcode, "REFUSED");
    let reply = sim.ask(&QuerySpec::new(
        "demo-service.default.svc.DISTRIBUTED.local.",
        Rtype::A,
    ));
    assert_eq!(reply.answer.len(), 2);
}

#[test]
fn txt_owners_are_renamed() {
    // gathersrv leaves TXT owners in the cluster zones.
    let mut sim = sim();
    let reply = sim.ask(&QuerySpec::new(
        "demo-service.default.svc.distributed.local.",
        Rtype::TXT,
    ));
    assert_eq!(
        reply.answer,
        vec![
            "demo-service.default.svc.distributed.local. 30 TXT \"cluster=a\"",
            "demo-service.default.svc.distributed.local. 30 TXT \"cluster=b\""
        ]
    );
}

#[test]
fn names_outside_the_cluster_suffix_are_left_alone_and_duplicates_merge() {
    let extra = "_ext._tcp.svc IN SRV 0 0 443 api.example.com.";
    let mut sim = sim_with(extra, extra);
    let reply = sim.ask(&QuerySpec::new(
        "_ext._tcp.svc.distributed.local.",
        Rtype::SRV,
    ));
    assert_eq!(
        reply.answer,
        vec!["_ext._tcp.svc.distributed.local. 30 SRV 0 0 443 api.example.com."]
    );
}

#[test]
fn rdata_names_of_every_kind_are_renamed() {
    let mut sim = sim_with(
        "mail.svc IN MX 10 mx-0.svc\nmx-0.svc IN A 10.8.3.1\nptr.svc IN PTR demo-service-0.default.svc",
        "",
    );
    let reply = sim.ask(&QuerySpec::new("mail.svc.distributed.local.", Rtype::MX));
    assert_eq!(
        reply.answer,
        vec!["mail.svc.distributed.local. 30 MX 10 a-mx-0.svc.distributed.local."]
    );
    let reply = sim.ask(&QuerySpec::new("ptr.svc.distributed.local.", Rtype::PTR));
    assert_eq!(
        reply.answer,
        vec!["ptr.svc.distributed.local. 30 PTR a-demo-service-0.default.svc.distributed.local."]
    );
    let mut sim = sim_with(
        "sub.svc IN NS ns-1.svc\nns-1.svc IN A 10.8.4.1\nold.svc IN DNAME new.svc",
        "",
    );
    let reply = sim.ask(&QuerySpec::new("sub.svc.distributed.local.", Rtype::NS));
    assert!(
        reply.authority.contains(
            &"sub.svc.distributed.local. 30 NS a-ns-1.svc.distributed.local.".to_string()
        ),
        "{reply:?}"
    );
    let reply = sim.ask(&QuerySpec::new("old.svc.distributed.local.", Rtype::DNAME));
    assert_eq!(
        reply.answer,
        vec!["old.svc.distributed.local. 30 DNAME a-new.svc.distributed.local."]
    );
}

#[test]
fn noerror_wins_over_nxdomain() {
    let mut sim = sim_with("", "only-b.svc IN A 10.9.9.9");
    let reply = sim.ask(&QuerySpec::new("only-b.svc.distributed.local.", Rtype::A));
    assert_eq!(reply.rcode, "NOERROR");
    assert_eq!(
        reply.answer,
        vec!["only-b.svc.distributed.local. 30 A 10.9.9.9"]
    );
}

#[test]
fn nxdomain_everywhere_carries_our_soa() {
    let mut sim = sim();
    let reply = sim.ask(&QuerySpec::new("missing.svc.distributed.local.", Rtype::A));
    assert_eq!(reply.rcode, "NXDOMAIN");
    assert!(reply.aa);
    assert_eq!(
        reply.authority,
        vec!["distributed.local. 5 SOA ns.dns.distributed.local. hostmaster.distributed.local. 1 7200 1800 86400 5"]
    );
}

#[test]
fn nodata_carries_our_soa() {
    let mut sim = sim();
    let reply = sim.ask(&QuerySpec::new(
        "demo-service.default.svc.distributed.local.",
        Rtype::AAAA,
    ));
    assert_eq!(reply.rcode, "NOERROR");
    assert!(reply.answer.is_empty());
    assert_eq!(reply.authority.len(), 1);
    assert!(reply.authority[0].starts_with("distributed.local. 5 SOA "));
}

#[test]
fn servfail_and_nxdomain_merge_to_nxdomain_and_all_servfail_to_servfail() {
    let servfail = |id_name: &str| {
        // A SERVFAIL reply for the name; the harness patches in the sub-query's ID.
        let mut q = QuerySpec::new(id_name, Rtype::A).rd(true).build().to_vec();
        q[2] |= 0x80;
        q[3] = (q[3] & 0xf0) | 2;
        q
    };
    let mut s = sim();
    s.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .behaviour = Behaviour::Raw {
        bytes: servfail("missing.svc.cluster-b.local."),
        keep_id: false,
    };
    let reply = s.ask(&QuerySpec::new("missing.svc.distributed.local.", Rtype::A));
    assert_eq!(reply.rcode, "NXDOMAIN");

    let mut s = sim();
    s.upstreams
        .get_mut(&UPSTREAM_A.parse().unwrap())
        .unwrap()
        .behaviour = Behaviour::Raw {
        bytes: servfail("missing.svc.cluster-a.local."),
        keep_id: false,
    };
    s.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .behaviour = Behaviour::Raw {
        bytes: servfail("missing.svc.cluster-b.local."),
        keep_id: false,
    };
    let reply = s.ask(&QuerySpec::new("missing.svc.distributed.local.", Rtype::A));
    assert_eq!(reply.rcode, "SERVFAIL");
    assert!(reply.answer.is_empty());
}

#[test]
fn apex_soa_ns_and_any_are_synthesised_without_asking_clusters() {
    let mut sim = sim();
    let soa = sim.ask(&QuerySpec::new("distributed.local.", Rtype::SOA));
    assert_eq!(soa.answer, vec!["distributed.local. 5 SOA ns.dns.distributed.local. hostmaster.distributed.local. 1 7200 1800 86400 5"]);
    let ns = sim.ask(&QuerySpec::new("Distributed.Local.", Rtype::NS));
    // Compression may point into the question, so the target takes its case.
    assert_eq!(
        ns.answer
            .iter()
            .map(|r| r.to_lowercase())
            .collect::<Vec<_>>(),
        vec!["distributed.local. 5 ns ns.dns.distributed.local."]
    );
    let any = sim.ask(&QuerySpec::new(
        "demo-service.default.svc.distributed.local.",
        Rtype::ANY,
    ));
    assert_eq!(
        any.answer,
        vec!["demo-service.default.svc.distributed.local. 3600 HINFO \"RFC8482\" \"\""]
    );
    assert!(sim.upstreams.values().all(|u| u.received.is_empty()));
}

#[test]
fn sub_queries_have_fresh_ids_copied_rd_cd_do_and_our_edns() {
    let mut sim = sim();
    let spec = QuerySpec::new(SRV_NAME, Rtype::SRV)
        .id(777)
        .rd(false)
        .cd(true)
        .edns(4096, true);
    sim.ask(&spec);
    let mut ids = Vec::new();
    for upstream in [UPSTREAM_A, UPSTREAM_B] {
        let (_, bytes) = &sim.upstreams[&upstream.parse().unwrap()].received[0];
        let sub = ClientQuery::parse(bytes.clone()).unwrap();
        assert_ne!(sub.id, 777);
        assert!(!sub.rd && sub.cd);
        let edns = sub.edns.expect("sub-queries carry our OPT");
        assert_eq!(
            (edns.udp_size, edns.dnssec_ok, edns.version),
            (1232, true, 0)
        );
        ids.push(sub.id);
    }
    assert_ne!(ids[0], ids[1]);
    let plain = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV));
    assert!(
        plain.edns.is_none(),
        "no OPT in the reply to a query without one"
    );
}

#[test]
fn reply_edns_is_ours_and_echoes_do() {
    let mut sim = sim();
    let reply = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(4096, true));
    assert_eq!(reply.edns, Some((1232, true)));
    assert_eq!(reply.opt_count, 1);
    let reply = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1400, false));
    assert_eq!(reply.edns, Some((1232, false)));
}

#[test]
fn log_events_follow_the_coredns_format() {
    let mut sim = sim();
    sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).id(4242));
    let line = sim
        .events
        .iter()
        .find_map(|e| match e {
            Event::QueryLogged(log) => Some(log.line()),
            _ => None,
        })
        .expect("log is on");
    assert!(
        line.contains(
            " - 4242 \"SRV IN _demo._tcp.demo-service.default.svc.distributed.local. udp "
        ),
        "{line}"
    );
    assert!(line.contains("\" NOERROR qr,aa,rd "), "{line}");
}
