//! The caps through the real binaries: `max_concurrent` bounds what a slow cluster's DNS
//! sees in flight for the whole process (gatherdns-glommio's executors count together), and
//! `-max-inflight` refuses client queries beyond it at once (per executor: each holds its
//! own queries). Every client gets exactly one reply.

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use gatherdns_tests::echo_cluster::EchoCluster;

use crate::common::*;

/// Cluster A is served by the same process; cluster B forwards to `b` with `options`.
fn corefile(b: SocketAddr, options: &str) -> String {
    format!(
        "distributed.local.:@PORT0@ {{\n    bind 127.0.0.1\n    gathersrv distributed.local. {{\n        \
         cluster-a.local. a-\n        cluster-b.local. b-\n    }}\n    forward cluster-a.local. 127.0.0.1:@PORT1@\n    \
         forward cluster-b.local. {b} {{\n        {options}\n    }}\n}}\n\
         cluster-a.local.:@PORT1@ {{\n    bind 127.0.0.1\n    file cluster-a.local.zone\n}}\n"
    )
}

fn start(binary: &str, corefile: &str, args: &[&str]) -> Server {
    let zone = std::fs::read_to_string(demo_dir().join("cluster-a.local.zone")).expect("zone");
    ServerBuilder::new(binary, corefile)
        .file("cluster-a.local.zone", &zone)
        .args(args)
        .start()
}

/// Sends `n` SRV queries at once, each from a socket of its own (so that SO_REUSEPORT
/// spreads them over gatherdns-glommio's executors), and returns each one's only reply with
/// how long it took.
fn burst(server: SocketAddr, n: u16) -> Vec<(Reply, Duration)> {
    let clients: Vec<_> = (0..n)
        .map(|id| {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let q = query(SRV_QNAME, Rtype::SRV, Some((1232, false)), id);
            socket.send_to(&q.build(), server).expect("send");
            let sent = Instant::now();
            thread::spawn(move || {
                let mut buf = vec![0u8; 65535];
                socket
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                let (len, _) = socket.recv_from(&mut buf).expect("a reply within 5 s");
                let took = sent.elapsed();
                let reply = Reply::parse(&buf[..len]);
                socket
                    .set_read_timeout(Some(Duration::from_millis(300)))
                    .expect("timeout");
                assert!(socket.recv_from(&mut buf).is_err(), "a second reply");
                (reply, took)
            })
        })
        .collect();
    clients
        .into_iter()
        .map(|c| c.join().expect("one reply"))
        .collect()
}

fn refused_for_max_concurrent(reply: &Reply) -> bool {
    reply
        .ede
        .iter()
        .any(|(_, text)| text.contains("max_concurrent"))
}

#[test]
fn max_concurrent_bounds_what_a_slow_cluster_sees_over_the_whole_process() {
    let runs: [(&str, &[&str]); 3] = [
        ("gatherdns-smol", &[]),
        ("gatherdns-glommio", &["-threads", "1"]),
        ("gatherdns-glommio", &["-threads", "2"]),
    ];
    for (binary, args) in runs {
        eprintln!("--- {binary} {args:?}");
        // Held for less than an attempt's 500 ms, so that no retry muddles the count.
        let cluster = EchoCluster::start(Duration::from_millis(300));
        let server = start(binary, &corefile(cluster.addr, "max_concurrent 5"), args);
        let replies = burst(server.addr(), 20);
        if replies
            .iter()
            .any(|(r, _)| !r.ede.is_empty() && !refused_for_max_concurrent(r))
        {
            eprintln!("{:?}\n{}\n{}", replies, server.stdout(), server.stderr());
        }
        drop(server);
        let seen = cluster.finish();
        let (most, total) = (seen.most_held, seen.total);
        assert_eq!(
            most, 5,
            "{binary} {args:?}: at most 5 sub-queries in flight, and 5 reached"
        );
        assert_eq!(
            total, 5,
            "{binary} {args:?}: no retry, no sub-query beyond the limit"
        );
        let refused = replies
            .iter()
            .filter(|(r, _)| refused_for_max_concurrent(r))
            .count();
        assert_eq!(refused, 15, "{binary} {args:?}");
        for (reply, took) in &replies {
            assert_eq!(reply.rcode, "NOERROR", "{reply:?}");
            if refused_for_max_concurrent(reply) {
                assert_eq!(reply.answer.len(), 2, "cluster A's part: {reply:?}");
                assert!(
                    *took < Duration::from_millis(250),
                    "refused at once: {took:?}"
                );
            }
        }
    }
}

#[test]
fn max_inflight_refuses_client_queries_beyond_it_at_once() {
    let runs: [(&str, &[&str], usize); 3] = [
        ("gatherdns-smol", &[], 1),
        ("gatherdns-glommio", &["-threads", "1"], 1),
        ("gatherdns-glommio", &["-threads", "2"], 2),
    ];
    for (binary, args, executors) in runs {
        eprintln!("--- {binary} {args:?}");
        let cluster = EchoCluster::start(Duration::from_millis(300));
        let mut args = args.to_vec();
        args.extend(["-max-inflight", "3"]);
        let server = start(binary, &corefile(cluster.addr, ""), &args);
        let replies = burst(server.addr(), 12);
        drop(server);
        let most = cluster.finish().most_held;
        let refused: Vec<_> = replies
            .iter()
            .filter(|(r, _)| r.rcode == "REFUSED")
            .collect();
        let held = replies.len() - refused.len();
        // Each executor holds at most 3; with one executor exactly 3 are held.
        assert!(held <= 3 * executors, "{binary} {args:?}: {held} held");
        if executors == 1 {
            assert_eq!(held, 3, "{binary} {args:?}");
        }
        assert!(
            most <= 3 * executors,
            "{binary} {args:?}: cluster B saw {most}"
        );
        for (reply, took) in refused {
            assert!(reply.answer.is_empty(), "{reply:?}");
            assert!(
                *took < Duration::from_millis(250),
                "refused at once: {took:?}"
            );
        }
        for (reply, took) in replies.iter().filter(|(r, _)| r.rcode != "REFUSED") {
            assert_eq!(reply.rcode, "NOERROR", "{reply:?}");
            assert!(
                *took >= Duration::from_millis(250),
                "waited for cluster B: {took:?}"
            );
        }
    }
}
