//! A dead cluster over real sockets: its upstream is a bound UDP socket that never answers.
//! The first reply comes within the deadline with the live cluster's records and an EDE;
//! once the upstream is marked down, replies add no waiting at all; with every cluster dead
//! the reply is SERVFAIL + EDE; never two replies to one query.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::common::*;

/// Cluster A is served by the same process (`file` on PORT1); cluster B forwards to `dead`.
fn corefile(dead_b: &str, dead_a: Option<&str>) -> String {
    let a = dead_a.map_or("127.0.0.1:@PORT1@".to_string(), str::to_string);
    format!(
        "distributed.local.:@PORT0@ {{\n    bind 127.0.0.1\n    gathersrv distributed.local. {{\n        \
         cluster-a.local. a-\n        cluster-b.local. b-\n    }}\n    forward cluster-a.local. {a}\n    \
         forward cluster-b.local. {dead_b}\n}}\n\
         cluster-a.local.:@PORT1@ {{\n    bind 127.0.0.1\n    file cluster-a.local.zone\n}}\n"
    )
}

fn start(binary: &str, corefile: &str) -> Server {
    let zone = std::fs::read_to_string(demo_dir().join("cluster-a.local.zone")).expect("demo zone");
    ServerBuilder::new(binary, corefile)
        .file("cluster-a.local.zone", &zone)
        .start()
}

/// A loopback UDP port that swallows everything: bound, never read, so no ICMP comes back.
fn black_hole() -> (UdpSocket, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr").to_string();
    (socket, addr)
}

fn srv(id: u16) -> QuerySpec {
    QuerySpec::new(
        "_demo._tcp.demo-service.default.svc.distributed.local.",
        Rtype::SRV,
    )
    .id(id)
    .edns(1232, false)
}

/// Sends one query over UDP and returns the reply and how long it took; also checks that no
/// second reply follows within `extra`.
fn timed(server: std::net::SocketAddr, q: &QuerySpec, extra: Duration) -> (Reply, Duration) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let started = Instant::now();
    socket.send_to(&q.build(), server).expect("send");
    let mut buf = vec![0u8; 65535];
    let (len, _) = socket.recv_from(&mut buf).expect("a reply within 5 s");
    let took = started.elapsed();
    let reply = Reply::parse(&buf[..len]);
    socket.set_read_timeout(Some(extra)).expect("timeout");
    assert!(
        socket.recv_from(&mut buf).is_err(),
        "a second reply to one query"
    );
    (reply, took)
}

#[test]
fn a_dead_cluster_is_detected_then_costs_nothing() {
    let (_hole, dead) = black_hole();
    for_each_binary(|binary| {
        let server = start(binary, &corefile(&dead, None));
        let (first, first_took) = timed(server.addr(), &srv(1), Duration::from_millis(200));
        eprintln!("{binary}: first reply with a dead cluster after {first_took:?}");
        assert!(first_took < Duration::from_millis(2000), "{first_took:?}");
        assert!(
            first_took >= Duration::from_millis(900),
            "two 500 ms attempts: {first_took:?}"
        );
        assert_eq!(first.answer.len(), 2, "{first:?}");
        assert_eq!(first.ede.len(), 1);
        assert_eq!(first.ede[0].0, 22);
        assert!(first.ede[0].1.contains("cluster-b.local."));
        let mut worst = Duration::ZERO;
        for id in 2..22 {
            let (reply, took) = timed(server.addr(), &srv(id), Duration::from_millis(5));
            assert_eq!(reply.answer.len(), 2);
            assert!(
                reply.ede[0].1.contains("every upstream is down"),
                "{:?}",
                reply.ede
            );
            worst = worst.max(took);
        }
        eprintln!("{binary}: worst steady-state reply with the cluster marked down: {worst:?}");
        assert!(worst < Duration::from_millis(100), "{worst:?}");
    });
}

#[test]
fn every_cluster_dead_is_servfail_within_the_deadline() {
    let (_hole_a, dead_a) = black_hole();
    let (_hole_b, dead_b) = black_hole();
    for_each_binary(|binary| {
        let server = start(binary, &corefile(&dead_b, Some(&dead_a)));
        let (reply, took) = timed(server.addr(), &srv(1), Duration::from_millis(200));
        eprintln!("{binary}: SERVFAIL with every cluster dead after {took:?}");
        assert!(took < Duration::from_millis(2100), "{took:?}");
        assert_eq!(reply.rcode, "SERVFAIL");
        assert_eq!(reply.ede[0].0, 23);
        let (again, took) = timed(server.addr(), &srv(2), Duration::from_millis(5));
        assert_eq!(again.rcode, "SERVFAIL");
        assert!(
            took < Duration::from_millis(100),
            "skipped at once once marked down: {took:?}"
        );
    });
}

/// A cluster whose DNS is gone (a closed port: every sub-query draws an ICMP port
/// unreachable, which the next send on that socket reports as an error) under a burst: every
/// query is answered with the live cluster's part, and the server lives on. gatherdns-glommio
/// used to panic here: a send that failed at once fell back to a background task, which
/// glommio ran inside the spawn, while the drain still held the gateway.
#[test]
fn a_refusing_cluster_under_a_burst_costs_no_reply() {
    let closed = format!("127.0.0.1:{}", free_ports(1)[0]);
    // Never marked down, so that every query sends to the closed port.
    let dead_b = format!("{closed} {{\n        max_fails 0\n    }}");
    for_each_binary(|binary| {
        let mut server = start(binary, &corefile(&dead_b, None));
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        for burst in 0..5u16 {
            let ids: Vec<u16> = (0..50).map(|i| burst * 50 + i).collect();
            for id in &ids {
                socket
                    .send_to(&srv(*id).build(), server.addr())
                    .expect("send");
            }
            for reply in one_reply_each(&socket, ids, binary) {
                assert_eq!(reply.rcode, "NOERROR", "{reply:#?}");
                assert_eq!(reply.answer.len(), 2, "cluster A's part: {reply:#?}");
            }
        }
        assert!(server.is_running(), "{binary} died: {}", server.stderr());
    });
}

/// A cluster whose host is up but whose DNS port is closed refuses each sub-query (ICMP port
/// unreachable): the attempts fail at once, so the first query costs milliseconds, not two
/// 500 ms attempts.
#[test]
fn a_cluster_whose_port_is_closed_costs_no_timeout() {
    let closed = format!("127.0.0.1:{}", free_ports(1)[0]);
    for_each_binary(|binary| {
        let server = start(binary, &corefile(&closed, None));
        let (reply, took) = timed(server.addr(), &srv(1), Duration::from_millis(200));
        eprintln!("{binary}: first reply with a refusing cluster after {took:?}");
        assert!(took < Duration::from_millis(450), "{binary}: {took:?}");
        assert_eq!(reply.answer.len(), 2, "cluster A's part: {reply:?}");
        assert_eq!(reply.ede.len(), 1, "{reply:?}");
        assert_eq!(reply.ede[0].0, 23, "a network error: {reply:?}");
    });
}
