//! The cache, stale cluster parts and answer policies over real sockets, with Knot as each
//! cluster's DNS and one Knot stopped mid-run.

use std::process::Command;
use std::time::{Duration, Instant};

use gatherdns_tests::knot::Knot;
use gatherdns_tests::tools::DIG;

use crate::common::*;

const SRV: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";

/// One Knot per cluster, so that one can be stopped alone.
fn knots() -> (Knot, Knot) {
    let zone = |name: &str| {
        std::fs::read_to_string(demo_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    (
        Knot::start(&[("cluster-a.local.", &zone("cluster-a.local.zone"))]),
        Knot::start(&[("cluster-b.local.", &zone("cluster-b.local.zone"))]),
    )
}

fn gatherer(binary: &str, a: &Knot, b: &Knot, options: &str, extra: &str) -> Server {
    let corefile = format!(
        "distributed.local.:@PORT0@ {{\n    bind 127.0.0.1\n    gathersrv distributed.local. {{\n        \
         cluster-a.local. a-\n        cluster-b.local. b-\n        {options}\n    }}\n    \
         forward cluster-a.local. {}\n    forward cluster-b.local. {}\n    {extra}\n}}\n",
        a.addr(),
        b.addr()
    );
    ServerBuilder::new(binary, &corefile).start()
}

fn srv(id: u16) -> QuerySpec {
    QuerySpec::new(SRV, Rtype::SRV).id(id).edns(1232, false)
}

fn timed(server: std::net::SocketAddr, q: &QuerySpec) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = ask(server, Transport::Udp, q);
    (reply, started.elapsed())
}

fn targets(reply: &Reply) -> Vec<String> {
    reply
        .answer_triples()
        .into_iter()
        .map(|(_, _, data)| data.rsplit(' ').next().unwrap_or("").to_string())
        .collect()
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
#[cfg_attr(no_dig, ignore = "needs dig: apt-get install bind9-dnsutils")]
fn a_stale_part_stands_in_for_a_cluster_whose_dns_stopped() {
    let dig = require_tool(DIG);
    for_each_binary(|binary| {
        let (a, b) = knots();
        let server = gatherer(binary, &a, &b, "serve_stale 10m", "");
        let whole = ask(server.addr(), Transport::Udp, &srv(1));
        assert_eq!(whole.answer.len(), 4, "{whole:#?}");
        assert!(whole.ede.is_empty());
        drop(b);
        let (reply, took) = timed(server.addr(), &srv(2));
        eprintln!("{binary}: reply with cluster B's DNS stopped after {took:?}");
        assert!(took < Duration::from_millis(2000), "{took:?}");
        assert_eq!(
            targets(&reply),
            targets(&whole),
            "B's records are back in place"
        );
        // A stopped Knot's port refuses: the attempts fail at once (not at their timeout).
        assert_eq!(reply.ede.len(), 1, "{:?}", reply.ede);
        assert_eq!(reply.ede[0].0, 3);
        assert!(
            reply.ede[0]
                .1
                .starts_with("stale answer from cluster-b.local. (")
                && reply.ede[0].1.ends_with(" unreachable)"),
            "{:?}",
            reply.ede
        );
        let b_ttls: Vec<u32> = reply
            .answer_rrs()
            .iter()
            .filter(|r| r.rdata.contains("b-demo"))
            .map(|r| r.ttl)
            .collect();
        assert_eq!(b_ttls, vec![30, 30]);
        // What an operator sees in dig: the EDE, and every record.
        let out = Command::new(&dig)
            .args([
                "@127.0.0.1",
                "-p",
                &server.port(0).to_string(),
                "+tries=1",
                "+time=5",
                "SRV",
                SRV,
            ])
            .output()
            .expect("run dig");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("; EDE: 3 (Stale Answer): (stale answer from cluster-b.local. (every upstream is down))"),
            "{text}"
        );
        assert!(text.contains("ANSWER: 4"), "{text}");
    });
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn the_cache_answers_while_the_clusters_dns_is_gone() {
    for_each_binary(|binary| {
        let (a, b) = knots();
        let server = gatherer(binary, &a, &b, "", "cache 30");
        let first = ask(server.addr(), Transport::Udp, &srv(1));
        assert_eq!(first.answer.len(), 4);
        drop((a, b));
        let (hit, took) = timed(server.addr(), &srv(2));
        assert!(
            took < Duration::from_millis(200),
            "from the cache: {took:?}"
        );
        assert_eq!(hit.answer_triples(), first.answer_triples());
        assert!(hit.ede.is_empty());
        // Over TCP, with another 0x20 spelling: the same entry.
        let shouting = "_DEMO._TCP.demo-service.default.svc.DISTRIBUTED.local.";
        let hit = ask(
            server.addr(),
            Transport::Tcp,
            &QuerySpec::new(shouting, Rtype::SRV).id(3),
        );
        assert_eq!(hit.answer.len(), 4);
        assert_eq!(
            hit.question,
            vec![format!("{} SRV", shouting.trim_end_matches('.'))]
        );
        assert!(hit.answer_rrs().iter().all(|r| r.owner == shouting));
    });
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn prefer_and_first_positive_against_knot() {
    for_each_binary(|binary| {
        let (a, b) = knots();
        let server = gatherer(binary, &a, &b, "policy prefer b-", "");
        let reply = ask(server.addr(), Transport::Udp, &srv(1));
        assert_eq!(reply.answer.len(), 2);
        assert!(
            targets(&reply).iter().all(|t| t.starts_with("b-")),
            "{reply:#?}"
        );
        drop(b);
        // B's stopped DNS refuses each sub-query, so B is given up at once, not after its
        // attempts' timeouts, and A's records stand in.
        let (reply, took) = timed(server.addr(), &srv(2));
        assert!(took < Duration::from_millis(900), "B refused: {took:?}");
        assert!(
            targets(&reply).iter().all(|t| t.starts_with("a-")),
            "{reply:#?}"
        );
        assert_eq!(reply.ede[0].0, 23, "B's gap is reported: {:?}", reply.ede);

        let (a, b) = knots();
        let server = gatherer(binary, &a, &b, "policy first_positive", "");
        let reply = ask(server.addr(), Transport::Udp, &srv(3));
        let t = targets(&reply);
        assert_eq!(t.len(), 2, "one cluster's records: {reply:#?}");
        assert!(t.iter().all(|x| x.starts_with("a-")) || t.iter().all(|x| x.starts_with("b-")));
        drop(a);
        for id in 4..8 {
            let (reply, took) = timed(server.addr(), &srv(id));
            assert!(
                took < Duration::from_millis(300),
                "B answers at once: {took:?}"
            );
            assert!(
                targets(&reply).iter().all(|t| t.starts_with("b-")),
                "{reply:#?}"
            );
            assert!(
                reply.ede.is_empty(),
                "a policy that needs one answer has no gap"
            );
        }
    });
}
