//! Deadlines, retries, failures and hostile upstreams: always exactly one reply, in time.

use domain::base::iana::Rtype;
use gatherdns_tests::message::QuerySpec;
use gatherdns_tests::sim::{Behaviour, Transport};

use crate::fixtures::{sim, UPSTREAM_A, UPSTREAM_B};

const SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";

fn set(sim: &mut gatherdns_tests::sim::Sim, upstream: &str, behaviour: Behaviour) {
    sim.upstreams
        .get_mut(&upstream.parse().unwrap())
        .unwrap()
        .behaviour = behaviour;
}

#[test]
fn silent_cluster_gives_a_partial_answer_with_ede_22_after_two_attempts() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    let client = sim.send(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    sim.drive_bounded(1000);
    let reply = sim.only_reply(client);
    // Two attempts of 500 ms each, well inside the 2 s overall deadline.
    assert_eq!(sim.elapsed_ms(reply.at), 1000);
    let reply = reply.parse();
    assert_eq!(reply.rcode, "NOERROR");
    assert_eq!(reply.answer.len(), 2);
    assert!(reply.answer.iter().all(|r| r.contains(" a-demo-service-")));
    assert_eq!(
        reply.ede,
        vec![(
            22,
            "no answer from cluster-b.local. (timed out)".to_string()
        )]
    );
    assert_eq!(
        sim.upstreams[&UPSTREAM_B.parse().unwrap()].received.len(),
        2
    );
    assert_eq!(sim.gw.stats().upstream_timeouts, 2);
    assert_eq!(sim.gw.queries_in_flight(), 0);
}

#[test]
fn overall_timeout_caps_slow_clusters() {
    let corefile = crate::fixtures::COREFILE.replace(
        "cluster-b.local. b-\n",
        "cluster-b.local. b-\n    timeout 300ms\n    cluster_timeout 200ms\n",
    );
    let mut sim = gatherdns_tests::sim::Sim::new(&corefile, &[]);
    sim.upstream(
        UPSTREAM_A,
        "cluster-a.local.",
        &crate::fixtures::zone("a", 8, ""),
    );
    sim.upstream(
        UPSTREAM_B,
        "cluster-b.local.",
        &crate::fixtures::zone("b", 9, ""),
    )
    .delay = std::time::Duration::from_millis(150);
    set(&mut sim, UPSTREAM_A, Behaviour::Silent);
    let client = sim.send(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    sim.drive_bounded(1000);
    let reply = sim.only_reply(client);
    assert!(sim.elapsed_ms(reply.at) <= 300);
    let reply = reply.parse();
    assert_eq!(
        reply.answer.len(),
        2,
        "cluster b answered within the deadline: {reply:?}"
    );
    assert_eq!(reply.ede[0].0, 22);
}

#[test]
fn every_cluster_dead_gives_servfail_with_ede_23() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_A, Behaviour::Silent);
    set(&mut sim, UPSTREAM_B, Behaviour::Silent);
    let client = sim.send(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    sim.drive_bounded(1000);
    let reply = sim.only_reply(client);
    assert!(sim.elapsed_ms(reply.at) <= 2000);
    let reply = reply.parse();
    assert_eq!(reply.rcode, "SERVFAIL");
    assert_eq!(reply.ede.len(), 1);
    assert_eq!(reply.ede[0].0, 23);
    assert!(
        reply.ede[0].1.contains("cluster-a.local.") && reply.ede[0].1.contains("cluster-b.local.")
    );
}

#[test]
fn unreachable_cluster_is_retried_once_then_reported_as_network_error() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_B, Behaviour::Unreachable);
    let reply = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    assert_eq!(reply.answer.len(), 2);
    assert_eq!(reply.ede.len(), 1);
    assert_eq!(reply.ede[0].0, 23);
    assert!(
        reply.ede[0].1.contains("10.9.0.1:53 unreachable"),
        "{:?}",
        reply.ede
    );
    assert_eq!(sim.gw.stats().upstream_failures, 2);
}

#[test]
fn spoofed_replies_are_dropped_and_the_genuine_one_is_used() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_A, Behaviour::Spoofed);
    let reply = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV));
    assert_eq!(reply.answer.len(), 4);
    let stats = sim.gw.stats();
    // Wrong ID, another source address, the genuine reply on another socket.
    assert!(stats.upstream_unmatched >= 3, "{stats:?}");
    assert_eq!(stats.upstream_mismatched, 1, "{stats:?}");
}

#[test]
fn a_reply_on_another_socket_than_its_query_left_from_is_not_taken() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_B, Behaviour::WrongSocket);
    let reply = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    // Cluster B's replies, right in every other respect, never count: it times out.
    assert_eq!(reply.answer.len(), 2, "cluster A only");
    assert_eq!(reply.ede[0].0, 22, "cluster B timed out");
    let stats = sim.gw.stats();
    assert!(stats.upstream_unmatched >= 2, "{stats:?}");
    assert_eq!(stats.upstream_mismatched, 0, "{stats:?}");
}

#[test]
fn garbage_from_an_upstream_is_a_failed_attempt() {
    let mut sim = sim();
    set(
        &mut sim,
        UPSTREAM_B,
        Behaviour::Raw {
            bytes: vec![0xde, 0xad, 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 0, 0xff],
            keep_id: false,
        },
    );
    let reply = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    assert_eq!(reply.answer.len(), 2);
    assert_eq!(reply.ede[0].0, 23);
    assert!(sim.gw.stats().upstream_malformed >= 1);
}

#[test]
fn late_replies_after_the_answer_are_counted_not_answered() {
    let mut sim = sim();
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .delay = std::time::Duration::from_millis(3000);
    let client = sim.send(&QuerySpec::new(SRV_NAME, Rtype::SRV));
    sim.drive_bounded(1000);
    assert_eq!(sim.replies.iter().filter(|r| r.client == client).count(), 1);
    assert!(sim.gw.stats().upstream_unmatched >= 1);
}

#[test]
fn upstream_truncation_is_retried_over_tcp_to_the_same_upstream() {
    let mut sim = sim();
    sim.upstreams
        .get_mut(&UPSTREAM_A.parse().unwrap())
        .unwrap()
        .udp_limit = 100;
    let reply = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    assert_eq!(reply.answer.len(), 4);
    assert!(reply.ede.is_empty());
    let received = &sim.upstreams[&UPSTREAM_A.parse().unwrap()].received;
    let transports: Vec<_> = received.iter().map(|(t, _)| *t).collect();
    assert_eq!(transports, vec![Transport::Udp, Transport::Tcp]);
    assert_eq!(sim.gw.stats().upstream_tc_retries, 1);
}

#[test]
fn a_cluster_whose_host_refuses_fails_at_once_not_at_the_timeout() {
    let mut sim = sim();
    set(&mut sim, UPSTREAM_B, Behaviour::Refusing);
    let client = sim.send(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    sim.drive_bounded(1000);
    let reply = sim.only_reply(client);
    // Two attempts, each refused after one round trip: milliseconds, not 2 × 500.
    assert!(
        sim.elapsed_ms(reply.at) < 10,
        "{} ms",
        sim.elapsed_ms(reply.at)
    );
    let reply = reply.parse();
    assert_eq!(reply.answer.len(), 2, "cluster A's part");
    assert_eq!(reply.ede.len(), 1);
    assert_eq!(reply.ede[0].0, 23, "a network error: {:?}", reply.ede);
    assert_eq!(sim.gw.stats().upstream_failures, 2);
    assert_eq!(sim.gw.stats().upstream_timeouts, 0);
}
