//! Upstream resilience: dead clusters detected and skipped at once, probes bringing them
//! back, retries on another upstream, policies, `max_concurrent`, the in-flight cap, bufsize.

use std::time::Duration;

use domain::base::iana::Rtype;
use gatherdns_core::{ClientTransport, Event};
use gatherdns_tests::message::QuerySpec;
use gatherdns_tests::sim::{config, Behaviour, Sim};

use crate::fixtures::{sim, zone, COREFILE, UPSTREAM_A, UPSTREAM_B};

const SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";

fn srv() -> QuerySpec {
    QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false)
}

fn set(sim: &mut Sim, upstream: &str, behaviour: Behaviour) {
    sim.upstreams
        .get_mut(&upstream.parse().unwrap())
        .unwrap()
        .behaviour = behaviour;
}

/// Sends one query, drives, and returns (milliseconds it took, reply).
fn timed(sim: &mut Sim, spec: &QuerySpec) -> (u128, gatherdns_tests::message::Reply) {
    let sent = sim.now;
    let client = sim.send(spec);
    sim.drive_bounded(10_000);
    let reply = sim.only_reply(client);
    (reply.at.duration_since(sent).as_millis(), reply.parse())
}

fn health_events(sim: &Sim) -> Vec<(String, bool)> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            Event::UpstreamHealth { upstream, healthy } => Some((upstream.to_string(), *healthy)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_dead_cluster_costs_one_query_then_is_skipped_at_once() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    let (first_ms, first) = timed(&mut sim, &srv());
    assert_eq!(first_ms, 1000, "two attempts of 500 ms");
    assert_eq!(first.answer.len(), 2);
    assert_eq!(health_events(&sim), vec![(UPSTREAM_B.to_string(), false)]);
    for _ in 0..5 {
        let (ms, reply) = timed(&mut sim, &srv());
        assert_eq!(ms, 2, "only cluster A's round trip");
        assert_eq!(reply.answer.len(), 2);
        assert_eq!(reply.ede.len(), 1);
        assert_eq!(reply.ede[0].0, 22);
        assert!(
            reply.ede[0]
                .1
                .contains("cluster-b.local. (every upstream is down)"),
            "{:?}",
            reply.ede
        );
    }
    assert_eq!(
        sim.upstreams[&UPSTREAM_B.parse().unwrap()].received.len(),
        2,
        "no more sub-queries to B"
    );
    assert!(sim.gw.stats().skipped_down >= 5);
    assert_eq!(
        sim.gw.upstream_health()[1],
        (UPSTREAM_B.parse().unwrap(), false)
    );
}

#[test]
fn probes_bring_a_cluster_back_on_its_first_answer() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    timed(&mut sim, &srv());
    sim.advance(Duration::from_millis(1600));
    let probes_while_dead = sim.upstreams[&UPSTREAM_B.parse().unwrap()].probes;
    assert!(
        (3..=4).contains(&probes_while_dead),
        "a probe every 500 ms: {probes_while_dead}"
    );
    set(&mut sim, UPSTREAM_B, Behaviour::Answer);
    sim.advance(Duration::from_millis(600));
    assert_eq!(
        health_events(&sim).last(),
        Some(&(UPSTREAM_B.to_string(), true))
    );
    let (_, reply) = timed(&mut sim, &srv());
    assert_eq!(reply.answer.len(), 4);
    assert!(reply.ede.is_empty());
    let probes = sim.upstreams[&UPSTREAM_B.parse().unwrap()].probes;
    sim.advance(Duration::from_secs(5));
    assert_eq!(
        sim.upstreams[&UPSTREAM_B.parse().unwrap()].probes,
        probes,
        "no probes once healthy"
    );
}

/// A sibling executor's verdict: a gateway that never saw the upstream fail skips it at once,
/// probes it itself, and takes it back on the sibling's word that it answers again.
#[test]
fn a_siblings_verdict_is_taken_over_without_a_slow_query() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    let dead = UPSTREAM_B.parse().unwrap();
    let now = sim.now;
    sim.gw.handle_upstream_health(now, dead, false);
    let (ms, reply) = timed(&mut sim, &srv());
    assert_eq!(ms, 2, "no attempt to the upstream the sibling found dead");
    assert_eq!(reply.ede[0].0, 22);
    assert!(
        health_events(&sim).is_empty(),
        "the sibling logged it, not this gateway"
    );
    assert_eq!(sim.upstreams[&dead].received.len(), 0);
    sim.advance(Duration::from_millis(1100));
    assert!(
        sim.upstreams[&dead].probes >= 2,
        "it probes the upstream itself"
    );

    let now = sim.now;
    sim.gw.handle_upstream_health(now, dead, true);
    let (_, reply) = timed(&mut sim, &srv());
    assert_eq!(
        reply.answer.len(),
        2,
        "asked again (still silent, so A's two)"
    );
    assert_eq!(
        sim.upstreams[&dead].received.len(),
        2,
        "both attempts went to B"
    );
}

/// An upstream down on a sibling's word and back on this gateway's own probe: the sibling
/// logs both changes (it probes too), so this gateway logs neither.
#[test]
fn coming_back_after_a_siblings_verdict_is_the_siblings_news() {
    let mut sim = sim();
    let dead = UPSTREAM_B.parse().unwrap();
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    let now = sim.now;
    sim.gw.handle_upstream_health(now, dead, false);
    sim.advance(Duration::from_millis(600));
    set(&mut sim, UPSTREAM_B, Behaviour::Answer);
    sim.advance(Duration::from_millis(600));
    assert!(health_events(&sim).is_empty(), "{:?}", health_events(&sim));
    let (_, reply) = timed(&mut sim, &srv());
    assert_eq!(reply.answer.len(), 4, "back in the answer after its probe");
}

/// A verdict about an address no pool has, or that a pool cannot act on, changes nothing.
#[test]
fn verdicts_about_unknown_upstreams_change_nothing() {
    let mut sim = sim();
    let now = sim.now;
    sim.gw
        .handle_upstream_health(now, "127.9.9.9:53".parse().unwrap(), false);
    assert_eq!(sim.gw.poll_timeout(), None, "no probe scheduled");
    let (_, reply) = timed(&mut sim, &srv());
    assert_eq!(reply.answer.len(), 4);
}

#[test]
fn a_flapping_cluster_never_costs_more_than_the_deadline() {
    let mut sim = sim();
    for i in 0..12 {
        let behaviour = if i % 3 == 0 {
            Behaviour::Silent
        } else {
            Behaviour::Answer
        };
        set(&mut sim, UPSTREAM_B, behaviour);
        let (ms, reply) = timed(&mut sim, &srv());
        assert!(ms <= 1000, "query {i} took {ms} ms");
        assert!(
            reply.answer.len() == 2 || reply.answer.len() == 4,
            "{reply:?}"
        );
        sim.advance(Duration::from_millis(700));
    }
}

const TWO_UPSTREAMS: &str = "
distributed.local.:53 {
  gathersrv distributed.local. {
    cluster-a.local. a-
    cluster-b.local. b-
  }
  forward cluster-a.local. 10.8.0.1:53
  forward cluster-b.local. 10.9.0.1:53 10.9.0.2:53 {
    policy POLICY
  }
}
";

fn two_upstreams(policy: &str) -> Sim {
    let mut sim = Sim::new(&TWO_UPSTREAMS.replace("POLICY", policy), &[]);
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, ""));
    sim.upstream("10.9.0.1:53", "cluster-b.local.", &zone("b", 9, ""));
    sim.upstream("10.9.0.2:53", "cluster-b.local.", &zone("b", 9, ""));
    sim
}

#[test]
fn the_retry_goes_to_another_upstream_of_the_cluster() {
    let mut sim = two_upstreams("sequential");
    set(&mut sim, "10.9.0.1:53", Behaviour::Silent);
    let (ms, reply) = timed(&mut sim, &srv());
    assert_eq!(ms, 502);
    assert_eq!(reply.answer.len(), 4);
    assert!(reply.ede.is_empty());
    assert_eq!(
        sim.upstreams[&"10.9.0.2:53".parse().unwrap()]
            .received
            .len(),
        1
    );
}

#[test]
fn round_robin_spreads_and_sequential_sticks() {
    let mut sim = two_upstreams("round_robin");
    for _ in 0..4 {
        timed(&mut sim, &srv());
    }
    let counts = |sim: &Sim| {
        ["10.9.0.1:53", "10.9.0.2:53"].map(|a| sim.upstreams[&a.parse().unwrap()].received.len())
    };
    assert_eq!(counts(&sim), [2, 2]);
    let mut sim = two_upstreams("sequential");
    for _ in 0..4 {
        timed(&mut sim, &srv());
    }
    assert_eq!(counts(&sim), [4, 0]);
}

#[test]
fn max_concurrent_refuses_beyond_the_limit() {
    let corefile = COREFILE.replace(
        "forward cluster-b.local. 10.9.0.1:53",
        "forward cluster-b.local. 10.9.0.1:53 {\n    max_concurrent 1\n  }",
    );
    let mut sim = Sim::new(&corefile, &[]);
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, ""));
    sim.upstream(UPSTREAM_B, "cluster-b.local.", &zone("b", 9, ""))
        .delay = Duration::from_millis(50);
    let first = sim.send(&srv());
    let second = sim.send(&srv());
    sim.drive_bounded(1000);
    assert_eq!(sim.only_reply(first).parse().answer.len(), 4);
    let second = sim.only_reply(second).parse();
    assert_eq!(second.answer.len(), 2);
    assert!(
        second.ede[0].1.contains("max_concurrent"),
        "{:?}",
        second.ede
    );
    assert_eq!(sim.gw.stats().refused_max_concurrent, 1);
}

#[test]
fn queries_beyond_the_in_flight_cap_are_refused_at_once() {
    let mut c = config(COREFILE, &[]);
    c.max_inflight = 2;
    let mut sim = Sim::with_config(c);
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, ""));
    sim.upstream(UPSTREAM_B, "cluster-b.local.", &zone("b", 9, ""));
    let clients: Vec<_> = (0..3).map(|_| sim.send(&srv())).collect();
    let refused = sim.only_reply(clients[2]);
    assert_eq!(refused.at, sim.epoch, "refused without waiting");
    assert_eq!(refused.parse().rcode, "REFUSED");
    sim.drive_bounded(1000);
    assert_eq!(sim.only_reply(clients[0]).parse().answer.len(), 4);
    assert_eq!(sim.only_reply(clients[1]).parse().answer.len(), 4);
    assert_eq!(sim.gw.stats().refused_overload, 1);
    // Once the queries are answered there is room again.
    assert_eq!(sim.ask(&srv()).answer.len(), 4);
}

#[test]
fn every_cluster_down_is_servfail_at_once() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_A, Behaviour::Silent);
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    timed(&mut sim, &srv());
    let (ms, reply) = timed(&mut sim, &srv());
    assert_eq!(ms, 0);
    assert_eq!(reply.rcode, "SERVFAIL");
    assert_eq!(reply.ede[0].0, 23);
}

#[test]
fn bufsize_sets_our_edns_size_and_the_udp_cap() {
    let corefile = COREFILE.replace("  log\n", "  log\n  bufsize 600\n");
    let mut sim = Sim::new(&corefile, &[]);
    let big: String = (1..=60)
        .map(|i| format!("big.svc IN A 10.8.2.{i}\n"))
        .collect();
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, &big));
    sim.upstream(
        UPSTREAM_B,
        "cluster-b.local.",
        &zone("b", 9, &big.replace("10.8.", "10.9.")),
    );
    let reply = sim.ask(&QuerySpec::new("big.svc.distributed.local.", Rtype::A).edns(4096, false));
    assert_eq!(reply.edns, Some((600, false)));
    assert!(reply.size <= 600 && reply.tc, "{}", reply.size);
    let sub = &sim.upstreams[&UPSTREAM_A.parse().unwrap()].received[0].1;
    let sub = gatherdns_core::wire::ClientQuery::parse(sub.clone()).unwrap();
    assert_eq!(sub.edns.unwrap().udp_size, 600);
}

#[test]
fn tcp_clients_get_their_own_deadline_too() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    let client = sim.client(ClientTransport::Tcp(7));
    sim.send_from(client, srv().build());
    sim.drive_bounded(1000);
    assert_eq!(sim.only_reply(client).parse().answer.len(), 2);
}
