//! A client socket whose send buffer fills: in a network namespace of its own, loopback goes
//! through a slow token bucket with a deep queue, so datagrams wait there charged to the
//! socket that sent them and the server's replies find its buffer full. Every query the
//! server read must end as a reply the client got, or as a counted drop — none silently —
//! and the server must have stopped reading rather than dropped (back-pressure).

use std::net::UdpSocket;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use gatherdns_tests::netns::enter_private_network;

use crate::common::*;
use crate::ops::{get, samples};

const COREFILE: &str = "example.test.:@PORT0@ {\n    bind 127.0.0.1\n    file example.test.zone\n    prometheus 127.0.0.1:@PORT1@\n}\n";

/// A TXT answer of about 1 kB, so that replies fill a send buffer fast.
fn zone() -> String {
    let text: String = (0..4)
        .map(|i| format!(" \"{}\"", char::from(b'a' + i).to_string().repeat(240)))
        .collect();
    format!(
        "$ORIGIN example.test.\n$TTL 60\n\
         @ IN SOA ns.example.test. hostmaster.example.test. 1 7200 3600 1209600 30\n\
         @ IN NS ns.example.test.\nns IN A 192.0.2.1\nbig IN TXT{text}\n"
    )
}

/// The sum of a counter's samples in a `/metrics` body (0 when absent).
fn total(body: &str, name: &str) -> u64 {
    samples(body)
        .iter()
        .filter(|((n, _), _)| n == name)
        .map(|(_, v)| *v as u64)
        .sum()
}

/// UDP datagrams this namespace dropped because a receive buffer was full.
fn rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp").expect("snmp");
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next().expect("names"), udp.next().expect("values"));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .expect("RcvbufErrors")
}

#[test]
#[cfg_attr(
    any(no_netns, no_ip),
    ignore = "needs network namespaces and ip/tc (apt-get install iproute2)"
)]
fn a_full_client_socket_loses_no_reply_silently() {
    enter_private_network();
    let tc = require_tool(gatherdns_tests::tools::IP).with_file_name("tc");

    // Loopback's 64 kB MTU is more than the bucket holds: a TCP segment that large (the
    // /metrics response) would never pass.
    let ip = require_tool(gatherdns_tests::tools::IP);
    let status = Command::new(&ip)
        .args(["link", "set", "lo", "mtu", "1500"])
        .status()
        .expect("run ip");
    assert!(status.success(), "ip link set lo mtu: {status}");
    // 4 Mbit/s with a queue far deeper than a socket's send buffer: datagrams wait in the
    // queue (charged to their socket) instead of being dropped by it.
    let status = Command::new(&tc)
        .args(["qdisc", "add", "dev", "lo", "root", "tbf"])
        .args(["rate", "4mbit", "burst", "16k", "limit", "64m"])
        .status()
        .expect("run tc");
    assert!(status.success(), "tc qdisc add: {status}");
    for_each_binary(|binary| {
        let server = ServerBuilder::new(binary, COREFILE)
            .file("example.test.zone", &zone())
            .start();
        let (_, _, before) = get(server.addr_of(1), "/metrics");
        let rcvbuf_before = rcvbuf_errors();
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
        client.connect(server.addr()).expect("connect");
        let reader = client.try_clone().expect("clone");
        let (got, received) = mpsc::channel();
        // Reads until a second of silence (bounded: a minute at most).
        thread::spawn(move || {
            reader
                .set_read_timeout(Some(Duration::from_secs(1)))
                .expect("timeout");
            let (mut count, mut buf) = (0u64, vec![0u8; 65535]);
            let end = Instant::now() + Duration::from_secs(60);
            while Instant::now() < end && reader.recv(&mut buf).is_ok() {
                count += 1;
            }
            let _ = got.send(count);
        });
        const SENT: u16 = 3000;
        for id in 0..SENT {
            let q = query("big.example.test.", Rtype::TXT, Some((1232, false)), id);
            client.send(&q.build()).expect("send");
        }
        let replies = received.recv().expect("the reader's count");
        let (_, _, after) = get(server.addr_of(1), "/metrics");
        let requests = "coredns_dns_requests_total";
        let read = total(&after, requests) - total(&before, requests);
        let waited = total(&after, "gatherdns_udp_replies_waited_total");
        let dropped = total(&after, "gatherdns_udp_replies_dropped_total");
        let kernel = rcvbuf_errors() - rcvbuf_before;
        eprintln!(
            "{binary}: sent {SENT}, server read {read}, replies {replies}, waited {waited}, \
             dropped {dropped}, receive-buffer drops {kernel}"
        );
        assert!(
            waited > 0,
            "{binary}: the server's send buffer never filled"
        );
        assert_eq!(dropped, 0, "{binary}: back-pressure, not drops");
        // Every query read was answered (the client's buffer may have dropped a reply, as
        // the server's may have dropped a query it never read: both are the kernel's,
        // counted in RcvbufErrors, and both ends count the same way).
        assert_eq!(
            u64::from(SENT),
            replies + dropped + kernel,
            "{binary}: every query answered or counted"
        );
        assert!(read + kernel >= u64::from(SENT), "{binary}: read {read}");
    });
}
