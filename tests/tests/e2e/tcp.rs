//! RFC 7766 on the client side: pipelined queries on one connection, replies matched by ID,
//! and a broken stream that costs only its own connection.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn ten_pipelined_queries_get_ten_replies() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        let names = [
            (SRV_QNAME, Rtype::SRV),
            ("a-demo-service-0.default.svc.distributed.local.", Rtype::A),
            ("demo-service.default.svc.distributed.local.", Rtype::A),
            ("nothing-here.default.svc.distributed.local.", Rtype::A),
            ("b-demo-service-1.default.svc.distributed.local.", Rtype::A),
        ];
        let mut client = TcpClient::connect(server.addr(), REPLY_TIMEOUT).expect("connect");
        let mut sent = BTreeMap::new();
        for i in 0..10u16 {
            let (name, qtype) = names[usize::from(i) % names.len()];
            let id = 1000 + i;
            client
                .send(&query(name, qtype, None, id).build())
                .expect("send");
            sent.insert(id, format!("{} {qtype}", name.trim_end_matches('.')));
        }
        let mut got = BTreeMap::new();
        for _ in 0..10 {
            let reply = Reply::parse(&client.recv().expect("reply"));
            assert!(
                got.insert(reply.id, reply.question.join(" ")).is_none(),
                "two replies for ID {}",
                reply.id
            );
        }
        assert_eq!(got, sent, "one reply per query, matched by ID and question");
    });
}

#[test]
fn zero_length_frame_closes_only_that_connection() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        let mut bad = TcpClient::connect(server.addr(), REPLY_TIMEOUT).expect("connect");
        bad.send_raw(&[0, 0]).expect("send");
        assert!(
            bad.is_closed_by_server(),
            "a zero-length frame must close the connection"
        );
        let reply = ask(
            server.addr(),
            Transport::Tcp,
            &query(SRV_QNAME, Rtype::SRV, None, 7),
        );
        assert_spec_srv(&reply, SRV_QNAME, None);
    });
}

#[test]
fn idle_connection_is_closed_after_ten_seconds() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        let mut client =
            TcpClient::connect(server.addr(), Duration::from_secs(20)).expect("connect");
        let reply = Reply::parse(&exchange_on(
            &mut client,
            &query(SRV_QNAME, Rtype::SRV, None, 31),
        ));
        assert_eq!(reply.rcode, "NOERROR");
        let answered = Instant::now();
        assert!(
            client.is_closed_by_server(),
            "the server closes an idle connection"
        );
        let idle = answered.elapsed();
        assert!(
            idle >= Duration::from_secs(9) && idle <= Duration::from_secs(15),
            "closed after {idle:?}, expected about 10 s"
        );
    });
}

fn exchange_on(client: &mut TcpClient, q: &QuerySpec) -> Vec<u8> {
    client.send(&q.build()).expect("send");
    client.recv().expect("reply")
}

/// The server's connection cap (1000): beyond it a new connection is closed at once, and a
/// slot freed by a client is usable again.
#[test]
fn connections_beyond_the_cap_are_closed_at_once() {
    const CAP: usize = 1000;
    if !enough_file_descriptors(2 * CAP + 200) {
        return;
    }
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        let refused = query("www.example.com.", Rtype::A, None, 41);
        let mut open = Vec::with_capacity(CAP);
        for i in 0..CAP {
            let mut client = TcpClient::connect(server.addr(), REPLY_TIMEOUT)
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            // A reply proves the server accepted this connection and counts it.
            let reply = Reply::parse(&exchange_on(&mut client, &refused));
            assert_eq!(reply.rcode, "REFUSED");
            open.push(client);
        }
        let mut extra =
            TcpClient::connect(server.addr(), REPLY_TIMEOUT).expect("the kernel still accepts");
        let started = Instant::now();
        assert!(
            extra.is_closed_by_server(),
            "connection {} must be closed",
            CAP + 1
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "closed at once, not by the idle timer"
        );
        drop(open.pop());
        // The server notices the close and frees the slot; poll briefly for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut client = TcpClient::connect(server.addr(), REPLY_TIMEOUT).expect("connect");
            client.send(&refused.build()).expect("send");
            if let Ok(bytes) = client.recv() {
                assert_eq!(Reply::parse(&bytes).rcode, "REFUSED");
                break;
            }
            assert!(Instant::now() < deadline, "a freed slot was never reused");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// Whether this process may open `needed` descriptors; prints why the test is skipped if not.
fn enough_file_descriptors(needed: usize) -> bool {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    match soft {
        Some(limit) if limit < needed => {
            eprintln!("SKIPPED: open-file limit {limit} < {needed}; raise it with ulimit -n");
            false
        }
        _ => true,
    }
}

#[test]
fn pipelines_beyond_the_per_connection_cap_are_paced_not_dropped() {
    // The server keeps at most 64 queries of one connection in flight and stops reading
    // beyond that; a client that pipelines 300 still gets 300 replies.
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        let mut client = TcpClient::connect(server.addr(), REPLY_TIMEOUT).expect("connect");
        let mut stream = Vec::new();
        for id in 0..300u16 {
            stream.extend_from_slice(&gatherdns_core::framing::frame(
                &query(SRV_QNAME, Rtype::SRV, None, id).build(),
            ));
        }
        client.send_raw(&stream).expect("send");
        let mut ids = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let reply = Reply::parse(&client.recv().expect("reply"));
            assert_eq!(reply.answer.len(), 4);
            ids.insert(reply.id);
        }
        assert_eq!(ids.len(), 300);
    });
}

#[test]
fn a_client_that_never_reads_does_not_stop_the_server() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        // 3,000 pipelined queries whose ~1.5 MB of replies the client never reads: the server
        // can only write until the socket buffers are full, then that connection waits.
        let mut lazy = std::net::TcpStream::connect(server.addr()).expect("connect");
        lazy.set_write_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut stream = Vec::new();
        for id in 0..3000u16 {
            stream.extend_from_slice(&gatherdns_core::framing::frame(
                &query(SRV_QNAME, Rtype::SRV, None, id).build(),
            ));
        }
        // The server may stop reading before it has everything: that is the backpressure.
        let _ = std::io::Write::write_all(&mut lazy, &stream);
        // Other clients are served meanwhile, over UDP and TCP.
        for transport in Transport::BOTH {
            let reply = ask(
                server.addr(),
                transport,
                &query(SRV_QNAME, Rtype::SRV, None, 7),
            );
            assert_eq!(
                reply.answer.len(),
                4,
                "{transport:?}: {reply:?}\n{}",
                server.stdout()
            );
        }
        drop(lazy);
    });
}
