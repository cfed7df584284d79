//! Upstream UDP sockets over real sockets: each upstream gets sockets of its own on random
//! ports, and a socket is replaced by one on a fresh port after 2,000 sub-queries (RFC 5452),
//! without losing a reply on the way.

use std::net::UdpSocket;
use std::time::Duration;

use gatherdns_core::UPSTREAM_SOCKETS;
use gatherdns_tests::echo_cluster::EchoCluster;

use crate::common::*;

/// What the rotation needs: 2,000 uses of one of the `UPSTREAM_SOCKETS` picked at random.
const QUERIES: u16 = 10_000;
/// Queries in flight at once from the test client.
const WINDOW: u16 = 100;

#[test]
fn upstream_sockets_are_replaced_after_2000_uses_and_no_reply_is_lost() {
    for_each_binary(|binary| {
        let cluster = EchoCluster::start(Duration::ZERO);
        let corefile = format!(
            "distributed.local.:@PORT0@ {{\n    bind 127.0.0.1\n    gathersrv distributed.local. {{\n        \
             cluster-b.local. b-\n    }}\n    forward cluster-b.local. {}\n}}\n",
            cluster.addr
        );
        let server = ServerBuilder::new(binary, &corefile).start();
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
        client.connect(server.addr()).expect("connect");
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = vec![0u8; 65535];
        let mut answered = 0;
        for window in 0..QUERIES / WINDOW {
            for i in 0..WINDOW {
                let id = window * WINDOW + i;
                let q = query("demo.default.svc.distributed.local.", Rtype::A, None, id);
                client.send(&q.build()).expect("send");
            }
            for _ in 0..WINDOW {
                let len = client.recv(&mut buf).expect("every query answered");
                let reply = Reply::parse(&buf[..len]);
                assert_eq!(reply.rcode, "NOERROR", "{reply:?}");
                assert!(reply.ede.is_empty(), "cluster B answered: {reply:?}");
                answered += 1;
            }
        }
        assert_eq!(answered, QUERIES);
        drop(server);
        let ports = cluster.finish().ports;
        let total: u32 = ports.values().sum();
        assert_eq!(total, u32::from(QUERIES), "one sub-query per query");
        assert!(
            ports.len() > UPSTREAM_SOCKETS,
            "{binary}: a socket was replaced by one on a new port: {ports:?}"
        );
        assert!(
            ports.values().all(|n| *n <= 2000),
            "{binary}: no socket served more than 2,000 sub-queries: {ports:?}"
        );
    });
}
