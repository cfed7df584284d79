//! Upstream TCP as the gateway drives it: connections it asks the network to open, queries
//! pipelined on them, and what a connection that fails, goes idle or is lost costs.

use std::net::SocketAddr;
use std::time::Duration;

use domain::base::iana::Rtype;
use gatherdns_core::{ClientTransport, Closed, ConnId};
use gatherdns_tests::message::QuerySpec;
use gatherdns_tests::sim::{Behaviour, ClosedBy, Sim, Transport};

use crate::fixtures::{sim, zone, UPSTREAM_A};

const SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";
const PROXIED: &str = "demo-service.default.svc.cluster-a.local.";

/// A plain `forward` of cluster A's zone over TCP, to `upstreams` in order.
fn tcp_proxy(upstreams: &str) -> Sim {
    let corefile = format!(
        "cluster-a.local.:53 {{
  forward cluster-a.local. {upstreams} {{
    force_tcp
    policy sequential
  }}
}}
"
    );
    let mut sim = Sim::new(&corefile, &[]);
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, ""));
    sim
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Steps until `upstream` has received `count` queries.
fn until_received(sim: &mut Sim, upstream: &str, count: usize) {
    for _ in 0..100 {
        if sim.upstreams[&addr(upstream)].received.len() >= count {
            return;
        }
        assert!(
            sim.step(),
            "went idle before {upstream} got {count} queries"
        );
    }
    panic!("{upstream} never got {count} queries");
}

/// The only connection the gateway asked for.
fn only_conn(sim: &Sim) -> ConnId {
    assert_eq!(sim.conns.len(), 1, "{:?}", sim.conns);
    *sim.conns.keys().next().unwrap()
}

#[test]
fn a_truncated_reply_is_retried_on_a_connection_that_the_gateway_opens() {
    let mut sim = sim();
    sim.upstreams.get_mut(&addr(UPSTREAM_A)).unwrap().udp_limit = 100;
    let reply = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    assert_eq!(reply.answer.len(), 4);
    let conn = &sim.conns[&only_conn(&sim)];
    assert_eq!(conn.addr, addr(UPSTREAM_A));
    assert!(conn.opened.is_some() && conn.is_live());
    assert_eq!((conn.writes, conn.queries), (1, 1));
    let transports: Vec<Transport> = sim.upstreams[&addr(UPSTREAM_A)]
        .received
        .iter()
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(transports, vec![Transport::Udp, Transport::Tcp]);
}

#[test]
fn sub_queries_are_pipelined_on_one_connection() {
    let mut sim = tcp_proxy(UPSTREAM_A);
    let clients: Vec<_> = (0..5)
        .map(|i| {
            let client = sim.client(ClientTransport::Udp);
            sim.send_from(client, QuerySpec::new(PROXIED, Rtype::A).id(i).build());
            client
        })
        .collect();
    sim.drive_bounded(1000);
    for client in &clients {
        assert_eq!(sim.only_reply(*client).parse().answer.len(), 1);
    }
    // All five waited for the one connection, and went out in one write once it opened.
    let conn = only_conn(&sim);
    assert_eq!((sim.conns[&conn].writes, sim.conns[&conn].queries), (1, 5));

    // Later queries reuse it.
    for i in 5..8 {
        let client = sim.client(ClientTransport::Udp);
        sim.send_from(client, QuerySpec::new(PROXIED, Rtype::A).id(i).build());
    }
    sim.drive_bounded(1000);
    assert_eq!(only_conn(&sim), conn);
    assert_eq!(sim.conns[&conn].queries, 8);
    assert_eq!(sim.gw.stats().upstream_failures, 0);
}

#[test]
fn a_connection_that_cannot_open_fails_the_attempt_which_is_retried_elsewhere() {
    // Nothing listens at the first upstream.
    let mut sim = tcp_proxy("10.8.0.99:53 10.8.0.1:53");
    let reply = sim.ask(&QuerySpec::new(PROXIED, Rtype::A));
    assert_eq!(reply.answer.len(), 1);
    let refused = &sim.conns.values().find(|c| c.addr == addr("10.8.0.99:53"));
    assert_eq!(
        refused.unwrap().closed.map(|(_, by)| by),
        Some(ClosedBy::Network(Closed::ConnectFailed))
    );
    assert_eq!(sim.gw.stats().upstream_failures, 1);
}

#[test]
fn a_cluster_no_connection_reaches_is_reported_as_a_network_error() {
    let corefile = crate::fixtures::COREFILE.replace(
        "forward cluster-b.local. 10.9.0.1:53\n",
        "forward cluster-b.local. 10.9.0.1:53 {\n    force_tcp\n  }\n",
    );
    let mut sim = Sim::new(&corefile, &[]);
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, ""));
    sim.bare_upstream("10.9.0.1:53", Behaviour::Unreachable);
    let reply = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    assert_eq!(reply.answer.len(), 2);
    assert_eq!(reply.ede.len(), 1);
    assert_eq!(reply.ede[0].0, 23);
    assert!(
        reply.ede[0].1.contains("10.9.0.1:53 unreachable"),
        "{:?}",
        reply.ede
    );
    // Two attempts, each on a connection of its own that never opened.
    assert_eq!(sim.gw.stats().upstream_failures, 2);
    assert_eq!(sim.conns.len(), 2);
    assert!(sim.conns.values().all(|c| c.opened.is_none()));
}

#[test]
fn an_idle_connection_is_closed_by_the_gateways_own_timer() {
    let mut sim = tcp_proxy(UPSTREAM_A);
    let client = sim.send(&QuerySpec::new(PROXIED, Rtype::A));
    sim.drive_bounded(1000);
    let answered = sim.only_reply(client).at;
    let conn = only_conn(&sim);
    sim.advance(Duration::from_secs(9));
    assert!(sim.conns[&conn].is_live(), "not idle long enough");
    // The simulation has no timer of its own: it wakes the gateway when poll_timeout says
    // so (and once more at the end of the advance), so the exact time shows whose timer
    // closed it.
    sim.advance(Duration::from_secs(2));
    assert_eq!(
        sim.conns[&conn].closed,
        Some((answered + Duration::from_secs(10), ClosedBy::Gateway))
    );
    assert_eq!(sim.gw.poll_timeout(), None, "nothing left to wake for");
}

#[test]
fn a_lost_connection_retries_its_queries_once() {
    let mut sim = tcp_proxy(UPSTREAM_A);
    sim.upstreams.get_mut(&addr(UPSTREAM_A)).unwrap().delay = Duration::from_millis(300);
    let client = sim.send(&QuerySpec::new(PROXIED, Rtype::A));
    until_received(&mut sim, UPSTREAM_A, 1);
    let first = only_conn(&sim);
    // The upstream resets the connection before it replies: the query goes again, as it
    // was, on a new connection, and the gateway hears of no failure.
    sim.break_conn(first, Closed::Lost);
    until_received(&mut sim, UPSTREAM_A, 2);
    let received = &sim.upstreams[&addr(UPSTREAM_A)].received;
    assert_eq!(received[0], received[1], "the same query, resent");
    let second = sim.live_conns(addr(UPSTREAM_A));
    assert_eq!(second.len(), 1);
    assert_ne!(second[0], first);
    assert_eq!(sim.gw.stats().upstream_failures, 0);

    // Lost again: now the attempt fails, and the gateway makes its own retry.
    sim.break_conn(second[0], Closed::Lost);
    assert_eq!(sim.gw.stats().upstream_failures, 1);
    sim.drive_bounded(1000);
    assert_eq!(sim.only_reply(client).parse().answer.len(), 1);
    let received = &sim.upstreams[&addr(UPSTREAM_A)].received;
    assert_eq!(received.len(), 3);
    assert_ne!(
        received[2].1[..2],
        received[0].1[..2],
        "a new attempt, a new ID"
    );
    assert_eq!(sim.conns.len(), 3);
}

#[test]
fn a_zero_length_frame_fails_the_queries_without_a_resend() {
    let mut sim = tcp_proxy(UPSTREAM_A);
    sim.upstreams.get_mut(&addr(UPSTREAM_A)).unwrap().behaviour = Behaviour::Raw {
        bytes: Vec::new(),
        keep_id: true,
    };
    let reply = sim.ask(&QuerySpec::new(PROXIED, Rtype::A));
    assert_eq!(reply.rcode, "SERVFAIL");
    // Two attempts of the gateway, one connection each, both broken by the upstream.
    assert_eq!(sim.upstreams[&addr(UPSTREAM_A)].received.len(), 2);
    assert!(sim
        .conns
        .values()
        .all(|c| c.closed.map(|(_, by)| by) == Some(ClosedBy::Network(Closed::Broken))));
}

#[test]
fn a_full_pool_fails_the_attempt_at_once() {
    let mut sim = tcp_proxy(UPSTREAM_A);
    sim.upstreams.get_mut(&addr(UPSTREAM_A)).unwrap().behaviour = Behaviour::Silent;
    // The pool holds 512 queries, on four connections of 64 and in the queue behind them.
    for i in 0..512 {
        let client = sim.client(ClientTransport::Udp);
        sim.send_from(client, QuerySpec::new(PROXIED, Rtype::A).id(i).build());
    }
    assert!(sim.replies.is_empty());
    assert_eq!(sim.conns.len(), 4);
    let client = sim.client(ClientTransport::Udp);
    sim.send_from(client, QuerySpec::new(PROXIED, Rtype::A).id(512).build());
    // Both attempts failed inside the same input: the client has its answer at once.
    let reply = sim.only_reply(client);
    assert_eq!(reply.at, sim.now);
    assert_eq!(reply.parse().rcode, "SERVFAIL");
    assert_eq!(sim.gw.stats().upstream_failures, 2);
    assert_eq!(sim.conns.len(), 4);
}
