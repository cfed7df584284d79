//! Truncation: the 120-record answers of `big` fit the client's UDP limit with TC set, and
//! come complete over TCP.

use crate::common::*;

const BIG_SRV: &str = "_http._tcp.big.default.svc.distributed.local.";
const BIG_A: &str = "big.default.svc.distributed.local.";

fn raw(server: std::net::SocketAddr, transport: Transport, q: &QuerySpec) -> (usize, Reply) {
    let bytes = exchange(server, transport, &q.build())
        .unwrap_or_else(|e| panic!("{transport:?} {}: {e}", q.name));
    (bytes.len(), Reply::parse(&bytes))
}

fn check_truncation(server: std::net::SocketAddr, name: &str, qtype: Rtype) {
    let (len, reply) = raw(server, Transport::Udp, &query(name, qtype, None, 1));
    assert!(
        reply.tc,
        "UDP without EDNS: TC=1 expected; reply: {reply:#?}"
    );
    assert!(len <= 512, "UDP without EDNS: {len} bytes > 512");
    assert_eq!(reply.edns, None);

    let (len, reply) = raw(
        server,
        Transport::Udp,
        &query(name, qtype, Some((4096, false)), 2),
    );
    assert!(
        reply.tc,
        "UDP with EDNS 4096: TC=1 expected; reply: {reply:#?}"
    );
    assert!(len <= 1232, "UDP with EDNS 4096: {len} bytes > 1232");
    assert_eq!(reply.edns, Some((1232, false)));

    let (len, reply) = raw(
        server,
        Transport::Tcp,
        &query(name, qtype, Some((1232, false)), 3),
    );
    assert!(!reply.tc, "TCP: the complete answer, no TC");
    assert_eq!(reply.rcode, "NOERROR");
    assert_eq!(
        reply.answer.len(),
        120,
        "TCP: all 120 records ({len} bytes)"
    );
    let owners: std::collections::BTreeSet<_> =
        reply.answer_rrs().into_iter().map(|r| r.owner).collect();
    assert_eq!(
        owners.into_iter().collect::<Vec<_>>(),
        vec![name.to_string()],
        "all under the question name"
    );
}

#[test]
fn big_srv_truncates_on_udp_and_is_complete_on_tcp() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        check_truncation(server.addr(), BIG_SRV, Rtype::SRV);
        let reply = ask(
            server.addr(),
            Transport::Tcp,
            &query(BIG_SRV, Rtype::SRV, None, 9),
        );
        assert_eq!(
            reply.additional.len(),
            120,
            "TCP: the address of every target in additional"
        );
    });
}

#[test]
fn big_a_truncates_on_udp_and_is_complete_on_tcp() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        check_truncation(server.addr(), BIG_A, Rtype::A);
    });
}
