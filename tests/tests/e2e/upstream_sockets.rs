//! Upstream UDP sockets over real sockets: each upstream gets sockets of its own on random
//! ports, and a socket is replaced by one on a fresh port after 2,000 sub-queries (RFC 5452),
//! without losing a reply on the way.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// What the rotation needs: 2,000 uses of one of 4 sockets picked at random.
const QUERIES: u16 = 10_000;
/// Queries in flight at once from the test client.
const WINDOW: u16 = 100;

/// A cluster DNS that answers every query at once (an empty NOERROR: the query echoed with
/// QR set) and counts the queries per source port.
fn echo_cluster() -> (
    SocketAddr,
    Arc<AtomicBool>,
    thread::JoinHandle<BTreeMap<u16, u32>>,
) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let addr = socket.local_addr().expect("addr");
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = thread::spawn(move || {
        let mut ports = BTreeMap::new();
        let mut buf = vec![0u8; 65535];
        let end = Instant::now() + Duration::from_secs(120);
        while !stopping.load(Ordering::Relaxed) && Instant::now() < end {
            if let Ok((len, from)) = socket.recv_from(&mut buf) {
                if len >= 12 {
                    buf[2] |= 0x80;
                    let _ = socket.send_to(&buf[..len], from);
                    *ports.entry(from.port()).or_insert(0) += 1;
                }
            }
        }
        ports
    });
    (addr, stop, thread)
}

#[test]
fn upstream_sockets_are_replaced_after_2000_uses_and_no_reply_is_lost() {
    for_each_binary(|binary| {
        let (cluster, stop, counter) = echo_cluster();
        let corefile = format!(
            "distributed.local.:@PORT0@ {{\n    bind 127.0.0.1\n    gathersrv distributed.local. {{\n        \
             cluster-b.local. b-\n    }}\n    forward cluster-b.local. {cluster}\n}}\n"
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
        stop.store(true, Ordering::Relaxed);
        let ports = counter.join().expect("no panic");
        let total: u32 = ports.values().sum();
        assert_eq!(total, u32::from(QUERIES), "one sub-query per query");
        assert!(
            ports.len() > 4,
            "{binary}: a socket was replaced by one on a new port: {ports:?}"
        );
        assert!(
            ports.values().all(|n| *n <= 2000),
            "{binary}: no socket served more than 2,000 sub-queries: {ports:?}"
        );
    });
}
