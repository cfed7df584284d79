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

/// Records of cluster A (10.8.…) and of cluster B (10.9.…) among `rrs`.
fn per_cluster(rrs: &[Rr]) -> (usize, usize) {
    let count = |net: &str| rrs.iter().filter(|r| r.rdata.starts_with(net)).count();
    (count("10.8."), count("10.9."))
}

/// A truncated UDP reply is usable as it is: it holds both clusters' records, half each, and
/// every SRV record it keeps comes with its target's address.
#[test]
fn truncated_udp_replies_span_the_clusters() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        for (edns, limit) in [(None, 512), (Some((1232, false)), 1232)] {
            let (len, reply) = raw(
                server.addr(),
                Transport::Udp,
                &query(BIG_A, Rtype::A, edns, 4),
            );
            assert!(reply.tc && len <= limit, "{edns:?}: {len} bytes");
            let (a, b) = per_cluster(&reply.answer_rrs());
            assert_eq!(a + b, reply.answer.len());
            assert!(
                a > 0 && a.abs_diff(b) <= 1,
                "{edns:?}: {a} from A, {b} from B"
            );
            eprintln!("A, {edns:?}: {len} bytes, {a} + {b} addresses");

            let (len, reply) = raw(
                server.addr(),
                Transport::Udp,
                &query(BIG_SRV, Rtype::SRV, edns, 5),
            );
            assert!(reply.tc && len <= limit, "{edns:?}: {len} bytes");
            let targets: Vec<String> = reply
                .answer_rrs()
                .iter()
                .map(|r| {
                    let target = r.rdata.rsplit(' ').next().unwrap_or("");
                    target.trim_end_matches('.').to_ascii_lowercase()
                })
                .collect();
            let owners: Vec<String> = reply
                .additional_rrs()
                .iter()
                .map(|r| r.owner.trim_end_matches('.').to_ascii_lowercase())
                .collect();
            assert_eq!(
                targets, owners,
                "{edns:?}: each SRV record with its address"
            );
            let (a, b) = per_cluster(&reply.additional_rrs());
            assert!(
                a > 0 && a.abs_diff(b) <= 1,
                "{edns:?}: {a} from A, {b} from B"
            );
            eprintln!("SRV, {edns:?}: {len} bytes, {a} + {b} targets with addresses");
        }
    });
}
