//! gathersrv's answer options with dead and slow clusters: a cluster's stale part standing in
//! for it (`serve_stale`), `policy prefer` and `policy first_positive`, `srv_priority`.

use std::time::Duration;

use domain::base::iana::Rtype;
use gatherdns_core::Event;
use gatherdns_tests::message::{QuerySpec, Reply};
use gatherdns_tests::sim::{Behaviour, Sim};

use crate::fixtures::{zone, UPSTREAM_A, UPSTREAM_B};

const SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";

fn sim_with(options: &str, extra_a: &str, extra_b: &str) -> Sim {
    let corefile = format!(
        "distributed.local.:53 {{
  gathersrv distributed.local. {{
    cluster-a.local. a-
    cluster-b.local. b-
    {options}
  }}
  forward cluster-a.local. {UPSTREAM_A}
  forward cluster-b.local. {UPSTREAM_B}
}}"
    );
    let mut sim = Sim::new(&corefile, &[]);
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, extra_a));
    sim.upstream(UPSTREAM_B, "cluster-b.local.", &zone("b", 9, extra_b));
    sim
}

fn sim(options: &str) -> Sim {
    sim_with(options, "", "")
}

fn set(sim: &mut Sim, upstream: &str, behaviour: Behaviour) {
    sim.upstreams
        .get_mut(&upstream.parse().unwrap())
        .unwrap()
        .behaviour = behaviour;
}

fn delay(sim: &mut Sim, upstream: &str, ms: u64) {
    sim.upstreams
        .get_mut(&upstream.parse().unwrap())
        .unwrap()
        .delay = Duration::from_millis(ms);
}

fn srv() -> QuerySpec {
    QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false)
}

/// Sends one query, drives, and returns (milliseconds it took, reply).
fn timed(sim: &mut Sim, spec: &QuerySpec) -> (u128, Reply) {
    let sent = sim.now;
    let client = sim.send(spec);
    sim.drive_bounded(10_000);
    let reply = sim.only_reply(client);
    (reply.at.duration_since(sent).as_millis(), reply.parse())
}

fn owners_of(reply: &Reply) -> Vec<String> {
    reply
        .answer
        .iter()
        .map(|r| r.rsplit(' ').next().unwrap().to_string())
        .collect()
}

fn part_results(sim: &Sim, cluster: &str, result: &str) -> Option<f64> {
    sim.gw.metrics().value(
        "gatherdns_cluster_sub_queries_total",
        &["distributed.local.", cluster, result],
    )
}

#[test]
fn a_dead_clusters_stale_part_stands_in_for_it() {
    let mut sim = sim("serve_stale 10m");
    let whole = sim.ask(&srv());
    assert_eq!(whole.answer.len(), 4);
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    sim.advance(Duration::from_secs(60));
    let (ms, reply) = timed(&mut sim, &srv());
    assert_eq!(ms, 1000, "B's two attempts");
    assert_eq!(
        owners_of(&reply),
        owners_of(&whole),
        "B's records are back in place"
    );
    let b_records: Vec<&String> = reply
        .answer
        .iter()
        .chain(&reply.additional)
        .filter(|r| r.contains("b-demo"))
        .collect();
    assert_eq!(b_records.len(), 4);
    assert!(
        b_records.iter().all(|r| r.split(' ').nth(1) == Some("30")),
        "RFC 8767's 30 s: {b_records:?}"
    );
    assert_eq!(reply.ede.len(), 1, "{:?}", reply.ede);
    assert_eq!(reply.ede[0].0, 3, "Stale Answer, not 22");
    assert_eq!(
        reply.ede[0].1,
        "stale answer from cluster-b.local. (timed out)"
    );
    assert_eq!(part_results(&sim, "cluster-b.local.", "stale"), Some(1.0));
    // B is marked down now: skipped at once, and stood in for again.
    let (ms, reply) = timed(&mut sim, &srv());
    assert_eq!(ms, 2);
    assert_eq!(reply.answer.len(), 4);
    assert_eq!(
        reply.ede[0].1,
        "stale answer from cluster-b.local. (every upstream is down)"
    );
    assert_eq!(part_results(&sim, "cluster-b.local.", "stale"), Some(2.0));
    // Older than serve_stale's 10 minutes: a gap again, with EDE 22.
    sim.advance(Duration::from_secs(600));
    let (_, reply) = timed(&mut sim, &srv());
    assert_eq!(reply.answer.len(), 2);
    assert_eq!(reply.ede[0].0, 22);
}

#[test]
fn a_servfail_is_a_gap_but_nxdomain_and_nodata_are_answers() {
    let extra_b = "gone.default.svc IN A 10.9.5.5";
    let mut sim = sim_with("serve_stale 10m", "", extra_b);
    let gone = QuerySpec::new("gone.default.svc.distributed.local.", Rtype::A).edns(1232, false);
    assert_eq!(
        sim.ask(&gone).answer,
        vec!["gone.default.svc.distributed.local. 30 A 10.9.5.5"]
    );
    // B no longer has the name: its NXDOMAIN is its answer, nothing stale comes back.
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .zone = Some(
        gatherdns_core::zone::Zone::new(
            gatherdns_core::wire::Name::parse("cluster-b.local.").unwrap(),
            gatherdns_core::wire::parse_zonefile(
                &zone("b", 9, ""),
                &gatherdns_core::wire::Name::parse("cluster-b.local.").unwrap(),
            )
            .unwrap(),
        )
        .unwrap(),
    );
    let reply = sim.ask(&gone);
    assert_eq!(reply.rcode, "NXDOMAIN");
    assert!(reply.ede.is_empty() && reply.answer.is_empty(), "{reply:?}");
    // And since its last answer was empty, a later outage of B leaves a plain gap.
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    let reply = sim.ask(&gone);
    assert_eq!(reply.rcode, "NXDOMAIN");
    assert_eq!(reply.ede[0].0, 22);
}

#[test]
fn a_cluster_answering_servfail_is_stood_in_for() {
    let mut sim = sim("serve_stale 10m");
    sim.ask(&srv());
    // A real SERVFAIL for the very question B was asked.
    let question = QuerySpec::new(
        "_demo._tcp.demo-service.default.svc.cluster-b.local.",
        Rtype::SRV,
    )
    .edns(1232, false)
    .build()
    .to_vec();
    let mut servfail = question;
    servfail[2] |= 0x80;
    servfail[3] = (servfail[3] & 0xf0) | 2;
    set(
        &mut sim,
        UPSTREAM_B,
        Behaviour::Raw {
            bytes: servfail,
            keep_id: false,
        },
    );
    let (ms, reply) = timed(&mut sim, &srv());
    assert_eq!(ms, 2, "B answered at once");
    assert_eq!(reply.answer.len(), 4);
    assert_eq!(
        reply.ede,
        vec![(
            3,
            "stale answer from cluster-b.local. (answered SERVFAIL)".to_string()
        )]
    );
}

#[test]
fn stale_parts_are_bounded_least_recently_used_out() {
    // Only B has these names (A's NXDOMAIN keeps nothing), and two parts are kept at most.
    let names = "one.default.svc IN A 10.9.7.1\ntwo.default.svc IN A 10.9.7.2\nthree.default.svc IN A 10.9.7.3";
    let mut sim = sim_with("serve_stale 10m 2", "", names);
    let q = |n: &str| {
        QuerySpec::new(&format!("{n}.default.svc.distributed.local."), Rtype::A).edns(1232, false)
    };
    for name in ["one", "two", "three"] {
        assert_eq!(sim.ask(&q(name)).answer.len(), 1);
    }
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    let reply = sim.ask(&q("two"));
    assert_eq!(reply.answer.len(), 1, "two's part is kept");
    assert_eq!(reply.ede[0].0, 3);
    let reply = sim.ask(&q("one"));
    assert_eq!(
        reply.rcode, "NXDOMAIN",
        "one's went when three's came: {reply:?}"
    );
    assert_eq!(reply.ede[0].0, 22);
}

#[test]
fn prefer_answers_from_the_preferred_cluster_when_it_has_the_name() {
    let only_b = "onlyb.default.svc IN A 10.9.3.3";
    let mut sim = sim_with("policy prefer a-", "", only_b);
    delay(&mut sim, UPSTREAM_B, 50);
    let (ms, reply) = timed(&mut sim, &srv());
    assert_eq!(ms, 2, "not waiting for B once A answered positively");
    assert_eq!(reply.answer.len(), 2);
    assert!(
        reply.answer.iter().all(|r| r.contains("a-demo")),
        "{reply:?}"
    );
    assert!(reply.ede.is_empty());
    // A has no such name: the others' union, once B answered.
    let (ms, reply) = timed(
        &mut sim,
        &QuerySpec::new("onlyb.default.svc.distributed.local.", Rtype::A),
    );
    assert_eq!(ms, 52);
    assert_eq!(
        reply.answer,
        vec!["onlyb.default.svc.distributed.local. 30 A 10.9.3.3"]
    );
    // A slow preferred cluster is waited for.
    delay(&mut sim, UPSTREAM_B, 0);
    delay(&mut sim, UPSTREAM_A, 80);
    let (ms, reply) = timed(&mut sim, &srv());
    assert_eq!(ms, 82);
    assert!(reply.answer.iter().all(|r| r.contains("a-demo")));
    // A dead preferred cluster counts as not answering: B's records.
    delay(&mut sim, UPSTREAM_A, 0);
    set(&mut sim, UPSTREAM_A, Behaviour::Silent);
    let (ms, reply) = timed(&mut sim, &srv());
    assert_eq!(ms, 1000);
    assert!(
        reply.answer.iter().all(|r| r.contains("b-demo")),
        "{reply:?}"
    );
    assert_eq!(reply.ede[0].0, 22, "A's gap is still reported");
    // A prefixed host is its own cluster's, whatever the policy.
    let reply = sim.ask(&QuerySpec::new(
        "b-demo-service-0.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert_eq!(
        reply.answer,
        vec!["b-demo-service-0.default.svc.distributed.local. 30 A 10.9.1.2"]
    );
}

#[test]
fn first_positive_replies_with_the_first_cluster_that_has_the_name() {
    let mut sim = sim("policy first_positive");
    delay(&mut sim, UPSTREAM_A, 40);
    let (ms, reply) = timed(&mut sim, &srv());
    assert_eq!(ms, 2, "B answered first");
    assert!(
        reply.answer.iter().all(|r| r.contains("b-demo")),
        "{reply:?}"
    );
    assert!(reply.additional.iter().all(|r| r.contains("b-demo")));
    assert!(reply.ede.is_empty());
    // No cluster has it: NXDOMAIN once both said so.
    let (ms, reply) = timed(
        &mut sim,
        &QuerySpec::new("none.default.svc.distributed.local.", Rtype::A),
    );
    assert_eq!((ms, reply.rcode.as_str()), (42, "NXDOMAIN"));
    assert_eq!(reply.authority.len(), 1, "with the SOA");
}

#[test]
fn first_positive_breaks_ties_within_one_drain_by_configuration_order() {
    let mut sim = sim("policy first_positive");
    let client = sim.send(&srv());
    while sim.replies.iter().all(|r| r.client != client) {
        assert!(sim.step_together(), "both replies arrive in one batch");
    }
    let reply = sim.only_reply(client).parse();
    assert!(
        reply.answer.iter().all(|r| r.contains("a-demo")),
        "A is first in the file: {reply:?}"
    );
}

#[test]
fn parts_not_waited_for_still_count_for_upstream_health() {
    let mut sim = sim("policy first_positive");
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    for _ in 0..2 {
        // Answered at A's pace; each leaves one attempt to B behind (no retry: nobody
        // waits for it).
        let (ms, reply) = timed(&mut sim, &srv());
        assert_eq!(ms, 2);
        assert_eq!(reply.answer.len(), 2);
    }
    sim.advance(Duration::from_secs(2));
    let down: Vec<_> = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::UpstreamHealth { healthy: false, .. }))
        .collect();
    assert_eq!(
        down.len(),
        1,
        "B's two attempts timed out behind the replies: {down:?}"
    );
    assert_eq!(
        sim.gw.upstream_health()[1],
        (UPSTREAM_B.parse().unwrap(), false)
    );
    assert_eq!(sim.gw.queries_in_flight(), 0);
    assert_eq!(
        part_results(&sim, "cluster-b.local.", "timeout"),
        None,
        "not waited for, not counted"
    );
}

#[test]
fn first_positive_falls_back_on_a_stale_positive_part() {
    let mut sim = sim("policy first_positive\n    serve_stale 10m");
    delay(&mut sim, UPSTREAM_A, 40);
    sim.ask(&srv());
    sim.ask(&srv());
    // Both clusters had their say once (the first query waited for nobody but B).
    set(&mut sim, UPSTREAM_A, Behaviour::Silent);
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    let reply = sim.ask(&srv());
    assert_eq!(reply.rcode, "NOERROR");
    assert!(
        reply.answer.iter().all(|r| r.contains("b-demo")),
        "{reply:?}"
    );
    assert_eq!(reply.ede.iter().filter(|e| e.0 == 3).count(), 1);
    assert!(reply.ede.iter().any(|e| e.1.contains("cluster-b.local.")));
}

#[test]
fn srv_priority_by_cluster() {
    let mut sim = sim("srv_priority b- 10");
    let reply = sim.ask(&srv());
    let priorities: Vec<&str> = reply
        .answer
        .iter()
        .map(|r| r.split(' ').nth(3).unwrap())
        .collect();
    assert_eq!(priorities, vec!["0", "0", "10", "10"]);
    // A prefixed host's SRV records are its cluster's as they are.
    let reply = sim.ask(&QuerySpec::new(
        "_demo._tcp.b-demo-service.default.svc.distributed.local.",
        Rtype::SRV,
    ));
    assert!(
        reply
            .answer
            .iter()
            .all(|r| r.split(' ').nth(3) == Some("0"))
            || reply.answer.is_empty()
    );
}

#[test]
fn a_reload_keeps_the_stale_parts_of_the_same_domain() {
    let mut sim = sim("serve_stale 10m");
    sim.ask(&srv());
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    let corefile = format!(
        "distributed.local.:53 {{
  gathersrv distributed.local. {{
    cluster-a.local. a-
    cluster-b.local. b-
    serve_stale 5m
    timeout 3s
  }}
  forward cluster-a.local. {UPSTREAM_A}
  forward cluster-b.local. {UPSTREAM_B}
}}"
    );
    let now = sim.now;
    sim.gw
        .reconfigure(now, gatherdns_tests::sim::config(&corefile, &[]))
        .unwrap();
    let reply = sim.ask(&srv());
    assert_eq!(
        reply.answer.len(),
        4,
        "B's part survived the reload: {reply:?}"
    );
    assert_eq!(reply.ede[0].0, 3);
}
