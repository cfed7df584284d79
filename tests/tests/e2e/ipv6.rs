//! IPv6 end to end: gatherdns listening on `[::1]` and asked over UDP and TCP, gathering from
//! Knot on `[::1]` over UDP, over TCP (`force_tcp`) and over TCP after a truncated UDP reply;
//! the embedded demo with everything on `::1`; and dual stack, one listener on both families
//! gathering from a cluster DNS of each.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use gatherdns_tests::knot::Knot;

use crate::common::*;

const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

const BIG_SRV: &str = "_http._tcp.big.default.svc.distributed.local.";
const BIG_A: &str = "big.default.svc.distributed.local.";

fn demo_zone(name: &str) -> String {
    std::fs::read_to_string(demo_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Knot on `ip` serving the demo's cluster zones named in `clusters` (`a`, `b`).
fn knot_on(ip: IpAddr, clusters: &[&str]) -> Knot {
    let zones: Vec<(String, String)> = clusters
        .iter()
        .map(|c| {
            let origin = format!("cluster-{c}.local.");
            let text = demo_zone(&format!("cluster-{c}.local.zone"));
            (origin, text)
        })
        .collect();
    let zones: Vec<(&str, &str)> = zones
        .iter()
        .map(|(o, t)| (o.as_str(), t.as_str()))
        .collect();
    Knot::start_on_ip(ip, &zones)
}

/// gatherdns on `bind` (CoreDNS's `bind` arguments), gathering cluster A from `a` and B from
/// `b`; `forward_options` goes into both `forward` blocks. Probed on the first bound address.
fn gatherer(
    binary: &str,
    bind: &[IpAddr],
    a: SocketAddr,
    b: SocketAddr,
    forward_options: &str,
) -> Server {
    let addresses: Vec<String> = bind.iter().map(IpAddr::to_string).collect();
    let corefile = format!(
        "distributed.local.:@PORT0@ {{\n    bind {}\n    gathersrv distributed.local. {{\n        \
         cluster-a.local. a-\n        cluster-b.local. b-\n    }}\n    \
         forward cluster-a.local. {a} {{\n{forward_options}    }}\n    \
         forward cluster-b.local. {b} {{\n{forward_options}    }}\n    errors\n}}\n",
        addresses.join(" ")
    );
    ServerBuilder::new(binary, &corefile)
        .probe_ip(bind[0])
        .start()
}

/// Established TCP connections from this host to `[::1]:port`, as `/proc/net/tcp6` lists
/// them: the upstream pool keeps its connections open, so a sub-query that went over TCP to
/// an IPv6 upstream leaves one behind.
fn tcp6_connections_to(port: u16) -> usize {
    // ::1 as the kernel prints it: four 32-bit words, each in host (little-endian) order.
    let remote = format!("00000000000000000000000001000000:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp6").expect("/proc/net/tcp6");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl, local_address, rem_address, st (01: ESTABLISHED).
            fields.get(2) == Some(&remote.as_str()) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// The answers of `big` over TCP: every cluster's 60 records, renamed into the distributed
/// domain; and over UDP, a truncated reply that still holds both clusters' records.
fn check_big_answers(server: SocketAddr) {
    let reply = ask(server, Transport::Tcp, &query(BIG_A, Rtype::A, None, 31));
    assert_gathered_header(&reply, BIG_A, "A");
    let from = |net: &str| {
        reply
            .answer_rrs()
            .iter()
            .filter(|r| r.owner.eq_ignore_ascii_case(BIG_A) && r.rdata.starts_with(net))
            .count()
    };
    assert_eq!((from("10.8."), from("10.9.")), (60, 60), "{reply:#?}");

    let reply = ask(
        server,
        Transport::Tcp,
        &query(BIG_SRV, Rtype::SRV, None, 32),
    );
    assert_gathered_header(&reply, BIG_SRV, "SRV");
    let targets: Vec<String> = reply
        .answer_rrs()
        .iter()
        .map(|r| {
            let target = r.rdata.rsplit(' ').next().unwrap_or_default();
            target.trim_end_matches('.').to_ascii_lowercase()
        })
        .collect();
    for cluster in ["a", "b"] {
        let renamed = targets
            .iter()
            .filter(|t| {
                t.starts_with(&format!("{cluster}-"))
                    && t.ends_with(".default.svc.distributed.local")
            })
            .count();
        assert_eq!(renamed, 60, "cluster {cluster}'s SRV targets: {targets:?}");
    }
    assert_eq!(reply.additional.len(), 120, "every target's address");

    let reply = ask(
        server,
        Transport::Udp,
        &query(BIG_A, Rtype::A, Some((1232, false)), 33),
    );
    assert!(reply.tc, "UDP: TC set on the 120-record answer");
    let (a, b) = {
        let rrs = reply.answer_rrs();
        let count = |net: &str| rrs.iter().filter(|r| r.rdata.starts_with(net)).count();
        (count("10.8."), count("10.9."))
    };
    assert!(
        a > 0 && b > 0,
        "UDP: both clusters in the truncated reply ({a} + {b})"
    );
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn ipv6_listener_gathers_from_knot_on_ipv6_over_udp() {
    let knot = knot_on(V6, &["a", "b"]);
    for_each_binary(|binary| {
        let server = gatherer(binary, &[V6], knot.addr(), knot.addr(), "");
        assert!(server.addr().is_ipv6());
        check_demo_answers(server.addr());
        // Small answers fit UDP: no sub-query went over TCP.
        assert_eq!(tcp6_connections_to(knot.addr().port()), 0);
    });
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn ipv6_force_tcp_sub_queries_to_knot_on_ipv6() {
    let knot = knot_on(V6, &["a", "b"]);
    for_each_binary(|binary| {
        let server = gatherer(
            binary,
            &[V6],
            knot.addr(),
            knot.addr(),
            "        force_tcp\n",
        );
        check_demo_answers(server.addr());
        check_big_answers(server.addr());
        assert!(
            tcp6_connections_to(knot.addr().port()) > 0,
            "force_tcp: the sub-queries' connections to {} stay open",
            knot.addr()
        );
    });
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn ipv6_truncated_sub_answers_are_retried_over_tcp() {
    // Knot truncates the 60-record answers at our 1232-byte EDNS size; the retry goes over
    // TCP to the same IPv6 upstream.
    let knot = knot_on(V6, &["a", "b"]);
    for_each_binary(|binary| {
        let server = gatherer(binary, &[V6], knot.addr(), knot.addr(), "");
        check_big_answers(server.addr());
        assert!(
            tcp6_connections_to(knot.addr().port()) > 0,
            "the TC retries' connections to {} stay open",
            knot.addr()
        );
    });
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn dual_stack_listener_gathers_from_an_ipv4_and_an_ipv6_cluster() {
    let knot_a = knot_on(V4, &["a"]);
    let knot_b = knot_on(V6, &["b"]);
    for_each_binary(|binary| {
        let server = gatherer(binary, &[V4, V6], knot_a.addr(), knot_b.addr(), "");
        let v6 = SocketAddr::new(V6, server.port(0));
        for listener in [server.addr(), v6] {
            eprintln!("listener {listener}");
            check_demo_answers(listener);
            check_big_answers(listener);
        }
    });
}

/// The embedded demo with every address on `::1`: gatherdns is its own cluster DNS, so its
/// zone serving answers over IPv6 too. Needs nothing installed.
#[test]
fn demo_on_ipv6_only() {
    let corefile = std::fs::read_to_string(demo_dir().join("Corefile")).expect("demo Corefile");
    let corefile: String = corefile
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let corefile = corefile
        .replace("bind 127.0.0.1", "bind ::1")
        .replace("127.0.0.1:1054", "[::1]:@PORT1@")
        .replace("1053", "@PORT0@")
        .replace("1054", "@PORT1@");
    assert!(!corefile.contains("127.0.0.1"), "{corefile}");
    for_each_binary(|binary| {
        let mut builder = ServerBuilder::new(binary, &corefile).probe_ip(V6);
        for zone in ["cluster-a.local.zone", "cluster-b.local.zone"] {
            builder = builder.file(zone, &demo_zone(zone));
        }
        let server = builder.start();
        check_demo_answers(server.addr());
        check_big_answers(server.addr());
    });
}
