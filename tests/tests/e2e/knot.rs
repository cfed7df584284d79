//! Gathering from Knot DNS: the clusters' DNS is an independent implementation serving the
//! demo zones, so our sub-queries, TCP retries and rewriting meet someone else's wire format.

use gatherdns_tests::knot::Knot;

use crate::common::*;

fn start_knot() -> Knot {
    let dir = demo_dir();
    let zone = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let a = zone("cluster-a.local.zone");
    let b = zone("cluster-b.local.zone");
    Knot::start(&[("cluster-a.local.", &a), ("cluster-b.local.", &b)])
}

fn gatherer(binary: &str, knot: &Knot) -> Server {
    let upstream = knot.addr().to_string();
    let corefile = format!(
        "distributed.local.:@PORT0@ {{\n    bind 127.0.0.1\n    gathersrv distributed.local. {{\n        \
         cluster-a.local. a-\n        cluster-b.local. b-\n    }}\n    forward cluster-a.local. {upstream}\n    \
         forward cluster-b.local. {upstream}\n    errors\n}}\n"
    );
    ServerBuilder::new(binary, &corefile).start()
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn spec_example_against_knot() {
    let knot = start_knot();
    for_each_binary(|binary| {
        let server = gatherer(binary, &knot);
        check_demo_answers(server.addr());
    });
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn big_answer_from_knot_is_complete_over_tcp() {
    // Knot truncates the 60-record answers at our 1232-byte EDNS size; the gateway must
    // retry over TCP, so the merged answer holds all 120 records.
    let knot = start_knot();
    for_each_binary(|binary| {
        let server = gatherer(binary, &knot);
        for (name, qtype) in [
            ("_http._tcp.big.default.svc.distributed.local.", Rtype::SRV),
            ("big.default.svc.distributed.local.", Rtype::A),
        ] {
            let reply = ask(server.addr(), Transport::Tcp, &query(name, qtype, None, 21));
            assert_eq!(reply.rcode, "NOERROR", "{reply:#?}");
            assert!(!reply.tc);
            assert_eq!(
                reply.answer.len(),
                120,
                "{name} {qtype}: every cluster's 60 records"
            );
        }
    });
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn nxdomain_from_knot_carries_our_soa() {
    let knot = start_knot();
    for_each_binary(|binary| {
        let server = gatherer(binary, &knot);
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &query("nope.default.svc.distributed.local.", Rtype::A, None, 22),
        );
        assert_eq!(reply.rcode, "NXDOMAIN", "{reply:#?}");
        let soa: Vec<_> = reply
            .authority_rrs()
            .into_iter()
            .filter(|r| r.rtype == "SOA")
            .collect();
        assert_eq!(soa.len(), 1, "{reply:#?}");
        assert_eq!(soa[0].owner, DOMAIN);
    });
}
