//! RA says what the server does for the client: set only on a proxied reply, copied from the
//! upstream as CoreDNS's `forward` copies it; gathered, authoritative and refused replies are
//! gatherdns's own and carry RA=0, whatever `forward`s the block has.

use domain::base::iana::Rtype;
use gatherdns_tests::message::QuerySpec;
use gatherdns_tests::sim::{Behaviour, Sim};

use crate::fixtures::{sim, zone};

#[test]
fn gathered_synthesised_and_refused_replies_have_ra_clear() {
    let mut sim = sim();
    for (name, qtype) in [
        ("demo-service.default.svc.distributed.local.", Rtype::A),
        ("missing.svc.distributed.local.", Rtype::A),
        ("a-demo-service-0.default.svc.distributed.local.", Rtype::A),
        ("distributed.local.", Rtype::SOA),
        ("ns.dns.distributed.local.", Rtype::A),
        ("www.example.org.", Rtype::A),
    ] {
        let reply = sim.ask(&QuerySpec::new(name, qtype).rd(true));
        assert!(reply.rd, "RD is copied");
        assert!(!reply.ra, "{name} {qtype}: RA=0; reply: {reply:?}");
    }
}

/// A block that proxies `.` to an upstream whose replies set RA as `ra` says.
fn proxy(ra: bool) -> Sim {
    let corefile = ".:53 {\n  forward . 10.8.0.1:53\n}\n";
    let mut sim = Sim::new(corefile, &[]);
    if ra {
        let mut reply = QuerySpec::new("www.example.org.", Rtype::A)
            .rd(true)
            .build()
            .to_vec();
        reply[2] |= 0x80; // QR
        reply[3] |= 0x80; // RA
        sim.bare_upstream(
            "10.8.0.1:53",
            Behaviour::Raw {
                bytes: reply,
                keep_id: false,
            },
        );
    } else {
        sim.upstream("10.8.0.1:53", "cluster-a.local.", &zone("a", 8, ""));
    }
    sim
}

#[test]
fn a_proxied_reply_carries_the_upstreams_ra() {
    let mut sim = proxy(true);
    let reply = sim.ask(&QuerySpec::new("www.example.org.", Rtype::A).rd(true));
    assert_eq!(reply.rcode, "NOERROR");
    assert!(reply.ra, "the upstream recursed: RA=1; reply: {reply:?}");

    let mut sim = proxy(false);
    let reply = sim.ask(&QuerySpec::new(
        "demo-service.default.svc.cluster-a.local.",
        Rtype::A,
    ));
    assert_eq!(reply.answer.len(), 1, "{reply:?}");
    assert!(!reply.ra, "an authoritative upstream: RA=0 as it said");
}
