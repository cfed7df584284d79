//! The SPEC §1 example against the embedded demo, over UDP and TCP, with and without EDNS.

use crate::common::*;

#[test]
fn spec_example_against_the_demo() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        check_demo_answers(server.addr());
    });
}

#[test]
fn query_log_lines_on_stdout() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        let name = "_demo._tcp.demo-service.default.svc.distributed.local.";
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &query(name, Rtype::SRV, None, 0x77),
        );
        assert_eq!(reply.rcode, "NOERROR");
        // CoreDNS's default log format: `[INFO] 127.0.0.1:PORT - ID "SRV IN NAME udp …`.
        let needle = format!("- {} \"SRV IN {name} udp", 0x77);
        assert!(
            server.wait_for_stdout(&needle, std::time::Duration::from_secs(5)),
            "no query log line containing {needle:?} in:\n{}",
            server.stdout()
        );
        assert!(server
            .stdout()
            .lines()
            .any(|l| l.starts_with("[INFO] 127.0.0.1:") && l.contains(&needle)));
    });
}

/// A burst from one client socket, of queries with and without EDNS (replies of two lengths):
/// the replies leave the server's drains as GSO sends (`host/src/batch.rs`: alike datagrams to
/// one peer in one send, cut by the kernel at each reply's length), as do the sub-queries to
/// each cluster. Each reply arrives whole and once, and answers its own query.
#[test]
fn a_burst_from_one_client_gets_every_reply_whole() {
    use std::time::Duration;
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let edns_of = |id: u16| (id % 3 != 0).then_some((1232, false));
        for round in 0..4u16 {
            let ids: Vec<u16> = (0..64).map(|i| 1000 + round * 64 + i).collect();
            for &id in &ids {
                let query = query(SRV_QNAME, Rtype::SRV, edns_of(id), id);
                socket.send_to(&query.build(), server.addr()).expect("send");
            }
            for reply in one_reply_each(&socket, ids, binary) {
                assert_spec_srv(&reply, SRV_QNAME, edns_of(reply.id));
            }
        }
    });
}
