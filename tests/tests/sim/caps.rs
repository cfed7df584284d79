//! `max_concurrent` holds for every sub-query of a client query — first attempts, retries,
//! TCP retries — across the gateways of one configuration (gatherdns-glommio's executors)
//! and across a reload; health probes do not count, as in CoreDNS.

use std::time::Duration;

use domain::base::iana::Rtype;
use gatherdns_core::{Config, SharedCount};
use gatherdns_tests::message::QuerySpec;
use gatherdns_tests::sim::{config, Behaviour, Sim};

use crate::fixtures::{add_clusters, zone, COREFILE, UPSTREAM_B};

const SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";
const UPSTREAM_B2: &str = "10.9.0.2:53";

fn srv() -> QuerySpec {
    QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false)
}

/// The SPEC §1 configuration with cluster B's forward given `upstreams` and `options`.
fn b_config(upstreams: &str, options: &str) -> Config {
    let corefile = COREFILE.replace(
        "forward cluster-b.local. 10.9.0.1:53",
        &format!("forward cluster-b.local. {upstreams} {{\n    {options}\n  }}"),
    );
    config(&corefile, &[])
}

/// Cluster B's `max_concurrent` count, shared with every gateway built from `config`.
fn b_count(config: &Config) -> SharedCount {
    config.servers[0].forwards[1].in_flight.clone()
}

fn sim_of(config: Config) -> Sim {
    let mut sim = Sim::with_config(config);
    add_clusters(&mut sim);
    sim
}

/// Cluster B behind two upstreams with `options`: the first silent, the second answering.
fn silent_first(options: &str) -> (Sim, SharedCount) {
    let config = b_config(&format!("{UPSTREAM_B} {UPSTREAM_B2}"), options);
    let count = b_count(&config);
    let mut sim = sim_of(config);
    sim.upstream(UPSTREAM_B2, "cluster-b.local.", &zone("b", 9, ""));
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .behaviour = Behaviour::Silent;
    (sim, count)
}

/// Steps until no client query is in flight (probes of a down upstream go on for ever),
/// checking after every step that cluster B never has more than `max` sub-queries in
/// flight; returns the most it had.
fn drive_within(sims: &mut [&mut Sim], count: &SharedCount, max: u32) -> u32 {
    let mut most = count.get();
    for _ in 0..100_000 {
        if sims.iter().all(|sim| sim.gw.queries_in_flight() == 0) {
            return most;
        }
        for sim in sims.iter_mut() {
            sim.step();
            most = most.max(count.get());
            assert!(count.get() <= max, "{} in flight, max {max}", count.get());
        }
    }
    panic!("the simulation never went idle");
}

fn refused_for_max_concurrent(reply: &gatherdns_tests::message::Reply) -> bool {
    reply
        .ede
        .iter()
        .any(|(_, text)| text.contains("max_concurrent"))
}

#[test]
fn two_gateways_of_one_configuration_share_the_limit() {
    let config = b_config(UPSTREAM_B, "max_concurrent 2");
    let count = b_count(&config);
    let mut one = sim_of(config.clone());
    let mut two = sim_of(config);
    for sim in [&mut one, &mut two] {
        sim.upstreams
            .get_mut(&UPSTREAM_B.parse().unwrap())
            .unwrap()
            .delay = Duration::from_millis(50);
    }
    let first = [one.send(&srv()), one.send(&srv())];
    let third = two.send(&srv());
    assert_eq!(count.get(), 2);
    let most = drive_within(&mut [&mut one, &mut two], &count, 2);
    assert_eq!(most, 2);
    for client in first {
        assert_eq!(one.only_reply(client).parse().answer.len(), 4);
    }
    let third = two.only_reply(third).parse();
    assert_eq!(third.answer.len(), 2, "cluster A's part only");
    assert!(refused_for_max_concurrent(&third), "{:?}", third.ede);
    assert_eq!(two.gw.stats().refused_max_concurrent, 1);
    assert_eq!(count.get(), 0, "every place given back");
}

#[test]
fn retries_after_a_silent_upstream_stay_within_the_limit() {
    let (mut sim, count) = silent_first("max_concurrent 2\n    policy sequential\n    max_fails 0");
    let clients: Vec<_> = (0..4).map(|_| sim.send(&srv())).collect();
    let most = drive_within(&mut [&mut sim], &count, 2);
    assert_eq!(most, 2);
    let replies: Vec<_> = clients.iter().map(|c| sim.only_reply(*c).parse()).collect();
    // The first two were retried on the second upstream (in their own places); the last
    // two found both places taken.
    assert_eq!(replies[0].answer.len(), 4);
    assert_eq!(replies[1].answer.len(), 4);
    assert!(refused_for_max_concurrent(&replies[2]) && refused_for_max_concurrent(&replies[3]));
    assert_eq!(
        sim.upstreams[&UPSTREAM_B2.parse().unwrap()].received.len(),
        2
    );
    assert_eq!(count.get(), 0);
}

#[test]
fn a_tcp_retry_of_a_truncated_reply_keeps_its_place() {
    let config = b_config(UPSTREAM_B, "max_concurrent 1");
    let count = b_count(&config);
    let mut sim = sim_of(config);
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .udp_limit = 100;
    let first = sim.send(&srv());
    let second = sim.send(&srv());
    drive_within(&mut [&mut sim], &count, 1);
    assert_eq!(
        sim.only_reply(first).parse().answer.len(),
        4,
        "retried over TCP"
    );
    assert!(refused_for_max_concurrent(&sim.only_reply(second).parse()));
    assert_eq!(sim.gw.stats().upstream_tc_retries, 1);
    assert_eq!(count.get(), 0);
}

#[test]
fn health_probes_take_no_place() {
    let (mut sim, count) = silent_first("max_concurrent 1\n    policy sequential\n    max_fails 1");
    // The first query marks the first upstream down (and is answered by the second).
    let client = sim.send(&srv());
    drive_within(&mut [&mut sim], &count, 1);
    assert_eq!(sim.only_reply(client).parse().answer.len(), 4);
    // Probes of the dead upstream are now in flight; queries still get their one place.
    sim.advance(Duration::from_millis(600));
    let b = &sim.upstreams[&UPSTREAM_B.parse().unwrap()];
    assert!(b.probes >= 1, "the down upstream is being probed");
    for _ in 0..3 {
        let client = sim.send(&srv());
        drive_within(&mut [&mut sim], &count, 1);
        let reply = sim.only_reply(client).parse();
        assert_eq!(reply.answer.len(), 4, "{:?}", reply.ede);
    }
    assert_eq!(sim.gw.stats().refused_max_concurrent, 0);
}

#[test]
fn a_reload_counts_on_in_the_places_the_old_configuration_holds() {
    let config = b_config(UPSTREAM_B, "max_concurrent 1");
    let count = b_count(&config);
    let mut sim = sim_of(config);
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .delay = Duration::from_millis(50);
    let before = sim.send(&srv());
    let reloaded = b_config(UPSTREAM_B, "max_concurrent 1");
    let now = sim.now;
    sim.gw.reconfigure(now, reloaded).unwrap();
    let after = sim.send(&srv());
    drive_within(&mut [&mut sim], &count, 1);
    assert_eq!(sim.only_reply(before).parse().answer.len(), 4);
    assert!(refused_for_max_concurrent(&sim.only_reply(after).parse()));
    assert_eq!(count.get(), 0);
}
