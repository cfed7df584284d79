//! Reconfiguring a running gateway (a reload): queries in flight finish under the
//! configuration they started with, new ones use the new one, a bad configuration changes
//! nothing, and the old configuration's pools and timers go once nothing uses them.

use std::net::SocketAddr;
use std::time::Duration;

use domain::base::iana::Rtype;
use gatherdns_core::{ClientAddr, ClientTransport, ListenerId};
use gatherdns_tests::message::{QuerySpec, Reply};
use gatherdns_tests::sim::{config, Behaviour, Sim};

use crate::fixtures::{sim, COREFILE, UPSTREAM_A, UPSTREAM_B};

const SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";

/// The fixture's Corefile with cluster A's prefix changed from `a-` to `x-`.
fn renamed() -> String {
    COREFILE.replace("cluster-a.local. a-", "cluster-a.local. x-")
}

fn srv() -> QuerySpec {
    QuerySpec::new(SRV_NAME, Rtype::SRV)
}

fn targets(reply: &Reply) -> Vec<String> {
    reply
        .answer
        .iter()
        .map(|rr| rr.rsplit(' ').next().unwrap_or_default().to_string())
        .collect()
}

fn slow(sim: &mut Sim, upstream: &str, delay: Duration) {
    sim.upstreams
        .get_mut(&upstream.parse().unwrap())
        .unwrap()
        .delay = delay;
}

#[test]
fn a_query_in_flight_finishes_under_the_old_configuration() {
    let mut sim = sim();
    slow(&mut sim, UPSTREAM_A, Duration::from_millis(100));
    slow(&mut sim, UPSTREAM_B, Duration::from_millis(100));
    let before = sim.send(&srv());
    sim.advance(Duration::from_millis(10));
    assert_eq!(sim.gw.queries_in_flight(), 1);
    sim.gw
        .reconfigure(sim.now, config(&renamed(), &[]))
        .expect("valid configuration");
    assert_eq!(
        sim.gw.retired_configurations(),
        1,
        "kept for the query in flight"
    );
    // A query started now is gathered under the new configuration, beside the old one.
    let after = sim.send(&srv());
    sim.drive_bounded(10_000);
    let old = sim.only_reply(before).parse();
    assert_eq!(old.rcode, "NOERROR");
    assert_eq!(
        targets(&old),
        [
            "a-demo-service-0.default.svc.distributed.local.",
            "a-demo-service-1.default.svc.distributed.local.",
            "b-demo-service-0.default.svc.distributed.local.",
            "b-demo-service-1.default.svc.distributed.local.",
        ]
    );
    let new = sim.only_reply(after).parse();
    assert_eq!(
        targets(&new),
        [
            "x-demo-service-0.default.svc.distributed.local.",
            "x-demo-service-1.default.svc.distributed.local.",
            "b-demo-service-0.default.svc.distributed.local.",
            "b-demo-service-1.default.svc.distributed.local.",
        ]
    );
    assert_eq!(
        sim.gw.retired_configurations(),
        0,
        "released after its last query"
    );
    // Prefixed names follow the new configuration too.
    let host = sim.ask(&QuerySpec::new(
        "x-demo-service-0.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert_eq!(
        host.answer,
        ["x-demo-service-0.default.svc.distributed.local. 30 A 10.8.1.2"]
    );
}

#[test]
fn an_idle_gateway_drops_the_old_configuration_at_once() {
    let mut sim = sim();
    assert_eq!(
        targets(&sim.ask(&srv()))[0],
        "a-demo-service-0.default.svc.distributed.local."
    );
    sim.gw
        .reconfigure(sim.now, config(&renamed(), &[]))
        .expect("valid configuration");
    assert_eq!(sim.gw.retired_configurations(), 0);
    assert_eq!(
        targets(&sim.ask(&srv()))[0],
        "x-demo-service-0.default.svc.distributed.local."
    );
}

#[test]
fn a_configuration_the_gateway_refuses_changes_nothing() {
    let mut sim = sim();
    slow(&mut sim, UPSTREAM_A, Duration::from_millis(100));
    let before = sim.send(&srv());
    sim.advance(Duration::from_millis(10));
    // A gathersrv cluster that nothing in its block answers (the parser would refuse the
    // file; a configuration built by hand can still say it).
    let mut bad = config(&renamed(), &[]);
    bad.servers[0].forwards.clear();
    let error = sim.gw.reconfigure(sim.now, bad).expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("cluster cluster-a.local. has no forward or file"),
        "{error}"
    );
    assert_eq!(sim.gw.retired_configurations(), 0);
    sim.drive_bounded(10_000);
    assert_eq!(sim.only_reply(before).parse().answer.len(), 4);
    assert_eq!(
        targets(&sim.ask(&srv()))[0],
        "a-demo-service-0.default.svc.distributed.local."
    );
}

#[test]
fn listeners_that_stay_keep_their_ids_and_new_ones_get_fresh_ones() {
    let two_ports = |first: &str| {
        format!(
            "{first}
other.local.:1053 {{
  hosts {{
    10.1.2.3 www.other.local.
  }}
}}
"
        )
    };
    let mut sim = Sim::with_config(config(&two_ports(COREFILE), &[]));
    assert_eq!(sim.gw.listener_ids(), [ListenerId(0), ListenerId(1)]);
    // Drop the first block: port 1053 keeps id 1.
    sim.gw
        .reconfigure(sim.now, config(&two_ports(""), &[]))
        .expect("valid");
    let addr: SocketAddr = "0.0.0.0:1053".parse().unwrap();
    assert_eq!(sim.gw.listeners(), [addr]);
    assert_eq!(sim.gw.listener_ids(), [ListenerId(1)]);
    let client = ClientAddr {
        listener: ListenerId(1),
        remote: "127.0.0.9:5000".parse().unwrap(),
        transport: ClientTransport::Udp,
    };
    sim.send_from(client, QuerySpec::new("www.other.local.", Rtype::A).build());
    let reply = sim.only_reply(client).parse();
    assert_eq!(reply.answer, ["www.other.local. 3600 A 10.1.2.3"]);
    // Bring port 53 back: a new id, never one used before.
    sim.gw
        .reconfigure(sim.now, config(&two_ports(COREFILE), &[]))
        .expect("valid");
    assert_eq!(sim.gw.listener_ids(), [ListenerId(2), ListenerId(1)]);
    // A query on the removed listener's old id is in no zone any more.
    let stale = ClientAddr {
        listener: ListenerId(0),
        ..client
    };
    sim.send_from(stale, srv().id(7).build());
    assert_eq!(sim.replies.last().unwrap().parse().rcode, "REFUSED");
}

#[test]
fn health_carries_over_and_the_old_pools_stop_probing() {
    let mut sim = sim();
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .behaviour = Behaviour::Silent;
    sim.ask(&srv());
    assert_eq!(
        sim.gw.upstream_health(),
        [
            (UPSTREAM_A.parse().unwrap(), true),
            (UPSTREAM_B.parse().unwrap(), false)
        ]
    );
    // Same forwards: cluster B stays down (no query pays for finding out again) and the new
    // pool probes it.
    sim.gw
        .reconfigure(sim.now, config(&renamed(), &[]))
        .expect("valid");
    assert_eq!(
        sim.gw.upstream_health()[1],
        (UPSTREAM_B.parse().unwrap(), false)
    );
    let probes = sim.upstreams[&UPSTREAM_B.parse().unwrap()].probes;
    sim.advance(Duration::from_secs(2));
    let probing = sim.upstreams[&UPSTREAM_B.parse().unwrap()].probes;
    assert!(probing > probes, "the new pool probes the down upstream");
    // Cluster B moves elsewhere: nothing probes the old address any more, and nothing of
    // the old configurations is left.
    let moved = renamed().replace("10.9.0.1:53", "10.9.0.2:53");
    sim.upstream(
        "10.9.0.2:53",
        "cluster-b.local.",
        &crate::fixtures::zone("b", 9, ""),
    );
    sim.gw
        .reconfigure(sim.now, config(&moved, &[]))
        .expect("valid");
    sim.advance(Duration::from_secs(3));
    let settled = sim.upstreams[&UPSTREAM_B.parse().unwrap()].probes;
    sim.advance(Duration::from_secs(5));
    assert_eq!(sim.upstreams[&UPSTREAM_B.parse().unwrap()].probes, settled);
    assert_eq!(sim.gw.retired_configurations(), 0);
    assert_eq!(
        sim.ask(&srv()).answer.len(),
        4,
        "both clusters answer again"
    );
    sim.advance(Duration::from_secs(10));
    assert_eq!(
        sim.gw.poll_timeout(),
        None,
        "no timer of an old configuration is left"
    );
}

/// The gathered SRV answer under the old configuration's prefixes.
const OLD_TARGETS: [&str; 4] = [
    "a-demo-service-0.default.svc.distributed.local.",
    "a-demo-service-1.default.svc.distributed.local.",
    "b-demo-service-0.default.svc.distributed.local.",
    "b-demo-service-1.default.svc.distributed.local.",
];

#[test]
fn a_reload_while_sub_queries_wait_on_pooled_connections() {
    let corefile = COREFILE.replace(
        "forward cluster-b.local. 10.9.0.1:53",
        "forward cluster-b.local. 10.9.0.1:53 {\n    force_tcp\n  }",
    );
    let mut sim = Sim::new(&corefile, &[]);
    crate::fixtures::add_clusters(&mut sim);
    slow(&mut sim, UPSTREAM_B, Duration::from_millis(100));
    let before: Vec<_> = (0..3).map(|_| sim.send(&srv())).collect();
    sim.advance(Duration::from_millis(20));
    assert_eq!(
        sim.live_conns(UPSTREAM_B.parse().unwrap()).len(),
        1,
        "pooled"
    );
    sim.gw
        .reconfigure(
            sim.now,
            config(
                &renamed().replace(
                    "forward cluster-b.local. 10.9.0.1:53",
                    "forward cluster-b.local. 10.9.0.1:53 {\n    force_tcp\n  }",
                ),
                &[],
            ),
        )
        .expect("valid configuration");
    let after = sim.send(&srv());
    sim.drive_bounded(10_000);
    for client in before {
        assert_eq!(targets(&sim.only_reply(client).parse()), OLD_TARGETS);
    }
    let new = sim.only_reply(after).parse();
    assert_eq!(new.answer.len(), 4);
    assert!(targets(&new)[0].starts_with("x-"), "{new:?}");
    assert_eq!(
        sim.gw.retired_configurations(),
        0,
        "released after its last query"
    );
    // The pooled connection closes on its idle timer, whichever configuration opened it.
    sim.advance(Duration::from_secs(15));
    assert!(sim.live_conns(UPSTREAM_B.parse().unwrap()).is_empty());
    assert_eq!(sim.gw.queries_in_flight(), 0);
}

#[test]
fn a_reload_while_a_truncated_reply_is_retried_over_tcp() {
    let mut sim = sim();
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .udp_limit = 100;
    slow(&mut sim, UPSTREAM_B, Duration::from_millis(50));
    let before = sim.send(&srv().edns(1232, false));
    // The truncated UDP reply comes back after 50 ms; the TCP retry is then on its way.
    sim.advance(Duration::from_millis(60));
    assert_eq!(sim.gw.stats().upstream_tc_retries, 1);
    sim.gw
        .reconfigure(sim.now, config(&renamed(), &[]))
        .expect("valid configuration");
    assert_eq!(sim.gw.retired_configurations(), 1, "kept for the TCP retry");
    sim.drive_bounded(10_000);
    let old = sim.only_reply(before).parse();
    assert_eq!(targets(&old), OLD_TARGETS);
    assert!(old.ede.is_empty(), "{old:?}");
    assert_eq!(sim.gw.retired_configurations(), 0);
}
