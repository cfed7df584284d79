//! Shared expectations: the SPEC §1 example as it must come back, whatever the backend.

pub(crate) use domain::base::iana::{Opcode, Rtype};
pub(crate) use gatherdns_tests::dns_client::*;
pub(crate) use gatherdns_tests::server::*;

/// The SPEC §1 question, in 0x20 mixed case: the reply must echo it byte for byte.
pub(crate) const SRV_QNAME: &str = "_DeMo._tcp.Demo-Service.default.SVC.distributed.LOCAL.";

/// The distributed domain of the demo.
pub(crate) const DOMAIN: &str = "distributed.local.";

/// Runs `test` once per server binary, naming the binary in the output for failures.
pub(crate) fn for_each_binary(test: impl Fn(&str)) {
    for binary in BINARIES {
        eprintln!("--- {binary}");
        test(binary);
    }
}

fn triple(owner: &str, rtype: &str, rdata: &str) -> (String, String, String) {
    (owner.to_string(), rtype.to_string(), rdata.to_string())
}

/// Record data with names compared without their trailing dot, however the parser prints
/// them, and in lower case: only the question and the answer owners that equal it must keep
/// the client's 0x20 case. Other names may legitimately take it on through compression
/// against the question (BIND and Knot do the same).
pub(crate) fn normalised(rrs: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    rrs.into_iter()
        .map(|(o, t, d)| (o, t, d.trim_end_matches('.').to_ascii_lowercase()))
        .collect()
}

/// Like [`normalised`], with owners lower-cased too (for sections whose owners are not the
/// question name).
pub(crate) fn lowercased(rrs: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    normalised(rrs)
        .into_iter()
        .map(|(o, t, d)| (o.to_ascii_lowercase(), t, d))
        .collect()
}

/// Header bits every gathered NOERROR reply has: QR, AA, no RA, no TC, the question echoed.
pub(crate) fn assert_gathered_header(reply: &Reply, qname: &str, qtype: &str) {
    assert_eq!(reply.rcode, "NOERROR", "rcode; reply: {reply:#?}");
    assert!(reply.qr, "QR");
    assert!(reply.aa, "AA must be set on gathered replies");
    assert!(
        !reply.ra,
        "RA=0: a gathered answer is not recursion for the client"
    );
    assert!(!reply.tc, "TC must not be set; reply: {reply:#?}");
    assert_eq!(
        reply.question,
        vec![format!("{} {qtype}", qname.trim_end_matches('.'))],
        "question echoed exactly"
    );
}

/// The SPEC §1 reply: 4 SRV then 4 A, in cluster order, under the question name.
pub(crate) fn assert_spec_srv(reply: &Reply, qname: &str, edns: Option<(u16, bool)>) {
    assert_gathered_header(reply, qname, "SRV");
    let srv = |target: &str| {
        triple(
            qname,
            "SRV",
            &format!("0 50 8080 {target}.default.svc.distributed.local"),
        )
    };
    assert_eq!(
        normalised(reply.answer_triples()),
        vec![
            srv("a-demo-service-0"),
            srv("a-demo-service-1"),
            srv("b-demo-service-0"),
            srv("b-demo-service-1")
        ],
        "answer section"
    );
    let a =
        |host: &str, ip: &str| triple(&format!("{host}.default.svc.distributed.local."), "A", ip);
    assert_eq!(
        lowercased(reply.additional_triples()),
        vec![
            a("a-demo-service-0", "10.8.1.2"),
            a("a-demo-service-1", "10.8.1.2"),
            a("b-demo-service-0", "10.9.1.2"),
            a("b-demo-service-1", "10.9.1.2"),
        ],
        "additional section"
    );
    assert!(
        reply.answer_rrs().iter().all(|r| r.ttl == 30),
        "TTLs are untouched"
    );
    match edns {
        None => assert_eq!(
            reply.edns, None,
            "no OPT in the reply to a query without one"
        ),
        Some((_, dnssec_ok)) => assert_eq!(
            reply.edns,
            Some((1232, dnssec_ok)),
            "our OPT: size 1232, DO echoed"
        ),
    }
}

/// The EDNS variants every gathering test is asked with.
pub(crate) const EDNS_VARIANTS: [Option<(u16, bool)>; 3] =
    [None, Some((1232, false)), Some((4096, true))];

/// A query with the given EDNS variant.
pub(crate) fn query(name: &str, qtype: Rtype, edns: Option<(u16, bool)>, id: u16) -> QuerySpec {
    let q = QuerySpec::new(name, qtype).id(id);
    match edns {
        Some((size, dnssec_ok)) => q.edns(size, dnssec_ok),
        None => q,
    }
}

/// The checks of the SPEC §1 example that hold for any cluster DNS serving the demo zones.
pub(crate) fn check_demo_answers(server: std::net::SocketAddr) {
    let mut id = 1;
    for transport in Transport::BOTH {
        for edns in EDNS_VARIANTS {
            id += 1;
            let reply = ask(server, transport, &query(SRV_QNAME, Rtype::SRV, edns, id));
            assert_spec_srv(&reply, SRV_QNAME, edns);
        }
        // A prefixed host is asked of its cluster only and answered under the prefixed name.
        let name = "a-demo-service-0.default.svc.distributed.local.";
        let reply = ask(server, transport, &query(name, Rtype::A, None, 500));
        assert_gathered_header(&reply, name, "A");
        assert_eq!(
            normalised(reply.answer_triples()),
            vec![triple(name, "A", "10.8.1.2")]
        );
        // An unprefixed name gets every cluster's address under the question's own name.
        let name = "demo-service.default.svc.distributed.local.";
        let reply = ask(
            server,
            transport,
            &query(name, Rtype::A, Some((1232, false)), 501),
        );
        assert_gathered_header(&reply, name, "A");
        assert_eq!(
            normalised(reply.answer_triples()),
            vec![
                triple(name, "A", "10.8.0.10"),
                triple(name, "A", "10.9.0.10")
            ]
        );
    }
}

/// Waits on `socket` for one reply to each query of `ids` (the socket's read timeout bounds
/// each wait) and returns them in the order they came; fails, naming `who`, on a missing
/// reply, a second reply to one query, or a reply to a query not asked.
pub(crate) fn one_reply_each(
    socket: &std::net::UdpSocket,
    ids: impl IntoIterator<Item = u16>,
    who: &str,
) -> Vec<Reply> {
    let mut waiting: std::collections::BTreeSet<u16> = ids.into_iter().collect();
    let mut replies = Vec::with_capacity(waiting.len());
    let mut buf = vec![0u8; 65535];
    while !waiting.is_empty() {
        let (len, _) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{who}: no reply to the queries {waiting:?}: {e}"));
        let reply = Reply::parse(&buf[..len]);
        assert!(
            waiting.remove(&reply.id),
            "{who}: a second reply, or one to a query not asked: {reply:#?}"
        );
        replies.push(reply);
    }
    replies
}
