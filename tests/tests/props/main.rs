//! Property tests of the core against simple expectations: renaming round-trips for prefixed
//! hosts, merging does not depend on arrival order, replies fit the client's limit, and every
//! query gets exactly one reply whatever the upstreams do.

use std::time::Duration;

use domain::base::iana::Rtype;
use gatherdns_core::ClientTransport;
use gatherdns_tests::message::QuerySpec;
use gatherdns_tests::sim::{Behaviour, Sim};
use proptest::prelude::*;

mod model;

const COREFILE: &str = "
distributed.local.:53 {
  gathersrv distributed.local. {
    cluster-a.local. a-
    cluster-b.local. b-
  }
  forward cluster-a.local. 10.8.0.1:53
  forward cluster-b.local. 10.9.0.1:53
}
";

fn zone(cluster: &str, body: &str) -> String {
    format!(
        "$ORIGIN cluster-{cluster}.local.\n$TTL 30\n@ IN SOA ns hostmaster 1 7200 1800 86400 30\n@ IN NS ns\nns IN A 10.0.0.1\n{body}"
    )
}

fn sim(body_a: &str, body_b: &str) -> Sim {
    let mut sim = Sim::new(COREFILE, &[]);
    sim.upstream("10.8.0.1:53", "cluster-a.local.", &zone("a", body_a));
    sim.upstream("10.9.0.1:53", "cluster-b.local.", &zone("b", body_b));
    sim
}

fn host() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A host name returned by a fan-out, asked again, goes back to its own cluster and
    /// resolves to that cluster's address under the same name.
    #[test]
    fn prefixed_names_round_trip(hosts in proptest::collection::btree_set(host(), 1..6), in_b in any::<bool>()) {
        let hosts: Vec<String> = hosts.into_iter().collect();
        let mut body = String::new();
        for (i, h) in hosts.iter().enumerate() {
            body.push_str(&format!("_x._tcp.svc IN SRV 0 1 80 {h}.svc\n{h}.svc IN A 10.1.0.{}\n", i + 1));
        }
        let (a, b) = if in_b { ("", body.as_str()) } else { (body.as_str(), "") };
        let mut s = sim(a, b);
        let srv = s.ask(&QuerySpec::new("_x._tcp.svc.distributed.local.", Rtype::SRV));
        prop_assert_eq!(srv.answer.len(), hosts.len());
        let prefix = if in_b { "b-" } else { "a-" };
        for (i, h) in hosts.iter().enumerate() {
            let target = format!("{prefix}{h}.svc.distributed.local.");
            prop_assert!(srv.answer.iter().any(|r| r.ends_with(&target)), "{:?} lacks {}", srv.answer, target);
            let before: Vec<usize> = s.upstreams.values().map(|u| u.received.len()).collect();
            let a = s.ask(&QuerySpec::new(&target, Rtype::A));
            prop_assert_eq!(a.answer.clone(), vec![format!("{target} 30 A 10.1.0.{}", i + 1)]);
            let after: Vec<usize> = s.upstreams.values().map(|u| u.received.len()).collect();
            let asked: Vec<usize> = before.iter().zip(&after).map(|(x, y)| y - x).collect();
            prop_assert_eq!(asked, if in_b { vec![0, 1] } else { vec![1, 0] });
        }
    }

    /// The merged reply is the same whichever cluster answers first.
    #[test]
    fn merge_does_not_depend_on_arrival_order(
        a in proptest::collection::vec(1u8..200, 0..8),
        b in proptest::collection::vec(1u8..200, 0..8),
        delay_ms in 1u64..50,
    ) {
        let body = |net: &str, ips: &[u8]| ips.iter().map(|i| format!("svc IN A 10.{net}.0.{i}\n")).collect::<String>();
        let run = |slow_a: bool| {
            let mut s = sim(&body("8", &a), &body("9", &b));
            let slow = if slow_a { "10.8.0.1:53" } else { "10.9.0.1:53" };
            s.upstreams.get_mut(&slow.parse().unwrap()).unwrap().delay = Duration::from_millis(delay_ms);
            s.ask(&QuerySpec::new("svc.distributed.local.", Rtype::A))
        };
        let first = run(true);
        let second = run(false);
        prop_assert_eq!(&first, &second);
        let mut expected: Vec<String> = Vec::new();
        for (net, ips) in [("8", &a), ("9", &b)] {
            for i in ips.iter() {
                let r = format!("svc.distributed.local. 30 A 10.{net}.0.{i}");
                if !expected.contains(&r) {
                    expected.push(r);
                }
            }
        }
        prop_assert_eq!(first.answer, expected);
    }

    /// No UDP reply exceeds the client's limit, and TC is set exactly when records were left out.
    #[test]
    fn replies_fit_the_client_limit(count_a in 0usize..90, count_b in 0usize..90, edns in proptest::option::of(0u16..=65535)) {
        let body = |net: &str, n: usize| (1..=n).map(|i| format!("_s._tcp.svc IN SRV 0 1 80 host-{i}.svc\nhost-{i}.svc IN A 10.{net}.{}.{}\n", i / 250, i % 250)).collect::<String>();
        let mut s = sim(&body("8", count_a), &body("9", count_b));
        let mut spec = QuerySpec::new("_s._tcp.svc.distributed.local.", Rtype::SRV);
        if let Some(size) = edns {
            spec = spec.edns(size, false);
        }
        let reply = s.ask(&spec);
        let limit = edns.map_or(512, |e| usize::from(e.clamp(512, 1232)));
        prop_assert!(reply.size <= limit, "{} > {}", reply.size, limit);
        let total = reply.answer.len() + reply.additional.len();
        prop_assert_eq!(reply.tc, total < 2 * (count_a + count_b));
    }

    /// Whatever each upstream does, every query gets exactly one reply and nothing stays in flight.
    #[test]
    fn exactly_one_reply_whatever_upstreams_do(
        behaviours in proptest::collection::vec(0u8..5, 2),
        delays in proptest::collection::vec(0u64..3000, 2),
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
        queries in 1usize..6,
        tcp in any::<bool>(),
    ) {
        let mut s = sim("svc IN A 10.8.0.5\n", "svc IN A 10.9.0.5\n");
        for (i, addr) in ["10.8.0.1:53", "10.9.0.1:53"].iter().enumerate() {
            let up = s.upstreams.get_mut(&addr.parse().unwrap()).unwrap();
            up.delay = Duration::from_millis(delays[i]);
            up.behaviour = match behaviours[i] {
                0 => Behaviour::Answer,
                1 => Behaviour::Silent,
                2 => Behaviour::Unreachable,
                3 => Behaviour::Raw { bytes: garbage.clone(), keep_id: false },
                _ => Behaviour::Spoofed,
            };
        }
        let mut clients = Vec::new();
        for q in 0..queries {
            let transport = if tcp { ClientTransport::Tcp(q as u64) } else { ClientTransport::Udp };
            let client = s.client(transport);
            s.send_from(client, QuerySpec::new("svc.distributed.local.", Rtype::A).id(q as u16).build());
            clients.push(client);
        }
        s.drive_bounded(10_000);
        for client in clients {
            let replies: Vec<_> = s.replies.iter().filter(|r| r.client == client).collect();
            prop_assert_eq!(replies.len(), 1);
            prop_assert!(s.elapsed_ms(replies[0].at) <= 2000);
        }
        prop_assert_eq!(s.gw.queries_in_flight(), 0);
    }
}
